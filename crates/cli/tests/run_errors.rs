//! Bad inputs and outputs: each gets its exit code, a one-line "error: " message naming the
//! file and the problem, and leaves nothing at the output path.

mod common;

use common::*;
use std::path::Path;

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
fn output_into_an_unwritable_folder_exits_5() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, model) = setup(dir.path());
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(locked.join("probe"), b"").is_ok() {
        eprintln!(
            "skipping the read-only folder case: running as root, permissions are not enforced"
        );
    } else {
        let out = locked.join("out.mp4");
        run(&clip, &out, &model, &[]).fails(5, "out.mp4", &["cannot write"]);
        assert!(
            dir_names(&locked).is_empty(),
            "files left: {:?}",
            dir_names(&locked)
        );
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    // /proc refuses new files even to root.
    if Path::new("/proc/self").exists() {
        run(&clip, Path::new("/proc/fresco-test-out.mp4"), &model, &[]).fails(
            5,
            "fresco-test-out.mp4",
            &["cannot write"],
        );
    }
}

#[test]
fn a_missing_input_among_several_fails_before_creating_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, model) = setup(dir.path());
    let outdir = dir.path().join("outdir");
    let result = fresco([
        s("run"),
        p(&clip),
        s("nope.mp4"),
        s("-o"),
        p(&outdir),
        s("--model"),
        p(&model),
    ]);
    result.fails(3, "nope.mp4", &["no such file"]);
    assert!(
        !outdir.exists(),
        "the output folder was created although the run failed before any work"
    );
}

#[test]
fn hdr_input_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    let hdr = dir.path().join("hdr.mkv");
    make_video(
        &hdr,
        "64x48",
        25,
        0.2,
        &[
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-color_primaries",
            "bt2020",
            "-color_trc",
            "smpte2084",
            "-colorspace",
            "bt2020nc",
        ],
    );
    assert_eq!(
        streams_of(&hdr, "video")[0]["color_transfer"],
        "smpte2084",
        "the test clip is not tagged HDR"
    );
    let out = dir.path().join("out.mkv");
    run(&hdr, &out, &model, &[]).fails(4, "hdr.mkv", &["HDR"]);
    assert_nothing_left(&out);
}

#[test]
fn output_same_as_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, model) = setup(dir.path());
    let before = std::fs::read(&clip).unwrap();
    let result = run(&clip, &clip, &model, &["--overwrite"]);
    assert_eq!(result.code, Some(5), "{}", result.dump());
    let line = result
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert!(
        line.contains("clip.mp4") && line.contains("same file"),
        "{}",
        result.dump()
    );
    assert_eq!(
        std::fs::read(&clip).unwrap(),
        before,
        "the input was modified"
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

#[test]
fn a_video_into_an_image_output_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, model) = setup(dir.path());
    let out = dir.path().join("frame.png");
    run(&clip, &out, &model, &[]).fails(5, "frame.png", &["a video needs a video output"]);
    assert_nothing_left(&out);
}
