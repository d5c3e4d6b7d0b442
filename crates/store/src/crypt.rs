//! Encryption at rest for local stores: [`EncryptedStore`] wraps an `ObjectStore` (the local
//! folder) so that every object's bytes on disk are ciphertext, and a copied disk reveals
//! nothing but object names and approximate sizes.
//!
//! # Format
//! The STREAM construction of RustCrypto's `aead` crate (`StreamBE32`) over ChaCha20-Poly1305:
//! the plaintext is cut into segments of [`SEGMENT_BYTES`], each sealed on its own under the
//! object's own key (derived with HKDF-SHA256 from the store key and a random salt in the
//! object's header, as age does: see [`header`]) with a nonce made of the segment's number and a
//! last-segment flag. So
//! - a read of any byte range decrypts only the segments it covers (ffmpeg seeks in MP4s);
//! - every segment is authenticated before any of its bytes are released;
//! - segments cannot be reordered, dropped, or the object cut short at a segment boundary
//!   (the segment that would then be last was not sealed as last).
//!
//! ```text
//! header (32 bytes, the associated data of every segment):
//!   "FRESCOE2" | key id (4) | salt (16) | header tag (4)
//! segments: ciphertext (SEGMENT_BYTES, the last 0..=SEGMENT_BYTES) + tag (16), ...
//! ```
//!
//! The plaintext size follows from the ciphertext size alone, so `head` and listings need no
//! read. Objects of the first format (`FRESCOE1`: one key for every object and a 56-bit random
//! nonce prefix) still open. The key id (4 bytes of a hash of the key) says which key sealed an object: a store may
//! hold several keys ([`StoreKeys`]: the first seals, all open), which is how keys rotate, and an
//! object sealed with a key the store lacks fails with a message naming that id.
//!
//! Objects are not bound to their path, so a store may copy and rename them without re-sealing;
//! someone who can write the disk can swap two objects of the same store (but not forge one).
//!
//! # Keys
//! `FRESCO_STORE_KEY` (the key text) or `FRESCO_STORE_KEY_FILE` (a file of keys, one per line,
//! first seals): each key is 32 bytes written as 64 hex digits or as base64
//! (`openssl rand -hex 32`). `#` comments and blank lines are skipped.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, RwLock};

use aead_stream::{NewStream, StreamBE32, StreamPrimitive};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};
use sha2::{Digest, Sha256};

/// Plaintext bytes per segment.
pub const SEGMENT_BYTES: usize = 64 * 1024;
/// The Poly1305 tag after each segment.
const TAG_BYTES: usize = 16;
/// The header before the first segment.
pub const HEADER_BYTES: usize = 32;
const SEALED_SEGMENT: u64 = (SEGMENT_BYTES + TAG_BYTES) as u64;
/// The environment variables read by [`StoreKeys::from_env`].
pub const KEY_ENV: &str = "FRESCO_STORE_KEY";
pub const KEY_FILE_ENV: &str = "FRESCO_STORE_KEY_FILE";
const STORE_NAME: &str = "fresco-encrypted";

mod header;

pub use header::FormatVersion;
use header::Header;

type Stream = StreamBE32<ChaCha20Poly1305>;

struct StoreKey {
    id: [u8; 4],
    /// The key itself: version-2 objects' keys are derived from it.
    master: [u8; 32],
    /// Version-1 objects were sealed with it directly.
    cipher: ChaCha20Poly1305,
}

/// The keys of an encrypted store: the first seals new objects, all open existing ones.
/// `Debug` shows key ids only.
#[derive(Clone)]
pub struct StoreKeys {
    keys: Arc<Vec<StoreKey>>,
}

impl fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreKeys")
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

/// Why the keys of an encrypted store could not be read. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store encryption key ({source_name}): {reason}")]
pub struct KeyError {
    pub source_name: String,
    pub reason: String,
}

fn key_error(source: &str, reason: impl Into<String>) -> KeyError {
    KeyError {
        source_name: source.to_string(),
        reason: reason.into(),
    }
}

impl StoreKeys {
    /// Keys from text: one per line, each 64 hex digits or the base64 of 32 bytes; `source`
    /// names where the text came from, for errors (never the key itself).
    pub fn from_text(text: &str, source: &str) -> Result<StoreKeys, KeyError> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bytes = if line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit()) {
                hex::decode(line).ok()
            } else {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(line)
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(line))
                    .ok()
            };
            let bytes = bytes.filter(|b| b.len() == 32).ok_or_else(|| {
                key_error(
                    source,
                    format!(
                        "line {}: a key is 32 bytes, as 64 hex digits or base64 \
                         (`openssl rand -hex 32`)",
                        n + 1
                    ),
                )
            })?;
            keys.push(Self::key(&bytes));
        }
        if keys.is_empty() {
            return Err(key_error(source, "no key in it"));
        }
        Ok(StoreKeys {
            keys: Arc::new(keys),
        })
    }

    fn key(bytes: &[u8]) -> StoreKey {
        let digest = Sha256::new()
            .chain_update(b"fresco-store-key-id\0")
            .chain_update(bytes)
            .finalize();
        StoreKey {
            id: [digest[0], digest[1], digest[2], digest[3]],
            master: bytes.try_into().expect("32-byte key"),
            cipher: ChaCha20Poly1305::new_from_slice(bytes).expect("32-byte key"),
        }
    }

    /// Keys from a file of keys.
    pub fn from_file(path: &std::path::Path) -> Result<StoreKeys, KeyError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| key_error(&name, format!("cannot read it: {e}")))?;
        Self::from_text(&text, &name)
    }

    /// Keys from `FRESCO_STORE_KEY_FILE` or `FRESCO_STORE_KEY` (the file first); `None` when
    /// neither is set.
    pub fn from_env() -> Result<Option<StoreKeys>, KeyError> {
        if let Some(file) = std::env::var_os(KEY_FILE_ENV).filter(|v| !v.is_empty()) {
            return Self::from_file(std::path::Path::new(&file)).map(Some);
        }
        match std::env::var(KEY_ENV) {
            Ok(text) if !text.trim().is_empty() => Self::from_text(&text, KEY_ENV).map(Some),
            _ => Ok(None),
        }
    }

    /// A new random key as text, for `fresco` to print and for tests.
    pub fn generate_text() -> String {
        let mut key = [0u8; 32];
        rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut key)
            .expect("the operating system's random source");
        hex::encode(key)
    }

    /// The ids of the keys (hex), sealing key first.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| hex::encode(k.id)).collect()
    }

    fn sealing(&self) -> &StoreKey {
        &self.keys[0]
    }

    fn by_id(&self, id: &[u8]) -> Option<&StoreKey> {
        self.keys.iter().find(|k| k.id == id)
    }
}

/// Keys that every local store opened from a URL uses; read once from the environment unless
/// set with [`set_local_keys`].
static LOCAL_KEYS: RwLock<Option<Option<StoreKeys>>> = RwLock::new(None);

/// Makes every local store opened after this call encrypt with `keys` (`None`: plaintext),
/// instead of what `FRESCO_STORE_KEY`/`FRESCO_STORE_KEY_FILE` say. For `--store-key-file`.
pub fn set_local_keys(keys: Option<StoreKeys>) {
    *LOCAL_KEYS.write().unwrap_or_else(|p| p.into_inner()) = Some(keys);
}

/// The keys local stores are opened with.
pub(crate) fn local_keys() -> Result<Option<StoreKeys>, KeyError> {
    if let Some(set) = LOCAL_KEYS
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        return Ok(set.clone());
    }
    let keys = StoreKeys::from_env()?;
    let mut slot = LOCAL_KEYS.write().unwrap_or_else(|p| p.into_inner());
    Ok(slot.get_or_insert(keys).clone())
}

fn corrupt(location: &Path, why: String) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE_NAME,
        source: format!("{location}: {why}").into(),
    }
}

fn tampered(location: &Path, segment: u64) -> object_store::Error {
    corrupt(
        location,
        format!(
            "segment {segment} failed authentication: the object was altered, cut short, or \
             sealed with another key"
        ),
    )
}

/// The plaintext size of an object of `sealed` bytes; `None` for a size no sealed object has.
pub fn plain_len(sealed: u64) -> Option<u64> {
    let body = sealed.checked_sub(HEADER_BYTES as u64)?;
    let segments = body.div_ceil(SEALED_SEGMENT).max(1);
    let plain = body.checked_sub(segments * TAG_BYTES as u64)?;
    // Only an empty object has an empty segment.
    let last = plain.checked_sub((segments - 1) * SEGMENT_BYTES as u64)?;
    (last > 0 || segments == 1).then_some(plain)
}

/// The sealed size of `plain` bytes.
pub fn sealed_len(plain: u64) -> u64 {
    let segments = plain.div_ceil(SEGMENT_BYTES as u64).max(1);
    HEADER_BYTES as u64 + plain + segments * TAG_BYTES as u64
}

fn segment_count(plain: u64) -> u64 {
    plain.div_ceil(SEGMENT_BYTES as u64).max(1)
}

fn seal_segment(
    stream: &Stream,
    header: &Header,
    position: u64,
    last: bool,
    plain: &[u8],
    out: &mut Vec<u8>,
) -> object_store::Result<()> {
    let position = u32::try_from(position).map_err(|_| object_store::Error::Generic {
        store: STORE_NAME,
        source: "object too large for one encrypted stream".into(),
    })?;
    let mut buffer = Vec::with_capacity(plain.len() + TAG_BYTES);
    buffer.extend_from_slice(plain);
    stream
        .encrypt_in_place(position, last, &header.bytes, &mut buffer)
        .map_err(|_| object_store::Error::Generic {
            store: STORE_NAME,
            source: "encryption failed".into(),
        })?;
    out.extend_from_slice(&buffer);
    Ok(())
}

/// Seals a whole object held in memory.
fn seal(keys: &StoreKeys, plain: &[u8]) -> object_store::Result<Vec<u8>> {
    let (header, cipher) = Header::new(keys.sealing());
    seal_with(&header, cipher, plain)
}

/// Seals `plain` under `header` and the object's `cipher`.
fn seal_with(
    header: &Header,
    cipher: ChaCha20Poly1305,
    plain: &[u8],
) -> object_store::Result<Vec<u8>> {
    let stream = header.stream(cipher);
    let mut out = Vec::with_capacity(sealed_len(plain.len() as u64) as usize);
    out.extend_from_slice(&header.bytes);
    let count = segment_count(plain.len() as u64);
    for n in 0..count {
        let start = (n as usize) * SEGMENT_BYTES;
        let end = (start + SEGMENT_BYTES).min(plain.len());
        seal_segment(
            &stream,
            header,
            n,
            n + 1 == count,
            &plain[start..end],
            &mut out,
        )?;
    }
    Ok(out)
}

/// An `ObjectStore` that seals what it writes to `inner` and opens what it reads.
#[derive(Clone)]
pub struct EncryptedStore {
    inner: Arc<dyn ObjectStore>,
    keys: StoreKeys,
}

impl fmt::Debug for EncryptedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedStore")
            .field("inner", &self.inner)
            .field("keys", &self.keys)
            .finish()
    }
}

impl fmt::Display for EncryptedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Encrypted({})", self.inner)
    }
}

impl EncryptedStore {
    pub fn new(inner: Arc<dyn ObjectStore>, keys: StoreKeys) -> EncryptedStore {
        EncryptedStore { inner, keys }
    }

    fn plain_meta(meta: ObjectMeta) -> object_store::Result<ObjectMeta> {
        let size = plain_len(meta.size).ok_or_else(|| {
            corrupt(
                &meta.location,
                format!(
                    "{} bytes is not the size of an encrypted object (cut short, or written \
                     to the folder directly)",
                    meta.size
                ),
            )
        })?;
        Ok(ObjectMeta { size, ..meta })
    }

    /// Listings keep objects whose size no sealed object has (say, a file dropped into the
    /// folder by hand) with their size on disk; reading them fails with a clear error.
    fn listed_meta(meta: ObjectMeta) -> ObjectMeta {
        match plain_len(meta.size) {
            Some(size) => ObjectMeta { size, ..meta },
            None => meta,
        }
    }
}

#[async_trait]
impl ObjectStore for EncryptedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let mut plain = Vec::with_capacity(payload.content_length());
        for piece in payload.iter() {
            plain.extend_from_slice(piece);
        }
        let sealed = seal(&self.keys, &plain)?;
        self.inner.put_opts(location, sealed.into(), opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        let (header, cipher) = Header::new(self.keys.sealing());
        let stream = header.stream(cipher);
        Ok(Box::new(SealingUpload {
            inner,
            header,
            stream,
            header_sent: false,
            pending: Vec::new(),
            next: 0,
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let GetOptions {
            if_match,
            if_none_match,
            if_modified_since,
            if_unmodified_since,
            range,
            version,
            head,
            extensions,
        } = options;
        // The preconditions and version apply to the sealed object as they are.
        let head_options = GetOptions {
            if_match,
            if_none_match,
            if_modified_since,
            if_unmodified_since,
            range: None,
            version: version.clone(),
            head: true,
            extensions,
        };
        let sealed_head = self.inner.get_opts(location, head_options).await?;
        let attributes = sealed_head.attributes;
        let sealed_meta = sealed_head.meta;
        let meta = Self::plain_meta(sealed_meta.clone())?;
        let plain_range = match &range {
            Some(r) => r
                .as_range(meta.size)
                .map_err(|e| object_store::Error::Generic {
                    store: STORE_NAME,
                    source: format!("{location}: {e}").into(),
                })?,
            None => 0..meta.size,
        };
        if head {
            return Ok(GetResult {
                payload: GetResultPayload::Stream(futures_util::stream::empty().boxed()),
                meta,
                range: plain_range,
                attributes,
                extensions: Default::default(),
            });
        }
        // The same version of the object for the header and the segments.
        let pinned = |range: Range<u64>| GetOptions {
            if_match: sealed_meta.e_tag.clone(),
            version: version.clone(),
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        let header_bytes = self
            .inner
            .get_opts(location, pinned(0..HEADER_BYTES as u64))
            .await?
            .bytes()
            .await?;
        let header = Header::parse(&header_bytes, location)?;
        let opener = SegmentOpener::new(&header, &self.keys, location)?;
        let count = segment_count(meta.size);
        let first = plain_range.start / SEGMENT_BYTES as u64;
        let last = if plain_range.is_empty() {
            first
        } else {
            (plain_range.end - 1) / SEGMENT_BYTES as u64
        };
        let sealed_start = HEADER_BYTES as u64 + first * SEALED_SEGMENT;
        let sealed_end = (HEADER_BYTES as u64 + (last + 1) * SEALED_SEGMENT).min(sealed_meta.size);
        let sealed = self
            .inner
            .get_opts(location, pinned(sealed_start..sealed_end))
            .await?
            .into_stream();
        let payload = opener.open(sealed, location.clone(), first, count, plain_range.clone());
        Ok(GetResult {
            payload: GetResultPayload::Stream(payload),
            meta,
            range: plain_range,
            attributes,
            extensions: Default::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix).map_ok(Self::listed_meta).boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner
            .list_with_offset(prefix, offset)
            .map_ok(Self::listed_meta)
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let mut listed = self.inner.list_with_delimiter(prefix).await?;
        listed.objects = listed.objects.into_iter().map(Self::listed_meta).collect();
        Ok(listed)
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        // Sealed objects are not bound to their path: a copy stays readable.
        self.inner.copy_opts(from, to, options).await
    }
}

/// What opens an object's segments: its key and header.
struct SegmentOpener {
    cipher: ChaCha20Poly1305,
    header: [u8; HEADER_BYTES],
    nonce_prefix: [u8; 7],
}

impl SegmentOpener {
    fn new(header: &Header, keys: &StoreKeys, location: &Path) -> object_store::Result<Self> {
        Ok(SegmentOpener {
            cipher: header.opening_cipher(keys, location)?,
            header: header.bytes,
            nonce_prefix: header.nonce_prefix(),
        })
    }

    /// The plaintext of segments `first..` (of `count`) streamed from their sealed bytes, cut to
    /// `wanted` (plaintext offsets), each segment authenticated before any of it is released.
    fn open(
        self,
        sealed: BoxStream<'static, object_store::Result<Bytes>>,
        location: Path,
        first: u64,
        count: u64,
        wanted: Range<u64>,
    ) -> BoxStream<'static, object_store::Result<Bytes>> {
        struct State {
            sealed: BoxStream<'static, object_store::Result<Bytes>>,
            buffer: BytesMut,
            next: u64,
            ended: bool,
        }
        let last_wanted = if wanted.is_empty() {
            first
        } else {
            (wanted.end - 1) / SEGMENT_BYTES as u64
        };
        let opener = Arc::new(self);
        let state = State {
            sealed,
            buffer: BytesMut::new(),
            next: first,
            ended: false,
        };
        futures_util::stream::try_unfold(state, move |mut state| {
            let opener = Arc::clone(&opener);
            let location = location.clone();
            let wanted = wanted.clone();
            async move {
                // An empty range still opens its one segment: an object cut down to a
                // header and a tag looks empty by its size and must fail, not read as empty.
                if state.next > last_wanted {
                    return Ok(None);
                }
                while (state.buffer.len() as u64) < SEALED_SEGMENT && !state.ended {
                    match state.sealed.next().await {
                        Some(chunk) => state.buffer.extend_from_slice(&chunk?),
                        None => state.ended = true,
                    }
                }
                if state.buffer.is_empty() {
                    return Err(corrupt(
                        &location,
                        format!(
                            "segment {} is missing: the object was cut short",
                            state.next
                        ),
                    ));
                }
                let take = (state.buffer.len() as u64).min(SEALED_SEGMENT) as usize;
                let mut segment = state.buffer.split_to(take).to_vec();
                let position =
                    u32::try_from(state.next).map_err(|_| tampered(&location, state.next))?;
                let stream =
                    Stream::from_aead(opener.cipher.clone(), (&opener.nonce_prefix).into());
                let is_last = state.next + 1 == count;
                stream
                    .decrypt_in_place(position, is_last, &opener.header, &mut segment)
                    .map_err(|_| tampered(&location, state.next))?;
                let start = state.next * SEGMENT_BYTES as u64;
                let to = (wanted.end - start).min(segment.len() as u64) as usize;
                let from = (wanted.start.saturating_sub(start) as usize).min(to);
                state.next += 1;
                Ok(Some((Bytes::from(segment).slice(from..to), state)))
            }
        })
        .boxed()
    }
}

/// A multipart upload that seals full segments as they fill and holds back the last one until
/// it is known to be last (at `complete`). Its parts are whatever was sealed by each call, so
/// it suits a local folder (which writes parts at offsets in call order), not S3's 5 MiB
/// minimum part size.
struct SealingUpload {
    inner: Box<dyn MultipartUpload>,
    header: Header,
    stream: Stream,
    header_sent: bool,
    pending: Vec<u8>,
    next: u64,
}

impl fmt::Debug for SealingUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingUpload")
            .field("inner", &self.inner)
            .field("next_segment", &self.next)
            .finish()
    }
}

impl SealingUpload {
    /// Seals what may be sealed now (`last`: everything, as the final segment).
    fn seal_ready(&mut self, last: bool) -> object_store::Result<Vec<u8>> {
        let mut out = Vec::new();
        if !self.header_sent {
            out.extend_from_slice(&self.header.bytes);
            self.header_sent = true;
        }
        let mut taken = 0;
        while self.pending.len() - taken > SEGMENT_BYTES {
            let segment = &self.pending[taken..taken + SEGMENT_BYTES];
            seal_segment(
                &self.stream,
                &self.header,
                self.next,
                false,
                segment,
                &mut out,
            )?;
            self.next += 1;
            taken += SEGMENT_BYTES;
        }
        if last {
            let rest = &self.pending[taken..];
            seal_segment(&self.stream, &self.header, self.next, true, rest, &mut out)?;
            self.next += 1;
            taken = self.pending.len();
        }
        self.pending.drain(..taken);
        Ok(out)
    }
}

#[async_trait]
impl MultipartUpload for SealingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        for piece in data.iter() {
            self.pending.extend_from_slice(piece);
        }
        match self.seal_ready(false) {
            Ok(out) if out.is_empty() => Box::pin(async { Ok(()) }),
            Ok(out) => self.inner.put_part(out.into()),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let out = self.seal_ready(true)?;
        self.inner.put_part(out.into()).await?;
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

#[cfg(test)]
mod tests;
