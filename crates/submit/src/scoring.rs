//! Records jobs at submission: what a submitter asks to score with, the plan resolved against
//! the model before anything is queued, and which outputs take records.

use super::*;

/// What a submitter asks a records job to score with, before the plan is resolved.
#[derive(Debug, Clone, Default)]
pub struct ScoringAsk {
    /// The flags (`labels` an absolute path, or relative to the current folder).
    pub settings: ScoreSettings,
    /// `--model-card`; `None`: the card beside the model (`NAME.toml`), if any.
    pub card: Option<PathBuf>,
    pub sampling: Sampling,
}

impl ScoringAsk {
    /// Whether any scoring flag or a model card was given.
    pub fn is_given(&self) -> bool {
        self.records_only_given() || self.card.is_some()
    }

    /// Whether a flag that only records take was given (a video or image output refuses
    /// them): not the channel order or the model card, which image models take too.
    pub fn records_only_given(&self) -> bool {
        let settings = ScoreSettings {
            channel_order: None,
            ..self.settings.clone()
        };
        settings != ScoreSettings::default() || self.sampling != Sampling::default()
    }
}

/// An image model's card: the one given (`--model-card`, the API's `scoring.model_card`), else
/// the one beside a model file (`NAME.toml`), read and checked for an image model
/// (`fresco_score::image_card`): records keys, unknown keys and bad values are refused by name,
/// with the card's path (422 `model-card`, exit 7). `input`: the model's input name and
/// declared shape, which a card's layout may not contradict.
pub fn image_card(
    given: Option<&Path>,
    model: &ModelChoice,
    input: Option<(&str, &[i64])>,
) -> Result<Option<ImageCard>, Rejection> {
    let path = match (given, model) {
        (Some(path), _) => Some(absolute(path)),
        (None, ModelChoice::File(file)) => card_beside(file),
        (None, ModelChoice::Style(_)) => None,
    };
    image_card_at(path, input)
}

/// The image card at `path` (`None`: none), read and checked as [`image_card`] says.
pub(crate) fn image_card_at(
    path: Option<PathBuf>,
    input: Option<(&str, &[i64])>,
) -> Result<Option<ImageCard>, Rejection> {
    let Some(path) = path else { return Ok(None) };
    let card = fresco_score::load_image_card(&path).map_err(|e| unusable("model-card", e))?;
    if let (Some(layout), Some((name, shape))) = (card.layout, input) {
        fresco_infer::image_layout(Some(layout), None, name, shape).map_err(|reason| {
            unusable(
                "model-card",
                format!("model card {}: {reason}", path.display()),
            )
        })?;
    }
    Ok(Some(card))
}

impl Submitter {
    /// A records job's model file and scoring plan: the model's interface is read (from the
    /// file, or by loading it on the CPU where `load_scoring_models`) and its plan resolved from the flags, the card and the labels exactly as a worker will, so that
    /// every misfit (a card's unknown key, labels that do not match the classes, outputs that
    /// do not fit the task, a size the model cannot take) is refused before anything is
    /// queued. The card and labels are pinned by content.
    pub fn pin_scoring(
        &self,
        submission: &Submission,
    ) -> Result<(ModelPin, ScoringSpec), Rejection> {
        // A known scoring model named like a style (`--model efficientnet-lite0`, `--style`,
        // the API's `style`): its file from the model folder or cache, checked by digest, and
        // the labels it was trained with from beside it unless labels are given.
        let named = match &submission.model {
            ModelSource::File(path) => fresco_score::named_by(Path::new(path)),
            ModelSource::Style(name) => fresco_score::known_by_name(name),
            _ => None,
        };
        let mut named_labels = None;
        let path = match (&submission.model, named) {
            (_, Some(known)) => {
                let found = known
                    .locate(&self.registry)
                    .map_err(|e| unusable("model-missing", e))?;
                named_labels = found.labels;
                found.model
            }
            (ModelSource::File(path), None) => {
                if let Some(rules) = &self.paths {
                    rules.check("model", path)?;
                }
                let path = absolute_path("model", path)?;
                check_model_file(&path, self.model_budget.max_bytes)?;
                path
            }
            (
                ModelSource::Pinned(ModelPin {
                    choice: ModelChoice::File(path),
                    ..
                }),
                None,
            ) => absolute(path),
            _ => {
                return Err(Rejection::BadField {
                    code: "records-need-model",
                    message: format!(
                        "a .jsonl or .parquet output scores a model file (--model / \
                         \"model\") or a known scoring model ({}), not a style",
                        fresco_score::KNOWN_MODELS
                            .iter()
                            .map(|m| m.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            }
        };
        let device = submission.device;
        self.check_device(device.kind())?;
        check_precision(submission.precision, device)?;
        let mut ask = submission.scoring.clone().unwrap_or_default();
        if ask.settings.labels.is_none() && ask.card.is_none() {
            ask.settings.labels = named_labels;
        }
        // The card and labels are read whole, from where inputs may be read.
        if let Some(rules) = &self.paths {
            if let Some(labels) = &ask.settings.labels {
                rules.check("scoring.labels", &labels.display().to_string())?;
            }
            if let Some(card) = &ask.card {
                rules.check("scoring.model_card", &card.display().to_string())?;
            }
        }
        ask.sampling
            .check()
            .map_err(|message| Rejection::BadField {
                code: "sampling",
                message,
            })?;
        let bytes = std::fs::read(&path)
            .map_err(|e| unusable("model-missing", format!("model {}: {e}", path.display())))?;
        // The same static inspection as image models' (no external data, bounded size, nodes
        // and folded constants) before ONNX Runtime sees the bytes; only the image-to-image
        // interface is not asked for.
        match fresco_infer::inspect::inspect_model(
            &bytes,
            &path.display().to_string(),
            fresco_infer::inspect::Origin::Submitted,
            &self.model_budget,
        ) {
            Ok(_) | Err(fresco_infer::inspect::InspectError::NotImageModel { .. }) => {}
            Err(refusal) => return Err(unusable(refusal.code(), refusal)),
        }
        let card_path = ask.card.clone().or_else(|| self.card_beside(&path));
        let digest = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        let mut card = card_path
            .as_deref()
            .map(ModelCard::load)
            .transpose()
            .map_err(|e| unusable("model-card", e))?;
        // A model fresco knows by its bytes, with no card of its own, is scored with the card
        // it was trained for (its preparation is not in the file).
        let known = match card {
            None => fresco_score::known_model(&digest),
            Some(_) => None,
        };
        // The labels a submitter's card names are a file read for it: inside its namespace, or
        // answered as labels that do not exist (a given labels file overrides them).
        if let (None, Some(named)) = (
            &ask.settings.labels,
            card.as_ref().and_then(|c| c.settings.labels.as_ref()),
        ) {
            if !self.may_read("scoring.labels", named) {
                return Err(missing("scoring.labels", &named.display().to_string()));
            }
        }
        if let Some(known) = known {
            card = Some(
                known
                    .parsed_card()
                    .map_err(|e| Rejection::Internal(e.to_string()))?,
            );
        }
        let label = path.display().to_string();
        let plan = if self.load_scoring_models {
            let engine = fresco_infer::EngineOptions {
                threads: Some(1),
                ..Default::default()
            };
            let loading = std::time::Instant::now();
            let loaded = Scorer::new(
                &bytes,
                &label,
                path.parent(),
                &engine,
                &ask.settings,
                card.as_ref(),
            )
            .map(|scorer| scorer.plan().clone());
            tracing::debug!(
                ms = loading.elapsed().as_millis() as u64,
                "submission: the scoring model loaded to resolve its plan"
            );
            loaded
        } else {
            // The interface the file declares, without ONNX Runtime: a server never builds a
            // session for a stranger's bytes. A file that leaves an output's shape open is
            // checked as far as it says; the worker's load checks the rest.
            Scorer::plan_declared(&bytes, &label, &ask.settings, card.as_ref())
        }
        .map_err(scoring_rejection)?;
        let labels = match &plan.labels {
            None => None,
            Some(resolved) => {
                let file = ask
                    .settings
                    .labels
                    .clone()
                    .or_else(|| card.as_ref().and_then(|c| c.settings.labels.clone()))
                    .ok_or_else(|| Rejection::Internal("labels without a file".into()))?;
                Some(PinnedText {
                    path: absolute(&file),
                    digest: resolved.digest.clone(),
                    text: resolved.text.clone(),
                })
            }
        };
        // Pinned as read: the text the plan was resolved from, not a second read of the file.
        let card = card.map(|card| PinnedText {
            path: match known {
                Some(_) => card.path.clone(),
                None => absolute(&card.path),
            },
            text: card.text,
            digest: card.digest,
        });
        let mut settings = ask.settings.clone();
        settings.labels = settings.labels.as_deref().map(absolute);
        // The resolved task, so that assembly knows it without loading the model.
        settings.task = serde_json::to_value(plan.task)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string));
        let pin = ModelPin {
            choice: ModelChoice::File(path.clone()),
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            digest,
            input_range: None,
            channel_order: None,
            device_kind: device.kind(),
            precision: submission.precision,
            image_card: None,
        };
        Ok((
            pin,
            ScoringSpec {
                settings,
                card,
                labels,
                sampling: ask.sampling,
            },
        ))
    }
}

/// The request's scoring section as a [`ScoringAsk`] (relative file names placed in the data
/// store like the input's).
pub(crate) fn scoring_ask(request: &SubmitRequest) -> Result<Option<ScoringAsk>, Rejection> {
    let Some(r) = &request.scoring else {
        return Ok(None);
    };
    let file = |field: &str, text: &Option<String>| -> Result<Option<PathBuf>, Rejection> {
        text.as_deref().map(|t| absolute_path(field, t)).transpose()
    };
    Ok(Some(ScoringAsk {
        settings: ScoreSettings {
            task: r.task.clone(),
            input_size: r.input_size.clone(),
            resize: r.resize.clone(),
            mean: r.mean,
            std: r.std,
            layout: r.layout.clone(),
            channel_order: r.channel_order.clone(),
            labels: file("scoring.labels", &r.labels)?,
            outputs: r.outputs.clone(),
            detect_format: r.detect_format.clone(),
            min_score: r.min_score,
            nms_iou: r.nms_iou,
            top_k: r.top_k,
            mask_threshold: r.mask_threshold,
            ..Default::default()
        },
        card: file("scoring.model_card", &r.model_card)?,
        sampling: Sampling {
            every: r.every,
            fps: r.fps,
        },
    }))
}

/// Whether the submission asks for masks (`--task segment`, the API's `scoring.task`).
pub(crate) fn asks_segment(submission: &Submission) -> bool {
    submission
        .scoring
        .as_ref()
        .and_then(|s| s.settings.task.as_deref())
        == Some("segment")
}

/// Whether the model card at `card` (given, or beside a model file) names `task = "segment"`:
/// a dataset with a folder or prefix output and no task asked for is then made masks, as if
/// `--task segment` were given, rather than read as a style's (whose card may not name a task).
/// A card that cannot be read is refused as the full read would refuse it (exit 7, 422
/// `model-card`).
pub fn card_asks_segment(card: Option<&Path>) -> Result<bool, Rejection> {
    let Some(card) = card else { return Ok(false) };
    let task = fresco_score::card_task(card).map_err(|e| unusable("model-card", e))?;
    Ok(task.as_deref() == Some("segment"))
}

/// The submission with `task = "segment"` asked for, as its model's card says.
pub(crate) fn asking_segment(submission: &Submission) -> Submission {
    let mut asked = submission.clone();
    asked
        .scoring
        .get_or_insert_with(Default::default)
        .settings
        .task = Some("segment".into());
    asked
}

impl Submitter {
    /// Whether a submission that asks for no task is a mask job by its model's card (see
    /// [`card_asks_segment`]): the card given, or the one beside a model file, each read only
    /// where inputs may be read.
    pub(crate) fn card_asks_segment(&self, submission: &Submission) -> Result<bool, Rejection> {
        let ask = submission.scoring.as_ref();
        if ask.and_then(|s| s.settings.task.as_deref()).is_some() {
            return Ok(false);
        }
        if let Some(card) = ask.and_then(|s| s.card.as_ref()) {
            if let Some(rules) = &self.paths {
                rules.check("scoring.model_card", &card.display().to_string())?;
            }
            return card_asks_segment(Some(card));
        }
        let model = match &submission.model {
            ModelSource::File(path) => {
                if let Some(rules) = &self.paths {
                    rules.check("model", path)?;
                }
                absolute_path("model", path)?
            }
            ModelSource::Pinned(ModelPin {
                choice: ModelChoice::File(path),
                ..
            }) => absolute(path),
            _ => return Ok(false),
        };
        card_asks_segment(self.card_beside(&model).as_deref())
    }
}

/// `--task segment` with a records output: masks are images, not rows.
pub(crate) fn segment_records(output: &str) -> Rejection {
    Rejection::BadField {
        code: "segment-output",
        message: format!(
            "output {output}: --task segment writes one mask image (PNG) per item of a \
             dataset under an output folder or prefix, not records: give a folder or prefix \
             (masks/, az://container/masks/) rather than a .jsonl or .parquet file"
        ),
    }
}

/// `--task segment` where the input is one file or object (a video, a picture): masks are
/// written for the items of a dataset only.
pub fn segment_needs_dataset(input: &str) -> Rejection {
    Rejection::BadField {
        code: "segment-input",
        message: format!(
            "input {input}: --task segment writes one mask per image of a dataset: give a \
             folder or a prefix (photos/, az://container/photos/) and an output folder or \
             prefix; a video's frames are not segmented"
        ),
    }
}

/// `--task segment` scores a model file (or a known scoring model), never a style.
pub(crate) fn check_segment_model(submission: &Submission) -> Result<(), Rejection> {
    match &submission.model {
        ModelSource::Style(name) if fresco_score::known_by_name(name).is_none() => {
            Err(Rejection::BadField {
                code: "segment-needs-model",
                message: format!(
                    "--task segment scores a segmentation model, whose output is a per-pixel \
                     map, given with --model FILE (\"model\"); '{name}' names a style model \
                     (--style, \"style\"), whose output is a picture"
                ),
            })
        }
        _ => Ok(()),
    }
}

/// A records output needs a records task; a video or image output refuses scoring flags.
pub(crate) fn check_sink(
    records: bool,
    submission: &Submission,
    output: &Path,
) -> Result<(), Rejection> {
    let given = submission
        .scoring
        .as_ref()
        .is_some_and(ScoringAsk::records_only_given);
    if !records && given {
        return Err(Rejection::BadField {
            code: "records-output-needed",
            message: format!(
                "output {}: scoring options (--task, --labels, --every, --fps, ...) write \
                 records: give a .jsonl or .parquet output",
                output.display()
            ),
        });
    }
    Ok(())
}

/// A scoring plan that cannot be made: the model's runtime missing is the server's problem,
/// anything else the request's.
fn scoring_rejection(e: ScoreError) -> Rejection {
    match &e {
        ScoreError::Engine(
            EngineError::Runtime(_)
            | EngineError::Device { .. }
            | EngineError::DeviceUnavailable(_),
        ) => Rejection::Unavailable {
            code: "model-runtime-unavailable",
            detail: e.to_string(),
        },
        ScoreError::Engine(_) => unusable("model-unusable", e),
        ScoreError::Plan(_) | ScoreError::Outputs { .. } | ScoreError::OutputsPlan { .. } => {
            unusable("model-scoring", e)
        }
    }
}
