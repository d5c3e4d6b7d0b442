//! Small-object operations: whole and ranged reads, atomic and conditional puts, metadata,
//! listings and deletes.

use std::ops::Range;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{Result, StoreError};
use crate::{key, ObjectInfo, Store};

impl Store {
    /// Reads a whole object into memory; for small objects (manifests, logs, markers).
    pub async fn get_bytes(&self, key: &str) -> Result<Bytes> {
        let (_, bytes) = self.get_with_info(key).await?;
        Ok(bytes)
    }

    /// The backend's answer to a read of the whole object at `key`.
    async fn read(&self, key: &str) -> Result<object_store::GetResult> {
        let path = self.path(key)?;
        self.inner
            .get(&path)
            .await
            .map_err(|e| self.backend_error(key, "read", e))
    }

    /// Streams a whole object, in the backend's pieces, for serving large objects without
    /// holding them in memory. The [`ObjectInfo`] comes from the same request.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<(
        ObjectInfo,
        futures_util::stream::BoxStream<'static, Result<Bytes>>,
    )> {
        let got = self.read(key).await?;
        let info = self.info(got.meta.clone());
        let url = self.object_url(key);
        let stream = got
            .into_stream()
            .map_err(move |e| StoreError::Backend {
                url: url.clone(),
                operation: "read",
                source: e,
            })
            .boxed();
        Ok((info, stream))
    }

    /// Reads the bytes `range` of an object (`start..end`, end exclusive). A range that reaches
    /// past the end of the object is cut at the end; one that starts past it is an error.
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let path = self.path(key)?;
        if range.start > range.end {
            return Err(StoreError::BadRange {
                url: self.object_url(key),
                start: range.start,
                end: range.end,
            });
        }
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let bytes = self
            .inner
            .get_range(&path, range)
            .await
            .map_err(|e| self.backend_error(key, "read a range of", e))?;
        crate::metrics::read(&self.display, bytes.len() as u64);
        Ok(bytes)
    }

    /// Writes an object in one atomic put, replacing any object at `key`. The returned
    /// `last_modified` is this machine's clock when the put completed ([`Store::head`] gives
    /// the store's own).
    pub async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<ObjectInfo> {
        let path = self.path(key)?;
        let size = bytes.len() as u64;
        let put = self
            .inner
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|e| self.backend_error(key, "write", e))?;
        crate::metrics::written(&self.display, size);
        Ok(ObjectInfo {
            key: key.to_string(),
            size,
            etag: put.e_tag,
            version: put.version,
            last_modified: now_ms(),
        })
    }

    /// Creates an object only when there is none at `key` (a conditional put): `true` when this
    /// call created it, `false` when an object was already there (left untouched). Stores
    /// without conditional creates give [`StoreError::NotSupported`].
    pub async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool> {
        let path = self.path(key)?;
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .inner
            .put_opts(&path, PutPayload::from(bytes), options)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.backend_error(key, "conditionally create", e)),
        }
    }

    /// What the store knows about the object at `key`, or `None` when there is none.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let path = self.path(key)?;
        match self.inner.head(&path).await {
            Ok(meta) => Ok(Some(self.info(meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.backend_error(key, "look up", e)),
        }
    }

    /// Every object under `prefix` (all pages), sorted by key. The prefix matches whole
    /// segments: `a/b` lists `a/b/c` but not `a/bc`; `""` lists the whole store.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let full = key::join(&self.prefix, &key::parse_prefix(prefix)?);
        let listing = self.inner.list(Some(&full));
        let metas: Vec<_> = listing
            .try_collect()
            .await
            .map_err(|e| self.backend_error(prefix, "list", e))?;
        let mut infos: Vec<ObjectInfo> = metas.into_iter().map(|m| self.info(m)).collect();
        infos.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(infos)
    }

    /// Every object under `prefix` as the backend lists it, page by page, never all held: for
    /// listings too large for [`Store::list`] (a dataset of a million images). The order is the
    /// backend's (key order on Azure and S3; a local folder's is the file system's).
    pub fn list_stream<'a>(
        &'a self,
        prefix: &str,
    ) -> Result<futures_util::stream::BoxStream<'a, Result<ObjectInfo>>> {
        let full = key::join(&self.prefix, &key::parse_prefix(prefix)?);
        let shown = prefix.to_string();
        Ok(self
            .inner
            .list(Some(&full))
            .map(move |meta| {
                meta.map(|m| self.info(m))
                    .map_err(|e| self.backend_error(&shown, "list", e))
            })
            .boxed())
    }

    /// An object's bytes with what the same request says of it (size, ETag), for reading one
    /// object whose version matters (a dataset's item, checked against what was pinned).
    pub async fn get_with_info(&self, key: &str) -> Result<(ObjectInfo, Bytes)> {
        let got = self.read(key).await?;
        let info = self.info(got.meta.clone());
        let bytes = got
            .bytes()
            .await
            .map_err(|e| self.backend_error(key, "read", e))?;
        crate::metrics::read(&self.display, bytes.len() as u64);
        Ok((info, bytes))
    }

    /// [`Store::get_with_info`] that never holds more than `cap` bytes: the bytes are `None`
    /// when the object is larger than `cap` (from the answer's size, then nothing is read), or
    /// turns out to be while read (rewritten meanwhile; the read stops there). For reading
    /// untrusted objects whose size a job limits (a dataset's items).
    pub async fn get_with_info_within(
        &self,
        key: &str,
        cap: u64,
    ) -> Result<(ObjectInfo, Option<Bytes>)> {
        let got = self.read(key).await?;
        let info = self.info(got.meta.clone());
        if info.size > cap {
            return Ok((info, None));
        }
        let mut pieces = got.into_stream();
        let mut bytes = bytes::BytesMut::with_capacity(info.size as usize);
        while let Some(piece) = pieces.next().await {
            let piece = piece.map_err(|e| self.backend_error(key, "read", e))?;
            if (bytes.len() + piece.len()) as u64 > cap {
                crate::metrics::read(&self.display, bytes.len() as u64);
                return Ok((info, None));
            }
            bytes.extend_from_slice(&piece);
        }
        crate::metrics::read(&self.display, bytes.len() as u64);
        Ok((info, Some(bytes.freeze())))
    }

    /// Deletes the object at `key`; deleting an object that is not there is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match self.inner.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.backend_error(key, "delete", e)),
        }
    }

    /// Deletes every object under `prefix` (whole segments, as in [`Store::list`]) and returns
    /// how many were deleted. `""` empties the whole store (within its own prefix).
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let full = key::join(&self.prefix, &key::parse_prefix(prefix)?);
        let locations = self
            .inner
            .list(Some(&full))
            .map_ok(|meta| meta.location)
            .boxed();
        let mut deleted = self.inner.delete_stream(locations);
        let mut count = 0;
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) => count += 1,
                // Deleted by someone else meanwhile: gone all the same.
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.backend_error(prefix, "delete under", e)),
            }
        }
        Ok(count)
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
