//! Cards for the scoring models fresco knows by their bytes (sha256), used when a model comes
//! with no card of its own: the preparation a model was trained with is not in its file
//! (EfficientNet-Lite0 wants `(x - 127) / 128`, which no declared shape tells), so without
//! them the default `/255` would score it, slightly wrong. The digests are those of the models'
//! published files (`shared/models/scoring/SHA256SUMS`); labels stay the user's `--labels`.

use std::path::Path;

use crate::card::{CardError, ModelCard};

/// A model known by its bytes, with the card it is scored with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownModel {
    pub name: &'static str,
    pub sha256: &'static str,
    /// The card, TOML (the keys of [`crate::ScoreSettings`]).
    pub card: &'static str,
}

/// The known models.
pub const KNOWN_MODELS: &[KnownModel] = &[
    KnownModel {
        name: "efficientnet-lite0",
        sha256: "1265fe097cd989d531139c2fd326130d05ada38c359bfeb40ea6fc1fb33d3b1e",
        card: "task = \"classify\"\nresize = \"crop\"\ncrop_fraction = 0.875\n\
               mean = [127.0, 127.0, 127.0]\nstd = [128.0, 128.0, 128.0]\n",
    },
    KnownModel {
        name: "yolov3-tiny-416",
        sha256: "2cb08c87eb9a6d273dad22d5e01efb641a7390865fd21731f9d5910bb2b39ac6",
        card: "task = \"detect\"\ndetect_format = \"yolo\"\nresize = \"letterbox\"\nfill = 127\n\
               mean = [0.0, 0.0, 0.0]\nstd = [255.0, 255.0, 255.0]\n\
               min_score = 0.3\nnms_iou = 0.45\n",
    },
    KnownModel {
        name: "blazeface-front-128",
        sha256: "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51",
        card: "task = \"detect\"\ndetect_format = \"anchors\"\nresize = \"stretch\"\n\
               mean = [127.5, 127.5, 127.5]\nstd = [127.5, 127.5, 127.5]\n\
               min_score = 0.5\nnms_iou = 0.3\n\
               [[anchors]]\nsize = 16\nper_cell = 2\n[[anchors]]\nsize = 8\nper_cell = 6\n",
    },
];

/// The known model with these bytes' sha256 (hex), if any.
pub fn known_model(sha256: &str) -> Option<&'static KnownModel> {
    KNOWN_MODELS.iter().find(|m| m.sha256 == sha256)
}

impl KnownModel {
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
}
