//! One way from a request to a queued job, for every entrance: `fresco run`, `fresco jobs
//! submit`, the HTTP API (`POST /v1/jobs`), watched folders and storage events. A
//! [`Submission`] (or an API [`SubmitRequest`], read into one) goes through
//! [`Submitter::build`], which makes the checks before queueing (the input is a video, the
//! output can be written, the model passes a static inspection and its digest is pinned) and
//! returns the queue's [`NewJob`] with its [`JobSpec`], or a [`Rejection`] with a stable code
//! and message. Every entrance thus accepts and refuses the same inputs with the same words;
//! the server answers the code as JSON, the CLI exits with the code's class.
//!
//! A crate of its own, between the pipeline and the server: it needs the pipeline (probe,
//! plan), the stores (object inputs) and the queue's job type, and the CLI must use it without
//! pulling the HTTP server in.
//!
//! No ONNX Runtime session is built for a submitted model: building one reads the files a
//! model names as external data and runs constant folding, which can take gigabytes from a
//! model of a few hundred bytes. The model's protobuf is inspected instead
//! ([`fresco_infer::inspect`]): no external data or other file references, a size, node-count
//! and folded-constant budget, an opset range and an image-to-image interface.
//!
//! Input and output may be object URLs (`az://container/in/clip.mp4`, `s3://...`,
//! `file:///...`): the input must exist and not be empty (a `head` request) and be within the
//! size limit, the output must not exist unless `overwrite`. The input is then probed from its
//! first and last bytes (ranged reads into a sparse scratch file, see [`object_probe`]) and
//! checked as a local input is: a video stream, within the duration and frame-size limits, a
//! plan for the output. Only an object whose container ffprobe recognises but cannot read from
//! its ends (an MP4 index in the unread middle) is queued unchecked; its plan task probes the
//! whole download and fails the job with the same message where it is not a video.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fresco_core::scoring::{PinnedText, Sampling, ScoreSettings, ScoringSpec};
use fresco_core::ImageCard;
use fresco_core::{
    ChannelOrder, Device, DeviceKind, EncodeSettings, InputRange, JobSpec, ModelChoice, ModelPin,
    Precision, RetryBudgets, UnknownPrecision, VideoOptions,
};
use fresco_infer::inspect::ModelBudget;
use fresco_infer::registry::Registry;
use fresco_infer::EngineError;
use fresco_media::probe::probe;
use fresco_pipeline::video::{check_input_file, check_output_target};
use fresco_pipeline::{check_model, ModelError, RunError, Tools};
use fresco_queue::NewJob;
use fresco_score::{card_beside, ModelCard, RecordFormat, ScoreError, Scorer};
use fresco_store::{absolute, ObjectInfo, ObjectUrl};

use fresco_wire::limits::{InputLimits, PathRules};
use fresco_wire::submit::ModelRef;
pub use fresco_wire::SubmitRequest;

mod dataset;
mod object_probe;
mod rejection;
mod scoring;
mod temporal;
pub use scoring::{card_asks_segment, image_card, segment_needs_dataset, ScoringAsk};
use scoring::{check_sink, scoring_ask};
pub use temporal::{check_temporal, check_temporal_model, TEMPORAL_NOT_APPLICABLE};

pub use object_probe::ProbeWindow;
pub use rejection::Rejection;
use rejection::{model_rejection, probe_rejection, run_rejection, store_rejection, unusable};

/// What a submitter asks for, whichever entrance it came through.
#[derive(Debug, Clone)]
pub struct Submission {
    /// An absolute path or an object URL (relative paths are refused: they would depend on
    /// where the process was started; the CLI makes them absolute first).
    pub input: String,
    pub output: String,
    pub model: ModelSource,
    /// The device whose kind the job is pinned for.
    pub device: Device,
    pub precision: Precision,
    pub input_range: Option<InputRange>,
    pub channel_order: Option<ChannelOrder>,
    /// As asked for; the encoder is resolved for the output's container by the build.
    pub options: VideoOptions,
    pub chunk_frames: Option<u64>,
    pub priority: i32,
    pub budgets: RetryBudgets,
    /// The scoring flags and sampling, for a records output (`.jsonl`/`.parquet`); `None`
    /// for a video or image output (a records output with `None` scores with the card alone).
    pub scoring: Option<ScoringAsk>,
}

/// The model of a [`Submission`].
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// A registry style.
    Style(String),
    /// A model file (an absolute path).
    File(String),
    /// A model the caller checked and pinned already (`fresco run` has loaded it); its device
    /// kind and precision are the job's.
    Pinned(ModelPin),
}

/// A submission that passed every check: the queue's job and the spec it carries.
#[derive(Debug, Clone)]
pub struct Built {
    pub job: NewJob,
    pub spec: JobSpec,
}

impl Built {
    /// The queue's job for `spec`, submitted as `submission`, under `identity`.
    fn new(spec: JobSpec, identity: String, submission: &Submission) -> Built {
        let job = NewJob {
            identity,
            input: spec.input.display().to_string(),
            output: spec.output.display().to_string(),
            spec: spec.to_json(),
            device_kind: spec.model.device_kind,
            priority: submission.priority,
            budgets: submission.budgets,
            idempotency_key: None,
        };
        Built { job, spec }
    }
}

/// How long ffprobe may take on a submitted input.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Makes jobs of submissions: what every entrance checks, with the model's bytes inspected
/// statically (never loaded by a runtime) to prove it is a usable image model and to pin the
/// digest of its bytes. The settings default to the API server's; the CLI loosens the limits.
#[derive(Debug, Clone)]
pub struct Submitter {
    registry: Registry,
    tools: Tools,
    allow_download: bool,
    device: Device,
    /// The device kinds a request may name (`None`: any).
    served_kinds: Option<Vec<DeviceKind>>,
    /// The data store's folder or prefix URL: relative names resolve in it.
    data_root: Option<String>,
    /// Where inputs and outputs may be (`None`: anywhere; see [`fresco_wire::limits`]).
    paths: Option<PathRules>,
    /// A submitter's namespace and shares (the server's tenancy), for the files the checks
    /// find on their own: the card beside a model and the labels a card names. `None`: the
    /// server's roots alone.
    within: Option<PathRules>,
    /// How large an input may be.
    limits: InputLimits,
    /// How much of an object input's head and tail is read to probe it.
    probe_window: ProbeWindow,
    /// Where an object input's probe file goes (`None`: the system's temporary folder).
    scratch_dir: Option<PathBuf>,
    /// The limits a submitted model file is held to.
    model_budget: ModelBudget,
    /// Whether a records job's model is loaded with ONNX Runtime here to resolve its scoring
    /// plan (`fresco run`: the user's own model in their own process), or the plan is read
    /// from the interface the file declares (the default, and `fresco jobs submit`, so that
    /// it and the API refuse in the same words: a server never builds a session for a
    /// stranger's bytes).
    load_scoring_models: bool,
}

impl Default for Submitter {
    fn default() -> Self {
        Submitter::new(Registry::from_env())
    }
}

impl Submitter {
    /// Models from `registry`; zoo styles may be downloaded (as `fresco jobs submit` does);
    /// jobs are pinned for CPU workers.
    pub fn new(registry: Registry) -> Self {
        Submitter {
            registry,
            tools: Tools::default(),
            allow_download: true,
            load_scoring_models: false,
            device: Device::Cpu,
            served_kinds: None,
            data_root: None,
            paths: None,
            within: None,
            limits: InputLimits::default(),
            probe_window: ProbeWindow::default(),
            scratch_dir: None,
            model_budget: ModelBudget::default(),
        }
    }

    /// The limits a submitted model is held to (size, nodes, opsets, folded constants).
    pub fn model_budget(mut self, budget: ModelBudget) -> Self {
        self.model_budget = budget;
        self
    }

    /// Whether a missing zoo style may be downloaded while a request waits.
    /// Loads records jobs' models here (see [`Submitter`]'s `load_scoring_models`): for
    /// `fresco run`, whose user scores their own model in their own process.
    pub fn load_scoring_models(mut self, load: bool) -> Self {
        self.load_scoring_models = load;
        self
    }

    pub fn allow_download(mut self, allow: bool) -> Self {
        self.allow_download = allow;
        self
    }

    /// The kind of device the jobs are pinned for (the model is still checked on the CPU).
    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// The device kinds this deployment has workers for: a request for another kind is refused
    /// (422 `device-not-served`) rather than queued to wait for a worker that never comes.
    pub fn served_kinds(mut self, kinds: Vec<DeviceKind>) -> Self {
        self.served_kinds = Some(kinds);
        self
    }

    /// The data store (an absolute folder or a prefix URL) in which a submission's relative
    /// `input` and `output` (e.g. `uploads/ID/clip.mp4` from `POST /v1/uploads`) are objects.
    pub fn data_root(mut self, root: String) -> Self {
        self.data_root = Some(root);
        self
    }

    /// Restricts inputs and outputs to the roots of `rules` (400 `path-not-allowed`).
    pub fn paths(mut self, rules: PathRules) -> Self {
        self.paths = Some(rules);
        self
    }

    /// Confines the files the checks find on their own to `rules` (a submitter's namespace and
    /// shares): a card beside the model that leads out of them is no card, and labels a card
    /// names outside them answer as a labels file that does not exist. The locations a request
    /// names are the tenancy's to place and check before the request gets here.
    pub fn within(mut self, rules: PathRules) -> Self {
        self.within = Some(rules);
        self
    }

    /// Whether `path`, a file the checks found on their own, may be read for this submission.
    fn may_read(&self, field: &str, path: &Path) -> bool {
        self.within
            .as_ref()
            .is_none_or(|rules| rules.check(field, &path.display().to_string()).is_ok())
    }

    /// The card beside a model file that this submission may read (see [`Submitter::within`]).
    pub(crate) fn card_beside(&self, model: &Path) -> Option<PathBuf> {
        card_beside(model).filter(|card| self.may_read("scoring.model_card", card))
    }

    /// Limits on the input's bytes, duration and frame size (400 before queueing).
    pub fn limits(mut self, limits: InputLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The request with its relative names placed in the data store (the input, the output,
    /// and the scoring section's labels and card, which a submitter uploads like an input).
    fn in_data_store(&self, request: &SubmitRequest) -> Result<SubmitRequest, Rejection> {
        let mut request = request.clone();
        if let Some(root) = &self.data_root {
            request.input = data_name("input", root, &request.input)?;
            if let Some(scoring) = &mut request.scoring {
                for (field, file) in [
                    ("scoring.labels", &mut scoring.labels),
                    ("scoring.model_card", &mut scoring.model_card),
                ] {
                    if let Some(text) = file {
                        *text = data_name(field, root, text)?;
                    }
                }
            }
            let output = data_name("output", root, &request.output)?;
            if output != request.output && !root.contains("://") {
                // Users cannot make folders in the data store: its sub-folders are made as
                // outputs name them (object stores have none to make).
                if let Some(parent) = Path::new(&output).parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
            }
            request.output = output;
        }
        Ok(request)
    }

    /// How much of the start and of the end of an object input is read to probe it.
    pub fn probe_window(mut self, window: ProbeWindow) -> Self {
        self.probe_window = window;
        self
    }

    /// The folder for the sparse file an object input is probed in (a window's worth of disk
    /// twice at most; default: the system's temporary folder).
    pub fn scratch_dir(mut self, dir: PathBuf) -> Self {
        self.scratch_dir = Some(dir);
        self
    }

    /// An API request (after [`SubmitRequest::validate`]) as a [`Submission`], built: its
    /// relative names are placed in the data store, its device and precision read. Blocks
    /// (ffprobe, reading the model); the returned job's `idempotency_key` is the caller's to set.
    pub fn build_request(&self, request: &SubmitRequest) -> Result<Built, Rejection> {
        let request = &self.in_data_store(request)?;
        let submission = self.submission_of(request)?;
        match dataset::requested(request)? {
            Some(dataset) => self.build_dataset(&submission, &dataset),
            None => self.build(&submission),
        }
    }

    /// A dataset job over a manifest that the server itself wrote (the dataset trigger's
    /// batches): `request` as [`Submitter::build_request`] takes a dataset (its `dataset`
    /// given), with `input` the manifest's absolute path or object URL. Manifests are not taken
    /// from submitters (their lines could name anything); this is for the server's own.
    pub fn build_manifest_request(&self, request: &SubmitRequest) -> Result<Built, Rejection> {
        let request = &self.in_data_store(request)?;
        let submission = self.submission_of(request)?;
        let Some(dataset) = dataset::requested(request)? else {
            return Err(Rejection::Internal(
                "a manifest job needs its dataset options".into(),
            ));
        };
        let dataset = fresco_core::dataset::DatasetSpec {
            source: fresco_core::dataset::DatasetSource::Manifest {
                path: PathBuf::from(&request.input),
            },
            ..dataset
        };
        self.build_dataset(&submission, &dataset)
    }

    /// What an API request asks for, as a [`Submission`] (its names already placed).
    fn submission_of(&self, request: &SubmitRequest) -> Result<Submission, Rejection> {
        let model = match request.model_ref().map_err(|e| Rejection::BadField {
            code: e.code,
            message: e.message,
        })? {
            ModelRef::Style(style) => ModelSource::Style(style),
            ModelRef::File(path) => ModelSource::File(path),
        };
        let defaults = RetryBudgets::default();
        let submission = Submission {
            input: request.input.clone(),
            output: request.output.clone(),
            model,
            device: device_of(request.device.as_deref(), self.device)?,
            precision: precision_text(request.precision.as_deref())?,
            input_range: None,
            channel_order: None,
            options: video_options(request),
            scoring: scoring_ask(request)?,
            chunk_frames: request.chunk_frames,
            priority: request.priority,
            budgets: RetryBudgets {
                max_attempts: request.max_attempts.unwrap_or(defaults.max_attempts),
                max_expiries: request.max_expiries.unwrap_or(defaults.max_expiries),
            },
        };
        Ok(submission)
    }

    /// Checks a submission and makes its job: file checks, ffprobe and the model's static
    /// inspection. Blocks; from async code, call it on a blocking thread inside a tokio
    /// runtime (object stores are asked through it).
    pub fn build(&self, submission: &Submission) -> Result<Built, Rejection> {
        if let Some(rules) = &self.paths {
            rules.check("input", &submission.input)?;
            rules.check("output", &submission.output)?;
        }
        let input_url = object_url("input", &submission.input)?;
        let output_url = object_url("output", &submission.output)?;
        let input = match &input_url {
            Some(_) => PathBuf::from(&submission.input),
            None => absolute_path("input", &submission.input)?,
        };
        let output = match &output_url {
            Some(_) => PathBuf::from(&submission.output),
            None => absolute_path("output", &submission.output)?,
        };
        let records = RecordFormat::from_path(&output).is_some();
        if scoring::asks_segment(submission) {
            return Err(scoring::segment_needs_dataset(&submission.input));
        }
        if submission.options.temporal {
            check_temporal(&input, &output, false)?;
        }
        check_sink(records, submission, &output)?;
        let mut options = fresco_pipeline::container::for_output(&submission.options, &output);
        // The worker's plan checks these again, on what its frame scan measures.
        options.limits = self.limits.media();
        let input_object = match &input_url {
            Some(url) => {
                let info = input_object(url)?;
                self.limits.check_bytes("input", info.size)?;
                Some(info)
            }
            None => {
                check_input_file(&input).map_err(run_rejection)?;
                self.limits.check_file("input", &input)?;
                None
            }
        };
        if input == output || same_file(&input, &output) {
            return Err(run_rejection(RunError::SameFile { input, output }));
        }
        match &output_url {
            Some(url) => check_output_object(url, &output, options.overwrite)?,
            None => check_output_target(&output, options.overwrite).map_err(run_rejection)?,
        }
        // A probe and a plan (no frame scan) reject what is not a video before workers see it.
        match (&input_url, &input_object) {
            (Some(url), Some(info)) => {
                self.check_object_input(url, info, &output, &options, records)?
            }
            // Records need no encoder: the probe alone says whether the input is a video.
            _ if records => {
                let report =
                    probe(&self.tools.ffprobe, &input, PROBE_TIMEOUT).map_err(probe_rejection)?;
                self.limits.check_probe("input", &report)?;
                check_has_video(&input, &report)?;
            }
            _ => {
                let report =
                    probe(&self.tools.ffprobe, &input, PROBE_TIMEOUT).map_err(probe_rejection)?;
                self.limits.check_probe("input", &report)?;
                let plan =
                    fresco_pipeline::plan::video_settings(&input, &output, &report, &options)
                        .map_err(run_rejection)?;
                // One frame from ffmpeg's own generator (not the input) into the output's
                // container: a codec it cannot hold, or ffmpeg lacks, is refused now. Not a
                // hardware encoder: the checks need no GPU; the plan task tries those.
                if !fresco_pipeline::hardware::is_hardware_encoder(&plan.encode.codec) {
                    fresco_pipeline::container::check_video_encoder(&self.tools, &plan)
                        .map_err(run_rejection)?;
                }
            }
        }
        let (model, scoring) = if records {
            let (pin, scoring) = self.pin_scoring(submission)?;
            // A card's task may say segment where no flag did.
            if scoring.settings.task.as_deref() == Some("segment") {
                return Err(scoring::segment_needs_dataset(&submission.input));
            }
            (pin, Some(scoring))
        } else {
            (self.pin(submission)?, None)
        };
        let located = |path: &Path, url: &Option<ObjectUrl>| match url {
            Some(_) => path.to_path_buf(),
            None => absolute(path),
        };
        let spec = JobSpec {
            input: located(&input, &input_url),
            output: located(&output, &output_url),
            model,
            options,
            chunk_frames: submission.chunk_frames,
            scoring,
            dataset: None,
        };
        let identity = spec.identity_from(&match &input_object {
            Some(info) => fresco_store::fingerprint_with_object(&spec.input, Some(info)),
            None => fresco_store::fingerprint(&spec.input),
        });
        Ok(Built::new(spec, identity, submission))
    }

    /// The submission's model, checked statically (no ONNX Runtime session is built here) and
    /// pinned by its digest, for a device kind this deployment serves.
    fn pin(&self, submission: &Submission) -> Result<ModelPin, Rejection> {
        let choice = match &submission.model {
            ModelSource::Pinned(pin) => {
                self.check_device(pin.device_kind)?;
                return Ok(pin.clone());
            }
            ModelSource::Style(style) => ModelChoice::Style(style.clone()),
            ModelSource::File(path) => {
                // A model file is read whole: the same roots as input and output, and a
                // regular file of a bounded size (not /dev/zero).
                if let Some(rules) = &self.paths {
                    rules.check("model", path)?;
                }
                let path = absolute_path("model", path)?;
                check_model_file(&path, self.model_budget.max_bytes)?;
                ModelChoice::File(path)
            }
        };
        let device = submission.device;
        self.check_device(device.kind())?;
        check_precision(submission.precision, device)?;
        let model = check_model(
            &choice,
            &self.registry,
            self.allow_download,
            &self.model_budget,
        )
        .map_err(|e| match submission.options.temporal {
            true => temporal::temporal_model(model_rejection(e)),
            false => model_rejection(e),
        })?;
        let card = submission.scoring.as_ref().and_then(|a| a.card.as_deref());
        if let Some(path) = card {
            // Read whole, from where inputs may be read.
            if let Some(rules) = &self.paths {
                rules.check("scoring.model_card", &path.display().to_string())?;
            }
        }
        let input = (
            model.inspected.input_name.as_str(),
            model.inspected.input_shape.as_slice(),
        );
        let beside = match (card, &choice) {
            (None, ModelChoice::File(file)) => self.card_beside(file),
            _ => None,
        };
        let image_card = scoring::image_card_at(card.map(absolute).or(beside), Some(input))?;
        Ok(ModelPin {
            choice,
            name: model.name.clone(),
            digest: model.digest.clone(),
            input_range: submission.input_range,
            channel_order: submission.channel_order,
            device_kind: device.kind(),
            precision: submission.precision,
            image_card,
        })
    }

    /// A kind of device this deployment has workers for (see [`Submitter::served_kinds`]).
    fn check_device(&self, kind: DeviceKind) -> Result<(), Rejection> {
        match &self.served_kinds {
            Some(kinds) if !kinds.contains(&kind) => Err(Rejection::Unusable {
                code: "device-not-served",
                message: format!(
                    "device: this server queues jobs for {} only (fresco serve \
                     --job-devices); a {kind} job would wait for a worker that is not there",
                    kinds
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// The options `fresco run` would use for the same flags.
pub fn video_options(request: &SubmitRequest) -> VideoOptions {
    let defaults = EncodeSettings::default();
    VideoOptions {
        encode: EncodeSettings {
            codec: request.codec.clone().unwrap_or(defaults.codec),
            crf: request.crf.or(defaults.crf),
            preset: request.preset.clone().or(defaults.preset),
            pix_fmt: request.pix_fmt.clone(),
            threads: None,
        },
        max_side: request.max_side,
        drop_streams: request.drop_streams.iter().map(|&k| k.into()).collect(),
        overwrite: request.overwrite,
        // Checked by the request's validation; `none` is software decoding.
        hwaccel: request
            .hwaccel
            .as_deref()
            .and_then(|h| fresco_core::settings::parse_hwaccel(h).ok().flatten()),
        limits: fresco_core::MediaLimits::none(),
        temporal: request.temporal,
        model_size: None,
    }
}

/// A relative name (`uploads/ID/clip.mp4`) as a path or URL in the data store `root`; absolute
/// paths and URLs are returned as they are. `.`/`..` segments, empty segments and backslashes
/// are refused, so a name cannot leave the data store.
fn data_name(field: &str, root: &str, text: &str) -> Result<String, Rejection> {
    if text.contains("://") || Path::new(text).is_absolute() || text.is_empty() {
        return Ok(text.to_string());
    }
    // A control character too: a URL parser drops tabs and line breaks, so `.\t.` under a
    // `file://` data store would become `..` when the store is opened.
    let bad = text.contains('\\')
        || text.chars().any(char::is_control)
        || text
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..");
    if bad {
        return Err(Rejection::BadField {
            code: "bad-path",
            message: format!(
                "{field}: '{}' is not a name in the data store (no empty, '.' or '..' segments, no backslashes or control characters)",
                text.escape_default()
            ),
        });
    }
    Ok(if root.contains("://") {
        format!("{}/{text}", root.trim_end_matches('/'))
    } else {
        Path::new(root).join(text).display().to_string()
    })
}

/// Paths are the server's own: a relative one would depend on where the server was started.
fn absolute_path(field: &str, text: &str) -> Result<PathBuf, Rejection> {
    let path = PathBuf::from(text);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(Rejection::BadField {
            code: "path-not-absolute",
            message: format!("{field}: '{text}' must be an absolute path on the server"),
        })
    }
}

/// A model path that exists must be a regular file of at most `max_bytes` (checked before the
/// server reads it); a missing one is left to the model loader, whose message names it.
fn check_model_file(path: &Path, max_bytes: u64) -> Result<(), Rejection> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if !meta.is_file() {
        return Err(Rejection::BadField {
            code: "model-not-a-file",
            message: format!("model: {} is not a regular file", path.display()),
        });
    }
    if meta.len() > max_bytes {
        // The same answer as the static inspection's, without reading the file.
        return Err(unusable(
            "model-too-large",
            fresco_infer::inspect::InspectError::TooLarge {
                model: path.display().to_string(),
                bytes: meta.len(),
                limit: max_bytes,
            },
        ));
    }
    Ok(())
}

/// The object a field names when it is a URL (`scheme://...`), `None` for a path.
fn object_url(field: &str, text: &str) -> Result<Option<ObjectUrl>, Rejection> {
    ObjectUrl::of(Path::new(text))
        .transpose()
        .map_err(|e| Rejection::BadField {
            code: "bad-url",
            message: format!("{field}: {e}"),
        })
}

/// Runs a store request from the blocking thread the checks run on.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Handle::current().block_on(future)
}

/// The input object's size and ETag; a missing or empty object is refused.
fn input_object(url: &ObjectUrl) -> Result<ObjectInfo, Rejection> {
    let store = url.open().map_err(|e| store_rejection(url, e))?;
    let info = block_on(store.head(&url.key)).map_err(|e| store_rejection(url, e))?;
    match info {
        None => Err(no_such_object(url, &store)),
        Some(info) if info.size == 0 => Err(unusable(
            "input-empty",
            format!("{}: the object is empty (0 bytes)", url.url),
        )),
        Some(info) => Ok(info),
    }
}

fn no_such_object(url: &ObjectUrl, store: &fresco_store::Store) -> Rejection {
    unusable(
        "input-missing",
        format!("{}: no such object in {}", url.url, store.display_url()),
    )
}

/// The answer the checks give when the location `text` of `field` (`input`, `output`, `model`,
/// `scoring.labels`, `scoring.model_card`) does not exist: the same status, code and message. The server's tenancy answers so for every
/// location outside a submitter's namespace, whether or not it exists, so that existence
/// cannot be probed there. (An output that does not exist is written, so an output's answer is
/// the one for a folder that does not exist.)
pub fn missing(field: &str, text: &str) -> Rejection {
    let url = object_url(field, text).ok().flatten();
    let path = PathBuf::from(text);
    match (field, url) {
        ("input", Some(url)) => match url.open() {
            Ok(store) => no_such_object(&url, &store),
            Err(e) => store_rejection(&url, e),
        },
        ("input", None) => run_rejection(RunError::InputMissing { path }),
        ("model", _) => model_rejection(ModelError::FileMissing { path }),
        ("scoring.model_card" | "scoring.labels", _) => missing_file(field, text),
        (_, url) => {
            let folder = match &url {
                Some(url) => url
                    .url
                    .rsplit_once('/')
                    .map_or(url.url.clone(), |(folder, _)| folder.to_string()),
                None => path
                    .parent()
                    .unwrap_or(Path::new("/"))
                    .display()
                    .to_string(),
            };
            run_rejection(RunError::OutputUnwritable {
                path,
                reason: format!("folder {folder} does not exist"),
            })
        }
    }
}

/// [`missing`] for the labels and the card: files of the server, never URLs (`scoring_ask`
/// refuses those from the text alone); else as `ModelCard::load` and `Labels::load` answer for
/// a file that is not there.
fn missing_file(field: &str, text: &str) -> Rejection {
    if let Err(refused) = absolute_path(field, text) {
        return refused;
    }
    let path = text.to_string();
    let reason = std::io::Error::from_raw_os_error(2).to_string();
    if field == "scoring.labels" {
        unusable(
            "model-scoring",
            fresco_score::CardError::Labels { path, reason },
        )
    } else {
        unusable("model-card", fresco_score::CardError::Read { path, reason })
    }
}

/// An output object may exist only with `overwrite`.
fn check_output_object(url: &ObjectUrl, output: &Path, overwrite: bool) -> Result<(), Rejection> {
    let store = url.open().map_err(|e| store_rejection(url, e))?;
    let existing = block_on(store.head(&url.key)).map_err(|e| store_rejection(url, e))?;
    if existing.is_some() && !overwrite {
        return Err(run_rejection(RunError::OutputExists {
            path: output.to_path_buf(),
        }));
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The kind of device a submission's job is pinned for: its `device` ("cpu" or "cuda"), or the
/// server's (`--device`). The server itself needs no GPU: it checks the model without a runtime.
fn device_of(text: Option<&str>, server: Device) -> Result<Device, Rejection> {
    match text {
        None => Ok(server),
        Some("cpu") => Ok(Device::Cpu),
        Some("cuda") => Ok(Device::Cuda(0)),
        Some(other) => Err(Rejection::BadField {
            code: "invalid-field",
            message: format!("device: expected cpu or cuda, got {other:?}"),
        }),
    }
}

/// The `precision` of an API request: absent means fp32.
fn precision_text(text: Option<&str>) -> Result<Precision, Rejection> {
    match text {
        None => Ok(Precision::Fp32),
        Some(text) => text
            .parse()
            .map_err(|e: UnknownPrecision| Rejection::BadField {
                code: "bad-precision",
                message: format!("precision: {e}"),
            }),
    }
}

/// fp16 needs jobs pinned for CUDA.
fn check_precision(precision: Precision, device: Device) -> Result<(), Rejection> {
    fresco_infer::fp16::check_device(precision, device).map_err(|e| Rejection::Unusable {
        code: "precision-needs-cuda",
        message: format!(
            "precision: this job is pinned for the {device} ({e}; the request's device or the server's --device sets it)"
        ),
    })
}

/// The precision of an API request, checked against the device its job is pinned for.
#[cfg(test)]
fn precision_of(text: Option<&str>, device: Device) -> Result<Precision, Rejection> {
    let precision = precision_text(text)?;
    check_precision(precision, device)?;
    Ok(precision)
}

#[cfg(test)]
mod tests;

/// A records job's input must hold a video stream (it needs no encoder).
fn check_has_video(
    input: &Path,
    report: &fresco_media::probe::ProbeReport,
) -> Result<(), Rejection> {
    if report.video_stream().is_some() {
        return Ok(());
    }
    let streams = report
        .streams
        .iter()
        .map(|s| s.codec_type.clone())
        .collect::<Vec<_>>();
    Err(run_rejection(RunError::NoVideo {
        path: input.to_path_buf(),
        streams: if streams.is_empty() {
            "no streams".into()
        } else {
            streams.join(", ")
        },
    }))
}
