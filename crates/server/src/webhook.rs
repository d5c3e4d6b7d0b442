//! Signatures of completion callbacks, by the Standard Webhooks scheme
//! (<https://www.standardwebhooks.com/>), so that a receiver can tell a delivery came from this
//! server and was not replayed much later.
//!
//! Each delivery carries `webhook-id` (the same on every attempt of one delivery),
//! `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`: `v1,` and the
//! base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed with the secret's bytes (a secret is
//! written `whsec_` and the base64 of its bytes). With several secrets every one signs, the
//! signatures separated by spaces, so a secret can be rotated: add the new one, let receivers
//! learn it, then drop the old one.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The prefix of a written secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// The secrets that sign callbacks (never printed).
#[derive(Clone)]
pub struct WebhookSecrets {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecrets({} secret(s), redacted)", self.keys.len())
    }
}

/// Why the secrets cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: cannot read the webhook secrets: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot store a generated webhook secret: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, line {line}: a webhook secret is whsec_ and the base64 of 24 to 64 bytes")]
    Malformed { path: String, line: usize },
    #[error("{path}: holds no webhook secret (one per line: whsec_ and base64)")]
    Empty { path: String },
}

impl WebhookSecrets {
    /// One random secret, held in memory only (tests, and a server that was given none and
    /// could not store one).
    pub fn random() -> WebhookSecrets {
        WebhookSecrets {
            keys: vec![rand::random::<[u8; 32]>().to_vec()],
        }
    }

    /// Secrets as written, `whsec_...`, the newest first.
    pub fn parse(secrets: &[&str]) -> Option<WebhookSecrets> {
        let keys: Option<Vec<Vec<u8>>> = secrets.iter().map(|s| decode(s)).collect();
        keys.filter(|k| !k.is_empty())
            .map(|keys| WebhookSecrets { keys })
    }

    /// The secrets of a file, one per line (blank lines and `#` comments skipped).
    pub fn from_file(path: &Path) -> Result<WebhookSecrets, SecretError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            keys.push(decode(line).ok_or_else(|| SecretError::Malformed {
                path: shown.clone(),
                line: n + 1,
            })?);
        }
        if keys.is_empty() {
            return Err(SecretError::Empty { path: shown });
        }
        Ok(WebhookSecrets { keys })
    }

    /// The secrets of `path`, or, when there is no such file, a new secret stored there (mode
    /// 0600), so that deliveries are always signed and a restart keeps the secret receivers
    /// know. True when it was generated now.
    pub fn load_or_generate(path: &Path) -> Result<(WebhookSecrets, bool), SecretError> {
        if path.exists() {
            return Self::from_file(path).map(|secrets| (secrets, false));
        }
        let key = rand::random::<[u8; 32]>();
        let line = format!("{SECRET_PREFIX}{}\n", STANDARD.encode(key));
        write_private(path, &line).map_err(|source| SecretError::Write {
            path: path.display().to_string(),
            source,
        })?;
        // Another server sharing the folder may have written first: read what is there.
        Self::from_file(path).map(|secrets| (secrets, true))
    }

    /// The `webhook-signature` header of a delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        self.keys
            .iter()
            .map(|key| {
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
                mac.update(id.as_bytes());
                mac.update(b".");
                mac.update(timestamp.to_string().as_bytes());
                mac.update(b".");
                mac.update(body);
                format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn decode(text: &str) -> Option<Vec<u8>> {
    let key = STANDARD
        .decode(text.trim().strip_prefix(SECRET_PREFIX)?)
        .ok()?;
    (24..=64).contains(&key.len()).then_some(key)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => file.write_all(text.as_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification and its reference libraries.
        let secrets = WebhookSecrets::parse(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]).unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secrets.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn every_secret_signs_for_rotation() {
        let a = format!("whsec_{}", STANDARD.encode([1u8; 32]));
        let b = format!("whsec_{}", STANDARD.encode([2u8; 32]));
        let both = WebhookSecrets::parse(&[&a, &b]).unwrap();
        let only_a = WebhookSecrets::parse(&[&a]).unwrap();
        let only_b = WebhookSecrets::parse(&[&b]).unwrap();
        let header = both.sign("msg_1", 5, b"{}");
        assert_eq!(
            header,
            format!(
                "{} {}",
                only_a.sign("msg_1", 5, b"{}"),
                only_b.sign("msg_1", 5, b"{}")
            )
        );
    }

    #[test]
    fn secrets_come_from_a_file_or_are_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/webhook-secret");
        let (first, generated) = WebhookSecrets::load_or_generate(&path).unwrap();
        assert!(generated);
        let (again, generated) = WebhookSecrets::load_or_generate(&path).unwrap();
        assert!(!generated);
        assert_eq!(first.sign("m", 1, b"x"), again.sign("m", 1, b"x"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
        }
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "# comment\nwhsec_c2hvcnQ=\n").unwrap();
        assert!(matches!(
            WebhookSecrets::from_file(&bad),
            Err(SecretError::Malformed { line: 2, .. })
        ));
        std::fs::write(&bad, "\n# only a comment\n").unwrap();
        assert!(matches!(
            WebhookSecrets::from_file(&bad),
            Err(SecretError::Empty { .. })
        ));
    }
}
