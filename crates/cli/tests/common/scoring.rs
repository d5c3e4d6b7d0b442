//! The real scoring models and readers of records files, for the records tests.

use std::path::{Path, PathBuf};

/// `$FRESCO_MODEL_DIR/scoring` when it holds the three models; otherwise says why not.
pub fn scoring_models() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("FRESCO_MODEL_DIR").filter(|d| !d.is_empty()) else {
        eprintln!("skipping: FRESCO_MODEL_DIR not set (point it at ../shared/models, which holds scoring/)");
        return None;
    };
    let mut dir = PathBuf::from(dir);
    if dir.is_relative() {
        dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(dir);
    }
    let scoring = dir.join("scoring");
    for name in [
        "efficientnet-lite0.onnx",
        "yolov3-tiny-416.onnx",
        "imagenet_labels.txt",
        "coco.names",
        "dog.jpg",
    ] {
        if !scoring.join(name).is_file() {
            eprintln!("skipping: {} is missing", scoring.join(name).display());
            return None;
        }
    }
    Some(scoring)
}

pub fn jsonl_rows(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// A Python with pyarrow: `FRESCO_TEST_PYTHON`, the project's venv, or `python3`.
pub fn python_with_pyarrow() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [
        std::env::var_os("FRESCO_TEST_PYTHON").map(PathBuf::from),
        Some(root.join(".fresco/venv/bin/python3")),
        Some(PathBuf::from("python3")),
    ];
    for python in candidates.into_iter().flatten() {
        let ok = std::process::Command::new(&python)
            .args(["-c", "import pyarrow"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(python);
        }
    }
    eprintln!(
        "skipping the Parquet read-back: no Python with pyarrow (scripts/test.sh installs it)"
    );
    None
}

/// A row's detections as (label, `x0, y0, x1, y1`).
pub fn detection_boxes(row: &serde_json::Value) -> Vec<(String, [f64; 4])> {
    row["detections"]
        .as_array()
        .expect("detections")
        .iter()
        .map(|d| {
            let b = &d["box"];
            (
                d["label"].as_str().unwrap().to_string(),
                [0, 1, 2, 3].map(|i| b[i].as_f64().unwrap()),
            )
        })
        .collect()
}

/// Asserts that `found` (detections on Darknet's dog.jpg as (label, box), in its pixels) holds
/// the README's dog, car and bicycle, each box within 8 px.
pub fn assert_readme_boxes(found: &[(String, [f64; 4])]) {
    // The README's boxes (ONNX Runtime on the picture itself), in the picture's pixels.
    for (label, want) in [
        ("dog", [132.0, 188.0, 370.0, 512.0]),
        ("car", [466.0, 70.0, 679.0, 169.0]),
        ("bicycle", [204.0, 151.0, 576.0, 448.0]),
    ] {
        let best = found
            .iter()
            .filter(|(l, _)| l == label)
            .map(|(_, got)| {
                let err = got
                    .iter()
                    .zip(want)
                    .map(|(g, w)| (g - w).abs())
                    .fold(0.0, f64::max);
                (err, got)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let Some((err, got)) = best else {
            panic!("no {label} among {found:?}");
        };
        assert!(err <= 8.0, "{label}: {got:?}, README says {want:?}");
    }
}

/// The queue and work folder of one test (not shared with the others).
pub fn queue_flags(dir: &Path) -> Vec<String> {
    vec![
        "--db".into(),
        format!("sqlite://{}?mode=rwc", dir.join("queue.db").display()),
        "--work-dir".into(),
        dir.join("work").display().to_string(),
    ]
}

/// Darknet's dog picture (768x576) as `dir/dog.mp4`, one second at `rate` frames/s.
pub fn dog_clip(dir: &Path, models: &Path, rate: u32) -> PathBuf {
    let input = dir.join("dog.mp4");
    super::ffmpeg(
        &[
            "-loop",
            "1",
            "-i",
            models.join("dog.jpg").to_str().unwrap(),
            "-t",
            "1",
            "-r",
            &rate.to_string(),
            "-c:v",
            "libx264",
            "-crf",
            "10",
            "-pix_fmt",
            "yuv444p",
        ],
        &input,
    );
    input
}
