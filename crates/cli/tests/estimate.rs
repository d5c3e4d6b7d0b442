//! `fresco estimate`: the arithmetic against a calibration fixture (tests/fixtures/
//! calibration.json: mosaic at 640x360 on cpu, 2 frames/s; at 320x180 on cuda, 50 frames/s),
//! the frame count from the probe, the errors, and a `fresco bench` calibration read back.
//! A few seconds.

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
