//! The parsers of what comes from outside the server, with no HTTP, database or runtime in
//! them: a job submission's body ([`submit::SubmitRequest`]), the locations and sizes it may
//! name ([`limits`]), storage events ([`events`]) and signed URLs ([`signing`]).
//!
//! They live apart from `fresco-server` so that the fuzz targets in `fuzz/` link this crate
//! (and `fresco-media`) only: their instrumented build then compiles a few light crates, not
//! axum, sqlx, object_store and ONNX Runtime's bindings. The server re-exports every module
//! under its old path (`fresco_server::limits`, `fresco_server::signing`, ...).

pub mod events;
pub mod limits;
pub mod signing;
pub mod submit;

pub use submit::{DatasetRequest, ModelRef, ScoringRequest, StreamKindView, SubmitRequest};

/// A submission refused for what it says: a field is wrong in itself, a location is not
/// allowed, the input is too big. Always a client error (HTTP 400); the server turns it into
/// its own error types, whose JSON body carries `code` and `message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InputRejected {
    /// Stable, kebab-case (`invalid-field`, `path-not-allowed`, `input-too-large`, ...).
    pub code: &'static str,
    /// For people: names the field and what is wrong with it.
    pub message: String,
}

impl InputRejected {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        InputRejected {
            code,
            message: message.into(),
        }
    }
}
