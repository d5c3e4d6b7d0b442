//! Records of still images and records published to object stores, end to end:
//! - a folder of images scored in `fresco run` (one row per image, sorted by name; the
//!   detector's README boxes on Darknet's dog picture), image files to Parquet (read back by
//!   pyarrow), EXIF orientation applied before scaling;
//! - an unreadable or hostile image fails the run, naming it, with nothing at the output and
//!   the process's memory bounded;
//! - `fresco jobs submit` of a video with a records output in an object store (`file://`, and
//!   Azurite where `FRESCO_TEST_AZURITE=1`), published by a worker.
//!
//! The real models come from `$FRESCO_MODEL_DIR/scoring` (skipped, saying so, where absent);
//! the EXIF test uses the built-in identity model.

mod common;

use std::path::{Path, PathBuf};

use common::jobs::{read_log, sqlite_queue, wait_exit};
use common::scoring::*;
use common::*;

fn run_in(dir: &Path, args: &[&str]) -> Out {
    let mut all: Vec<String> = vec!["run".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    all.extend(queue_flags(dir));
    fresco(all)
}

/// Detector flags for yolov3-tiny as its README result was computed.
fn detector_args(models: &Path) -> Vec<String> {
    vec![
        "--model".into(),
        models.join("yolov3-tiny-416.onnx").display().to_string(),
        "--task".into(),
        "detect".into(),
        "--labels".into(),
        models.join("coco.names").display().to_string(),
        "--min-score".into(),
        "0.3".into(),
    ]
}

/// A folder with dog.jpg three times (as JPEG under two names, and as PNG) and a file that is
/// not an image.
fn dog_folder(dir: &Path, models: &Path) -> PathBuf {
    let photos = dir.join("photos");
    std::fs::create_dir(&photos).unwrap();
    std::fs::copy(models.join("dog.jpg"), photos.join("b-dog.jpg")).unwrap();
    std::fs::copy(models.join("dog.jpg"), photos.join("C.JPG")).unwrap();
    ffmpeg(
        &["-i", models.join("dog.jpg").to_str().unwrap()],
        &photos.join("a-dog.png"),
    );
    std::fs::write(photos.join("notes.txt"), "not an image").unwrap();
    photos
}

#[test]
fn a_folder_of_images_gives_one_row_per_image_in_name_order() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let photos = dog_folder(dir.path(), &models);
    let out = dir.path().join("objects.jsonl");
    let mut args = vec![
        photos.display().to_string(),
        "-o".into(),
        out.display().to_string(),
        "--json".into(),
    ];
    args.extend(detector_args(&models));
    let json = run_in(
        dir.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .ok()
    .json();
    // A folder is a dataset job: its summary counts the items.
    assert_eq!(json["rows"], 3, "{json:#}");
    assert_eq!(
        json["dataset"],
        serde_json::json!({"scored": 3, "failed": 0, "skipped": 1}),
        "{json:#}"
    );
    let rows = jsonl_rows(&out);
    let sources: Vec<&str> = rows.iter().map(|r| r["source"].as_str().unwrap()).collect();
    assert_eq!(
        sources,
        ["C.JPG", "a-dog.png", "b-dog.jpg"],
        "one row per image, by relative path (byte order)"
    );
    for row in &rows {
        assert_eq!(
            (&row["frame"], &row["pts"], &row["time"]),
            (&0.into(), &0.into(), &0.0.into()),
            "an image is a stream of one frame: {row}"
        );
        assert_readme_boxes(&detection_boxes(row));
    }
    let hidden: Vec<String> = dir_names(dir.path())
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "temporary files left: {hidden:?}");
    // The same output again is refused without --overwrite, and left as it was.
    let before = std::fs::read(&out).unwrap();
    run_in(
        dir.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .fails(5, "objects.jsonl", &["exists"]);
    assert_eq!(std::fs::read(&out).unwrap(), before);
}

#[test]
fn image_files_are_classified_into_parquet_in_the_order_given() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dog = dir.path().join("dog.jpg");
    std::fs::copy(models.join("dog.jpg"), &dog).unwrap();
    let flipped = dir.path().join("flipped.png");
    ffmpeg(&["-i", dog.to_str().unwrap(), "-vf", "hflip"], &flipped);
    let classify = |out: &Path| {
        run_in(
            dir.path(),
            &[
                flipped.to_str().unwrap(),
                dog.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--model",
                models.join("efficientnet-lite0.onnx").to_str().unwrap(),
                "--task",
                "classify",
                "--labels",
                models.join("imagenet_labels.txt").to_str().unwrap(),
                "--top-k",
                "3",
            ],
        )
        .ok()
    };
    let jsonl = dir.path().join("tags.jsonl");
    let parquet = dir.path().join("tags.parquet");
    classify(&jsonl);
    classify(&parquet);
    let rows = jsonl_rows(&jsonl);
    let sources: Vec<&str> = rows.iter().map(|r| r["source"].as_str().unwrap()).collect();
    assert_eq!(
        sources,
        [flipped.to_str().unwrap(), dog.to_str().unwrap()],
        "files given by name: in the order given, named as given"
    );
    for row in &rows {
        let classes = row["classes"].as_array().unwrap();
        assert_eq!(classes.len(), 3, "{row}");
        let scores: Vec<f64> = classes
            .iter()
            .map(|c| c["score"].as_f64().unwrap())
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{row}");
        assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)), "{row}");
    }
    assert_eq!(&std::fs::read(&parquet).unwrap()[..4], b"PAR1");
    let Some(python) = python_with_pyarrow() else {
        return;
    };
    let script = "import sys, json, pyarrow.parquet as pq\n\
        t = pq.read_table(sys.argv[1]).to_pylist()\n\
        print(json.dumps([[r['source'], r['frame'], [[c['index'], c['label'], c['score']] for c in r['classes']]] for r in t]))";
    let read = std::process::Command::new(python)
        .args(["-c", script, parquet.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    // (source, frame, [(index, label, score)]) per row.
    type ParquetRow = (String, u64, Vec<(u64, String, f64)>);
    let from_parquet: Vec<ParquetRow> = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(from_parquet.len(), 2);
    for (row, (source, frame, classes)) in rows.iter().zip(&from_parquet) {
        assert_eq!(row["source"], source.as_str());
        assert_eq!(*frame, 0);
        for (c, (index, label, score)) in row["classes"].as_array().unwrap().iter().zip(classes) {
            assert_eq!(c["index"], *index);
            assert_eq!(c["label"], label.as_str());
            assert!((c["score"].as_f64().unwrap() - score).abs() < 1e-6);
        }
    }
}

#[test]
fn exif_orientation_is_applied_before_the_image_is_scaled() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    // Stored 64x16: red on the left, blue on the right. Orientation 6 turns it 90 degrees
    // clockwise: upright it is 16x64, red on top, blue below.
    let plain = dir.path().join("plain.jpg");
    tool_bytes(
        "ffmpeg",
        &[
            s("-v"),
            s("error"),
            s("-f"),
            s("lavfi"),
            s("-i"),
            s("color=red:size=32x16"),
            s("-f"),
            s("lavfi"),
            s("-i"),
            s("color=blue:size=32x16"),
            s("-filter_complex"),
            s("[0][1]hstack,format=yuvj444p"),
            s("-frames:v"),
            s("1"),
            s("-q:v"),
            s("2"),
            p(&plain),
        ],
    );
    let turned = dir.path().join("turned.jpg");
    std::fs::write(
        &turned,
        with_exif_orientation(&std::fs::read(&plain).unwrap(), 6),
    )
    .unwrap();
    let out = dir.path().join("pixels.jsonl");
    run_in(
        dir.path(),
        &[
            turned.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--task",
            "tensors",
            "--input-size",
            "2x4",
        ],
    )
    .ok();
    let rows = jsonl_rows(&out);
    let tensor = &rows[0]["tensors"][0];
    assert_eq!(tensor["shape"], serde_json::json!([1, 3, 4, 2]), "{tensor}");
    let values: Vec<f64> = tensor["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    // Red (channel 0) in the top two rows, blue (channel 2) in the bottom two: /255 by default.
    let (red, blue) = (&values[0..8], &values[16..24]);
    assert!(red[..4].iter().all(|v| *v > 0.8), "red on top: {values:?}");
    assert!(red[4..].iter().all(|v| *v < 0.2), "{values:?}");
    assert!(blue[..4].iter().all(|v| *v < 0.2), "{values:?}");
    assert!(blue[4..].iter().all(|v| *v > 0.8), "blue below: {values:?}");

    // Sampling picks frames of a video, and one records file takes a video or images: both
    // refused before the model is loaded, leaving nothing.
    let refused = dir.path().join("refused.jsonl");
    let clip = dir.path().join("clip.mp4");
    make_h264(&clip, "64x48", 5, 1.0);
    for (inputs, words) in [
        (vec![turned.as_path()], "--every"),
        (vec![turned.as_path(), clip.as_path()], "not both"),
    ] {
        let mut args: Vec<&str> = inputs.iter().map(|p| p.to_str().unwrap()).collect();
        args.extend([
            "-o",
            refused.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--task",
            "tensors",
            "--every",
            "2",
        ]);
        let out = run_in(dir.path(), &args);
        assert_eq!(out.code, Some(4), "{}", out.dump());
        assert!(out.stderr.contains(words), "{}", out.dump());
        assert_nothing_left(&refused);
    }
}

#[test]
fn zero_pngs_are_real_pngs() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("zeros.png");
    zero_png(&png, 300, 200, 200);
    let (width, height, frames) = decode_rgb(&png);
    assert_eq!((width, height), (300, 200));
    assert!(frames[0].iter().all(|b| *b == 0));
}

/// The largest resident size of any child process this test binary has waited for, in KiB.
fn children_peak_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .unwrap()
        .max_rss()
}

#[test]
fn an_unreadable_or_hostile_image_file_fails_the_run_and_a_folder_makes_it_an_error_row() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, bad) in [
        ("broken.jpg", "not a JPEG at all"),
        ("huge.png", "too large to decode"),
        ("bomb.png", "too large to decode"),
    ] {
        let photos = dir.path().join(format!("photos-{name}"));
        std::fs::create_dir(&photos).unwrap();
        std::fs::copy(models.join("dog.jpg"), photos.join("a.jpg")).unwrap();
        match name {
            "broken.jpg" => std::fs::write(photos.join(name), bad).unwrap(),
            // The header alone claims 30 GB; the bomb's data is all there.
            "huge.png" => zero_png(&photos.join(name), 100_000, 100_000, 1),
            _ => zero_png(&photos.join(name), 20_000, 20_000, 20_000),
        }
        // Image files named one by one are scored in this process, which stops at the first
        // bad one.
        for out in ["objects.jsonl", "objects.parquet"] {
            let out = dir.path().join(out);
            let mut args = vec![
                photos.join("a.jpg").display().to_string(),
                photos.join(name).display().to_string(),
                "-o".into(),
                out.display().to_string(),
            ];
            args.extend(detector_args(&models));
            let failed = run_in(
                dir.path(),
                &args.iter().map(String::as_str).collect::<Vec<_>>(),
            );
            assert_eq!(failed.code, Some(4), "{}", failed.dump());
            let named = photos.join(name).display().to_string();
            assert!(failed.stderr.contains(&named), "{}", failed.dump());
            if name != "broken.jpg" {
                assert!(failed.stderr.contains(bad), "{}", failed.dump());
            }
            assert_nothing_left(&out);
        }
        // A folder is a dataset job: the bad image is an error row, and one of two is past the
        // default threshold (1%), so the job fails with nothing published.
        let out = dir.path().join("folder.jsonl");
        let mut args = vec![
            photos.display().to_string(),
            "-o".into(),
            out.display().to_string(),
        ];
        args.extend(detector_args(&models));
        let failed = run_in(
            dir.path(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_ne!(failed.code, Some(0), "{}", failed.dump());
        assert!(
            failed.stderr.contains("1 of 2 items failed"),
            "{}",
            failed.dump()
        );
        assert_nothing_left(&out);
    }
    // A decoded bomb alone is 1.2 GB; the model's session and the picture are far less.
    let peak = children_peak_kib();
    assert!(
        peak < 1024 * 1024,
        "a child process reached {peak} KiB of resident memory"
    );
}

#[test]
fn a_video_scores_into_records_in_a_file_url_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    records_in_a_store(dir.path(), &format!("file://{}", store.display()));
}

#[test]
fn a_video_scores_into_records_in_an_azurite_container() {
    let Some(container) = fresco_testkit::azurite::container("score_images_records") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    records_in_a_store(dir.path(), &format!("az://{container}"));
}

/// Two records jobs through the queue into the store at `base` (a URL): from an object input
/// to JSONL, from a local input to Parquet; published whole by a worker, and refused a second
/// time without --overwrite.
fn records_in_a_store(dir: &Path, base: &str) {
    let Some(models) = scoring_models() else {
        return;
    };
    let clip = dog_clip(dir, &models, 10);
    let clip_url = format!("{base}/in/dog.mp4");
    common::objects::upload(&clip_url, &clip);
    let model = models.join("yolov3-tiny-416.onnx");
    let detect: Vec<String> = detector_args(&models)[2..].to_vec();
    let queue = sqlite_queue(dir);
    let mut ids = Vec::new();
    for (input, name) in [
        // An object input is downloaded into scratch; a local one is read in place.
        (clip_url.as_str(), "objects.jsonl"),
        (clip.to_str().unwrap(), "objects.parquet"),
    ] {
        let mut extra = detect.clone();
        extra.extend(["--every", "4", "--chunk-frames", "3"].map(String::from));
        let id = queue.submit(
            Path::new(input),
            Path::new(&format!("{base}/out/{name}")),
            &model,
            &extra.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        ids.push(id);
    }
    let keys = || common::objects::keys(base);
    assert_eq!(
        keys(),
        ["in/dog.mp4"],
        "nothing is published before assembly"
    );
    let log = dir.join("worker.log");
    let mut worker = queue.spawn_worker(&log, &[], &[]);
    let status = wait_exit(&mut worker, RUN_TIMEOUT, "worker");
    assert!(status.success(), "worker failed:\n{}", read_log(&log));
    for id in &ids {
        let job = queue.show(id);
        assert_eq!(job["state"], "succeeded", "{job:#}\n{}", read_log(&log));
    }
    assert_eq!(
        keys(),
        ["in/dog.mp4", "out/objects.jsonl", "out/objects.parquet"],
        "the outputs, and no temporary object beside them"
    );
    let jsonl = dir.join("objects.jsonl");
    common::objects::download(&format!("{base}/out/objects.jsonl"), &jsonl);
    let rows = jsonl_rows(&jsonl);
    let frames: Vec<u64> = rows.iter().map(|r| r["frame"].as_u64().unwrap()).collect();
    assert_eq!(
        frames,
        [0, 4, 8],
        "every fourth frame of ten, across chunks of 3"
    );
    for row in &rows {
        assert_eq!(row["source"], clip_url.as_str());
        assert_readme_boxes(&detection_boxes(row));
    }
    let parquet = dir.join("objects.parquet");
    common::objects::download(&format!("{base}/out/objects.parquet"), &parquet);
    assert_eq!(&std::fs::read(&parquet).unwrap()[..4], b"PAR1");
    if let Some(python) = python_with_pyarrow() {
        let read = std::process::Command::new(python)
            .args([
                "-c",
                "import sys, pyarrow.parquet as pq\n\
                 print([r['frame'] for r in pq.read_table(sys.argv[1]).to_pylist()])",
                parquet.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), "[0, 4, 8]");
    }
    // A second submission to a published object is refused without --overwrite.
    let again = queue.try_submit(
        &clip,
        Path::new(&format!("{base}/out/objects.jsonl")),
        &model,
        &detect.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_ne!(again.code, Some(0), "{}", again.dump());
    assert!(again.stderr.contains("exists"), "{}", again.dump());
}
