//! From what the user named (a style or a file) to a loaded [`Engine`], with the digest of the
//! exact model bytes, which every run records; or, where no runtime may see the model (the API
//! server), to a [`CheckedModel`]: the digest and what the static inspection of its bytes found.

use std::path::PathBuf;

use fresco_core::ModelChoice;
use fresco_infer::inspect::{inspect_model, InspectError, InspectedModel, ModelBudget, Origin};
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
    /// The static inspection refused the model's bytes (see [`fresco_infer::inspect`]).
    #[error(transparent)]
    Inspect(#[from] InspectError),
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

/// A model's bytes, before any runtime sees them.
struct ModelBytes {
    name: String,
    source: String,
    bytes: Vec<u8>,
    origin: Origin,
    /// The model file's folder, where its external data (if any) is.
    folder: Option<PathBuf>,
}

/// Reads the bytes `choice` names: a file (a user's: [`Origin::Submitted`]), or a style from the
/// registry (the operator's: [`Origin::Operator`]).
fn read_model(
    choice: &ModelChoice,
    registry: &Registry,
    allow_download: bool,
) -> Result<ModelBytes, ModelError> {
    let (name, source, bytes, origin, folder) = match choice {
        ModelChoice::File(path) => {
            let bytes =
                std::fs::read(path).map_err(|_| ModelError::FileMissing { path: path.clone() })?;
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string());
            (
                name,
                path.display().to_string(),
                bytes,
                Origin::Submitted,
                folder_of(path),
            )
        }
        ModelChoice::Style(style) => match registry.resolve(style, allow_download)? {
            ResolvedModel::File { name, path, .. } => {
                let bytes = std::fs::read(&path)
                    .map_err(|_| ModelError::FileMissing { path: path.clone() })?;
                (
                    name.to_string(),
                    path.display().to_string(),
                    bytes,
                    Origin::Operator,
                    folder_of(&path),
                )
            }
            ResolvedModel::Builtin { name } => {
                let bytes = builtin_model_bytes(name).expect("every built-in style has bytes");
                (
                    name.to_string(),
                    "built-in".to_string(),
                    bytes,
                    Origin::Operator,
                    None,
                )
            }
        },
    };
    Ok(ModelBytes {
        name,
        source,
        bytes,
        origin,
        folder,
    })
}

/// The absolute folder of a model file: where ONNX Runtime must look for its external data
/// (never the working directory).
fn folder_of(path: &std::path::Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    absolute.parent().map(PathBuf::from)
}

/// A model checked without a runtime: what a server pins in a job.
#[derive(Debug, Clone)]
pub struct CheckedModel {
    /// The style name, or the file's name.
    pub name: String,
    /// Where the bytes came from ("built-in", or a path).
    pub source: String,
    /// sha256 of the model bytes.
    pub digest: String,
    /// What the static inspection found (its input, output and layout).
    pub inspected: InspectedModel,
}

/// Resolves a model and inspects its bytes statically (no ONNX Runtime session, so nothing in the
/// model is loaded, folded or read from other files): a user's file is held to `budget` and may
/// not reference anything outside its bytes; an operator's style may keep external data.
pub fn check_model(
    choice: &ModelChoice,
    registry: &Registry,
    allow_download: bool,
    budget: &ModelBudget,
) -> Result<CheckedModel, ModelError> {
    let model = read_model(choice, registry, allow_download)?;
    let inspected = inspect_model(&model.bytes, &model.source, model.origin, budget)?;
    Ok(CheckedModel {
        digest: hex::encode(Sha256::digest(&model.bytes)),
        name: model.name,
        source: model.source,
        inspected,
    })
}

/// Resolves and loads a model. `allow_download` lets a missing zoo style be fetched.
pub fn load_model(
    choice: &ModelChoice,
    registry: &Registry,
    options: &EngineOptions,
    allow_download: bool,
) -> Result<LoadedModel, ModelError> {
    let ModelBytes {
        name,
        source,
        bytes,
        origin: _,
        folder,
    } = read_model(choice, registry, allow_download)?;
    let digest = hex::encode(Sha256::digest(&bytes));
    let engine = Engine::from_bytes_in(&bytes, &source, options, folder.as_deref())?;
    Ok(LoadedModel {
        engine,
        name,
        source,
        digest,
    })
}
