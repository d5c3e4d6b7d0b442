//! A real style model (mosaic, from $FRESCO_MODEL_DIR): video frames must match the same frames
//! styled as still images, and must look clearly different from the input. Skips, saying so,
//! when the model folder is not configured.

mod common;

use common::*;
use std::path::Path;

#[test]
fn mosaic_video_frames_match_mosaic_stills() {
    let Some(models) = fresco_testkit::models::real_model_dir("mosaic") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let env = [
        ("FRESCO_MODEL_DIR", p(&models)),
        ("FRESCO_CACHE_DIR", p(&cache)),
    ];

    let input = dir.path().join("clip.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48:rate=25",
            "-frames:v",
            "6",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
        &input,
    );
    let (w, h, input_frames) = decode_rgb(&input);
    assert_eq!(
        (w, h, input_frames.len()),
        (64, 48, 6),
        "unexpected test clip"
    );

    let video = dir.path().join("styled.mkv");
    let json = fresco_env(
        [
            s("run"),
            p(&input),
            s("-o"),
            p(&video),
            s("--style"),
            s("mosaic"),
            s("--no-download"),
            s("--codec"),
            s("libx264rgb"),
            s("--crf"),
            s("0"),
            s("--json"),
        ],
        &env,
    )
    .ok()
    .json();
    assert_eq!(json["model"], "mosaic", "{json}");
    assert_eq!(json["frames"], 6, "{json}");
    let (vw, vh, video_frames) = decode_rgb(&video);
    assert_eq!((vw, vh, video_frames.len()), (64, 48, 6));

    // The same frames as PNG stills, styled one by one.
    let frames_dir = dir.path().join("frames");
    std::fs::create_dir(&frames_dir).unwrap();
    let pattern = frames_dir.join("f%d.png");
    ffmpeg(
        &[
            "-i",
            &input.to_string_lossy(),
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-vf",
            "format=rgb24",
        ],
        &pattern,
    );
    for (i, (video_frame, input_frame)) in video_frames.iter().zip(&input_frames).enumerate() {
        let still = frames_dir.join(format!("f{}.png", i + 1));
        let (_, _, still_px) = decode_rgb(&still);
        assert_eq!(
            &still_px[0], input_frame,
            "frame {i}: PNG extraction differs from the decoded frame"
        );
        let styled = frames_dir.join(format!("styled{}.png", i + 1));
        fresco_env(
            [
                s("run"),
                p(&still),
                s("-o"),
                p(&styled),
                s("--style"),
                s("mosaic"),
                s("--no-download"),
            ],
            &env,
        )
        .ok();
        let (_, _, styled_px) = decode_rgb(&styled);
        let db = psnr(video_frame, &styled_px[0]);
        assert!(
            db >= 40.0,
            "frame {i}: video vs still styling PSNR {db:.2} dB < 40"
        );
        let change = psnr(video_frame, input_frame);
        assert!(
            change < 20.0,
            "frame {i}: styled frame too close to the input (PSNR {change:.2} dB)"
        );
    }
    check_digest(&models, &json);
}

/// The reported digest is that of the model file used.
fn check_digest(models: &Path, json: &serde_json::Value) {
    let want = sha256(&models.join("mosaic.onnx"));
    assert_eq!(
        json["model_digest"].as_str().map(str::to_lowercase),
        Some(want),
        "{json}"
    );
}
