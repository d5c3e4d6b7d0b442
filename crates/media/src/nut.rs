//! NUT muxer (rawvideo with per-frame timestamps). Written by a helper.
