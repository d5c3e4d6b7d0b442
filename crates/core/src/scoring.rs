//! A job's scoring section: what a records job (`.jsonl`/`.parquet` output) scores with. The
//! settings are the scoring flags, with the same keys as a model card (`fresco_score::card`);
//! the card and the labels file are pinned by content and digest, so a worker scores exactly
//! what was submitted, whatever happens to the files afterwards.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Every key of a card; the CLI's scoring flags fill the same struct. `None`: not given.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreSettings {
    /// `classify`, `detect`, `tensors` or `segment`.
    pub task: Option<String>,
    /// `WxH`.
    pub input_size: Option<String>,
    /// `stretch`, `letterbox` or `crop`.
    pub resize: Option<String>,
    /// `crop` only: the input size as a fraction of the scaled short side (default 0.875).
    pub crop_fraction: Option<f32>,
    /// The letterbox's grey, 0..255 (default 127).
    pub fill: Option<u8>,
    /// Per channel (R, G, B), subtracted from 0..255 pixel values.
    pub mean: Option<[f32; 3]>,
    /// Per channel (R, G, B), dividing after the mean.
    pub std: Option<[f32; 3]>,
    /// `nchw` or `nhwc`.
    pub layout: Option<String>,
    /// `rgb` or `bgr`.
    pub channel_order: Option<String>,
    /// A labels file: one label per line (read by `fresco_score::card::Labels`).
    pub labels: Option<PathBuf>,
    /// The outputs to read, by name (the decoder's default otherwise).
    pub outputs: Option<Vec<String>>,
    /// `detect` only: `yolo`, `yolov8`, `ssd` or `anchors`.
    pub detect_format: Option<String>,
    /// `detect` only: boxes scoring less are dropped (default 0.25).
    pub min_score: Option<f32>,
    /// `detect` only: per-class non-maximum suppression threshold (default 0.45).
    pub nms_iou: Option<f32>,
    /// `classify`: classes kept per frame (default 5); `detect`: boxes kept (default all).
    pub top_k: Option<usize>,
    /// `detect_format = "anchors"` (BlazeFace-like models): the anchor grids in output order.
    pub anchors: Option<Vec<AnchorGrid>>,
    /// `segment` with a one-channel output only: a pixel whose value is above this is 255 in
    /// the mask, else 0 (default 0.5, for probabilities; 0 for a model giving logits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_threshold: Option<f32>,
}

/// One grid of anchors, for single-shot detectors that output offsets from anchor centres
/// (BlazeFace): `size x size` cells, `per_cell` anchors each, centres at `(x+0.5)/size`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorGrid {
    pub size: u32,
    pub per_cell: u32,
}

/// A small text file pinned into a job: where it was, its sha256 (hex) and its content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinnedText {
    pub path: PathBuf,
    pub digest: String,
    pub text: String,
}

/// Which frames are scored: every `every`-th frame of the decode order, or `fps` frames a
/// second; neither: every frame. For `fps`, slot `k` is at `k/fps` seconds after the first
/// frame, and each slot takes the first frame whose time is at or after it; a frame is taken
/// once, so a gap that spans several slots gives one frame (the one after it). This holds for
/// variable-rate inputs as well: the picks follow the timestamps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
}

impl Sampling {
    /// Whether both are given, or either is not positive.
    pub fn check(&self) -> Result<(), String> {
        match (self.every, self.fps) {
            (Some(_), Some(_)) => Err("--every and --fps: give one of them, not both".into()),
            (Some(0), _) => Err("--every: must be at least 1".into()),
            (_, Some(f)) if !(f.is_finite() && f > 0.0) => {
                Err(format!("--fps: must be a positive number, not {f}"))
            }
            _ => Ok(()),
        }
    }

    /// The decode-order indices of the sampled frames among frames with times `times`
    /// (seconds, in decode order).
    pub fn pick(&self, times: &[f64]) -> Vec<u64> {
        match (self.every, self.fps) {
            (Some(n), _) => (0..times.len() as u64).step_by(n.max(1) as usize).collect(),
            (None, Some(fps)) => {
                let start = times.first().copied().unwrap_or(0.0);
                let mut next = 0u64;
                let mut picked = Vec::new();
                for (i, t) in times.iter().enumerate() {
                    // A small tolerance: 1/fps in timestamps rounded to the time base.
                    if (t - start) * fps + 1e-6 >= next as f64 {
                        picked.push(i as u64);
                        next = ((t - start) * fps + 1e-6).floor() as u64 + 1;
                    }
                }
                picked
            }
            (None, None) => (0..times.len() as u64).collect(),
        }
    }
}

/// The scoring section of a job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoringSpec {
    /// The flags as given (`labels` is the pinned file's path, read from `labels` below).
    pub settings: ScoreSettings,
    pub card: Option<PinnedText>,
    /// The labels file the plan resolved (from the flags or the card).
    pub labels: Option<PinnedText>,
    pub sampling: Sampling,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_picks_every_nth_or_per_second() {
        let times: Vec<f64> = (0..60).map(|i| i as f64 / 25.0).collect();
        let every = Sampling {
            every: Some(5),
            fps: None,
        };
        assert_eq!(every.pick(&times).len(), 12);
        assert_eq!(every.pick(&times)[..3], [0, 5, 10]);
        let fps = Sampling {
            every: None,
            fps: Some(1.0),
        };
        assert_eq!(fps.pick(&times), vec![0, 25, 50]);
        assert_eq!(Sampling::default().pick(&times).len(), 60);
        assert!(Sampling {
            every: Some(2),
            fps: Some(1.0)
        }
        .check()
        .is_err());
        assert!(Sampling {
            every: Some(0),
            fps: None
        }
        .check()
        .is_err());
        assert!(Sampling {
            every: None,
            fps: Some(0.0)
        }
        .check()
        .is_err());
    }
}
