//! Decisions about one video, made before any frame is decoded: which stream, what size the
//! model sees, which pixel format and colour tags the output gets, which other streams are
//! copied, and the ffmpeg arguments that follow (in `plan/ffmpeg_args.rs`). Pure functions over
//! the probe report, so each decision is tested without running anything.

use std::path::{Path, PathBuf};

use fresco_core::{EncodeSettings, StreamKind};
// What the user asked for lives with the job's spec; plans are made from it here.
pub use fresco_core::VideoOptions;
use fresco_media::nut::RawPixelFormat;
use fresco_media::probe::{ProbeReport, StreamInfo};

use crate::error::RunError;

mod ffmpeg_args;

/// A non-video stream copied from the input.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CopiedStream {
    pub index: u32,
    pub kind: StreamKind,
    /// "audio stream #1 (aac)", for messages.
    pub label: String,
}

/// Everything decided about one video.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct VideoSettings {
    pub input: PathBuf,
    pub output: PathBuf,
    /// `0:v:N`.
    pub video_ordinal: usize,
    pub video_index: u32,
    /// The video stream's time base; frame timestamps are in it.
    pub time_base: (u64, u64),
    /// Displayed size (after rotation).
    pub width: u32,
    pub height: u32,
    /// Size the model sees (smaller with `--max-side`).
    pub model_width: u32,
    pub model_height: u32,
    /// Size of the encoded output (display size, padded where the pixel format needs it).
    pub out_width: u32,
    pub out_height: u32,
    /// Samples on the pipes: 8-bit, or 16-bit for deeper sources.
    pub raw_format: RawPixelFormat,
    pub out_pix_fmt: String,
    pub streams: Vec<CopiedStream>,
    /// Things the user should be told (padding, dropped streams, bit depth).
    pub notes: Vec<String>,
    pub encode: EncodeSettings,
    /// The decoder's `-hwaccel` method (`None`: software).
    #[serde(default)]
    pub hwaccel: Option<String>,
    /// The input's picture size changes mid-stream: the decoder scales every frame to the
    /// model's size ([`crate::container::handle_size_changes`]).
    #[serde(default)]
    pub scale_every_frame: bool,
    /// How far the output's muxer will move every stream (see
    /// [`crate::container::muxer_shift_us`]); the joined video is placed that much earlier.
    #[serde(default)]
    pub muxer_shift_us: i64,
    /// `--temporal`: scored frames are blended along the input's flow, and each chunk starts
    /// [`fresco_temporal::BlendSettings::warm_up_frames`] early (docs/temporal.md).
    #[serde(default)]
    pub temporal: bool,
    colour: ColourTags,
    rotation: i32,
}

/// Which of the input's frames a decoder delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameWindow {
    /// Frames `start..end` by decode order, decoding from the beginning: exact for any input,
    /// slow for late chunks of long inputs.
    Numbers { start: u64, end: u64 },
    /// Frames whose time is in `from..to` (seconds, on the input's own clock; `None`: open),
    /// after a fast seek to `seek_secs` (relative to the input's start, 0: no seek).
    Times {
        seek_secs: f64,
        from_secs: Option<f64>,
        to_secs: Option<f64>,
    },
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct ColourTags {
    primaries: Option<String>,
    transfer: Option<String>,
    space: Option<String>,
    range: Option<String>,
}

/// Decides how to style `input` into `output`.
pub fn video_settings(
    input: &Path,
    output: &Path,
    report: &ProbeReport,
    options: &VideoOptions,
) -> Result<VideoSettings, RunError> {
    let (video, coded_w, coded_h) = styleable_video(input, report)?;
    let video_ordinal = report.video_stream_ordinal().unwrap_or(0);
    let rotation = video.rotation();
    let (width, height) = if rotation % 180 == 90 {
        (coded_h, coded_w)
    } else {
        (coded_w, coded_h)
    };
    let time_base = video.time_base().unwrap_or((1, 90_000));
    let container = output
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let encode = crate::container::resolve_encode(&options.encode, &container);
    crate::hardware::check_encode_settings(&encode).map_err(|reason| RunError::Unsupported {
        path: output.to_path_buf(),
        reason,
    })?;

    let mut notes = Vec::new();
    let deep = video.bit_depth() > 8;
    let raw_format = if deep {
        RawPixelFormat::Rgb48le
    } else {
        RawPixelFormat::Rgb24
    };
    let out_pix_fmt = output_pix_fmt(options, &encode, video, (width, height), &mut notes);
    let (model_width, model_height) = match options.model_size {
        Some(fixed) => fixed_model_size((width, height), fixed, &mut notes),
        None => model_size(width, height, options.max_side, &mut notes),
    };
    let (out_width, out_height) = padded_size(width, height, &out_pix_fmt, &mut notes);
    let streams = copied_streams(report, video, options, &mut notes);

    let muxer_shift_us = crate::container::muxer_shift_us(&container, report, &streams);
    Ok(VideoSettings {
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        video_ordinal,
        video_index: video.index,
        time_base,
        width,
        height,
        model_width,
        model_height,
        out_width,
        out_height,
        raw_format,
        out_pix_fmt,
        streams,
        notes,
        encode,
        hwaccel: options.hwaccel.clone(),
        scale_every_frame: false,
        muxer_shift_us,
        temporal: options.temporal,
        colour: colour_tags(video),
        rotation,
    })
}

/// The video stream to style, with its coded size; an error for an input without one, an HDR
/// one, or one without a frame size.
fn styleable_video<'a>(
    input: &Path,
    report: &'a ProbeReport,
) -> Result<(&'a StreamInfo, u32, u32), RunError> {
    let video = report.video_stream().ok_or_else(|| RunError::NoVideo {
        path: input.to_path_buf(),
        streams: describe_streams(report),
    })?;
    if let Some(transfer) = video.hdr_transfer() {
        return Err(RunError::Unsupported {
            path: input.to_path_buf(),
            reason: format!(
                "HDR video (transfer {transfer}) is not supported: the style models expect SDR \
                 colours and fresco does no tone mapping; convert it to SDR first (e.g. ffmpeg's \
                 zscale/tonemap filters)"
            ),
        });
    }
    let (Some(coded_w), Some(coded_h)) = (video.width, video.height) else {
        return Err(RunError::NotMedia {
            path: input.to_path_buf(),
            reason: "the video stream has no frame size".into(),
        });
    };
    if coded_w == 0 || coded_h == 0 {
        return Err(RunError::NotMedia {
            path: input.to_path_buf(),
            reason: format!("the video stream has an empty frame size {coded_w}x{coded_h}"),
        });
    }
    Ok((video, coded_w, coded_h))
}

/// The output's pixel format: the one named, or a default for the codec and the input (with a
/// note when deep samples are cut to 8 bits).
fn output_pix_fmt(
    options: &VideoOptions,
    encode: &EncodeSettings,
    video: &StreamInfo,
    (width, height): (u32, u32),
    notes: &mut Vec<String>,
) -> String {
    let deep = video.bit_depth() > 8;
    let out_pix_fmt = match &options.encode.pix_fmt {
        Some(named) => named.clone(),
        None => {
            let (chosen, note) =
                crate::pix_fmt::choose_default(&encode.codec, deep, video, width, height);
            notes.extend(note);
            chosen
        }
    };
    if deep && fresco_media::probe::pix_fmt_bit_depth(&out_pix_fmt) == 8 {
        notes.push(format!(
            "the input has {} bits per sample; the output pixel format {out_pix_fmt} keeps 8",
            video.bit_depth()
        ));
    }
    out_pix_fmt
}

/// The size the model sees: the display size, scaled down to `max_side` (`--max-side`).
fn model_size(
    width: u32,
    height: u32,
    max_side: Option<u32>,
    notes: &mut Vec<String>,
) -> (u32, u32) {
    match max_side {
        Some(max) if max > 0 && width.max(height) > max => {
            let scale = max as f64 / width.max(height) as f64;
            let w = ((width as f64 * scale).round() as u32).max(1);
            let h = ((height as f64 * scale).round() as u32).max(1);
            notes.push(format!(
                "the model sees {w}x{h} frames (--max-side {max}); results are scaled back to {width}x{height}"
            ));
            (w, h)
        }
        _ => (width, height),
    }
}

/// The size of a model that fixes its input's: every frame is decoded at that size and the
/// results are scaled back to the display size (`--max-side` does not apply).
fn fixed_model_size(
    (width, height): (u32, u32),
    (model_width, model_height): (u32, u32),
    notes: &mut Vec<String>,
) -> (u32, u32) {
    if (model_width, model_height) != (width, height) {
        notes.push(format!(
            "the model takes {model_width}x{model_height} frames; results are scaled back to \
             {width}x{height}"
        ));
    }
    (model_width, model_height)
}

/// The encoded size: the display size padded to what `out_pix_fmt`'s chroma subsampling needs.
fn padded_size(width: u32, height: u32, out_pix_fmt: &str, notes: &mut Vec<String>) -> (u32, u32) {
    let (sub_w, sub_h) = chroma_subsampling(out_pix_fmt);
    let out_width = round_up(width, sub_w);
    let out_height = round_up(height, sub_h);
    if (out_width, out_height) != (width, height) {
        notes.push(format!(
            "{width}x{height} does not fit {out_pix_fmt}, which needs {}sizes: padded to \
             {out_width}x{out_height} by repeating the edge pixels (use --pix-fmt yuv444p, with \
             an encoder that has it, to keep the exact size)",
            if sub_w > 1 && sub_h > 1 {
                "even "
            } else if sub_w > 1 {
                "an even width in "
            } else {
                "an even height in "
            }
        ));
    }
    (out_width, out_height)
}

/// The input's other streams that are copied: not other video streams, streams of unknown
/// type, or kinds the user drops (each with a note).
fn copied_streams(
    report: &ProbeReport,
    video: &StreamInfo,
    options: &VideoOptions,
    notes: &mut Vec<String>,
) -> Vec<CopiedStream> {
    let mut streams = Vec::new();
    for stream in &report.streams {
        if stream.index == video.index {
            continue;
        }
        let codec = stream
            .codec_name
            .clone()
            .unwrap_or_else(|| "unknown codec".into());
        if stream.codec_type == "video" {
            notes.push(format!(
                "video stream #{} ({codec}{}) is not carried over: only one video stream is styled",
                stream.index,
                if stream.is_attached_picture() {
                    ", cover picture"
                } else {
                    ""
                }
            ));
            continue;
        }
        let Some(kind) = StreamKind::from_codec_type(&stream.codec_type) else {
            notes.push(format!(
                "stream #{} ({}) of unknown type is not carried over",
                stream.index, stream.codec_type
            ));
            continue;
        };
        let label = format!("{kind} stream #{} ({codec})", stream.index);
        if options.drop_streams.contains(&kind) {
            notes.push(format!("{label} dropped (--drop-streams)"));
            continue;
        }
        streams.push(CopiedStream {
            index: stream.index,
            kind,
            label,
        });
    }
    streams
}

fn colour_tags(video: &StreamInfo) -> ColourTags {
    let known = |v: &Option<String>| {
        v.clone()
            .filter(|s| !s.is_empty() && s != "unknown" && s != "reserved")
    };
    ColourTags {
        primaries: known(&video.color_primaries),
        transfer: known(&video.color_transfer),
        space: known(&video.color_space),
        range: known(&video.color_range),
    }
}

/// The pixel format an encoder gets unless the user names one: 4:2:0 plays everywhere.
pub fn default_pix_fmt(codec: &str, deep: bool) -> &'static str {
    match (codec, deep) {
        ("libx264rgb", _) => "rgb24",
        ("ffv1", false) => "bgr0",
        ("ffv1", true) => "gbrp16le",
        ("prores_ks" | "prores" | "prores_aw", _) => "yuv422p10le",
        (nvenc, deep) if crate::hardware::is_nvenc(nvenc) => {
            crate::hardware::nvenc_default_pix_fmt(nvenc, deep)
        }
        (_, false) => "yuv420p",
        (_, true) => "yuv420p10le",
    }
}

/// Horizontal and vertical chroma subsampling factors of a pixel format.
pub fn chroma_subsampling(pix_fmt: &str) -> (u32, u32) {
    if pix_fmt.contains("420")
        || pix_fmt.starts_with("nv12")
        || pix_fmt.starts_with("nv21")
        || pix_fmt.starts_with("p01")
    {
        (2, 2)
    } else if pix_fmt.contains("422")
        || pix_fmt.starts_with("nv16")
        || pix_fmt.starts_with("yuyv")
        || pix_fmt.starts_with("uyvy")
    {
        (2, 1)
    } else if pix_fmt.contains("411") {
        (4, 1)
    } else if pix_fmt.contains("440") {
        (1, 2)
    } else if pix_fmt.contains("410") {
        (4, 4)
    } else {
        (1, 1)
    }
}

fn round_up(v: u32, m: u32) -> u32 {
    v.div_ceil(m) * m
}

fn describe_streams(report: &ProbeReport) -> String {
    let parts: Vec<String> = report
        .streams
        .iter()
        .map(|s| {
            let codec = s.codec_name.as_deref().unwrap_or("unknown");
            if s.is_attached_picture() {
                format!("a cover picture ({codec})")
            } else {
                format!(
                    "{} ({codec})",
                    if s.codec_type.is_empty() {
                        "unknown"
                    } else {
                        &s.codec_type
                    }
                )
            }
        })
        .collect();
    if parts.is_empty() {
        "no streams".into()
    } else {
        parts.join(", ")
    }
}

impl VideoSettings {
    /// Frame size in bytes on the pipes.
    pub fn model_frame_bytes(&self) -> usize {
        self.model_width as usize * self.model_height as usize * self.raw_format.bytes_per_pixel()
    }

    /// Output container extension (for messages).
    pub fn container(&self) -> String {
        self.output
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default()
    }

    /// Rotation of the input (already applied to the frames).
    pub fn input_rotation(&self) -> i32 {
        self.rotation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(json: &str) -> ProbeReport {
        ProbeReport::from_json(json.as_bytes()).unwrap()
    }

    fn one_video(w: u32, h: u32, extra: &str) -> ProbeReport {
        report(&format!(
            r#"{{"streams":[{{"index":0,"codec_type":"video","codec_name":"h264","width":{w},"height":{h},
            "pix_fmt":"yuv420p","time_base":"1/12800"{extra}}},
            {{"index":1,"codec_type":"audio","codec_name":"aac"}},
            {{"index":2,"codec_type":"subtitle","codec_name":"subrip"}}],
            "format":{{"format_name":"mov,mp4","duration":"2.0"}}}}"#
        ))
    }

    fn plan(r: &ProbeReport, options: &VideoOptions) -> VideoSettings {
        video_settings(Path::new("in.mp4"), Path::new("out.mp4"), r, options).unwrap()
    }

    #[test]
    fn odd_sizes_are_kept_by_default_and_padded_for_a_named_420() {
        let r = one_video(321, 241, "");
        let p = plan(&r, &VideoOptions::default());
        assert_eq!((p.out_width, p.out_height), (321, 241));
        assert_eq!(p.out_pix_fmt, "yuv444p");
        assert!(!p.encoder_filters().contains("pad"));

        let mut options = VideoOptions::default();
        options.encode.pix_fmt = Some("yuv420p".into());
        let p = plan(&r, &options);
        assert_eq!((p.out_width, p.out_height), (322, 242));
        assert!(
            p.notes.iter().any(|n| n.contains("padded to 322x242")),
            "{:?}",
            p.notes
        );
        assert!(p.encoder_filters().contains("fillborders=right=1:bottom=1"));

        let mut options = VideoOptions::default();
        options.encode.pix_fmt = Some("yuv444p".into());
        let p = plan(&r, &options);
        assert_eq!((p.out_width, p.out_height), (321, 241));
        assert!(!p.encoder_filters().contains("pad"));
    }

    #[test]
    fn rotation_swaps_the_displayed_size() {
        let r = one_video(
            320,
            240,
            r#","side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]"#,
        );
        let p = plan(&r, &VideoOptions::default());
        assert_eq!((p.width, p.height), (240, 320));
        assert_eq!(p.input_rotation(), 270);
    }

    #[test]
    fn a_fixed_model_size_is_decoded_and_scaled_back_whatever_max_side_says() {
        let r = one_video(97, 61, "");
        let options = VideoOptions {
            max_side: Some(32),
            model_size: Some((64, 64)),
            ..Default::default()
        };
        let p = plan(&r, &options);
        assert_eq!((p.model_width, p.model_height), (64, 64));
        assert_eq!((p.width, p.height), (97, 61));
        let dec = p.decoder_args().join(std::ffi::OsStr::new(" "));
        assert!(dec.to_string_lossy().contains("scale=64:64"), "{dec:?}");
        assert!(p.encoder_filters().starts_with("scale=97:61"));
        assert!(
            p.notes.iter().any(|n| n.contains("takes 64x64")),
            "{:?}",
            p.notes
        );
        // A model whose size is the frame's changes nothing.
        let options = VideoOptions {
            model_size: Some((97, 61)),
            ..Default::default()
        };
        let same = plan(&r, &options);
        let plain = plan(&r, &VideoOptions::default());
        assert_eq!((same.model_width, same.model_height), (97, 61));
        assert_eq!(same.encoder_filters(), plain.encoder_filters());
        assert_eq!(same.decoder_args(), plain.decoder_args());
        assert_eq!(same.notes, plain.notes);
    }

    #[test]
    fn max_side_scales_the_model_size_only() {
        let r = one_video(1920, 1080, "");
        let options = VideoOptions {
            max_side: Some(640),
            ..Default::default()
        };
        let p = plan(&r, &options);
        assert_eq!((p.model_width, p.model_height), (640, 360));
        assert_eq!((p.out_width, p.out_height), (1920, 1080));
        let dec = p.decoder_args().join(std::ffi::OsStr::new(" "));
        assert!(dec.to_string_lossy().contains("scale=640:360"));
        assert!(p.encoder_filters().starts_with("scale=1920:1080"));
    }

    #[test]
    fn dropped_streams_are_not_mapped_and_are_reported() {
        let r = one_video(64, 64, "");
        let options = VideoOptions {
            drop_streams: vec![StreamKind::Subtitle],
            ..Default::default()
        };
        let p = plan(&r, &options);
        assert_eq!(p.streams.len(), 1);
        assert_eq!(p.streams[0].kind, StreamKind::Audio);
        assert!(p
            .notes
            .iter()
            .any(|n| n.contains("subtitle stream #2 (subrip) dropped")));
        let args: Vec<String> = p
            .encoder_args(Path::new("t.mp4"))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.windows(2).any(|w| w == ["-map", "1:1"]));
        assert!(!args.windows(2).any(|w| w == ["-map", "1:2"]));
        assert!(args
            .windows(2)
            .any(|w| w == ["-video_track_timescale", "12800"]));
    }

    #[test]
    fn hdr_and_audio_only_inputs_are_refused_with_reasons() {
        let hdr = one_video(64, 64, r#","color_transfer":"smpte2084""#);
        let err = video_settings(
            Path::new("a.mkv"),
            Path::new("b.mkv"),
            &hdr,
            &VideoOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("HDR"), "{err}");
        let audio = report(r#"{"streams":[{"index":0,"codec_type":"audio","codec_name":"aac"}]}"#);
        let err = video_settings(
            Path::new("a.m4a"),
            Path::new("b.mp4"),
            &audio,
            &VideoOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no video stream"), "{err}");
        assert!(err.to_string().contains("audio (aac)"), "{err}");
    }

    #[test]
    fn ten_bit_input_uses_16_bit_pipes_and_a_10_bit_output() {
        let r = report(
            r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"hevc","width":64,"height":64,
            "pix_fmt":"yuv420p10le","time_base":"1/1000","color_space":"bt709","color_range":"tv"}]}"#,
        );
        let p = plan(&r, &VideoOptions::default());
        assert_eq!(p.raw_format, RawPixelFormat::Rgb48le);
        assert_eq!(p.out_pix_fmt, "yuv420p10le");
        assert!(p
            .encoder_filters()
            .contains("out_color_matrix=bt709:out_range=tv"));
    }

    #[test]
    fn an_rgb_input_is_encoded_to_yuv_as_bt709_at_limited_range() {
        // ffv1 in bgr0, as ffprobe reports it: the matrix `gbr`, full range.
        let r = report(
            r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"ffv1","width":64,"height":48,
            "pix_fmt":"bgr0","time_base":"1/1000","color_space":"gbr","color_range":"pc"}]}"#,
        );
        let p = plan(&r, &VideoOptions::default());
        // Full chroma, as the RGB source has.
        assert_eq!(p.out_pix_fmt, "yuv444p");
        assert!(p
            .encoder_filters()
            .contains("out_color_matrix=bt709:out_range=tv"));
        let args: Vec<String> = p
            .video_encode_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let tag = |name: &str| {
            let i = args.iter().position(|a| a == name).unwrap();
            args[i + 1].clone()
        };
        assert_eq!(tag("-colorspace:v:0"), "bt709", "{args:?}");
        assert_eq!(tag("-color_range:v:0"), "tv", "{args:?}");
        assert!(!args.iter().any(|a| a == "gbr"), "{args:?}");
    }

    #[test]
    fn subsampling_table() {
        assert_eq!(chroma_subsampling("yuv420p"), (2, 2));
        assert_eq!(chroma_subsampling("yuv422p10le"), (2, 1));
        assert_eq!(chroma_subsampling("yuv444p"), (1, 1));
        assert_eq!(chroma_subsampling("rgb24"), (1, 1));
        assert_eq!(chroma_subsampling("nv12"), (2, 2));
    }
}
