//! Large objects: streaming uploads (multipart, published only when complete) and streaming
//! downloads (into a temporary file, renamed into place when complete) under a scratch budget.

use std::path::Path as FsPath;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::budget::{Reservation, ScratchBudget};
use crate::error::{Result, StoreError};
use crate::ops::now_ms;
use crate::{ObjectInfo, Store};

/// Parts uploaded at the same time; with the part being filled, at most this many parts plus
/// one are in memory.
const UPLOAD_CONCURRENCY: usize = 4;

/// A completed [`Store::download_file`].
#[derive(Debug)]
#[must_use = "dropping the reservation gives its bytes back while the file is still on disk"]
pub struct Downloaded {
    /// Bytes written to the local file.
    pub size: u64,
    /// The share of the scratch budget the file holds, when a budget was given. Keep it as long
    /// as the file exists; drop it when the file is deleted.
    pub reservation: Option<Reservation>,
}

impl Store {
    /// Uploads a local file to `key`, streaming it: files smaller than one part go in a single
    /// put, larger ones in a multipart upload of [`Store::with_part_size`] parts. The object
    /// appears only when the upload completes; on any error the upload is aborted and nothing is
    /// left at `key` (an object already there stays as it was).
    pub async fn upload_file(&self, key: &str, local: &FsPath) -> Result<ObjectInfo> {
        let file = tokio::fs::File::open(local)
            .await
            .map_err(|e| StoreError::local(local, "open for upload", e))?;
        self.upload_reader(key, file).await
    }

    /// Uploads everything `reader` yields to `key`, as [`Store::upload_file`] does: one put when
    /// it ends within the first part, a multipart upload otherwise; published only if the reader
    /// reaches its end without error. Dropping the returned future abandons the upload, which
    /// publishes nothing either.
    pub async fn upload_reader<R>(&self, key: &str, mut reader: R) -> Result<ObjectInfo>
    where
        R: AsyncRead + Unpin + Send,
    {
        let path = self.path(key)?;
        let first = self.read_part(key, &mut reader).await?;
        if first.len() < self.part_size {
            let size = first.len() as u64;
            let put = self
                .inner
                .put(&path, PutPayload::from(first))
                .await
                .map_err(|e| self.backend_error(key, "upload to", e))?;
            crate::metrics::written(&self.display, size);
            return Ok(self.uploaded(key, size, put));
        }

        let upload = self
            .inner
            .put_multipart(&path)
            .await
            .map_err(|e| self.backend_error(key, "start an upload to", e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        let mut size = 0u64;
        let streamed: Result<()> = async {
            let mut part = first;
            while !part.is_empty() {
                writer
                    .wait_for_capacity(UPLOAD_CONCURRENCY)
                    .await
                    .map_err(|e| self.backend_error(key, "upload a part to", e))?;
                size += part.len() as u64;
                writer.put(part);
                part = self.read_part(key, &mut reader).await?;
            }
            Ok(())
        }
        .await;
        match streamed {
            Ok(()) => {
                let put = writer
                    .finish()
                    .await
                    .map_err(|e| self.backend_error(key, "complete the upload to", e))?;
                crate::metrics::written(&self.display, size);
                Ok(self.uploaded(key, size, put))
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    // Uncommitted parts are invisible and expire on their own; say so and go on.
                    tracing::warn!(url = %self.object_url(key), error = %abort, "could not abort an upload");
                }
                Err(e)
            }
        }
    }

    /// Reads up to one part from `reader`: a short part means the reader has ended.
    async fn read_part<R>(&self, key: &str, reader: &mut R) -> Result<Bytes>
    where
        R: AsyncRead + Unpin + Send,
    {
        let mut buf = Vec::with_capacity(self.part_size);
        reader
            .take(self.part_size as u64)
            .read_to_end(&mut buf)
            .await
            .map_err(|source| StoreError::UploadSource {
                url: self.object_url(key),
                source,
            })?;
        Ok(Bytes::from(buf))
    }

    fn uploaded(&self, key: &str, size: u64, put: object_store::PutResult) -> ObjectInfo {
        ObjectInfo {
            key: key.to_string(),
            size,
            etag: put.e_tag,
            version: put.version,
            last_modified: now_ms(),
        }
    }

    /// Downloads the object at `key` to the local file `local`, streaming it into a temporary
    /// file beside `local` and renaming that into place when complete, so `local` is either the
    /// whole object or untouched (also when the returned future is dropped). The parent folder
    /// is created if missing.
    ///
    /// With a `budget`, the object's size is reserved before anything is written; when it does
    /// not fit, the download fails with [`StoreError::ScratchFull`] (saying how much is needed and
    /// how much is free) and writes nothing. The reservation is returned in [`Downloaded`].
    pub async fn download_file(
        &self,
        key: &str,
        local: &FsPath,
        budget: Option<&ScratchBudget>,
    ) -> Result<Downloaded> {
        let path = self.path(key)?;
        let got = self
            .inner
            .get(&path)
            .await
            .map_err(|e| self.backend_error(key, "download", e))?;
        let expected = got.meta.size;
        let reservation = budget
            .map(|b| b.reserve(expected))
            .transpose()
            .map_err(|source| StoreError::ScratchFull {
                url: self.object_url(key),
                source,
            })?;

        let folder = match local.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        tokio::fs::create_dir_all(&folder)
            .await
            .map_err(|e| StoreError::local(&folder, "create the folder of", e))?;
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Removed when dropped: on an error, and when this future is dropped mid-way.
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".part")
            .tempfile_in(&folder)
            .map_err(|e| StoreError::local(&folder, "create a temporary file in", e))?;
        let std_file = temp
            .as_file()
            .try_clone()
            .map_err(|e| StoreError::local(temp.path(), "open", e))?;
        let mut file = tokio::fs::File::from_std(std_file);

        let mut stream = got.into_stream();
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.backend_error(key, "download", e))?;
            file.write_all(&chunk)
                .await
                .map_err(|e| StoreError::local(temp.path(), "write", e))?;
            written += chunk.len() as u64;
        }
        if written != expected {
            return Err(StoreError::SizeMismatch {
                url: self.object_url(key),
                expected,
                actual: written,
            });
        }
        file.sync_all()
            .await
            .map_err(|e| StoreError::local(temp.path(), "flush", e))?;
        drop(file);
        temp.persist(local)
            .map_err(|e| StoreError::local(local, "rename a download into", e.error))?;
        crate::metrics::read(&self.display, written);
        Ok(Downloaded {
            size: written,
            reservation,
        })
    }
}
