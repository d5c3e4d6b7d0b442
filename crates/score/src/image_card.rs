//! Model cards for image models: models whose output is an image (style, segmentation masks,
//! depth), written to a video or an image. Such a card gives only what applies to them: how
//! frames become the model's input (`mean` and `std` per channel, `channel_order`, `layout`)
//! and what its output's values mean (`output_range`, as the model's `fresco.output_range`).
//! The keys of records cards ([`crate::card`]: `task`, `labels`, `min_score`, ...) are refused
//! by name, as are unknown keys. The result is a [`fresco_core::ImageCard`], which a job pins
//! with its model and the engine applies.
//!
//! ```toml
//! mean = [123.675, 116.28, 103.53]   # on 0..255 pixel values, per model channel
//! std = [58.395, 57.12, 57.375]
//! channel_order = "rgb"
//! output_range = "0-1"                # the mask's 0..1 is black to white
//! ```

use std::path::Path;

use fresco_core::{ChannelOrder, ImageCard, InputRange, Layout, Normalization};
use sha2::{Digest, Sha256};

use crate::card::{card_table, one_line, read_card, CardError, KEYS};

/// The keys an image model's card may give.
pub const IMAGE_KEYS: &[&str] = &["mean", "std", "layout", "channel_order", "output_range"];

/// The card's keys as written (types checked by serde, values checked after).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    mean: Option<Vec<f32>>,
    std: Option<Vec<f32>>,
    layout: Option<String>,
    channel_order: Option<String>,
    output_range: Option<String>,
}

/// Reads and checks the card at `path` for an image model.
pub fn load_image_card(path: &Path) -> Result<ImageCard, CardError> {
    parse_image_card(&read_card(path)?, path)
}

/// Parses a card's bytes for an image model; `path` names it in errors.
pub fn parse_image_card(bytes: &[u8], path: &Path) -> Result<ImageCard, CardError> {
    let shown = path.display().to_string();
    let invalid = |reason: String| CardError::Invalid {
        path: shown.clone(),
        reason,
    };
    let (text, table) = card_table(bytes, &shown)?;
    for key in table.keys() {
        if IMAGE_KEYS.contains(&key.as_str()) {
            continue;
        }
        if KEYS.contains(&key.as_str()) {
            return Err(CardError::WrongKind {
                path: shown.clone(),
                key: key.clone(),
                reason: format!(
                    "it is a key for records (a .jsonl or .parquet output); a card for an image \
                     model (an image or video output) may give only {}",
                    IMAGE_KEYS.join(", ")
                ),
            });
        }
        return Err(CardError::UnknownKey {
            path: shown.clone(),
            key: key.clone(),
            known: IMAGE_KEYS.join(", "),
        });
    }
    let keys: Keys = toml::from_str(text).map_err(|e| invalid(one_line(text, &e)))?;
    let triple = |name: &str, values: Option<Vec<f32>>| -> Result<Option<[f32; 3]>, CardError> {
        values
            .map(|v| {
                <[f32; 3]>::try_from(v.as_slice()).map_err(|_| {
                    invalid(format!(
                        "{name}: {} values where 3 are needed, one per channel",
                        v.len()
                    ))
                })
            })
            .transpose()
    };
    let normalization = match (triple("mean", keys.mean)?, triple("std", keys.std)?) {
        (Some(mean), Some(std)) => {
            let n = Normalization { mean, std };
            n.check()
                .map_err(|(name, reason)| invalid(format!("{name}: {reason}")))?;
            Some(n)
        }
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => {
            return Err(invalid(
                "mean and std: give both (the model's input is (pixel - mean) / std)".into(),
            ))
        }
    };
    let layout = keys
        .layout
        .map(|v| {
            v.parse::<Layout>()
                .map_err(|e| invalid(format!("layout: {e}")))
        })
        .transpose()?;
    let channel_order = keys
        .channel_order
        .map(|v| {
            v.parse::<ChannelOrder>()
                .map_err(|e| invalid(format!("channel_order: {e}")))
        })
        .transpose()?;
    let output_range = keys
        .output_range
        .map(|v| {
            v.parse::<InputRange>().map_err(|_| {
                invalid(format!(
                    "output_range: unknown range '{v}': expected 0-255 or 0-1"
                ))
            })
        })
        .transpose()?;
    Ok(ImageCard {
        path: path.to_path_buf(),
        digest: hex::encode(Sha256::digest(bytes)),
        normalization,
        layout,
        output_range,
        channel_order,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ImageCard, CardError> {
        parse_image_card(text.as_bytes(), Path::new("/m/seg.toml"))
    }

    #[test]
    fn image_cards_give_normalisation_layout_order_and_output_range() {
        let card = parse(
            "mean = [123.675, 116.28, 103.53]\nstd = [58.395, 57.12, 57.375]\n\
             layout = \"nhwc\"\nchannel_order = \"bgr\"\noutput_range = \"0-1\"\n",
        )
        .unwrap();
        assert_eq!(
            card.normalization,
            Some(Normalization {
                mean: [123.675, 116.28, 103.53],
                std: [58.395, 57.12, 57.375]
            })
        );
        assert_eq!(card.layout, Some(Layout::Nhwc));
        assert_eq!(card.channel_order, Some(ChannelOrder::Bgr));
        assert_eq!(card.output_range, Some(InputRange::Unit));
        assert_eq!(card.digest.len(), 64);
        let empty = parse("").unwrap();
        assert_eq!(
            (empty.normalization, empty.layout, empty.output_range),
            (None, None, None)
        );
    }

    /// Every refusal names the card and the key.
    fn refused(text: &str, words: &[&str]) {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("/m/seg.toml"), "{err}");
        for word in words {
            assert!(err.contains(word), "'{word}' not in: {err}");
        }
    }

    #[test]
    fn records_keys_and_bad_values_are_refused_by_name() {
        for key in [
            "task = \"classify\"",
            "labels = \"l.txt\"",
            "min_score = 0.5",
            "top_k = 3",
        ] {
            let name = key.split(' ').next().unwrap();
            refused(key, &[&format!("'{name}'"), "records", "output_range"]);
        }
        refused(
            "[[anchors]]\nsize = 8\nper_cell = 2\n",
            &["'anchors'", "records"],
        );
        refused(
            "mean_ = [1.0, 2.0, 3.0]",
            &["unknown key 'mean_'", "output_range"],
        );
        let std = "std = [1.0, 1.0, 1.0]";
        refused(
            &format!("mean = [1.0, 2.0]\n{std}"),
            &["mean: 2 values where 3"],
        );
        refused(
            "mean = [0.0, 0.0, 0.0]\nstd = [1.0, 0.0, 1.0]",
            &["std", "non-zero"],
        );
        refused(
            "mean = [nan, 0.0, 0.0]\nstd = [1.0, 1.0, 1.0]",
            &["mean", "[NaN"],
        );
        refused("mean = [0.0, 0.0, 0.0]", &["mean and std"]);
        refused("mean = \"zero\"\nstd = [1.0, 1.0, 1.0]", &["mean"]);
        refused("output_range = \"0-100\"", &["output_range", "0-100"]);
        refused("layout = \"chw\"", &["layout", "chw"]);
        refused("channel_order = \"rbg\"", &["channel_order", "rbg"]);
    }
}
