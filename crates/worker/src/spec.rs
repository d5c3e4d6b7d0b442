//! What a job asks for, as stored in the queue: input, output, the pinned model and options. A
//! job's identity is derived from these, so that submitting the same work twice finds the job
//! already there (which is how an interrupted `fresco run` resumes).
//!
//! Input and output are local paths or object URLs (`az://container/in/clip.mp4`, see
//! [`ObjectUrl`]); a URL is kept in the `PathBuf` as its text.

use std::path::{Path, PathBuf};

use fresco_core::{ChannelOrder, Device, InputRange, ModelChoice};
use fresco_infer::inspect::ModelBudget;
use fresco_infer::registry::Registry;
use fresco_infer::EngineOptions;
use fresco_pipeline::{check_model, load_model, LoadedModel, ModelError, VideoOptions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod object;

pub use object::{is_object_url, BadObjectUrl, ObjectUrl};

/// A model pinned by the digest of its bytes, with how it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPin {
    pub choice: ModelChoice,
    /// The style name or file stem, for messages.
    pub name: String,
    /// sha256 of the model bytes: a worker refuses a model whose bytes differ.
    pub digest: String,
    pub input_range: Option<InputRange>,
    pub channel_order: Option<ChannelOrder>,
    /// "cpu" or "cuda": the kind of device the job was submitted for.
    pub device_kind: String,
    /// "fp32" or "fp16" (`--precision`): every worker of the job loads the model so.
    pub precision: String,
}

/// Everything a worker needs to do a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpec {
    pub input: PathBuf,
    pub output: PathBuf,
    pub model: ModelPin,
    pub options: VideoOptions,
    /// Frames per chunk; `None`: sized from a calibration at plan time.
    pub chunk_frames: Option<u64>,
}

impl JobSpec {
    /// The job's identity: the input's fingerprint (absolute path, size, modification time; for
    /// an object URL: URL, size and ETag, from a `head` request), the model digest, the options
    /// and the output path. Equal identities are the same work.
    pub fn identity(&self) -> String {
        let fingerprint = match ObjectUrl::of(&self.input) {
            Some(Ok(url)) => object_fingerprint(&url, head_object(&url).as_ref()),
            Some(Err(_)) | None => input_fingerprint(&self.input),
        };
        self.identity_from(&fingerprint)
    }

    /// [`JobSpec::identity`] for an object input whose `head` the caller already has (`None`:
    /// there is no such object), without asking the store again.
    pub fn identity_with_object(&self, object: Option<&fresco_store::ObjectInfo>) -> String {
        match ObjectUrl::of(&self.input) {
            Some(Ok(url)) => self.identity_from(&object_fingerprint(&url, object)),
            Some(Err(_)) | None => self.identity(),
        }
    }

    fn identity_from(&self, fingerprint: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(fingerprint.as_bytes());
        hasher.update(b"\0");
        hasher.update(self.model.digest.as_bytes());
        hasher.update(b"\0");
        hasher.update(serde_json::to_vec(&self.options).expect("options serialise"));
        hasher.update(b"\0");
        hasher.update(serde_json::to_vec(&self.chunk_frames).expect("serialises"));
        hasher.update(b"\0");
        hasher.update(self.output.to_string_lossy().as_bytes());
        hex::encode(hasher.finalize())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a job spec serialises")
    }

    pub fn from_json(text: &str) -> Result<JobSpec, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// "path|size|mtime-ns", or just the path when it cannot be read.
fn input_fingerprint(input: &Path) -> String {
    match std::fs::metadata(input) {
        Ok(meta) => {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            format!("{}|{}|{mtime}", input.display(), meta.len())
        }
        Err(_) => input.display().to_string(),
    }
}

/// "url|size|etag" of an object input, or just the URL when there is no such object.
fn object_fingerprint(url: &ObjectUrl, object: Option<&fresco_store::ObjectInfo>) -> String {
    match object {
        Some(info) => format!(
            "{}|{}|{}",
            url.url,
            info.size,
            info.etag.as_deref().unwrap_or("")
        ),
        None => url.url.clone(),
    }
}

/// The `head` of an object, asked on a thread of its own so that it works from sync and async
/// callers alike; `None` when there is no such object or the store cannot be reached.
fn head_object(url: &ObjectUrl) -> Option<fresco_store::ObjectInfo> {
    let store = url.open().ok()?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                runtime.block_on(store.head(&url.key)).ok().flatten()
            })
            .join()
            .ok()
            .flatten()
    })
}

/// An absolute form of `path` without requiring it to exist (the output usually does not).
pub fn absolute(path: &Path) -> PathBuf {
    if let Ok(canonical) = path.canonicalize() {
        return canonical;
    }
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    // Canonicalise the folder, which exists when the output is about to be written.
    match (joined.parent(), joined.file_name()) {
        (Some(dir), Some(name)) => dir
            .canonicalize()
            .map(|d| d.join(name))
            .unwrap_or(joined.clone()),
        _ => joined,
    }
}

/// Why a pinned model cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("model {name}: its bytes changed since the job was submitted (sha256 {found}, the job pinned {pinned}); restore the file or submit a new job")]
    DigestChanged {
        name: String,
        pinned: String,
        found: String,
    },
    /// The trial load in a child process refused the model (see [`crate::model_trial`]).
    #[error(transparent)]
    Trial(#[from] crate::model_trial::TrialError),
    #[error("model {name}: the job pins an unusable precision: {source}")]
    Precision {
        name: String,
        source: fresco_infer::fp16::UnknownPrecision,
    },
}

/// Loads the model a job pinned, on this worker's device, and checks that its bytes are the ones
/// pinned. Never downloads: a worker uses what its model folder or cache holds. A user's model
/// file is first inspected statically, then (with `trial`) tried in a child process.
pub fn load_pinned_model(
    pin: &ModelPin,
    registry: &Registry,
    device: Device,
    threads: Option<usize>,
    trial: Option<&crate::model_trial::ModelTrial>,
) -> Result<LoadedModel, PinError> {
    let options = EngineOptions {
        threads,
        device,
        input_range: pin.input_range,
        channel_order: pin.channel_order,
        precision: pin
            .precision
            .parse()
            .map_err(|source| PinError::Precision {
                name: pin.name.clone(),
                source,
            })?,
        ..EngineOptions::default()
    };
    // The same static inspection the server made, before ONNX Runtime sees the bytes: a job
    // queued directly (or a model file changed since) must not bring external data or a
    // constant-folding bomb into this process.
    let checked = check_model(&pin.choice, registry, false, &ModelBudget::default())?;
    if checked.digest != pin.digest {
        return Err(PinError::DigestChanged {
            name: pin.name.clone(),
            pinned: pin.digest.clone(),
            found: checked.digest,
        });
    }
    // A user's file: what loading builds is learned in a child process with limits first.
    if let (Some(trial), ModelChoice::File(path)) = (trial, &pin.choice) {
        crate::model_trial::trial_load(trial, path, &checked.digest)?;
    }
    let loaded = load_model(&pin.choice, registry, &options, false)?;
    if loaded.digest != pin.digest {
        return Err(PinError::DigestChanged {
            name: pin.name.clone(),
            pinned: pin.digest.clone(),
            found: loaded.digest,
        });
    }
    Ok(loaded)
}

/// "cpu" or "cuda".
pub fn device_kind(device: Device) -> &'static str {
    match device {
        Device::Cpu => "cpu",
        Device::Cuda(_) => "cuda",
    }
}
