//! The SQLite backend: one database file on one machine, shared by several worker processes.
//!
//! SQLite has one writer at a time. Every write here is a transaction that takes the write lock
//! up front (`BEGIN IMMEDIATE`) and waits for it (busy timeout): a transaction that reads first
//! and upgrades later fails with `SQLITE_BUSY` at once when another process wrote in between,
//! which a worker would see as a database error. Within one process, writers queue on a mutex
//! first, so they wake when the writer before them is done instead of sleeping in SQLite's busy
//! handler.
//!
//! Times are this machine's clock ([`crate::now_ms`]): every process sharing the file runs on it.
//! There are no notifications between processes, so [`Queue::wait_for_work`] wakes on this
//! process's own changes and otherwise polls.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use fresco_core::{FrameRange, JobState, TaskKind};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection as _, Sqlite, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use crate::rows::{
    budget, chunk_number, frame_number, job_select, millis, score_rank, ClaimedRow, HeldRow,
    JobRow, TaskRow, ASSEMBLE_WAITING, HELD_COLUMNS, NEWEST_FIRST, TASK_COLUMNS, TASK_ORDER,
};
use crate::signal::WorkSignal;
use crate::{
    new_token, now_ms, Admission, ClaimFilter, FailOutcome, JobId, JobRecord, LeaseStatus, NewJob,
    Queue, QueueError, Result, Submitted, TaskLease, TaskRecord, WorkerRecord, WorkerStatus,
};

mod auth;
mod deliveries;
mod expiry;
mod stats;

use expiry::expire_leases;

/// How long a write waits for another process's write to finish before it errors.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest [`Queue::wait_for_work`] sleeps before looking again: work another process adds
/// is seen this late at most.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Connections per process: reads run in parallel with the one writer (WAL).
const MAX_CONNECTIONS: u32 = 4;

/// A task still held by the lease that presents this token (`?1` task id, `?2` token), of a job
/// that is not over. Every verb of a lease holder matches with it, so a worker whose lease moved
/// on never touches the task again.
const HELD: &str = "id = ?1 AND state = 'leased' AND token = ?2 AND EXISTS (SELECT 1 FROM jobs \
    WHERE jobs.id = tasks.job_id AND jobs.state IN ('queued', 'running'))";

/// [`HELD`] for `tasks t JOIN jobs j`.
const HELD_JOINED: &str = "t.id = ?1 AND t.state = 'leased' AND t.token = ?2 \
    AND j.state IN ('queued', 'running')";

/// The queue in a SQLite database file.
pub struct SqliteQueue {
    pool: SqlitePool,
    path: PathBuf,
    /// This process's writers queue here before they take SQLite's write lock.
    write_gate: Mutex<()>,
    /// Wakes this process's waiters on this process's changes.
    signal: WorkSignal,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteQueue {
    /// Opens the queue in the file at `path`, creating the folder and the file and bringing the
    /// schema up to date as needed. Several processes may open one file at once.
    pub async fn open(path: &Path) -> Result<SqliteQueue> {
        let open_error = |source| QueueError::Open {
            url: format!("sqlite://{}", path.display()),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_error(sqlx::Error::Io(e)))?;
        }
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(open_error)?
            .filename(path)
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // With WAL, NORMAL loses no committed transaction when a process crashes, only
            // (possibly) the last ones on a power cut; FULL would sync on every heartbeat.
            .synchronous(SqliteSynchronous::Normal);
        switch_to_wal(&options).await.map_err(open_error)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(open_error)?;

        // The migrator does not lock SQLite: run it inside a write transaction, so processes
        // opening a new file together migrate it once, one after the other.
        let mut tx = pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(open_error)?;
        // `run_direct` with the connection itself: `run`'s generic `Acquire` bound makes
        // this future not `Send` (sqlx's own workaround), and callers spawn `open`.
        sqlx::migrate!("./migrations/sqlite")
            .run_direct(&mut *tx)
            .await?;
        tx.commit().await?;

        Ok(SqliteQueue {
            pool,
            path: path.to_path_buf(),
            write_gate: Mutex::new(()),
            signal: WorkSignal::default(),
        })
    }

    /// Begins a write transaction holding SQLite's write lock. Dropping it uncommitted rolls
    /// back.
    ///
    /// The `BEGIN` runs in a task of its own. sqlx runs SQLite statements on a thread of the
    /// connection; if the caller's future were dropped while `BEGIN IMMEDIATE` waits for the
    /// lock (a heartbeat aborted at the end of a task, a `select!` that picked another
    /// branch), that thread would still begin the transaction, and the connection would go
    /// back to the pool holding SQLite's write lock with no `Transaction` to roll it back:
    /// every other writer, in every process, then waits out its busy timeout and fails
    /// ("database is locked"). In its own task the `Transaction` always comes into being, and
    /// is dropped (rolled back) there if nobody awaits it any more.
    async fn write(&self) -> Result<(MutexGuard<'_, ()>, Transaction<'static, Sqlite>)> {
        let gate = self.write_gate.lock().await;
        let pool = self.pool.clone();
        let tx = tokio::spawn(async move { pool.begin_with("BEGIN IMMEDIATE").await })
            .await
            .map_err(|e| {
                crate::QueueError::Corrupt(format!("the transaction task failed: {e}"))
            })??;
        Ok((gate, tx))
    }
}

/// Puts the database in WAL mode (readers do not block the writer, nor it them). The switch
/// needs an exclusive lock that the busy timeout does not wait for, so it is done once here on
/// its own connection, retried while another process holds the file; WAL then stays on in the
/// file for every later connection.
async fn switch_to_wal(options: &SqliteConnectOptions) -> Result<(), sqlx::Error> {
    let wal = options.clone().journal_mode(SqliteJournalMode::Wal);
    let mut tries = 0;
    loop {
        match SqliteConnection::connect_with(&wal).await {
            Ok(conn) => return conn.close().await,
            Err(sqlx::Error::Database(e)) if tries < 50 && is_busy(e.as_ref()) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_busy(e: &dyn sqlx::error::DatabaseError) -> bool {
    // SQLITE_BUSY (5) and its extended codes (5 + n * 256), SQLITE_LOCKED (6) likewise.
    e.code()
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| c & 0xff == 5 || c & 0xff == 6)
}

/// Fails a job with `error` and cancels its unfinished tasks (whose holders then see `Lost`).
async fn fail_job(conn: &mut SqliteConnection, job: &str, error: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET state = 'failed', last_error = ?2, finished_at = ?3 \
         WHERE id = ?1 AND state IN ('queued', 'running')",
    )
    .bind(job)
    .bind(error)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    cancel_tasks(conn, job, now).await
}

async fn cancel_tasks(conn: &mut SqliteConnection, job: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE tasks SET state = 'canceled', token = NULL, lease_expires_at = NULL, \
         finished_at = ?2 WHERE job_id = ?1 AND state IN ('pending', 'leased')",
    )
    .bind(job)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Claimable tasks, best first (`?1` now; `{device}` a device kind filter on the job `j`, then
/// a job filter and [`CLAIM_ORDER`]). Unfiltered,
/// it walks the `tasks_claim_order` index and stops at the first task that qualifies; named,
/// because SQLite, on a file never analyzed, may otherwise pick another index and sort every
/// pending task on every claim.
const CLAIM_CANDIDATE: &str = "SELECT t.id FROM tasks t {index} \
    WHERE t.state = 'pending' AND t.not_before <= ?1 \
    AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = t.job_id AND j.state IN ('queued', 'running') \
        {device}) \
    AND (t.kind <> 'assemble' OR NOT EXISTS (SELECT 1 FROM tasks s \
        WHERE s.job_id = t.job_id AND s.kind = 'score' AND s.state <> 'done'))";

const CLAIM_ORDER: &str =
    "ORDER BY t.priority DESC, t.rank ASC, t.enqueued_at ASC, t.id ASC LIMIT 1";

/// Moves a job's assemble task (`?1` job) to the front of the claim order once its chunks are
/// all done (see [`ASSEMBLE_WAITING`]). True if it did.
async fn ready_assemble(conn: &mut SqliteConnection, job: &str) -> Result<bool> {
    let changed = sqlx::query(
        "UPDATE tasks SET rank = 0 WHERE job_id = ?1 AND kind = 'assemble' AND rank <> 0 \
         AND NOT EXISTS (SELECT 1 FROM tasks s \
            WHERE s.job_id = ?1 AND s.kind = 'score' AND s.state <> 'done')",
    )
    .bind(job)
    .execute(&mut *conn)
    .await?;
    Ok(changed.rows_affected() > 0)
}

impl SqliteQueue {
    /// Submits a job, for an owner and within its caps when `admission` is given.
    async fn submit_as(&self, job: NewJob, admission: Option<&Admission>) -> Result<Submitted> {
        let (_gate, mut tx) = self.write().await?;
        // The write lock makes these checks and the insert one step for every process.
        if let Some(key) = &job.idempotency_key {
            let earlier: Option<String> =
                sqlx::query_scalar("SELECT id FROM jobs WHERE idempotency_key = ?1")
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(earlier) = earlier {
                return Ok(Submitted::Existing(earlier));
            }
        }
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE identity = ?1 AND state IN ('queued', 'running')",
        )
        .bind(&job.identity)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = existing {
            return Ok(Submitted::Existing(id));
        }
        if let Some(admission) = admission {
            auth::check_caps(&mut tx, admission).await?;
        }
        let id: JobId = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO jobs (id, identity, state, priority, input, output, spec, \
             max_attempts, max_expiries, enqueued_at, idempotency_key, owner, device_kind, seq) \
             VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
                (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs))",
        )
        .bind(&id)
        .bind(&job.identity)
        .bind(job.priority)
        .bind(&job.input)
        .bind(&job.output)
        .bind(&job.spec)
        .bind(budget(job.budgets.max_attempts))
        .bind(budget(job.budgets.max_expiries))
        .bind(now)
        .bind(&job.idempotency_key)
        .bind(admission.map(|a| &a.owner))
        .bind(job.device_kind.as_str())
        .execute(&mut *tx)
        .await?;
        insert_task(&mut tx, &id, TaskKind::Plan, 0, None, 0, now).await?;
        if let Some(url) = admission.and_then(|a| a.callback_url.as_deref()) {
            deliveries::insert(&mut tx, &id, url, now).await?;
        }
        tx.commit().await?;
        self.signal.signal();
        Ok(Submitted::New(id))
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn submit(&self, job: NewJob) -> Result<Submitted> {
        self.submit_as(job, None).await
    }

    async fn claim(
        &self,
        worker: &str,
        lease: Duration,
        filter: &ClaimFilter,
    ) -> Result<Option<TaskLease>> {
        let jobs = filter.jobs.as_deref();
        let devices = filter.device_kinds.as_deref();
        if filter.is_empty() {
            return Ok(None);
        }
        self.signal.claim_started();
        let (_gate, mut tx) = self.write().await?;
        let now = now_ms();
        let expired = expire_leases(&mut tx, now, None).await?;

        let (index, filter) = match jobs {
            None => ("INDEXED BY tasks_claim_order", String::new()),
            // A few jobs' tasks, found by job and sorted.
            Some(jobs) => {
                let marks: Vec<String> = (0..jobs.len()).map(|i| format!("?{}", i + 2)).collect();
                ("", format!("AND t.job_id IN ({})", marks.join(", ")))
            }
        };
        // Device kinds are bound after the jobs.
        let device = match devices {
            None => String::new(),
            Some(kinds) => {
                let first = 2 + jobs.map_or(0, |j| j.len());
                let marks: Vec<String> = (0..kinds.len())
                    .map(|i| format!("?{}", first + i))
                    .collect();
                format!("AND j.device_kind IN ({})", marks.join(", "))
            }
        };
        let candidates = CLAIM_CANDIDATE
            .replace("{index}", index)
            .replace("{device}", &device);
        let sql = format!("{candidates} {filter} {CLAIM_ORDER}");
        let mut query = sqlx::query_scalar::<_, i64>(&sql).bind(now);
        for job in jobs.unwrap_or_default() {
            query = query.bind(job);
        }
        for kind in devices.unwrap_or_default() {
            query = query.bind(kind);
        }
        let candidate = query.fetch_optional(&mut *tx).await?;

        let claimed = match candidate {
            None => None,
            Some(id) => {
                let token = new_token();
                sqlx::query(
                    "UPDATE tasks SET state = 'leased', worker = ?2, token = ?3, \
                     lease_expires_at = ?4 WHERE id = ?1",
                )
                .bind(id)
                .bind(worker)
                .bind(&token)
                .bind(now.saturating_add(millis(lease)))
                .execute(&mut *tx)
                .await?;
                let row: ClaimedRow = sqlx::query_as(
                    "SELECT t.id, t.job_id, t.kind, t.chunk, t.frame_start, t.frame_end, \
                     t.attempts, t.expiries, t.checkpoint, j.spec, j.plan, j.state AS job_state \
                     FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE t.id = ?1",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                if row.job_state == JobState::Queued.as_str() {
                    sqlx::query(
                        "UPDATE jobs SET state = 'running', started_at = ?2 \
                         WHERE id = ?1 AND state = 'queued'",
                    )
                    .bind(&row.job_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(row.into_lease(token)?)
            }
        };
        tx.commit().await?;
        crate::stats::count_lease_expiries(expired.put_back + expired.failed);
        if expired.put_back > 0 {
            self.signal.signal();
        }
        Ok(claimed)
    }

    async fn heartbeat(&self, lease: &TaskLease, extend: Duration) -> Result<LeaseStatus> {
        let (_gate, mut tx) = self.write().await?;
        let changed = sqlx::query(&format!(
            "UPDATE tasks SET lease_expires_at = ?3 WHERE {HELD}"
        ))
        .bind(lease.task_id)
        .bind(&lease.token)
        .bind(now_ms().saturating_add(millis(extend)))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(status(changed.rows_affected()))
    }

    async fn checkpoint(&self, lease: &TaskLease, note: &str) -> Result<LeaseStatus> {
        let (_gate, mut tx) = self.write().await?;
        let changed = sqlx::query(&format!("UPDATE tasks SET checkpoint = ?3 WHERE {HELD}"))
            .bind(lease.task_id)
            .bind(&lease.token)
            .bind(note)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(status(changed.rows_affected()))
    }

    async fn complete_plan(
        &self,
        lease: &TaskLease,
        plan: &str,
        frames_total: u64,
        chunks: &[FrameRange],
    ) -> Result<LeaseStatus> {
        let (_gate, mut tx) = self.write().await?;
        let now = now_ms();
        if finish_task(&mut tx, lease, TaskKind::Plan, now).await? == LeaseStatus::Lost {
            return Ok(LeaseStatus::Lost);
        }
        sqlx::query("UPDATE jobs SET plan = ?2, frames_total = ?3 WHERE id = ?1")
            .bind(&lease.job_id)
            .bind(plan)
            .bind(frame_number(frames_total)?)
            .execute(&mut *tx)
            .await?;
        for (i, frames) in chunks.iter().enumerate() {
            let chunk = chunk_number(i)?;
            let rank = score_rank(chunk);
            insert_task(
                &mut tx,
                &lease.job_id,
                TaskKind::Score,
                chunk,
                Some(frames),
                rank,
                now,
            )
            .await?;
        }
        let rank = if chunks.is_empty() {
            0
        } else {
            ASSEMBLE_WAITING
        };
        insert_task(
            &mut tx,
            &lease.job_id,
            TaskKind::Assemble,
            0,
            None,
            rank,
            now,
        )
        .await?;
        tx.commit().await?;
        self.signal.signal();
        Ok(LeaseStatus::Held)
    }

    async fn complete_chunk(&self, lease: &TaskLease) -> Result<LeaseStatus> {
        let (_gate, mut tx) = self.write().await?;
        let status = finish_task(&mut tx, lease, TaskKind::Score, now_ms()).await?;
        let assemble_ready = match status {
            LeaseStatus::Held => ready_assemble(&mut tx, &lease.job_id).await?,
            LeaseStatus::Lost => false,
        };
        tx.commit().await?;
        if assemble_ready {
            self.signal.signal();
        }
        Ok(status)
    }

    async fn complete_job(&self, lease: &TaskLease) -> Result<LeaseStatus> {
        let (_gate, mut tx) = self.write().await?;
        let now = now_ms();
        if finish_task(&mut tx, lease, TaskKind::Assemble, now).await? == LeaseStatus::Lost {
            return Ok(LeaseStatus::Lost);
        }
        sqlx::query(
            "UPDATE jobs SET state = 'succeeded', finished_at = ?2 \
             WHERE id = ?1 AND state IN ('queued', 'running')",
        )
        .bind(&lease.job_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(LeaseStatus::Held)
    }

    async fn fail(
        &self,
        lease: &TaskLease,
        error: &str,
        retryable: bool,
        backoff: Duration,
    ) -> Result<FailOutcome> {
        let (_gate, mut tx) = self.write().await?;
        let now = now_ms();
        let held: Option<HeldRow> = sqlx::query_as(&format!(
            "SELECT {HELD_COLUMNS} FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE {HELD_JOINED}"
        ))
        .bind(lease.task_id)
        .bind(&lease.token)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(held) = held else {
            return Ok(FailOutcome::LeaseLost);
        };
        let attempts = held.attempts + 1;
        let job_error = format!("{}: {error}", held.label()?);
        if retryable && attempts < held.max_attempts {
            let not_before = now.saturating_add(millis(backoff));
            sqlx::query(
                "UPDATE tasks SET state = 'pending', attempts = ?2, token = NULL, \
                 lease_expires_at = NULL, last_error = ?3, not_before = ?4 WHERE id = ?1",
            )
            .bind(lease.task_id)
            .bind(attempts)
            .bind(error)
            .bind(not_before)
            .execute(&mut *tx)
            .await?;
            // The job shows the latest error while it retries.
            sqlx::query("UPDATE jobs SET last_error = ?2 WHERE id = ?1")
                .bind(&lease.job_id)
                .bind(&job_error)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(FailOutcome::Retrying {
                not_before_ms: not_before,
            });
        }
        sqlx::query(
            "UPDATE tasks SET state = 'failed', attempts = ?2, token = NULL, \
             lease_expires_at = NULL, last_error = ?3, finished_at = ?4 WHERE id = ?1",
        )
        .bind(lease.task_id)
        .bind(attempts)
        .bind(error)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        fail_job(&mut tx, &lease.job_id, &job_error, now).await?;
        tx.commit().await?;
        Ok(FailOutcome::JobFailed)
    }

    async fn release(&self, lease: &TaskLease) -> Result<()> {
        let (_gate, mut tx) = self.write().await?;
        let changed = sqlx::query(
            "UPDATE tasks SET state = 'pending', token = NULL, lease_expires_at = NULL, \
             not_before = ?3 WHERE id = ?1 AND state = 'leased' AND token = ?2",
        )
        .bind(lease.task_id)
        .bind(&lease.token)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if changed.rows_affected() > 0 {
            self.signal.signal();
        }
        Ok(())
    }

    async fn expire_worker(&self, worker: &str) -> Result<u64> {
        let (_gate, mut tx) = self.write().await?;
        let expired = expire_leases(&mut tx, now_ms(), Some(worker)).await?;
        tx.commit().await?;
        crate::stats::count_lease_expiries(expired.put_back + expired.failed);
        if expired.put_back > 0 {
            self.signal.signal();
        }
        Ok(expired.put_back + expired.failed)
    }

    async fn cancel(&self, job: &str) -> Result<bool> {
        let (_gate, mut tx) = self.write().await?;
        let now = now_ms();
        let changed = sqlx::query(
            "UPDATE jobs SET state = 'canceled', finished_at = ?2 \
             WHERE id = ?1 AND state IN ('queued', 'running')",
        )
        .bind(job)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM jobs WHERE id = ?1")
                .bind(job)
                .fetch_optional(&mut *tx)
                .await?;
            return match exists {
                Some(_) => Ok(false),
                None => Err(QueueError::NoSuchJob(job.into())),
            };
        }
        cancel_tasks(&mut tx, job, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn retry(&self, job: &str) -> Result<bool> {
        let (_gate, mut tx) = self.write().await?;
        let now = now_ms();
        let found: Option<(String, String)> =
            sqlx::query_as("SELECT state, identity FROM jobs WHERE id = ?1")
                .bind(job)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((state, identity)) = found else {
            return Err(QueueError::NoSuchJob(job.into()));
        };
        match crate::rows::job_state(&state)? {
            JobState::Failed | JobState::Canceled => {}
            JobState::Queued | JobState::Running | JobState::Succeeded => return Ok(false),
        }
        let other: Option<String> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE identity = ?1 AND state IN ('queued', 'running')",
        )
        .bind(&identity)
        .fetch_optional(&mut *tx)
        .await?;
        if other.is_some() {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE jobs SET state = 'queued', started_at = NULL, finished_at = NULL \
             WHERE id = ?1",
        )
        .bind(job)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE tasks SET state = 'pending', attempts = 0, expiries = 0, token = NULL, \
             lease_expires_at = NULL, not_before = ?2, finished_at = NULL \
             WHERE job_id = ?1 AND (state IN ('failed', 'canceled') OR kind = 'score')",
        )
        .bind(job)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Chunks pending again: the assemble task waits for them.
        sqlx::query(
            "UPDATE tasks SET rank = ?2 WHERE job_id = ?1 AND kind = 'assemble' \
             AND EXISTS (SELECT 1 FROM tasks s \
                WHERE s.job_id = ?1 AND s.kind = 'score' AND s.state <> 'done')",
        )
        .bind(job)
        .bind(ASSEMBLE_WAITING)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.signal.signal();
        Ok(true)
    }

    async fn job(&self, job: &str) -> Result<Option<JobRecord>> {
        let row: Option<JobRow> = sqlx::query_as(&job_select("j.id = ?1", "", None))
            .bind(job)
            .fetch_optional(&self.pool)
            .await?;
        row.map(JobRow::into_record).transpose()
    }

    async fn jobs_before(
        &self,
        states: &[JobState],
        limit: u32,
        before_seq: Option<i64>,
    ) -> Result<Vec<JobRecord>> {
        let filter = crate::rows::page_filter(states, before_seq);
        let rows: Vec<JobRow> = sqlx::query_as(&job_select(&filter, NEWEST_FIRST, Some(limit)))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(JobRow::into_record).collect()
    }

    async fn job_by_idempotency_key(&self, key: &str) -> Result<Option<JobRecord>> {
        let sql = job_select("j.idempotency_key = ?1", "", None);
        let row: Option<JobRow> = sqlx::query_as(&sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(JobRow::into_record).transpose()
    }

    async fn active_job(&self, identity: &str) -> Result<Option<JobRecord>> {
        let sql = job_select(
            "j.identity = ?1 AND j.state IN ('queued', 'running')",
            "",
            None,
        );
        let row: Option<JobRow> = sqlx::query_as(&sql)
            .bind(identity)
            .fetch_optional(&self.pool)
            .await?;
        row.map(JobRow::into_record).transpose()
    }

    async fn tasks(&self, job: &str) -> Result<Vec<TaskRecord>> {
        let rows: Vec<TaskRow> = sqlx::query_as(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks t WHERE t.job_id = ?1 {TASK_ORDER}"
        ))
        .bind(job)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TaskRow::into_record).collect()
    }

    async fn worker_seen(&self, status: &WorkerStatus) -> Result<()> {
        let (_gate, mut tx) = self.write().await?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO workers (name, host, device, state, current, started_at, last_seen) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (name) DO UPDATE SET \
             host = excluded.host, device = excluded.device, state = excluded.state, \
             current = excluded.current, last_seen = excluded.last_seen",
        )
        .bind(&status.name)
        .bind(&status.host)
        .bind(&status.device)
        .bind(&status.state)
        .bind(&status.current)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn workers(&self, within: Duration) -> Result<Vec<WorkerRecord>> {
        let since = now_ms() - crate::rows::millis(within);
        let rows: Vec<crate::rows::WorkerRow> = sqlx::query_as(
            "SELECT name, host, device, state, current, started_at, last_seen FROM workers \
             WHERE last_seen >= ?1 ORDER BY last_seen DESC, name",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(crate::rows::WorkerRow::into_record)
            .collect())
    }

    async fn task_counts(&self) -> Result<crate::TaskCounts> {
        self.count_tasks(None).await
    }

    async fn task_counts_of_kind(&self, device_kind: &str) -> Result<crate::TaskCounts> {
        self.count_tasks(Some(device_kind)).await
    }

    async fn log(&self, job: &str, worker: Option<&str>, message: &str) -> Result<()> {
        let (_gate, mut tx) = self.write().await?;
        sqlx::query("INSERT INTO job_log (job_id, at, worker, message) VALUES (?1, ?2, ?3, ?4)")
            .bind(job)
            .bind(now_ms())
            .bind(worker)
            .bind(message)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn job_log(
        &self,
        job: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<crate::LogLine>> {
        let rows: Vec<(i64, i64, Option<String>, String)> = sqlx::query_as(
            "SELECT id, at, worker, message FROM job_log WHERE job_id = ?1 AND id > ?2 \
             ORDER BY id LIMIT ?3",
        )
        .bind(job)
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(crate::rows::log_line).collect())
    }

    async fn stats(&self, active_within: Duration, history: Duration) -> Result<crate::QueueStats> {
        stats::stats(&self.pool, active_within, history).await
    }

    async fn save_preview(&self, preview: &crate::Preview) -> Result<bool> {
        let (_gate, mut tx) = self.write().await?;
        let stored = stats::save_preview(&mut tx, preview).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn preview(&self, job: &str) -> Result<Option<crate::Preview>> {
        stats::preview_of(&self.pool, job).await
    }

    async fn wait_for_work(&self, timeout: Duration) {
        self.signal.wait(timeout.min(POLL_INTERVAL)).await;
    }
}

fn status(rows_affected: u64) -> LeaseStatus {
    if rows_affected == 1 {
        LeaseStatus::Held
    } else {
        LeaseStatus::Lost
    }
}

/// Marks a held task of `kind` done; `Lost` (and nothing changed) if the lease is gone.
async fn finish_task(
    conn: &mut SqliteConnection,
    lease: &TaskLease,
    kind: TaskKind,
    now: i64,
) -> Result<LeaseStatus> {
    debug_assert_eq!(
        lease.kind, kind,
        "a {} task completed as {kind}",
        lease.kind
    );
    let changed = sqlx::query(&format!(
        "UPDATE tasks SET state = 'done', token = NULL, lease_expires_at = NULL, \
         finished_at = ?3 WHERE {HELD} AND kind = ?4"
    ))
    .bind(lease.task_id)
    .bind(&lease.token)
    .bind(now)
    .bind(kind.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(status(changed.rows_affected()))
}

/// Adds a pending task to `job`, ranked `rank` in the claim order.
async fn insert_task(
    conn: &mut SqliteConnection,
    job: &str,
    kind: TaskKind,
    chunk: i32,
    frames: Option<&FrameRange>,
    rank: i32,
    now: i64,
) -> Result<()> {
    let (start, end) = match frames {
        Some(f) => (frame_number(f.start)?, frame_number(f.end)?),
        None => (0, 0),
    };
    sqlx::query(
        "INSERT INTO tasks (job_id, kind, chunk, frame_start, frame_end, state, not_before, \
         rank, priority, enqueued_at) \
         SELECT id, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, priority, enqueued_at FROM jobs \
         WHERE id = ?1",
    )
    .bind(job)
    .bind(kind.as_str())
    .bind(chunk)
    .bind(start)
    .bind(end)
    .bind(now)
    .bind(rank)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The backend's task counts, over the jobs of one device kind or all.
impl SqliteQueue {
    async fn count_tasks(&self, device_kind: Option<&str>) -> Result<crate::TaskCounts> {
        let (pending, leased): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(CASE WHEN t.state = 'pending' THEN 1 END), \
             COUNT(CASE WHEN t.state = 'leased' THEN 1 END) \
             FROM tasks t JOIN jobs j ON j.id = t.job_id \
             WHERE j.state IN ('queued', 'running') \
             AND (t.state = 'leased' OR (t.state = 'pending' AND t.rank <> ?1)) \
             AND (?2 IS NULL OR j.device_kind = ?2)",
        )
        .bind(ASSEMBLE_WAITING)
        .bind(device_kind)
        .fetch_one(&self.pool)
        .await?;
        Ok(crate::TaskCounts {
            pending: pending.max(0) as u64,
            leased: leased.max(0) as u64,
        })
    }
}
