//! The flags of a dataset job (`fresco jobs submit DIR|URL/|--manifest FILE`) and which inputs
//! are datasets: a folder, an object-store URL that names a prefix (ending in `/`, or whose last
//! segment has no extension), or a manifest.

use std::path::{Path, PathBuf};

use clap::Args;
use fresco_core::dataset::{
    check_max_item_bytes, DatasetSource, DatasetSpec, DEFAULT_MAX_FAILED_FRACTION,
    DEFAULT_MAX_ITEM_BYTES,
};

#[derive(Debug, Clone, Args)]
pub struct DatasetArgs {
    /// A text file listing the images to score, one path or object URL a line (relative paths
    /// are relative to the file's folder): a dataset job.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Score the keys of a folder or prefix that match this glob (`*.jpg`, `cams/**/*.png`;
    /// repeatable). Default: the image extensions (jpg, jpeg, png, bmp, tif, tiff, webp).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// A dataset job fails when more than this many items cannot be scored (error rows).
    #[arg(long, value_name = "N")]
    pub max_failed_items: Option<u64>,
    /// A dataset job fails when more than this share of its items cannot be scored.
    #[arg(long, value_name = "F", default_value_t = DEFAULT_MAX_FAILED_FRACTION)]
    pub max_failed_fraction: f64,
    /// An item larger than this many bytes is an error row (too-large) and is never read whole
    /// (default 268435456, 256 MiB; at most 16 GiB).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_ITEM_BYTES, value_parser = item_limit)]
    pub max_item_bytes: u64,
}

/// `--max-item-bytes`: a number of bytes within [`check_max_item_bytes`]'s bounds.
pub(crate) fn item_limit(text: &str) -> Result<u64, String> {
    let bytes: u64 = text
        .parse()
        .map_err(|e| format!("{text}: not a number of bytes ({e})"))?;
    check_max_item_bytes(bytes)?;
    Ok(bytes)
}

/// Whether a URL names a prefix rather than one object.
fn is_prefix_url(text: &str) -> bool {
    if text.ends_with('/') {
        return true;
    }
    let last = text.rsplit('/').next().unwrap_or_default();
    !last.contains('.')
}

impl DatasetArgs {
    /// The dataset `input` (or `--manifest`) names, with the flags; `None` when the job is not
    /// a dataset (one video, one object).
    pub fn spec(&self, input: Option<&Path>) -> Option<DatasetSpec> {
        let source = match (&self.manifest, input) {
            // Absolute, so that workers started elsewhere find them.
            (Some(path), _) => DatasetSource::Manifest {
                path: fresco_store::absolute(path),
            },
            (None, Some(input)) => {
                let text = input.to_string_lossy();
                if text.contains("://") {
                    if !is_prefix_url(&text) {
                        return None;
                    }
                    DatasetSource::Prefix {
                        url: text.into_owned(),
                    }
                } else if input.is_dir() {
                    DatasetSource::Folder {
                        path: fresco_store::absolute(input),
                    }
                } else {
                    return None;
                }
            }
            (None, None) => return None,
        };
        Some(DatasetSpec {
            source,
            include: self.include.clone(),
            max_failed_items: self.max_failed_items,
            max_failed_fraction: self.max_failed_fraction,
            max_item_bytes: self.max_item_bytes,
        })
    }
}

impl DatasetArgs {
    /// The `dataset` object of `POST /v1/jobs` for a dataset submitted through `--server`, or
    /// why it cannot be: a manifest, which the API does not take (its lines could name files
    /// outside what the server lets the token read). `input` is what the server gets: besides
    /// what [`DatasetArgs::spec`] reads as a dataset, a path ending in `/` or given with
    /// `--include` names a folder on the server, which this machine may not have.
    pub fn for_server(&self, input: Option<&Path>) -> Result<Option<serde_json::Value>, String> {
        if let Some(manifest) = &self.manifest {
            return Err(format!(
                "--manifest {}: the API takes no manifests, since their lines could name files \
                 outside what the server lets a token read; put the images under a folder or \
                 prefix the server allows and submit that (with --include), or submit the \
                 manifest to the queue itself (--db, without --server)",
                manifest.display()
            ));
        }
        let named_folder = input.is_some_and(|i| {
            let text = i.to_string_lossy();
            !text.contains("://") && (text.ends_with('/') || !self.include.is_empty())
        });
        if self.spec(input).is_none() && !named_folder {
            return Ok(None);
        }
        let mut dataset = serde_json::json!({
            "include": self.include,
            "max_failed_fraction": self.max_failed_fraction,
            "max_item_bytes": self.max_item_bytes,
        });
        if let Some(max) = self.max_failed_items {
            dataset["max_failed_items"] = max.into();
        }
        Ok(Some(dataset))
    }
}

#[cfg(test)]
mod tests {
    use super::{is_prefix_url, item_limit, DatasetArgs};
    use std::path::Path;

    #[test]
    fn item_limits_are_bytes_within_the_bounds() {
        assert_eq!(item_limit("1048576"), Ok(1 << 20));
        assert!(item_limit("0").is_err());
        assert!(item_limit("1MiB").is_err());
        assert!(item_limit("17179869185").is_err());
    }

    fn args() -> DatasetArgs {
        DatasetArgs {
            manifest: None,
            include: Vec::new(),
            max_failed_items: None,
            max_failed_fraction: 0.01,
            max_item_bytes: fresco_core::dataset::DEFAULT_MAX_ITEM_BYTES,
        }
    }

    /// `fresco run photos/ -o x.jsonl`: a relative folder or manifest is the one this process
    /// sees (the submitter's check wants absolute paths, and workers run elsewhere).
    #[test]
    fn relative_folders_and_manifests_are_made_absolute() {
        let here = std::env::current_dir().unwrap().canonicalize().unwrap();
        let folder = args().spec(Some(Path::new("."))).unwrap().source;
        assert_eq!(
            folder,
            fresco_core::dataset::DatasetSource::Folder { path: here.clone() }
        );
        let mut listed = args();
        listed.manifest = Some("picks.txt".into());
        let manifest = listed.spec(None).unwrap().source;
        assert_eq!(
            manifest,
            fresco_core::dataset::DatasetSource::Manifest {
                path: here.join("picks.txt")
            }
        );
    }

    #[test]
    fn prefixes_are_told_from_objects() {
        assert!(is_prefix_url("az://photos/2026/"));
        assert!(is_prefix_url("az://photos/2026"));
        assert!(!is_prefix_url("az://videos/clip.mp4"));
    }

    #[test]
    fn datasets_through_the_server_carry_their_options_and_manifests_are_refused() {
        let plain = args();
        let for_server = |a: &DatasetArgs, input: &str| a.for_server(Some(Path::new(input)));
        // One video or object: no dataset.
        assert_eq!(for_server(&plain, "/nowhere/clip.mp4"), Ok(None));
        assert_eq!(for_server(&plain, "az://films/clip.mp4"), Ok(None));
        // A prefix URL, a folder here, or one named as a folder (on the server only).
        let here = std::env::temp_dir().display().to_string();
        for input in ["az://photos/2026/", here.as_str(), "/srv/photos/"] {
            assert_eq!(
                for_server(&plain, input),
                Ok(Some(serde_json::json!({
                    "include": [], "max_failed_fraction": 0.01, "max_item_bytes": 268435456
                }))),
                "{input}"
            );
        }
        let mut given = args();
        given.include = vec!["*.jpg".into()];
        given.max_failed_items = Some(3);
        given.max_failed_fraction = 0.5;
        given.max_item_bytes = 1 << 20;
        assert_eq!(
            for_server(&given, "/srv/photos"),
            Ok(Some(serde_json::json!({
                "include": ["*.jpg"], "max_failed_items": 3, "max_failed_fraction": 0.5,
                "max_item_bytes": 1048576
            })))
        );
        let mut manifest = args();
        manifest.manifest = Some("picks.txt".into());
        let refused = manifest.for_server(None).unwrap_err();
        assert!(
            refused.contains("--manifest picks.txt") && refused.contains("without --server"),
            "{refused}"
        );
    }
}
