//! Model cards and labels files.
//!
//! A card is a small TOML file with the same keys as the scoring flags ([`ScoreSettings`]),
//! given explicitly or found beside the model as `NAME.toml` ([`card_beside`]). Unknown keys are
//! refused by name, so a typo never silently falls back to a default. A card's digest (sha256
//! of its bytes) is pinned into a job like the model's; the labels file it names has its own.
//!
//! ```toml
//! task = "classify"
//! input_size = "224x224"
//! resize = "crop"
//! mean = [127.0, 127.0, 127.0]
//! std = [128.0, 128.0, 128.0]
//! labels = "imagenet_labels.txt"   # relative to the card's folder
//! top_k = 5
//! ```

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use fresco_core::scoring::{AnchorGrid, ScoreSettings};

/// Why a card or labels file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("model card {path}: cannot read it: {reason}")]
    Read { path: String, reason: String },
    #[error("model card {path}: unknown key '{key}' (known keys: {known})")]
    UnknownKey {
        path: String,
        key: String,
        known: String,
    },
    #[error("model card {path}: {reason}")]
    Invalid { path: String, reason: String },
    /// A key of the other kind of card: a records key in an image model's card, or the
    /// reverse.
    #[error("model card {path}: key '{key}' does not apply: {reason}")]
    WrongKind {
        path: String,
        key: String,
        reason: String,
    },
    #[error("labels file {path}: {reason}")]
    Labels { path: String, reason: String },
}

/// The keys of a records model's card.
pub(crate) const KEYS: &[&str] = &[
    "task",
    "input_size",
    "resize",
    "crop_fraction",
    "fill",
    "mean",
    "std",
    "layout",
    "channel_order",
    "labels",
    "outputs",
    "detect_format",
    "min_score",
    "nms_iou",
    "top_k",
    "anchors",
    "mask_threshold",
];
const ANCHOR_KEYS: &[&str] = &["size", "per_cell"];

/// A parsed card, with where it came from and its digest.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCard {
    pub path: PathBuf,
    /// `labels` is made absolute against the card's folder.
    pub settings: ScoreSettings,
    /// sha256 of the card's bytes, hex.
    pub digest: String,
    /// The card as read (what a job pins, so the file is not read twice).
    pub text: String,
}

/// The largest card read (a card is a few lines of TOML).
pub const MAX_CARD_BYTES: u64 = 64 * 1024;
/// The largest labels file read (ImageNet's 1,000 classes take 30 KiB).
pub const MAX_LABELS_BYTES: u64 = 4 * 1024 * 1024;

/// Reads `path` whole, refusing a file over `limit` bytes without reading past it.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("larger than the {limit} bytes allowed"));
    }
    Ok(bytes)
}

/// A card's bytes, at most [`MAX_CARD_BYTES`] of them.
pub(crate) fn read_card(path: &Path) -> Result<Vec<u8>, CardError> {
    read_bounded(path, MAX_CARD_BYTES).map_err(|reason| CardError::Read {
        path: path.display().to_string(),
        reason,
    })
}

/// A card's bytes as text and as a TOML table; `shown` names the card in errors.
pub(crate) fn card_table<'b>(
    bytes: &'b [u8],
    shown: &str,
) -> Result<(&'b str, toml::Table), CardError> {
    let invalid = |reason: String| CardError::Invalid {
        path: shown.to_string(),
        reason,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| invalid(format!("not UTF-8: {e}")))?;
    let table = toml::from_str(text).map_err(|e| invalid(one_line(text, &e)))?;
    Ok((text, table))
}

impl ModelCard {
    pub fn load(path: &Path) -> Result<ModelCard, CardError> {
        Self::parse(&read_card(path)?, path)
    }

    /// Parses a card's bytes; `path` names it in errors and anchors its relative paths.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<ModelCard, CardError> {
        let shown = path.display().to_string();
        let invalid = |reason: String| CardError::Invalid {
            path: shown.clone(),
            reason,
        };
        let (text, table) = card_table(bytes, &shown)?;
        let unknown = |key: &str, known: &[&str]| CardError::UnknownKey {
            path: shown.clone(),
            key: key.to_string(),
            known: known.join(", "),
        };
        for (key, value) in &table {
            if crate::image_card::IMAGE_KEYS.contains(&key.as_str())
                && !KEYS.contains(&key.as_str())
            {
                return Err(CardError::WrongKind {
                    path: shown.clone(),
                    key: key.clone(),
                    reason: "it is a key for image models (an image or video output); a \
                             records model's input is given by mean and std"
                        .into(),
                });
            }
            if !KEYS.contains(&key.as_str()) {
                return Err(unknown(key, KEYS));
            }
            if key == "anchors" {
                for grid in value.as_array().into_iter().flatten() {
                    for k in grid.as_table().into_iter().flat_map(|t| t.keys()) {
                        if !ANCHOR_KEYS.contains(&k.as_str()) {
                            return Err(unknown(&format!("anchors.{k}"), ANCHOR_KEYS));
                        }
                    }
                }
            }
        }
        let mut settings: ScoreSettings =
            toml::from_str(text).map_err(|e| invalid(one_line(text, &e)))?;
        if let Some(labels) = &settings.labels {
            if labels.is_relative() {
                let folder = path.parent().unwrap_or(Path::new("."));
                settings.labels = Some(folder.join(labels));
            }
        }
        Ok(ModelCard {
            path: path.to_path_buf(),
            settings,
            digest: hex::encode(Sha256::digest(bytes)),
            text: text.to_string(),
        })
    }
}

/// A TOML error of the card `text` as its line, column and message only: never the line
/// itself, which `toml`'s own text quotes (a card named by a submitter is a file the server
/// reads for it, and its answer must not carry what the file holds).
pub(crate) fn one_line(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let column = before.len() - start + 1;
            // The key the error is in, when it is one a card may hold (a name fresco knows,
            // so nothing of the file's own text).
            let key = String::from_utf8_lossy(&before[start..])
                .split_once('=')
                .map(|(key, _)| key.trim().to_string())
                .filter(|key| {
                    KEYS.contains(&key.as_str())
                        || crate::image_card::IMAGE_KEYS.contains(&key.as_str())
                        || ANCHOR_KEYS.contains(&key.as_str())
                });
            match key {
                Some(key) => {
                    format!("TOML error at line {line}, column {column}, key '{key}': {message}")
                }
                None => format!("TOML error at line {line}, column {column}: {message}"),
            }
        }
        None => format!("TOML error: {message}"),
    }
}

/// The task a card names (`task = "segment"`), read before the card is checked whole as a
/// records card or an image card: a dataset with a folder output is styled or made masks by
/// it. `None`: the card names no task as text (an image model's card names none; a `task`
/// of another type is refused by the full read that follows).
pub fn card_task(path: &Path) -> Result<Option<String>, CardError> {
    let bytes = read_card(path)?;
    let (_, table) = card_table(&bytes, &path.display().to_string())?;
    Ok(table
        .get("task")
        .and_then(|task| task.as_str())
        .map(str::to_string))
}

/// The card beside a model (`NAME.toml` for `NAME.onnx`), if there is one.
pub fn card_beside(model: &Path) -> Option<PathBuf> {
    let card = model.with_extension("toml");
    card.is_file().then_some(card)
}

/// Class names, in class order. A line is one label; a line with a tab is `id<TAB>names` (the
/// ImageNet file: `n02123159<TAB>tiger cat`), where the label is the first comma-separated name
/// after the tab (`n02123045<TAB>tabby, tabby cat` gives `tabby`). Surrounding spaces are
/// trimmed; one empty last line (a final newline) is not a label.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    pub names: Vec<String>,
    /// sha256 of the file's bytes, hex.
    pub digest: String,
    /// The file as read (what a job pins, so the file is not read twice).
    pub text: String,
}

impl Labels {
    pub fn load(path: &Path) -> Result<Labels, CardError> {
        let bytes = read_bounded(path, MAX_LABELS_BYTES).map_err(|reason| CardError::Labels {
            path: path.display().to_string(),
            reason,
        })?;
        Self::parse(&bytes).map_err(|reason| CardError::Labels {
            path: path.display().to_string(),
            reason,
        })
    }

    pub fn parse(bytes: &[u8]) -> Result<Labels, String> {
        let whole = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        let text = whole.strip_suffix('\n').unwrap_or(whole);
        let names: Vec<String> = text
            .split('\n')
            .map(|line| {
                let line = line.trim_end_matches('\r');
                let name = match line.split_once('\t') {
                    Some((_, names)) => names.split(',').next().unwrap_or(""),
                    None => line,
                };
                name.trim().to_string()
            })
            .collect();
        if text.is_empty() {
            return Err("it is empty".into());
        }
        Ok(Labels {
            names,
            digest: hex::encode(Sha256::digest(bytes)),
            text: whole.to_string(),
        })
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_parse_and_anchor_labels_to_their_folder() {
        let text = b"task = \"detect\"\ninput_size = \"416x416\"\nlabels = \"coco.names\"\n\
            mean = [0.0, 0.0, 0.0]\nstd = [255.0, 255.0, 255.0]\n\
            [[anchors]]\nsize = 16\nper_cell = 2\n";
        let card = ModelCard::parse(text, Path::new("/m/yolo.toml")).unwrap();
        assert_eq!(card.settings.task.as_deref(), Some("detect"));
        assert_eq!(card.settings.labels, Some(PathBuf::from("/m/coco.names")));
        assert_eq!(
            card.settings.anchors,
            Some(vec![AnchorGrid {
                size: 16,
                per_cell: 2
            }])
        );
        assert_eq!(card.digest.len(), 64);
        let other = ModelCard::parse(b"task = \"detect\"\n", Path::new("c.toml")).unwrap();
        assert_ne!(card.digest, other.digest);
    }

    #[test]
    fn a_cards_task_is_read_before_its_kind_is_known() {
        let dir = tempfile::tempdir().unwrap();
        let card = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            card_task(&path)
        };
        let segment = card("seg.toml", "task = \"segment\"\nmask_threshold = 0.3\n");
        assert_eq!(segment.unwrap().as_deref(), Some("segment"));
        // An image model's card names no task.
        assert_eq!(card("style.toml", "layout = \"nhwc\"\n").unwrap(), None);
        assert_eq!(card("odd.toml", "task = 3\n").unwrap(), None);
        let err = card("bad.toml", "task = \"segment\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.toml: TOML error at line 1"), "{err}");
        let err = card_task(&dir.path().join("none.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("none.toml"), "{err}");
    }

    /// A file that is no card (a server's `/etc/passwd`) is refused by line and column; its
    /// lines never appear in the answer.
    #[test]
    fn toml_errors_quote_no_line_of_the_file() {
        let text = b"# users\nroot:x:0:0:root:/root:/bin/bash\n";
        for err in [
            ModelCard::parse(text, Path::new("/m/c.toml")).unwrap_err(),
            crate::image_card::parse_image_card(text, Path::new("/m/c.toml")).unwrap_err(),
        ] {
            let shown = err.to_string();
            assert!(
                shown.starts_with("model card /m/c.toml: TOML error at line 2, column "),
                "{shown}"
            );
            assert!(
                !shown.contains("root:x") && !shown.contains("/bin/bash"),
                "{shown}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = ModelCard::parse(
            b"task = \"classify\"\nmin_scor = 0.3\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        match &err {
            CardError::UnknownKey { key, .. } => assert_eq!(key, "min_scor"),
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("unknown key 'min_scor'"), "{err}");
        let err = ModelCard::parse(b"[[anchors]]\nsize = 8\ncells = 6\n", Path::new("c.toml"))
            .unwrap_err();
        assert!(matches!(&err, CardError::UnknownKey { key, .. } if key == "anchors.cells"));
        // A wrong type is an error naming the key too.
        let err = ModelCard::parse(b"top_k = \"five\"\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("top_k"), "{err}");
        // An image model's key is named as such.
        let err = ModelCard::parse(
            b"task = \"classify\"\noutput_range = \"0-1\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(
            matches!(&err, CardError::WrongKind { key, .. } if key == "output_range"),
            "{err}"
        );
        assert!(err.to_string().contains("image models"), "{err}");
    }

    #[test]
    fn labels_take_the_readable_name() {
        let l = Labels::parse(b"n01440764\ttench, Tinca tinca\nn02123159\ttiger cat\n").unwrap();
        assert_eq!(l.names, vec!["tench", "tiger cat"]);
        let l = Labels::parse(b"person\r\nbicycle\ncar").unwrap();
        assert_eq!(l.names, vec!["person", "bicycle", "car"]);
        assert!(Labels::parse(b"").is_err());
    }

    #[test]
    fn cards_are_found_beside_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.onnx");
        assert_eq!(card_beside(&model), None);
        std::fs::write(dir.path().join("m.toml"), "task = \"tensors\"\n").unwrap();
        assert_eq!(card_beside(&model), Some(dir.path().join("m.toml")));
    }
}
