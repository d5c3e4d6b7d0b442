//! Exit codes, one per failure class, so that scripts can tell a bad input from a missing tool.

use fresco_pipeline::{FailureClass, ModelError, RunError};

/// Also what clap exits with for arguments it refuses.
pub const BAD_ARGUMENTS: u8 = 2;
pub const INPUT_MISSING: u8 = 3;
pub const BAD_INPUT: u8 = 4;
pub const OUTPUT: u8 = 5;
pub const MISSING_DEPENDENCY: u8 = 6;
pub const MODEL: u8 = 7;
pub const PROCESSING: u8 = 8;
pub const CANCELED: u8 = 130;

/// A failure with its message and exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code,
        }
    }
}

/// The exit code of a failure class.
pub fn code_for(class: FailureClass) -> u8 {
    match class {
        FailureClass::InputMissing => INPUT_MISSING,
        FailureClass::BadInput => BAD_INPUT,
        FailureClass::Output => OUTPUT,
        FailureClass::MissingDependency => MISSING_DEPENDENCY,
        FailureClass::Model => MODEL,
        FailureClass::Processing => PROCESSING,
        FailureClass::Canceled => CANCELED,
    }
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Failure {
        Failure::new(code_for(e.class()), e.to_string())
    }
}

impl From<ModelError> for Failure {
    fn from(e: ModelError) -> Failure {
        use fresco_infer::EngineError;
        let code = if let ModelError::Engine(EngineError::DeviceUnavailable(d)) = &e {
            // cuda:N with no GPU N is a bad argument; a machine without CUDA lacks a dependency.
            if d.is_bad_argument() {
                BAD_ARGUMENTS
            } else {
                MISSING_DEPENDENCY
            }
        } else if e.is_missing_runtime() {
            MISSING_DEPENDENCY
        } else {
            MODEL
        };
        Failure::new(code, e.to_string())
    }
}

impl From<fresco_submit::Rejection> for Failure {
    /// The checks every entrance makes before queueing, refused: the message as the API gives
    /// it, the exit code by the refusal's code.
    fn from(refused: fresco_submit::Rejection) -> Failure {
        use fresco_submit::Rejection;
        let code = match refused.code() {
            "input-missing" => INPUT_MISSING,
            "output-exists"
            | "output-unwritable"
            | "same-file"
            | "stream-not-supported"
            | "encoder-unusable" => OUTPUT,
            "precision-needs-cuda"
            | "path-not-absolute"
            | "invalid-field"
            | "bad-precision"
            | fresco_submit::TEMPORAL_NOT_APPLICABLE => BAD_ARGUMENTS,
            "hardware-unavailable" | "tool-unavailable" | "model-runtime-unavailable" => {
                MISSING_DEPENDENCY
            }
            "unknown-style" => MODEL,
            code if code.starts_with("model-") => MODEL,
            _ => match refused {
                Rejection::BadField { .. } | Rejection::Unusable { .. } => BAD_INPUT,
                Rejection::Unavailable { .. } | Rejection::Internal(_) => PROCESSING,
            },
        };
        Failure::new(code, refused.to_string())
    }
}
