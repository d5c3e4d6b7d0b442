//! The ffmpeg arguments that follow from a [`VideoSettings`]: the decoder's (raw frames at the
//! model's size), the encoders' (whole video, or one chunk) and the assembler's (chunks joined,
//! other streams copied), with the colour tags and filters that keep the output's colours.

use std::ffi::OsString;
use std::path::Path;

use fresco_media::input::{input_args, own_concat_args, own_pipe_args};

use super::{FrameWindow, VideoSettings};

impl VideoSettings {
    /// ffmpeg arguments that decode the video stream to raw RGB frames on stdout, every decoded
    /// frame once (`-fps_mode passthrough`), rotated upright, at the model's size.
    pub fn decoder_args(&self) -> Vec<OsString> {
        self.window_decoder_args(None)
    }

    /// Like [`decoder_args`](Self::decoder_args), but only the frames `window` selects.
    pub fn window_decoder_args(&self, window: Option<&FrameWindow>) -> Vec<OsString> {
        let mut filters = Vec::new();
        let mut args = fresco_media::process::ffmpeg_quiet();
        match window {
            None => {}
            Some(FrameWindow::Numbers { start, end }) => {
                filters.push(format!("select='between(n\\,{start}\\,{})'", end - 1));
            }
            Some(FrameWindow::Times {
                seek_secs,
                from_secs,
                to_secs,
            }) => {
                // -copyts keeps the original timestamps, so the window is in the probe's
                // terms; the seek lands on a keyframe before the window, never inside it.
                args.extend([os("-copyts"), os("-noaccurate_seek")]);
                if *seek_secs > 0.0 {
                    args.extend([os("-ss"), os(format!("{seek_secs:.6}"))]);
                }
                let mut conditions = Vec::new();
                if let Some(from) = from_secs {
                    conditions.push(format!("gte(t\\,{from:.9})"));
                }
                if let Some(to) = to_secs {
                    conditions.push(format!("lt(t\\,{to:.9})"));
                }
                if !conditions.is_empty() {
                    filters.push(format!("select='{}'", conditions.join("*")));
                }
            }
        }
        if (self.model_width, self.model_height) != (self.width, self.height) {
            filters.push(format!(
                "scale={}:{}:flags=area",
                self.model_width, self.model_height
            ));
        } else if self.scale_every_frame {
            // Frames of another size than the first come out at the first size.
            filters.push(format!(
                "scale={}:{}:flags=bicubic",
                self.model_width, self.model_height
            ));
        }
        filters.push(format!("format={}", self.raw_format.ffmpeg_name()));
        if self.scale_every_frame {
            // Keep one filter graph through a size change: a rebuilt one would count frames
            // (`select`'s n) from zero again, and a chunk's window would select nothing; the
            // scale filter adapts to the new size by itself.
            args.extend([os("-reinit_filter"), os("0")]);
        }
        // Decoded frames come back to system memory (no -hwaccel_output_format) for the filters.
        args.extend(crate::hardware::hwaccel_args(self.hwaccel.as_deref()));
        args.extend(input_args(&self.input));
        args.extend([
            os("-map"),
            os(format!("0:v:{}", self.video_ordinal)),
            os("-vf"),
            os(filters.join(",")),
            os("-fps_mode"),
            os("passthrough"),
            os("-enc_time_base"),
            os("-1"),
            os("-f"),
            os("rawvideo"),
            os("pipe:1"),
        ]);
        args
    }

    /// ffmpeg arguments that read our NUT stream on stdin (the styled frames with their
    /// original timestamps), encode it, copy the other streams, chapters and metadata from the
    /// input, and write `out`.
    pub fn encoder_args(&self, out: &Path) -> Vec<OsString> {
        let mut args = fresco_media::process::ffmpeg_quiet();
        args.push(os("-y"));
        if self.muxer_shift_us != 0 {
            // Applies to the next input, the styled frames on stdin.
            args.extend([os("-itsoffset"), os(format!("{}us", -self.muxer_shift_us))]);
        }
        args.extend(own_pipe_args());
        args.extend(input_args(&self.input));
        args.extend([os("-map"), os("0:v:0")]);
        args.extend(self.copied_stream_args(1));
        args.extend([os("-c"), os("copy")]);
        args.extend(self.video_encode_args());
        args.push(os("-copyts"));
        args.extend(self.container_args());
        args.push(out.as_os_str().to_os_string());
        args
    }

    /// ffmpeg arguments that encode one chunk of styled frames (NUT on stdin, timestamps from
    /// zero) into a NUT file, with exactly the encoder settings of the whole video, so that the
    /// chunks join by stream copy.
    pub fn chunk_encoder_args(&self, out: &Path) -> Vec<OsString> {
        let mut args = fresco_media::process::ffmpeg_quiet();
        args.push(os("-y"));
        args.extend(own_pipe_args());
        args.extend([os("-map"), os("0:v:0"), os("-map_metadata"), os("-1")]);
        args.extend(self.video_encode_args());
        args.extend([os("-copyts"), os("-f"), os("nut")]);
        args.push(out.as_os_str().to_os_string());
        args
    }

    /// ffmpeg arguments that join encoded chunks (an ffconcat `list` with exact durations) by
    /// stream copy, shifted to the input's first frame time (`offset_us`), and copy the other
    /// streams, chapters and metadata from the input into `out`.
    pub fn assemble_args(&self, list: &Path, offset_us: i64, out: &Path) -> Vec<OsString> {
        let mut args = fresco_media::process::ffmpeg_quiet();
        args.push(os("-y"));
        let offset_us = offset_us - self.muxer_shift_us;
        if offset_us != 0 {
            args.extend([os("-itsoffset"), os(format!("{offset_us}us"))]);
        }
        // The concat demuxer reads fresco's own list of its chunks; the user's file, in the
        // same command, gets the same restrictions as everywhere else.
        args.extend(own_concat_args(list));
        args.extend(input_args(&self.input));
        args.extend([os("-map"), os("0:v:0")]);
        args.extend(self.copied_stream_args(1));
        args.extend([os("-c"), os("copy"), os("-copyts")]);
        args.extend(self.container_args());
        args.push(out.as_os_str().to_os_string());
        args
    }

    /// Maps the copied streams of input `input_number`, with its chapters and metadata.
    fn copied_stream_args(&self, input_number: u32) -> Vec<OsString> {
        let mut args = Vec::new();
        for stream in &self.streams {
            args.push(os("-map"));
            args.push(os(format!("{input_number}:{}", stream.index)));
        }
        // The video's own -map_metadata below turns off ffmpeg's default copy of every
        // stream's tags, so each copied stream's are mapped too: an attachment without its
        // `filename` and `mimetype` cannot be written, and a track would lose its language.
        for (n, stream) in self.streams.iter().enumerate() {
            args.push(os(format!("-map_metadata:s:{}", n + 1)));
            args.push(os(format!("{input_number}:s:{}", stream.index)));
        }
        args.extend([
            os("-map_metadata"),
            os(input_number.to_string()),
            os("-map_chapters"),
            os(input_number.to_string()),
            os("-map_metadata:s:v:0"),
            os(format!("{input_number}:s:v:{}", self.video_ordinal)),
            // The rotation is baked into the pixels; a copied tag would rotate them twice.
            os("-metadata:s:v:0"),
            os("rotate="),
        ]);
        args
    }

    /// The output container's own options.
    fn container_args(&self) -> Vec<OsString> {
        let container = self.container();
        if matches!(container.as_str(), "mp4" | "mov" | "m4v" | "3gp") {
            vec![
                os("-video_track_timescale"),
                os(self.time_base.1.to_string()),
            ]
        } else {
            crate::container::muxer_args(&container)
        }
    }

    /// How the video stream is encoded: codec, rate control, threads, filters, pixel format,
    /// colour tags, and timestamps passed through untouched.
    pub(crate) fn video_encode_args(&self) -> Vec<OsString> {
        let mut args = vec![os("-c:v:0"), os(&self.encode.codec)];
        if let Some(crf) = self.encode.crf {
            if codec_has_crf(&self.encode.codec) {
                args.extend([os("-crf"), os(crf.to_string())]);
            }
        }
        if let Some(preset) = &self.encode.preset {
            if codec_has_preset(&self.encode.codec) {
                args.extend([os("-preset"), os(preset)]);
            }
        }
        args.extend(crate::hardware::nvenc_args(&self.encode));
        args.extend(crate::container::codec_args(
            &self.container(),
            &self.encode,
        ));
        if let Some(threads) = self.encode.threads {
            args.extend([os("-threads:v:0"), os(threads.to_string())]);
        }
        args.extend([os("-filter:v:0"), os(self.encoder_filters())]);
        args.extend([os("-pix_fmt:v:0"), os(&self.out_pix_fmt)]);
        let rgb_out = is_rgb_pix_fmt(&self.out_pix_fmt);
        if let Some(p) = &self.colour.primaries {
            args.extend([os("-color_primaries:v:0"), os(p)]);
        }
        if let Some(t) = &self.colour.transfer {
            args.extend([os("-color_trc:v:0"), os(t)]);
        }
        if !rgb_out {
            let (space, range) = self.yuv_matrix_and_range();
            if let Some(s) = space {
                args.extend([os("-colorspace:v:0"), os(s)]);
            }
            if let Some(r) = range {
                args.extend([os("-color_range:v:0"), os(r)]);
            }
        }
        // Without -enc_time_base -1, ffmpeg 5.1 re-times frames to a guessed frame rate even in
        // passthrough mode (40 ms became 42 in a test), merging close frames.
        args.extend([
            os("-fps_mode"),
            os("passthrough"),
            os("-enc_time_base:v:0"),
            os("-1"),
        ]);
        args
    }

    /// The colour matrix and range a YUV output is converted with and tagged with: the
    /// input's, except for an RGB input (matrix `gbr`, which names no YUV matrix and which
    /// ffmpeg's `-colorspace` does not take by that name): BT.709 at limited range, the
    /// common choice for RGB sources such as screen captures and lossless RGB masters.
    fn yuv_matrix_and_range(&self) -> (Option<&str>, Option<&str>) {
        match self.colour.space.as_deref() {
            Some("gbr" | "rgb") => (Some("bt709"), Some("tv")),
            space => (space, self.colour.range.as_deref()),
        }
    }

    /// Scale back to the display size, pad to what the pixel format needs, then convert to the
    /// output pixel format with the input's colour matrix and range.
    pub(super) fn encoder_filters(&self) -> String {
        let mut filters = Vec::new();
        if (self.model_width, self.model_height) != (self.width, self.height) {
            filters.push(format!(
                "scale={}:{}:flags=bicubic",
                self.width, self.height
            ));
        }
        if (self.out_width, self.out_height) != (self.width, self.height) {
            filters.push(format!(
                "pad={}:{}:0:0,fillborders=right={}:bottom={}:mode=smear",
                self.out_width,
                self.out_height,
                self.out_width - self.width,
                self.out_height - self.height
            ));
        }
        if is_rgb_pix_fmt(&self.out_pix_fmt) {
            filters.push(format!("format={}", self.out_pix_fmt));
        } else {
            let (space, range) = self.yuv_matrix_and_range();
            let range = match range {
                Some("pc") => "pc",
                _ => "tv",
            };
            filters.push(format!(
                "scale=out_color_matrix={}:out_range={range},format={}",
                swscale_matrix(space),
                self.out_pix_fmt
            ));
        }
        filters.join(",")
    }
}

fn codec_has_crf(codec: &str) -> bool {
    matches!(
        codec,
        "libx264" | "libx264rgb" | "libx265" | "libvpx-vp9" | "libvpx" | "libaom-av1" | "libsvtav1"
    )
}

fn codec_has_preset(codec: &str) -> bool {
    matches!(codec, "libx264" | "libx264rgb" | "libx265")
}

fn is_rgb_pix_fmt(pix_fmt: &str) -> bool {
    ["rgb", "bgr", "gbr", "argb", "abgr"]
        .iter()
        .any(|p| pix_fmt.starts_with(p))
}

/// swscale's name for a colour matrix, from ffprobe's `color_space`.
fn swscale_matrix(space: Option<&str>) -> &'static str {
    match space {
        Some("bt709") => "bt709",
        Some("smpte170m") => "smpte170m",
        Some("bt470bg") => "bt470",
        Some("fcc") => "fcc",
        Some("smpte240m") => "smpte240m",
        Some("bt2020nc" | "bt2020c") => "bt2020",
        // Untagged input was decoded as BT.601 (swscale's default); encode it back the same way.
        _ => "bt601",
    }
}

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}
