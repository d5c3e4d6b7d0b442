//! Every storage location of fresco as a URL: inputs, chunk intermediates, outputs and logs live
//! in a [`Store`], opened from a URL by [`Store::from_url`] and backed by the `object_store` crate.
//!
//! | URL | backend | settings |
//! | --- | --- | --- |
//! | `./fresco-data`, `/abs/path`, `file:///abs/path` | a local folder (created if missing) | none |
//! | `az://container/prefix`, `azure://...` | Azure Blob Storage, or Azurite | `AZURE_STORAGE_*` variables |
//! | `s3://bucket/prefix` | Amazon S3 or an S3-compatible server | `AWS_*` variables |
//!
//! The prefix of a URL is applied to every key, so users of a store name objects relative to
//! it, and two stores with different prefixes never see each other's objects. Keys follow the
//! rules of [`StoreError::BadKey`] (no `..`, no leading `/`, no empty segments, no NUL), so a key
//! cannot escape its store. Credentials come only from the environment, never from the URL, so
//! [`Store::display_url`] is safe to log.
//!
//! # Atomic publishing
//! Object stores have no rename, so nothing is ever published by writing in place:
//! [`Store::upload_file`] streams a file as a multipart upload whose object appears only when the
//! upload completes (Azure commits the block list, S3 completes the upload, a local folder renames
//! a staged file), and aborts the upload on any error, so a failed or abandoned upload leaves
//! nothing at the key. [`Store::put_bytes`] is one atomic put and [`Store::put_if_absent`] a
//! conditional create. [`Store::download_file`] writes a temporary file beside its target and
//! renames it into place when complete.
//!
//! # How a chunk worker reads a remote input
//! A video input is read by ffmpeg, which seeks freely (to a keyframe before each chunk, into the
//! index at the end of an MP4, back and forth between streams). Serving those seeks as ranged
//! reads over HTTP would cost a round trip per seek and a lot of buffering logic, for every chunk.
//! So a worker **downloads a remote input once per job into its scratch folder**, with
//! [`Store::download_file`], under a [`ScratchBudget`] that it never exceeds (the size is reserved
//! before the first byte is written; a download that does not fit fails with
//! [`StoreError::ScratchFull`] and is retried elsewhere or later), and keeps that file for all the
//! chunks of that job that it scores; the [`Reservation`] lives as long as the file does.
//! Ranged reads ([`Store::get_range`]) remain for callers that need only a part of an object
//! (a probe of the header, a log tail). Large objects always stream; nothing here holds a whole
//! video in memory.
//!
//! # From sync code
//! The methods are `async` and need a tokio runtime (the cloud clients and the local folder's
//! blocking file I/O run on it); sync code such as the video pipeline calls them with
//! `Runtime::block_on`:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let folder = tempfile::tempdir()?;
//! # let url = folder.path().to_str().unwrap();
//! let runtime = tokio::runtime::Runtime::new()?;
//! let store = fresco_store::Store::from_url(url)?;
//! runtime.block_on(store.put_bytes("logs/job-1.txt", "planned 12 chunks\n".into()))?;
//! let info = runtime.block_on(store.head("logs/job-1.txt"))?.expect("just written");
//! assert_eq!(info.size, 18);
//! # Ok(()) }
//! ```

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use serde::{Deserialize, Serialize};

mod budget;
pub mod crypt;
mod error;
mod key;
mod location;
mod metrics;
mod object_url;
mod ops;
pub mod system;
mod transfer;

pub use budget::{BudgetExceeded, Reservation, ScratchBudget};
pub use crypt::{set_local_keys, KeyError, StoreKeys};
pub use error::{Result, StoreError};
pub use metrics::{describe_metrics, zero_metrics, READ_BYTES, WRITTEN_BYTES};
pub use object_url::{
    absolute, fingerprint, fingerprint_with_object, is_object_url, BadObjectUrl, ObjectUrl,
};
pub use transfer::Downloaded;

/// The smallest part size of a multipart upload (S3 refuses smaller parts but the last).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// The default part size of a multipart upload; smaller files go in a single put.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// A storage location: a local folder, an Azure Blob container or an S3 bucket, with a prefix.
///
/// Cheap to clone (the backend is shared); `Send + Sync`, so one store serves every task.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// Put in front of every key (empty for a local folder, whose root already is the folder).
    prefix: Path,
    display: String,
    part_size: usize,
}

/// What a store knows about one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// The object's key, relative to the store's prefix.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag, which changes whenever the object is rewritten (where the store has one).
    pub etag: Option<String>,
    /// Its version id (where the store keeps versions).
    pub version: Option<String>,
    /// When it was last written, in milliseconds since the Unix epoch.
    pub last_modified: i64,
}

impl Store {
    /// Opens the store a URL names: a folder path (absolute or relative to the current folder;
    /// created if missing), `file:///abs/path`, `az://container/prefix` (or `azure://`), or
    /// `s3://bucket/prefix`.
    ///
    /// Azure settings come from the environment as `object_store` reads them:
    /// `AZURE_STORAGE_ACCOUNT_NAME` and `AZURE_STORAGE_ACCOUNT_KEY` (or `AZURE_STORAGE_SAS_TOKEN`,
    /// a client secret, managed identity...), `AZURE_STORAGE_ENDPOINT` for another endpoint, and
    /// `AZURE_STORAGE_USE_EMULATOR=true` for Azurite (at `AZURITE_BLOB_STORAGE_URL`, by default
    /// `http://127.0.0.1:10000`, with the well-known `devstoreaccount1`). An
    /// `AZURE_STORAGE_CONNECTION_STRING` fills in what those do not say. S3 settings come from
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL` (an
    /// S3-compatible server) and `AWS_ALLOW_HTTP`.
    ///
    /// Nothing is sent over the network here; a wrong account or key shows at the first request.
    pub fn from_url(url: &str) -> Result<Self> {
        let opened = location::Location::parse(url)?.open(url)?;
        Ok(Self {
            inner: opened.store,
            prefix: opened.prefix,
            display: opened.display,
            part_size: DEFAULT_PART_SIZE,
        })
    }

    /// A local folder whose objects are encrypted with `keys` (see [`crypt`]), whatever the
    /// process-wide setting ([`set_local_keys`], `FRESCO_STORE_KEY`) says.
    pub fn local_encrypted(folder: &std::path::Path, keys: StoreKeys) -> Result<Self> {
        let plain = Self::from_url_plain(folder)?;
        Ok(Self {
            inner: Arc::new(crypt::EncryptedStore::new(plain.inner, keys)),
            ..plain
        })
    }

    /// A local folder as it is on disk, never encrypted.
    fn from_url_plain(folder: &std::path::Path) -> Result<Self> {
        let display = folder.display().to_string();
        let store = object_store::local::LocalFileSystem::new_with_prefix(folder)
            .map_err(|e| StoreError::Open {
                url: display.clone(),
                reason: e.to_string(),
            })?
            .with_automatic_cleanup(true)
            .with_fsync(true);
        Ok(Self {
            inner: Arc::new(store),
            prefix: Path::default(),
            display,
            part_size: DEFAULT_PART_SIZE,
        })
    }

    /// Sets the part size of multipart uploads (at least [`MIN_PART_SIZE`]; smaller values are
    /// raised to it). Files smaller than one part are uploaded with a single put.
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(MIN_PART_SIZE);
        self
    }

    /// The store's URL in canonical form (`file:///...`, `az://...`, `s3://...`), without
    /// secrets: safe to log and to show.
    pub fn display_url(&self) -> String {
        self.display.clone()
    }

    /// The URL of the object at `key`, for messages.
    pub fn object_url(&self, key: &str) -> String {
        format!("{}/{}", self.display.trim_end_matches('/'), key)
    }

    /// The full backend path of a checked key.
    fn path(&self, key: &str) -> Result<Path> {
        Ok(key::join(&self.prefix, &key::parse_key(key)?))
    }

    fn info(&self, meta: ObjectMeta) -> ObjectInfo {
        ObjectInfo {
            key: key::strip(&self.prefix, &meta.location)
                .unwrap_or_else(|| meta.location.to_string()),
            size: meta.size,
            etag: meta.e_tag,
            version: meta.version,
            last_modified: meta.last_modified.timestamp_millis(),
        }
    }

    fn backend_error(
        &self,
        key: &str,
        operation: &'static str,
        e: object_store::Error,
    ) -> StoreError {
        StoreError::from_backend(self.object_url(key), operation, e)
    }
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}
