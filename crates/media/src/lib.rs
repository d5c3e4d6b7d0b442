//! Media: every ffmpeg and ffprobe call goes through [`process`], and every user's file is opened
//! with [`input`]'s options (that file and nothing else); [`probe`] turns ffprobe's JSON into
//! typed structs (and [`packet_scan`] reads frame times from packets where they stand for the
//! frames); [`nut`] writes raw frames with exact timestamps into an encoder's stdin;
//! [`redact`] blanks URL signatures and passwords out of what the tools print.
pub mod input;
pub mod nut;
pub mod packet_scan;
pub mod probe;
pub mod process;
pub mod redact;
