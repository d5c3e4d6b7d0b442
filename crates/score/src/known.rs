//! Cards for the scoring models fresco knows by their bytes (sha256), used when a model comes
//! with no card of its own: the preparation a model was trained with is not in its file
//! (EfficientNet-Lite0 wants `(x - 127) / 128`, which no declared shape tells), so without
//! them the default `/255` would score it, slightly wrong. The digests are those of the models'
//! published files (`shared/models/scoring/SHA256SUMS`).
//!
//! They can also be named like styles (`--model efficientnet-lite0`, `--style`, or the API's
//! `style`): [`KnownModel::locate`] finds `NAME.onnx` in the model folder (`$FRESCO_MODEL_DIR`,
//! or its `scoring/` subfolder) or the user cache, and takes it only if its bytes have the known
//! digest; the labels file it was trained with is used from beside it when no labels are given.
//! Their files are converted by hand (see the models' README), so none is downloaded.

use std::path::{Path, PathBuf};

use fresco_infer::registry::Registry;

use crate::card::{CardError, ModelCard};

/// A model known by its bytes, with the card it is scored with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownModel {
    pub name: &'static str,
    pub sha256: &'static str,
    /// The card, TOML (the keys of [`crate::ScoreSettings`]).
    pub card: &'static str,
    /// The labels file it was trained with, looked for beside the model when it is named.
    pub labels: &'static str,
    /// What it is, for `fresco models list`.
    pub description: &'static str,
}

/// The known models.
pub const KNOWN_MODELS: &[KnownModel] = &[
    KnownModel {
        name: "efficientnet-lite0",
        sha256: "1265fe097cd989d531139c2fd326130d05ada38c359bfeb40ea6fc1fb33d3b1e",
        card: "task = \"classify\"\nresize = \"crop\"\ncrop_fraction = 0.875\n\
               mean = [127.0, 127.0, 127.0]\nstd = [128.0, 128.0, 128.0]\n",
        labels: "imagenet_labels.txt",
        description: "scoring: classify, ImageNet-1k (EfficientNet-Lite0)",
    },
    KnownModel {
        name: "yolov3-tiny-416",
        sha256: "2cb08c87eb9a6d273dad22d5e01efb641a7390865fd21731f9d5910bb2b39ac6",
        card: "task = \"detect\"\ndetect_format = \"yolo\"\nresize = \"letterbox\"\nfill = 127\n\
               mean = [0.0, 0.0, 0.0]\nstd = [255.0, 255.0, 255.0]\n\
               min_score = 0.3\nnms_iou = 0.45\n",
        labels: "coco.names",
        description: "scoring: detect, COCO 80 classes (YOLOv3-tiny)",
    },
    KnownModel {
        name: "blazeface-front-128",
        sha256: "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51",
        card: "task = \"detect\"\ndetect_format = \"anchors\"\nresize = \"stretch\"\n\
               mean = [127.5, 127.5, 127.5]\nstd = [127.5, 127.5, 127.5]\n\
               min_score = 0.5\nnms_iou = 0.3\n\
               [[anchors]]\nsize = 16\nper_cell = 2\n[[anchors]]\nsize = 8\nper_cell = 6\n",
        labels: "",
        description: "scoring: detect faces, with 6 keypoints (BlazeFace)",
    },
];

/// The known model with these bytes' sha256 (hex), if any.
pub fn known_model(sha256: &str) -> Option<&'static KnownModel> {
    KNOWN_MODELS.iter().find(|m| m.sha256 == sha256)
}

/// The known model called `name`, if any.
pub fn known_by_name(name: &str) -> Option<&'static KnownModel> {
    KNOWN_MODELS.iter().find(|m| m.name == name)
}

/// The known model a `--model` value names when it is a bare name (no folder, no extension)
/// and no such file exists here.
pub fn named_by(value: &Path) -> Option<&'static KnownModel> {
    let name = value.to_str()?;
    if value.exists() || name.contains(['/', '\\', '.']) {
        return None;
    }
    known_by_name(name)
}

/// Why a named scoring model cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error(
        "scoring model '{name}' is not here: put {name}.onnx in {places} (its file is not \
         downloaded: see the models' README for where it comes from)"
    )]
    Missing { name: String, places: String },
    #[error(
        "{}: this is not the known '{name}' (sha256 {found}, expected {expected}); give it with \
         --model PATH and its own card instead", path.display()
    )]
    Digest {
        name: String,
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{}: cannot read it: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A named model's file and the labels found beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub model: PathBuf,
    pub labels: Option<PathBuf>,
}

impl KnownModel {
    /// Its file: the first of `MODEL_DIR/NAME.onnx`, `MODEL_DIR/scoring/NAME.onnx` and
    /// `CACHE/NAME.onnx` that exists, refused unless its bytes have the known digest (a file
    /// of that name with other weights would be scored with the wrong preparation).
    pub fn locate(&self, registry: &Registry) -> Result<Located, LocateError> {
        let file = format!("{}.onnx", self.name);
        let mut places = Vec::new();
        if let Some(dir) = registry.model_dir() {
            places.push(dir.join(&file));
            places.push(dir.join("scoring").join(&file));
        }
        places.push(registry.cache_dir().join(&file));
        let Some(path) = places.iter().find(|p| p.is_file()) else {
            return Err(LocateError::Missing {
                name: self.name.into(),
                places: places
                    .iter()
                    .map(|p| p.parent().unwrap_or(p).display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            });
        };
        let found =
            fresco_infer::registry::sha256_file(path).map_err(|source| LocateError::Read {
                path: path.clone(),
                source,
            })?;
        if found != self.sha256 {
            return Err(LocateError::Digest {
                name: self.name.into(),
                path: path.clone(),
                found,
                expected: self.sha256.into(),
            });
        }
        let labels = (!self.labels.is_empty())
            .then(|| path.with_file_name(self.labels))
            .filter(|p| p.is_file());
        Ok(Located {
            model: path.clone(),
            labels,
        })
    }

    /// Where its card is said to come from, in messages and pins.
    pub fn card_path(&self) -> String {
        format!("builtin:{}.toml", self.name)
    }

    /// The card, parsed.
    pub fn parsed_card(&self) -> Result<ModelCard, CardError> {
        ModelCard::parse(self.card.as_bytes(), Path::new(&self.card_path()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_card_parses_and_is_found_by_its_digest() {
        for model in KNOWN_MODELS {
            let card = model
                .parsed_card()
                .unwrap_or_else(|e| panic!("{}: {e}", model.name));
            assert!(card.settings.task.is_some(), "{}", model.name);
            assert!(card.settings.mean.is_some() && card.settings.std.is_some());
            assert_eq!(known_model(model.sha256), Some(model));
        }
        assert_eq!(known_model(&"0".repeat(64)), None);
    }

    #[test]
    fn a_named_model_is_found_by_name_and_taken_only_with_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let registry = Registry::new(
            Some(dir.path().to_path_buf()),
            cache.path().to_path_buf(),
            fresco_infer::registry::DEFAULT_BASE_URL.into(),
        );
        let lite0 = known_by_name("efficientnet-lite0").unwrap();
        // Missing: every place searched is named.
        let err = lite0.locate(&registry).unwrap_err().to_string();
        assert!(
            err.contains("efficientnet-lite0.onnx")
                && err.contains(&dir.path().join("scoring").display().to_string())
                && err.contains(&cache.path().display().to_string()),
            "{err}"
        );
        // Other bytes under the known name are refused, with both digests.
        let scoring = dir.path().join("scoring");
        std::fs::create_dir(&scoring).unwrap();
        std::fs::write(scoring.join("efficientnet-lite0.onnx"), b"not the model").unwrap();
        let err = lite0.locate(&registry).unwrap_err().to_string();
        assert!(
            err.contains(lite0.sha256) && err.contains("not the known"),
            "{err}"
        );
        // A bare name that is a file here is the file, not the known model.
        assert_eq!(named_by(Path::new("efficientnet-lite0")), Some(lite0));
        assert_eq!(named_by(Path::new("efficientnet-lite0.onnx")), None);
        assert_eq!(named_by(Path::new("models/efficientnet-lite0")), None);
        assert_eq!(named_by(Path::new("mosaic")), None);
    }
}
