//! A model and its plan, scoring frames into [`Record`]s: prepare a batch, one inference call,
//! decode each frame's outputs. This is what a worker holds per model (one per thread).

use std::path::{Path, PathBuf};

use fresco_core::scoring::ScoringSpec;
use fresco_infer::{EngineError, EngineOptions, NamedTensor, TensorEngine};

use crate::card::{ModelCard, ScoreSettings};
use crate::mask::Mask;
use crate::prep::Geometry;
use crate::record::{Class, Record, Scores, Tensor};
use crate::resolve::{check_labels, resolve, Decoder, PlanError, ScoringPlan};

/// Why frames could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The outputs of a call do not fit the plan (a symbolic size turned out wrong).
    #[error("{model}: the model's outputs do not fit: {reason}")]
    Outputs { model: String, reason: String },
    /// The declared outputs do not fit the task, with the model named.
    #[error("{model}: {source}")]
    OutputsPlan {
        model: String,
        source: Box<PlanError>,
    },
}

/// A plan error, with the model named where it is about its outputs.
fn plan_error(label: &str, e: PlanError) -> ScoreError {
    match e {
        PlanError::Outputs { .. } => ScoreError::OutputsPlan {
            model: label.to_string(),
            source: Box::new(e),
        },
        other => ScoreError::Plan(other),
    }
}

/// Why a job's pinned scoring section could not be loaded ([`Scorer::from_pinned`]).
#[derive(Debug, thiserror::Error)]
pub enum PinnedError {
    /// The pinned labels could not be written where the plan reads them (a full disk).
    #[error("{}: cannot write the job's labels: {source}", path.display())]
    LabelsFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Card(#[from] crate::card::CardError),
    #[error(transparent)]
    Score(#[from] ScoreError),
    #[error("the job's labels changed while loading")]
    LabelsChanged,
}

/// One frame to score: packed RGB24 as the decoder scaled it (to
/// [`Scorer::scaled_size`]), with where it comes from.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub rgb: &'a [u8],
    /// The scaled size of `rgb`.
    pub width: u32,
    pub height: u32,
    /// The displayed frame's size (after rotation), which boxes are given in.
    pub frame_width: u32,
    pub frame_height: u32,
    pub source: &'a str,
    pub index: u64,
    pub pts: i64,
    pub time: f64,
}

impl<'a> Frame<'a> {
    /// An image as a frame: `rgb` of the `scaled` size, `displayed` the upright picture's size;
    /// an image is a stream of one frame at time zero.
    pub fn still(
        rgb: &'a [u8],
        scaled: (u32, u32),
        displayed: (u32, u32),
        source: &'a str,
    ) -> Frame<'a> {
        Frame {
            rgb,
            width: scaled.0,
            height: scaled.1,
            frame_width: displayed.0,
            frame_height: displayed.1,
            source,
            index: 0,
            pts: 0,
            time: 0.0,
        }
    }
}

/// A loaded model with its plan.
pub struct Scorer {
    engine: TensorEngine,
    plan: ScoringPlan,
    label: String,
    input: Vec<f32>,
    /// Labels checked against the outputs of a real call (symbolic class counts).
    labels_checked: bool,
}

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer")
            .field("model", &self.label)
            .field("plan", &self.plan)
            .finish()
    }
}

impl Scorer {
    /// Loads the model and resolves its plan from the flags and the card (see
    /// [`crate::resolve()`]); every misfit is reported here, before any frame.
    pub fn new(
        model: &[u8],
        label: &str,
        folder: Option<&Path>,
        options: &EngineOptions,
        flags: &ScoreSettings,
        card: Option<&ModelCard>,
    ) -> Result<Scorer, ScoreError> {
        let engine = TensorEngine::from_bytes_in(model, label, options, folder)?;
        let plan = resolve(engine.input(), engine.outputs(), flags, card)
            .map_err(|e| plan_error(label, e))?;
        Ok(Scorer {
            engine,
            plan,
            label: label.to_string(),
            input: Vec::new(),
            labels_checked: false,
        })
    }

    /// [`Scorer::new`] for a job's pinned scoring section: the card parsed from its pinned
    /// text and the labels from theirs (written into `labels_dir`, where the plan reads them),
    /// so that the model is scored with exactly what was submitted, whatever the files hold now.
    pub fn from_pinned(
        model: &[u8],
        label: &str,
        folder: Option<&Path>,
        options: &EngineOptions,
        scoring: &ScoringSpec,
        labels_dir: &Path,
    ) -> Result<Scorer, PinnedError> {
        let mut settings = scoring.settings.clone();
        let mut card = match &scoring.card {
            Some(pinned) => Some(ModelCard::parse(pinned.text.as_bytes(), &pinned.path)?),
            None => None,
        };
        if let Some(labels) = &scoring.labels {
            let file = labels_dir.join(format!("{}.txt", labels.digest));
            std::fs::write(&file, &labels.text).map_err(|source| PinnedError::LabelsFile {
                path: file.clone(),
                source,
            })?;
            settings.labels = Some(file.clone());
            if let Some(card) = &mut card {
                card.settings.labels = Some(file);
            }
        }
        let scorer = Scorer::new(model, label, folder, options, &settings, card.as_ref())?;
        if let (Some(pinned), Some(found)) = (&scoring.labels, &scorer.plan.labels) {
            if pinned.digest != found.digest {
                return Err(PinnedError::LabelsChanged);
            }
        }
        Ok(scorer)
    }

    /// The plan [`Scorer::new`] would make, from the interface the model file declares, without
    /// ONNX Runtime (see [`fresco_infer::tensors::declared_io`]): what a server checks a
    /// submission with.
    pub fn plan_declared(
        model: &[u8],
        label: &str,
        flags: &ScoreSettings,
        card: Option<&ModelCard>,
    ) -> Result<ScoringPlan, ScoreError> {
        let (input, outputs) = fresco_infer::tensors::declared_io(model, label)?;
        resolve(&input, &outputs, flags, card).map_err(|e| plan_error(label, e))
    }

    pub fn plan(&self) -> &ScoringPlan {
        &self.plan
    }

    pub fn engine(&self) -> &TensorEngine {
        &self.engine
    }

    /// The size the decoder scales a frame of this (displayed) size to.
    pub fn scaled_size(&self, frame_width: u32, frame_height: u32) -> (u32, u32) {
        self.plan.prep.scaled_size(frame_width, frame_height)
    }

    /// Frames per inference call: what the model fixes, else `asked`.
    pub fn batch(&self, asked: usize) -> usize {
        self.plan.fixed_batch.unwrap_or(asked.max(1))
    }

    /// Scores frames, one record each, in order; calls of [`Scorer::batch`]`(frames.len())`.
    pub fn score(&mut self, frames: &[Frame]) -> Result<Vec<Record>, ScoreError> {
        let scores = self.each_frame(frames, |scorer, outputs, b, batch, geometry| {
            scorer.decode(outputs, b, batch, geometry)
        })?;
        Ok(frames
            .iter()
            .zip(scores)
            .map(|(frame, scores)| Record {
                source: frame.source.to_string(),
                frame: frame.index,
                pts: frame.pts,
                time: frame.time,
                scores,
            })
            .collect())
    }

    /// Segments frames (a `segment` plan): one mask each, in order, at each frame's displayed
    /// size ([`crate::mask`]); calls of [`Scorer::batch`]`(frames.len())`.
    pub fn segment(&mut self, frames: &[Frame]) -> Result<Vec<Mask>, ScoreError> {
        let Decoder::Segment(spec) = self.plan.decoder.clone() else {
            return Err(ScoreError::Outputs {
                model: self.label.clone(),
                reason: format!("masks are made by task segment, not {:?}", self.plan.task),
            });
        };
        self.each_frame(frames, |scorer, outputs, b, batch, geometry| {
            crate::mask::mask_of(
                &spec,
                &outputs[spec.output],
                b,
                batch,
                &scorer.plan.prep,
                geometry,
            )
        })
    }

    /// Runs the model on frames in calls of [`Scorer::batch`]`(frames.len())` and reads each
    /// frame's result out of its call's outputs with `read` (the outputs, the frame's place in
    /// the call, the call's batch, and the frame's geometry), in order.
    fn each_frame<T>(
        &mut self,
        frames: &[Frame],
        mut read: impl FnMut(&Self, &[NamedTensor], usize, usize, &Geometry) -> Result<T, String>,
    ) -> Result<Vec<T>, ScoreError> {
        let per_call = self.batch(frames.len());
        let mut results = Vec::with_capacity(frames.len());
        for call in frames.chunks(per_call) {
            // The batch the model ran: a fixed one is filled up (see `run`).
            let batch = if self.plan.fixed_batch.is_some() {
                per_call
            } else {
                call.len()
            };
            let outputs = self.run(call, batch)?;
            for (b, frame) in call.iter().enumerate() {
                let geometry = self
                    .plan
                    .prep
                    .geometry(frame.frame_width, frame.frame_height);
                let result = read(self, &outputs, b, batch, &geometry).map_err(|reason| {
                    ScoreError::Outputs {
                        model: self.label.clone(),
                        reason,
                    }
                })?;
                results.push(result);
            }
        }
        Ok(results)
    }

    /// One call of `batch` frames: a model with a fixed batch larger than the frames gets the
    /// last one repeated.
    fn run(&mut self, frames: &[Frame], batch: usize) -> Result<Vec<NamedTensor>, ScoreError> {
        let prep = &self.plan.prep;
        let len = prep.frame_len();
        self.input.resize(batch * len, 0.0);
        for b in 0..batch {
            let f = &frames[b.min(frames.len() - 1)];
            prep.prepare(
                f.rgb,
                f.width,
                f.height,
                &mut self.input[b * len..(b + 1) * len],
            );
        }
        let outputs = self.engine.run(&prep.shape(batch), &self.input)?;
        if !self.labels_checked {
            self.labels_checked = true;
            match (&self.plan.labels, &self.plan.decoder) {
                (Some(labels), Decoder::Classify { output, .. }) => {
                    let classes = outputs[*output].values.len() / batch;
                    check_labels(labels, classes, None)?;
                }
                (Some(labels), Decoder::Segment(spec)) => {
                    if let Some(classes) = outputs[spec.output].shape.get(1) {
                        check_labels(labels, *classes, None)?;
                    }
                }
                _ => {}
            }
        }
        Ok(outputs)
    }

    fn label_of(&self, class: usize) -> String {
        match &self.plan.labels {
            Some(l) => l
                .names
                .get(class)
                .cloned()
                .unwrap_or_else(|| class.to_string()),
            None => class.to_string(),
        }
    }

    fn decode(
        &self,
        outputs: &[NamedTensor],
        b: usize,
        batch: usize,
        geometry: &Geometry,
    ) -> Result<Scores, String> {
        match &self.plan.decoder {
            Decoder::Classify { output, top_k, .. } => {
                let t = &outputs[*output];
                let batch = t.shape.first().copied().unwrap_or(1).max(1);
                let per = t.values.len() / batch;
                let values = &t.values[b * per..(b + 1) * per];
                Ok(Scores::Classes(
                    top_classes(values, *top_k)
                        .into_iter()
                        .map(|(index, score)| Class {
                            index: index as u32,
                            label: self.label_of(index),
                            score,
                        })
                        .collect(),
                ))
            }
            Decoder::Detect(spec) => {
                crate::detect::detect(spec, outputs, b, geometry, |c| self.label_of(c))
                    .map(Scores::Detections)
            }
            Decoder::Segment(_) => {
                Err("task segment makes one mask image per picture, which is not a record".into())
            }
            Decoder::Tensors { outputs: chosen } => Ok(Scores::Tensors(
                chosen
                    .iter()
                    .map(|i| {
                        let t = &outputs[*i];
                        let mut shape: Vec<u64> = t.shape.iter().map(|d| *d as u64).collect();
                        // An output whose first axis is not the call's batch (a constant, a
                        // model-wide value) is the same for every frame: given whole.
                        if t.shape.first() != Some(&batch) {
                            return Tensor {
                                name: t.name.clone(),
                                shape,
                                values: t.values.clone(),
                            };
                        }
                        let per = t.values.len() / batch.max(1);
                        shape[0] = 1;
                        Tensor {
                            name: t.name.clone(),
                            shape,
                            values: t.values[b * per..(b + 1) * per].to_vec(),
                        }
                    })
                    .collect(),
            )),
        }
    }
}

/// Whether scores look like logits rather than probabilities: any value outside [0, 1], or a
/// sum away from 1 (more than 0.01).
pub fn looks_like_logits(values: &[f32]) -> bool {
    let sum: f64 = values.iter().map(|v| *v as f64).sum();
    values.iter().any(|v| !(0.0..=1.0).contains(v)) || (sum - 1.0).abs() > 0.01
}

/// Softmax, in f64 for the sum and stable against large logits.
pub fn softmax(values: &[f32]) -> Vec<f32> {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = values.iter().map(|v| ((*v - max) as f64).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

/// The `k` best classes as (index, probability), best first (ties: lower index first);
/// softmax applied when the values look like logits.
pub fn top_classes(values: &[f32], k: usize) -> Vec<(usize, f32)> {
    let probs = if looks_like_logits(values) {
        softmax(values)
    } else {
        values.to_vec()
    };
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]).then(a.cmp(b)));
    order.truncate(k);
    order.into_iter().map(|i| (i, probs[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_applied_to_logits_only() {
        let probs = [0.1, 0.7, 0.2];
        assert!(!looks_like_logits(&probs));
        assert_eq!(top_classes(&probs, 2), vec![(1, 0.7), (2, 0.2)]);
        let logits = [1.0f32, 3.0, 2.0];
        assert!(looks_like_logits(&logits));
        let top = top_classes(&logits, 5);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 2, 0]);
        let e = [1f64.exp(), 3f64.exp(), 2f64.exp()];
        let sum: f64 = e.iter().sum();
        assert!((top[0].1 as f64 - e[1] / sum).abs() < 1e-6);
        // Values in [0, 1] that do not sum to 1 are logits too (sigmoid-free heads).
        assert!(looks_like_logits(&[0.9, 0.9, 0.9]));
        // Huge logits stay finite.
        assert!(softmax(&[1000.0, 0.0]).iter().all(|p| p.is_finite()));
    }
}
