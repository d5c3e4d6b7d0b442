//! Shared by the scoring tests: where the real models are, the venv's Python, pictures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use fresco_score::{Frame, Scorer};

/// `FRESCO_MODEL_DIR/scoring`, or `None` (and a message) when it is not set or absent.
pub fn scoring_dir() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("FRESCO_MODEL_DIR").map(PathBuf::from) else {
        println!(
            "SKIPPED: FRESCO_MODEL_DIR is not set (scripts/test.sh sets it to ../shared/models)"
        );
        return None;
    };
    let dir = dir.join("scoring");
    if !dir.join("README.md").is_file() {
        println!("SKIPPED: {} is absent", dir.display());
        return None;
    }
    Some(dir)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The project venv's python3 when it imports `modules`; otherwise `None` with a message, or a
/// panic when `require` (a `FRESCO_REQUIRE_*` variable) is 1.
pub fn python_with(modules: &str, require: &str) -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("FRESCO_TEST_PYTHON").map(PathBuf::from),
        Some(repo_root().join(".fresco/venv/bin/python3")),
    ];
    for python in candidates.into_iter().flatten() {
        let ok = Command::new(&python)
            .args(["-c", &format!("import {modules}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(python);
        }
    }
    assert!(
        std::env::var(require).as_deref() != Ok("1"),
        "{require}=1 but no python3 (FRESCO_TEST_PYTHON or .fresco/venv) imports {modules}"
    );
    println!("SKIPPED: no python3 (FRESCO_TEST_PYTHON or .fresco/venv) imports {modules}");
    None
}

/// Runs `script` with `args`; its stdout parsed as JSON.
pub fn run_python(python: &Path, script: &str, args: &[&Path]) -> serde_json::Value {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "python printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A picture decoded to RGB24, with its size.
pub fn load_rgb(path: &Path) -> (Vec<u8>, u32, u32) {
    let img = image::open(path).expect("decode picture").to_rgb8();
    let (w, h) = img.dimensions();
    (img.into_raw(), w, h)
}

/// What the decoder would do: scale a picture to the scorer's scaled size (bilinear).
pub fn scale_for(scorer: &Scorer, rgb: &[u8], w: u32, h: u32) -> (Vec<u8>, u32, u32) {
    let (sw, sh) = scorer.scaled_size(w, h);
    let img = image::RgbImage::from_raw(w, h, rgb.to_vec()).unwrap();
    let scaled = image::imageops::resize(&img, sw, sh, image::imageops::FilterType::Triangle);
    (scaled.into_raw(), sw, sh)
}

/// A frame for `scorer` from a picture already scaled.
pub fn frame<'a>(rgb: &'a [u8], scaled: (u32, u32), original: (u32, u32), index: u64) -> Frame<'a> {
    Frame {
        rgb,
        width: scaled.0,
        height: scaled.1,
        frame_width: original.0,
        frame_height: original.1,
        source: "dog.jpg",
        index,
        pts: index as i64 * 512,
        time: index as f64 / 25.0,
    }
}
