//! The durable job queue: jobs and their tasks (plan, score chunk, assemble) in a database that
//! any number of workers share.
//!
//! A worker [`Leases::claim`]s one task under a lease, renews it with [`Leases::heartbeat`]
//! while it works, and ends it with one of the `complete_*` verbs or [`Leases::fail`]. A worker
//! that dies simply stops renewing: the next claim after the lease runs out puts the task back
//! (counting a lease expiry, a budget separate from reported errors). Every change is one
//! transaction; the lease token fences a worker that lost its lease from touching the task again.
//!
//! Two backends behind [`Queue`], chosen by URL in [`open`]: SQLite (`sqlite://PATH`, one machine,
//! several processes) and PostgreSQL (`postgres://...`, many machines; `FOR UPDATE SKIP LOCKED`
//! claims and `LISTEN/NOTIFY` wake-ups). Both run the same test suite (`tests/backend.rs`).
//! Statements the two databases run alike are written once, in `src/shared/`, which each
//! backend compiles with its own connection type and clock; each backend's own file keeps only
//! what differs (connecting, locking, the claim, submission, notifications, lease expiry).
//!
//! The verbs come in small traits by role: [`Jobs`] (submit, steer and read jobs), [`Leases`]
//! (a worker's claim and lease), [`Workers`], [`JobLogs`] (logs and previews), [`Stats`],
//! [`Accounts`] (itself [`Tokens`], [`Sessions`], [`OwnedJobs`] and [`AuditTrail`]),
//! [`Deliveries`], [`DatasetItems`] (a dataset job's pinned listing) and [`TriggerBatches`] (the
//! dataset trigger's collected objects). [`Queue`] is all of
//! them together; a caller or a test double that needs one role names that role alone.
//!
//! Completion callbacks waiting to be sent are kept here too ([`Deliveries`], a role of its own),
//! so that they survive a restart and one server of several sends each.
//!
//! Claim order is fair across jobs: higher priority first, then by chunk number, then by
//! submission time, so chunk 0 of every job comes before chunk 1 of any: a long job does not
//! starve short ones queued after it.

use std::time::Duration;

use async_trait::async_trait;
use fresco_core::{DeviceKind, FrameRange, JobState, RetryBudgets, TaskKind, TaskState};
use serde::Serialize;

mod auth;
mod batches;
mod deliveries;
mod items;
mod postgres;
mod rows;
mod signal;
mod sqlite;
mod stats;

pub use auth::{
    check_share, check_token_name, hash_secret, new_secret, Accounts, Admission, AuditEntry,
    AuditFilter, AuditTrail, CapReached, IssuedToken, NewAudit, NewToken, OwnedJobs, Role,
    SessionRecord, Sessions, TokenRecord, Tokens, SHARE_MAX_CHARS, SHARE_PATTERN, TOKEN_PREFIX,
};
pub use batches::{
    BatchLease, BatchOutcome, BatchRecord, CollectedObject, TriggerBatches, MAX_BATCH_OBJECTS,
};
pub use deliveries::{Deliveries, DeliveryLease, DeliveryOutcome, DeliveryRecord, DeliveryState};
pub use items::{DatasetItems, ItemCounts, PinnedItem, PIN_BATCH};
pub use postgres::PgQueue;
pub use sqlite::SqliteQueue;

/// A job's id (a random UUID as text).
pub type JobId = String;

/// Errors of the queue itself (the database), not of the work.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("unsupported queue URL '{url}': use sqlite://PATH or postgres://USER@HOST/DB")]
    BadUrl { url: String },
    #[error("cannot open the queue database {url}: {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("queue database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("queue database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("no job with id '{0}'")]
    NoSuchJob(String),
    #[error("a token named '{0}' exists already (names are never reused)")]
    NameTaken(String),
    #[error("cap reached: {0}")]
    CapReached(CapReached),
    #[error("the queue database holds a value this fresco cannot read: {0}")]
    Corrupt(String),
}

pub type Result<T, E = QueueError> = std::result::Result<T, E>;

/// A job to add.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Identifies "the same job" (input fingerprint, model digest, options, output): while a job
    /// with this identity is queued or running, submitting it again returns that job.
    pub identity: String,
    /// For listings: where the job reads and writes.
    pub input: String,
    pub output: String,
    /// Everything a worker needs to do the job (opaque to the queue; JSON).
    pub spec: String,
    /// The kind of device the job was submitted for (its spec pins the same): the queue keeps
    /// it in a column of its own that claims filter by ([`ClaimFilter::device_kinds`]).
    pub device_kind: DeviceKind,
    /// Higher runs first. Default 0.
    pub priority: i32,
    pub budgets: RetryBudgets,
    /// A client's key for this submission: submitting again with the same key returns the job
    /// it made, whatever its state (HTTP `Idempotency-Key`).
    pub idempotency_key: Option<String>,
}

/// What [`Jobs::submit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// A new job was queued.
    New(JobId),
    /// A queued or running job with the same identity exists; nothing was added.
    Existing(JobId),
}

impl Submitted {
    pub fn id(&self) -> &str {
        match self {
            Submitted::New(id) | Submitted::Existing(id) => id,
        }
    }
}

/// A claimed task: the worker's right to work on it until the lease runs out.
#[derive(Debug, Clone)]
pub struct TaskLease {
    pub task_id: i64,
    pub job_id: JobId,
    pub kind: TaskKind,
    /// Score tasks: the chunk's number and frames. Plan/assemble: chunk 0, empty range.
    pub chunk: u32,
    pub frames: FrameRange,
    /// Fences this claim: every later call for the task must present it.
    pub token: String,
    /// Attempts (reported errors) and expiries so far, before this claim.
    pub attempts: u32,
    pub expiries: u32,
    /// The job's spec, as submitted.
    pub spec: String,
    /// The job's plan, once its plan task completed (None for the plan task itself).
    pub plan: Option<String>,
    /// What an earlier holder of this task recorded with [`Leases::checkpoint`].
    pub checkpoint: Option<String>,
}

/// Whether a lease is still held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStatus {
    Held,
    /// Reclaimed after expiry, or the job was canceled or failed: stop working on it.
    Lost,
}

/// What [`Leases::fail`] did with the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailOutcome {
    /// Pending again, claimable from this time (ms since the Unix epoch).
    Retrying { not_before_ms: i64 },
    /// The budget is spent (or the error is permanent): the task and its job failed.
    JobFailed,
    /// The lease was no longer held; nothing changed.
    LeaseLost,
}

/// Which tasks a claim may take.
#[derive(Debug, Clone, Default)]
pub struct ClaimFilter {
    /// Only tasks of these jobs (an embedded `fresco run` works on its own jobs only).
    pub jobs: Option<Vec<JobId>>,
    /// Only tasks of jobs submitted for these kinds of device ("cpu", "cuda"; see
    /// [`NewJob::device_kind`], as text). A worker claims for its own kind only: results differ
    /// in the last bits between devices, and a job's chunks must all be scored alike. `None`:
    /// any.
    pub device_kinds: Option<Vec<String>>,
}

impl ClaimFilter {
    /// Tasks of jobs of one device kind ("cpu" or "cuda").
    pub fn device_kind(kind: &str) -> ClaimFilter {
        ClaimFilter {
            jobs: None,
            device_kinds: Some(vec![kind.to_string()]),
        }
    }

    /// Whether the filter lets nothing through (an empty list of jobs or of device kinds).
    pub(crate) fn is_empty(&self) -> bool {
        self.jobs.as_ref().is_some_and(|j| j.is_empty())
            || self.device_kinds.as_ref().is_some_and(|d| d.is_empty())
    }
}

/// A job as listed.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    pub id: JobId,
    /// Submission order (1, 2, ...): the cursor for paging through listings.
    pub seq: i64,
    pub identity: String,
    pub state: JobState,
    pub priority: i32,
    pub input: String,
    pub output: String,
    #[serde(skip)]
    pub spec: String,
    /// The kind of device the job was submitted for ([`NewJob::device_kind`]).
    #[serde(skip)]
    pub device_kind: DeviceKind,
    #[serde(skip)]
    pub plan: Option<String>,
    /// Frames in the input (known once planned).
    pub frames_total: Option<u64>,
    /// Frames in chunks that are done.
    pub frames_done: u64,
    pub chunks_total: u32,
    pub chunks_done: u32,
    /// Errors reported and leases expired, over all its tasks.
    pub attempts: u32,
    pub expiries: u32,
    pub last_error: Option<String>,
    pub max_attempts: u32,
    pub max_expiries: u32,
    /// Milliseconds since the Unix epoch.
    pub enqueued_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// The name of the API token that submitted it (None: submitted without the API).
    pub owner: Option<String>,
}

/// A task as listed.
#[derive(Debug, Clone, Serialize)]
pub struct TaskRecord {
    pub id: i64,
    pub job_id: JobId,
    pub kind: TaskKind,
    pub chunk: u32,
    pub frames: FrameRange,
    pub state: TaskState,
    pub attempts: u32,
    pub expiries: u32,
    /// The worker holding it now, or that last held it.
    pub worker: Option<String>,
    pub lease_expires_at_ms: Option<i64>,
    pub not_before_ms: i64,
    pub last_error: Option<String>,
    pub finished_at_ms: Option<i64>,
}

/// What a worker says of itself.
#[derive(Debug, Clone)]
pub struct WorkerStatus {
    /// Unique among live workers (`host:pid:n`).
    pub name: String,
    pub host: String,
    /// "cpu", "cuda:0", ...
    pub device: String,
    /// "idle", "busy" or "stopped".
    pub state: String,
    /// What it works on, e.g. "score chunk 3 of job ID".
    pub current: Option<String>,
}

/// A worker as listed.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerRecord {
    pub name: String,
    pub host: String,
    pub device: String,
    pub state: String,
    pub current: Option<String>,
    /// Milliseconds since the Unix epoch (the database's clock on PostgreSQL).
    pub started_at_ms: i64,
    pub last_seen_ms: i64,
}

/// How much work the queue holds now, over all queued and running jobs: what an autoscaler
/// sizes its workers by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TaskCounts {
    /// Tasks waiting for a worker (also those backing off after an error). An assemble task
    /// that still waits for its job's chunks is not counted: no worker could take it.
    pub pending: u64,
    /// Tasks a worker holds under a lease.
    pub leased: u64,
}

/// One line of a job's log.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// Increasing within a job: the cursor for reading on.
    pub id: i64,
    pub at_ms: i64,
    pub worker: Option<String>,
    pub message: String,
}

/// Counts for dashboards and metrics, read in one go at scrape or refresh time, so that they
/// cover every worker of a deployment, whatever process it runs in.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueStats {
    /// Jobs in each state (every state, zero included).
    pub jobs_by_state: Vec<(JobState, u64)>,
    /// Tasks of queued or running jobs waiting to be claimed (including back-offs and assemble
    /// tasks still waiting for their chunks): the queue's depth.
    pub tasks_pending: u64,
    /// Tasks under a lease now.
    pub tasks_leased: u64,
    /// Workers not stopped and heard from within the `active_within` of [`Stats::stats`].
    pub workers_active: u64,
    /// Frames of chunks done within the `history` of [`Stats::stats`], by worker and minute
    /// (oldest first): throughput charts and per-worker rates.
    pub frames_done: Vec<FramesDone>,
}

/// Frames of the chunks one worker finished in one minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FramesDone {
    /// The start of the minute, in milliseconds since the Unix epoch.
    pub minute_ms: i64,
    pub worker: Option<String>,
    pub frames: u64,
}

/// A before/after pair for a job: one input frame and the same frame styled, small enough to
/// show in a page (at most 640 px wide), stored in the queue so that any server of a cluster
/// can serve it.
#[derive(Debug, Clone)]
pub struct Preview {
    pub job_id: JobId,
    /// The chunk and frame (in the input's decode order) it shows.
    pub chunk: u32,
    pub frame: u64,
    /// Media type of the "after" image: `image/jpeg`, or `image/svg+xml` for a records job's
    /// overlay. The "before" image is always a JPEG.
    pub mime: String,
    pub before: Vec<u8>,
    pub after: Vec<u8>,
    pub created_at_ms: i64,
}

/// Submitting, steering and reading jobs: what a client of the queue does. Every method is one
/// transaction; all are safe to call from many processes at once (so for every role below).
#[async_trait]
pub trait Jobs: Send + Sync {
    /// Adds a job with its plan task, unless a queued or running job has the same identity.
    async fn submit(&self, job: NewJob) -> Result<Submitted>;

    /// Cancels a queued or running job and its unfinished tasks. False if it was already
    /// terminal. Errors if there is no such job.
    async fn cancel(&self, job: &str) -> Result<bool>;

    /// Makes a failed or canceled job queued again: its failed and canceled tasks, and all its
    /// score tasks (whose chunk files were removed when the job ended), become pending with fresh
    /// budgets; a done plan stays done, so the input is not scanned again. False if it was not
    /// failed or canceled, and false (changing nothing) if another job with its identity is
    /// queued or running now: that job does the work ([`Jobs::active_job`] finds it). Errors if
    /// there is no such job.
    async fn retry(&self, job: &str) -> Result<bool>;

    /// One job, or None.
    async fn job(&self, job: &str) -> Result<Option<JobRecord>>;

    /// Jobs, newest first, optionally only in these states; at most `limit`.
    async fn jobs(&self, states: &[JobState], limit: u32) -> Result<Vec<JobRecord>> {
        self.jobs_before(states, limit, None).await
    }

    /// A page of jobs, newest first by submission order: those submitted before the job with
    /// `seq == before_seq` (all, with None), optionally only in these states; at most `limit`.
    async fn jobs_before(
        &self,
        states: &[JobState],
        limit: u32,
        before_seq: Option<i64>,
    ) -> Result<Vec<JobRecord>>;

    /// The job first submitted with this idempotency key, whatever its state.
    async fn job_by_idempotency_key(&self, key: &str) -> Result<Option<JobRecord>>;

    /// The queued or running job with this identity, if any.
    async fn active_job(&self, identity: &str) -> Result<Option<JobRecord>>;

    /// A job's tasks, in order (plan, chunks, assemble).
    async fn tasks(&self, job: &str) -> Result<Vec<TaskRecord>>;
}

/// A worker's verbs: claiming a task, holding its lease and ending it.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Claims the next claimable task, fairly across jobs, for `lease`. First puts back tasks
    /// whose lease ran out (counting an expiry; a task whose expiry budget is spent fails its
    /// job). Claimable: pending, `not_before` passed, job queued or running; an assemble task
    /// only once all its job's score tasks are done. Marks a queued job running (started_at).
    async fn claim(
        &self,
        worker: &str,
        lease: Duration,
        filter: &ClaimFilter,
    ) -> Result<Option<TaskLease>>;

    /// Renews the lease for another `lease` from now, if still held.
    async fn heartbeat(&self, lease: &TaskLease, extend: Duration) -> Result<LeaseStatus>;

    /// Records a small text for whoever holds the task next (e.g. "published"), if still held.
    async fn checkpoint(&self, lease: &TaskLease, note: &str) -> Result<LeaseStatus>;

    /// Ends a plan task: stores the plan, `frames_total`, adds one score task per chunk (in
    /// order) and the assemble task. Returns `Lost` (and changes nothing) if the lease is gone.
    async fn complete_plan(
        &self,
        lease: &TaskLease,
        plan: &str,
        frames_total: u64,
        chunks: &[FrameRange],
    ) -> Result<LeaseStatus>;

    /// Ends a score task as done.
    async fn complete_chunk(&self, lease: &TaskLease) -> Result<LeaseStatus>;

    /// Ends an assemble task: the job succeeded (finished_at).
    async fn complete_job(&self, lease: &TaskLease) -> Result<LeaseStatus>;

    /// Reports an error. `retryable`: counts an attempt and, while the attempt budget lasts,
    /// makes the task pending again from now + `backoff`; otherwise (or when the budget is
    /// spent) fails the task and the job with this error and cancels the job's other tasks.
    async fn fail(
        &self,
        lease: &TaskLease,
        error: &str,
        retryable: bool,
        backoff: Duration,
    ) -> Result<FailOutcome>;

    /// Gives a task back without counting anything (a worker asked to stop).
    async fn release(&self, lease: &TaskLease) -> Result<()>;

    /// Ends every lease `worker` holds now, counting an expiry for each: for a worker known to
    /// be dead (e.g. a local process that is gone), so its tasks need not wait for the lease.
    async fn expire_worker(&self, worker: &str) -> Result<u64>;

    /// Waits until work may have appeared (a submit, a completed plan or chunk, a release) or
    /// `timeout` passes, without busy polling where the backend can notify (PostgreSQL).
    async fn wait_for_work(&self, timeout: Duration);
}

/// Workers saying what they do, and the list of them.
#[async_trait]
pub trait Workers: Send + Sync {
    /// Records that a worker is alive, and what it does (insert or update by name).
    async fn worker_seen(&self, status: &WorkerStatus) -> Result<()>;

    /// Workers heard from within `within` (stopped ones too), most recently seen first.
    async fn workers(&self, within: Duration) -> Result<Vec<WorkerRecord>>;
}

/// A job's log and its before/after preview: what a job leaves to show while and after it runs.
#[async_trait]
pub trait JobLogs: Send + Sync {
    /// Appends a line to a job's log.
    async fn log(&self, job: &str, worker: Option<&str>, message: &str) -> Result<()>;

    /// A job's log lines after line `after` (all with None), oldest first, at most `limit`.
    async fn job_log(&self, job: &str, after: Option<i64>, limit: u32) -> Result<Vec<LogLine>>;

    /// Stores a job's preview unless it has one already (the first one stays). True if stored.
    async fn save_preview(&self, preview: &Preview) -> Result<bool>;

    /// A job's preview, if one was stored.
    async fn preview(&self, job: &str) -> Result<Option<Preview>>;
}

/// Counts for dashboards, metrics and autoscalers.
#[async_trait]
pub trait Stats: Jobs {
    /// Counts of jobs, tasks and workers, and the frames done within `history` by worker and
    /// minute; workers count as active when heard from within `active_within`.
    async fn stats(&self, active_within: Duration, history: Duration) -> Result<QueueStats>;

    /// Tasks waiting and tasks held, over all queued and running jobs (see [`TaskCounts`]).
    /// This default reads every active job's tasks; the backends answer with one query.
    async fn task_counts(&self) -> Result<TaskCounts> {
        count_active_tasks(self, None).await
    }

    /// [`Stats::task_counts`] over the jobs submitted for one kind of device ("cpu", "cuda")
    /// only: the work that workers of that kind can claim, what they are sized by.
    async fn task_counts_of_kind(&self, device_kind: &str) -> Result<TaskCounts> {
        count_active_tasks(self, Some(device_kind)).await
    }
}

/// The whole queue: every role together, what both backends are and what [`open`] returns. A
/// caller (or a test double) that needs one role asks for that role alone.
pub trait Queue:
    Jobs + Leases + Workers + JobLogs + Stats + Accounts + Deliveries + DatasetItems + TriggerBatches
{
}

impl<
        T: Jobs
            + Leases
            + Workers
            + JobLogs
            + Stats
            + Accounts
            + Deliveries
            + DatasetItems
            + TriggerBatches
            + ?Sized,
    > Queue for T
{
}

/// [`Stats::task_counts`] from every active job's tasks (of one device kind, or all).
async fn count_active_tasks<Q: Jobs + ?Sized>(
    queue: &Q,
    device_kind: Option<&str>,
) -> Result<TaskCounts> {
    let mut counts = TaskCounts::default();
    let mut before = None;
    loop {
        let page = queue
            .jobs_before(&[JobState::Queued, JobState::Running], 500, before)
            .await?;
        let Some(last) = page.last() else {
            return Ok(counts);
        };
        before = Some(last.seq);
        for job in &page {
            if device_kind.is_some_and(|kind| job.device_kind.as_str() != kind) {
                continue;
            }
            let tasks = queue.tasks(&job.id).await?;
            let chunks_left = tasks
                .iter()
                .any(|t| t.kind == TaskKind::Score && t.state != TaskState::Done);
            for task in &tasks {
                match task.state {
                    TaskState::Leased => counts.leased += 1,
                    TaskState::Pending if task.kind == TaskKind::Assemble && chunks_left => {}
                    TaskState::Pending => counts.pending += 1,
                    TaskState::Done | TaskState::Failed | TaskState::Canceled => {}
                }
            }
        }
    }
}

/// Opens (creating and migrating as needed) the queue at `url`: `sqlite://PATH` (`sqlite:PATH`
/// too; the file and its folder are created) or `postgres://...` / `postgresql://...`.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Queue>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(PgQueue::connect(url).await?))
    } else if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Ok(std::sync::Arc::new(
            SqliteQueue::open(std::path::Path::new(path)).await?,
        ))
    } else {
        Err(QueueError::BadUrl {
            url: redact_url(url),
        })
    }
}

/// A database URL fit to print: the password (in the user part or a `password=` parameter)
/// replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((user_info, host)) => match user_info.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => url.to_string(),
            },
            None => url.to_string(),
        },
        None => url.to_string(),
    };
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{base}{}", query.join("&"));
    }
    out
}

/// A fresh random lease token.
pub(crate) fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// Milliseconds since the Unix epoch, by this machine's clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_never_printed() {
        assert_eq!(
            redact_url("postgres://fresco:s3cret@db:5432/jobs"),
            "postgres://fresco:***@db:5432/jobs"
        );
        assert_eq!(
            redact_url("postgres://fresco@db/jobs?sslmode=require&password=s3cret"),
            "postgres://fresco@db/jobs?sslmode=require&password=***"
        );
        assert_eq!(redact_url("sqlite:///tmp/q.db"), "sqlite:///tmp/q.db");
    }
}
