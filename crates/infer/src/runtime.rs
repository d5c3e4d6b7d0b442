//! Finding and loading the ONNX Runtime shared library. Nothing is downloaded at build time: the
//! library comes from the pip `onnxruntime` wheel, found through `FRESCO_ORT_LIB`/`ORT_DYLIB_PATH`,
//! the project-local virtual environment that `scripts/setup.sh` makes (`.fresco/venv`), or the site-packages
//! of `python3`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// How to get the library, said in every error about it.
pub const INSTALL_HINT: &str =
    "install it with `pip install onnxruntime` (or run scripts/setup.sh, \
which installs it in .fresco/venv), or point FRESCO_ORT_LIB at libonnxruntime.so";

/// Why the runtime could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    #[error("ONNX Runtime library not found (looked in: {searched}); {INSTALL_HINT}")]
    NotFound { searched: String },
    #[error(
        "cannot load ONNX Runtime from {path}: {reason}; {INSTALL_HINT} (version 1.31 or newer)"
    )]
    Load { path: String, reason: String },
}

static ENVIRONMENT: OnceLock<Result<(ort::environment::Environment, PathBuf), RuntimeError>> =
    OnceLock::new();

/// The process-wide ONNX Runtime environment, loading the library on first use.
pub fn environment() -> Result<&'static ort::environment::Environment, RuntimeError> {
    let loaded = ENVIRONMENT.get_or_init(|| {
        let path = locate_library()?;
        let builder = ort::init_from(&path).map_err(|e| RuntimeError::Load {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let env = builder
            .with_name("fresco")
            .build()
            .map_err(|e| RuntimeError::Load {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        Ok((env, path))
    });
    match loaded {
        Ok((env, _)) => Ok(env),
        Err(e) => Err(e.clone()),
    }
}

/// The library that was loaded, if any.
pub fn loaded_library() -> Option<&'static Path> {
    match ENVIRONMENT.get() {
        Some(Ok((_, path))) => Some(path),
        _ => None,
    }
}

/// Looks for libonnxruntime in the documented places, in order.
pub fn locate_library() -> Result<PathBuf, RuntimeError> {
    let mut searched = Vec::new();
    for var in ["FRESCO_ORT_LIB", "ORT_DYLIB_PATH"] {
        if let Some(value) = std::env::var_os(var) {
            let path = PathBuf::from(value);
            if path.is_file() {
                return Ok(path);
            }
            // A set variable that points nowhere is a mistake worth naming.
            return Err(RuntimeError::NotFound {
                searched: format!("{var}={} (no such file)", path.display()),
            });
        }
    }
    searched.push("FRESCO_ORT_LIB, ORT_DYLIB_PATH (unset)".to_string());

    let mut roots = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/fresco -> the checkout that built it.
        for ancestor in exe.ancestors().skip(1).take(4) {
            roots.push(ancestor.to_path_buf());
        }
    }
    for root in roots {
        let venv_lib = root.join(".fresco/venv/lib");
        let mut capis: Vec<PathBuf> = std::fs::read_dir(&venv_lib)
            .map(|dirs| {
                dirs.filter_map(|d| d.ok())
                    .map(|d| d.path().join("site-packages/onnxruntime/capi"))
                    .collect()
            })
            .unwrap_or_default();
        capis.sort();
        for capi in capis {
            if let Some(lib) = find_in_capi(&capi) {
                return Ok(lib);
            }
        }
        searched.push(venv_lib.display().to_string());
    }

    match python_package_dir() {
        Some(dir) => {
            let capi = dir.join("capi");
            if let Some(lib) = find_in_capi(&capi) {
                return Ok(lib);
            }
            searched.push(capi.display().to_string());
        }
        None => searched.push("python3's site-packages (no onnxruntime package)".into()),
    }
    Err(RuntimeError::NotFound {
        searched: searched.join(", "),
    })
}

/// `libonnxruntime.so.X.Y.Z` in a wheel's `capi` folder (the newest if several).
fn find_in_capi(capi: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(capi)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so") || n == "libonnxruntime.dylib")
        })
        .collect();
    found.sort();
    found.pop()
}

/// Where `python3` would import onnxruntime from, without importing it.
fn python_package_dir() -> Option<PathBuf> {
    let script = "import importlib.util as u\ns = u.find_spec('onnxruntime')\nprint(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')";
    let out = Command::new("python3").args(["-c", script]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!text.is_empty()).then(|| PathBuf::from(text))
}
