//! Missing tools and bad models: a missing ffmpeg, corrupt or unsuitable model files, a model
//! that fails mid-run, unknown and uninstalled styles. Each gets its exit code, one "error: "
//! line naming the file and the problem, and leaves nothing at the output path.

mod common;

use common::*;

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
fn a_model_failing_mid_run_exits_8_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, _) = setup(dir.path());
    let model = dir.path().join("failing.onnx");
    export_builtin("failing", &model);
    let out = dir.path().join("out.mp4");
    run(&clip, &out, &model, &[]).fails(8, "failing.onnx", &["inference failed"]);
    assert_nothing_left(&out);
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
