//! The JSON bodies of the API, with their OpenAPI schemas. They mirror the queue's records rather
//! than serialising them directly, so that a change to the database's rows does not silently
//! change the API; every conversion matches each variant, so a new state forces a decision here.
//!
//! The submission body, [`SubmitRequest`], lives in `fresco-wire` (with the other parsers of
//! outside input, so that the fuzz targets need not build the server) and is re-exported here.

use fresco_core::{JobState, TaskKind, TaskState};
use fresco_queue::{JobRecord, TaskRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

pub use fresco_wire::submit::{ModelRef, StreamKindView, SubmitRequest};

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
    /// Whether the job is steadied (`temporal` of its submission, pinned in its spec).
    #[serde(default)]
    pub temporal: bool,
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
            temporal: fresco_core::JobSpec::temporal_in(&job.spec),
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
