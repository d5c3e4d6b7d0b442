//! The model registry: which styles exist, where their ONNX files are, and
//! how to fetch a missing one from the ONNX model zoo, verified against a
//! pinned SHA-256 digest and size.
//!
//! A style name resolves, in order, to
//! 1. `$FRESCO_MODEL_DIR/NAME.onnx`, when a model dir is set and the file exists;
//! 2. the user cache, `NAME.onnx` in `$FRESCO_CACHE_DIR` or
//!    [`dirs::cache_dir()`]`/fresco/models`;
//! 3. a download of the zoo file into that cache, when downloading is allowed
//!    and the style has a pinned digest. An unverified file is never installed.
//!
//! The built-in filter `vintage` is a graph built in code: it has no file.

use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The ONNX model zoo folder that holds the fast-neural-style files.
pub const DEFAULT_BASE_URL: &str =
    "https://github.com/onnx/models/raw/main/validated/vision/style_transfer/fast_neural_style/model/";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The whole body (a zoo file is 6.7 MB: this is 11 kB/s).
const BODY_TIMEOUT: Duration = Duration::from_secs(600);
const ZOO_SIZE: u64 = 6_728_029;

/// The expected content of a downloadable file: its SHA-256 (lowercase hex) and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub sha256: Cow<'static, str>,
    pub size: u64,
}

impl Pin {
    /// A pin for a digest and size known at run time (e.g. in tests).
    pub fn new(sha256: impl Into<String>, size: u64) -> Self {
        Pin {
            sha256: Cow::Owned(sha256.into().to_ascii_lowercase()),
            size,
        }
    }
}

/// What a style is backed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StyleKind {
    /// A learned model published in the ONNX model zoo as `file`. `pin` is
    /// `None` when its digest is not known, in which case it is never downloaded.
    Zoo {
        file: &'static str,
        pin: Option<Pin>,
    },
    /// A filter whose ONNX graph is built in code; nothing to find or fetch.
    Builtin,
}

/// One entry of the built-in style table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StyleInfo {
    pub name: &'static str,
    pub kind: StyleKind,
    pub description: &'static str,
}

const fn zoo(
    name: &'static str,
    file: &'static str,
    sha256: Option<&'static str>,
    description: &'static str,
) -> StyleInfo {
    let pin = match sha256 {
        Some(d) => Some(Pin {
            sha256: Cow::Borrowed(d),
            size: ZOO_SIZE,
        }),
        None => None,
    };
    StyleInfo {
        name,
        kind: StyleKind::Zoo { file, pin },
        description,
    }
}

// Digests and sizes come from the Git LFS pointer files in onnx/models.
// mosaic and candy could not be verified, so they are not pinned.
#[rustfmt::skip]
static STYLES: [StyleInfo; 6] = [
    zoo("mosaic", "mosaic-9.onnx", None, "fast neural style: mosaic"),
    zoo("candy", "candy-9.onnx", None, "fast neural style: candy"),
    zoo("udnie", "udnie-9.onnx",
        Some("8656b6ce7dec8f22ee13c2d557d6b67bd6f550dde88d0f2e7c9972aeb765cc0d"),
        "fast neural style: Udnie (Picabia)"),
    zoo("rain-princess", "rain-princess-9.onnx",
        Some("4162912e6f75fedef6f810ae989b9e10d3d5d43308dab34b027c850cf255e152"),
        "fast neural style: Rain Princess (Afremov)"),
    zoo("pointilism", "pointilism-9.onnx",
        Some("5ee2b8d4d6bc60a777f54e0fe96a1b717360a004b79d56c67390d4a975b14d98"),
        "fast neural style: pointillism (Seurat)"),
    StyleInfo { name: "vintage", kind: StyleKind::Builtin,
        description: "vintage look: sepia tone, faded contrast, vignette" },
];

/// All styles the registry knows, zoo styles first.
pub fn builtin_styles() -> &'static [StyleInfo] {
    &STYLES
}

/// Which search location a model file was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelSource {
    /// `$FRESCO_MODEL_DIR` (or the configured model dir).
    ModelDir,
    /// The user cache, found already there.
    Cache,
    /// The user cache, downloaded and verified just now.
    Downloaded,
}

/// Where a style is now, found without network access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Found {
        path: PathBuf,
        source: ModelSource,
    },
    Builtin,
    /// Not present; `expected_paths` are the places that were searched, in order.
    Missing {
        expected_paths: Vec<PathBuf>,
    },
}

/// A style ready to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedModel {
    File {
        name: &'static str,
        path: PathBuf,
        source: ModelSource,
    },
    Builtin {
        name: &'static str,
    },
}

/// One line of `fresco styles`-like listings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListEntry {
    pub name: &'static str,
    pub kind: &'static str,
    pub description: &'static str,
    pub path: Option<PathBuf>,
    pub source: Option<ModelSource>,
    pub present: bool,
}

/// Everything that can go wrong finding or fetching a model.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("unknown style '{name}'; known styles: {known}")]
    UnknownStyle { name: String, known: String },
    #[error(
        "style '{name}' is a built-in filter (hand-built ONNX graph); there is nothing to download"
    )]
    NotDownloadable { name: String },
    #[error("model for style '{name}' is not installed and downloading is disabled; {hint}")]
    Offline { name: String, hint: String },
    #[error("no pinned digest for {name}, so it cannot be downloaded safely; {hint}")]
    NoPinnedDigest { name: String, hint: String },
    #[error("downloading {url} failed: HTTP {status} {status_text}; {hint}")]
    HttpStatus {
        url: String,
        status: u16,
        status_text: String,
        hint: String,
    },
    #[error("could not download {url}: {message}; {hint}")]
    Network {
        url: String,
        message: String,
        hint: String,
    },
    #[error("download of {url} was cut short: received {received} of {expected} bytes; {hint}")]
    Truncated {
        url: String,
        received: u64,
        expected: u64,
        hint: String,
    },
    #[error("download of {url} is {got} bytes, expected {expected}")]
    SizeMismatch {
        url: String,
        got: u64,
        expected: u64,
    },
    #[error("downloaded {file} from {url} has sha256 {got}, expected {expected}")]
    DigestMismatch {
        file: String,
        url: String,
        got: String,
        expected: String,
    },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> RegistryError + 'a {
    move |source| RegistryError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Finds, lists and downloads models. Cheap to construct; holds no open resources.
#[derive(Debug, Clone)]
pub struct Registry {
    model_dir: Option<PathBuf>,
    cache_dir: PathBuf,
    base_url: String,
    pins: HashMap<String, Option<Pin>>,
}

impl Registry {
    /// Configuration from the environment: `FRESCO_MODEL_DIR`, `FRESCO_CACHE_DIR`
    /// (default [`default_cache_dir`]) and `FRESCO_MODEL_URL` (default [`DEFAULT_BASE_URL`]).
    /// Empty variables count as unset.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        Registry::new(
            var("FRESCO_MODEL_DIR").map(PathBuf::from),
            var("FRESCO_CACHE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(default_cache_dir),
            var("FRESCO_MODEL_URL")
                .map(|u| u.to_string_lossy().into_owned())
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_string()),
        )
    }

    /// An explicitly configured registry. `base_url` is the folder URL the
    /// zoo file names are appended to (a missing trailing `/` is added).
    pub fn new(model_dir: Option<PathBuf>, cache_dir: PathBuf, base_url: String) -> Self {
        let mut base_url = base_url;
        if !base_url.ends_with('/') {
            base_url.push('/');
        }
        let pins = HashMap::new();
        Registry {
            model_dir,
            cache_dir,
            base_url,
            pins,
        }
    }

    /// Replaces the pinned digest of zoo styles (`None` unpins). Meant for
    /// tests and for users who vouch for a digest themselves; names that are
    /// not zoo styles have no effect.
    pub fn with_pins<I, S>(mut self, pins: I) -> Self
    where
        I: IntoIterator<Item = (S, Option<Pin>)>,
        S: Into<String>,
    {
        self.pins
            .extend(pins.into_iter().map(|(n, p)| (n.into(), p)));
        self
    }

    pub fn model_dir(&self) -> Option<&Path> {
        self.model_dir.as_deref()
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The style table entry for `name`, or an error listing the known names.
    pub fn style(&self, name: &str) -> Result<&'static StyleInfo, RegistryError> {
        STYLES
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| RegistryError::UnknownStyle {
                name: name.to_string(),
                known: STYLES.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
            })
    }

    /// The pin in effect for a zoo style, after overrides.
    fn pin(&self, style: &StyleInfo) -> Option<Pin> {
        match (&style.kind, self.pins.get(style.name)) {
            (StyleKind::Builtin, _) => None,
            (StyleKind::Zoo { .. }, Some(over)) => over.clone(),
            (StyleKind::Zoo { pin, .. }, None) => pin.clone(),
        }
    }

    /// `NAME.onnx` in the model dir (if configured), then in the cache.
    fn candidates(&self, name: &str) -> Vec<(PathBuf, ModelSource)> {
        let file = format!("{name}.onnx");
        let mut out = Vec::with_capacity(2);
        if let Some(dir) = &self.model_dir {
            out.push((dir.join(&file), ModelSource::ModelDir));
        }
        out.push((self.cache_dir.join(&file), ModelSource::Cache));
        out
    }

    /// The sentence telling a user where to put the file by hand.
    fn install_hint(&self, name: &str) -> String {
        let cache = self.cache_dir.join(format!("{name}.onnx"));
        match &self.model_dir {
            Some(dir) => format!(
                "put {name}.onnx in $FRESCO_MODEL_DIR ({}) or in the cache ({})",
                dir.join(format!("{name}.onnx")).display(),
                cache.display()
            ),
            None => format!(
                "put {name}.onnx in the cache ({}) or in a directory named by $FRESCO_MODEL_DIR",
                cache.display()
            ),
        }
    }

    /// Where a style is now, without network access.
    pub fn locate(&self, name: &str) -> Result<Location, RegistryError> {
        let style = self.style(name)?;
        if style.kind == StyleKind::Builtin {
            return Ok(Location::Builtin);
        }
        let candidates = self.candidates(name);
        for (path, source) in &candidates {
            if path.is_file() {
                return Ok(Location::Found {
                    path: path.clone(),
                    source: *source,
                });
            }
        }
        Ok(Location::Missing {
            expected_paths: candidates.into_iter().map(|(p, _)| p).collect(),
        })
    }

    /// [`locate`](Self::locate), downloading into the cache when the model is
    /// missing and `allow_download` is set.
    pub fn resolve(
        &self,
        name: &str,
        allow_download: bool,
    ) -> Result<ResolvedModel, RegistryError> {
        let style = self.style(name)?;
        match self.locate(name)? {
            Location::Builtin => Ok(ResolvedModel::Builtin { name: style.name }),
            Location::Found { path, source } => Ok(ResolvedModel::File {
                name: style.name,
                path,
                source,
            }),
            Location::Missing { .. } if !allow_download => Err(RegistryError::Offline {
                name: name.to_string(),
                hint: self.install_hint(name),
            }),
            Location::Missing { .. } => {
                let path = self.download(style)?;
                Ok(ResolvedModel::File {
                    name: style.name,
                    path,
                    source: ModelSource::Downloaded,
                })
            }
        }
    }

    /// Downloads a zoo style into the cache even if the model dir has it.
    /// A cached file that already matches the pin is kept without a request;
    /// any other cached file is replaced (atomically, only once the new one verifies).
    pub fn pull(&self, name: &str) -> Result<PathBuf, RegistryError> {
        let style = self.style(name)?;
        let cached = self.cache_dir.join(format!("{name}.onnx"));
        if let (Some(pin), true) = (self.pin(style), cached.is_file()) {
            let digest = sha256_file(&cached).map_err(io_err("reading", &cached))?;
            if digest.eq_ignore_ascii_case(&pin.sha256) {
                return Ok(cached);
            }
        }
        self.download(style)
    }

    /// Every known style with whether, and where, it is present.
    pub fn list(&self) -> Vec<ListEntry> {
        STYLES
            .iter()
            .map(|s| {
                let (path, source, present) = match self.locate(s.name) {
                    Ok(Location::Found { path, source }) => (Some(path), Some(source), true),
                    Ok(Location::Builtin) => (None, None, true),
                    _ => (None, None, false),
                };
                let kind = match s.kind {
                    StyleKind::Zoo { .. } => "zoo style",
                    StyleKind::Builtin => "built-in filter (hand-built ONNX graph, not learned)",
                };
                ListEntry {
                    name: s.name,
                    kind,
                    description: s.description,
                    path,
                    source,
                    present,
                }
            })
            .collect()
    }

    /// Streams the zoo file into a temp file in the cache dir, verifies size
    /// and digest, syncs, then renames it to `cache/NAME.onnx`. On failure
    /// the temp file is removed and the final path is left untouched.
    fn download(&self, style: &'static StyleInfo) -> Result<PathBuf, RegistryError> {
        let name = style.name;
        let file = match &style.kind {
            StyleKind::Zoo { file, .. } => *file,
            StyleKind::Builtin => return Err(RegistryError::NotDownloadable { name: name.into() }),
        };
        let hint = self.install_hint(name);
        let pin = self
            .pin(style)
            .ok_or_else(|| RegistryError::NoPinnedDigest {
                name: name.into(),
                hint: hint.clone(),
            })?;
        let url = format!("{}{file}", self.base_url);
        fs::create_dir_all(&self.cache_dir).map_err(io_err("creating", &self.cache_dir))?;
        let final_path = self.cache_dir.join(format!("{name}.onnx"));
        tracing::info!(style = name, %url, dest = %final_path.display(), "downloading model");

        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(READ_TIMEOUT))
            .timeout_recv_body(Some(BODY_TIMEOUT))
            .http_status_as_error(false)
            .proxy(None)
            .user_agent(concat!("fresco/", env!("CARGO_PKG_VERSION")))
            .build();
        let agent = ureq::Agent::new_with_config(config);
        let response = match agent.get(&url).call() {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                use ureq::ResponseExt as _;
                let status = r.status();
                let mut status_text = status.canonical_reason().unwrap_or("").to_string();
                let at = r.get_uri().to_string();
                if at != url {
                    status_text = format!("{status_text} (redirected to {at})");
                }
                return Err(RegistryError::HttpStatus {
                    url,
                    status: status.as_u16(),
                    status_text,
                    hint,
                });
            }
            Err(e) => {
                // Keep only the problem: some errors repeat the URL, which the message has.
                let mut message = e.to_string();
                if let Some(part) = source_text(&e).filter(|p| !message.contains(p.as_str())) {
                    message = format!("{message}: {part}");
                }
                return Err(RegistryError::Network { url, message, hint });
            }
        };
        let content_length = response
            .headers()
            .get("Content-Length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(len) = content_length.filter(|&len| len != pin.size) {
            return Err(RegistryError::SizeMismatch {
                url,
                got: len,
                expected: pin.size,
            });
        }

        let temp = TempFile::create(&self.cache_dir, name)?;
        let (got_size, digest) = copy_hashing(
            response.into_body().into_reader(),
            &temp,
            pin.size,
            &url,
            &hint,
        )?;
        let expected = content_length.unwrap_or(pin.size).max(pin.size);
        if got_size < expected {
            return Err(RegistryError::Truncated {
                url,
                received: got_size,
                expected,
                hint,
            });
        }
        if got_size > pin.size {
            return Err(RegistryError::SizeMismatch {
                url,
                got: got_size,
                expected: pin.size,
            });
        }
        if !digest.eq_ignore_ascii_case(&pin.sha256) {
            return Err(RegistryError::DigestMismatch {
                file: file.to_string(),
                url,
                got: digest,
                expected: pin.sha256.into_owned(),
            });
        }
        temp.file
            .sync_all()
            .map_err(io_err("syncing", &temp.path))?;
        temp.persist(&final_path)?;
        tracing::info!(style = name, path = %final_path.display(), sha256 = %digest, "model installed");
        Ok(final_path)
    }
}

fn source_text(err: &dyn std::error::Error) -> Option<String> {
    err.source().map(|s| s.to_string())
}

/// Copies `reader` into the temp file while hashing, stopping one byte past
/// `limit`. Returns the byte count and the hex digest.
fn copy_hashing(
    reader: impl Read,
    temp: &TempFile,
    limit: u64,
    url: &str,
    hint: &str,
) -> Result<(u64, String), RegistryError> {
    let mut reader = reader.take(limit + 1);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // ureq reports a body shorter than Content-Length as UnexpectedEof.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => {
                return Err(RegistryError::Network {
                    url: url.to_string(),
                    message: format!("read failed after {total} bytes: {e}"),
                    hint: hint.to_string(),
                })
            }
        };
        hasher.update(&buf[..n]);
        (&temp.file)
            .write_all(&buf[..n])
            .map_err(io_err("writing", &temp.path))?;
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}

/// A temp file in the destination directory, removed on drop unless persisted.
struct TempFile {
    path: PathBuf,
    file: File,
    keep: bool,
}

impl TempFile {
    fn create(dir: &Path, name: &str) -> Result<Self, RegistryError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let unique = (std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let path = dir.join(format!(".{name}.onnx.{}-{}.part", unique.0, unique.1));
        // create_new: never reuse (or follow a link at) an existing path.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("creating", &path))?;
        Ok(TempFile {
            path,
            file,
            keep: false,
        })
    }

    fn persist(mut self, dest: &Path) -> Result<(), RegistryError> {
        fs::rename(&self.path, dest).map_err(io_err("renaming into", dest))?;
        self.keep = true;
        // Make the rename itself durable; best effort (not possible on every platform).
        if let Some(parent) = dest.parent() {
            let _ = File::open(parent).and_then(|d| d.sync_all());
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// `dirs::cache_dir()/fresco/models`, or a folder in the temp dir when the
/// platform has no cache dir.
pub fn default_cache_dir() -> PathBuf {
    dirs::cache_dir()
        .unwrap_or_else(|| std::env::temp_dir().join("cache"))
        .join("fresco")
        .join("models")
}

/// The SHA-256 of a file's content, lowercase hex. Used to record the digest
/// of every model a run used.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(hex::encode(hasher.finalize())),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_base_url_and_sha256_file() {
        let names: Vec<_> = builtin_styles().iter().map(|s| s.name).collect();
        assert_eq!(
            names.join(" "),
            "mosaic candy udnie rain-princess pointilism vintage"
        );
        for s in builtin_styles() {
            if let StyleKind::Zoo { file, pin } = &s.kind {
                assert_eq!(*file, format!("{}-9.onnx", s.name));
                let ok = |p: &Pin| p.size == ZOO_SIZE && p.sha256.len() == 64;
                assert!(pin.as_ref().is_none_or(ok), "{}", s.name);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::new(None, dir.path().into(), "http://x/y".into());
        assert_eq!(reg.base_url(), "http://x/y/");
        let f = dir.path().join("abc");
        fs::write(&f, b"abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_file(&f).unwrap(), abc);
    }
}
