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

/// A Python with pyarrow: `FRESCO_TEST_PYTHON`, the project's venv, or `python3`; where none
/// has it, the caller skips, unless `FRESCO_REQUIRE_PYARROW=1` (then it fails).
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
    assert!(
        std::env::var("FRESCO_REQUIRE_PYARROW").as_deref() != Ok("1"),
        "FRESCO_REQUIRE_PYARROW=1 but no Python (FRESCO_TEST_PYTHON, .fresco/venv, python3) \
         imports pyarrow"
    );
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

/// A PNG whose header claims `width` x `height` RGB pixels, all zero, with the data of `rows`
/// of them (20000 x 20000 is 1.2 GB decoded, about a megabyte here).
pub fn zero_png(path: &Path, width: u32, height: u32, rows: usize) {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut png, b"IHDR", &header);
    // Each row is a filter byte and the pixels, all zero.
    chunk(&mut png, b"IDAT", &zlib_zeros(1 + 3 * width as usize, rows));
    chunk(&mut png, b"IEND", &[]);
    std::fs::write(path, png).unwrap();
}

/// A zlib stream of `copies` x `unit` zero bytes: one deflate block of `unit` zeros, compressed
/// once and repeated (a block of zeros refers only to zeros, so each copy decodes the same
/// anywhere), so that a gigabyte of zeros costs nothing to make.
pub fn zlib_zeros(unit: usize, copies: usize) -> Vec<u8> {
    let mut compress = flate2::Compress::new(flate2::Compression::best(), false);
    let mut block = Vec::with_capacity(unit);
    compress
        .compress_vec(&vec![0u8; unit], &mut block, flate2::FlushCompress::Sync)
        .unwrap();
    let mut out = vec![0x78, 0xDA];
    for _ in 0..copies {
        out.extend_from_slice(&block);
    }
    out.extend_from_slice(&[0x01, 0x00, 0x00, 0xFF, 0xFF]); // an empty final stored block
                                                            // Adler-32 of zeros: its low sum stays 1, its high sum counts the bytes.
    let high = ((unit * copies) % 65521) as u32;
    out.extend_from_slice(&((high << 16) | 1).to_be_bytes());
    out
}
