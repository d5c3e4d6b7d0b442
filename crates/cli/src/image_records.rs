//! `fresco run` on still image files named one by one with a records output (`a.jpg b.png -o
//! tags.parquet`): one row per image, in this process, as single styled images are. A folder or
//! prefix of images is a dataset job instead ([`crate::run_dataset`]): a bad image there is an
//! error row, and an interrupted run resumes.
//!
//! Images skip the queue for the reasons styled images do: each is one frame, decoded by the
//! `image` crate (EXIF orientation applied) rather than planned from an ffprobe frame scan, so
//! there is no chunk worth a lease or a resume, and neither `fresco serve` nor `fresco worker`
//! takes images. What the queue path shares is here too: the submission's checks and pinned
//! plan ([`fresco_submit::Submitter::pin_scoring`], the same refusals in the same words), the
//! worker's scorer ([`Scorer::from_pinned`]), the parts and their join with its row count
//! ([`write_part`], [`join_parts`]), and a publish by rename ([`TempOutput`]): an image that
//! cannot be read fails the run, naming it, and leaves nothing at the output.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use fresco_pipeline::image::{load_rgb_scaled, ScaledImage};
use fresco_pipeline::output::TempOutput;
use fresco_score::{join_parts, write_part, Frame, RecordFormat, Scorer};
use fresco_submit::{ModelSource, ScoringAsk, Submission};
use fresco_worker::StopSignal;
use serde::Serialize;

use crate::exit::{self, Failure};
use crate::run::{RunArgs, RunModel};

/// One image to score and the `source` its row names.
#[derive(Debug, Clone)]
pub(crate) struct ImageInput {
    pub path: PathBuf,
    pub source: String,
}

/// What scoring images into records did (`--json`).
#[derive(Debug, Serialize)]
pub(crate) struct ImageRecordsOutcome {
    pub output: PathBuf,
    pub images: u64,
    pub rows: u64,
    pub seconds: f64,
    pub model_seconds: f64,
}

/// The images of a records run: the files given, in the order given, each named as given.
/// `None` when the inputs are not images (a video's records go through the queue; a folder is a
/// dataset job, [`crate::run_dataset`]).
pub(crate) fn image_inputs(inputs: &[PathBuf]) -> Result<Option<Vec<ImageInput>>, Failure> {
    use fresco_pipeline::image::is_image_path;
    let images = inputs.iter().filter(|p| is_image_path(p)).count();
    if images == 0 {
        return Ok(None);
    }
    if images < inputs.len() {
        return Err(Failure::new(
            exit::BAD_INPUT,
            "a records output (.jsonl, .parquet) takes one video, or image files (or one \
             folder of them), not both",
        ));
    }
    Ok(Some(
        inputs
            .iter()
            .map(|path| ImageInput {
                path: path.clone(),
                source: path.display().to_string(),
            })
            .collect(),
    ))
}

/// Scores `images` with the run's model into the records file `args.output`.
pub(crate) fn score_images(
    args: &RunArgs,
    images: &[ImageInput],
    ask: &ScoringAsk,
    stop: &Arc<StopSignal>,
) -> Result<(RunModel, ImageRecordsOutcome), Failure> {
    let started = Instant::now();
    let output = args.output.clone();
    let format = RecordFormat::from_path(&output).expect("a records output");
    if ask.sampling != Default::default() {
        return Err(Failure::new(
            exit::BAD_INPUT,
            "--every and --fps pick frames of a video; each image is scored once",
        ));
    }
    // The output's folder is writable and the output absent (or --overwrite) before the model
    // is loaded; the temporary file is removed unless the run completes.
    let temp = TempOutput::create(&output, args.video.overwrite)?;
    let model = crate::run::records_model(args)?;
    if !args.quiet {
        model.announce(&crate::run::engine_label(args.model.device));
    }
    let path = args.model.model.clone().expect("records_model checked it");
    let (mut scorer, _labels) = pinned_scorer(
        &path,
        args.model.pin(&model.name, &model.digest),
        &fresco_infer::EngineOptions {
            threads: args.model.threads,
            device: args.model.device,
            precision: args.model.precision,
            ..Default::default()
        },
        ask,
        &output,
        args.video.options(),
    )?;
    let task = scorer.plan().task;
    let per_call = scorer.batch(args.batch);
    let mut parts = Vec::new();
    let mut rows = Vec::new();
    let mut model_seconds = 0.0;
    for batch in images.chunks(per_call) {
        if stop.is_stopping() {
            return Err(Failure::new(exit::CANCELED, "interrupted"));
        }
        let scaled = batch
            .iter()
            .map(|image| load_rgb_scaled(&image.path, |w, h| scorer.scaled_size(w, h)))
            .collect::<Result<Vec<ScaledImage>, _>>()?;
        let frames: Vec<Frame> = batch
            .iter()
            .zip(&scaled)
            .map(|(image, scaled)| {
                Frame::still(&scaled.rgb, scaled.scaled, scaled.displayed, &image.source)
            })
            .collect();
        let scoring_started = Instant::now();
        let scored = scorer
            .score(&frames)
            .map_err(|e| Failure::new(exit::MODEL, format!("{}: {e}", batch[0].path.display())))?;
        model_seconds += scoring_started.elapsed().as_secs_f64();
        rows.extend(scored);
        if rows.len() >= ROWS_PER_PART {
            parts.push(part(format, task, &mut rows)?);
        }
        if !args.quiet {
            for image in batch {
                eprintln!("{}", image.path.display());
            }
        }
    }
    if !rows.is_empty() {
        parts.push(part(format, task, &mut rows)?);
    }
    let written = write_joined(format, task, &parts, images.len() as u64, &temp)?;
    let published = temp.commit()?;
    metrics::counter!(fresco_core::telemetry::RECORD_ROWS_WRITTEN).increment(written);
    let outcome = ImageRecordsOutcome {
        output: published,
        images: images.len() as u64,
        rows: written,
        seconds: started.elapsed().as_secs_f64(),
        model_seconds,
    };
    Ok((model, outcome))
}

/// The worker's scorer for the records model file at `path`, pinned as `pin`: the
/// submission's checks and scoring plan ([`fresco_submit::Submitter::pin_scoring`], for a
/// records `output`), then [`Scorer::from_pinned`] on the file's bytes, checked against the pin,
/// with `engine`'s threads and device. The plan's labels are written into the returned folder,
/// which must outlive the scorer.
pub(crate) fn pinned_scorer(
    path: &Path,
    pin: fresco_core::ModelPin,
    engine: &fresco_infer::EngineOptions,
    ask: &ScoringAsk,
    output: &Path,
    options: fresco_pipeline::VideoOptions,
) -> Result<(Scorer, tempfile::TempDir), Failure> {
    let submitter = fresco_submit::Submitter::new(fresco_infer::registry::Registry::from_env())
        .load_scoring_models(true)
        .allow_download(false)
        .limits(fresco_wire::limits::InputLimits::none());
    let submission = Submission {
        input: String::new(),
        output: output.display().to_string(),
        model: ModelSource::Pinned(pin),
        device: engine.device,
        precision: engine.precision,
        input_range: None,
        channel_order: None,
        options,
        chunk_frames: None,
        priority: 0,
        budgets: Default::default(),
        scoring: Some(ask.clone()),
    };
    let (pin, scoring) = submitter.pin_scoring(&submission)?;
    let (bytes, digest) = read_model(path)?;
    if digest != pin.digest {
        return Err(Failure::new(
            exit::MODEL,
            format!(
                "model {}: its bytes changed while it was checked",
                path.display()
            ),
        ));
    }
    let labels_dir = tempfile::tempdir().map_err(|e| {
        Failure::new(
            exit::PROCESSING,
            format!("cannot make a folder for the labels: {e}"),
        )
    })?;
    let options = fresco_infer::EngineOptions {
        threads: engine.threads,
        device: engine.device,
        ..Default::default()
    };
    let scorer = Scorer::from_pinned(
        &bytes,
        &path.display().to_string(),
        path.parent(),
        &options,
        &scoring,
        labels_dir.path(),
    )
    .map_err(|e| Failure::new(exit::MODEL, e.to_string()))?;
    Ok((scorer, labels_dir))
}

/// Rows held in memory before they are written as a part: a folder's rows are never all held.
const ROWS_PER_PART: usize = 250;

/// `rows` written as one part (and taken).
fn part(
    format: RecordFormat,
    task: fresco_score::Task,
    rows: &mut Vec<fresco_score::Record>,
) -> Result<bytes::Bytes, Failure> {
    let bytes = write_part(format, task, rows)
        .map_err(|e| Failure::new(exit::PROCESSING, e.to_string()))?;
    rows.clear();
    Ok(bytes.into())
}

/// The parts joined into the temporary output, synced, checking that they hold `expected` rows.
fn write_joined(
    format: RecordFormat,
    task: fresco_score::Task,
    parts: &[bytes::Bytes],
    expected: u64,
    temp: &TempOutput,
) -> Result<u64, Failure> {
    let unwritable = |e: std::io::Error| {
        Failure::new(
            exit::OUTPUT,
            format!("{}: cannot write: {e}", temp.target().display()),
        )
    };
    let file = std::fs::File::create(temp.path()).map_err(unwritable)?;
    let mut writer = std::io::BufWriter::new(file);
    let rows = join_parts(format, task, parts, expected, &mut writer)
        .map_err(|e| Failure::new(exit::PROCESSING, e.to_string()))?;
    let file = writer
        .into_inner()
        .map_err(|e| unwritable(e.into_error()))?;
    file.sync_all().map_err(unwritable)?;
    Ok(rows)
}

/// A model file's bytes and their sha256 (hex), as a pin names it.
pub(crate) fn read_model(path: &std::path::Path) -> Result<(Vec<u8>, String), Failure> {
    use sha2::Digest;
    let bytes = std::fs::read(path).map_err(|e| {
        Failure::new(
            exit::BAD_INPUT,
            format!("model {}: cannot read it: {e}", path.display()),
        )
    })?;
    let digest = hex::encode(sha2::Sha256::digest(&bytes));
    Ok((bytes, digest))
}
