//! Why a submission cannot become a job: a [`Rejection`] with a stable code and a message, from
//! every error the checks can meet (the pipeline's, ffprobe's, the model's, the store's). The
//! server answers the code in JSON; the CLI exits by it.

use fresco_infer::registry::RegistryError;
use fresco_infer::EngineError;
use fresco_media::probe::ProbeError;
use fresco_pipeline::{ModelError, RunError};
use fresco_store::{ObjectUrl, StoreError};
use fresco_wire::InputRejected;

/// Why a submission cannot become a job.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Rejection {
    /// A field is wrong in itself (400).
    #[error("{message}")]
    BadField { code: &'static str, message: String },
    /// The request is well formed but its input, output or model cannot be used (422).
    #[error("{message}")]
    Unusable { code: &'static str, message: String },
    /// Something the server needs is missing now (ffprobe, ONNX Runtime, a download): 503. The
    /// detail is logged, not shown.
    #[error("{detail}")]
    Unavailable { code: &'static str, detail: String },
    /// A bug or an unexpected failure: 500. The detail is logged, not shown.
    #[error("{0}")]
    Internal(String),
}

impl From<InputRejected> for Rejection {
    /// A submission refused by the wire crate's checks for what it says: a bad field.
    fn from(e: InputRejected) -> Self {
        Rejection::BadField {
            code: e.code,
            message: e.message,
        }
    }
}

impl Rejection {
    /// The stable code (`input-missing`, `model-external-data`, ...); `internal` for a bug.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::BadField { code, .. }
            | Rejection::Unusable { code, .. }
            | Rejection::Unavailable { code, .. } => code,
            Rejection::Internal(_) => "internal",
        }
    }
}

/// A store that cannot be used: a bad URL is the request's fault, the rest is the server's.
pub(crate) fn store_rejection(url: &ObjectUrl, e: StoreError) -> Rejection {
    match e {
        StoreError::BadUrl { .. } | StoreError::BadKey { .. } => Rejection::BadField {
            code: "bad-url",
            message: format!("{}: {e}", url.url),
        },
        StoreError::NotFound { .. } => unusable("input-missing", e),
        other => Rejection::Unavailable {
            code: "store-unavailable",
            detail: format!("{}: {other}", url.url),
        },
    }
}

pub(crate) fn unusable(code: &'static str, e: impl std::fmt::Display) -> Rejection {
    Rejection::Unusable {
        code,
        message: e.to_string(),
    }
}

/// Every [`RunError`] the checks can give, each with its own code.
pub(crate) fn run_rejection(e: RunError) -> Rejection {
    match e {
        RunError::InputMissing { .. } => unusable("input-missing", e),
        RunError::InputEmpty { .. } => unusable("input-empty", e),
        RunError::NotMedia { .. } | RunError::Decode { .. } => unusable("input-not-media", e),
        RunError::NoVideo { .. } => unusable("input-not-video", e),
        RunError::Refused { .. } => unusable("input-format-not-allowed", e),
        RunError::OverLimit(breach) => Rejection::BadField {
            code: breach.code,
            message: breach.message,
        },
        RunError::Unsupported { .. } => unusable("input-unsupported", e),
        RunError::OutputExists { .. } => unusable("output-exists", e),
        RunError::OutputUnwritable { .. } => unusable("output-unwritable", e),
        RunError::StreamNotSupported { .. } => unusable("stream-not-supported", e),
        RunError::EncoderUnusable { .. } => unusable("encoder-unusable", e),
        RunError::SameFile { .. } => unusable("same-file", e),
        RunError::Model { .. } => unusable("model-unusable", e),
        // Not checked on the server (it needs no GPU): the plan task tries the hardware.
        RunError::Hardware { .. } => unusable("hardware-unavailable", e),
        RunError::Tool(ref tool) if tool.is_missing_tool() => Rejection::Unavailable {
            code: "tool-unavailable",
            detail: e.to_string(),
        },
        RunError::Tool(_) | RunError::Encode { .. } | RunError::Canceled => {
            Rejection::Internal(e.to_string())
        }
    }
}

pub(crate) fn probe_rejection(e: ProbeError) -> Rejection {
    match e {
        ProbeError::NotMedia { .. } | ProbeError::BadJson { .. } => unusable("input-not-media", e),
        ProbeError::Refused { path, reason } => run_rejection(RunError::Refused { path, reason }),
        ProbeError::OverLimit(breach) => run_rejection(RunError::OverLimit(breach)),
        ProbeError::Tool(tool) => run_rejection(RunError::Tool(tool)),
    }
}

pub(crate) fn model_rejection(e: ModelError) -> Rejection {
    let unavailable = |code, e: &ModelError| Rejection::Unavailable {
        code,
        detail: e.to_string(),
    };
    match &e {
        ModelError::FileMissing { .. } => unusable("model-missing", e),
        ModelError::Inspect(refusal) => unusable(refusal.code(), e),
        ModelError::Registry(r) => match r {
            RegistryError::UnknownStyle { .. } => unusable("unknown-style", e),
            RegistryError::Offline { .. } | RegistryError::NoPinnedDigest { .. } => {
                unusable("model-not-installed", e)
            }
            RegistryError::NotDownloadable { .. } => Rejection::Internal(e.to_string()),
            RegistryError::HttpStatus { .. }
            | RegistryError::Network { .. }
            | RegistryError::Truncated { .. }
            | RegistryError::SizeMismatch { .. }
            | RegistryError::DigestMismatch { .. }
            | RegistryError::Io { .. } => unavailable("model-download-failed", &e),
        },
        ModelError::Engine(engine) => match engine {
            EngineError::InvalidModel { .. } | EngineError::NotImageModel { .. } => {
                unusable("model-unusable", e)
            }
            EngineError::Runtime(_)
            | EngineError::Device { .. }
            | EngineError::DeviceUnavailable(_) => unavailable("model-runtime-unavailable", &e),
            EngineError::Run { .. } => Rejection::Internal(e.to_string()),
        },
    }
}
