//! From what the user named (a style or a file) to a loaded [`Engine`], with the digest of the
//! exact model bytes, which every run records.

use std::path::PathBuf;

use fresco_core::ModelChoice;
use fresco_infer::registry::{Registry, RegistryError, ResolvedModel};
use fresco_infer::{onnx_build, Engine, EngineError, EngineOptions};
use sha2::{Digest, Sha256};

/// A model ready to style frames.
#[derive(Debug)]
pub struct LoadedModel {
    pub engine: Engine,
    /// The style name, or the file's name.
    pub name: String,
    /// Where the bytes came from ("built-in", or a path).
    pub source: String,
    /// sha256 of the model bytes.
    pub digest: String,
}

/// Why a model could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{}: no such model file", path.display())]
    FileMissing { path: PathBuf },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl ModelError {
    /// True when the ONNX Runtime library is what is missing, or the device it should use (a
    /// CUDA provider, a GPU).
    pub fn is_missing_runtime(&self) -> bool {
        matches!(
            self,
            ModelError::Engine(EngineError::Runtime(_) | EngineError::DeviceUnavailable(_))
        )
    }
}

/// The bytes of a built-in model, by name.
pub fn builtin_model_bytes(name: &str) -> Option<Vec<u8>> {
    match name {
        "vintage" => Some(onnx_build::vintage_filter_model()),
        _ => None,
    }
}

/// Resolves and loads a model. `allow_download` lets a missing zoo style be fetched.
pub fn load_model(
    choice: &ModelChoice,
    registry: &Registry,
    options: &EngineOptions,
    allow_download: bool,
) -> Result<LoadedModel, ModelError> {
    let (name, source, bytes) = match choice {
        ModelChoice::File(path) => {
            let bytes =
                std::fs::read(path).map_err(|_| ModelError::FileMissing { path: path.clone() })?;
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string());
            (name, path.display().to_string(), bytes)
        }
        ModelChoice::Style(style) => match registry.resolve(style, allow_download)? {
            ResolvedModel::File { name, path, .. } => {
                let bytes = std::fs::read(&path)
                    .map_err(|_| ModelError::FileMissing { path: path.clone() })?;
                (name.to_string(), path.display().to_string(), bytes)
            }
            ResolvedModel::Builtin { name } => {
                let bytes = builtin_model_bytes(name).expect("every built-in style has bytes");
                (name.to_string(), "built-in".to_string(), bytes)
            }
        },
    };
    let digest = hex::encode(Sha256::digest(&bytes));
    let engine = Engine::from_bytes(&bytes, &source, options)?;
    Ok(LoadedModel {
        engine,
        name,
        source,
        digest,
    })
}
