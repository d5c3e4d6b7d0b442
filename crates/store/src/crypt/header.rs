//! An encrypted object's header: which key sealed it, and what makes the key and nonces of its
//! segments unique to it.
//!
//! Version 2 (`FRESCOE2`, the one written) derives a key per object, as age derives a file's
//! payload key: HKDF-SHA256 over the store key with the 16 random bytes of salt the header
//! holds. Two objects never share a key, so their segments' nonces can simply count from zero,
//! and no number of objects makes a (key, nonce) pair repeat. A second key derived the same way
//! authenticates the header itself (HMAC-SHA256, cut to 4 bytes): a header whose salt or key id
//! was altered fails with its own error before any segment is tried. (The segments' tags cover
//! the header too, as their associated data; the header's tag is there to say which part was
//! altered, not to protect it.)
//!
//! Version 1 (`FRESCOE1`) sealed every object with the store key itself and a random 7-byte
//! nonce prefix, so a nonce could repeat across objects once about 2^28 had been sealed. Its
//! objects still open; none is written any more.
//!
//! ```text
//! v1: "FRESCOE1" | key id (4) | segment size (u32 BE) | nonce prefix (7) | zero (9)
//! v2: "FRESCOE2" | key id (4) | salt (16) | header tag (4)
//! ```
//!
//! Both are 32 bytes, so an object's plaintext size still follows from its sealed size alone.

use std::ops::Range;

use aead_stream::NewStream;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use hmac::{Hmac, Mac};
use object_store::path::Path;
use sha2::Sha256;

use super::{corrupt, StoreKey, StoreKeys, Stream, HEADER_BYTES, SEGMENT_BYTES, STORE_NAME};

const MAGIC_V1: &[u8; 8] = b"FRESCOE1";
const MAGIC_V2: &[u8; 8] = b"FRESCOE2";
/// `StreamBE32` takes 5 bytes of ChaCha20-Poly1305's 12-byte nonce for the counter and flag.
const NONCE_PREFIX_BYTES: usize = 7;
const KEY_ID: Range<usize> = 8..12;
/// Version 1: the nonce prefix.
const V1_PREFIX: Range<usize> = 16..16 + NONCE_PREFIX_BYTES;
/// Version 2: the salt of the object's keys, and the header's tag.
const V2_SALT: Range<usize> = 12..28;
const V2_TAG: Range<usize> = 28..32;
/// HKDF's `info` for each key derived from the store key and an object's salt.
const OBJECT_KEY_INFO: &[u8] = b"fresco-store v2 object key";
const HEADER_KEY_INFO: &[u8] = b"fresco-store v2 header key";

/// The format an object was sealed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatVersion {
    /// One key for every object, a random 56-bit nonce prefix (read only).
    V1,
    /// A key per object from HKDF (written).
    V2,
}

/// One object's header, parsed.
pub(super) struct Header {
    pub(super) bytes: [u8; HEADER_BYTES],
    version: FormatVersion,
}

/// The keys of one version-2 object.
struct ObjectKeys {
    cipher: ChaCha20Poly1305,
    header_mac: Hmac<Sha256>,
}

impl ObjectKeys {
    fn derive(master: &[u8; 32], salt: &[u8]) -> ObjectKeys {
        let hkdf = hkdf::Hkdf::<Sha256>::new(Some(salt), master);
        let mut object_key = [0u8; 32];
        let mut header_key = [0u8; 32];
        // 32 bytes are far below HKDF-SHA256's limit of 255 * 32: expand cannot fail.
        hkdf.expand(OBJECT_KEY_INFO, &mut object_key)
            .expect("32 bytes from HKDF-SHA256");
        hkdf.expand(HEADER_KEY_INFO, &mut header_key)
            .expect("32 bytes from HKDF-SHA256");
        ObjectKeys {
            cipher: ChaCha20Poly1305::new_from_slice(&object_key).expect("32-byte key"),
            header_mac: <Hmac<Sha256> as KeyInit>::new_from_slice(&header_key)
                .expect("HMAC takes any key length"),
        }
    }

    fn header_tag(&self, header: &[u8]) -> [u8; 4] {
        let mut mac = self.header_mac.clone();
        mac.update(&header[..V2_TAG.start]);
        let full = mac.finalize().into_bytes();
        [full[0], full[1], full[2], full[3]]
    }
}

impl Header {
    /// A new header (the current version) for an object sealed by `key`, and the cipher of the
    /// object's segments.
    pub(super) fn new(key: &StoreKey) -> (Header, ChaCha20Poly1305) {
        let mut bytes = [0u8; HEADER_BYTES];
        bytes[..8].copy_from_slice(MAGIC_V2);
        bytes[KEY_ID].copy_from_slice(&key.id);
        rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut bytes[V2_SALT])
            .expect("the operating system's random source");
        let keys = ObjectKeys::derive(&key.master, &bytes[V2_SALT]);
        let tag = keys.header_tag(&bytes);
        bytes[V2_TAG].copy_from_slice(&tag);
        let header = Header {
            bytes,
            version: FormatVersion::V2,
        };
        (header, keys.cipher)
    }

    /// A version-1 header, as objects were sealed before version 2 (for tests of reading them).
    #[cfg(test)]
    pub(super) fn new_v1(key: &StoreKey) -> (Header, ChaCha20Poly1305) {
        let mut bytes = [0u8; HEADER_BYTES];
        bytes[..8].copy_from_slice(MAGIC_V1);
        bytes[KEY_ID].copy_from_slice(&key.id);
        bytes[12..16].copy_from_slice(&(SEGMENT_BYTES as u32).to_be_bytes());
        rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut bytes[V1_PREFIX])
            .expect("the operating system's random source");
        let header = Header {
            bytes,
            version: FormatVersion::V1,
        };
        (header, key.cipher.clone())
    }

    pub(super) fn parse(bytes: &[u8], location: &Path) -> object_store::Result<Header> {
        let bad = |why: &str| corrupt(location, why.to_string());
        let bytes: [u8; HEADER_BYTES] = bytes
            .try_into()
            .map_err(|_| bad("shorter than its header"))?;
        let version =
            match &bytes[..8] {
                magic if magic == MAGIC_V2 => FormatVersion::V2,
                magic if magic == MAGIC_V1 => {
                    if bytes[12..16] != (SEGMENT_BYTES as u32).to_be_bytes() {
                        return Err(bad("sealed with an unsupported segment size"));
                    }
                    FormatVersion::V1
                }
                _ => return Err(bad(
                    "not an encrypted fresco object (no header): written to the folder directly?",
                )),
            };
        Ok(Header { bytes, version })
    }

    #[cfg(test)]
    pub(super) fn version(&self) -> FormatVersion {
        self.version
    }

    /// The cipher that opens the object's segments. A version-2 header must carry its own tag:
    /// an altered salt or key id fails here, naming the header.
    pub(super) fn opening_cipher(
        &self,
        keys: &StoreKeys,
        location: &Path,
    ) -> object_store::Result<ChaCha20Poly1305> {
        let id = &self.bytes[KEY_ID];
        let key = keys.by_id(id).ok_or_else(|| object_store::Error::Generic {
            store: STORE_NAME,
            source: format!(
                "{location}: sealed with key {}, which this store does not hold (it has {})",
                hex::encode(id),
                keys.key_ids().join(", ")
            )
            .into(),
        })?;
        match self.version {
            FormatVersion::V1 => Ok(key.cipher.clone()),
            FormatVersion::V2 => {
                let derived = ObjectKeys::derive(&key.master, &self.bytes[V2_SALT]);
                let mut mac = derived.header_mac.clone();
                mac.update(&self.bytes[..V2_TAG.start]);
                mac.verify_truncated_left(&self.bytes[V2_TAG])
                    .map_err(|_| header_tampered(location))?;
                Ok(derived.cipher)
            }
        }
    }

    /// The nonce prefix of the object's segments: version 2 keys are the object's own, so its
    /// segments count from a zero prefix.
    pub(super) fn nonce_prefix(&self) -> [u8; NONCE_PREFIX_BYTES] {
        match self.version {
            FormatVersion::V1 => self.bytes[V1_PREFIX].try_into().expect("7 bytes of prefix"),
            FormatVersion::V2 => [0u8; NONCE_PREFIX_BYTES],
        }
    }

    /// The STREAM of the object's segments under `cipher`.
    pub(super) fn stream(&self, cipher: ChaCha20Poly1305) -> Stream {
        Stream::from_aead(cipher, (&self.nonce_prefix()).into())
    }
}

/// The error of a version-2 header whose tag does not match.
pub(super) fn header_tampered(location: &Path) -> object_store::Error {
    corrupt(
        location,
        "the header failed authentication: its salt or key id was altered, or another key \
         with the same id sealed it"
            .to_string(),
    )
}
