//! Bad inputs, outputs, tools and models: each gets its exit code, a one-line "error: " message
//! naming the file and the problem, and leaves nothing at the output path.

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// A short valid clip and the identity model in `dir`.
fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let clip = dir.join("clip.mp4");
    make_h264(&clip, "64x48", 25, 0.4);
    (clip, identity_model(dir))
}

/// `fresco run INPUT -o OUTPUT --model MODEL EXTRA...`.
fn run(input: &Path, output: &Path, model: &Path, extra: &[&str]) -> Out {
    let mut args = vec![
        s("run"),
        p(input),
        s("-o"),
        p(output),
        s("--model"),
        p(model),
    ];
    args.extend(extra.iter().map(|a| s(a)));
    fresco(args)
}

#[test]
fn missing_input_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    let out = dir.path().join("out.mp4");
    run(&dir.path().join("nope.mp4"), &out, &model, &[]).fails(3, "nope.mp4", &["no such file"]);
    assert_nothing_left(&out);
}

#[test]
fn zero_byte_input_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let out = dir.path().join("out.mp4");
    run(&empty, &out, &model, &[]).fails(4, "empty.mp4", &["empty"]);
    assert_nothing_left(&out);
}

#[test]
fn random_bytes_named_mp4_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    let junk = dir.path().join("junk.mp4");
    let bytes: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&junk, bytes).unwrap();
    let out = dir.path().join("out.mp4");
    run(&junk, &out, &model, &[]).fails(4, "junk.mp4", &["not a media file"]);
    assert_nothing_left(&out);
}

#[test]
fn truncated_videos_fail_clearly_or_warn_and_never_hang() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    for ext in ["mp4", "mkv"] {
        let full = dir.path().join(format!("full.{ext}"));
        make_h264(&full, "160x120", 25, 2.0);
        let bytes = std::fs::read(&full).unwrap();
        let cut = dir.path().join(format!("cut.{ext}"));
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let out = dir.path().join(format!("cut-out.{ext}"));
        let result = run(&cut, &out, &model, &[]);
        match result.code {
            Some(0) => {
                let lower = result.stderr.to_lowercase();
                assert!(
                    lower.contains("warning") && result.stderr.contains(&format!("cut.{ext}")),
                    "a truncated .{ext} was styled without a warning naming it:\n{}",
                    result.dump()
                );
                let frames = frame_md5s(&out).len();
                assert!(
                    frames > 0 && frames < 50,
                    "{frames} frames from half of a 50-frame clip"
                );
            }
            _ => {
                result.fails(4, &format!("cut.{ext}"), &[]);
                assert_nothing_left(&out);
            }
        }
    }
}

#[test]
fn audio_only_input_exits_4_saying_no_video_stream() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    let m4a = dir.path().join("voice.m4a");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=0.5",
            "-c:a",
            "aac",
        ],
        &m4a,
    );
    let out = dir.path().join("out.mp4");
    run(&m4a, &out, &model, &[]).fails(4, "voice.m4a", &["no video stream"]);
    assert_nothing_left(&out);
}

#[test]
fn existing_output_needs_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, model) = setup(dir.path());
    let out = dir.path().join("taken.mp4");
    std::fs::write(&out, b"keep me").unwrap();
    run(&clip, &out, &model, &[]).fails(5, "taken.mp4", &["exists", "--overwrite"]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        b"keep me",
        "the existing output was touched"
    );
    let hidden: Vec<String> = dir_names(dir.path())
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "temporary files left: {hidden:?}");

    run(&clip, &out, &model, &["--overwrite"]).ok();
    assert_eq!(
        frame_md5s(&out).len(),
        10,
        "--overwrite did not write the video"
    );
}

#[test]
fn output_into_a_missing_folder_exits_5() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, model) = setup(dir.path());
    let out = dir.path().join("no-such-dir").join("out.mp4");
    run(&clip, &out, &model, &[]).fails(5, "out.mp4", &["does not exist"]);
    assert!(
        !dir.path().join("no-such-dir").exists(),
        "the missing folder was created"
    );
}

#[test]
fn missing_ffmpeg_exits_6_with_install_hint() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, model) = setup(dir.path());
    let out = dir.path().join("out.mp4");
    let result = fresco_env(
        [
            s("run"),
            p(&clip),
            s("-o"),
            p(&out),
            s("--model"),
            p(&model),
        ],
        &[
            ("FRESCO_FFMPEG", s("/nonexistent/ffmpeg")),
            ("FRESCO_FFPROBE", s("/nonexistent/ffprobe")),
        ],
    );
    assert_eq!(result.code, Some(6), "{}", result.dump());
    let line = result
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{}", result.dump()));
    assert!(
        line.contains("apt-get install ffmpeg"),
        "no install hint:\n{}",
        result.dump()
    );
    assert!(
        line.contains("ffprobe") || line.contains("ffmpeg"),
        "{}",
        result.dump()
    );
    assert_nothing_left(&out);
}

#[test]
fn corrupt_model_file_exits_7() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, _) = setup(dir.path());
    let bad = dir.path().join("broken.onnx");
    std::fs::write(
        &bad,
        (0u32..2000)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let out = dir.path().join("out.mp4");
    run(&clip, &out, &bad, &[]).fails(7, "broken.onnx", &["onnx"]);
    assert_nothing_left(&out);
}

#[test]
fn models_that_are_not_image_to_image_exit_7_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, _) = setup(dir.path());
    for name in ["rank2", "one-channel"] {
        let model = dir.path().join(format!("{name}.onnx"));
        export_builtin(name, &model);
        let log = dir.path().join(format!("{name}-ffmpeg.log"));
        let wrapper = logging_ffmpeg(dir.path(), &log);
        let out = dir.path().join(format!("{name}-out.mp4"));
        let result = fresco_env(
            [
                s("run"),
                p(&clip),
                s("-o"),
                p(&out),
                s("--model"),
                p(&model),
            ],
            &[("FRESCO_FFMPEG", p(&wrapper))],
        );
        result.fails(7, &format!("{name}.onnx"), &["not an image-to-image model"]);
        assert_nothing_left(&out);
        let calls = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            !calls.contains("rawvideo") && !calls.contains("nut"),
            "ffmpeg decoded or encoded frames before the model was checked:\n{calls}"
        );
    }
}

#[test]
fn unknown_style_lists_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, _) = setup(dir.path());
    let out = dir.path().join("out.mp4");
    let result = fresco([
        s("run"),
        p(&clip),
        s("-o"),
        p(&out),
        s("--style"),
        s("picasso"),
    ]);
    assert!(
        matches!(result.code, Some(2) | Some(7)),
        "expected exit 2 or 7:\n{}",
        result.dump()
    );
    let line = result
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{}", result.dump()));
    assert!(line.contains("picasso"), "{}", result.dump());
    for known in [
        "mosaic",
        "candy",
        "udnie",
        "rain-princess",
        "pointilism",
        "vintage",
    ] {
        assert!(
            line.contains(known),
            "known style {known} not listed:\n{}",
            result.dump()
        );
    }
    assert_nothing_left(&out);
}

#[test]
fn missing_style_offline_says_where_to_put_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, _) = setup(dir.path());
    let (models, cache) = (dir.path().join("models"), dir.path().join("cache"));
    std::fs::create_dir_all(&models).unwrap();
    std::fs::create_dir_all(&cache).unwrap();
    let out = dir.path().join("out.mp4");
    let result = fresco_env(
        [
            s("run"),
            p(&clip),
            s("-o"),
            p(&out),
            s("--style"),
            s("udnie"),
            s("--no-download"),
        ],
        &[
            ("FRESCO_MODEL_DIR", p(&models)),
            ("FRESCO_CACHE_DIR", p(&cache)),
        ],
    );
    assert_eq!(result.code, Some(7), "{}", result.dump());
    let line = result
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{}", result.dump()));
    assert!(line.contains("udnie.onnx"), "{}", result.dump());
    assert!(
        line.contains(&models.display().to_string()) || line.contains(&cache.display().to_string()),
        "the message does not say where to put the file:\n{}",
        result.dump()
    );
    assert_nothing_left(&out);
    assert!(
        dir_names(&cache).is_empty() && dir_names(&models).is_empty(),
        "something was written"
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    // Neither --style nor --model.
    let result = fresco([s("run"), s("in.mp4"), s("-o"), p(&out)]);
    assert_eq!(result.code, Some(2), "{}", result.dump());
    // Both.
    let result = fresco([
        s("run"),
        s("in.mp4"),
        s("-o"),
        p(&out),
        s("--style"),
        s("vintage"),
        s("--model"),
        s("x.onnx"),
    ]);
    assert_eq!(result.code, Some(2), "{}", result.dump());
    let result = fresco([
        s("run"),
        s("in.mp4"),
        s("-o"),
        p(&out),
        s("--style"),
        s("vintage"),
        s("--drop-streams"),
        s("video"),
    ]);
    assert_eq!(result.code, Some(2), "{}", result.dump());
    assert_nothing_left(&out);
}
