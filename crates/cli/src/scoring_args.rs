//! The scoring flags of `fresco run` and `fresco jobs submit`, for a records output (`.jsonl`
//! or `.parquet`): the same keys as a model card (`fresco_score::card`) plus the sampling.

use std::path::{Path, PathBuf};

use clap::Args;
use fresco_core::scoring::{Sampling, ScoreSettings};
use fresco_core::ChannelOrder;
use fresco_submit::ScoringAsk;

#[derive(Debug, Clone, Args)]
pub struct ScoringArgs {
    /// With a .jsonl/.parquet output: classify, detect or tensors (default: the model card's);
    /// segment: a mask (PNG) per image of a folder or prefix, into an output folder or prefix.
    #[arg(long, value_name = "TASK")]
    pub task: Option<String>,
    /// A labels file, one class name per line (ImageNet's `id<TAB>names` lines too).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// A model card (TOML with the same keys as these flags); default: NAME.toml beside the model.
    #[arg(long, value_name = "FILE")]
    pub model_card: Option<PathBuf>,
    /// classify: classes kept per frame (default 5); detect: boxes kept (default all).
    #[arg(long, value_name = "K")]
    pub top_k: Option<usize>,
    /// detect: boxes scoring less are dropped (default 0.25).
    #[arg(long, value_name = "SCORE")]
    pub min_score: Option<f32>,
    /// detect: non-maximum suppression IoU threshold (default 0.45).
    #[arg(long, value_name = "IOU")]
    pub nms_iou: Option<f32>,
    /// detect: yolo, yolov8, ssd or anchors.
    #[arg(long, value_name = "FORMAT")]
    pub detect_format: Option<String>,
    /// The model's input size, WxH (when the model does not fix it).
    #[arg(long, value_name = "WxH")]
    pub input_size: Option<String>,
    /// stretch, letterbox or crop (default per task).
    #[arg(long, value_name = "HOW")]
    pub resize: Option<String>,
    /// Per-channel mean R,G,B subtracted from 0..255 pixel values.
    #[arg(long, value_name = "R,G,B", value_parser = parse_triple)]
    pub mean: Option<Triple>,
    /// Per-channel divisor R,G,B applied after the mean.
    #[arg(long, value_name = "R,G,B", value_parser = parse_triple)]
    pub std: Option<Triple>,
    /// nchw or nhwc (default: from the input's shape).
    #[arg(long, value_name = "LAYOUT")]
    pub layout: Option<String>,
    /// The model outputs to read, by name (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub outputs: Vec<String>,
    /// Score every N-th frame (decode order).
    #[arg(long, value_name = "N")]
    pub every: Option<u64>,
    /// Score this many frames a second.
    #[arg(long, value_name = "R")]
    pub fps: Option<f64>,
    /// segment, a one-channel output: a pixel above this is 255 in the mask, else 0 (default
    /// 0.5, for probabilities; give 0 for a model that outputs logits).
    #[arg(long, value_name = "T", allow_negative_numbers = true, value_parser = parse_threshold)]
    pub mask_threshold: Option<f32>,
}

/// A finite number (a threshold on a model's values, probabilities or logits).
fn parse_threshold(text: &str) -> Result<f32, String> {
    text.trim()
        .parse::<f32>()
        .ok()
        .filter(|t| t.is_finite() && (-1_000_000.0..=1_000_000.0).contains(t))
        .ok_or_else(|| format!("'{text}' is not a number from -1000000 to 1000000"))
}

/// Three comma-separated numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Triple(pub [f32; 3]);

fn parse_triple(text: &str) -> Result<Triple, String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if parts.len() != 3 {
        return Err(format!("expected three numbers R,G,B, not '{text}'"));
    }
    let mut v = [0f32; 3];
    for (slot, part) in v.iter_mut().zip(&parts) {
        *slot = part
            .parse()
            .map_err(|_| format!("'{part}' is not a number"))?;
    }
    Ok(Triple(v))
}

impl ScoringArgs {
    /// The flags as a submission's [`ScoringAsk`], paths made absolute with `place`;
    /// `channel_order` is the model flag `--channel-order`.
    pub fn ask(
        &self,
        channel_order: Option<ChannelOrder>,
        place: impl Fn(&Path) -> PathBuf,
    ) -> ScoringAsk {
        ScoringAsk {
            settings: ScoreSettings {
                task: self.task.clone(),
                input_size: self.input_size.clone(),
                resize: self.resize.clone(),
                mean: self.mean.map(|t| t.0),
                std: self.std.map(|t| t.0),
                layout: self.layout.clone(),
                channel_order: channel_order.map(|c| c.to_string()),
                labels: self.labels.as_deref().map(&place),
                outputs: (!self.outputs.is_empty()).then(|| self.outputs.clone()),
                detect_format: self.detect_format.clone(),
                min_score: self.min_score,
                nms_iou: self.nms_iou,
                top_k: self.top_k,
                mask_threshold: self.mask_threshold,
                ..Default::default()
            },
            card: self.model_card.as_deref().map(&place),
            sampling: Sampling {
                every: self.every,
                fps: self.fps,
            },
        }
    }

    /// The API's `scoring` object for these flags (`None` when none was given).
    pub fn to_json(
        &self,
        channel_order: Option<ChannelOrder>,
        place: impl Fn(&Path) -> PathBuf,
    ) -> Option<serde_json::Value> {
        let ask = self.ask(channel_order, place);
        if !ask.is_given() {
            return None;
        }
        let s = &ask.settings;
        let mut body = serde_json::Map::new();
        let mut put = |key: &str, value: serde_json::Value| {
            if !value.is_null() {
                body.insert(key.into(), value);
            }
        };
        put("task", serde_json::json!(s.task));
        put("labels", serde_json::json!(s.labels));
        put("model_card", serde_json::json!(ask.card));
        put("top_k", serde_json::json!(s.top_k));
        put("min_score", serde_json::json!(s.min_score));
        put("nms_iou", serde_json::json!(s.nms_iou));
        put("detect_format", serde_json::json!(s.detect_format));
        put("input_size", serde_json::json!(s.input_size));
        put("resize", serde_json::json!(s.resize));
        put("mean", serde_json::json!(s.mean));
        put("std", serde_json::json!(s.std));
        put("layout", serde_json::json!(s.layout));
        put("channel_order", serde_json::json!(s.channel_order));
        put("outputs", serde_json::json!(s.outputs));
        put("mask_threshold", serde_json::json!(s.mask_threshold));
        put("every", serde_json::json!(ask.sampling.every));
        put("fps", serde_json::json!(ask.sampling.fps));
        Some(serde_json::Value::Object(body))
    }
}

/// `--model NAME`, where NAME is a known scoring model and no such file is here, means the
/// model of that name, as `--style NAME` does (`fresco_score::known`).
pub fn model_by_name(style: &mut Option<String>, model: &mut Option<PathBuf>) {
    if let Some(known) = model.as_deref().and_then(fresco_score::named_by) {
        *style = Some(known.name.into());
        *model = None;
    }
}

/// For `fresco run` with a records output: a known scoring model named with `--model NAME` or
/// `--style NAME` becomes its file, found in the model folder or cache and checked by digest,
/// and the labels it was trained with are used from beside it unless labels or a card are
/// given.
pub fn locate_named(
    style: &mut Option<String>,
    model: &mut Option<PathBuf>,
    scoring: &mut ScoringArgs,
) -> Result<(), crate::exit::Failure> {
    model_by_name(style, model);
    let Some(known) = style.as_deref().and_then(fresco_score::known_by_name) else {
        return Ok(());
    };
    let found = known
        .locate(&fresco_infer::registry::Registry::from_env())
        .map_err(|e| crate::exit::Failure::new(crate::exit::MODEL, e.to_string()))?;
    if scoring.labels.is_none() && scoring.model_card.is_none() {
        scoring.labels = found.labels;
    }
    *model = Some(found.model);
    *style = None;
    Ok(())
}
