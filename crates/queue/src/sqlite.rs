//! The SQLite backend: one database file on one machine, shared by several worker processes.
//!
//! SQLite has one writer at a time. Every write here is a transaction that takes the write lock
//! up front (`BEGIN IMMEDIATE`) and waits for it (busy timeout): a transaction that reads first
//! and upgrades later fails with `SQLITE_BUSY` at once when another process wrote in between,
//! which a worker would see as a database error. Within one process, writers queue on a mutex
//! first, so they wake when the writer before them is done instead of sleeping in SQLite's busy
//! handler.
//!
//! Times are this machine's clock ([`crate::now_ms`], or `julianday('now')` in the shared
//! statements, the same clock): every process sharing the file runs on it. There are no
//! notifications between processes, so [`crate::Leases::wait_for_work`] wakes on this process's
//! own changes and otherwise polls.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use fresco_core::{FrameRange, JobState, TaskKind};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection as _, Sqlite, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use crate::rows::{budget, chunk_number, millis, score_rank, ClaimedRow};
use crate::signal::WorkSignal;
use crate::{
    new_token, now_ms, Admission, ClaimFilter, JobId, NewJob, QueueError, Result, Submitted,
    TaskLease,
};

/// Now, in milliseconds since the Unix epoch, by this machine's clock (the one
/// [`crate::now_ms`] reads) as SQLite reads it: one value for the whole statement.
macro_rules! now {
    () => {
        "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)"
    };
}

/// What the shared verbs (`shared/mod.rs`) run on here.
type Backend = SqliteQueue;
type Conn = SqliteConnection;

/// No row locks: the write transaction holds SQLite's write lock.
const LOCK_ROW: &str = "";
const LOCK_TASK: &str = "";

/// Stats read done chunks by this index: named, because SQLite, on a file never analyzed, may
/// otherwise scan the whole table.
const DONE_CHUNKS_INDEX: &str = "INDEXED BY tasks_done_chunks";

// After the SQL macro above, which they use.
mod expiry;
// Compiled once per backend on purpose: the shared verbs are one source, not one module.
#[allow(clippy::duplicate_mod)]
#[path = "shared/mod.rs"]
mod shared;

use expiry::expire_leases;

/// How long a write waits for another process's write to finish before it errors.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest [`crate::Leases::wait_for_work`] sleeps before looking again: work another
/// process adds is seen this late at most.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Connections per process: reads run in parallel with the one writer (WAL).
const MAX_CONNECTIONS: u32 = 4;

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
            .run_direct(None, &mut *tx, false)
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
    async fn write(&self) -> Result<Write<'_>> {
        let gate = self.write_gate.lock().await;
        let pool = self.pool.clone();
        let tx = tokio::spawn(async move { pool.begin_with("BEGIN IMMEDIATE").await })
            .await
            .map_err(|e| {
                crate::QueueError::Corrupt(format!("the transaction task failed: {e}"))
            })??;
        Ok(Write { _gate: gate, tx })
    }

    /// A write of one statement: on SQLite a write transaction like any other.
    async fn write_one(&self) -> Result<Write<'_>> {
        self.write().await
    }

    /// No row locks on SQLite: the write lock covers the whole transaction. True: a job that
    /// is over shows in the statements that follow (they match active jobs only).
    async fn lock_job(_conn: &mut SqliteConnection, _job: &str) -> Result<bool> {
        Ok(true)
    }

    /// Wakes this process's waiters (other processes poll). Their claims wait for the write
    /// lock, so they see the work once this transaction is committed.
    async fn work_added(&self, _conn: &mut SqliteConnection) -> Result<()> {
        self.signal.signal();
        Ok(())
    }
}

/// A write transaction holding SQLite's write lock and this process's write gate. Dropping it
/// uncommitted rolls back.
struct Write<'a> {
    _gate: MutexGuard<'a, ()>,
    tx: Transaction<'static, Sqlite>,
}

impl Write<'_> {
    async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for Write<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for Write<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
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

impl SqliteQueue {
    /// Submits a job, for an owner and within its caps when `admission` is given.
    async fn submit_as(&self, job: NewJob, admission: Option<&Admission>) -> Result<Submitted> {
        let mut tx = self.write().await?;
        // The write lock makes these checks and the insert one step for every process.
        if let Some(key) = &job.idempotency_key {
            if let Some(earlier) = shared::job_with_key(&mut tx, key).await? {
                return Ok(Submitted::Existing(earlier));
            }
        }
        if let Some(id) = shared::active_with_identity(&mut tx, &job.identity).await? {
            return Ok(Submitted::Existing(id));
        }
        if let Some(admission) = admission {
            shared::accounts::check_caps(&mut tx, admission).await?;
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
        shared::insert_task(&mut tx, &id, TaskKind::Plan, 0, None, 0).await?;
        if let Some(url) = admission.and_then(|a| a.callback_url.as_deref()) {
            shared::deliveries::insert(&mut tx, &id, url, now).await?;
        }
        tx.commit().await?;
        self.signal.signal();
        Ok(Submitted::New(id))
    }
}

/// The verbs SQLite runs its own way (see `shared/mod.rs`).
impl SqliteQueue {
    /// [`Leases::claim`](crate::Leases::claim) under the write lock: lease expiries first, then the best candidate.
    async fn claim_task(
        &self,
        worker: &str,
        lease: Duration,
        filter: &ClaimFilter,
    ) -> Result<Option<TaskLease>> {
        let jobs = filter.jobs.as_deref();
        let devices = filter.device_kinds.as_deref();
        self.signal.claim_started();
        let mut tx = self.write().await?;
        let expired = expire_leases(&mut tx, now_ms(), None).await?;
        // Read after the expiries: a task they put back is pending from SQLite's `now` in
        // that statement, which must not be later than the `now` this claim compares with.
        let now = now_ms();

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
        let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(now);
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
                    shared::mark_running(&mut tx, &row.job_id).await?;
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

    /// A plan's score tasks, one insert each, in order.
    async fn insert_chunks(
        conn: &mut SqliteConnection,
        job: &str,
        chunks: &[FrameRange],
    ) -> Result<()> {
        for (i, frames) in chunks.iter().enumerate() {
            let chunk = chunk_number(i)?;
            shared::insert_task(
                conn,
                job,
                TaskKind::Score,
                chunk,
                Some(frames),
                score_rank(chunk),
            )
            .await?;
        }
        Ok(())
    }

    /// [`Leases::expire_worker`](crate::Leases::expire_worker).
    async fn expire_held(&self, worker: &str) -> Result<u64> {
        let mut tx = self.write().await?;
        let expired = expire_leases(&mut tx, now_ms(), Some(worker)).await?;
        tx.commit().await?;
        crate::stats::count_lease_expiries(expired.put_back + expired.failed);
        if expired.put_back > 0 {
            self.signal.signal();
        }
        Ok(expired.put_back + expired.failed)
    }

    /// [`Leases::wait_for_work`](crate::Leases::wait_for_work): this process's signals, or the next poll.
    async fn wait(&self, timeout: Duration) {
        self.signal.wait(timeout.min(POLL_INTERVAL)).await;
    }
}
