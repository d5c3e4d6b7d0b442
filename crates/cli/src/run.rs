//! `fresco run`: style videos, images or folders of images on this machine, or score them into
//! records (`.jsonl`/`.parquet`; images in [`crate::image_records`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use fresco_core::ModelPin;
use fresco_core::{ChannelOrder, Device, EncodeSettings, InputRange, ModelChoice, StreamKind};
use fresco_infer::registry::Registry;
use fresco_infer::EngineOptions;
use fresco_pipeline::image::{is_image_path, style_image_file};
use fresco_pipeline::{load_model, LoadedModel, VideoOptions};
use fresco_store::absolute;
use fresco_worker::StopSignal;
use serde::Serialize;

use crate::embedded::{run_videos, EmbeddedOptions, VideoJob};
use crate::exit::{self, Failure};
use crate::queue_args::QueueArgs;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Videos or images to style, or one folder or object-store prefix of images
    /// (`az://c/photos/`), a dataset job: styled into an output folder with the same keys,
    /// scored into a .jsonl/.parquet output, or (--task segment) made masks in an output folder.
    #[arg(required_unless_present = "manifest")]
    pub inputs: Vec<PathBuf>,
    /// Output file, or a folder (or prefix) when several inputs (or a folder) are given.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub model_trial: crate::model_trial_cmd::ModelTrialArgs,
    #[command(flatten)]
    pub scoring: crate::scoring_args::ScoringArgs,
    #[command(flatten)]
    pub video: VideoArgs,
    #[command(flatten)]
    pub dataset: crate::dataset_args::DatasetArgs,
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Local workers scoring chunks in parallel, each with its own model session and a share of
    /// the cores (default: 2 on a CPU with 2 or more cores, else 1; with `--threads`, 1). Two
    /// single-thread sessions beat one two-thread session on 2 cores (about half of a style
    /// network's time is in ops that do not scale with threads; docs/performance.md), at the
    /// cost of a second session's memory: `--workers 1` halves peak memory.
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Frames per chunk (default: about 30 s of model time each, from a calibration).
    #[arg(long, value_name = "N")]
    pub chunk_frames: Option<u64>,
    /// Frames, or a dataset's images, per inference call (batching pays on GPUs; on CPUs it
    /// hardly does).
    #[arg(long, env = "FRESCO_BATCH", default_value_t = 1, value_name = "N", value_parser = crate::worker_cmd::parse_batch)]
    pub batch: usize,
    /// No progress bar or notes (errors and warnings are still printed).
    #[arg(short, long)]
    pub quiet: bool,
    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
}

/// How videos are encoded and which streams are kept.
#[derive(Debug, Args)]
pub struct VideoArgs {
    /// Video encoder (ffmpeg name): libx264, libx265, libx264rgb, ffv1, libvpx-vp9, ...
    /// (default: libvpx-vp9 for .webm, libx264 for other containers). One the output's
    /// container cannot hold, or this ffmpeg lacks, is refused when the job is planned.
    #[arg(long)]
    pub codec: Option<String>,
    /// Constant rate factor (lower is better quality; 0 is lossless for x264). Default: 18,
    /// or 24 for VP9, whose scale differs.
    #[arg(long)]
    pub crf: Option<u8>,
    /// Encoder preset (x264/x265, NVENC; default medium).
    #[arg(long)]
    pub preset: Option<String>,
    /// Output pixel format; default yuv420p (8-bit input) or yuv420p10le (deeper input).
    #[arg(long)]
    pub pix_fmt: Option<String>,
    /// Encoder threads, pinned for every chunk (default: up to 4, fixed when the job is planned).
    #[arg(long, value_name = "N")]
    pub encoder_threads: Option<u32>,
    /// Score frames downscaled so that their longer side is at most N pixels, then scale back.
    #[arg(long, value_name = "N")]
    pub max_side: Option<u32>,
    /// Stream kinds not to copy: audio, subtitle, data, attachment (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "KIND")]
    pub drop_streams: Vec<StreamKind>,
    /// Replace outputs that already exist (`-y`, as in ffmpeg).
    #[arg(long, short = 'y')]
    pub overwrite: bool,
    /// Hardware video decoding (ffmpeg's -hwaccel): none (default), auto (software when no
    /// method works), or cuda, vaapi, qsv, ... (checked when the job is planned).
    #[arg(long, value_name = "METHOD", value_parser = parse_hwaccel_arg)]
    pub hwaccel: Option<String>,
    /// Steady video: blend each styled frame with the previous output carried along the
    /// input's optical flow, so that the texture does not flicker (docs/temporal.md). Each
    /// chunk starts a few frames early. A video styled into a video only: refused with a
    /// records output, a still image, a dataset or a model whose output is no image.
    #[arg(long)]
    pub temporal: bool,
}

/// `--hwaccel`, checked and in lower case.
fn parse_hwaccel_arg(text: &str) -> Result<String, String> {
    fresco_core::settings::parse_hwaccel(text)
        .map(|method| method.unwrap_or_else(|| "none".to_string()))
}

impl VideoArgs {
    pub fn options(&self) -> VideoOptions {
        VideoOptions {
            encode: EncodeSettings {
                codec: self
                    .codec
                    .clone()
                    .unwrap_or_else(|| fresco_core::settings::AUTO_CODEC.to_string()),
                crf: self.crf,
                preset: self.preset.clone(),
                pix_fmt: self.pix_fmt.clone(),
                threads: self.encoder_threads,
            },
            max_side: self.max_side,
            drop_streams: self.drop_streams.clone(),
            overwrite: self.overwrite,
            hwaccel: self.hwaccel.clone().filter(|method| method != "none"),
            // The user's own files on their own machine (`fresco run`, `jobs submit`): no
            // limits; `fresco serve` sets its --max-input-* limits on the jobs it queues.
            limits: fresco_core::MediaLimits::none(),
            model_size: None,
            temporal: self.temporal,
        }
    }
}

/// Which model, and how it runs.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// A named style: mosaic, candy, udnie, rain-princess, pointilism, or the built-in vintage;
    /// with a .jsonl/.parquet output, a known scoring model: efficientnet-lite0,
    /// yolov3-tiny-416, blazeface-front-128 (`fresco models list`).
    #[arg(long, conflicts_with = "model", required_unless_present = "model")]
    pub style: Option<String>,
    /// Any ONNX model file (image-to-image, or any model with a .jsonl/.parquet output), or
    /// the name of a known scoring model.
    #[arg(long, value_name = "FILE.onnx")]
    pub model: Option<PathBuf>,
    /// Model input value range, when the model does not say.
    #[arg(long)]
    pub input_range: Option<InputRange>,
    /// Model channel order, when the model does not say.
    #[arg(long)]
    pub channel_order: Option<ChannelOrder>,
    /// Inference threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// cpu, or cuda (cuda:N for GPU N) for an NVIDIA GPU.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// fp32, or fp16 (the model converted to half precision when loaded; needs --device cuda).
    #[arg(long, default_value = "fp32")]
    pub precision: fresco_infer::fp16::Precision,
    /// Never download a model; fail with where to put it instead.
    #[arg(long)]
    pub no_download: bool,
    /// An image model's card (`--model-card`, or the one beside the model file), read by
    /// [`ModelArgs::read_image_card`]: applied when the model is loaded and pinned in its jobs.
    #[arg(skip)]
    pub image_card: Option<fresco_core::ImageCard>,
}

impl ModelArgs {
    pub fn choice(&self) -> ModelChoice {
        match (&self.style, &self.model) {
            (Some(style), _) => ModelChoice::Style(style.clone()),
            (None, Some(path)) => ModelChoice::File(path.clone()),
            (None, None) => unreachable!("clap requires --style or --model"),
        }
    }

    pub fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            threads: self.threads,
            device: self.device,
            input_range: self.input_range,
            channel_order: self.channel_order,
            precision: self.precision,
            ..EngineOptions::default()
        }
        .with_card(self.image_card.as_ref())
    }

    /// Reads the image model's card (`given`, else the one beside a model file) into
    /// [`ModelArgs::image_card`], refusing what does not apply to an image model (exit 7).
    pub fn read_image_card(&mut self, given: Option<&Path>) -> Result<(), Failure> {
        let given = given.map(absolute);
        let choice = self.choice();
        // The input a file declares, which the card's layout may not contradict (a model that
        // does not read is left to the load, whose message says why).
        let declared = match &choice {
            ModelChoice::File(path) => std::fs::read(path)
                .ok()
                .and_then(|bytes| fresco_infer::tensors::declared_io(&bytes, "model").ok())
                .map(|(input, _)| input),
            ModelChoice::Style(_) => None,
        };
        let input = declared
            .as_ref()
            .map(|i| (i.name.as_str(), i.shape.as_slice()));
        self.image_card = fresco_submit::image_card(given.as_deref(), &choice, input)?;
        Ok(())
    }

    /// What a job records of the model `name`: its bytes' `digest` and how it runs.
    pub fn pin(&self, name: &str, digest: &str) -> ModelPin {
        ModelPin {
            choice: self.choice(),
            name: name.to_string(),
            digest: digest.to_string(),
            input_range: self.input_range,
            channel_order: self.channel_order,
            device_kind: self.device.kind(),
            precision: self.precision,
            image_card: self.image_card.clone(),
        }
    }

    pub fn load(&self) -> Result<LoadedModel, Failure> {
        fresco_infer::fp16::check_device(self.precision, self.device)
            .map_err(|e| Failure::new(crate::exit::BAD_ARGUMENTS, e.to_string()))?;
        let registry = Registry::from_env();
        Ok(load_model(
            &self.choice(),
            &registry,
            &self.engine_options(),
            !self.no_download,
        )?)
    }

    /// [`ModelArgs::load`], after a trial load of a model file in a child process under
    /// `trial`'s limits (see [`fresco_worker::model_trial`]): a model that takes more fails with
    /// exit 7 before it can take this process's memory.
    pub fn load_tried(
        &self,
        trial: &fresco_worker::model_trial::ModelTrial,
    ) -> Result<LoadedModel, Failure> {
        if let ModelChoice::File(path) = self.choice() {
            // A missing file is left to `load`, whose message names it.
            if let Ok(digest) = fresco_infer::registry::sha256_file(&path) {
                match fresco_worker::model_trial::trial_load(trial, &path, &digest) {
                    // No verdict (no runtime to try with): `load` says what is missing.
                    Err(e) if e.is_retryable() => {}
                    Err(e) => return Err(Failure::new(exit::MODEL, e.to_string())),
                    Ok(()) => {}
                }
            }
        }
        self.load()
    }
}

/// One input and where its result goes.
#[derive(Debug, Clone)]
struct Job {
    input: PathBuf,
    output: PathBuf,
}

#[derive(Debug, Serialize)]
struct RunSummary {
    model: String,
    model_digest: String,
    model_source: String,
    engine: String,
    frames: u64,
    seconds: f64,
    fps: f64,
    outputs: Vec<serde_json::Value>,
}

pub fn run(mut args: RunArgs) -> Result<ExitCode, Failure> {
    if let Some(dataset) = crate::run_dataset::dataset_of(&args)? {
        return crate::run_dataset::run_dataset(args, dataset);
    }
    // Masks are a dataset's only (one folder or prefix, above): not a video's, nor of image
    // files named one by one.
    if args.scoring.task.as_deref() == Some("segment") {
        let input = args.inputs.first().map(|p| p.display().to_string());
        return Err(fresco_submit::segment_needs_dataset(&input.unwrap_or_default()).into());
    }
    // Inputs first: a missing input must not leave an output folder behind. (One folder is a
    // dataset job, above.)
    for input in &args.inputs {
        fresco_pipeline::video::check_input_file(input).map_err(Failure::from)?;
    }
    // `--temporal` where it cannot apply is refused as every entrance refuses it (a dataset by
    // the submission's checks): a records output here, before images are scored into it.
    if let (true, Some(input)) = (args.video.temporal, args.inputs.first()) {
        if fresco_score::RecordFormat::from_path(&args.output).is_some() {
            fresco_submit::check_temporal(input, &args.output, false)?;
        }
    }
    // Records of images (a folder, or image files) are one output file, scored here.
    if fresco_score::RecordFormat::from_path(&args.output).is_some() {
        if let Some(images) = crate::image_records::image_inputs(&args.inputs)? {
            return run_image_records(&args, &images);
        }
    }
    let jobs = pair_inputs(&args)?;
    if args.video.temporal {
        for job in &jobs {
            fresco_submit::check_temporal(&job.input, &job.output, false)?;
        }
        fresco_submit::check_temporal_model(
            &args.model.choice(),
            &Registry::from_env(),
            !args.model.no_download,
        )?;
    }
    // A .jsonl/.parquet output scores the model into records: its plan is resolved by the
    // submission's checks (fresco_submit), not by loading it as an image model here.
    let records = jobs
        .iter()
        .any(|job| fresco_score::RecordFormat::from_path(&job.output).is_some());
    if records {
        crate::scoring_args::locate_named(
            &mut args.model.style,
            &mut args.model.model,
            &mut args.scoring,
        )?;
    }
    let scoring = args.scoring.ask(args.model.channel_order, absolute);
    check_outputs(&jobs, records, scoring.records_only_given())?;
    let started = Instant::now();
    let mut model = if records {
        records_model(&args)?
    } else {
        args.model
            .read_image_card(args.scoring.model_card.as_deref())?;
        args.model.load_tried(&args.model_trial.trial()?)?.into()
    };
    let engine_label = engine_label(args.model.device);
    let chatty = !args.quiet;
    if chatty {
        model.announce(&engine_label);
    }
    let stop = StopSignal::new();
    stop_on_ctrl_c(&stop);

    let mut results = Results::new(jobs.len());
    // Images go straight through the model; videos through the job engine.
    let mut videos = Vec::new();
    for (slot, job) in jobs.iter().enumerate() {
        if stop.is_stopping() {
            return Err(Failure::new(exit::CANCELED, "interrupted"));
        }
        if !is_image_path(&job.input) {
            videos.push(slot);
            continue;
        }
        if scoring.records_only_given() {
            let failure = Failure::new(exit::BAD_INPUT, scoring_needs_records(&job.output));
            results.record(Err(failure), slot)?;
            continue;
        }
        let result = style_image_file(
            model.engine.as_mut().expect("an image model is loaded"),
            &job.input,
            &job.output,
            args.video.overwrite,
        )
        .map(|s| {
            results.frames += 1;
            if chatty {
                eprintln!("{} -> {}", s.input.display(), s.output.display());
            }
            serde_json::to_value(&s).expect("summary serialises")
        })
        .map_err(Failure::from);
        results.record(result, slot)?;
    }
    if !videos.is_empty() {
        let pin = args.model.pin(&model.name, &model.digest);
        let embedded = EmbeddedOptions::of_run(
            &args,
            args.workers.unwrap_or_else(|| default_workers(&args.model)),
            chatty,
            (records || scoring.is_given()).then(|| scoring.clone()),
        );
        // The workers load their own sessions; this one is not needed any more.
        drop(model.engine.take());
        let overwrite = args.video.overwrite;
        run_video_slots(
            &jobs,
            &videos,
            pin,
            args.video.options(),
            overwrite,
            &embedded,
            stop,
            &mut results,
        )?;
    }
    if args.json {
        print_summary(&model, engine_label, started, &mut results);
    }
    results.finish()
}

/// Scores images into one records file (see [`crate::image_records`]).
fn run_image_records(
    args: &RunArgs,
    images: &[crate::image_records::ImageInput],
) -> Result<ExitCode, Failure> {
    let scoring = args.scoring.ask(args.model.channel_order, absolute);
    let stop = StopSignal::new();
    stop_on_ctrl_c(&stop);
    let started = Instant::now();
    let (model, outcome) = crate::image_records::score_images(args, images, &scoring, &stop)?;
    if !args.quiet {
        eprintln!(
            "{} images -> {}: {} rows in {:.1} s",
            outcome.images,
            outcome.output.display(),
            outcome.rows,
            outcome.seconds
        );
    }
    if args.json {
        let mut results = Results::new(1);
        results.frames = outcome.images;
        results.record(
            Ok(serde_json::to_value(&outcome).expect("summary serialises")),
            0,
        )?;
        print_summary(
            &model,
            engine_label(args.model.device),
            started,
            &mut results,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Outputs a run cannot make, refused before any model is loaded.
fn check_outputs(jobs: &[Job], records: bool, scoring_given: bool) -> Result<(), Failure> {
    for job in jobs {
        if !is_image_path(&job.input) && is_image_path(&job.output) {
            return Err(Failure::new(
                exit::OUTPUT,
                format!(
                    "{}: a video needs a video output (.mp4, .mkv, .mov, ...), not an image",
                    job.output.display()
                ),
            ));
        }
    }
    if !records && scoring_given {
        return Err(Failure::new(
            exit::BAD_INPUT,
            scoring_needs_records(&jobs[0].output),
        ));
    }
    Ok(())
}

pub(crate) fn scoring_needs_records(output: &Path) -> String {
    format!(
        "output {}: scoring options (--task, --labels, --every, --fps, ...) write records: \
         give a .jsonl or .parquet output",
        output.display()
    )
}

/// Ctrl-C stops claiming (chunks in flight go back to the queue); a second one quits at once.
pub(crate) fn stop_on_ctrl_c(stop: &Arc<StopSignal>) {
    let stop = Arc::clone(stop);
    let _ = ctrlc::set_handler(move || {
        if stop.is_stopping() {
            std::process::exit(exit::CANCELED as i32);
        }
        stop.stop();
        eprintln!(
            "\nstopping: the chunks in flight go back to the queue (Ctrl-C again to quit at once)"
        );
    });
}

/// What each input of a run gave, in the inputs' order. With one input its failure is the
/// run's; with several, a failure is told and the others go on.
struct Results {
    outputs: Vec<Option<serde_json::Value>>,
    frames: u64,
    first_failure: Option<Failure>,
    failed: usize,
}

impl Results {
    fn new(inputs: usize) -> Results {
        Results {
            outputs: vec![None; inputs],
            frames: 0,
            first_failure: None,
            failed: 0,
        }
    }

    fn record(
        &mut self,
        result: Result<serde_json::Value, Failure>,
        slot: usize,
    ) -> Result<(), Failure> {
        match result {
            Ok(value) => {
                self.outputs[slot] = Some(value);
                Ok(())
            }
            Err(failure) => {
                if failure.code == exit::CANCELED || self.outputs.len() == 1 {
                    return Err(failure);
                }
                eprintln!("error: {}", failure.message);
                self.failed += 1;
                self.first_failure.get_or_insert(failure);
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<ExitCode, Failure> {
        match self.first_failure {
            Some(failure) => Err(Failure::new(
                failure.code,
                format!(
                    "{} of {} inputs failed (first: {})",
                    self.failed,
                    self.outputs.len(),
                    failure.message
                ),
            )),
            None => Ok(ExitCode::SUCCESS),
        }
    }
}

/// Runs the videos among `jobs` (at `slots`) through the embedded job engine, refusing an
/// existing output (without --overwrite) or an unwritable folder before any work.
#[allow(clippy::too_many_arguments)]
fn run_video_slots(
    jobs: &[Job],
    slots: &[usize],
    pin: ModelPin,
    options: VideoOptions,
    overwrite: bool,
    embedded: &EmbeddedOptions,
    stop: Arc<StopSignal>,
    results: &mut Results,
) -> Result<(), Failure> {
    let mut runnable = Vec::new();
    for &slot in slots {
        let job = &jobs[slot];
        match fresco_pipeline::video::check_output_target(&job.output, overwrite) {
            Ok(()) => runnable.push(slot),
            Err(e) => results.record(Err(Failure::from(e)), slot)?,
        }
    }
    let video_jobs: Vec<VideoJob> = runnable
        .iter()
        .map(|&slot| VideoJob {
            input: jobs[slot].input.clone(),
            output: jobs[slot].output.clone(),
            dataset: None,
        })
        .collect();
    let outcomes = run_videos(&video_jobs, pin, options, embedded, stop)?;
    for (slot, outcome) in runnable.into_iter().zip(outcomes) {
        let result = outcome.map(|outcome| {
            results.frames += outcome.frames;
            if embedded.chatty {
                eprintln!(
                    "{} -> {}: {} frames in {:.1} s ({:.2} frames/s{})",
                    outcome.input.display(),
                    outcome.output.display(),
                    outcome.frames,
                    outcome.seconds,
                    outcome.fps,
                    if outcome.chunks_resumed > 0 {
                        format!(
                            ", {} of {} chunks from an earlier run",
                            outcome.chunks_resumed, outcome.chunks
                        )
                    } else {
                        String::new()
                    }
                );
            }
            serde_json::to_value(&outcome).expect("summary serialises")
        });
        results.record(result, slot)?;
    }
    Ok(())
}

/// `--json`: the run's summary on stdout.
fn print_summary(model: &RunModel, engine: String, started: Instant, results: &mut Results) {
    let outputs: Vec<serde_json::Value> = results.outputs.iter().flatten().cloned().collect();
    let seconds = started.elapsed().as_secs_f64();
    let frames = results.frames;
    let summary = RunSummary {
        model: model.name.clone(),
        model_digest: model.digest.clone(),
        model_source: model.source.clone(),
        engine,
        frames,
        seconds,
        fps: if seconds > 0.0 {
            frames as f64 / seconds
        } else {
            0.0
        },
        outputs,
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&summary).expect("summary serialises")
    );
}

/// The model as `fresco run` reports it; the image engine only where images are styled here.
pub(crate) struct RunModel {
    engine: Option<fresco_infer::Engine>,
    pub name: String,
    pub source: String,
    pub digest: String,
}

impl From<LoadedModel> for RunModel {
    fn from(m: LoadedModel) -> Self {
        RunModel {
            engine: Some(m.engine),
            name: m.name,
            source: m.source,
            digest: m.digest,
        }
    }
}

impl RunModel {
    /// The line a run starts with on stderr: the model, where it came from, the start of its
    /// digest and the engine.
    pub fn announce(&self, engine_label: &str) {
        eprintln!(
            "model: {} ({}), sha256 {}…; engine: {engine_label}",
            self.name,
            self.source,
            &self.digest[..12]
        );
    }
}

/// A records run's model file, read for its digest (the submission's checks load it).
pub(crate) fn records_model(args: &RunArgs) -> Result<RunModel, Failure> {
    use sha2::Digest;
    let Some(path) = &args.model.model else {
        return Err(Failure::new(
            exit::BAD_INPUT,
            "a .jsonl or .parquet output scores a model file (--model / \"model\"), not a style",
        ));
    };
    let bytes = std::fs::read(path).map_err(|e| {
        Failure::new(
            exit::BAD_INPUT,
            format!("model {}: cannot read it: {e}", path.display()),
        )
    })?;
    let digest = hex::encode(sha2::Sha256::digest(&bytes));
    let trial_started = Instant::now();
    // The first load in a child process under the trial's limits, as for image models
    // ([`ModelArgs::load_tried`]), before this process loads it to check the scoring plan.
    use fresco_worker::model_trial::{trial_load_as, Interface};
    let tried = trial_load_as(
        &args.model_trial.trial()?,
        path,
        &digest,
        Interface::Tensors,
    );
    tracing::debug!(
        ms = trial_started.elapsed().as_millis() as u64,
        "records: the model's trial load in a child process"
    );
    match tried {
        Err(e) if e.is_retryable() => {}
        Err(e) => return Err(Failure::new(exit::MODEL, e.to_string())),
        Ok(()) => {}
    }
    Ok(RunModel {
        engine: None,
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        source: absolute(path).display().to_string(),
        digest,
    })
}

/// Pairs each input with its output: one file to a file, or many (or a folder) into a folder.
fn pair_inputs(args: &RunArgs) -> Result<Vec<Job>, Failure> {
    let out = &args.output;
    let out_is_dir = out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/');
    if args.inputs.len() > 1 || out_is_dir {
        ensure_dir(out)?;
        let mut seen = std::collections::HashSet::new();
        let mut jobs = Vec::new();
        for input in &args.inputs {
            let Some(name) = input.file_name() else {
                return Err(Failure::new(
                    exit::INPUT_MISSING,
                    format!("{}: not a file", input.display()),
                ));
            };
            let output = out.join(name);
            if !seen.insert(output.clone()) {
                return Err(Failure::new(
                    exit::OUTPUT,
                    format!("{}: two inputs would be written here", output.display()),
                ));
            }
            jobs.push(Job {
                input: input.clone(),
                output,
            });
        }
        return Ok(jobs);
    }
    let input = &args.inputs[0];
    let mut output = out.clone();
    if output.extension().is_none() {
        // No extension: keep the input's container.
        if let Some(ext) = input.extension() {
            output.set_extension(ext);
        }
    }
    Ok(vec![Job {
        input: input.clone(),
        output,
    }])
}

fn ensure_dir(dir: &Path) -> Result<(), Failure> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        return Err(Failure::new(
            exit::OUTPUT,
            format!(
                "{}: several outputs need a folder, and this is a file",
                dir.display()
            ),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        Failure::new(
            exit::OUTPUT,
            format!("{}: cannot create the output folder: {e}", dir.display()),
        )
    })
}

/// Local workers when `--workers` is not given: two on a CPU with two or more cores (each with
/// half of them), unless `--threads` fixes the threads of one session; one on a GPU.
pub(crate) fn default_workers(model: &ModelArgs) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if model.device == Device::Cpu && model.threads.is_none() && cores >= 2 {
        2
    } else {
        1
    }
}

/// What runs the model, for messages: "onnxruntime 1.32.0 (cpu)".
pub fn engine_label(device: Device) -> String {
    let version = fresco_infer::runtime::loaded_library()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("libonnxruntime.so."))
        .unwrap_or("")
        .to_string();
    if version.is_empty() {
        format!("onnxruntime ({device})")
    } else {
        format!("onnxruntime {version} ({device})")
    }
}
