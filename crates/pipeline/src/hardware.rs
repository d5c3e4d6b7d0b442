//! Hardware video decoding and encoding through ffmpeg: `--hwaccel` (ffmpeg's `-hwaccel`
//! before the decoder's input; frames come back to system memory for the RGB conversion) and
//! NVIDIA's encoders (`--codec h264_nvenc` / `hevc_nvenc`, with their own presets, and `--crf`
//! as NVENC's constant-quality level `-cq`).
//!
//! A job whose hardware does not work must fail when it is planned, not in the middle of a
//! chunk: [`check_hardware`] makes ffmpeg decode the input's first frame with the job's
//! `-hwaccel`, and encode one frame of the output's size with its hardware encoder, once, at
//! plan time. `--hwaccel auto` is not checked: ffmpeg falls back to software decoding by itself.

use std::ffi::OsString;
use std::time::Duration;

use fresco_core::EncodeSettings;
use fresco_media::process::{last_lines, ProcessError};

use crate::error::RunError;
use crate::plan::VideoSettings;
use crate::video::Tools;

/// A one-frame check may take this long (a first CUDA context can take seconds).
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// NVENC's presets in ffmpeg 5.1 and later: p1 (fastest) to p7 (best), and the older names it
/// still maps onto them.
pub const NVENC_PRESETS: &[&str] = &[
    "p1",
    "p2",
    "p3",
    "p4",
    "p5",
    "p6",
    "p7",
    "default",
    "slow",
    "medium",
    "fast",
    "hp",
    "hq",
    "bd",
    "ll",
    "llhq",
    "llhp",
    "lossless",
    "losslesshp",
];

/// Whether `codec` is one of NVIDIA's hardware encoders.
pub fn is_nvenc(codec: &str) -> bool {
    codec.ends_with("_nvenc")
}

/// Whether `codec` runs on some hardware (NVENC, VA-API, Quick Sync, AMF, V4L2, VideoToolbox):
/// such an encoder is tried once at plan time.
pub fn is_hardware_encoder(codec: &str) -> bool {
    [
        "_nvenc",
        "_vaapi",
        "_qsv",
        "_amf",
        "_v4l2m2m",
        "_videotoolbox",
    ]
    .iter()
    .any(|suffix| codec.ends_with(suffix))
}

/// Refuses encoder settings a hardware encoder does not take, with what it does take.
pub fn check_encode_settings(encode: &EncodeSettings) -> Result<(), String> {
    if is_hardware_encoder(&encode.codec) && !is_nvenc(&encode.codec) {
        // VA-API, QSV and the others need a device and frames uploaded to it
        // (`-vaapi_device`, `hwupload`), which fresco does not set up.
        return Err(format!(
            "{}: of the hardware encoders fresco drives only NVIDIA's NVENC (h264_nvenc,              hevc_nvenc, av1_nvenc); use one of those or a software encoder such as libx264",
            encode.codec
        ));
    }
    if !is_nvenc(&encode.codec) {
        return Ok(());
    }
    if let Some(preset) = &encode.preset {
        if !NVENC_PRESETS.contains(&preset.as_str()) {
            return Err(format!(
                "{} has no preset '{preset}': use p1 (fastest) to p7 (best quality), or one of \
                 {}",
                encode.codec,
                NVENC_PRESETS[7..].join(", ")
            ));
        }
    }
    if let Some(crf) = encode.crf {
        if !(1..=51).contains(&crf) {
            return Err(format!(
                "{}: --crf {crf} has no NVENC equivalent: its constant-quality level (-cq) is 1 \
                 (best) to 51 (0 would mean 'automatic'); for lossless use --preset lossless",
                encode.codec
            ));
        }
    }
    Ok(())
}

/// NVENC's rate control for `encode`: constant quality `-cq` from `--crf` (VBR with no bitrate
/// cap, so the quality level decides), and its preset. Empty for other encoders.
pub fn nvenc_args(encode: &EncodeSettings) -> Vec<OsString> {
    if !is_nvenc(&encode.codec) {
        return Vec::new();
    }
    let mut args: Vec<OsString> = Vec::new();
    if let Some(crf) = encode.crf {
        args.extend(
            ["-rc:v:0", "vbr", "-cq:v:0", &crf.to_string(), "-b:v:0", "0"]
                .iter()
                .map(OsString::from),
        );
    }
    if let Some(preset) = &encode.preset {
        args.extend([OsString::from("-preset:v:0"), OsString::from(preset)]);
    }
    args
}

/// The pixel format an NVENC encoder gets unless the user names one: 4:2:0, and for deeper
/// input 10-bit P010 where the codec has a 10-bit profile (HEVC; H.264's NVENC has none).
pub fn nvenc_default_pix_fmt(codec: &str, deep: bool) -> &'static str {
    if deep && codec == "hevc_nvenc" {
        "p010le"
    } else {
        "yuv420p"
    }
}

/// `-hwaccel METHOD` for the decoder, before its input (nothing for software decoding).
pub fn hwaccel_args(hwaccel: Option<&str>) -> Vec<OsString> {
    match hwaccel {
        Some(method) => vec![OsString::from("-hwaccel"), OsString::from(method)],
        None => Vec::new(),
    }
}

/// Tries the job's hardware once, before any chunk: decodes the input's first frame with its
/// `-hwaccel` (unless `auto`, which falls back to software by itself), and encodes one frame of
/// the output's size and pixel format with its hardware encoder. An error says which, and what
/// ffmpeg said.
pub fn check_hardware(tools: &Tools, plan: &VideoSettings) -> Result<(), RunError> {
    if let Some(method) = plan.hwaccel.as_deref().filter(|m| *m != "auto") {
        let mut args = fresco_media::process::ffmpeg_quiet();
        args.extend(hwaccel_args(Some(method)));
        args.extend(fresco_media::input::input_args(&plan.input));
        args.extend([
            OsString::from("-map"),
            OsString::from(format!("0:v:{}", plan.video_ordinal)),
            OsString::from("-frames:v"),
            OsString::from("1"),
            OsString::from("-f"),
            OsString::from("null"),
            OsString::from("-"),
        ]);
        tools.ffmpeg.output(&args, CHECK_TIMEOUT).map_err(|e| {
            crate::video::refused_or(&plan.input, e, |e| {
                let what = format!("hardware decoding (--hwaccel {method})");
                hardware_error(&plan.input, what, e)
            })
        })?;
    }
    let codec = &plan.encode.codec;
    if is_hardware_encoder(codec) {
        let mut args = fresco_media::process::ffmpeg_quiet();
        args.extend(["-f", "lavfi"].map(OsString::from));
        args.extend([
            OsString::from("-i"),
            OsString::from(format!(
                "color=c=gray:s={}x{}:r=25",
                plan.out_width, plan.out_height
            )),
            OsString::from("-frames:v"),
            OsString::from("1"),
            OsString::from("-c:v:0"),
            OsString::from(codec),
        ]);
        args.extend(nvenc_args(&plan.encode));
        args.extend([
            OsString::from("-pix_fmt:v:0"),
            OsString::from(&plan.out_pix_fmt),
            OsString::from("-f"),
            OsString::from("null"),
            OsString::from("-"),
        ]);
        tools.ffmpeg.output(&args, CHECK_TIMEOUT).map_err(|e| {
            let what = format!("the hardware encoder {codec} (--codec)");
            hardware_error(&plan.output, what, e)
        })?;
    }
    Ok(())
}

fn hardware_error(path: &std::path::Path, what: String, e: ProcessError) -> RunError {
    match e {
        ProcessError::Failed { stderr_tail, .. } | ProcessError::Timeout { stderr_tail, .. } => {
            RunError::Hardware {
                path: path.to_path_buf(),
                what,
                reason: last_lines(&stderr_tail, 3),
            }
        }
        other => RunError::from(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(codec: &str, crf: Option<u8>, preset: Option<&str>) -> EncodeSettings {
        EncodeSettings {
            codec: codec.into(),
            crf,
            preset: preset.map(Into::into),
            pix_fmt: None,
            threads: None,
        }
    }

    fn text(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn crf_becomes_nvenc_constant_quality_and_presets_pass() {
        let args = text(&nvenc_args(&settings("h264_nvenc", Some(23), Some("p5"))));
        assert_eq!(
            args,
            [
                "-rc:v:0",
                "vbr",
                "-cq:v:0",
                "23",
                "-b:v:0",
                "0",
                "-preset:v:0",
                "p5"
            ]
        );
        assert!(nvenc_args(&settings("libx264", Some(18), Some("medium"))).is_empty());
        // The defaults of `fresco run` (crf 18, preset medium) are valid for NVENC.
        assert_eq!(
            check_encode_settings(&settings("hevc_nvenc", Some(18), Some("medium"))),
            Ok(())
        );
    }

    #[test]
    fn settings_nvenc_lacks_are_refused_with_what_it_takes() {
        let err =
            check_encode_settings(&settings("h264_nvenc", Some(18), Some("veryslow"))).unwrap_err();
        assert!(
            err.contains("no preset 'veryslow'") && err.contains("p1"),
            "{err}"
        );
        let err = check_encode_settings(&settings("h264_nvenc", Some(0), None)).unwrap_err();
        assert!(err.contains("--crf 0") && err.contains("lossless"), "{err}");
        // Hardware encoders that need a device set-up fresco does not do are named as such.
        let err = check_encode_settings(&settings("hevc_vaapi", Some(18), None)).unwrap_err();
        assert!(err.contains("hevc_vaapi") && err.contains("NVENC"), "{err}");
        // x264's presets are x264's business.
        assert_eq!(
            check_encode_settings(&settings("libx264", Some(0), Some("veryslow"))),
            Ok(())
        );
    }

    fn plan_with(options: &crate::plan::VideoOptions) -> Result<VideoSettings, RunError> {
        let report = fresco_media::probe::ProbeReport::from_json(
            br#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264","width":64,
            "height":48,"pix_fmt":"yuv420p","time_base":"1/1000"}]}"#,
        )
        .unwrap();
        crate::plan::video_settings(
            std::path::Path::new("in.mp4"),
            std::path::Path::new("out.mp4"),
            &report,
            options,
        )
    }

    #[test]
    fn the_decoder_gets_hwaccel_before_its_input_and_the_encoder_nvenc_settings() {
        let options = crate::plan::VideoOptions {
            encode: settings("hevc_nvenc", Some(20), Some("p6")),
            hwaccel: Some("cuda".into()),
            ..Default::default()
        };
        let plan = plan_with(&options).unwrap();
        let dec = text(&plan.decoder_args());
        let at = |args: &[String], what: &str| args.iter().position(|a| a == what).unwrap();
        assert_eq!(dec[at(&dec, "-hwaccel") + 1], "cuda");
        assert!(at(&dec, "-hwaccel") < at(&dec, "-i"), "{dec:?}");
        assert!(!dec.iter().any(|a| a == "-hwaccel_output_format"));
        let enc = text(&plan.chunk_encoder_args(std::path::Path::new("c.nut")));
        assert_eq!(enc[at(&enc, "-cq:v:0") + 1], "20");
        assert_eq!(enc[at(&enc, "-preset:v:0") + 1], "p6");
        assert!(!enc.iter().any(|a| a == "-crf"), "{enc:?}");
        // Software decoding: no -hwaccel at all.
        let plain = plan_with(&crate::plan::VideoOptions::default()).unwrap();
        assert!(!text(&plain.decoder_args()).iter().any(|a| a == "-hwaccel"));
        // A preset NVENC lacks is refused when planning.
        let bad = crate::plan::VideoOptions {
            encode: settings("h264_nvenc", Some(18), Some("veryslow")),
            ..Default::default()
        };
        let err = plan_with(&bad).unwrap_err().to_string();
        assert!(err.contains("no preset 'veryslow'"), "{err}");
    }

    #[test]
    fn software_options_serialise_as_before() {
        // Jobs' identities hash the options' JSON: no hwaccel, no new key.
        let json = serde_json::to_string(&crate::plan::VideoOptions::default()).unwrap();
        assert!(!json.contains("hwaccel"), "{json}");
        let with = crate::plan::VideoOptions {
            hwaccel: Some("auto".into()),
            ..Default::default()
        };
        let json = serde_json::to_string(&with).unwrap();
        assert!(json.contains(r#""hwaccel":"auto""#), "{json}");
        let back: crate::plan::VideoOptions = serde_json::from_str(&json).unwrap();
        assert_eq!(back.hwaccel.as_deref(), Some("auto"));
    }

    #[test]
    fn hardware_encoders_and_pixel_formats() {
        assert!(is_hardware_encoder("h264_nvenc") && is_hardware_encoder("hevc_vaapi"));
        assert!(!is_hardware_encoder("libx264"));
        assert_eq!(nvenc_default_pix_fmt("hevc_nvenc", true), "p010le");
        assert_eq!(nvenc_default_pix_fmt("h264_nvenc", true), "yuv420p");
        assert_eq!(
            text(&hwaccel_args(Some("cuda"))),
            ["-hwaccel", "cuda"].map(String::from)
        );
        assert!(hwaccel_args(None).is_empty());
    }
}
