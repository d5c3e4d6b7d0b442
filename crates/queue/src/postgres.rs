//! The PostgreSQL backend: one database shared by workers on any number of machines.
//!
//! - Times come from the database's clock (`statement_timestamp()`), never a worker's, so leases
//!   and back-offs mean the same to machines whose clocks disagree.
//! - A claim is one statement: it picks the best claimable task with `FOR UPDATE SKIP LOCKED`
//!   (claimers racing for the same task each take the next one instead of queueing behind each
//!   other) and leases it. It writes no per-job row beyond marking a queued job running once, so
//!   claimers do not serialize on a hot row.
//! - Lock order, to rule out deadlocks: a transaction that changes a job's state, or more than one
//!   task, locks the job row first and its tasks after. Claims, heartbeats and releases lock one
//!   task and nothing after it (a claim marks a queued job running after its commit).
//! - Every change that may add claimable work notifies the [`listen::CHANNEL`] channel in its own
//!   transaction; [`Queue::wait_for_work`] waits for those notifications.
//! - Pooled connections are checked before use, so after a server restart the next call gets a
//!   fresh connection; the call that was in flight during the restart returns its error.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fresco_core::{FrameRange, JobState, TaskKind};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::rows::{
    budget, chunk_number, frame_number, job_select, millis, score_rank, ClaimedRow, HeldRow,
    JobRow, TaskRow, ASSEMBLE_WAITING, HELD_COLUMNS, NEWEST_FIRST, TASK_COLUMNS, TASK_ORDER,
};
use crate::signal::WorkSignal;
use crate::{
    new_token, Admission, ClaimFilter, FailOutcome, JobId, JobRecord, LeaseStatus, NewJob, Queue,
    QueueError, Result, Submitted, TaskLease, TaskRecord, WorkerRecord, WorkerStatus,
};

/// Connections per process. The work notifications hold one of them.
const MAX_CONNECTIONS: u32 = 16;

/// How long a call waits for a free connection (or for the server to come back).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// The shortest wait for work that is due (a back-off or a lease running out) but not yet
/// claimable.
const MIN_WAIT: Duration = Duration::from_millis(100);

/// How long a first claim or wait waits for the work notifications to be in place.
const LISTEN_READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Now, in milliseconds since the Unix epoch, by the database's clock. The start of the
/// statement rather than `clock_timestamp()`: one value for the whole statement, so a statement
/// compares every row with the same now, and the planner can use it in an index condition.
macro_rules! now {
    () => {
        "(extract(epoch from statement_timestamp()) * 1000)::bigint"
    };
}

/// Wakes the waiters of every process (sent when the transaction commits).
macro_rules! notify {
    () => {
        "pg_notify('fresco_work', '')"
    };
}

/// A task still held by the lease that presents this token (`$1` task id, `$2` token), of a job
/// that is not over. Every verb of a lease holder matches with it, so a worker whose lease moved
/// on never touches the task again.
macro_rules! held {
    () => {
        "t.id = $1 AND t.state = 'leased' AND t.token = $2 AND EXISTS (SELECT 1 FROM jobs j \
         WHERE j.id = t.job_id AND j.state IN ('queued', 'running'))"
    };
}

/// Leases the best claimable task (`$1` worker, `$2` token, `$3` lease in ms, then `device`, a
/// condition on the candidate's job `cj`, and `filter`, one on the candidate task `c`).
/// The candidate query walks the `tasks_claim_order` index and stops at the first task that
/// qualifies and that no other claimer has locked; the job's spec and plan are read for the one
/// claimed only.
macro_rules! claim_sql {
    ($device:literal, $filter:literal) => {
        concat!(
            "UPDATE tasks t SET state = 'leased', worker = $1, token = $2, lease_expires_at = ",
            now!(),
            " + $3 FROM jobs j WHERE j.id = t.job_id AND t.id = (",
            "SELECT c.id FROM tasks c WHERE c.state = 'pending' AND c.not_before <= ",
            now!(),
            " AND EXISTS (SELECT 1 FROM jobs cj WHERE cj.id = c.job_id ",
            "AND cj.state IN ('queued', 'running') ",
            $device,
            ") ",
            "AND (c.kind <> 'assemble' OR NOT EXISTS (SELECT 1 FROM tasks s ",
            "WHERE s.job_id = c.job_id AND s.kind = 'score' AND s.state <> 'done')) ",
            $filter,
            " ORDER BY c.priority DESC, c.rank ASC, c.enqueued_at ASC, c.id ASC ",
            "LIMIT 1 FOR UPDATE OF c SKIP LOCKED) ",
            "RETURNING t.id, t.job_id, t.kind, t.chunk, t.frame_start, t.frame_end, t.attempts, ",
            "t.expiries, t.checkpoint, j.spec, j.plan, j.state AS job_state"
        )
    };
}

// After the SQL macros above, which they use.
mod auth;
mod deliveries;
mod expiry;
mod listen;
mod stats;

/// The queue in a PostgreSQL database.
pub struct PgQueue {
    pool: PgPool,
    /// Wakes this process's waiters on the database's notifications.
    signal: Arc<WorkSignal>,
    /// The notification listener, once started (lazily: a `fresco jobs` listing does not need
    /// it).
    listener: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

impl std::fmt::Debug for PgQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgQueue").finish_non_exhaustive()
    }
}

impl Drop for PgQueue {
    fn drop(&mut self) {
        let listener = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(listener) = listener.as_ref() {
            listener.abort();
        }
    }
}

impl PgQueue {
    /// Connects to the database at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`) and brings
    /// its schema up to date. Processes starting together migrate one after the other (the
    /// migrator holds an advisory lock).
    pub async fn connect(url: &str) -> Result<PgQueue> {
        let open_error = |source| QueueError::Open {
            url: crate::redact_url(url),
            source,
        };
        let options = PgConnectOptions::from_str(url).map_err(open_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A connection the server dropped (a restart) is replaced, not handed out.
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        // `run_direct` with a connection: `run`'s generic `Acquire` bound makes this future not
        // `Send` (sqlx's own workaround), and callers spawn `connect`.
        let mut conn = pool.acquire().await.map_err(open_error)?;
        sqlx::migrate!("./migrations/postgres")
            .run_direct(&mut *conn)
            .await?;
        drop(conn);
        Ok(PgQueue {
            pool,
            signal: Arc::new(WorkSignal::default()),
            listener: std::sync::Mutex::new(None),
        })
    }

    /// Starts the notification listener once, and waits (briefly) until it listens. Started and
    /// recorded before the first await, so a caller that gives up waiting (a `select!`) does
    /// not leave a second listener behind.
    async fn ensure_listening(&self) {
        let listening = {
            let mut listener = self.listener.lock().unwrap_or_else(|e| e.into_inner());
            if listener.is_some() {
                return;
            }
            let (ready, listening) = tokio::sync::oneshot::channel();
            let task = tokio::spawn(listen::listen(
                self.pool.clone(),
                self.signal.clone(),
                ready,
            ));
            *listener = Some(task.abort_handle());
            listening
        };
        // If the server is away, go on: the listener keeps trying, waits time out.
        let _ = tokio::time::timeout(LISTEN_READY_TIMEOUT, listening).await;
    }
}

/// Locks a job's row (see the lock order in the module doc); false if it is over or unknown.
async fn lock_active_job(conn: &mut PgConnection, job: &str) -> Result<bool> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1 FOR UPDATE")
            .bind(job)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match state {
        Some(state) => !crate::rows::job_state(&state)?.is_terminal(),
        None => false,
    })
}

/// Fails a job (its row locked) with `error` and cancels its unfinished tasks, whose holders
/// then see `Lost`.
async fn fail_job(conn: &mut PgConnection, job: &str, error: &str) -> Result<()> {
    sqlx::query(concat!(
        "UPDATE jobs SET state = 'failed', last_error = $2, finished_at = ",
        now!(),
        " WHERE id = $1 AND state IN ('queued', 'running')"
    ))
    .bind(job)
    .bind(error)
    .execute(&mut *conn)
    .await?;
    cancel_tasks(conn, job).await
}

async fn cancel_tasks(conn: &mut PgConnection, job: &str) -> Result<()> {
    sqlx::query(concat!(
        "UPDATE tasks SET state = 'canceled', token = NULL, lease_expires_at = NULL, ",
        "finished_at = ",
        now!(),
        " WHERE job_id = $1 AND state IN ('pending', 'leased')"
    ))
    .bind(job)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks a held task of `kind` done; `Lost` (and nothing changed) if the lease is gone.
async fn finish_task(
    conn: &mut PgConnection,
    lease: &TaskLease,
    kind: TaskKind,
) -> Result<LeaseStatus> {
    debug_assert_eq!(
        lease.kind, kind,
        "a {} task completed as {kind}",
        lease.kind
    );
    let changed = sqlx::query(concat!(
        "UPDATE tasks t SET state = 'done', token = NULL, lease_expires_at = NULL, finished_at = ",
        now!(),
        " WHERE ",
        held!(),
        " AND t.kind = $3"
    ))
    .bind(lease.task_id)
    .bind(&lease.token)
    .bind(kind.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(status(changed.rows_affected()))
}

fn status(rows_affected: u64) -> LeaseStatus {
    if rows_affected == 1 {
        LeaseStatus::Held
    } else {
        LeaseStatus::Lost
    }
}

/// The URL for messages, without its password.
impl PgQueue {
    /// Submits a job, for an owner and within its caps when `admission` is given.
    async fn submit_as(&self, job: NewJob, admission: Option<&Admission>) -> Result<Submitted> {
        // Racing submits of one identity: the unique index lets one insert through; the others
        // find its job. Should that job end between our insert and our look-up, insert again.
        for _ in 0..10 {
            let mut tx = self.pool.begin().await?;
            if admission.is_some() {
                // Capped submissions one at a time, so that none counts while another inserts.
                sqlx::query("SELECT pg_advisory_xact_lock(7277856312)")
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(key) = &job.idempotency_key {
                let earlier: Option<String> =
                    sqlx::query_scalar("SELECT id FROM jobs WHERE idempotency_key = $1")
                        .bind(key)
                        .fetch_optional(&mut *tx)
                        .await?;
                if let Some(earlier) = earlier {
                    return Ok(Submitted::Existing(earlier));
                }
            }
            if let Some(admission) = admission {
                if let Err(cap) = auth::check_caps(&mut tx, admission).await {
                    // The same work already queued is returned whatever the caps.
                    let existing: Option<String> = sqlx::query_scalar(
                        "SELECT id FROM jobs WHERE identity = $1 AND state IN ('queued', 'running')",
                    )
                    .bind(&job.identity)
                    .fetch_optional(&mut *tx)
                    .await?;
                    return match existing {
                        Some(existing) => Ok(Submitted::Existing(existing)),
                        None => Err(cap),
                    };
                }
            }
            let id: JobId = uuid::Uuid::new_v4().to_string();
            let inserted: std::result::Result<Option<String>, sqlx::Error> =
                sqlx::query_scalar(concat!(
                    "INSERT INTO jobs (id, identity, state, priority, input, output, spec, ",
                    "max_attempts, max_expiries, idempotency_key, owner, device_kind, enqueued_at) ",
                    "VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $10, $11, ",
                    now!(),
                    ") ON CONFLICT (identity) WHERE state IN ('queued', 'running') DO NOTHING ",
                    "RETURNING id"
                ))
                .bind(&id)
                .bind(&job.identity)
                .bind(job.priority)
                .bind(&job.input)
                .bind(&job.output)
                .bind(&job.spec)
                .bind(budget(job.budgets.max_attempts))
                .bind(budget(job.budgets.max_expiries))
                .bind(&job.idempotency_key)
                .bind(admission.map(|a| &a.owner))
                .bind(job.device_kind.as_str())
                .fetch_optional(&mut *tx)
                .await;
            let inserted = match inserted {
                Ok(inserted) => inserted,
                // The same idempotency key, submitted at the same moment: the next round finds
                // the job the other submit made.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            };
            if inserted.is_none() {
                let existing: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM jobs WHERE identity = $1 AND state IN ('queued', 'running')",
                )
                .bind(&job.identity)
                .fetch_optional(&mut *tx)
                .await?;
                match existing {
                    Some(existing) => return Ok(Submitted::Existing(existing)),
                    None => continue,
                }
            }
            sqlx::query(concat!(
                "INSERT INTO tasks (job_id, kind, chunk, frame_start, frame_end, state, ",
                "not_before, rank, priority, enqueued_at) SELECT id, 'plan', 0, 0, 0, 'pending', ",
                now!(),
                ", 0, priority, enqueued_at FROM jobs WHERE id = $1"
            ))
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            if let Some(url) = admission.and_then(|a| a.callback_url.as_deref()) {
                deliveries::insert(&mut tx, &id, url, crate::now_ms()).await?;
            }
            sqlx::query(concat!("SELECT ", notify!()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Submitted::New(id));
        }
        Err(QueueError::Corrupt(format!(
            "jobs with identity '{}' keep appearing and ending while submitting",
            job.identity
        )))
    }
}

#[async_trait]
impl Queue for PgQueue {
    async fn submit(&self, job: NewJob) -> Result<Submitted> {
        self.submit_as(job, None).await
    }

    async fn claim(
        &self,
        worker: &str,
        lease: Duration,
        filter: &ClaimFilter,
    ) -> Result<Option<TaskLease>> {
        if filter.is_empty() {
            return Ok(None);
        }
        self.ensure_listening().await;
        self.signal.claim_started();
        // One connection for both steps: each acquire checks the connection with a round trip.
        let mut conn = self.pool.acquire().await?;
        expiry::expire_leases(&mut conn).await?;

        let token = new_token();
        // The filters' lists are bound in this order: jobs, then device kinds.
        let sql = match (&filter.jobs, &filter.device_kinds) {
            (None, None) => claim_sql!("", ""),
            (Some(_), None) => claim_sql!("", "AND c.job_id = ANY($4)"),
            (None, Some(_)) => claim_sql!("AND cj.device_kind = ANY($4)", ""),
            (Some(_), Some(_)) => {
                claim_sql!("AND cj.device_kind = ANY($5)", "AND c.job_id = ANY($4)")
            }
        };
        let mut query = sqlx::query_as::<_, ClaimedRow>(sql)
            .bind(worker)
            .bind(&token)
            .bind(millis(lease));
        if let Some(jobs) = &filter.jobs {
            query = query.bind(jobs.clone());
        }
        if let Some(kinds) = &filter.device_kinds {
            query = query.bind(kinds.clone());
        }
        let Some(row) = query.fetch_optional(&mut *conn).await? else {
            return Ok(None);
        };
        if row.job_state == JobState::Queued.as_str() {
            // After the claim's commit, not in it: this locks the job row, and a transaction
            // that locks the job first and then this task (a cancel) must not deadlock with us.
            // Should we die in between, the job stays queued until its next claim.
            sqlx::query(concat!(
                "UPDATE jobs SET state = 'running', started_at = ",
                now!(),
                " WHERE id = $1 AND state = 'queued'"
            ))
            .bind(&row.job_id)
            .execute(&mut *conn)
            .await?;
        }
        row.into_lease(token).map(Some)
    }

    async fn heartbeat(&self, lease: &TaskLease, extend: Duration) -> Result<LeaseStatus> {
        let changed = sqlx::query(concat!(
            "UPDATE tasks t SET lease_expires_at = ",
            now!(),
            " + $3 WHERE ",
            held!()
        ))
        .bind(lease.task_id)
        .bind(&lease.token)
        .bind(millis(extend))
        .execute(&self.pool)
        .await?;
        Ok(status(changed.rows_affected()))
    }

    async fn checkpoint(&self, lease: &TaskLease, note: &str) -> Result<LeaseStatus> {
        let changed = sqlx::query(concat!(
            "UPDATE tasks t SET checkpoint = $3 WHERE ",
            held!()
        ))
        .bind(lease.task_id)
        .bind(&lease.token)
        .bind(note)
        .execute(&self.pool)
        .await?;
        Ok(status(changed.rows_affected()))
    }

    async fn complete_plan(
        &self,
        lease: &TaskLease,
        plan: &str,
        frames_total: u64,
        chunks: &[FrameRange],
    ) -> Result<LeaseStatus> {
        let mut tx = self.pool.begin().await?;
        // The job first: a cancel racing with us either comes before (we see it over) or
        // after (it sees, and cancels, the chunks we add).
        if !lock_active_job(&mut tx, &lease.job_id).await? {
            return Ok(LeaseStatus::Lost);
        }
        if finish_task(&mut tx, lease, TaskKind::Plan).await? == LeaseStatus::Lost {
            return Ok(LeaseStatus::Lost);
        }
        sqlx::query("UPDATE jobs SET plan = $2, frames_total = $3 WHERE id = $1")
            .bind(&lease.job_id)
            .bind(plan)
            .bind(frame_number(frames_total)?)
            .execute(&mut *tx)
            .await?;
        let mut numbers = Vec::with_capacity(chunks.len());
        let mut starts = Vec::with_capacity(chunks.len());
        let mut ends = Vec::with_capacity(chunks.len());
        let mut ranks = Vec::with_capacity(chunks.len());
        for (i, frames) in chunks.iter().enumerate() {
            let chunk = chunk_number(i)?;
            numbers.push(chunk);
            ranks.push(score_rank(chunk));
            starts.push(frame_number(frames.start)?);
            ends.push(frame_number(frames.end)?);
        }
        sqlx::query(concat!(
            "INSERT INTO tasks (job_id, kind, chunk, frame_start, frame_end, state, not_before, ",
            "rank, priority, enqueued_at) SELECT j.id, 'score', c.chunk, c.frame_start, ",
            "c.frame_end, 'pending', ",
            now!(),
            ", c.rank, j.priority, j.enqueued_at ",
            "FROM jobs j, UNNEST($2::int[], $3::bigint[], $4::bigint[], $5::int[]) ",
            "AS c(chunk, frame_start, frame_end, rank) WHERE j.id = $1 ORDER BY c.chunk"
        ))
        .bind(&lease.job_id)
        .bind(numbers)
        .bind(starts)
        .bind(ends)
        .bind(ranks)
        .execute(&mut *tx)
        .await?;
        sqlx::query(concat!(
            "INSERT INTO tasks (job_id, kind, chunk, frame_start, frame_end, state, not_before, ",
            "rank, priority, enqueued_at) SELECT id, 'assemble', 0, 0, 0, 'pending', ",
            now!(),
            ", $2, priority, enqueued_at FROM jobs WHERE id = $1"
        ))
        .bind(&lease.job_id)
        .bind(if chunks.is_empty() {
            0
        } else {
            ASSEMBLE_WAITING
        })
        .execute(&mut *tx)
        .await?;
        sqlx::query(concat!("SELECT ", notify!()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(LeaseStatus::Held)
    }

    async fn complete_chunk(&self, lease: &TaskLease) -> Result<LeaseStatus> {
        let mut tx = self.pool.begin().await?;
        // The job first: completions of one job's last chunks take turns, so one of them sees
        // all chunks done and readies the assemble task (unlocked, each could see the other's
        // chunk still out). A chunk takes seconds to score: this lock is not hot.
        if !lock_active_job(&mut tx, &lease.job_id).await? {
            return Ok(LeaseStatus::Lost);
        }
        if finish_task(&mut tx, lease, TaskKind::Score).await? == LeaseStatus::Lost {
            return Ok(LeaseStatus::Lost);
        }
        let ready = sqlx::query(
            "UPDATE tasks SET rank = 0 WHERE job_id = $1 AND kind = 'assemble' AND rank <> 0 \
             AND NOT EXISTS (SELECT 1 FROM tasks s \
                WHERE s.job_id = $1 AND s.kind = 'score' AND s.state <> 'done')",
        )
        .bind(&lease.job_id)
        .execute(&mut *tx)
        .await?;
        if ready.rows_affected() > 0 {
            // The only work a chunk's completion adds: its job's assemble task.
            sqlx::query(concat!("SELECT ", notify!()))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(LeaseStatus::Held)
    }

    async fn complete_job(&self, lease: &TaskLease) -> Result<LeaseStatus> {
        let mut tx = self.pool.begin().await?;
        if !lock_active_job(&mut tx, &lease.job_id).await? {
            return Ok(LeaseStatus::Lost);
        }
        if finish_task(&mut tx, lease, TaskKind::Assemble).await? == LeaseStatus::Lost {
            return Ok(LeaseStatus::Lost);
        }
        sqlx::query(concat!(
            "UPDATE jobs SET state = 'succeeded', finished_at = ",
            now!(),
            " WHERE id = $1"
        ))
        .bind(&lease.job_id)
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
        let mut tx = self.pool.begin().await?;
        if !lock_active_job(&mut tx, &lease.job_id).await? {
            return Ok(FailOutcome::LeaseLost);
        }
        let held: Option<HeldRow> = sqlx::query_as(&format!(
            "SELECT {HELD_COLUMNS} FROM tasks t JOIN jobs j ON j.id = t.job_id \
             WHERE t.id = $1 AND t.state = 'leased' AND t.token = $2 FOR UPDATE OF t"
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
            let not_before: i64 = sqlx::query_scalar(concat!(
                "UPDATE tasks SET state = 'pending', attempts = $2, token = NULL, ",
                "lease_expires_at = NULL, last_error = $3, not_before = ",
                now!(),
                " + $4 WHERE id = $1 RETURNING not_before"
            ))
            .bind(lease.task_id)
            .bind(attempts)
            .bind(error)
            .bind(millis(backoff))
            .fetch_one(&mut *tx)
            .await?;
            // The job shows the latest error while it retries.
            sqlx::query("UPDATE jobs SET last_error = $2 WHERE id = $1")
                .bind(&lease.job_id)
                .bind(&job_error)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(FailOutcome::Retrying {
                not_before_ms: not_before,
            });
        }
        sqlx::query(concat!(
            "UPDATE tasks SET state = 'failed', attempts = $2, token = NULL, ",
            "lease_expires_at = NULL, last_error = $3, finished_at = ",
            now!(),
            " WHERE id = $1"
        ))
        .bind(lease.task_id)
        .bind(attempts)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        fail_job(&mut tx, &lease.job_id, &job_error).await?;
        tx.commit().await?;
        Ok(FailOutcome::JobFailed)
    }

    async fn release(&self, lease: &TaskLease) -> Result<()> {
        sqlx::query(concat!(
            "WITH released AS (UPDATE tasks SET state = 'pending', token = NULL, ",
            "lease_expires_at = NULL, not_before = ",
            now!(),
            " WHERE id = $1 AND state = 'leased' AND token = $2 RETURNING id) ",
            "SELECT released.id, ",
            notify!(),
            " FROM released"
        ))
        .bind(lease.task_id)
        .bind(&lease.token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn expire_worker(&self, worker: &str) -> Result<u64> {
        let mut conn = self.pool.acquire().await?;
        let tasks: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM tasks WHERE worker = $1 AND state = 'leased' ORDER BY id",
        )
        .bind(worker)
        .fetch_all(&mut *conn)
        .await?;
        let mut ended = 0;
        for task in tasks {
            if expiry::expire_task(&mut conn, task, Some(worker)).await? {
                ended += 1;
            }
        }
        crate::stats::count_lease_expiries(ended);
        Ok(ended)
    }

    async fn cancel(&self, job: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let canceled: Option<String> = sqlx::query_scalar(concat!(
            "UPDATE jobs SET state = 'canceled', finished_at = ",
            now!(),
            " WHERE id = $1 AND state IN ('queued', 'running') RETURNING id"
        ))
        .bind(job)
        .fetch_optional(&mut *tx)
        .await?;
        if canceled.is_none() {
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM jobs WHERE id = $1")
                .bind(job)
                .fetch_optional(&mut *tx)
                .await?;
            return match exists {
                Some(_) => Ok(false),
                None => Err(QueueError::NoSuchJob(job.into())),
            };
        }
        cancel_tasks(&mut tx, job).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn retry(&self, job: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let found: Option<(String, String)> =
            sqlx::query_as("SELECT state, identity FROM jobs WHERE id = $1 FOR UPDATE")
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
        let requeued = sqlx::query(
            "UPDATE jobs SET state = 'queued', started_at = NULL, finished_at = NULL \
             WHERE id = $1",
        )
        .bind(job)
        .execute(&mut *tx)
        .await;
        match requeued {
            Ok(_) => {}
            // Another job with this identity is queued or running: it does the work.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tracing::debug!("not retrying job {job}: identity {identity} is active");
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
        sqlx::query(concat!(
            "UPDATE tasks SET state = 'pending', attempts = 0, expiries = 0, token = NULL, ",
            "lease_expires_at = NULL, finished_at = NULL, not_before = ",
            now!(),
            " WHERE job_id = $1 AND (state IN ('failed', 'canceled') OR kind = 'score')"
        ))
        .bind(job)
        .execute(&mut *tx)
        .await?;
        // Chunks pending again: the assemble task waits for them.
        sqlx::query(
            "UPDATE tasks SET rank = $2 WHERE job_id = $1 AND kind = 'assemble' \
             AND EXISTS (SELECT 1 FROM tasks s \
                WHERE s.job_id = $1 AND s.kind = 'score' AND s.state <> 'done')",
        )
        .bind(job)
        .bind(ASSEMBLE_WAITING)
        .execute(&mut *tx)
        .await?;
        sqlx::query(concat!("SELECT ", notify!()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn job(&self, job: &str) -> Result<Option<JobRecord>> {
        let row: Option<JobRow> = sqlx::query_as(&job_select("j.id = $1", "", None))
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
        let sql = job_select("j.idempotency_key = $1", "", None);
        let row: Option<JobRow> = sqlx::query_as(&sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(JobRow::into_record).transpose()
    }

    async fn active_job(&self, identity: &str) -> Result<Option<JobRecord>> {
        let sql = job_select(
            "j.identity = $1 AND j.state IN ('queued', 'running')",
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
            "SELECT {TASK_COLUMNS} FROM tasks t WHERE t.job_id = $1 {TASK_ORDER}"
        ))
        .bind(job)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TaskRow::into_record).collect()
    }

    async fn worker_seen(&self, status: &WorkerStatus) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO workers (name, host, device, state, current, started_at, last_seen) ",
            "VALUES ($1, $2, $3, $4, $5, ",
            now!(),
            ", ",
            now!(),
            ") ON CONFLICT (name) DO UPDATE SET host = excluded.host, device = excluded.device, ",
            "state = excluded.state, current = excluded.current, last_seen = excluded.last_seen"
        ))
        .bind(&status.name)
        .bind(&status.host)
        .bind(&status.device)
        .bind(&status.state)
        .bind(&status.current)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn workers(&self, within: Duration) -> Result<Vec<WorkerRecord>> {
        let rows: Vec<crate::rows::WorkerRow> = sqlx::query_as(concat!(
            "SELECT name, host, device, state, current, started_at, last_seen FROM workers ",
            "WHERE last_seen >= ",
            now!(),
            " - $1 ORDER BY last_seen DESC, name"
        ))
        .bind(crate::rows::millis(within))
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
        sqlx::query(concat!(
            "INSERT INTO job_log (job_id, at, worker, message) VALUES ($1, ",
            now!(),
            ", $2, $3)"
        ))
        .bind(job)
        .bind(worker)
        .bind(message)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn job_log(
        &self,
        job: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<crate::LogLine>> {
        let rows: Vec<(i64, i64, Option<String>, String)> = sqlx::query_as(
            "SELECT id, at, worker, message FROM job_log WHERE job_id = $1 AND id > $2 \
             ORDER BY id LIMIT $3",
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
        stats::save_preview(&self.pool, preview).await
    }

    async fn preview(&self, job: &str) -> Result<Option<crate::Preview>> {
        stats::preview_of(&self.pool, job).await
    }

    async fn wait_for_work(&self, timeout: Duration) {
        self.ensure_listening().await;
        // Nobody notifies when a back-off or a lease runs out: wake up for the next one due.
        let next_due: Result<Option<i64>, sqlx::Error> = sqlx::query_scalar(concat!(
            "SELECT LEAST((SELECT MIN(not_before) FROM tasks WHERE state = 'pending' ",
            "AND not_before > ",
            now!(),
            "), (SELECT MIN(lease_expires_at) FROM tasks WHERE state = 'leased')) - ",
            now!()
        ))
        .fetch_one(&self.pool)
        .await;
        let timeout = match next_due {
            // A little after it is due (the next claim puts back a lease that ran out), and
            // never a busy loop should something stay due.
            Ok(Some(ms)) => {
                let due = Duration::from_millis(ms.max(0).unsigned_abs() + 20);
                timeout.min(due.max(MIN_WAIT))
            }
            Ok(None) => timeout,
            Err(e) => {
                tracing::debug!("queue: cannot read when work is next due: {e}");
                timeout.min(Duration::from_secs(1))
            }
        };
        self.signal.wait(timeout).await;
    }
}

/// The backend's task counts, over the jobs of one device kind or all.
impl PgQueue {
    async fn count_tasks(&self, device_kind: Option<&str>) -> Result<crate::TaskCounts> {
        let (pending, leased): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(CASE WHEN t.state = 'pending' THEN 1 END), \
             COUNT(CASE WHEN t.state = 'leased' THEN 1 END) \
             FROM tasks t JOIN jobs j ON j.id = t.job_id \
             WHERE j.state IN ('queued', 'running') \
             AND (t.state = 'leased' OR (t.state = 'pending' AND t.rank <> $1)) \
             AND ($2::text IS NULL OR j.device_kind = $2::text)",
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
