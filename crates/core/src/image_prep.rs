//! How an image model's frames become its input, and its output becomes frames again, where
//! the model's file does not say it: per-channel normalisation, the tensor layout and the
//! output's value range. A model card gives them (`fresco_score::image_card`); a job pins them
//! with its model ([`crate::ModelPin::image_card`]), so every worker prepares frames the same
//! way; the engine applies them (`fresco_infer::Engine`). Records models normalise with the
//! same [`Normalization`] (`fresco_score::PrepSpec`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::settings::{ChannelOrder, InputRange};

/// Per-channel normalisation on 0..255 pixel values: `x = (pixel - mean[c]) / std[c]`, with
/// `c` the model's channel (R, G, B; B, G, R for a BGR model). `/255` is mean 0, std 255;
/// `(x-127)/128` is mean 127, std 128; ImageNet's is mean `[123.675, 116.28, 103.53]`, std
/// `[58.395, 57.12, 57.375]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// What an input range means: 0-255 is the pixel itself, 0-1 the pixel / 255.
    pub fn of_range(range: InputRange) -> Normalization {
        Normalization {
            mean: [0.0; 3],
            std: [255.0 / range.max_value(); 3],
        }
    }

    /// A mean that is not a number, or a std that is zero or not a number, named by its key.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.std.iter().any(|s| !s.is_finite() || *s == 0.0) {
            return Err((
                "std",
                format!("{:?}: each must be a non-zero number", self.std),
            ));
        }
        if self.mean.iter().any(|m| !m.is_finite()) {
            return Err(("mean", format!("{:?}: each must be a number", self.mean)));
        }
        Ok(())
    }

    /// Per model channel, `value = sample * gain + bias` for samples whose full white is
    /// `sample_max` (255 for 8-bit samples, 65535 for 16-bit, 1 for 0..1 floats).
    pub fn gain_bias(&self, sample_max: f32) -> ([f32; 3], [f32; 3]) {
        // `(255 / max) / std`, not `255 / (max * std)`: for 8-bit samples it is `1 / std`
        // exactly, as records scoring always computed it.
        let to_byte = 255.0 / sample_max;
        (
            std::array::from_fn(|c| to_byte / self.std[c]),
            std::array::from_fn(|c| -self.mean[c] / self.std[c]),
        )
    }
}

/// Tensor layout of an image input: where the colour axis is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[N, 3, H, W]`
    Nchw,
    /// `[N, H, W, 3]`
    Nhwc,
}

impl FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "nchw" => Ok(Layout::Nchw),
            "nhwc" => Ok(Layout::Nhwc),
            other => Err(format!("unknown layout '{other}': expected nchw or nhwc")),
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Nchw => "nchw",
            Layout::Nhwc => "nhwc",
        })
    }
}

/// An image model's card, resolved: what a job pins with its model. Each `None` leaves the
/// model's own word (its metadata, its shape) or the default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageCard {
    /// The card's file (for messages) and the sha256 of its bytes (part of the job's identity).
    pub path: PathBuf,
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<Normalization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
    /// The range of the output's values (the model's `fresco.output_range`, overridden).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_range: Option<InputRange>,
    /// The model's channel order (a `--channel-order` flag wins over it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_order: Option<ChannelOrder>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_normalisations() {
        let byte = Normalization::of_range(InputRange::Byte);
        assert_eq!(byte.gain_bias(255.0), ([1.0; 3], [-0.0; 3]));
        assert_eq!(byte.gain_bias(65535.0).0, [255.0 / 65535.0; 3]);
        let unit = Normalization::of_range(InputRange::Unit);
        assert_eq!(unit.gain_bias(255.0).0, [1.0 / 255.0; 3]);
        // Samples already in 0..1 (a resize's output) scale by 255 / std.
        assert_eq!(unit.gain_bias(1.0).0, [1.0; 3]);
    }

    #[test]
    fn normalisations_apply_per_channel() {
        let n = Normalization {
            mean: [10.0, 20.0, 30.0],
            std: [0.5, 4.0, 2.0],
        };
        let (gain, bias) = n.gain_bias(255.0);
        for (c, pixel) in [40.0f32, 60.0, 31.0].into_iter().enumerate() {
            assert_eq!(pixel * gain[c] + bias[c], (pixel - n.mean[c]) / n.std[c]);
        }
    }

    #[test]
    fn bad_values_are_named() {
        let mut n = Normalization {
            mean: [0.0; 3],
            std: [1.0, 0.0, 1.0],
        };
        assert_eq!(n.check().unwrap_err().0, "std");
        n.std = [1.0; 3];
        n.mean[2] = f32::NAN;
        assert_eq!(n.check().unwrap_err().0, "mean");
        n.mean[2] = 0.0;
        n.std[0] = f32::INFINITY;
        assert_eq!(n.check().unwrap_err().0, "std");
    }
}
