//! Object keys: the rules every key (and listing prefix) must follow, so that the same key means
//! the same object on a local folder, Azure Blob and S3, and can never escape a store's prefix.

use object_store::path::Path;

use crate::error::{Result, StoreError};

/// Checks `key` against the key rules and returns it as an `object_store` path, relative to the
/// store's prefix.
///
/// Rules: not empty; no leading `/`; no empty segments (`a//b`, a trailing `/`); no `.` or `..`
/// segments; no NUL or other control characters; a last segment may not end in `#` and digits
/// (the local store's name for uploads in progress).
pub(crate) fn parse_key(key: &str) -> Result<Path> {
    if key.is_empty() {
        return Err(bad(key, "empty"));
    }
    parse_segments(key)
}

/// Like [`parse_key`], but the empty string is allowed and means "everything".
pub(crate) fn parse_prefix(prefix: &str) -> Result<Path> {
    if prefix.is_empty() {
        return Ok(Path::default());
    }
    parse_segments(prefix)
}

fn parse_segments(key: &str) -> Result<Path> {
    if key.starts_with('/') {
        return Err(bad(key, "starts with '/' (keys are relative to the store)"));
    }
    if key.chars().any(|c| c == '\0') {
        return Err(bad(key, "contains a NUL character"));
    }
    if key.chars().any(|c| c.is_control()) {
        return Err(bad(key, "contains a control character"));
    }
    for segment in key.split('/') {
        match segment {
            "" => return Err(bad(key, "has an empty segment ('//' or a trailing '/')")),
            "." | ".." => return Err(bad(key, "has a '.' or '..' segment")),
            _ => {}
        }
    }
    let last = key.rsplit('/').next().unwrap_or(key);
    if let Some((_, suffix)) = last.rsplit_once('#') {
        if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(
                key,
                "ends in '#' and digits, reserved for uploads in progress",
            ));
        }
    }
    Path::parse(key).map_err(|_| bad(key, "is not a valid object path"))
}

fn bad(key: &str, reason: &'static str) -> StoreError {
    StoreError::BadKey {
        key: key.to_string(),
        reason,
    }
}

/// Joins a store prefix and a relative key path.
pub(crate) fn join(prefix: &Path, relative: &Path) -> Path {
    prefix.parts().chain(relative.parts()).collect()
}

/// The part of `full` below `prefix`, as a key string; `None` when `full` is not under it.
pub(crate) fn strip(prefix: &Path, full: &Path) -> Option<String> {
    let rest: Vec<String> = full
        .prefix_match(prefix)?
        .map(|p| p.as_ref().to_string())
        .collect();
    Some(rest.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_keys_parse() {
        for key in [
            "a",
            "a/b.mp4",
            "jobs/123/chunk-0001.mkv",
            "with space/ü.txt",
            "a#b",
        ] {
            assert_eq!(parse_key(key).unwrap().as_ref(), key);
        }
        assert_eq!(parse_prefix("").unwrap(), Path::default());
    }

    #[test]
    fn bad_keys_say_why() {
        for (key, why) in [
            ("", "empty"),
            ("/abs", "starts with '/'"),
            ("a//b", "empty segment"),
            ("a/", "empty segment"),
            ("a/../b", "'..'"),
            ("..", "'..'"),
            ("./a", "'.'"),
            ("a\0b", "NUL"),
            ("a\nb", "control"),
            ("out.mp4#1", "uploads in progress"),
        ] {
            let err = parse_key(key).unwrap_err();
            assert!(matches!(err, StoreError::BadKey { .. }), "{key:?}: {err}");
            assert!(err.to_string().contains(why), "{key:?}: {err}");
        }
    }

    #[test]
    fn join_and_strip_round_trip() {
        let prefix = Path::parse("videos/in").unwrap();
        let full = join(&prefix, &parse_key("a/b.mp4").unwrap());
        assert_eq!(full.as_ref(), "videos/in/a/b.mp4");
        assert_eq!(strip(&prefix, &full).as_deref(), Some("a/b.mp4"));
        assert_eq!(strip(&prefix, &Path::parse("videos/inx/a").unwrap()), None);
        assert_eq!(
            strip(&Path::default(), &full).as_deref(),
            Some("videos/in/a/b.mp4")
        );
    }
}
