//! The one error type of the crate: every variant names the URL (or key, or local path) it is
//! about and says what is wrong with it.

use std::path::PathBuf;

use crate::budget::BudgetExceeded;

/// What went wrong with a store, an object or a local file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage URL is not one of the supported forms, or is malformed.
    #[error(
        "unsupported storage URL '{url}': {reason}; use a folder (a path, or file:///abs/path), \
         az://container/prefix (or azure://), or s3://bucket/prefix"
    )]
    BadUrl { url: String, reason: String },

    /// The URL names a backend this build of fresco was compiled without.
    #[error(
        "storage URL '{url}' needs the '{feature}' feature, which this build of fresco leaves \
         out (build it with `cargo build -p fresco --features {feature}`)"
    )]
    BackendNotBuilt { url: String, feature: &'static str },

    /// The backend could not be set up from the URL and the environment (missing account,
    /// credentials, malformed settings, a local folder that cannot be created).
    #[error("cannot open the store {url}: {reason}")]
    Open { url: String, reason: String },

    /// An object key (or a listing prefix) breaks the key rules.
    #[error("bad object key '{key}': {reason}")]
    BadKey { key: String, reason: &'static str },

    /// A byte range that ends before it starts.
    #[error("bad byte range {start}..{end} for {url}: it ends before it starts")]
    BadRange { url: String, start: u64, end: u64 },

    /// There is no object at this URL.
    #[error("no object at {url}")]
    NotFound { url: String },

    /// The store cannot do this operation (for example a conditional create).
    #[error("{operation} is not supported by the store holding {url}: {detail}")]
    NotSupported {
        url: String,
        operation: &'static str,
        detail: String,
    },

    /// The store refused or failed a request.
    #[error("cannot {operation} {url}: {source}")]
    Backend {
        url: String,
        operation: &'static str,
        #[source]
        source: object_store::Error,
    },

    /// A download would not fit in the worker's scratch budget.
    #[error("cannot download {url}: {source}")]
    ScratchFull {
        url: String,
        #[source]
        source: BudgetExceeded,
    },

    /// An object's byte count did not match what the store announced (it changed, or the
    /// connection ended early).
    #[error("{url}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        url: String,
        expected: u64,
        actual: u64,
    },

    /// Reading or writing a local file failed.
    #[error("cannot {operation} local file {path}: {source}", path = path.display())]
    LocalIo {
        path: PathBuf,
        operation: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// Reading the data being uploaded failed; nothing was published.
    #[error("reading the data for {url} failed, nothing was uploaded: {source}")]
    UploadSource {
        url: String,
        #[source]
        source: std::io::Error,
    },
}

/// The result type of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Sorts an `object_store` error about `url` into the variant a caller can act on.
    pub(crate) fn from_backend(
        url: String,
        operation: &'static str,
        e: object_store::Error,
    ) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Self::NotFound { url },
            object_store::Error::NotSupported { source } => Self::NotSupported {
                url,
                operation,
                detail: source.to_string(),
            },
            object_store::Error::NotImplemented {
                operation: op,
                implementer,
            } => Self::NotSupported {
                url,
                operation,
                detail: format!("{implementer} does not implement {op}"),
            },
            source => Self::Backend {
                url,
                operation,
                source,
            },
        }
    }

    pub(crate) fn local(
        path: &std::path::Path,
        operation: &'static str,
        source: std::io::Error,
    ) -> Self {
        Self::LocalIo {
            path: path.to_path_buf(),
            operation,
            source,
        }
    }
}
