//! The folder of the real models (`FRESCO_MODEL_DIR`), for the tests that use them.

use std::path::{Path, PathBuf};

/// The folder `FRESCO_MODEL_DIR` names when it holds `NAME.onnx`; otherwise `None`, after
/// printing why the test is skipped.
///
/// A relative folder is taken from the test's working folder (cargo runs integration tests in
/// the crate's folder) or else from the workspace root (where CI gives it from).
pub fn real_model_dir(name: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("FRESCO_MODEL_DIR").filter(|d| !d.is_empty()) else {
        eprintln!("skipping: FRESCO_MODEL_DIR not set (point it at the folder holding {name}.onnx, e.g. ../shared/models)");
        return None;
    };
    let dir = PathBuf::from(dir);
    let dir = if dir.is_relative() {
        let here = std::env::current_dir().unwrap_or_default().join(&dir);
        let from_root = workspace_root().join(&dir);
        if here.join(format!("{name}.onnx")).is_file() {
            here
        } else {
            from_root
        }
    } else {
        dir
    };
    let file = dir.join(format!("{name}.onnx"));
    if !file.is_file() {
        eprintln!(
            "skipping: FRESCO_MODEL_DIR set but {} is missing",
            file.display()
        );
        return None;
    }
    Some(dir)
}

/// The workspace's root folder (this crate sits in `crates/testkit`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
