//! What a submission may name and how big its input may be, checked before a job is queued.
//!
//! - [`PathRules`]: the roots a job's `input` and `output` must lie under: local folders (a
//!   path or `file:///...`) and object-store prefixes (`az://container/prefix`,
//!   `s3://bucket/prefix`). A location outside all of them, a `.`/`..` segment, a symlink that
//!   leads out of a root, another container, or a scheme fresco does not read (`http://`,
//!   `gs://`) is refused with 400 `path-not-allowed` naming the field. Without roots
//!   ([`PathRules::any_local_path`]), absolute local paths are not restricted (fresco's behaviour
//!   before roots existed) but traversal and object URLs are still refused.
//! - [`InputLimits`]: the largest input in bytes (checked first, from the file's metadata or the
//!   object's `head`, so that nothing huge is probed), then from ffprobe's report the longest
//!   duration, the widest and tallest frame and the most pixels per frame: 400
//!   `input-too-large`, `input-too-long`, `input-dimensions-too-large`, naming the limit and
//!   the input's value. A header that declares 60000x60000 frames (a "zip bomb" of a video) is
//!   refused here, before any worker decodes a frame. The streams and chapters ffprobe finds
//!   are counted too (`input-too-many-streams`, `input-too-many-chapters`). A header need not
//!   tell the truth, or anything (a live-written Matroska has no duration): the limits also
//!   travel in the job's options ([`InputLimits::media`]), and the worker's plan applies them to
//!   what its frame scan measures (duration, frame count, frame rate, every frame's size).

use std::path::{Path, PathBuf};

use fresco_core::MediaLimits;
use fresco_media::probe::ProbeReport;

use crate::InputRejected;

/// Limits on a job's input. `None` means no limit.
#[derive(Debug, Clone, PartialEq)]
pub struct InputLimits {
    /// Bytes of the input file or object.
    pub max_bytes: Option<u64>,
    /// Seconds of the container's duration.
    pub max_seconds: Option<f64>,
    /// Width and height of the video stream's frames, in pixels.
    pub max_width: Option<u32>,
    pub max_height: Option<u32>,
    /// Width times height.
    pub max_pixels: Option<u64>,
    /// Frames of the video stream (counted by the worker's frame scan).
    pub max_frames: Option<u64>,
    /// Frames per second, measured by the worker's frame scan.
    pub max_fps: Option<f64>,
    /// Streams of the container.
    pub max_streams: Option<u64>,
    /// Chapters of the container.
    pub max_chapters: Option<u64>,
}

impl Default for InputLimits {
    /// 64 GiB, 6 hours, 8192 pixels a side and 8192x4320 pixels a frame, 2.6 million frames
    /// (6 hours at 120 fps), 1000 frames per second, 64 streams and 1000 chapters: more than any
    /// camera's video, far less than a forged header declares.
    fn default() -> Self {
        InputLimits {
            max_bytes: Some(64 << 30),
            max_seconds: Some(6.0 * 3600.0),
            max_width: Some(8192),
            max_height: Some(8192),
            max_pixels: Some(8192 * 4320),
            max_frames: Some(6 * 3600 * 120),
            max_fps: Some(1000.0),
            max_streams: Some(64),
            max_chapters: Some(1000),
        }
    }
}

impl InputLimits {
    /// No limit at all.
    pub fn none() -> Self {
        InputLimits {
            max_bytes: None,
            max_seconds: None,
            max_width: None,
            max_height: None,
            max_pixels: None,
            max_frames: None,
            max_fps: None,
            max_streams: None,
            max_chapters: None,
        }
    }

    /// The limits on what the video holds, for the job's options: the worker's plan checks
    /// them again on what it measures.
    pub fn media(&self) -> MediaLimits {
        MediaLimits {
            max_seconds: self.max_seconds,
            max_frames: self.max_frames,
            max_fps: self.max_fps,
            max_width: self.max_width,
            max_height: self.max_height,
            max_pixels: self.max_pixels,
            max_streams: self.max_streams,
            max_chapters: self.max_chapters,
        }
    }

    /// Checks the size of the input `field` names.
    pub fn check_bytes(&self, field: &str, bytes: u64) -> Result<(), InputRejected> {
        match self.max_bytes {
            Some(max) if bytes > max => Err(bad(
                "input-too-large",
                format!("{field}: the input is {bytes} bytes; this server takes at most {max}"),
            )),
            _ => Ok(()),
        }
    }

    /// Checks the size of a local file (a missing file is left to the later checks).
    pub fn check_file(&self, field: &str, path: &Path) -> Result<(), InputRejected> {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => self.check_bytes(field, meta.len()),
            _ => Ok(()),
        }
    }

    /// Checks what ffprobe says about the input: duration, frame size, streams and chapters.
    pub fn check_probe(&self, field: &str, report: &ProbeReport) -> Result<(), InputRejected> {
        report
            .check_limits(&self.media(), field)
            .map_err(|breach| bad(breach.code, breach.message))
    }
}

fn bad(code: &'static str, message: String) -> InputRejected {
    InputRejected { code, message }
}

/// One root a job's locations may lie under.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Root {
    /// A local folder, as given and as resolved (symlinks followed) when it exists.
    Folder { given: PathBuf, resolved: PathBuf },
    /// An object store's container or bucket (`az`, `s3`) and a key prefix (no trailing `/`,
    /// empty for the whole container).
    Prefix {
        scheme: &'static str,
        container: String,
        prefix: String,
    },
}

/// A location of a submission, parsed.
enum Location {
    Local(PathBuf),
    Object {
        scheme: &'static str,
        container: String,
        key: String,
    },
}

/// The roots a submission's input and output must lie under.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathRules {
    roots: Vec<Root>,
    /// Absolute local paths anywhere are allowed (object URLs still need a root).
    any_local: bool,
}

/// Why an `--allow-prefix` value cannot be a root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--allow-prefix '{given}': {reason}")]
pub struct BadRoot {
    pub given: String,
    pub reason: String,
}

impl PathRules {
    /// Absolute local paths anywhere (fresco's behaviour before roots existed); object URLs
    /// only under the roots added with [`PathRules::allow`]; traversal is always refused.
    pub fn any_local_path() -> Self {
        PathRules {
            roots: Vec::new(),
            any_local: true,
        }
    }

    /// Whether local paths are restricted to the roots.
    pub fn is_restricted(&self) -> bool {
        !self.any_local
    }

    /// Adds a root: an absolute folder, `file:///folder`, `az://container[/prefix]`,
    /// `azure://...` or `s3://bucket[/prefix]`.
    pub fn allow(mut self, root: &str) -> Result<Self, BadRoot> {
        let refuse = |reason: &str| BadRoot {
            given: root.to_string(),
            reason: reason.to_string(),
        };
        if root.starts_with('/') && root.trim_matches('/').is_empty() {
            // The whole file system.
            self.roots.push(Root::Folder {
                given: PathBuf::from("/"),
                resolved: PathBuf::from("/"),
            });
            return Ok(self);
        }
        let parsed = parse_location(root.trim_end_matches('/'))
            .or_else(|e| {
                // A bare container (`az://videos`) has no key.
                let (scheme, rest) = root.split_once("://").ok_or_else(|| e.clone())?;
                let scheme = object_scheme(scheme).ok_or_else(|| e.clone())?;
                let container = rest.trim_end_matches('/');
                if container.is_empty() || container.contains('/') {
                    return Err(e);
                }
                Ok(Location::Object {
                    scheme,
                    container: container.to_string(),
                    key: String::new(),
                })
            })
            .map_err(|e| refuse(&e))?;
        self.roots.push(match parsed {
            Location::Local(given) => {
                let resolved = resolve(&given);
                Root::Folder { given, resolved }
            }
            Location::Object {
                scheme,
                container,
                key,
            } => Root::Prefix {
                scheme,
                container,
                prefix: key,
            },
        });
        Ok(self)
    }

    /// The roots, for the start-up log.
    pub fn describe(&self) -> Vec<String> {
        self.roots
            .iter()
            .map(|root| match root {
                Root::Folder { given, .. } => given.display().to_string(),
                Root::Prefix {
                    scheme,
                    container,
                    prefix,
                } if prefix.is_empty() => format!("{scheme}://{container}"),
                Root::Prefix {
                    scheme,
                    container,
                    prefix,
                } => format!("{scheme}://{container}/{prefix}"),
            })
            .collect()
    }

    /// Checks the location `text` that `field` (`input`, `output`) names.
    pub fn check(&self, field: &str, text: &str) -> Result<(), InputRejected> {
        let refuse = |reason: String| {
            bad(
                "path-not-allowed",
                format!("{field}: '{}' {reason}", text.escape_default()),
            )
        };
        let location = parse_location(text).map_err(refuse)?;
        let allowed = || {
            if self.roots.is_empty() {
                "none".to_string()
            } else {
                format!("allowed: {}", self.describe().join(", "))
            }
        };
        match location {
            Location::Local(path) => {
                if self.any_local {
                    return Ok(());
                }
                let resolved = resolve(&path);
                let inside = self.roots.iter().any(|root| match root {
                    // Named under the root, and still under it once symlinks are followed.
                    Root::Folder { given, resolved: r } => {
                        (path.starts_with(given) || path.starts_with(r))
                            && (resolved.starts_with(r) || resolved.starts_with(given))
                    }
                    Root::Prefix { .. } => false,
                });
                if inside {
                    Ok(())
                } else {
                    Err(refuse(format!(
                        "is outside the folders this server reads and writes ({})",
                        allowed()
                    )))
                }
            }
            Location::Object {
                scheme,
                container,
                key,
            } => {
                let inside = self.roots.iter().any(|root| match root {
                    Root::Prefix {
                        scheme: s,
                        container: c,
                        prefix,
                    } => {
                        *s == scheme
                            && *c == container
                            && (prefix.is_empty()
                                || key == *prefix
                                || key.starts_with(&format!("{prefix}/")))
                    }
                    Root::Folder { .. } => false,
                });
                if inside {
                    Ok(())
                } else {
                    Err(refuse(format!(
                        "is not in a container and prefix this server reads and writes ({})",
                        allowed()
                    )))
                }
            }
        }
    }
}

fn object_scheme(scheme: &str) -> Option<&'static str> {
    match scheme.to_ascii_lowercase().as_str() {
        "az" | "azure" => Some("az"),
        "s3" => Some("s3"),
        _ => None,
    }
}

/// Parses a location: an absolute path, `file:///abs`, or `az://`/`s3://` with a key. Refuses
/// NUL bytes, backslashes, `.`/`..` and empty segments, percent-encoded separators, queries and
/// credentials.
fn parse_location(text: &str) -> Result<Location, String> {
    if text.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    // URL parsers drop tabs and line breaks anywhere in a URL, so `.\t.` would pass the segment
    // checks here and become `..` when the store opens the URL.
    if text.chars().any(char::is_control) {
        return Err("contains a control character (a tab or line break, say)".into());
    }
    if text.contains('\\') {
        return Err("contains a backslash".into());
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        let path = Path::new(text);
        if !path.is_absolute() {
            return Err("is not an absolute path".into());
        }
        check_segments(text.trim_start_matches('/'))?;
        return Ok(Location::Local(path.to_path_buf()));
    };
    if rest.contains(['?', '#']) {
        return Err("has a query or fragment: a location takes none".into());
    }
    if scheme.eq_ignore_ascii_case("file") {
        let path = rest
            .strip_prefix('/')
            .ok_or("is not file:///absolute/path (a file URL names no host)")?;
        let decoded = percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .map_err(|_| "is not UTF-8 once decoded".to_string())?;
        if decoded.contains(['\0', '\\']) {
            return Err("hides a NUL byte or backslash in percent-encoding".into());
        }
        if decoded.chars().any(char::is_control) {
            return Err("hides a control character in percent-encoding".into());
        }
        check_segments(&decoded)?;
        return Ok(Location::Local(PathBuf::from(format!("/{decoded}"))));
    }
    let scheme = object_scheme(scheme).ok_or_else(|| {
        format!(
            "uses the scheme '{}', which this server does not read (use a path, file:///, az:// or s3://)",
            scheme.escape_default()
        )
    })?;
    if rest.contains('@') {
        return Err("carries credentials: they come from the server's environment".into());
    }
    let (container, key) = rest
        .split_once('/')
        .ok_or("names a container but no object in it")?;
    if container.is_empty() || container.contains(':') {
        return Err("has no container or bucket name".into());
    }
    if key.contains('%') {
        return Err("has percent-encoding in its key; give the key as it is".into());
    }
    check_segments(key)?;
    Ok(Location::Object {
        scheme,
        container: container.to_string(),
        key: key.to_string(),
    })
}

fn check_segments(path: &str) -> Result<(), String> {
    for segment in path.split('/') {
        match segment {
            "" => return Err("has an empty path segment ('//' or a trailing '/')".into()),
            "." | ".." => return Err("has a '.' or '..' segment".into()),
            _ => {}
        }
    }
    Ok(())
}

/// `path` with symlinks of its longest existing ancestor resolved (an output does not exist
/// yet, its folder may not either).
fn resolve(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |acc, part| acc.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<(), InputRejected>) -> String {
        match r {
            Ok(()) => "ok".into(),
            Err(InputRejected { code, message }) => format!("{code}: {message}"),
        }
    }

    #[test]
    fn locations_outside_the_roots_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("in")).unwrap();
        std::fs::write(data.join("in/a.mp4"), b"x").unwrap();
        let rules = PathRules::default()
            .allow(data.to_str().unwrap())
            .unwrap()
            .allow("az://videos/in")
            .unwrap()
            .allow("s3://bucket")
            .unwrap();
        let d = data.display();
        for ok in [
            format!("{d}/in/a.mp4"),
            format!("{d}/out/new/b.mp4"),
            format!("file://{d}/in/a.mp4"),
            "az://videos/in/a.mp4".into(),
            "azure://videos/in/sub/a.mp4".into(),
            "s3://bucket/anything/x.mp4".into(),
        ] {
            assert_eq!(code(rules.check("input", &ok)), "ok", "{ok}");
        }
        for (bad, why) in [
            ("/etc/passwd".to_string(), "outside the folders"),
            ("file:///etc/passwd".into(), "outside the folders"),
            (format!("{d}/../secret.mp4"), "'..' segment"),
            (format!("{d}/in/./a.mp4"), "'.' or '..'"),
            (format!("file://{d}/in/%2e%2e/%2e%2e/x"), "'..' segment"),
            ("az://other/in/a.mp4".into(), "not in a container"),
            ("az://videos/input/a.mp4".into(), "not in a container"),
            ("az://videos/out/a.mp4".into(), "not in a container"),
            ("az://videos/in/../out/a.mp4".into(), "'..' segment"),
            ("az://acct:key@videos/in/a.mp4".into(), "credentials"),
            ("s3://bucket/a.mp4?versionId=1".into(), "query"),
            ("http://example.com/a.mp4".into(), "scheme 'http'"),
            ("gs://bucket/a.mp4".into(), "scheme 'gs'"),
            ("relative/a.mp4".into(), "not an absolute path"),
            (format!("{d}\\..\\x"), "backslash"),
            ("/a\0b".into(), "NUL"),
            ("file://host/etc/passwd".into(), "file:///absolute"),
            // URL parsers drop tabs and line breaks: `.\t.` would become `..` when opened.
            (
                format!("file://{d}/in/.\t./.\t./secret.mp4"),
                "control character",
            ),
            (format!("file://{d}/in/.\n%2e/x.mp4"), "control character"),
            (format!("file://{d}/in/.\r./x.mp4"), "control character"),
            (format!("{d}/in/.\t./x.mp4"), "control character"),
            (format!("file://{d}/in/%09/x.mp4"), "control character"),
        ] {
            let got = code(rules.check("input", &bad));
            assert!(got.starts_with("path-not-allowed: input:"), "{bad}: {got}");
            assert!(got.contains(why), "{bad}: {got}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_out_of_a_root_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::os::unix::fs::symlink("/etc", data.join("etc")).unwrap();
        let rules = PathRules::default().allow(data.to_str().unwrap()).unwrap();
        let got = code(rules.check("input", &format!("{}/etc/passwd", data.display())));
        assert!(got.contains("outside the folders"), "{got}");
    }

    #[test]
    fn without_roots_only_traversal_and_urls_are_refused() {
        let rules = PathRules::any_local_path();
        assert!(!rules.is_restricted());
        assert_eq!(code(rules.check("input", "/srv/a.mp4")), "ok");
        assert!(code(rules.check("input", "/srv/../etc/passwd")).contains("'..'"));
        assert!(code(rules.check("output", "az://c/x.mp4")).contains("not in a container"));
    }

    #[test]
    fn bad_roots_say_why() {
        for root in ["relative", "gs://b", "az://", "http://x/y"] {
            let err = PathRules::default().allow(root).unwrap_err();
            assert!(err.to_string().starts_with("--allow-prefix"), "{err}");
        }
    }

    fn report(json: &str) -> ProbeReport {
        ProbeReport::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn limits_name_the_value_and_the_limit() {
        let limits = InputLimits {
            max_bytes: Some(1000),
            max_seconds: Some(60.0),
            max_width: Some(1920),
            max_height: Some(1080),
            max_pixels: Some(1920 * 1080),
            max_streams: Some(1),
            ..InputLimits::none()
        };
        assert_eq!(code(limits.check_bytes("input", 1000)), "ok");
        let got = code(limits.check_bytes("input", 1001));
        assert!(
            got.starts_with("input-too-large: input: the input is 1001 bytes"),
            "{got}"
        );
        let video = |w: u32, h: u32, d: &str| {
            report(&format!(
                r#"{{"streams":[{{"index":0,"codec_type":"video","width":{w},"height":{h}}}],
                   "format":{{"format_name":"mov","duration":"{d}"}}}}"#
            ))
        };
        assert_eq!(
            code(limits.check_probe("input", &video(1920, 1080, "59.9"))),
            "ok"
        );
        let got = code(limits.check_probe("input", &video(640, 480, "61")));
        assert!(
            got.starts_with("input-too-long:") && got.contains("61.0 s"),
            "{got}"
        );
        let got = code(limits.check_probe("input", &video(60000, 60000, "1")));
        assert!(
            got.starts_with("input-dimensions-too-large:") && got.contains("60000x60000"),
            "{got}"
        );
        let got = code(limits.check_probe("input", &video(1000, 1080, "1")));
        assert_eq!(got, "ok");
        let tall = InputLimits {
            max_pixels: Some(100),
            ..InputLimits::none()
        };
        assert!(code(tall.check_probe("input", &video(11, 10, "1"))).contains("pixel count (110)"));
        assert_eq!(
            code(InputLimits::none().check_probe("input", &video(60000, 60000, "1e9"))),
            "ok"
        );
        let two = report(
            r#"{"streams":[{"index":0,"codec_type":"video","width":64,"height":48},
               {"index":1,"codec_type":"audio"}],"format":{"format_name":"mov","nb_streams":2}}"#,
        );
        let got = code(limits.check_probe("input", &two));
        assert!(got.starts_with("input-too-many-streams:"), "{got}");
        let chapters = report(
            r#"{"streams":[{"index":0,"codec_type":"video","width":64,"height":48}],
               "chapters":[{"id":0},{"id":1},{"id":2}]}"#,
        );
        let few = InputLimits {
            max_chapters: Some(2),
            ..InputLimits::none()
        };
        let got = code(few.check_probe("input", &chapters));
        assert!(
            got.starts_with("input-too-many-chapters:") && got.contains("3 chapters"),
            "{got}"
        );
        assert_eq!(few.media().max_chapters, Some(2));
    }
}
