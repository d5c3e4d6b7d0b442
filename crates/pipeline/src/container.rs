//! What the output container decides about the video: which encoder a job gets when the user
//! names none, the encoder options a container needs (no frame reordering where it stores no
//! presentation times), a one-frame trial encode at plan time that refuses an encoder the
//! container cannot hold or this ffmpeg lacks, and how an input whose picture size changes
//! mid-stream is handled.
//!
//! All of it is decided when the job is planned, so that a job that cannot finish fails
//! before any chunk is scored, and permanently: the same ffmpeg refuses the same container the
//! same way on every worker.

use std::ffi::OsString;
use std::time::Duration;

use fresco_core::settings::AUTO_CODEC;
use fresco_core::EncodeSettings;
use fresco_media::probe::FrameSize;
use fresco_media::process::ProcessError;

use crate::error::RunError;
use crate::plan::VideoSettings;
use crate::video::Tools;

/// The encoder for WebM when the user names none. VP9 rather than VP8 or AV1: players of WebM
/// take VP9, libvpx-vp9 comes with the common ffmpeg builds (Debian's, the static ones), it
/// compresses better than VP8, and it encodes far faster than libaom's AV1.
pub const WEBM_CODEC: &str = "libvpx-vp9";
/// The encoder everywhere else: H.264 plays everywhere.
pub const DEFAULT_CODEC: &str = "libx264";
/// x264's constant rate factor unless the user sets one (and that of the other encoders with
/// a CRF, as before VP9 had its own): about visually lossless.
const DEFAULT_CRF: u8 = 18;
/// VP9's constant quality level unless the user sets one. VP9's scale (0-63) is not x264's:
/// Google's guidance for on-demand VP9 is 31 at 1080p (about x264's 23); 24 comes close to
/// x264's 18. On a textured 320x240 clip (one thread): x264 CRF 18 gave 38.7 dB PSNR in
/// 1.33 MB; VP9 CRF 24 38.1 dB in 0.94 MB; VP9 CRF 31 36.7 dB in 0.35 MB.
const VP9_CRF: u8 = 24;
/// libvpx's speed for batch work: `-deadline good -cpu-used 4`. On that clip it took 2.3 s
/// (x264 medium: 1.3 s); `-cpu-used 1` took 20.8 s for 0.3 dB more. `realtime` loses far
/// more quality, and the model, not the encoder, is the slow stage of a fresco job.
const VPX_CPU_USED: &str = "4";
/// A trial encode takes well under a second; a hung one is not waited for long.
const TRIAL_TIMEOUT: Duration = Duration::from_secs(60);

/// The encoder settings a job gets for `container` (an output extension in lower case): the
/// container's encoder for [`AUTO_CODEC`], the codec's own CRF and preset where unset.
pub fn resolve_encode(requested: &EncodeSettings, container: &str) -> EncodeSettings {
    let codec = if requested.codec == AUTO_CODEC {
        default_codec(container).to_string()
    } else {
        requested.codec.clone()
    };
    let vpx = is_vpx(&codec);
    EncodeSettings {
        crf: requested
            .crf
            .or(Some(if vpx { VP9_CRF } else { DEFAULT_CRF })),
        // libvpx has no presets; its speed is VPX_CPU_USED.
        preset: requested
            .preset
            .clone()
            .or_else(|| (!vpx).then(|| "medium".to_string())),
        codec,
        ..requested.clone()
    }
}

/// `options` with the encoder settings resolved for `output`'s container (see
/// [`resolve_encode`]), as a job's spec records them: a job's identity then names the encoder
/// it gets (the same as before the container chose it, for everything but WebM), and a worker
/// of any version reads a real encoder name.
pub fn for_output(
    options: &crate::plan::VideoOptions,
    output: &std::path::Path,
) -> crate::plan::VideoOptions {
    let container = output
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    crate::plan::VideoOptions {
        encode: resolve_encode(&options.encode, &container),
        ..options.clone()
    }
}

/// The encoder for a container when the user names none.
pub fn default_codec(container: &str) -> &'static str {
    match container {
        "webm" => WEBM_CODEC,
        _ => DEFAULT_CODEC,
    }
}

fn is_vpx(codec: &str) -> bool {
    matches!(codec, "libvpx-vp9" | "libvpx")
}

/// Containers where an encoder that reorders frames (B-frames) moves them: AVI stores no
/// presentation time per frame, only a decode order at a fixed rate, so every frame is delayed
/// by the reorder depth; MPEG-TS needs decode times of zero or more, so an input that starts
/// at zero is shifted by that depth.
pub fn needs_no_reordering(container: &str) -> bool {
    matches!(container, "avi" | "ts" | "m2ts" | "mts")
}

/// Encoder options that the container or the codec needs beyond rate control and presets.
pub fn codec_args(container: &str, encode: &EncodeSettings) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    if needs_no_reordering(container) {
        // No B-frames: in AVI, x264's reordering delay shifted the first frame to 0.08 s and
        // made the video longer than its audio. Encoders without B-frames ignore this.
        args.extend(["-bf:v:0", "0"].map(OsString::from));
    }
    if is_vpx(&encode.codec) {
        if encode.crf.is_some() {
            // Constant quality needs `-b:v 0` with the CRF (FFmpeg's VP9 guide); with a
            // bitrate, the CRF is only a floor under it ("constrained quality").
            args.extend(["-b:v:0", "0"].map(OsString::from));
        }
        args.extend(
            [
                "-deadline:v:0",
                "good",
                "-cpu-used:v:0",
                VPX_CPU_USED,
                "-row-mt:v:0",
                "1",
            ]
            .map(OsString::from),
        );
    }
    args
}

/// Options of the output's muxer (other than MP4's, in [`VideoSettings`]).
pub fn muxer_args(container: &str) -> Vec<OsString> {
    match container {
        // The MPEG-TS muxer delays everything by 1.4 s unless told not to; with the input's
        // times kept (-copyts), that moved every frame of a .ts output.
        "ts" | "m2ts" | "mts" => ["-muxdelay", "0", "-muxpreload", "0"]
            .map(OsString::from)
            .to_vec(),
        _ => Vec::new(),
    }
}

/// How far the output's muxer moves every stream when it is Matroska or WebM and a copied
/// stream is Opus: Opus starts before zero (its pre-skip, e.g. -0.0065 s), ffmpeg 5.1 moves
/// all streams later by that much so nothing is negative, and its Matroska reader takes the
/// pre-skip off the Opus stream only. Every remux thus moved the video 7 ms later against its
/// audio; the joined video is placed this much earlier to land at its input times.
pub fn muxer_shift_us(
    container: &str,
    report: &fresco_media::probe::ProbeReport,
    streams: &[crate::plan::CopiedStream],
) -> i64 {
    if !matches!(container, "mkv" | "mka" | "webm") {
        return 0;
    }
    let earliest = report
        .streams
        .iter()
        .filter(|s| streams.iter().any(|c| c.index == s.index))
        .filter(|s| s.codec_name.as_deref() == Some("opus"))
        .filter_map(|s| s.start_time.as_deref()?.parse::<f64>().ok())
        .fold(0.0, f64::min);
    (-earliest * 1e6).round() as i64
}

/// Refuses, at plan, frame times that do not increase: every frame keeps its time in the
/// output, and a time that goes back (two recordings joined without re-timing, a damaged
/// file) cannot be encoded or placed; it failed after frames were scored. Names the frame.
pub fn check_frame_order(plan: &VideoSettings, pts: &[i64]) -> Result<(), RunError> {
    let Some(at) = pts.windows(2).position(|w| w[1] <= w[0]) else {
        return Ok(());
    };
    let (num, den) = plan.time_base;
    let secs = |ticks: i64| ticks as f64 * num as f64 / den as f64;
    let (before, after) = (pts[at], pts[at + 1]);
    Err(RunError::Unsupported {
        path: plan.input.clone(),
        reason: format!(
            "the frame times {} at frame {} ({:.3} s after {:.3} s; parts joined without \
             re-timing?): each frame keeps its time in the output, so they must increase; join \
             the parts with ffmpeg's concat demuxer, or re-time the video (e.g. ffmpeg -vf \
             setpts=N/FRAME_RATE/TB), first",
            if after == before { "repeat" } else { "go back" },
            at + 1,
            secs(after),
            secs(before),
        ),
    })
}

/// Encodes one frame with exactly the job's video settings into a scratch file of the output's
/// container, before any chunk is scored: an encoder this ffmpeg lacks, or one the container
/// cannot hold (x264 into WebM, FFV1 into MP4), fails here with a message that says what to
/// do, instead of when the scored chunks are joined.
pub fn check_video_encoder(tools: &Tools, plan: &VideoSettings) -> Result<(), RunError> {
    let scratch = crate::video::scratch_file(&plan.output)?;
    let mut args = fresco_media::process::ffmpeg_quiet();
    args.extend(["-y", "-f", "lavfi"].map(OsString::from));
    args.extend([
        OsString::from("-i"),
        // A source of the frames the encoder gets: the model's size, in the pipes' format.
        OsString::from(format!(
            "color=c=gray:s={}x{}:r=25,format={}",
            plan.model_width,
            plan.model_height,
            plan.raw_format.ffmpeg_name()
        )),
        OsString::from("-frames:v"),
        OsString::from("1"),
    ]);
    args.extend(plan.video_encode_args());
    args.push(scratch.path().as_os_str().to_os_string());
    match tools.ffmpeg.output(&args, TRIAL_TIMEOUT) {
        Ok(_) => Ok(()),
        Err(ProcessError::Failed { stderr_tail, .. }) => Err(RunError::EncoderUnusable {
            path: plan.output.clone(),
            reason: encoder_refusal(
                &plan.encode.codec,
                &plan.container(),
                &strip_scratch(&stderr_tail, scratch.path()),
            ),
        }),
        Err(other) => Err(RunError::Tool(other)),
    }
}

fn strip_scratch(text: &str, scratch: &std::path::Path) -> String {
    text.replace(&format!("{}: ", scratch.display()), "")
}

/// What to tell the user when a one-frame encode with `codec` into `.container` failed.
pub fn encoder_refusal(codec: &str, container: &str, stderr: &str) -> String {
    // The first line is the muxer's or encoder's own reason; ffmpeg's generic lines follow.
    let said = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| match l.split_once("] ") {
            Some((tag, rest)) if l.starts_with('[') && !tag.contains(']') => rest,
            _ => l,
        })
        .unwrap_or("no message")
        .to_string();
    if stderr.contains("Unknown encoder") || stderr.contains("Encoder not found") {
        return format!(
            "this ffmpeg has no encoder '{codec}' (--codec); `ffmpeg -encoders` lists those it has"
        );
    }
    if stderr.contains("Unable to find a suitable output format") {
        return format!(
            "ffmpeg knows no container for the extension .{container}; name the output .mp4, \
             .mkv, .webm, .mov or .avi"
        );
    }
    let not_in_container = stderr.contains("not currently supported in container")
        || stderr.contains("are supported for WebM")
        || stderr.contains("Invalid or not supported codec type")
        || stderr.contains("codec not supported")
        // Audio-only or picture containers: .mp3 drops the video, .gif takes only GIF.
        || stderr.contains("does not contain any stream")
        || stderr.contains("supports only")
        || stderr.contains("Unsupported codec id");
    if not_in_container {
        let suggestion = match container {
            _ if codec == default_codec(container) => format!(
                "{codec} is fresco's default, and this container cannot hold it: name an \
                 encoder it takes with --codec, or choose .mkv or .mp4"
            ),
            "webm" => format!("leave --codec out for {WEBM_CODEC}, or name libvpx or libaom-av1"),
            _ => format!(
                "leave --codec out for {}, or choose a container that holds it (e.g. .mkv)",
                default_codec(container)
            ),
        };
        let flag = if codec == default_codec(container) {
            ""
        } else {
            " (--codec)"
        };
        return format!(
            "a .{container} file cannot hold video from the encoder {codec}{flag}: {suggestion} (ffmpeg: {said})"
        );
    }
    format!(
        "the encoder {codec} (--codec) refused the job's settings for a .{container} file: {said}"
    )
}

/// Whether ffmpeg's message says the output's muxer refused what it was given (a stream or a
/// tag the container cannot take): a failure that repeats on every try, unlike a full disk
/// or a killed process.
pub fn muxer_refused(stderr: &str) -> bool {
    let refusals = [
        "not currently supported in container",
        "are supported for WebM",
        "Invalid or not supported codec type",
        "has no filename tag",
        "has no mimetype tag",
    ];
    refusals.iter().any(|r| stderr.contains(r))
        || (stderr.contains("Could not write header") && stderr.contains("Invalid argument"))
}

/// Makes a plan whose input changes picture size mid-stream style every frame at the first
/// size: the decoder scales each frame to it (after a change ffmpeg rebuilds its filters, and
/// the scale keeps the frames on the pipe one size), and a note says where the size changed.
/// `sizes` lists the first frame's size and each change, as the frame scan found them; `pts`
/// the frame times, for the note.
pub fn handle_size_changes(plan: &mut VideoSettings, sizes: &[FrameSize], pts: &[i64]) {
    let Some(first) = sizes.first() else {
        return;
    };
    let coded = if plan.input_rotation() % 180 == 90 {
        (plan.height, plan.width)
    } else {
        (plan.width, plan.height)
    };
    if sizes.len() < 2 {
        if (first.width, first.height) != coded {
            // The container declared another size than the frames have: they are scaled to
            // the declared one, which the plan's sizes and pipes are made for.
            plan.scale_every_frame = true;
            plan.notes.push(format!(
                "the frames are {}x{}, not the {}x{} the container declares: they are scaled to it",
                first.width, first.height, coded.0, coded.1
            ));
        }
        return;
    }
    plan.scale_every_frame = true;
    let (num, den) = plan.time_base;
    let start = pts.first().copied().unwrap_or(0);
    let changes: Vec<String> = sizes
        .windows(2)
        .map(|w| {
            let at = pts.get(w[1].frame as usize).copied().unwrap_or(start);
            let secs = (at - start) as f64 * num as f64 / den as f64;
            format!(
                "to {}x{} at frame {} ({secs:.3} s)",
                w[1].width, w[1].height, w[1].frame
            )
        })
        .collect();
    plan.notes.push(format!(
        "the picture size changes mid-stream (from {}x{} {}): every frame is scaled to {}x{} \
         (stretched where the shape differs)",
        first.width,
        first.height,
        changes.join(", "),
        plan.width,
        plan.height
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requested(codec: &str) -> EncodeSettings {
        EncodeSettings {
            codec: codec.into(),
            ..EncodeSettings::default()
        }
    }

    #[test]
    fn the_container_chooses_the_encoder_and_its_defaults() {
        let webm = resolve_encode(&EncodeSettings::default(), "webm");
        assert_eq!(webm.codec, "libvpx-vp9");
        assert_eq!(webm.crf, Some(VP9_CRF));
        assert_eq!(webm.preset, None);
        for container in ["mp4", "mkv", "avi", "mov", ""] {
            let other = resolve_encode(&EncodeSettings::default(), container);
            assert_eq!(other.codec, "libx264", "{container}");
            assert_eq!(other.crf, Some(18));
            assert_eq!(other.preset.as_deref(), Some("medium"));
        }
        // What the user names is kept.
        let mut named = requested("libx265");
        named.crf = Some(22);
        named.preset = Some("slow".into());
        assert_eq!(resolve_encode(&named, "webm"), named);
        assert_eq!(
            resolve_encode(&requested("libvpx-vp9"), "mkv").crf,
            Some(24)
        );
        // A job's spec records the resolved settings: for an MP4, exactly the settings (and
        // so the job identity) that the old fixed default gave.
        let spec = for_output(
            &crate::plan::VideoOptions::default(),
            std::path::Path::new("a.MP4"),
        );
        assert_eq!(
            serde_json::to_value(&spec.encode).unwrap(),
            serde_json::json!({"codec": "libx264", "crf": 18, "preset": "medium",
                               "pix_fmt": null, "threads": null})
        );
    }

    #[test]
    fn avi_gets_no_reordering_and_vp9_gets_constant_quality() {
        let x264 = resolve_encode(&EncodeSettings::default(), "avi");
        let args: Vec<String> = codec_args("avi", &x264)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args, ["-bf:v:0", "0"]);
        assert!(codec_args("mp4", &x264).is_empty());
        let vp9 = resolve_encode(&EncodeSettings::default(), "webm");
        let args: Vec<String> = codec_args("webm", &vp9)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.windows(2).any(|w| w == ["-b:v:0", "0"]), "{args:?}");
        assert!(
            args.windows(2).any(|w| w == ["-cpu-used:v:0", "4"]),
            "{args:?}"
        );
    }

    #[test]
    fn opus_into_matroska_places_the_video_earlier_by_its_pre_skip() {
        use crate::plan::{video_settings, VideoOptions};
        use std::path::Path;
        let report = fresco_media::probe::ProbeReport::from_json(
            br#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264","width":64,
            "height":48,"time_base":"1/1000","start_time":"0.007000"},
            {"index":1,"codec_type":"audio","codec_name":"opus","start_time":"-0.006500"},
            {"index":2,"codec_type":"audio","codec_name":"aac","start_time":"-0.021333"}]}"#,
        )
        .unwrap();
        let plan = |out: &str, options: &VideoOptions| {
            video_settings(Path::new("in.mkv"), Path::new(out), &report, options).unwrap()
        };
        let all = VideoOptions::default();
        assert_eq!(plan("o.webm", &all).muxer_shift_us, 6500);
        assert_eq!(plan("o.mkv", &all).muxer_shift_us, 6500);
        // MP4 has edit lists and no such shift; AAC's priming is not taken off by the reader.
        assert_eq!(plan("o.mp4", &all).muxer_shift_us, 0);
        let no_audio = VideoOptions {
            drop_streams: vec![fresco_core::StreamKind::Audio],
            ..Default::default()
        };
        assert_eq!(plan("o.mkv", &no_audio).muxer_shift_us, 0);
        let p = plan("o.mkv", &all);
        let text = |args: Vec<OsString>| {
            args.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let joined = text(p.assemble_args(Path::new("l"), 7000, Path::new("o.mkv")));
        assert!(joined.contains("-itsoffset 500us"), "{joined}");
        let piped = text(p.encoder_args(Path::new("o.mkv")));
        assert!(
            piped.starts_with("-nostdin -hide_banner -v error -y -itsoffset -6500us -f nut"),
            "{piped}"
        );
    }

    #[test]
    fn muxer_refusals_are_told_from_passing_trouble() {
        assert!(muxer_refused(
            "[matroska @ 0x1] Attachment stream 3 has no filename tag.\nCould not write header \
             for output file #0 (incorrect codec parameters ?): Invalid argument"
        ));
        assert!(muxer_refused("Could not find tag for codec ass in stream #2, codec not currently supported in container"));
        assert!(!muxer_refused(
            "Could not write header for output file #0 (incorrect codec parameters ?): No space left on device"
        ));
        assert!(!muxer_refused("Error writing trailer: Input/output error"));
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let missing = encoder_refusal("libfoo", "mkv", "Unknown encoder 'libfoo'\n");
        assert!(missing.contains("no encoder 'libfoo'"), "{missing}");
        let webm = encoder_refusal(
            "libx264",
            "webm",
            "[webm @ 0x1] Only VP8 or VP9 or AV1 video and Vorbis or Opus audio and WebVTT subtitles are supported for WebM.\nCould not write header",
        );
        assert!(
            webm.contains(".webm file cannot hold video from the encoder libx264"),
            "{webm}"
        );
        assert!(webm.contains("leave --codec out for libvpx-vp9"), "{webm}");
        let mp4 = encoder_refusal(
            "ffv1",
            "mp4",
            "Could not find tag for codec ffv1 in stream #0, codec not currently supported in container",
        );
        assert!(
            mp4.contains(".mp4 file cannot hold video from the encoder ffv1"),
            "{mp4}"
        );
        assert!(mp4.contains("(e.g. .mkv)"), "{mp4}");
        let xyz = encoder_refusal(
            "libx264",
            "xyz",
            "Unable to find a suitable output format for '/tmp/fresco-streamcheck-1.xyz'",
        );
        assert!(xyz.contains("no container for the extension .xyz"), "{xyz}");
        let ogv = encoder_refusal(
            "libx264",
            "ogv",
            "[ogg @ 0x1] Unsupported codec id in stream 0\nCould not write header for output file #0 (incorrect codec parameters ?): Invalid argument",
        );
        assert!(
            ogv.contains("name an encoder it takes with --codec"),
            "{ogv}"
        );
        let mp3 = encoder_refusal(
            "libx264",
            "mp3",
            "Output file #0 does not contain any stream",
        );
        assert!(mp3.contains(".mp3 file cannot hold video"), "{mp3}");
    }
}
