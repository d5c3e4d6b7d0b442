//! Job inputs and outputs that are objects in a store rather than local files: a URL such as
//! `az://container/in/clip.mp4` is split into the store it lives in (`az://container`, opened
//! with [`crate::Store::from_url`]) and the object's key in it (`in/clip.mp4`).
//!
//! A job location is an object URL when it starts with `scheme://`; anything else is a local
//! path and is handled exactly as before object stores existed.

use std::path::{Path, PathBuf};

use crate::{ObjectInfo, Store, StoreError};

/// An object named by a URL: `az://container/key`, `azure://container/key`,
/// `s3://bucket/key` or `file:///folder/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUrl {
    /// The URL as given.
    pub url: String,
    /// The store holding the object: `az://container`, `s3://bucket`, `file:///folder`.
    pub store_url: String,
    /// The object's key in that store: `in/clip.mp4`.
    pub key: String,
}

/// A URL that names no object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{url}' does not name an object: {reason} (use az://container/path/name.mp4, \
     s3://bucket/path/name.mp4 or file:///folder/name.mp4)"
)]
pub struct BadObjectUrl {
    pub url: String,
    pub reason: String,
}

/// Whether a job location is a URL (`scheme://...`) rather than a local path.
pub fn is_object_url(location: &Path) -> bool {
    location.to_str().is_some_and(|text| {
        text.split_once("://").is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        })
    })
}

impl ObjectUrl {
    /// The object a job location names, `None` for a local path.
    pub fn of(location: &Path) -> Option<Result<ObjectUrl, BadObjectUrl>> {
        if !is_object_url(location) {
            return None;
        }
        Some(ObjectUrl::parse(location.to_str().unwrap_or_default()))
    }

    /// Splits `url` into its store and key; the store URL itself is checked when it is opened.
    pub fn parse(url: &str) -> Result<ObjectUrl, BadObjectUrl> {
        let bad = |reason: &str| BadObjectUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("not a URL"))?;
        let scheme_lower = scheme.to_ascii_lowercase();
        let (store_url, key) = match scheme_lower.as_str() {
            // A file URL has no container: the store is the object's folder.
            "file" => {
                let (folder, name) = rest.rsplit_once('/').ok_or_else(|| bad("no path"))?;
                if folder.is_empty() && !rest.starts_with('/') {
                    return Err(bad("a file URL must be file:///absolute/path"));
                }
                let folder = if folder.is_empty() { "/" } else { folder };
                (format!("{scheme}://{folder}"), name.to_string())
            }
            "az" | "azure" | "s3" => {
                let (name, key) = rest
                    .split_once('/')
                    .ok_or_else(|| bad("no object key after the container or bucket"))?;
                if name.is_empty() {
                    return Err(bad("the container or bucket name is missing"));
                }
                (format!("{scheme}://{name}"), key.to_string())
            }
            _ => return Err(bad(&format!("unknown scheme '{scheme}'"))),
        };
        if key.is_empty() || key.ends_with('/') {
            return Err(bad("it names a folder, not an object"));
        }
        Ok(ObjectUrl {
            url: url.to_string(),
            store_url,
            key,
        })
    }

    /// Opens the store holding the object (no network traffic yet).
    pub fn open(&self) -> Result<Store, StoreError> {
        Store::from_url(&self.store_url)
    }

    /// The object's name: the last segment of its key.
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }

    /// The extension of the object's name (without the dot), which picks the container of an
    /// output as it does for a local file.
    pub fn extension(&self) -> Option<&str> {
        Path::new(self.file_name())
            .extension()
            .and_then(|e| e.to_str())
    }
}

/// What identifies the current version of a job's input, for the job's identity
/// (`fresco_core::JobSpec::identity_from`): "path|size|mtime-ns" of a local file (just the path
/// when it cannot be read), or "url|size|etag" of an object (a `head` request; just the URL
/// when there is no such object or the store cannot be reached).
pub fn fingerprint(input: &Path) -> String {
    match ObjectUrl::of(input) {
        Some(Ok(url)) => object_fingerprint(&url, head_object(&url).as_ref()),
        Some(Err(_)) | None => file_fingerprint(input),
    }
}

/// [`fingerprint`] of an input whose `head` the caller already has (`None`: there is no such
/// object), without asking the store again; a local path is read as [`fingerprint`] reads it.
pub fn fingerprint_with_object(input: &Path, object: Option<&ObjectInfo>) -> String {
    match ObjectUrl::of(input) {
        Some(Ok(url)) => object_fingerprint(&url, object),
        Some(Err(_)) | None => fingerprint(input),
    }
}

/// "path|size|mtime-ns", or just the path when it cannot be read.
fn file_fingerprint(input: &Path) -> String {
    match std::fs::metadata(input) {
        Ok(meta) => {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            format!("{}|{}|{mtime}", input.display(), meta.len())
        }
        Err(_) => input.display().to_string(),
    }
}

/// "url|size|etag" of an object input, or just the URL when there is no such object.
fn object_fingerprint(url: &ObjectUrl, object: Option<&ObjectInfo>) -> String {
    match object {
        Some(info) => format!(
            "{}|{}|{}",
            url.url,
            info.size,
            info.etag.as_deref().unwrap_or("")
        ),
        None => url.url.clone(),
    }
}

/// The `head` of an object, asked on a thread of its own so that it works from sync and async
/// callers alike; `None` when there is no such object or the store cannot be reached.
fn head_object(url: &ObjectUrl) -> Option<ObjectInfo> {
    let store = url.open().ok()?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                runtime.block_on(store.head(&url.key)).ok().flatten()
            })
            .join()
            .ok()
            .flatten()
    })
}

/// An absolute form of a local `path` without requiring it to exist (the output usually does
/// not): as a job records its input and output.
pub fn absolute(path: &Path) -> PathBuf {
    if let Ok(canonical) = path.canonicalize() {
        return canonical;
    }
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    // Canonicalise the folder, which exists when the output is about to be written.
    match (joined.parent(), joined.file_name()) {
        (Some(dir), Some(name)) => dir
            .canonicalize()
            .map(|d| d.join(name))
            .unwrap_or(joined.clone()),
        _ => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_store_and_key() {
        let url = ObjectUrl::parse("az://container/in/clip.mp4").unwrap();
        assert_eq!(url.store_url, "az://container");
        assert_eq!(url.key, "in/clip.mp4");
        assert_eq!(url.file_name(), "clip.mp4");
        assert_eq!(url.extension(), Some("mp4"));
        let url = ObjectUrl::parse("s3://bucket/a.mkv").unwrap();
        assert_eq!(
            (url.store_url.as_str(), url.key.as_str()),
            ("s3://bucket", "a.mkv")
        );
        let url = ObjectUrl::parse("file:///srv/videos/a.mov").unwrap();
        assert_eq!(url.store_url, "file:///srv/videos");
        assert_eq!(url.key, "a.mov");
        let url = ObjectUrl::parse("file:///a.mov").unwrap();
        assert_eq!(url.store_url, "file:///");
    }

    #[test]
    fn local_paths_are_not_urls() {
        for path in ["/srv/in.mp4", "in.mp4", "rel/dir/x.mkv", "/a://b"] {
            assert!(ObjectUrl::of(Path::new(path)).is_none(), "{path}");
        }
        assert!(is_object_url(Path::new("az://c/x.mp4")));
    }

    #[test]
    fn urls_without_an_object_are_refused() {
        for (url, why) in [
            ("az://container", "no object key"),
            ("az://container/", "names a folder"),
            ("s3://bucket/dir/", "names a folder"),
            ("az:///x.mp4", "name is missing"),
            ("gs://bucket/x.mp4", "unknown scheme"),
        ] {
            let err = ObjectUrl::parse(url).unwrap_err();
            assert!(err.to_string().contains(why), "{url}: {err}");
        }
    }
}
