//! Scoped, expiring URLs: a client that holds one may read (`GET`, `HEAD`) or write (`PUT`) one
//! object path until a deadline, and nothing else. Pure: no I/O, no clock (callers pass `now`).
//!
//! A signed URL is the object's path with four query parameters:
//!
//! | parameter | meaning |
//! | --- | --- |
//! | `expires` | Unix seconds after which the URL is refused |
//! | `perm` | [`Permission`]: `r` (GET, HEAD), `w` (PUT) or `rw` |
//! | `kid` | which key signed it (8 hex digits of the key's sha256) |
//! | `sig` | HMAC-SHA256 over `fresco-url-v1`, `perm`, the path and `expires`, URL-safe base64 |
//!
//! The method is bound through `perm`: the signature covers the permission, and the permission
//! names the methods, so a URL signed for a `PUT` answers [`SignatureError::WrongMethod`] to a
//! `GET`. The path is signed exactly as it is sent (percent-encoded, as `Uri::path` gives it):
//! any change to it, to `expires` or to `perm` fails [`SignatureError::BadSignature`].
//!
//! **Rotation:** a [`UrlSigner`] holds one or more keys; the first signs, all verify. To rotate,
//! put the new key first and keep the old one second until the longest-lived URL it signed has
//! expired, then drop it. Keys come from `--signing-key-file` (one key per line, `#` comments)
//! or `FRESCO_SIGNING_KEYS` (keys separated by newlines or commas), each at least
//! [`MIN_KEY_BYTES`] bytes of text; without either, the server makes a random key at start
//! ([`UrlSigner::random`]) and its URLs die with the process.
//!
//! ```
//! use fresco_wire::signing::{Permission, UrlSigner};
//! let signer = UrlSigner::from_key_text("0123456789abcdef0123456789abcdef").unwrap();
//! let query = signer.sign("/v1/objects/in/clip.mp4", 1_700_000_600, Permission::Write);
//! let grant = signer
//!     .verify("PUT", "/v1/objects/in/clip.mp4", Some(&query), 1_700_000_000)
//!     .unwrap();
//! assert_eq!(grant.permission, Permission::Write);
//! assert!(signer.verify("GET", "/v1/objects/in/clip.mp4", Some(&query), 1_700_000_000).is_err());
//! ```

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The shortest key accepted, in bytes of its text (`openssl rand -base64 32` gives 44).
pub const MIN_KEY_BYTES: usize = 32;

/// Keys of one signer at most: the current one and those still honoured after rotations.
pub const MAX_KEYS: usize = 8;

/// The version tag in every signed message, so that a future format cannot be confused with it.
const DOMAIN: &str = "fresco-url-v1";

/// The longest query string looked at (a signed URL's is under 200 bytes).
const MAX_QUERY_BYTES: usize = 2048;

/// What a signed URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// `GET` and `HEAD`.
    Read,
    /// `PUT`.
    Write,
    /// All three.
    ReadWrite,
}

impl Permission {
    /// `r`, `w` or `rw`, as in the query string.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "r",
            Permission::Write => "w",
            Permission::ReadWrite => "rw",
        }
    }

    pub fn parse(text: &str) -> Option<Permission> {
        match text {
            "r" => Some(Permission::Read),
            "w" => Some(Permission::Write),
            "rw" => Some(Permission::ReadWrite),
            _ => None,
        }
    }

    /// Whether a request with `method` (upper-case HTTP method) is allowed.
    pub fn allows(self, method: &str) -> bool {
        let reads = matches!(method, "GET" | "HEAD");
        let writes = method == "PUT";
        match self {
            Permission::Read => reads,
            Permission::Write => writes,
            Permission::ReadWrite => reads || writes,
        }
    }
}

/// Why a signed URL is refused. Every variant answers 403; the messages never echo the
/// signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A parameter is missing, repeated or unreadable.
    #[error("malformed signed URL: {0}")]
    Malformed(String),
    /// The signature does not match the path and parameters (tampered, another path, or a key
    /// this server does not hold).
    #[error("bad signature: {0}")]
    BadSignature(&'static str),
    /// Valid, but its time is over.
    #[error("the signed URL expired at {expired_at} (Unix seconds); ask for a new one")]
    Expired { expired_at: u64 },
    /// Valid, but not for this method.
    #[error("the signed URL allows {allowed} only, not {method}")]
    WrongMethod {
        method: String,
        allowed: &'static str,
    },
}

impl SignatureError {
    /// A stable kebab-case code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Malformed(_) => "signature-malformed",
            SignatureError::BadSignature(_) => "signature-invalid",
            SignatureError::Expired { .. } => "signature-expired",
            SignatureError::WrongMethod { .. } => "signature-wrong-method",
        }
    }
}

/// Why a signer could not be set up from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{source_name}: no signing key (one key per line, at least {MIN_KEY_BYTES} bytes each)"
    )]
    Empty { source_name: String },
    #[error("{source_name}: key {number} is {len} bytes; signing keys must be at least {MIN_KEY_BYTES} bytes (e.g. `openssl rand -base64 32`)")]
    TooShort {
        source_name: String,
        number: usize,
        len: usize,
    },
    #[error("{source_name}: {count} keys; at most {MAX_KEYS} are honoured at once")]
    TooMany { source_name: String, count: usize },
    #[error("{source_name}: cannot read the key file: {reason}")]
    Unreadable { source_name: String, reason: String },
}

/// What a verified URL grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub permission: Permission,
    pub expires_at: u64,
    /// The id of the key that signed it (for logs: whether old keys are still in use).
    pub key_id: String,
}

struct SigningKey {
    id: String,
    secret: Vec<u8>,
}

/// Signs and verifies URLs with one current key and any number (up to [`MAX_KEYS`] in all) of
/// older ones still honoured. `Debug` shows key ids only.
pub struct UrlSigner {
    keys: Vec<SigningKey>,
}

impl fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlSigner")
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

/// Where the keys of [`UrlSigner::from_config`] came from, for the start-up log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    File(String),
    Environment,
    /// Made at start: URLs stop working when the process ends.
    Random,
}

impl UrlSigner {
    fn from_secrets(secrets: Vec<Vec<u8>>, source_name: &str) -> Result<UrlSigner, KeyError> {
        if secrets.is_empty() {
            return Err(KeyError::Empty {
                source_name: source_name.into(),
            });
        }
        if secrets.len() > MAX_KEYS {
            return Err(KeyError::TooMany {
                source_name: source_name.into(),
                count: secrets.len(),
            });
        }
        let mut keys = Vec::with_capacity(secrets.len());
        for (n, secret) in secrets.into_iter().enumerate() {
            if secret.len() < MIN_KEY_BYTES {
                return Err(KeyError::TooShort {
                    source_name: source_name.into(),
                    number: n + 1,
                    len: secret.len(),
                });
            }
            let id = hex::encode(&Sha256::digest(&secret)[..4]);
            keys.push(SigningKey { id, secret });
        }
        Ok(UrlSigner { keys })
    }

    /// Keys from text: one per line (also split at commas), blank lines and `#` comments
    /// skipped, surrounding spaces trimmed. The first key signs.
    pub fn from_key_text(text: &str) -> Result<UrlSigner, KeyError> {
        Self::parse_keys(text, "signing keys")
    }

    fn parse_keys(text: &str, source_name: &str) -> Result<UrlSigner, KeyError> {
        let secrets = text
            .split(['\n', ','])
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| line.as_bytes().to_vec())
            .collect();
        Self::from_secrets(secrets, source_name)
    }

    /// A signer with one random 256-bit key, for a server given none.
    pub fn random() -> UrlSigner {
        let mut secret = [0u8; 32];
        rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut secret)
            .expect("the operating system's random source");
        let text = URL_SAFE_NO_PAD.encode(secret);
        Self::from_secrets(vec![text.into_bytes()], "random key").expect("43 bytes is long enough")
    }

    /// The signer a server runs with: keys from `file` if given, else from `env_keys` (the
    /// value of `FRESCO_SIGNING_KEYS`) if set and not empty, else a random key.
    pub fn from_config(
        file: Option<&Path>,
        env_keys: Option<&str>,
    ) -> Result<(UrlSigner, KeySource), KeyError> {
        if let Some(file) = file {
            let name = file.display().to_string();
            let text = std::fs::read_to_string(file).map_err(|e| KeyError::Unreadable {
                source_name: name.clone(),
                reason: e.to_string(),
            })?;
            return Ok((Self::parse_keys(&text, &name)?, KeySource::File(name)));
        }
        match env_keys {
            Some(text) if !text.trim().is_empty() => Ok((
                Self::parse_keys(text, "FRESCO_SIGNING_KEYS")?,
                KeySource::Environment,
            )),
            _ => Ok((Self::random(), KeySource::Random)),
        }
    }

    /// The ids of the keys, signing key first.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.id.clone()).collect()
    }

    fn mac(key: &SigningKey, path: &str, expires_at: u64, permission: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&key.secret).expect("HMAC takes any key length");
        // Fields are separated by a byte no path, permission or number contains.
        for field in [DOMAIN, permission, path, &expires_at.to_string()] {
            mac.update(field.as_bytes());
            mac.update(b"\n");
        }
        mac
    }

    /// The query string (without `?`) that makes `path` a URL allowing `permission` until
    /// `expires_at` (Unix seconds). `path` must be exactly what clients will send.
    pub fn sign(&self, path: &str, expires_at: u64, permission: Permission) -> String {
        let key = &self.keys[0];
        let tag = Self::mac(key, path, expires_at, permission.as_str())
            .finalize()
            .into_bytes();
        format!(
            "expires={expires_at}&perm={}&kid={}&sig={}",
            permission.as_str(),
            key.id,
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Checks a request's method, path and query string (without `?`) at time `now` (Unix
    /// seconds). Other query parameters are ignored but each signed one must appear once.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        now: u64,
    ) -> Result<Grant, SignatureError> {
        let query = query.ok_or_else(|| {
            SignatureError::Malformed("no query string: expires, perm, kid and sig".into())
        })?;
        if query.len() > MAX_QUERY_BYTES {
            return Err(SignatureError::Malformed(format!(
                "the query string is longer than {MAX_QUERY_BYTES} bytes"
            )));
        }
        let mut fields: [Option<&str>; 4] = [None; 4];
        const NAMES: [&str; 4] = ["expires", "perm", "kid", "sig"];
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if let Some(slot) = NAMES.iter().position(|n| *n == name) {
                if fields[slot].replace(value).is_some() {
                    return Err(SignatureError::Malformed(format!(
                        "'{name}' appears more than once"
                    )));
                }
            }
        }
        let field = |slot: usize| {
            fields[slot]
                .filter(|v| !v.is_empty())
                .ok_or_else(|| SignatureError::Malformed(format!("'{}' is missing", NAMES[slot])))
        };
        let (expires_text, perm_text, kid, sig) = (field(0)?, field(1)?, field(2)?, field(3)?);
        let expires_at: u64 = expires_text
            .parse()
            .ok()
            .filter(|_| expires_text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                SignatureError::Malformed("'expires' must be Unix seconds (digits only)".into())
            })?;
        let permission = Permission::parse(perm_text)
            .ok_or_else(|| SignatureError::Malformed("'perm' must be r, w or rw".into()))?;
        let tag = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| SignatureError::Malformed("'sig' is not URL-safe base64".into()))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == kid)
            .ok_or(SignatureError::BadSignature(
                "signed with a key this server does not hold (rotated out?)",
            ))?;
        // The permission is checked as sent, so the text signed is the text received.
        Self::mac(key, path, expires_at, perm_text)
            .verify_slice(&tag)
            .map_err(|_| {
                SignatureError::BadSignature("it does not match this path and these parameters")
            })?;
        if now >= expires_at {
            return Err(SignatureError::Expired {
                expired_at: expires_at,
            });
        }
        if !permission.allows(method) {
            return Err(SignatureError::WrongMethod {
                method: method.chars().take(16).collect(),
                allowed: match permission {
                    Permission::Read => "GET and HEAD",
                    Permission::Write => "PUT",
                    Permission::ReadWrite => "GET, HEAD and PUT",
                },
            });
        }
        Ok(Grant {
            permission,
            expires_at,
            key_id: key.id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-key-a";
    const KEY_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-key-b";
    const PATH: &str = "/v1/objects/in/clip%20one.mp4";
    const NOW: u64 = 1_700_000_000;

    fn signer(text: &str) -> UrlSigner {
        UrlSigner::from_key_text(text).unwrap()
    }

    #[test]
    fn a_valid_url_is_accepted_until_it_expires() {
        let s = signer(KEY_A);
        let q = s.sign(PATH, NOW + 60, Permission::Read);
        let grant = s.verify("GET", PATH, Some(&q), NOW).unwrap();
        assert_eq!(grant.permission, Permission::Read);
        assert_eq!(grant.expires_at, NOW + 60);
        assert_eq!(grant.key_id, s.key_ids()[0]);
        assert!(s.verify("HEAD", PATH, Some(&q), NOW + 59).is_ok());
        assert_eq!(
            s.verify("GET", PATH, Some(&q), NOW + 60),
            Err(SignatureError::Expired {
                expired_at: NOW + 60
            })
        );
    }

    #[test]
    fn tampering_with_any_signed_part_is_refused() {
        let s = signer(KEY_A);
        let q = s.sign(PATH, NOW + 60, Permission::Read);
        let bad = |method: &str, path: &str, query: &str| {
            s.verify(method, path, Some(query), NOW).unwrap_err()
        };
        // Another path, a longer expiry, more permissions, a changed signature.
        assert!(matches!(
            bad("GET", "/v1/objects/in/other.mp4", &q),
            SignatureError::BadSignature(_)
        ));
        let later = q.replace(
            &format!("expires={}", NOW + 60),
            &format!("expires={}", NOW + 9999),
        );
        assert!(matches!(
            bad("GET", PATH, &later),
            SignatureError::BadSignature(_)
        ));
        let more = q.replace("perm=r", "perm=rw");
        assert!(matches!(
            bad("PUT", PATH, &more),
            SignatureError::BadSignature(_)
        ));
        let sig_at = q.find("sig=").unwrap() + 4;
        let mut flipped = q.clone().into_bytes();
        flipped[sig_at] = if flipped[sig_at] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(matches!(
            bad("GET", PATH, &flipped),
            SignatureError::BadSignature(_)
        ));
        // A signature that is valid base64 but for another key.
        let other = signer(KEY_B).sign(PATH, NOW + 60, Permission::Read);
        assert!(matches!(
            bad("GET", PATH, &other),
            SignatureError::BadSignature(_)
        ));
    }

    #[test]
    fn the_method_must_match_the_permission() {
        let s = signer(KEY_A);
        let put = s.sign(PATH, NOW + 60, Permission::Write);
        assert!(s.verify("PUT", PATH, Some(&put), NOW).is_ok());
        for method in ["GET", "HEAD", "DELETE", "POST"] {
            let err = s.verify(method, PATH, Some(&put), NOW).unwrap_err();
            assert!(
                matches!(err, SignatureError::WrongMethod { .. }),
                "{method}: {err}"
            );
            assert_eq!(err.code(), "signature-wrong-method");
        }
        let get = s.sign(PATH, NOW + 60, Permission::Read);
        assert!(matches!(
            s.verify("PUT", PATH, Some(&get), NOW),
            Err(SignatureError::WrongMethod { .. })
        ));
        let both = s.sign(PATH, NOW + 60, Permission::ReadWrite);
        for method in ["GET", "HEAD", "PUT"] {
            assert!(s.verify(method, PATH, Some(&both), NOW).is_ok(), "{method}");
        }
        assert!(s.verify("DELETE", PATH, Some(&both), NOW).is_err());
    }

    #[test]
    fn rotation_keeps_old_urls_valid_while_the_old_key_is_listed() {
        let old = signer(KEY_A);
        let issued_before = old.sign(PATH, NOW + 60, Permission::Read);
        let rotated = signer(&format!("{KEY_B}\n# the previous key\n{KEY_A}\n"));
        assert_eq!(rotated.key_ids().len(), 2);
        assert_eq!(rotated.key_ids()[1], old.key_ids()[0]);
        assert!(rotated
            .verify("GET", PATH, Some(&issued_before), NOW)
            .is_ok());
        let issued_after = rotated.sign(PATH, NOW + 60, Permission::Read);
        assert!(issued_after.contains(&format!("kid={}", rotated.key_ids()[0])));
        // The old signer does not know the new key; the key list without KEY_A refuses old URLs.
        assert!(matches!(
            old.verify("GET", PATH, Some(&issued_after), NOW),
            Err(SignatureError::BadSignature(_))
        ));
        let retired = signer(KEY_B);
        assert!(matches!(
            retired.verify("GET", PATH, Some(&issued_before), NOW),
            Err(SignatureError::BadSignature(_))
        ));
    }

    #[test]
    fn malformed_queries_say_what_is_wrong() {
        let s = signer(KEY_A);
        let q = s.sign(PATH, NOW + 60, Permission::Read);
        for (query, why) in [
            ("", "'expires' is missing"),
            ("expires=1&perm=r&kid=x", "'sig' is missing"),
            (&*format!("{q}&sig=AAAA"), "more than once"),
            (&*q.replace("perm=r", "perm=x"), "'perm' must be"),
            (&*q.replace(&format!("{}", NOW + 60), "+5"), "Unix seconds"),
            (&*q.replace("sig=", "sig=%%"), "base64"),
        ] {
            match s.verify("GET", PATH, Some(query), NOW) {
                Err(SignatureError::Malformed(m)) => assert!(m.contains(why), "{query}: {m}"),
                other => panic!("{query}: {other:?}"),
            }
        }
        assert!(matches!(
            s.verify("GET", PATH, None, NOW),
            Err(SignatureError::Malformed(_))
        ));
        let long = "x".repeat(MAX_QUERY_BYTES + 1);
        assert!(matches!(
            s.verify("GET", PATH, Some(&long), NOW),
            Err(SignatureError::Malformed(_))
        ));
        // Unrelated parameters are ignored.
        assert!(s
            .verify("GET", PATH, Some(&format!("a=1&{q}&b")), NOW)
            .is_ok());
    }

    #[test]
    fn keys_are_checked_and_never_shown() {
        assert!(matches!(
            UrlSigner::from_key_text("# nothing\n\n"),
            Err(KeyError::Empty { .. })
        ));
        let err = UrlSigner::from_key_text(&format!("{KEY_A}\nshort")).unwrap_err();
        assert!(err.to_string().contains("key 2 is 5 bytes"), "{err}");
        let many = [KEY_A; MAX_KEYS + 1].join("\n");
        assert!(matches!(
            UrlSigner::from_key_text(&many),
            Err(KeyError::TooMany { .. })
        ));
        let s = signer(&format!("{KEY_A},{KEY_B}"));
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("aaaa") && !shown.contains("bbbb"),
            "{shown}"
        );
        let random = UrlSigner::random();
        assert_ne!(random.key_ids(), UrlSigner::random().key_ids());
    }

    #[test]
    fn config_prefers_the_file_then_the_environment_then_a_random_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        std::fs::write(&file, format!("{KEY_B}\n")).unwrap();
        let (s, source) = UrlSigner::from_config(Some(&file), Some(KEY_A)).unwrap();
        assert_eq!(source, KeySource::File(file.display().to_string()));
        assert_eq!(s.key_ids(), signer(KEY_B).key_ids());
        let (s, source) = UrlSigner::from_config(None, Some(KEY_A)).unwrap();
        assert_eq!(source, KeySource::Environment);
        assert_eq!(s.key_ids(), signer(KEY_A).key_ids());
        let (_, source) = UrlSigner::from_config(None, Some("  ")).unwrap();
        assert_eq!(source, KeySource::Random);
        let missing = dir.path().join("absent");
        let err = UrlSigner::from_config(Some(&missing), None).unwrap_err();
        assert!(matches!(err, KeyError::Unreadable { .. }), "{err}");
    }
}
