//! What both backends share: the rows as the database returns them, their conversion into the
//! public records (state texts parsed, counts checked), the job listing query and the texts of
//! the errors the queue itself writes.
//!
//! The row structs derive `sqlx::FromRow` for any database, so one struct reads a SQLite row and
//! a PostgreSQL row alike; the SQL casts aggregates to BIGINT so both decode them as `i64`.

use fresco_core::{FrameRange, JobState, TaskKind, TaskState};

use crate::{JobRecord, QueueError, Result, TaskLease, TaskRecord};

/// The columns of [`job_select`]: a job and the sums over its tasks.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JobRow {
    id: String,
    seq: i64,
    identity: String,
    state: String,
    priority: i32,
    input: String,
    output: String,
    spec: String,
    device_kind: String,
    plan: Option<String>,
    frames_total: Option<i64>,
    max_attempts: i32,
    max_expiries: i32,
    last_error: Option<String>,
    enqueued_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    frames_done: i64,
    chunks_total: i64,
    chunks_done: i64,
    attempts: i64,
    expiries: i64,
    owner: Option<String>,
}

impl JobRow {
    pub(crate) fn into_record(self) -> Result<JobRecord> {
        let device_kind = self
            .device_kind
            .parse()
            .map_err(|e| QueueError::Corrupt(format!("job {}: {e}", self.id)))?;
        Ok(JobRecord {
            state: job_state(&self.state)?,
            frames_total: self
                .frames_total
                .map(|n| unsigned(n, "frames_total"))
                .transpose()?,
            frames_done: unsigned(self.frames_done, "frames done")?,
            chunks_total: unsigned(self.chunks_total, "chunks")?,
            chunks_done: unsigned(self.chunks_done, "chunks done")?,
            attempts: unsigned(self.attempts, "attempts")?,
            expiries: unsigned(self.expiries, "expiries")?,
            max_attempts: unsigned(self.max_attempts, "max_attempts")?,
            max_expiries: unsigned(self.max_expiries, "max_expiries")?,
            id: self.id,
            seq: self.seq,
            identity: self.identity,
            priority: self.priority,
            input: self.input,
            output: self.output,
            device_kind,
            spec: self.spec,
            plan: self.plan,
            last_error: self.last_error,
            enqueued_at_ms: self.enqueued_at,
            started_at_ms: self.started_at,
            finished_at_ms: self.finished_at,
            owner: self.owner,
        })
    }
}

/// A row of `job_log`.
pub(crate) fn log_line(
    (id, at, worker, message): (i64, i64, Option<String>, String),
) -> crate::LogLine {
    crate::LogLine {
        id,
        at_ms: at,
        worker,
        message,
    }
}

/// A row of `workers`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct WorkerRow {
    name: String,
    host: String,
    device: String,
    state: String,
    current: Option<String>,
    started_at: i64,
    last_seen: i64,
}

impl WorkerRow {
    pub(crate) fn into_record(self) -> crate::WorkerRecord {
        crate::WorkerRecord {
            name: self.name,
            host: self.host,
            device: self.device,
            state: self.state,
            current: self.current,
            started_at_ms: self.started_at,
            last_seen_ms: self.last_seen,
        }
    }
}

/// The task columns a listing reads: [`TASK_COLUMNS`].
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TaskRow {
    id: i64,
    job_id: String,
    kind: String,
    chunk: i32,
    frame_start: i64,
    frame_end: i64,
    state: String,
    attempts: i32,
    expiries: i32,
    worker: Option<String>,
    lease_expires_at: Option<i64>,
    not_before: i64,
    last_error: Option<String>,
    finished_at: Option<i64>,
}

/// Columns of `tasks` (aliased `t`) for [`TaskRow`].
pub(crate) const TASK_COLUMNS: &str = "t.id, t.job_id, t.kind, t.chunk, t.frame_start, \
    t.frame_end, t.state, t.attempts, t.expiries, t.worker, t.lease_expires_at, t.not_before, \
    t.last_error, t.finished_at";

/// Lists a job's tasks in order: plan, chunks by number, assemble.
pub(crate) const TASK_ORDER: &str =
    "ORDER BY CASE t.kind WHEN 'plan' THEN 0 WHEN 'score' THEN 1 ELSE 2 END, t.chunk, t.id";

impl TaskRow {
    pub(crate) fn into_record(self) -> Result<TaskRecord> {
        Ok(TaskRecord {
            kind: task_kind(&self.kind)?,
            chunk: unsigned(self.chunk, "chunk")?,
            frames: frames(self.frame_start, self.frame_end)?,
            state: task_state(&self.state)?,
            attempts: unsigned(self.attempts, "attempts")?,
            expiries: unsigned(self.expiries, "expiries")?,
            id: self.id,
            job_id: self.job_id,
            worker: self.worker,
            lease_expires_at_ms: self.lease_expires_at,
            not_before_ms: self.not_before,
            last_error: self.last_error,
            finished_at_ms: self.finished_at,
        })
    }
}

/// A task just claimed, with what the worker needs from its job.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ClaimedRow {
    pub(crate) id: i64,
    pub(crate) job_id: String,
    kind: String,
    chunk: i32,
    frame_start: i64,
    frame_end: i64,
    attempts: i32,
    expiries: i32,
    checkpoint: Option<String>,
    spec: String,
    plan: Option<String>,
    /// The job's state before this claim: a queued job is marked running.
    pub(crate) job_state: String,
}

impl ClaimedRow {
    pub(crate) fn into_lease(self, token: String) -> Result<TaskLease> {
        Ok(TaskLease {
            kind: task_kind(&self.kind)?,
            chunk: unsigned(self.chunk, "chunk")?,
            frames: frames(self.frame_start, self.frame_end)?,
            attempts: unsigned(self.attempts, "attempts")?,
            expiries: unsigned(self.expiries, "expiries")?,
            task_id: self.id,
            job_id: self.job_id,
            token,
            spec: self.spec,
            plan: self.plan,
            checkpoint: self.checkpoint,
        })
    }
}

/// A task whose lease a worker still holds, read (locked) before a verb that may end its job.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct HeldRow {
    pub(crate) kind: String,
    pub(crate) chunk: i32,
    pub(crate) frame_start: i64,
    pub(crate) frame_end: i64,
    pub(crate) attempts: i32,
    pub(crate) expiries: i32,
    pub(crate) worker: Option<String>,
    pub(crate) max_attempts: i32,
    pub(crate) max_expiries: i32,
}

impl HeldRow {
    /// How the job's error names this task: "chunk 3 (frames 300-399)", "plan", "assemble".
    pub(crate) fn label(&self) -> Result<String> {
        Ok(task_label(
            task_kind(&self.kind)?,
            self.chunk,
            self.frame_start,
            self.frame_end,
        ))
    }
}

/// Columns of a [`HeldRow`] from `tasks t JOIN jobs j`.
pub(crate) const HELD_COLUMNS: &str = "t.kind, t.chunk, t.frame_start, t.frame_end, t.attempts, \
    t.expiries, t.worker, j.max_attempts, j.max_expiries";

/// The claim rank of a score task: chunk 0 of every job before chunk 1 of any (plan and ready
/// assemble tasks rank 0).
pub(crate) fn score_rank(chunk: i32) -> i32 {
    chunk.saturating_add(1)
}

/// The claim rank of an assemble task whose chunks are not all done: last. The last chunk done
/// moves it to 0. Claims check the chunks themselves too; the rank only keeps the waiting
/// assemble tasks of every running job from being stepped over on each claim.
pub(crate) const ASSEMBLE_WAITING: i32 = i32::MAX;

/// Names a task in its job's error. Frame ranges are shown inclusive ("frames 0-99" for the
/// first hundred), as a person counts them.
pub(crate) fn task_label(kind: TaskKind, chunk: i32, start: i64, end: i64) -> String {
    match kind {
        TaskKind::Plan => "plan".into(),
        TaskKind::Assemble => "assemble".into(),
        TaskKind::Score => format!(
            "chunk {chunk} (frames {start}-{})",
            end.saturating_sub(1).max(start)
        ),
    }
}

/// The error a task records when its expiry budget is spent.
pub(crate) fn expiry_error(expiries: i32, worker: Option<&str>) -> String {
    format!(
        "lease expired {expiries} times: the workers that took it died or lost contact (last: {})",
        worker.unwrap_or("unknown")
    )
}

/// The job listing: jobs matching `filter` (a condition on `j`, or empty), in `order`, at most
/// `limit`, each with the sums over its tasks. The sums are computed for the selected jobs only,
/// so a listing of the newest jobs stays cheap however many old tasks the database holds.
pub(crate) fn job_select(filter: &str, order: &str, limit: Option<u32>) -> String {
    let filter = if filter.is_empty() {
        String::new()
    } else {
        format!("WHERE {filter}")
    };
    let limit = limit.map(|n| format!("LIMIT {n}")).unwrap_or_default();
    format!(
        "WITH page AS (SELECT j.* FROM jobs j {filter} {order} {limit}) \
         SELECT j.id, j.seq, j.identity, j.state, j.priority, j.input, j.output, j.spec, \
            j.device_kind, j.plan, \
            j.frames_total, j.max_attempts, j.max_expiries, j.last_error, j.enqueued_at, \
            j.started_at, j.finished_at, j.owner, \
            CAST(COALESCE(a.frames_done, 0) AS BIGINT) AS frames_done, \
            CAST(COALESCE(a.chunks_total, 0) AS BIGINT) AS chunks_total, \
            CAST(COALESCE(a.chunks_done, 0) AS BIGINT) AS chunks_done, \
            CAST(COALESCE(a.attempts, 0) AS BIGINT) AS attempts, \
            CAST(COALESCE(a.expiries, 0) AS BIGINT) AS expiries \
         FROM page j LEFT JOIN ( \
            SELECT t.job_id, \
                SUM(CASE WHEN t.kind = 'score' AND t.state = 'done' \
                    THEN t.frame_end - t.frame_start ELSE 0 END) AS frames_done, \
                SUM(CASE WHEN t.kind = 'score' THEN 1 ELSE 0 END) AS chunks_total, \
                SUM(CASE WHEN t.kind = 'score' AND t.state = 'done' THEN 1 ELSE 0 END) \
                    AS chunks_done, \
                SUM(t.attempts) AS attempts, \
                SUM(t.expiries) AS expiries \
            FROM tasks t WHERE t.job_id IN (SELECT id FROM page) GROUP BY t.job_id \
         ) a ON a.job_id = j.id \
         {order}"
    )
}

/// Newest first, by submission order.
pub(crate) const NEWEST_FIRST: &str = "ORDER BY j.seq DESC";

/// The listing filter for [`Queue::jobs_before`](crate::Queue::jobs_before): states and cursor.
/// Both come from enums and integers, never from user text.
pub(crate) fn page_filter(states: &[JobState], before_seq: Option<i64>) -> String {
    let mut conditions = Vec::new();
    if !states.is_empty() {
        conditions.push(states_filter(states));
    }
    if let Some(seq) = before_seq {
        conditions.push(format!("j.seq < {seq}"));
    }
    conditions.join(" AND ")
}

/// `state IN ('queued', ...)` for a listing filter. The texts come from the enums, not the user.
pub(crate) fn states_filter(states: &[JobState]) -> String {
    let list: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!("j.state IN ({})", list.join(", "))
}

pub(crate) fn job_state(text: &str) -> Result<JobState> {
    JobState::parse(text).ok_or_else(|| QueueError::Corrupt(format!("job state '{text}'")))
}

pub(crate) fn task_state(text: &str) -> Result<TaskState> {
    TaskState::parse(text).ok_or_else(|| QueueError::Corrupt(format!("task state '{text}'")))
}

pub(crate) fn task_kind(text: &str) -> Result<TaskKind> {
    TaskKind::parse(text).ok_or_else(|| QueueError::Corrupt(format!("task kind '{text}'")))
}

fn frames(start: i64, end: i64) -> Result<FrameRange> {
    Ok(FrameRange {
        start: unsigned(start, "frame_start")?,
        end: unsigned(end, "frame_end")?,
    })
}

/// A count or number the schema keeps non-negative, checked on the way out.
fn unsigned<T, U>(value: T, what: &str) -> Result<U>
where
    T: Copy + std::fmt::Display,
    U: TryFrom<T>,
{
    U::try_from(value).map_err(|_| QueueError::Corrupt(format!("{what} {value}")))
}

/// Milliseconds of a duration, as the i64 the schema stores (saturating: a lease of centuries
/// is a bug elsewhere, not a reason to wrap around).
pub(crate) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The number of a chunk as the schema stores it.
pub(crate) fn chunk_number(i: usize) -> Result<i32> {
    i32::try_from(i).map_err(|_| QueueError::Corrupt(format!("chunk number {i} is too large")))
}

/// A frame number as the schema stores it.
pub(crate) fn frame_number(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| QueueError::Corrupt(format!("frame number {n} is too large")))
}

/// A budget as the schema stores it (budgets beyond i32 are effectively unlimited).
pub(crate) fn budget(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
