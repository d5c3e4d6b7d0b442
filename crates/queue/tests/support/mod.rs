//! Databases for the backend suite: a SQLite file in a temporary folder, or a PostgreSQL database
//! of its own on the test server (created for one check, dropped after it), so checks run in
//! parallel without seeing each other's jobs; and the small steps the checks share.

// Each test binary uses part of this.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use fresco_core::{FrameRange, RetryBudgets, TaskKind};
use fresco_queue::{ClaimFilter, LeaseStatus, NewJob, Queue, Submitted, TaskLease, TaskRecord};
use sqlx::Connection as _;

/// The server for the PostgreSQL checks (an admin URL: it creates and drops databases).
const URL_VAR: &str = "FRESCO_TEST_POSTGRES_URL";
/// Set to 1 where skipping the PostgreSQL checks would hide a failure (CI).
const REQUIRE_VAR: &str = "FRESCO_REQUIRE_POSTGRES";

/// One check's database. Clones share it; the last one dropped removes it.
#[derive(Clone)]
pub struct Db(Arc<Inner>);

enum Inner {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl Db {
    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        // A folder that does not exist yet: opening creates it.
        let url = format!("sqlite://{}", dir.path().join("queue/queue.db").display());
        Db(Arc::new(Inner::Sqlite { _dir: dir, url }))
    }

    /// A fresh database on the test server, or None (after saying why) when there is none.
    pub async fn postgres() -> Option<Db> {
        let admin_url = match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
                    panic!(
                        "{REQUIRE_VAR}=1 but {URL_VAR} is not set: start a server with \
                         scripts/postgres.sh and set {URL_VAR} to the URL it prints"
                    );
                }
                eprintln!(
                    "skipped: {URL_VAR} is not set (e.g. {URL_VAR}=$(scripts/postgres.sh | tail -1))"
                );
                return None;
            }
        };
        let name = format!("fresco_test_{}", hex::encode(rand::random::<[u8; 6]>()));
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {URL_VAR}={admin_url}: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let url = with_database(&admin_url, &name);
        Some(Db(Arc::new(Inner::Postgres {
            admin_url,
            name,
            url,
        })))
    }

    /// The queue URL of this database.
    pub fn url(&self) -> &str {
        match &*self.0 {
            Inner::Sqlite { url, .. } | Inner::Postgres { url, .. } => url,
        }
    }

    /// Another queue instance on this database, as another process would open it.
    pub async fn open(&self) -> Arc<dyn Queue> {
        fresco_queue::open(self.url()).await.unwrap()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let Inner::Postgres {
            admin_url, name, ..
        } = self
        else {
            return;
        };
        // Drop runs inside the check's runtime, which cannot block on async work: use a thread
        // with a runtime of its own.
        let (admin_url, name) = (admin_url.clone(), name.clone());
        let database = name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                // FORCE: queues of a failed check may still hold connections.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await?;
                admin.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {name}: {e}");
        }
    }
}

/// `url` with its database replaced by `name` (options after `?` kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[after_scheme..]
        .find('/')
        .map(|i| after_scheme + i)
        .unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..host_end])
}

/// A lease no check outlives.
pub const LONG: Duration = Duration::from_secs(60);
/// A lease a check waits out.
pub const SHORT: Duration = Duration::from_millis(250);
/// Longer than [`SHORT`], with room for a slow machine.
pub const PAST_SHORT: Duration = Duration::from_millis(400);

/// A job of default budgets and priority whose texts name `identity`.
pub fn job(identity: &str) -> NewJob {
    NewJob {
        identity: identity.into(),
        input: format!("/in/{identity}.mp4"),
        output: format!("/out/{identity}.mp4"),
        spec: format!("{{\"identity\":\"{identity}\"}}"),
        device_kind: fresco_core::DeviceKind::Cpu,
        priority: 0,
        budgets: RetryBudgets::default(),
        idempotency_key: None,
    }
}

/// Retry budgets.
pub fn budgets(max_attempts: u32, max_expiries: u32) -> RetryBudgets {
    RetryBudgets {
        max_attempts,
        max_expiries,
    }
}

/// Submits a job that must be new.
pub async fn submit(q: &Arc<dyn Queue>, new: NewJob) -> String {
    match q.submit(new).await.unwrap() {
        Submitted::New(id) => id,
        other => panic!("expected a new job, got {other:?}"),
    }
}

/// Claims of this job only.
pub fn only(job: &str) -> ClaimFilter {
    ClaimFilter {
        jobs: Some(vec![job.to_string()]),
        ..ClaimFilter::default()
    }
}

/// Claims anything for [`LONG`].
pub async fn claim(q: &Arc<dyn Queue>, worker: &str) -> Option<TaskLease> {
    q.claim(worker, LONG, &ClaimFilter::default())
        .await
        .unwrap()
}

/// Chunks of ten frames.
pub fn chunks(n: u64) -> Vec<FrameRange> {
    (0..n)
        .map(|i| FrameRange {
            start: i * 10,
            end: i * 10 + 10,
        })
        .collect()
}

/// Claims and completes `job`'s plan with `n` chunks of ten frames.
pub async fn plan(q: &Arc<dyn Queue>, job: &str, n: u64) {
    let lease = q.claim("planner", LONG, &only(job)).await.unwrap().unwrap();
    assert_eq!(lease.kind, TaskKind::Plan);
    let status = q
        .complete_plan(&lease, "{\"plan\":1}", n * 10, &chunks(n))
        .await
        .unwrap();
    assert_eq!(status, LeaseStatus::Held);
}

/// What a lease is for: job, kind, chunk.
pub fn describe(lease: &TaskLease) -> (String, TaskKind, u32) {
    (lease.job_id.clone(), lease.kind, lease.chunk)
}

/// The task a lease is for, as listed now.
pub async fn task_of(q: &Arc<dyn Queue>, lease: &TaskLease) -> TaskRecord {
    q.tasks(&lease.job_id)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.id == lease.task_id)
        .unwrap()
}
