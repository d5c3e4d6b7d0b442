//! The JSON bodies of the API, with their OpenAPI schemas. They mirror the queue's records rather
//! than serialising them directly, so that a change to the database's rows does not silently
//! change the API; every conversion matches each variant, so a new state forces a decision here.
//!
//! Field bounds appear twice on purpose: once in the `#[schema]` attributes (what clients and
//! contract tests are told) and once in [`SubmitRequest::validate`] (what the server enforces).
//! The contract test fails when the two disagree.

use fresco_core::{JobState, StreamKind, TaskKind, TaskState};
use fresco_queue::{JobRecord, TaskRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

/// A job to submit. Exactly one of `style` and `model` must be given.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The video to style: an absolute path on the server's machine, or an object URL (`az://container/path`, `s3://bucket/key`, `file:///path`).
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\x00]+$",
        example = "/data/in.mp4"
    )]
    pub input: String,
    /// Where the styled video goes: an absolute path on the server's machine, or an object URL.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\x00]+$",
        example = "/data/out.mp4"
    )]
    pub output: String,
    /// A named style: mosaic, candy, udnie, rain-princess, pointilism, or the built-in vintage.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[a-z0-9][a-z0-9-]*$",
        example = "mosaic"
    )]
    pub style: Option<String>,
    /// Any ONNX image-to-image model file: an absolute path on the server's machine.
    #[schema(min_length = 1, max_length = 4096, pattern = r"^[^\x00]+$")]
    pub model: Option<String>,
    /// Numeric precision the workers run the model in: fp32 (default), or fp16 (the model is
    /// converted to half precision when loaded; only where jobs are pinned for CUDA GPUs).
    #[schema(pattern = r"^(fp32|fp16)$", example = "fp32")]
    pub precision: Option<String>,
    /// ffmpeg encoder (default libx264).
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z0-9_.+-]+$",
        example = "libx264"
    )]
    pub codec: Option<String>,
    /// Constant rate factor (default 18; lower is better).
    #[serde(default, deserialize_with = "integer::optional")]
    #[schema(minimum = 0, maximum = 63)]
    pub crf: Option<u8>,
    /// Encoder preset (default medium).
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_.+-]+$")]
    pub preset: Option<String>,
    /// Output pixel format (default: yuv420p, or yuv420p10le for deeper input).
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_.+-]+$")]
    pub pix_fmt: Option<String>,
    /// Score frames downscaled so that their longer side is at most this, then scale back.
    #[serde(default, deserialize_with = "integer::optional")]
    #[schema(minimum = 1, maximum = 16384)]
    pub max_side: Option<u32>,
    /// Stream kinds not to copy from the input.
    #[serde(default)]
    pub drop_streams: Vec<StreamKindView>,
    /// Replace an output that already exists.
    #[serde(default)]
    pub overwrite: bool,
    /// Frames per chunk (default: about 30 s of model time each, from a calibration).
    #[serde(default, deserialize_with = "integer::optional")]
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub chunk_frames: Option<u64>,
    /// Higher runs first (default 0).
    #[serde(default, deserialize_with = "integer::required")]
    #[schema(minimum = -1_000_000, maximum = 1_000_000)]
    pub priority: i32,
    /// Errors a chunk may report before the job fails (default 3).
    #[serde(default, deserialize_with = "integer::optional")]
    #[schema(minimum = 1, maximum = 100)]
    pub max_attempts: Option<u32>,
    /// Leases a chunk may lose (its worker died) before the job fails (default 10).
    #[serde(default, deserialize_with = "integer::optional")]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_expiries: Option<u32>,
    /// http(s) URL to POST the job's JSON to once it ends (succeeded, failed or canceled).
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$",
        example = "https://example.com/hooks/fresco"
    )]
    pub callback_url: Option<String>,
}

/// Integers as JSON Schema defines them: any number without a fractional part, so `5.0` is the
/// integer 5 (serde alone refuses it, and a schema-valid request must not be refused).
mod integer {
    use serde::de::{Deserialize, Deserializer, Error};
    use serde_json::Number;

    fn convert<T: TryFrom<i128>, E: Error>(n: &Number) -> Result<T, E> {
        let whole = if let Some(i) = n.as_i64() {
            Some(i128::from(i))
        } else if let Some(u) = n.as_u64() {
            Some(i128::from(u))
        } else {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e30)
                .map(|f| f as i128)
        };
        whole
            .and_then(|w| T::try_from(w).ok())
            .ok_or_else(|| E::custom(format!("expected an integer in range, got {n}")))
    }

    pub fn required<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
        convert(&Number::deserialize(d)?)
    }

    pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<i128>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        Option::<Number>::deserialize(d)?
            .map(|n| convert(&n))
            .transpose()
    }
}

/// The model a submission names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    Style(String),
    File(String),
}

impl SubmitRequest {
    /// Checks every field on its own (no file system access): 400 with the field named.
    pub fn validate(&self) -> Result<(), ApiError> {
        path_field("input", &self.input)?;
        path_field("output", &self.output)?;
        self.model_ref()?;
        if let Some(style) = &self.style {
            let ok = style.len() <= 64
                && style.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && style
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(field_error(
                    "style",
                    "a style name is lowercase letters, digits and '-' (e.g. mosaic)",
                ));
            }
        }
        if let Some(model) = &self.model {
            path_field("model", model)?;
        }
        if let Some(precision) = &self.precision {
            if precision != "fp32" && precision != "fp16" {
                return Err(field_error(
                    "precision",
                    &format!("expected fp32 or fp16, got {:?}", precision),
                ));
            }
        }
        for (name, value) in [
            ("codec", &self.codec),
            ("preset", &self.preset),
            ("pix_fmt", &self.pix_fmt),
        ] {
            if let Some(value) = value {
                encoder_token(name, value)?;
            }
        }
        bounded("crf", self.crf.map(u64::from), 0, 63)?;
        bounded("max_side", self.max_side.map(u64::from), 1, 16384)?;
        bounded("chunk_frames", self.chunk_frames, 1, 1_000_000_000)?;
        bounded("max_attempts", self.max_attempts.map(u64::from), 1, 100)?;
        bounded("max_expiries", self.max_expiries.map(u64::from), 1, 1000)?;
        if !(-1_000_000..=1_000_000).contains(&self.priority) {
            return Err(field_error(
                "priority",
                "must be between -1000000 and 1000000",
            ));
        }
        if let Some(url) = &self.callback_url {
            callback_url(url)?;
        }
        Ok(())
    }

    /// The style or model file; exactly one must be given (a `null` counts as absent).
    pub fn model_ref(&self) -> Result<ModelRef, ApiError> {
        match (&self.style, &self.model) {
            (Some(style), None) => Ok(ModelRef::Style(style.clone())),
            (None, Some(model)) => Ok(ModelRef::File(model.clone())),
            (Some(_), Some(_)) => Err(ApiError::bad_request(
                "conflicting-fields",
                "give either 'style' or 'model', not both",
            )),
            (None, None) => Err(ApiError::bad_request(
                "missing-field",
                "give 'style' (a named style such as mosaic) or 'model' (an ONNX file)",
            )),
        }
    }
}

fn field_error(field: &str, what: &str) -> ApiError {
    ApiError::bad_request("invalid-field", format!("{field}: {what}"))
}

fn path_field(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > 4096 || value.contains('\0') {
        return Err(field_error(
            field,
            "must be a path of 1 to 4096 bytes without NUL characters",
        ));
    }
    Ok(())
}

fn encoder_token(field: &str, value: &str) -> Result<(), ApiError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'));
    if ok {
        Ok(())
    } else {
        Err(field_error(
            field,
            "must be 1 to 64 characters of letters, digits, '_', '.', '+' or '-' (an ffmpeg name)",
        ))
    }
}

fn bounded(field: &str, value: Option<u64>, min: u64, max: u64) -> Result<(), ApiError> {
    match value {
        Some(v) if v < min || v > max => Err(field_error(
            field,
            &format!("must be between {min} and {max}, got {v}"),
        )),
        _ => Ok(()),
    }
}

/// Checks what the schema's pattern says, `^https?://HOST(:PORT)?(/PATH)?$`, by hand: a URL
/// library would refuse some hosts the pattern allows (a schema-valid request must not be
/// refused), and one that cannot be reached fails at call time, in the log.
fn callback_url(text: &str) -> Result<(), ApiError> {
    let ok = text.len() <= 2048
        && text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("https://"))
            .is_some_and(|rest| {
                let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let (host, port) = match authority.split_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (authority, None),
                };
                !host.is_empty()
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                    && port.is_none_or(|p| {
                        (1..=5).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit())
                    })
                    && path.chars().all(|c| c.is_ascii_graphic())
            });
    if ok {
        Ok(())
    } else {
        Err(field_error(
            "callback_url",
            "must be an http:// or https:// URL: a host of letters, digits, '.' and '-', an optional port and a path of visible ASCII",
        ))
    }
}

/// A kind of non-video stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamKindView {
    Audio,
    Subtitle,
    Data,
    Attachment,
}

impl From<StreamKindView> for StreamKind {
    fn from(kind: StreamKindView) -> StreamKind {
        match kind {
            StreamKindView::Audio => StreamKind::Audio,
            StreamKindView::Subtitle => StreamKind::Subtitle,
            StreamKindView::Data => StreamKind::Data,
            StreamKindView::Attachment => StreamKind::Attachment,
        }
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum JobStateView {
    Queued,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl From<JobState> for JobStateView {
    fn from(state: JobState) -> Self {
        match state {
            JobState::Queued => JobStateView::Queued,
            JobState::Running => JobStateView::Running,
            JobState::Succeeded => JobStateView::Succeeded,
            JobState::Failed => JobStateView::Failed,
            JobState::Canceled => JobStateView::Canceled,
        }
    }
}

impl From<JobStateView> for JobState {
    fn from(state: JobStateView) -> Self {
        match state {
            JobStateView::Queued => JobState::Queued,
            JobStateView::Running => JobState::Running,
            JobStateView::Succeeded => JobState::Succeeded,
            JobStateView::Failed => JobState::Failed,
            JobStateView::Canceled => JobState::Canceled,
        }
    }
}

/// A job: where it stands, its progress and where its output goes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub id: String,
    /// Submission order; pass it as `before` to page through listings.
    pub seq: i64,
    pub state: JobStateView,
    pub priority: i32,
    pub input: String,
    /// The output location (written when the job succeeds).
    pub output: String,
    /// Fraction of frames done, 0 to 1 (0 until the job is planned).
    #[schema(minimum = 0, maximum = 1)]
    pub progress: f64,
    /// Frames in the input, once planned.
    pub frames_total: Option<u64>,
    pub frames_done: u64,
    pub chunks_total: u32,
    pub chunks_done: u32,
    /// Errors reported and leases lost, over all its tasks.
    pub attempts: u32,
    pub expiries: u32,
    pub max_attempts: u32,
    pub max_expiries: u32,
    pub last_error: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub enqueued_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
}

impl From<&JobRecord> for JobView {
    fn from(job: &JobRecord) -> Self {
        let progress = match job.frames_total {
            Some(total) if total > 0 => (job.frames_done as f64 / total as f64).clamp(0.0, 1.0),
            _ if job.state == JobState::Succeeded => 1.0,
            _ => 0.0,
        };
        JobView {
            id: job.id.clone(),
            seq: job.seq,
            state: job.state.into(),
            priority: job.priority,
            input: job.input.clone(),
            output: job.output.clone(),
            progress,
            frames_total: job.frames_total,
            frames_done: job.frames_done,
            chunks_total: job.chunks_total,
            chunks_done: job.chunks_done,
            attempts: job.attempts,
            expiries: job.expiries,
            max_attempts: job.max_attempts,
            max_expiries: job.max_expiries,
            last_error: job.last_error.clone(),
            enqueued_at_ms: job.enqueued_at_ms,
            started_at_ms: job.started_at_ms,
            finished_at_ms: job.finished_at_ms,
        }
    }
}

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKindView {
    Plan,
    Score,
    Assemble,
}

impl From<TaskKind> for TaskKindView {
    fn from(kind: TaskKind) -> Self {
        match kind {
            TaskKind::Plan => TaskKindView::Plan,
            TaskKind::Score => TaskKindView::Score,
            TaskKind::Assemble => TaskKindView::Assemble,
        }
    }
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TaskStateView {
    Pending,
    Leased,
    Done,
    Failed,
    Canceled,
}

impl From<TaskState> for TaskStateView {
    fn from(state: TaskState) -> Self {
        match state {
            TaskState::Pending => TaskStateView::Pending,
            TaskState::Leased => TaskStateView::Leased,
            TaskState::Done => TaskStateView::Done,
            TaskState::Failed => TaskStateView::Failed,
            TaskState::Canceled => TaskStateView::Canceled,
        }
    }
}

/// One task of a job: the plan, a chunk, or the assembly.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaskView {
    pub id: i64,
    pub kind: TaskKindView,
    /// The chunk's number (score tasks; 0 for plan and assemble).
    pub chunk: u32,
    /// The chunk's frames, `frame_start..frame_end` (empty for plan and assemble).
    pub frame_start: u64,
    pub frame_end: u64,
    pub state: TaskStateView,
    pub attempts: u32,
    pub expiries: u32,
    /// The worker holding it now, or that last held it.
    pub worker: Option<String>,
    pub lease_expires_at_ms: Option<i64>,
    pub not_before_ms: i64,
    pub last_error: Option<String>,
    pub finished_at_ms: Option<i64>,
}

impl From<&TaskRecord> for TaskView {
    fn from(task: &TaskRecord) -> Self {
        TaskView {
            id: task.id,
            kind: task.kind.into(),
            chunk: task.chunk,
            frame_start: task.frames.start,
            frame_end: task.frames.end,
            state: task.state.into(),
            attempts: task.attempts,
            expiries: task.expiries,
            worker: task.worker.clone(),
            lease_expires_at_ms: task.lease_expires_at_ms,
            not_before_ms: task.not_before_ms,
            last_error: task.last_error.clone(),
            finished_at_ms: task.finished_at_ms,
        }
    }
}

/// An error a task recorded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaskErrorView {
    pub task_id: i64,
    pub kind: TaskKindView,
    pub chunk: u32,
    pub error: String,
}

/// A job with its tasks and their errors.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobDetail {
    #[serde(flatten)]
    pub job: JobView,
    /// In order: plan, chunks, assemble.
    pub tasks: Vec<TaskView>,
    /// The last error of every task that recorded one.
    pub errors: Vec<TaskErrorView>,
}

impl JobDetail {
    pub fn new(job: &JobRecord, tasks: &[TaskRecord]) -> Self {
        JobDetail {
            job: job.into(),
            tasks: tasks.iter().map(TaskView::from).collect(),
            errors: tasks
                .iter()
                .filter_map(|t| {
                    t.last_error.as_ref().map(|e| TaskErrorView {
                        task_id: t.id,
                        kind: t.kind.into(),
                        chunk: t.chunk,
                        error: e.clone(),
                    })
                })
                .collect(),
        }
    }
}

/// One page of a listing, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobPage {
    pub jobs: Vec<JobView>,
    /// Pass as `before` for the next page; null on the last page.
    pub next: Option<i64>,
}

/// Filters and paging of `GET /v1/jobs`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only jobs in this state.
    pub state: Option<JobStateView>,
    /// At most this many jobs (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Only jobs submitted before the job with this `seq` (the `next` of the previous page).
    pub before: Option<i64>,
}

impl ListParams {
    pub const DEFAULT_LIMIT: u32 = 50;

    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(Self::DEFAULT_LIMIT),
            Some(n @ 1..=500) => Ok(n),
            Some(n) => Err(ApiError::bad_request(
                "invalid-query",
                format!("limit: must be between 1 and 500, got {n}"),
            )),
        }
    }
}

/// What `/healthz` and `/readyz` answer when all is well.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusBody {
    #[schema(example = "ok")]
    pub status: String,
}
