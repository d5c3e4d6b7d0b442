//! From what the model declares, the flags and the card to a [`ScoringPlan`]: how frames are
//! prepared and how outputs are decoded, checked against the model before any frame is scored.
//!
//! Each setting comes from the model's declared input where it says enough (size, layout),
//! else from the flags, else from the card, else a default (normalisation `/255`, RGB, the
//! task's resize mode, ...). A flag or card that contradicts the model is an error naming
//! the field, as is a setting nothing gives and nothing defaults.

use fresco_core::{ChannelOrder, Normalization};
use fresco_infer::{Layout, TensorInfo};

use crate::card::{CardError, Labels, ModelCard, ScoreSettings};
use crate::detect::{anchor_centres, DetectFormat, DetectSpec, DEFAULT_MIN_SCORE, DEFAULT_NMS_IOU};
use crate::prep::{
    parse_size, PrepSpec, Resize, Task, DEFAULT_CROP_FRACTION, DEFAULT_FILL, DEFAULT_MEAN,
    DEFAULT_STD,
};

/// Classes kept per frame when `top_k` is not given.
pub const DEFAULT_TOP_K: usize = 5;

/// How the model's outputs become a row's scores.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decoder {
    /// The output at `output` holds `[N, classes]` (trailing 1s allowed).
    Classify {
        output: usize,
        top_k: usize,
        /// `None` when the model leaves it symbolic: checked on the first call.
        classes: Option<usize>,
    },
    Detect(DetectSpec),
    /// These outputs, as they are.
    Tensors {
        outputs: Vec<usize>,
    },
    /// One per-pixel map as a mask per picture ([`crate::mask`]).
    Segment(crate::mask::SegmentSpec),
}

/// Everything needed to score frames with one model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScoringPlan {
    pub task: Task,
    pub prep: PrepSpec,
    pub decoder: Decoder,
    #[serde(skip)]
    pub labels: Option<Labels>,
    /// The batch size the model fixes (`None`: any).
    pub fixed_batch: Option<usize>,
    /// The card's digest, to pin into the job.
    pub card_digest: Option<String>,
}

/// Why a model cannot be scored as asked. `field` is the card key (the flag is the same with
/// dashes: `input_size` is `--input-size`).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("{field}: the model's input '{input}' is {shape}, which says {model}, but {given} was given")]
    Conflict {
        field: &'static str,
        input: String,
        shape: String,
        model: String,
        given: String,
    },
    #[error("the model's outputs do not fit task {task:?}: {reason}")]
    Outputs { task: Task, reason: String },
    #[error("labels: {path} has {labels} labels but the model gives {classes} classes")]
    LabelCount {
        path: String,
        labels: usize,
        classes: usize,
    },
    #[error(transparent)]
    Card(#[from] CardError),
}

fn field(field: &'static str, reason: impl Into<String>) -> PlanError {
    PlanError::Field {
        field,
        reason: reason.into(),
    }
}

pub(crate) fn show_shape(shape: &[i64]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|d| if *d < 0 { "?".into() } else { d.to_string() })
        .collect();
    format!("[{}]", dims.join(","))
}

/// A setting from the flags, else the card, parsed.
fn pick<T>(
    name: &'static str,
    flag: Option<&String>,
    card: Option<&String>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, PlanError> {
    flag.or(card)
        .map(|v| parse(v).map_err(|e| field(name, e)))
        .transpose()
}

fn parse_layout(s: &str) -> Result<Layout, String> {
    s.parse()
}

/// Resolves a plan for a model with this input and these outputs.
pub fn resolve(
    input: &TensorInfo,
    outputs: &[TensorInfo],
    flags: &ScoreSettings,
    card: Option<&ModelCard>,
) -> Result<ScoringPlan, PlanError> {
    let empty = ScoreSettings::default();
    let c = card.map_or(&empty, |c| &c.settings);
    let task =
        pick("task", flags.task.as_ref(), c.task.as_ref(), str::parse)?.ok_or_else(|| {
            field(
                "task",
                "not given: classify, detect, tensors or segment (--task or the card's task)",
            )
        })?;
    let prep = resolve_prep(task, input, flags, c)?;
    let labels = match flags.labels.as_ref().or(c.labels.as_ref()) {
        Some(path) => Some(Labels::load(path)?),
        None => None,
    };
    let selected = select_outputs(outputs, flags.outputs.as_ref().or(c.outputs.as_ref()))?;
    let decoder = match task {
        Task::Classify => classify_decoder(outputs, &selected, flags.top_k.or(c.top_k))?,
        Task::Detect => Decoder::Detect(detect_spec(outputs, &selected, flags, c, &prep)?),
        Task::Tensors => Decoder::Tensors {
            outputs: selected.unwrap_or_else(|| (0..outputs.len()).collect()),
        },
        Task::Segment => Decoder::Segment(crate::mask::segment_spec(
            outputs,
            &selected,
            flags.mask_threshold.or(c.mask_threshold),
        )?),
    };
    if let (Some(_), Decoder::Segment(spec)) = (&labels, &decoder) {
        if spec.channels == Some(1) {
            return Err(field(
                "labels",
                "a one-channel output is a binary mask (0 and 255), with no classes to name",
            ));
        }
    }
    let plan = ScoringPlan {
        task,
        prep,
        decoder,
        labels,
        fixed_batch: input
            .shape
            .first()
            .copied()
            .filter(|n| *n > 0)
            .map(|n| n as usize),
        card_digest: card.map(|c| c.digest.clone()),
    };
    if let (Some(labels), Some(classes)) = (&plan.labels, plan.classes(outputs)) {
        check_labels(labels, classes, flags.labels.as_ref().or(c.labels.as_ref()))?;
    }
    Ok(plan)
}

pub(crate) fn check_labels(
    labels: &Labels,
    classes: usize,
    path: Option<&std::path::PathBuf>,
) -> Result<(), PlanError> {
    if labels.len() != classes {
        return Err(PlanError::LabelCount {
            path: path.map_or_else(|| "the labels file".into(), |p| p.display().to_string()),
            labels: labels.len(),
            classes,
        });
    }
    Ok(())
}

impl ScoringPlan {
    /// The number of classes the outputs give, where the declared shapes fix it.
    pub fn classes(&self, outputs: &[TensorInfo]) -> Option<usize> {
        let known = |d: i64| (d > 0).then_some(d as usize);
        match &self.decoder {
            Decoder::Classify { classes, .. } => *classes,
            Decoder::Detect(spec) => {
                let shape = &outputs[spec.outputs[0]].shape;
                match spec.format {
                    DetectFormat::Yolo => known(*shape.last()?).map(|c| c - 5),
                    DetectFormat::Yolov8 => {
                        known(*shape.get(shape.len().checked_sub(2)?)?).map(|c| c - 4)
                    }
                    DetectFormat::Anchors => Some(1),
                    // Class numbers are values, not an axis.
                    DetectFormat::Ssd => None,
                }
            }
            Decoder::Tensors { .. } => None,
            Decoder::Segment(spec) => spec.channels.filter(|c| *c >= 2),
        }
    }
}

fn resolve_prep(
    task: Task,
    input: &TensorInfo,
    flags: &ScoreSettings,
    c: &ScoreSettings,
) -> Result<PrepSpec, PlanError> {
    let shape = &input.shape;
    let shown = show_shape(shape);
    if shape.len() != 4 {
        return Err(field(
            "input_size",
            format!(
                "the model's input '{}' is {shown}; scoring feeds an image as [N,3,H,W] or [N,H,W,3]",
                input.name
            ),
        ));
    }
    let layout = prep_layout(input, &shown, flags, c)?;
    let (channels, h, w) = match layout {
        Layout::Nchw => (shape[1], shape[2], shape[3]),
        Layout::Nhwc => (shape[3], shape[1], shape[2]),
    };
    if channels > 0 && channels != 3 {
        return Err(field(
            "layout",
            format!(
                "the model's input '{}' is {shown}: {channels} channels where scoring feeds 3 \
                 (single-channel models are not supported yet)",
                input.name
            ),
        ));
    }
    let (width, height) = prep_size(input, &shown, (w, h), flags, c)?;
    let resize = pick(
        "resize",
        flags.resize.as_ref(),
        c.resize.as_ref(),
        str::parse,
    )?
    .unwrap_or(Resize::default_for(task));
    let channel_order = pick(
        "channel_order",
        flags.channel_order.as_ref(),
        c.channel_order.as_ref(),
        |s| s.parse::<ChannelOrder>(),
    )?
    .unwrap_or_default();
    let std = flags.std.or(c.std).unwrap_or(DEFAULT_STD);
    let mean = flags.mean.or(c.mean).unwrap_or(DEFAULT_MEAN);
    Normalization { mean, std }
        .check()
        .map_err(|(name, reason)| field(name, reason))?;
    let crop_fraction = flags
        .crop_fraction
        .or(c.crop_fraction)
        .unwrap_or(DEFAULT_CROP_FRACTION);
    if !(crop_fraction > 0.0 && crop_fraction <= 1.0) {
        return Err(field(
            "crop_fraction",
            format!("{crop_fraction}: must be in (0, 1]"),
        ));
    }
    Ok(PrepSpec {
        width,
        height,
        resize,
        mean,
        std,
        layout,
        channel_order,
        fill: flags.fill.or(c.fill).unwrap_or(DEFAULT_FILL),
        crop_fraction,
    })
}

/// Where the colour channels of a 4-dimensional `input` (`shown`) are: where its 3 is, or
/// the flags' or card's layout, which must agree.
fn prep_layout(
    input: &TensorInfo,
    shown: &str,
    flags: &ScoreSettings,
    c: &ScoreSettings,
) -> Result<Layout, PlanError> {
    let shape = &input.shape;
    let model_layout = match (shape[1] == 3, shape[3] == 3) {
        (true, false) => Some(Layout::Nchw),
        (false, true) => Some(Layout::Nhwc),
        _ => None,
    };
    let given = pick(
        "layout",
        flags.layout.as_ref(),
        c.layout.as_ref(),
        parse_layout,
    )?;
    match (model_layout, given) {
        (Some(m), Some(g)) if m != g => Err(PlanError::Conflict {
            field: "layout",
            input: input.name.clone(),
            shape: shown.to_string(),
            model: format!("{m:?}").to_lowercase(),
            given: format!("{g:?}").to_lowercase(),
        }),
        (Some(m), _) => Ok(m),
        (None, Some(g)) => Ok(g),
        (None, None) => Err(field(
            "layout",
            format!(
                "the model's input '{}' is {shown}, which does not say where the 3 colour \
                 channels are: give --layout nchw or nhwc (or the card's layout)",
                input.name
            ),
        )),
    }
}

/// The frame size the model takes: its input's fixed width and height (`w`, `h`; not fixed
/// when not positive), or the flags' or card's input size, which must agree with a fixed axis.
fn prep_size(
    input: &TensorInfo,
    shown: &str,
    (w, h): (i64, i64),
    flags: &ScoreSettings,
    c: &ScoreSettings,
) -> Result<(u32, u32), PlanError> {
    let model_size = (w > 0 && h > 0).then_some((w as u32, h as u32));
    let given = pick(
        "input_size",
        flags.input_size.as_ref(),
        c.input_size.as_ref(),
        parse_size,
    )?;
    match (model_size, given) {
        (Some(m), Some(g)) if m != g => Err(PlanError::Conflict {
            field: "input_size",
            input: input.name.clone(),
            shape: shown.to_string(),
            model: format!("{}x{}", m.0, m.1),
            given: format!("{}x{}", g.0, g.1),
        }),
        (Some(m), _) => Ok(m),
        (None, Some(g)) => {
            // One fixed axis must agree too.
            for (axis, model, given) in [("width", w, g.0), ("height", h, g.1)] {
                if model > 0 && model as u32 != given {
                    return Err(field(
                        "input_size",
                        format!(
                            "the model's input '{}' is {shown}: its {axis} is {model}, not {given}",
                            input.name
                        ),
                    ));
                }
            }
            Ok(g)
        }
        (None, None) => Err(field(
            "input_size",
            format!(
                "the model's input '{}' is {shown}, with no fixed size: give --input-size WxH \
                 (or the card's input_size)",
                input.name
            ),
        )),
    }
}

/// The named outputs' indices, in the order named.
fn select_outputs(
    outputs: &[TensorInfo],
    names: Option<&Vec<String>>,
) -> Result<Option<Vec<usize>>, PlanError> {
    let Some(names) = names else { return Ok(None) };
    names
        .iter()
        .map(|n| {
            outputs.iter().position(|o| &o.name == n).ok_or_else(|| {
                let all: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
                field(
                    "outputs",
                    format!(
                        "the model has no output '{n}' (its outputs: {})",
                        all.join(", ")
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The one output a task reads: the one `outputs` names, or the model's only one (for
/// `task`, whose output holds `what`, in the messages).
pub(crate) fn the_one_output(
    outputs: &[TensorInfo],
    selected: &Option<Vec<usize>>,
    task: &str,
    what: &str,
) -> Result<usize, PlanError> {
    match selected.as_deref() {
        Some([one]) => Ok(*one),
        Some(many) => Err(field(
            "outputs",
            format!("{task} reads one output, {} were named", many.len()),
        )),
        None if outputs.len() == 1 => Ok(0),
        None => {
            let all: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
            Err(field(
                "outputs",
                format!(
                    "the model has {} outputs ({}): name the one with {what}",
                    outputs.len(),
                    all.join(", ")
                ),
            ))
        }
    }
}

fn classify_decoder(
    outputs: &[TensorInfo],
    selected: &Option<Vec<usize>>,
    top_k: Option<usize>,
) -> Result<Decoder, PlanError> {
    let bad = |reason: String| PlanError::Outputs {
        task: Task::Classify,
        reason,
    };
    let output = the_one_output(outputs, selected, "classify", "the class scores")?;
    let o = &outputs[output];
    let rest = o.shape.get(1..).unwrap_or(&[]);
    let wide: Vec<i64> = rest.iter().copied().filter(|d| *d != 1).collect();
    if o.shape.len() < 2 || o.shape.len() > 4 || wide.len() > 1 {
        return Err(bad(format!(
            "classify needs an output [N, classes] (trailing 1s allowed); '{}' is {}",
            o.name,
            show_shape(&o.shape)
        )));
    }
    let classes = match wide.first() {
        Some(d) if *d > 0 => Some(*d as usize),
        Some(_) => None,
        None => Some(1),
    };
    Ok(Decoder::Classify {
        output,
        top_k: top_k.unwrap_or(DEFAULT_TOP_K).max(1),
        classes,
    })
}

/// The default format where the outputs say it: one `[N, rows, cols]` output is yolo when rows
/// outnumber columns, yolov8 when columns outnumber rows; an output `[N, K, 4]` beside others is ssd.
fn guess_format(outputs: &[TensorInfo]) -> Option<DetectFormat> {
    match outputs {
        [one] => match one.shape.as_slice() {
            [_, r, c] if *r > 0 && *c > 0 => Some(if r > c {
                DetectFormat::Yolo
            } else {
                DetectFormat::Yolov8
            }),
            _ => None,
        },
        many if many.len() >= 3 && many.iter().any(|o| o.shape.len() == 3 && o.shape[2] == 4) => {
            Some(DetectFormat::Ssd)
        }
        _ => None,
    }
}

fn detect_spec(
    outputs: &[TensorInfo],
    selected: &Option<Vec<usize>>,
    flags: &ScoreSettings,
    c: &ScoreSettings,
    prep: &PrepSpec,
) -> Result<DetectSpec, PlanError> {
    let format = match pick("detect_format", flags.detect_format.as_ref(), c.detect_format.as_ref(), str::parse)? {
        Some(f) => f,
        None => guess_format(outputs).ok_or_else(|| {
            field("detect_format", "the outputs do not say their layout: give --detect-format yolo, yolov8, ssd or anchors")
        })?,
    };
    let min_score = flags.min_score.or(c.min_score).unwrap_or(DEFAULT_MIN_SCORE);
    if !(0.0..=1.0).contains(&min_score) {
        return Err(field(
            "min_score",
            format!("{min_score}: must be in [0, 1]"),
        ));
    }
    let nms_iou = flags.nms_iou.or(c.nms_iou).unwrap_or(DEFAULT_NMS_IOU);
    if !(0.0..=1.0).contains(&nms_iou) {
        return Err(field("nms_iou", format!("{nms_iou}: must be in [0, 1]")));
    }
    let all: Vec<usize> = (0..outputs.len()).collect();
    let chosen = selected.clone().unwrap_or(all);
    let mut anchor_centres_ = Vec::new();
    let used = match format {
        DetectFormat::Yolo | DetectFormat::Yolov8 => vec![yolo_output(format, outputs, &chosen)?],
        DetectFormat::Ssd => ssd_outputs(outputs, &chosen, selected.is_some())?,
        DetectFormat::Anchors => {
            let grids = flags
                .anchors
                .as_ref()
                .or(c.anchors.as_ref())
                .ok_or_else(|| {
                    field(
                        "anchors",
                        "detect_format anchors needs the card's [[anchors]] grids (size, per_cell)",
                    )
                })?;
            // Counted before any is built: a card's grids are a stranger's numbers.
            let count = grids
                .iter()
                .try_fold(0u64, |sum, g| {
                    u64::from(g.size)
                        .checked_mul(u64::from(g.size))?
                        .checked_mul(u64::from(g.per_cell))?
                        .checked_add(sum)
                })
                .filter(|&n| n <= MAX_ANCHORS)
                .ok_or_else(|| {
                    field(
                        "anchors",
                        format!("the grids make more than {MAX_ANCHORS} anchors"),
                    )
                })?;
            let used = anchor_outputs(outputs, &chosen, count as usize)?;
            anchor_centres_ = anchor_centres(grids);
            used
        }
    };
    Ok(DetectSpec {
        format,
        outputs: used,
        min_score,
        nms_iou,
        top_k: flags.top_k.or(c.top_k),
        input_size: (prep.width, prep.height),
        anchor_centres: anchor_centres_,
    })
}

/// A detection model's outputs that do not fit its format.
fn bad_detect_outputs(reason: String) -> PlanError {
    PlanError::Outputs {
        task: Task::Detect,
        reason,
    }
}

/// "'name' is \[shape\]", for messages.
fn show_output(outputs: &[TensorInfo], i: usize) -> String {
    format!("'{}' is {}", outputs[i].name, show_shape(&outputs[i].shape))
}

/// The most anchors a card's grids may make (BlazeFace's are 896).
const MAX_ANCHORS: u64 = 1 << 20;

/// The one output a yolo (`[N, boxes, 5 + classes]`) or yolov8 (`[N, 4 + classes, anchors]`)
/// decoder reads.
fn yolo_output(
    format: DetectFormat,
    outputs: &[TensorInfo],
    chosen: &[usize],
) -> Result<usize, PlanError> {
    let [one] = chosen else {
        return Err(field(
            "outputs",
            format!(
                "{format:?} reads one output; name it (the model has {})",
                chosen.len()
            ),
        ));
    };
    let s = &outputs[*one].shape;
    let ok = match format {
        // Three dimensions, as the decoder reads them (frame, box, column): a 2-D `[1, 1000]`
        // is a classifier's scores, which would pass as one box row and find nothing.
        DetectFormat::Yolo => s.len() == 3 && (s[2] < 0 || s[2] >= 6),
        _ => s.len() == 3 && (s[1] < 0 || s[1] >= 5),
    };
    if !ok {
        return Err(bad_detect_outputs(match format {
            DetectFormat::Yolo => format!(
                "yolo needs [N, boxes, 5 + classes] with at least 6 columns; {}",
                show_output(outputs, *one)
            ),
            _ => format!(
                "yolov8 needs [N, 4 + classes, anchors] with at least 5 rows; {}",
                show_output(outputs, *one)
            ),
        }));
    }
    Ok(*one)
}

/// An ssd decoder's outputs: boxes, scores, classes and perhaps the count, in the order named
/// (`named`) or found by shape and name.
fn ssd_outputs(
    outputs: &[TensorInfo],
    chosen: &[usize],
    named: bool,
) -> Result<Vec<usize>, PlanError> {
    let find =
        |pred: &dyn Fn(&TensorInfo) -> bool| chosen.iter().copied().find(|i| pred(&outputs[*i]));
    let (boxes, scores, classes, num) = if named {
        (
            chosen.first().copied(),
            chosen.get(1).copied(),
            chosen.get(2).copied(),
            chosen.get(3).copied(),
        )
    } else {
        let two_d =
            |o: &TensorInfo, word: &str| o.shape.len() == 2 && o.name.to_lowercase().contains(word);
        (
            find(&|o| o.shape.len() == 3 && o.shape[2] == 4),
            find(&|o| two_d(o, "score")),
            find(&|o| two_d(o, "class")),
            find(&|o| o.shape.len() == 1 || o.name.to_lowercase().contains("num")),
        )
    };
    let (Some(boxes), Some(scores), Some(classes)) = (boxes, scores, classes) else {
        return Err(bad_detect_outputs(format!(
            "ssd needs boxes [N, K, 4], scores [N, K] and classes [N, K] (named *score* and *class*, \
             or given in that order with --outputs); the outputs: {}",
            chosen.iter().map(|i| show_output(outputs, *i)).collect::<Vec<_>>().join(", ")
        )));
    };
    let s = &outputs[boxes].shape;
    if s.len() != 3 || (s[2] > 0 && s[2] != 4) {
        return Err(bad_detect_outputs(format!(
            "ssd boxes must be [N, K, 4]; {}",
            show_output(outputs, boxes)
        )));
    }
    for i in [scores, classes] {
        if outputs[i].shape.len() != 2 {
            return Err(bad_detect_outputs(format!(
                "ssd scores and classes must be [N, K]; {}",
                show_output(outputs, i)
            )));
        }
    }
    let mut used = vec![boxes, scores, classes];
    used.extend(num);
    Ok(used)
}

/// An anchor decoder's outputs: score outputs `[N, A, 1]`, then as many box outputs
/// `[N, A, 4+]`, together holding one row per anchor (`anchors` of them).
fn anchor_outputs(
    outputs: &[TensorInfo],
    chosen: &[usize],
    anchors: usize,
) -> Result<Vec<usize>, PlanError> {
    let last = |i: usize| *outputs[i].shape.last().unwrap_or(&0);
    let scores: Vec<usize> = chosen.iter().copied().filter(|i| last(*i) == 1).collect();
    let boxes: Vec<usize> = chosen.iter().copied().filter(|i| last(*i) >= 4).collect();
    let rows = |list: &[usize]| -> Option<i64> {
        list.iter()
            .map(|i| outputs[*i].shape.get(1).copied().filter(|d| *d > 0))
            .sum()
    };
    if scores.is_empty()
        || scores.len() != boxes.len()
        || scores.len() + boxes.len() != chosen.len()
    {
        return Err(bad_detect_outputs(format!(
            "anchors needs score outputs [N, A, 1] and as many box outputs [N, A, 4+]; {}",
            chosen
                .iter()
                .map(|i| show_output(outputs, *i))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for list in [&scores, &boxes] {
        if let Some(n) = rows(list) {
            if n as usize != anchors {
                return Err(field(
                    "anchors",
                    format!("the grids make {anchors} anchors, the outputs hold {n}"),
                ));
            }
        }
    }
    Ok(scores.into_iter().chain(boxes).collect())
}
