//! Datasets: a set of images scored as one job (a folder, an object-store prefix, or a manifest
//! listing objects), with no I/O.
//!
//! ```text
//! submit (source, globs, thresholds) -> plan: list (streamed), pin items into the queue
//!   -> score item ranges (one part each; a bad item is an error row) -> assemble (join, count)
//! ```
//!
//! With an image model and no records output, each item is styled and written under the
//! output folder or prefix with its own key ([`output_key`]); the parts hold only the error
//! rows, which assembly publishes as [`ERRORS_FILE`] beside the outputs.
//!
//! The plan task pins every item (index, key, size, ETag or modification time) into the queue's
//! database and cuts the indices into ranges: the ranges are the job's chunks, held in the same
//! `frame_start..frame_end` columns as a video's frames, so that leases, budgets, resume, cancel
//! and the dashboard's progress count items as they count frames. A retry scores the pinned set.

use serde::{Deserialize, Serialize};

/// Where a dataset's items come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum DatasetSource {
    /// A local folder, walked recursively in name order; keys are paths relative to it with `/`.
    Folder { path: std::path::PathBuf },
    /// An object-store prefix (`file://`, `az://`, `s3://`); keys are relative to the prefix.
    Prefix { url: String },
    /// A text file of one key or URL per line (blank lines and `#` comments skipped): absolute
    /// paths, object URLs, or paths relative to the manifest's folder.
    Manifest { path: std::path::PathBuf },
}

/// File extensions taken for videos (the watch trigger's, and what a dataset's output folder
/// may not be named like).
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "ts", "mts", "m2ts", "mxf", "mpg", "mpeg", "flv",
    "wmv", "3gp", "ogv",
];

/// The default share of a dataset's items that may fail (error rows) before the job fails: one
/// in a hundred, so a few corrupt files do not stop a large job but a wrong folder does.
pub const DEFAULT_MAX_FAILED_FRACTION: f64 = 0.01;

/// The default largest item a dataset job reads (`--max-item-bytes`): 256 MiB, far above any
/// camera's or catalogue's picture, far below what a worker can hold once per decode thread.
pub const DEFAULT_MAX_ITEM_BYTES: u64 = 256 << 20;

/// The most `--max-item-bytes` may be set to (16 GiB): an item is read whole into memory.
pub const MAX_ITEM_BYTES_LIMIT: u64 = 16 << 30;

/// Whether `bytes` is an item limit a job may ask for (1 byte to [`MAX_ITEM_BYTES_LIMIT`]),
/// and if not, why: the one check `fresco jobs submit`, `fresco run` and the API apply.
pub fn check_max_item_bytes(bytes: u64) -> Result<(), String> {
    if (1..=MAX_ITEM_BYTES_LIMIT).contains(&bytes) {
        Ok(())
    } else {
        Err(format!(
            "--max-item-bytes {bytes}: give 1 to {MAX_ITEM_BYTES_LIMIT} bytes"
        ))
    }
}

/// A dataset job's own part of its spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSpec {
    pub source: DatasetSource,
    /// Glob patterns matched against each item's key (`*.jpg`, `**/*.png`); empty: the image
    /// extensions still images have (`fresco_pipeline::image::IMAGE_EXTENSIONS`). A manifest's lines are not filtered.
    #[serde(default)]
    pub include: Vec<String>,
    /// At most this many failed items (None: no count limit).
    #[serde(default)]
    pub max_failed_items: Option<u64>,
    /// At most this share of the items may fail.
    #[serde(default = "default_fraction")]
    pub max_failed_fraction: f64,
    /// An item larger than this (as pinned, or as read) is an error row of kind `too-large`
    /// and is not read whole; pinned with the job, so every worker applies the same limit.
    #[serde(default = "default_max_item_bytes")]
    pub max_item_bytes: u64,
}

fn default_fraction() -> f64 {
    DEFAULT_MAX_FAILED_FRACTION
}

fn default_max_item_bytes() -> u64 {
    DEFAULT_MAX_ITEM_BYTES
}

impl DatasetSpec {
    /// Whether `failed` of `total` items is past the job's thresholds, and if so, why (for the
    /// job's error). Either limit, when given, must hold.
    pub fn over_threshold(&self, failed: u64, total: u64) -> Option<String> {
        if let Some(max) = self.max_failed_items {
            if failed > max {
                return Some(format!(
                    "{failed} of {total} items failed, more than --max-failed-items {max}"
                ));
            }
        }
        let fraction = if total == 0 {
            0.0
        } else {
            failed as f64 / total as f64
        };
        // With a count limit given and no fraction asked for, the count alone decides.
        if fraction > self.max_failed_fraction && failed > 0 {
            return Some(format!(
                "{failed} of {total} items failed ({:.2}%), more than --max-failed-fraction {}",
                fraction * 100.0,
                self.max_failed_fraction
            ));
        }
        None
    }
}

/// Why one item became an error row instead of a scored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemErrorKind {
    /// The object could not be read (gone, permission, the store refused).
    Unreadable,
    /// Zero bytes.
    Empty,
    /// Its bytes are not an image the decoder reads, or are cut short.
    NotImage,
    /// Its size is over the job's `--max-item-bytes`, or its header claims more pixels than
    /// the decoder's memory limit allows.
    TooLarge,
    /// Its size or ETag differ from what the job pinned: it was rewritten since.
    Changed,
    /// Its key cannot name an output under the job's output folder or prefix (an absolute
    /// key, a `..` or empty segment, a control character): nothing is written for it.
    BadKey,
}

impl ItemErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemErrorKind::Unreadable => "unreadable",
            ItemErrorKind::Empty => "empty",
            ItemErrorKind::NotImage => "not-image",
            ItemErrorKind::TooLarge => "too-large",
            ItemErrorKind::Changed => "changed",
            ItemErrorKind::BadKey => "bad-key",
        }
    }
}

/// What a dataset's plan task records as the job's plan (the items themselves are in the
/// queue's database).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetPlan {
    /// Items pinned.
    pub items: u64,
    /// Item ranges, in listing order: the job's chunks.
    pub chunks: Vec<crate::FrameRange>,
    /// Items per chunk, and the model seconds an item took when the plan timed it.
    pub per_chunk: u64,
    pub seconds_per_item: Option<f64>,
    /// Listed but not taken (no include pattern matched).
    #[serde(default)]
    pub skipped: u64,
    /// Image jobs: the time by the output's own clock (a file's modification time, an object's
    /// last-modified) when the plan looked at the output, in ms since the Unix epoch. An output
    /// written at or after it is this job's, and a later try keeps it; an older one (there only
    /// with `--overwrite`) is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs_since_ms: Option<i64>,
}

/// What a finished dataset job counts (the summary in its log and `--json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetCounts {
    pub scored: u64,
    pub failed: u64,
    /// Listed but not taken (no include pattern matched).
    pub skipped: u64,
}

/// The file an image dataset job (styled images under an output folder or prefix) writes its
/// error rows to, beside its outputs: one JSON line per failed item, as a records job's error
/// rows. No output is ever named so: every output's name ends in an image extension.
pub const ERRORS_FILE: &str = "_errors.jsonl";

/// The file a mask dataset job (`--task segment`) writes its labels to beside the masks, when
/// the job has labels: line `i` names the class of pixel value `i`. No mask is ever named so:
/// every mask's name ends in `.png`.
pub const LABELS_FILE: &str = "_labels.txt";

/// The extensions an image dataset job writes in the format they name; any other item is
/// written as PNG with `.png` added to its key.
pub const WRITTEN_IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp"];

/// The key an item's styled image is written to below the job's output folder or prefix: the
/// item's own key where it names a format written ([`WRITTEN_IMAGE_EXTENSIONS`]), else the key
/// with `.png` added. Refused (why, for the item's error row) when the key could name anything
/// outside the output ([`check_output_key`]).
pub fn output_key(key: &str) -> Result<String, String> {
    check_output_key(key)?;
    let written = key
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .filter(|ext| !ext.contains('/'))
        .is_some_and(|ext| WRITTEN_IMAGE_EXTENSIONS.contains(&ext.as_str()));
    if written {
        Ok(key.to_string())
    } else {
        Ok(format!("{key}.png"))
    }
}

/// The key an item's mask (`--task segment`) is written to below the job's output folder or
/// prefix: the item's whole key with `.png` added (`cams/0042.jpg` -> `cams/0042.jpg.png`), as
/// a mask is always a PNG. Adding rather than replacing the extension keeps two items apart
/// whose keys differ only in it (`a.jpg` and `a.png` are `a.jpg.png` and `a.png.png`, never one
/// `a.png`): distinct keys always give distinct masks. Refused as [`output_key`] refuses.
pub fn mask_key(key: &str) -> Result<String, String> {
    check_output_key(key)?;
    Ok(format!("{key}.png"))
}

/// Whether `key` can name an output under the job's output folder or prefix: refused (why, for
/// the item's error row) when it could name anything outside it: an absolute key, an empty,
/// `.` or `..` segment, a backslash, or a control character.
pub fn check_output_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    if key.starts_with('/') {
        return Err(format!(
            "{key:?}: an absolute key names no place under the output"
        ));
    }
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return Err(format!("{key:?}: a control character ({:?}) in the key", c));
    }
    if key.contains('\\') {
        return Err(format!("{key:?}: a backslash in the key"));
    }
    if let Some(segment) = key
        .split('/')
        .find(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return Err(format!(
            "{key:?}: a {} segment would leave its folder",
            if segment.is_empty() { "empty" } else { segment }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(items: Option<u64>, fraction: f64) -> DatasetSpec {
        DatasetSpec {
            source: DatasetSource::Prefix {
                url: "file:///x".into(),
            },
            include: Vec::new(),
            max_failed_items: items,
            max_failed_fraction: fraction,
            max_item_bytes: DEFAULT_MAX_ITEM_BYTES,
        }
    }

    #[test]
    fn thresholds_fail_past_either_limit() {
        let default = spec(None, DEFAULT_MAX_FAILED_FRACTION);
        assert_eq!(default.over_threshold(0, 0), None);
        assert_eq!(default.over_threshold(1, 100), None);
        let past = default.over_threshold(2, 100).expect("past 1%");
        assert!(past.contains("2 of 100 items failed"), "{past}");
        let counted = spec(Some(3), 1.0);
        assert_eq!(counted.over_threshold(3, 4), None);
        assert!(counted.over_threshold(4, 4).is_some());
    }

    #[test]
    fn output_keys_stay_under_the_output() {
        assert_eq!(output_key("a/b.JPG").unwrap(), "a/b.JPG");
        assert_eq!(output_key("deep/x y é.webp").unwrap(), "deep/x y é.webp");
        assert_eq!(output_key("scan.gif").unwrap(), "scan.gif.png");
        assert_eq!(output_key("no-extension").unwrap(), "no-extension.png");
        assert_eq!(output_key("dir.jpg/plain").unwrap(), "dir.jpg/plain.png");
        assert_eq!(output_key("..hidden.png").unwrap(), "..hidden.png");
        for hostile in [
            "",
            "/etc/passwd.png",
            "../up.png",
            "a/../../up.png",
            "a/./b.png",
            "a//b.png",
            "a/",
            "..",
            "a\\..\\b.png",
            "line\nbreak.png",
            "nul\0.png",
        ] {
            let why = output_key(hostile).expect_err(hostile);
            assert!(!why.is_empty());
        }
        assert_eq!(ItemErrorKind::BadKey.as_str(), "bad-key");
        // An item named like the errors file is written beside it, never over it.
        assert_eq!(output_key(ERRORS_FILE).unwrap(), "_errors.jsonl.png");
        // Masks: `.png` added to the whole key, so keys that differ in their extension only
        // stay two masks; the same keys are refused.
        assert_eq!(mask_key("a.jpg").unwrap(), "a.jpg.png");
        assert_eq!(mask_key("a.png").unwrap(), "a.png.png");
        assert_eq!(mask_key("sub/scan").unwrap(), "sub/scan.png");
        assert_eq!(mask_key(LABELS_FILE).unwrap(), "_labels.txt.png");
        for hostile in [
            "",
            "/abs.png",
            "../up.png",
            "a//b.png",
            "a\\b.png",
            "cr\r.png",
        ] {
            assert!(mask_key(hostile).is_err(), "{hostile:?}");
        }
    }

    #[test]
    fn item_limits_are_checked() {
        assert!(check_max_item_bytes(DEFAULT_MAX_ITEM_BYTES).is_ok());
        assert!(check_max_item_bytes(1).is_ok());
        assert!(check_max_item_bytes(MAX_ITEM_BYTES_LIMIT).is_ok());
        assert!(check_max_item_bytes(0).is_err());
        assert!(check_max_item_bytes(MAX_ITEM_BYTES_LIMIT + 1).is_err());
    }

    #[test]
    fn specs_round_trip_with_defaults() {
        let text = r#"{"source":{"kind":"folder","path":"/data"}}"#;
        let spec: DatasetSpec = serde_json::from_str(text).unwrap();
        assert_eq!(spec.max_failed_fraction, DEFAULT_MAX_FAILED_FRACTION);
        assert_eq!(spec.max_item_bytes, DEFAULT_MAX_ITEM_BYTES);
        assert!(spec.include.is_empty());
        let again: DatasetSpec =
            serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(again, spec);
    }
}
