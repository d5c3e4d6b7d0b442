//! `fresco estimate`: the arithmetic against a calibration fixture (tests/fixtures/
//! calibration.json: mosaic at 640x360 on cpu, 2 frames/s; at 320x180 on cuda, 50 frames/s),
//! the frame count from the probe, the errors, and a `fresco bench` calibration read back;
//! datasets (folders, manifests, prefixes in a file:// store and in Azurite where
//! FRESCO_TEST_AZURITE=1) counted and calibrated on a sample of their own items with a
//! generated classifier, bad and huge sample items skipped and said, and the sample recorded
//! and reused. A few seconds.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/calibration.json")
}

/// 50 frames of 320x180 at 25 frames/s.
fn clip(dir: &Path, ext: &str) -> PathBuf {
    let path = dir.join(format!("clip.{ext}"));
    make_h264(&path, "320x180", 25, 2.0);
    path
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

fn estimate(args: &[&str]) -> Out {
    let mut all = vec!["estimate"];
    all.extend_from_slice(args);
    fresco(all)
}

#[test]
fn compute_wall_time_and_cost_follow_from_the_calibration() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip(dir.path(), "mp4");
    let cal = fixture();
    let out = estimate(&[
        input.to_str().unwrap(),
        "--style",
        "mosaic",
        "--nodes",
        "4",
        "--price",
        "cpu=0.10,cuda=2.50",
        "--calibration",
        cal.to_str().unwrap(),
        "--json",
    ])
    .ok();
    let report = out.json();
    assert_eq!(report["frames"], 50);
    assert_eq!(report["frames_exact"], true);
    assert_eq!(
        (report["width"].as_u64(), report["height"].as_u64()),
        (Some(320), Some(180))
    );
    let devices = report["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2, "{report}");
    let get = |i: usize, key: &str| devices[i][key].as_f64().unwrap();

    // cpu: calibrated at 640x360, a quarter of the pixels: 0.5 s/frame x 0.25.
    assert_eq!(devices[0]["device"], "cpu");
    assert!(close(get(0, "pixel_scale"), 0.25));
    assert!(close(get(0, "seconds_per_frame"), 0.125));
    assert!(close(get(0, "compute_seconds"), 6.25));
    assert!(close(get(0, "wall_seconds"), 6.25 / 4.0));
    assert!(close(get(0, "cost"), 6.25 / 3600.0 * 0.10));
    // cuda: calibrated at this very size.
    assert_eq!(devices[1]["device"], "cuda");
    assert!(close(get(1, "pixel_scale"), 1.0));
    assert!(close(get(1, "compute_seconds"), 50.0 / 50.0));
    assert!(close(get(1, "wall_seconds"), 0.25));
    assert!(close(get(1, "cost"), 1.0 / 3600.0 * 2.50));

    // The same in words, saying where a time was scaled.
    let out = estimate(&[
        input.to_str().unwrap(),
        "--style",
        "mosaic",
        "--nodes",
        "4",
        "--price",
        "cpu=0.10,cuda=2.50",
        "--calibration",
        cal.to_str().unwrap(),
    ])
    .ok();
    let text = out.stdout;
    assert!(text.contains("50 frames of 320x180"), "{text}");
    assert!(text.contains("4 nodes"), "{text}");
    assert!(
        text.contains(
            "calibrated at 640x360 (2.000 frames/s end to end); time scaled by pixel count x0.250"
        ),
        "{text}"
    );
    assert!(
        text.contains("calibrated at this size (50.000 frames/s end to end)"),
        "{text}"
    );
    assert!(
        text.contains("cost 0.000174 (at 0.10 per node-hour)"),
        "{text}"
    );
    assert!(
        text.contains("cost 0.000694 (at 2.50 per node-hour)"),
        "{text}"
    );
}

#[test]
fn one_device_kind_prices_from_the_environment_and_counts_from_duration() {
    let dir = tempfile::tempdir().unwrap();
    // Matroska has no frame index: the count comes from duration x frame rate.
    let input = clip(dir.path(), "mkv");
    let cal = fixture();
    let out = fresco_env(
        [
            "estimate",
            input.to_str().unwrap(),
            "--style",
            "mosaic",
            "--device",
            "cuda:1",
            "--calibration",
            cal.to_str().unwrap(),
            "--json",
        ],
        &[("FRESCO_PRICES", s("cuda=3.60"))],
    )
    .ok();
    let report = out.json();
    assert_eq!(report["frames"], 50);
    assert_eq!(report["frames_exact"], false);
    let devices = report["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["device"], "cuda");
    assert!(close(
        devices[0]["cost"].as_f64().unwrap(),
        1.0 / 3600.0 * 3.60
    ));
    assert_eq!(report["nodes"], 1);

    // No price for a kind: times without a cost.
    let out = estimate(&[
        input.to_str().unwrap(),
        "--style",
        "candy",
        "--calibration",
        cal.to_str().unwrap(),
    ])
    .ok();
    assert!(out.stdout.contains("about 50 frames"), "{}", out.dump());
    assert!(
        out.stdout
            .contains("cost: no price (--price cpu=PRICE per node-hour)"),
        "{}",
        out.dump()
    );
    assert!(
        out.stdout.contains("compute        6.2 s"),
        "{}",
        out.dump()
    );
}

#[test]
fn missing_calibrations_and_bad_arguments_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip(dir.path(), "mp4");
    let cal = fixture();
    let input_arg = input.to_str().unwrap();

    let none = dir.path().join("none.json");
    estimate(&[
        input_arg,
        "--style",
        "mosaic",
        "--calibration",
        none.to_str().unwrap(),
    ])
    .fails(
        6,
        "none.json",
        &["no calibration yet", "fresco bench --style mosaic"],
    );
    estimate(&[
        input_arg,
        "--style",
        "udnie",
        "--calibration",
        cal.to_str().unwrap(),
    ])
    .fails(
        6,
        "calibration.json",
        &[
            "no calibration for udnie",
            "it has candy on cpu, mosaic on cpu, mosaic on cuda",
        ],
    );
    estimate(&[
        input_arg,
        "--style",
        "candy",
        "--device",
        "cuda",
        "--calibration",
        cal.to_str().unwrap(),
    ])
    .fails(
        6,
        "calibration.json",
        &["no calibration for candy on cuda", "--device cuda"],
    );

    let corrupt = dir.path().join("corrupt.json");
    std::fs::write(&corrupt, "{\"entries\": [{\"device\": 3}]}").unwrap();
    estimate(&[
        input_arg,
        "--style",
        "mosaic",
        "--calibration",
        corrupt.to_str().unwrap(),
    ])
    .fails(4, "corrupt.json", &["not a fresco calibration file"]);

    let missing = dir.path().join("missing.mp4");
    estimate(&[
        missing.to_str().unwrap(),
        "--style",
        "mosaic",
        "--calibration",
        cal.to_str().unwrap(),
    ])
    .fails(3, "missing.mp4", &["no such file"]);
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "not a video").unwrap();
    estimate(&[
        text.to_str().unwrap(),
        "--style",
        "mosaic",
        "--calibration",
        cal.to_str().unwrap(),
    ])
    .fails(4, "notes.mp4", &["not a media file"]);

    let out = estimate(&[input_arg, "--style", "mosaic", "--price", "tpu=1"]);
    assert_eq!(out.code, Some(2), "{}", out.dump());
    assert!(
        out.stderr.contains("unknown device kind 'tpu'"),
        "{}",
        out.dump()
    );
    let out = estimate(&[input_arg, "--style", "mosaic", "--nodes", "0"]);
    assert_eq!(out.code, Some(2), "{}", out.dump());
    assert!(out.stderr.contains("must be at least 1"), "{}", out.dump());
}

#[test]
fn bench_records_what_estimate_reads() {
    let dir = tempfile::tempdir().unwrap();
    let cal = dir.path().join("state/calibration.json");
    let out = fresco([
        "bench",
        "--style",
        "vintage",
        "--width",
        "64",
        "--height",
        "48",
        "--frames",
        "6",
        "--batch",
        "2",
        "--no-python",
        "--calibration",
        cal.to_str().unwrap(),
    ])
    .ok();
    assert!(out.stdout.contains("saved to"), "{}", out.dump());
    assert!(out.stdout.contains("batch 2"), "{}", out.dump());
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cal).unwrap()).unwrap();
    let entry = &saved["entries"][0];
    assert_eq!(entry["device"], "cpu");
    assert_eq!(entry["model"], "vintage");
    assert_eq!(
        (entry["width"].as_u64(), entry["height"].as_u64()),
        (Some(64), Some(48))
    );
    assert_eq!(entry["batch"], 2);
    assert_eq!(entry["digest"].as_str().unwrap().len(), 64);
    let fps = entry["e2e_fps"].as_f64().unwrap();
    assert!(fps > 0.0);

    let input = dir.path().join("small.mp4");
    make_h264(&input, "64x48", 25, 0.4);
    let out = estimate(&[
        input.to_str().unwrap(),
        "--style",
        "vintage",
        "--calibration",
        cal.to_str().unwrap(),
        "--json",
    ])
    .ok();
    let report = out.json();
    let device = &report["devices"][0];
    assert_eq!(device["pixel_scale"], 1.0);
    assert!(close(
        device["compute_seconds"].as_f64().unwrap(),
        10.0 / fps
    ));

    // A second bench of the same kind, model and size replaces the first.
    fresco([
        "bench",
        "--style",
        "vintage",
        "--width",
        "64",
        "--height",
        "48",
        "--frames",
        "4",
        "--no-python",
        "--calibration",
        cal.to_str().unwrap(),
    ])
    .ok();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cal).unwrap()).unwrap();
    assert_eq!(saved["entries"].as_array().unwrap().len(), 1);
    assert_eq!(saved["entries"][0]["batch"], 1);
}

// Datasets: counted with the worker's listing, calibrated on a sample of their own items with
// the worker's reader, decoder and scorer (a generated constant classifier: no model files
// needed), the sample recorded and reused.

/// A folder `photos` of `good` small PNGs (`img-N.png`) and a text file the listing skips, and
/// the generated classifier beside it.
fn dataset(dir: &Path, good: usize) -> (PathBuf, PathBuf) {
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for i in 0..good {
        scoring::zero_png(&photos.join(format!("img-{i}.png")), 24, 16, 16);
    }
    std::fs::write(photos.join("notes.txt"), "not an image").unwrap();
    let model = dir.join("constant.onnx");
    std::fs::write(
        &model,
        fresco_infer::onnx_build::constant_classifier_model(10),
    )
    .unwrap();
    (photos, model)
}

fn folder_bytes(dir: &Path, ext: &str) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

fn estimate_dataset(source: &[&str], model: &Path, cal: &Path, extra: &[&str]) -> Out {
    let mut args: Vec<&str> = source.to_vec();
    args.extend([
        "--model",
        model.to_str().unwrap(),
        "--task",
        "classify",
        "--calibration",
        cal.to_str().unwrap(),
    ]);
    args.extend_from_slice(extra);
    estimate(&args)
}

#[test]
fn a_dataset_is_calibrated_on_a_sample_once_and_the_calibration_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (photos, model) = dataset(dir.path(), 5);
    let cal = dir.path().join("calibration.json");
    let folder = photos.to_str().unwrap();
    let first = estimate_dataset(
        &[folder],
        &model,
        &cal,
        &["--json", "--nodes", "2", "--price", "cpu=0.10"],
    )
    .ok()
    .json();
    assert_eq!(first["items"], 5, "{first}");
    assert_eq!(first["bytes"], folder_bytes(&photos, "png"), "{first}");
    assert_eq!(first["skipped"], 1, "the text file: {first}");
    assert_eq!(first["sample"]["tried"], 5, "{first}");
    assert_eq!(first["sample"]["scored"], 5, "{first}");
    let devices = first["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{first}");
    let cpu = &devices[0];
    assert_eq!(cpu["device"], "cpu");
    assert_eq!(cpu["sampled_now"], true);
    assert_eq!(cpu["sample_items"], 5);
    let rate = cpu["calibrated_items_per_second"].as_f64().unwrap();
    assert!(rate > 0.0, "{first}");
    let compute = cpu["compute_seconds"].as_f64().unwrap();
    assert!(close(compute, 5.0 / rate), "{first}");
    assert!(close(cpu["wall_seconds"].as_f64().unwrap(), compute / 2.0));
    assert!(close(
        cpu["cost"].as_f64().unwrap(),
        compute / 3600.0 * 0.10
    ));

    // Recorded as an item entry of this model beside the frame entries.
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cal).unwrap()).unwrap();
    let entries = saved["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{saved}");
    assert_eq!(entries[0]["unit"], "item");
    assert_eq!(entries[0]["model"], "constant");
    assert_eq!(entries[0]["sample_items"], 5);
    assert_eq!(entries[0]["sample_of"], folder);
    assert!(close(entries[0]["e2e_fps"].as_f64().unwrap(), rate));

    // More items later: the recorded speed is used, nothing is scored.
    for i in 5..9 {
        scoring::zero_png(&photos.join(format!("img-{i}.png")), 24, 16, 16);
    }
    let again = estimate_dataset(&[folder], &model, &cal, &["--json"])
        .ok()
        .json();
    assert_eq!(again["items"], 9);
    assert!(again["sample"].is_null(), "{again}");
    let cpu = &again["devices"][0];
    assert_eq!(cpu["sampled_now"], false);
    assert!(close(
        cpu["calibrated_items_per_second"].as_f64().unwrap(),
        rate
    ));
    assert!(close(cpu["compute_seconds"].as_f64().unwrap(), 9.0 / rate));
    let text = estimate_dataset(&[folder], &model, &cal, &[]).ok().stdout;
    // Nine PNGs of about 370 bytes: a few KiB.
    let kib = folder_bytes(&photos, "png") as f64 / 1024.0;
    assert!(
        text.contains(&format!("9 items ({kib:.1} KiB), constant, 1 node")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "calibrated earlier on a sample of 5 items of {folder}"
        )),
        "{text}"
    );
    assert!(text.contains("1 listed file not taken"), "{text}");

    // --recalibrate and --sample: a new sample of the first 3 listed, recorded over the old.
    let text = estimate_dataset(&[folder], &model, &cal, &["--recalibrate", "--sample", "3"])
        .ok()
        .stdout;
    assert!(
        text.contains("calibrated now on a sample of 3 items of this dataset"),
        "{text}"
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cal).unwrap()).unwrap();
    assert_eq!(saved["entries"].as_array().unwrap().len(), 1, "{saved}");
    assert_eq!(saved["entries"][0]["sample_items"], 3);

    // The same folder as a file:// prefix, listed through the object store.
    let url = format!("file://{folder}/");
    let listed = estimate_dataset(&[&url], &model, &cal, &["--json"])
        .ok()
        .json();
    assert_eq!(listed["items"], 9, "{listed}");
    assert_eq!(listed["bytes"], folder_bytes(&photos, "png"), "{listed}");

    // --include picks the keys as a job's listing does.
    let only = estimate_dataset(&[folder], &model, &cal, &["--include", "img-1*", "--json"])
        .ok()
        .json();
    assert_eq!(only["items"], 1, "{only}");
    assert_eq!(only["skipped"], 9, "{only}");
}

#[test]
fn bad_sample_items_are_skipped_and_said_and_huge_ones_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let (photos, model) = dataset(dir.path(), 2);
    std::fs::write(
        photos.join("a-notes.png"),
        "a text file, named like an image",
    )
    .unwrap();
    std::fs::write(photos.join("b-empty.png"), "").unwrap();
    // Sparse: 1 GiB as listed, nothing on disk; reading it would take 1 GiB of memory.
    std::fs::File::create(photos.join("c-huge.png"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let cal = dir.path().join("calibration.json");
    let folder = photos.to_str().unwrap();
    let args = ["--max-item-bytes", "1000000"];
    let report = estimate_dataset(&[folder], &model, &cal, &[&args[..], &["--json"]].concat())
        .ok()
        .json();
    assert_eq!(report["items"], 5, "{report}");
    assert_eq!(report["over_item_limit"], 1, "{report}");
    assert_eq!(report["empty_or_missing"], 1, "{report}");
    assert_eq!(report["sample"]["tried"], 5, "{report}");
    assert_eq!(report["sample"]["scored"], 2, "{report}");
    let kinds: Vec<(String, String)> = report["sample"]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_string(),
                s["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("a-notes.png".to_string(), "not-image".to_string()),
            ("b-empty.png".to_string(), "empty".to_string()),
            ("c-huge.png".to_string(), "too-large".to_string()),
        ]
    );
    let text = estimate_dataset(
        &[folder],
        &model,
        &cal,
        &[&args[..], &["--recalibrate"]].concat(),
    )
    .ok()
    .stdout;
    for line in [
        "calibrated now on a sample of 2 items",
        "sample item a-notes.png skipped (not-image: ",
        "sample item c-huge.png skipped (too-large: ",
        "1 item is larger than --max-item-bytes 1000000: error rows (too-large), never read",
        "1 item is empty or could not be looked up: error rows",
    ] {
        assert!(text.contains(line), "{line}:\n{text}");
    }

    // No sample item scores: nothing to calibrate on, said with each item's reason.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("x.jpg"), "not a picture").unwrap();
    std::fs::write(bad.join("y.png"), "").unwrap();
    let fresh = dir.path().join("fresh.json");
    estimate_dataset(&[bad.to_str().unwrap()], &model, &fresh, &[]).fails(
        4,
        "bad",
        &[
            "none of the 2 sample items could be scored",
            "x.jpg: not-image",
            "y.png: empty",
        ],
    );
    assert!(!fresh.exists(), "nothing measured, nothing recorded");
}

#[test]
fn manifests_empty_folders_and_wrong_flags_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (photos, model) = dataset(dir.path(), 1);
    let cal = dir.path().join("calibration.json");
    // A manifest naming a file that is not there: counted, said, skipped in the sample.
    let manifest = dir.path().join("picks.txt");
    std::fs::write(&manifest, "# picks\nphotos/img-0.png\nphotos/gone.png\n\n").unwrap();
    let report = estimate_dataset(
        &["--manifest", manifest.to_str().unwrap()],
        &model,
        &cal,
        &["--json"],
    )
    .ok()
    .json();
    assert_eq!(report["items"], 2, "{report}");
    assert_eq!(report["empty_or_missing"], 1, "{report}");
    assert_eq!(report["sample"]["scored"], 1, "{report}");
    assert_eq!(report["sample"]["skipped"][0]["key"], "photos/gone.png");
    assert_eq!(report["sample"]["skipped"][0]["kind"], "unreadable");
    // Only missing files: nothing to calibrate on.
    let gone = dir.path().join("gone.txt");
    std::fs::write(&gone, "nowhere/a.png\nnowhere/b.png\n").unwrap();
    let fresh = dir.path().join("fresh.json");
    estimate_dataset(&["--manifest", gone.to_str().unwrap()], &model, &fresh, &[]).fails(
        4,
        "gone.txt",
        &[
            "none of the 2 sample items could be scored",
            "nowhere/a.png: unreadable",
        ],
    );
    // No manifest at all.
    let absent = dir.path().join("absent.txt");
    estimate_dataset(&["--manifest", absent.to_str().unwrap()], &model, &cal, &[]).fails(
        3,
        "absent.txt",
        &["cannot read it"],
    );
    // A folder with no images.
    let empty = dir.path().join("texts");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("a.txt"), "x").unwrap();
    std::fs::write(empty.join("b.md"), "x").unwrap();
    estimate_dataset(&[empty.to_str().unwrap()], &model, &cal, &[]).fails(
        4,
        "texts",
        &["no items to score (2 skipped", "image extensions"],
    );
    // A folder that is not there.
    let nowhere = dir.path().join("nowhere");
    estimate_dataset(&[nowhere.to_str().unwrap()], &model, &cal, &[]).fails(
        3,
        "nowhere",
        &["no such file or folder"],
    );
    // A model file that is not one: refused before any sample, nothing recorded.
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, "not a model").unwrap();
    let untouched = dir.path().join("untouched.json");
    estimate_dataset(&[photos.to_str().unwrap()], &garbage, &untouched, &[]).fails(
        7,
        "garbage.onnx",
        &["not a valid onnx model"],
    );
    assert!(!untouched.exists());
    // A glob that is not one.
    estimate_dataset(
        &[photos.to_str().unwrap()],
        &model,
        &cal,
        &["--include", "a[b"],
    )
    .fails(4, "a[b", &["--include"]);
    // A style for a dataset; dataset or scoring flags for a video.
    estimate(&[
        photos.to_str().unwrap(),
        "--style",
        "mosaic",
        "--calibration",
        cal.to_str().unwrap(),
    ])
    .fails(2, "photos", &["--model file.onnx", "not estimated yet"]);
    let video = clip(dir.path(), "mp4");
    let fixture = fixture();
    for (flag, value) in [("--include", "*.jpg"), ("--task", "classify")] {
        estimate(&[
            video.to_str().unwrap(),
            "--style",
            "mosaic",
            flag,
            value,
            "--calibration",
            fixture.to_str().unwrap(),
        ])
        .fails(2, "clip.mp4", &["take a dataset"]);
    }
}

/// Three PNGs, a text file and an object outside the prefix in the store at `base`: the prefix
/// is counted by the store's listing and its sample read through the store.
fn a_prefix_is_estimated(dir: &Path, base: &str) {
    let (photos, model) = dataset(dir, 3);
    for name in ["img-0.png", "img-1.png", "img-2.png", "notes.txt"] {
        common::objects::upload(&format!("{base}/cams/{name}"), &photos.join(name));
    }
    common::objects::upload(
        &format!("{base}/other/img-0.png"),
        &photos.join("img-0.png"),
    );
    let cal = dir.join("calibration.json");
    let prefix = format!("{base}/cams/");
    let report = estimate_dataset(&[&prefix], &model, &cal, &["--json"])
        .ok()
        .json();
    assert_eq!(report["items"], 3, "{report}");
    assert_eq!(report["skipped"], 1, "{report}");
    assert_eq!(report["bytes"], folder_bytes(&photos, "png"), "{report}");
    assert_eq!(report["sample"]["scored"], 3, "{report}");
    assert_eq!(
        report["devices"][0]["sample_of"],
        prefix.as_str(),
        "{report}"
    );
}

#[test]
fn a_prefix_in_a_file_url_store_is_estimated() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    a_prefix_is_estimated(dir.path(), &format!("file://{}", store.display()));
}

#[test]
fn a_prefix_in_an_azurite_container_is_estimated() {
    let Some(container) = fresco_testkit::azurite::container("estimate_prefix") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    a_prefix_is_estimated(dir.path(), &format!("az://{container}"));
}
