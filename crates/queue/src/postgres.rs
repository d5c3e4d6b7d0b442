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
//!   transaction (a release, a single statement, right after it); [`crate::Leases::wait_for_work`]
//!   waits for those notifications.
//! - Pooled connections are checked before use, so after a server restart the next call gets a
//!   fresh connection; the call that was in flight during the restart returns its error.

use fresco_core::{FrameRange, JobState, TaskKind};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use crate::rows::{budget, chunk_number, frame_number, millis, score_rank, ClaimedRow};
use crate::signal::WorkSignal;
use crate::{
    new_token, Admission, ClaimFilter, JobId, NewJob, QueueError, Result, Submitted, TaskLease,
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

/// What the shared verbs (`shared/mod.rs`) run on here.
type Backend = PgQueue;
type Conn = PgConnection;

/// A job or held task read to change it is locked (see the lock order in the module doc).
const LOCK_ROW: &str = "FOR UPDATE";
const LOCK_TASK: &str = "FOR UPDATE OF t";

/// The planner picks the index for done chunks by itself.
const DONE_CHUNKS_INDEX: &str = "";

// After the SQL macros above, which they use.
mod expiry;
mod listen;
// Compiled once per backend on purpose: the shared verbs are one source, not one module.
#[allow(clippy::duplicate_mod)]
#[path = "shared/mod.rs"]
mod shared;

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
            .run_direct(None, &mut *conn, false)
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

    /// A write transaction. Dropping it uncommitted rolls back.
    async fn write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// A write of one statement: a pooled connection, the statement its own transaction.
    async fn write_one(&self) -> Result<Autocommit> {
        Ok(Autocommit(self.pool.acquire().await?))
    }

    /// Locks a job's row (see the lock order in the module doc); false if it is over or
    /// unknown.
    async fn lock_job(conn: &mut PgConnection, job: &str) -> Result<bool> {
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

    /// Wakes the waiters of every process, when the transaction on `conn` commits.
    async fn work_added(&self, conn: &mut PgConnection) -> Result<()> {
        sqlx::query(concat!("SELECT ", notify!()))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// A pooled connection for one statement, which commits by itself: what [`PgQueue::write_one`]
/// gives, with the `commit` of a transaction so that the shared verbs read alike.
struct Autocommit(PoolConnection<Postgres>);

impl Autocommit {
    async fn commit(self) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

impl std::ops::Deref for Autocommit {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.0
    }
}

impl std::ops::DerefMut for Autocommit {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.0
    }
}

/// Submission: racing submits of one identity meet at the unique index on active identities.
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
                if let Some(earlier) = shared::job_with_key(&mut tx, key).await? {
                    return Ok(Submitted::Existing(earlier));
                }
            }
            if let Some(admission) = admission {
                if let Err(cap) = shared::accounts::check_caps(&mut tx, admission).await {
                    // The same work already queued is returned whatever the caps.
                    return match shared::active_with_identity(&mut tx, &job.identity).await? {
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
                match shared::active_with_identity(&mut tx, &job.identity).await? {
                    Some(existing) => return Ok(Submitted::Existing(existing)),
                    None => continue,
                }
            }
            shared::insert_task(&mut tx, &id, TaskKind::Plan, 0, None, 0).await?;
            if let Some(url) = admission.and_then(|a| a.callback_url.as_deref()) {
                shared::deliveries::insert(&mut tx, &id, url, crate::now_ms()).await?;
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

/// The verbs PostgreSQL runs its own way (see `shared/mod.rs`).
impl PgQueue {
    /// [`Leases::claim`](crate::Leases::claim) in one statement; lease expiries first.
    async fn claim_task(
        &self,
        worker: &str,
        lease: Duration,
        filter: &ClaimFilter,
    ) -> Result<Option<TaskLease>> {
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
            shared::mark_running(&mut conn, &row.job_id).await?;
        }
        row.into_lease(token).map(Some)
    }

    /// A plan's score tasks, in one insert.
    async fn insert_chunks(
        conn: &mut PgConnection,
        job: &str,
        chunks: &[FrameRange],
    ) -> Result<()> {
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
        .bind(job)
        .bind(numbers)
        .bind(starts)
        .bind(ends)
        .bind(ranks)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// [`Leases::expire_worker`](crate::Leases::expire_worker): one lease at a time, each
    /// in a transaction that locks the job first.
    async fn expire_held(&self, worker: &str) -> Result<u64> {
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

    /// [`Leases::wait_for_work`](crate::Leases::wait_for_work): the notifications, or the
    /// next back-off or lease due.
    async fn wait(&self, timeout: Duration) {
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
