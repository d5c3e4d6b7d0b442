//! Claims by device kind, on both backends: a job pins the kind of device it was submitted for
//! (`NewJob::device_kind`, kept in the `jobs.device_kind` column), and a worker's
//! claim filter takes only the tasks of jobs of its own kind, so that a CPU worker never scores
//! a GPU job's chunks (results differ in the last bits between devices), nor the reverse.
//! Also: migration 0007 fills the column of jobs queued before it from their specs.

mod support;

use fresco_core::{DeviceKind, TaskKind};
use fresco_queue::{ClaimFilter, NewJob};
use sqlx::Connection as _;
use support::{job, only, submit, Db, LONG};

/// A job submitted for `device`.
fn job_for(device: DeviceKind, identity: &str) -> NewJob {
    NewJob {
        device_kind: device,
        ..job(identity)
    }
}

/// A spec as an older fresco queued it, before the column: the kind in `model.device_kind`,
/// or none (a cpu job); what migration 0007 reads.
fn older_spec(device: Option<&str>, identity: &str) -> String {
    match device {
        Some(device) => format!(r#"{{"model":{{"device_kind":"{device}","name":"{identity}"}}}}"#),
        None => format!(r#"{{"model":{{"name":"{identity}"}}}}"#),
    }
}

async fn listed_jobs_carry_their_device_kind(db: &Db) {
    let q = db.open().await;
    let gpu = submit(&q, job_for(DeviceKind::Cuda, "gpu")).await;
    let cpu = submit(&q, job("cpu")).await;
    let kind = |id: &str| {
        let q = &q;
        let id = id.to_string();
        async move { q.job(&id).await.unwrap().unwrap().device_kind }
    };
    assert_eq!(kind(&gpu).await, DeviceKind::Cuda);
    assert_eq!(kind(&cpu).await, DeviceKind::Cpu, "the default kind is cpu");
}

async fn claims_take_only_their_device_kind(db: &Db) {
    let q = db.open().await;
    let cpu = ClaimFilter::device_kind("cpu");
    let cuda = ClaimFilter::device_kind("cuda");
    // Submitted first and at a higher priority: the best task in the claim order.
    let mut gpu_new = job_for(DeviceKind::Cuda, "gpu");
    gpu_new.priority = 5;
    let gpu = submit(&q, gpu_new).await;
    assert!(
        q.claim("cpu-worker", LONG, &cpu).await.unwrap().is_none(),
        "a cpu worker took a cuda job's plan"
    );
    let lease = q.claim("gpu-worker", LONG, &cuda).await.unwrap().unwrap();
    assert_eq!(
        (lease.job_id.as_str(), lease.kind),
        (gpu.as_str(), TaskKind::Plan)
    );
    q.complete_plan(&lease, "{}", 20, &support::chunks(2))
        .await
        .unwrap();

    // Jobs of both kinds (and one of the default kind: cpu) wait together.
    let cpu_job = submit(&q, job_for(DeviceKind::Cpu, "cpu")).await;
    let older = submit(&q, job("older")).await;
    let mut cpu_claims = Vec::new();
    while let Some(lease) = q.claim("cpu-worker", LONG, &cpu).await.unwrap() {
        cpu_claims.push(lease.job_id);
    }
    cpu_claims.sort();
    let mut expected = vec![cpu_job.clone(), older.clone()];
    expected.sort();
    assert_eq!(cpu_claims, expected, "a cpu worker takes the cpu jobs only");

    // The cuda job's chunks, still pending, go to the cuda worker.
    let mut gpu_claims = Vec::new();
    while let Some(lease) = q.claim("gpu-worker", LONG, &cuda).await.unwrap() {
        assert_eq!(lease.job_id, gpu);
        assert_eq!(lease.kind, TaskKind::Score);
        gpu_claims.push(lease);
    }
    assert_eq!(
        gpu_claims.iter().map(|l| l.chunk).collect::<Vec<_>>(),
        vec![0, 1]
    );
    for lease in &gpu_claims {
        q.complete_chunk(lease).await.unwrap();
    }
    // Its assemble task, now claimable, is the cuda workers' too.
    assert!(q.claim("cpu-worker", LONG, &cpu).await.unwrap().is_none());
    let lease = q.claim("gpu-worker", LONG, &cuda).await.unwrap().unwrap();
    assert_eq!(
        (lease.job_id.as_str(), lease.kind),
        (gpu.as_str(), TaskKind::Assemble)
    );

    // What each kind's workers are sized by: the cuda job's assemble task (held), the cpu
    // jobs' plans (held).
    let counts = |pending, leased| fresco_queue::TaskCounts { pending, leased };
    assert_eq!(q.task_counts_of_kind("cuda").await.unwrap(), counts(0, 1));
    assert_eq!(q.task_counts_of_kind("cpu").await.unwrap(), counts(0, 2));
    assert_eq!(q.task_counts().await.unwrap(), counts(0, 3));

    // Both filters together, and an empty list of kinds (nothing).
    let next = submit(&q, job_for(DeviceKind::Cuda, "next")).await;
    let mut both = only(&next);
    both.device_kinds = Some(vec!["cpu".into()]);
    assert!(q.claim("w", LONG, &both).await.unwrap().is_none());
    both.device_kinds = Some(vec!["cpu".into(), "cuda".into()]);
    assert_eq!(
        q.claim("w", LONG, &both).await.unwrap().unwrap().job_id,
        next
    );
    let nothing = ClaimFilter {
        device_kinds: Some(vec![]),
        ..ClaimFilter::default()
    };
    let last = submit(&q, job_for(DeviceKind::Cpu, "last")).await;
    assert!(q.claim("w", LONG, &nothing).await.unwrap().is_none());
    // No device filter: any kind.
    assert_eq!(
        q.claim("w", LONG, &ClaimFilter::default())
            .await
            .unwrap()
            .unwrap()
            .job_id,
        last
    );
}

/// Undoes migration 0007 (as if the database were one version older), queues jobs with raw
/// SQL as the older fresco did, and opens the queue again: the migration runs and fills the
/// column from the specs.
async fn migration_fills_the_column_from_the_spec(db: &Db) {
    let q = db.open().await;
    drop(q);
    let (gpu, cpu, older) = (
        older_spec(Some("cuda"), "gpu"),
        older_spec(Some("cpu"), "cpu"),
        older_spec(None, "older"),
    );
    let rollback = [
        "DELETE FROM _sqlx_migrations WHERE version = 7",
        "ALTER TABLE jobs DROP COLUMN device_kind",
    ];
    let sqlite = db.url().starts_with("sqlite");
    // SQLite numbers jobs in the insert (PostgreSQL by an identity column).
    let insert = |n: usize| {
        let (seq_column, seq, marks) = if sqlite {
            (", seq", format!(", {}", n + 1), ["?1", "?2", "?3"])
        } else {
            ("", String::new(), ["$1", "$2", "$3"])
        };
        format!(
            "INSERT INTO jobs (id, identity, state, priority, input, output, spec, max_attempts, \
             max_expiries, enqueued_at{seq_column}) VALUES ({}, {}, 'queued', 0, 'in', 'out', {}, \
             3, 3, {n}{seq})",
            marks[0], marks[1], marks[2]
        )
    };
    let jobs = [("j-gpu", &gpu), ("j-cpu", &cpu), ("j-older", &older)];
    if sqlite {
        let path = db.url().trim_start_matches("sqlite://");
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{path}"))
            .await
            .unwrap();
        for sql in rollback {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        for (n, (id, spec)) in jobs.iter().enumerate() {
            sqlx::query(sqlx::AssertSqlSafe(insert(n)))
                .bind(id)
                .bind(id)
                .bind(spec)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn.close().await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
        for sql in rollback {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        for (n, (id, spec)) in jobs.iter().enumerate() {
            sqlx::query(sqlx::AssertSqlSafe(insert(n)))
                .bind(id)
                .bind(id)
                .bind(spec)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn.close().await.unwrap();
    }
    // Opening migrates.
    let q = db.open().await;
    drop(q);
    let kinds: Vec<(String, String)> = if sqlite {
        let path = db.url().trim_start_matches("sqlite://");
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{path}"))
            .await
            .unwrap();
        sqlx::query_as("SELECT id, device_kind FROM jobs ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
        sqlx::query_as("SELECT id, device_kind FROM jobs ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(
        kinds,
        vec![
            ("j-cpu".to_string(), "cpu".to_string()),
            ("j-gpu".to_string(), "cuda".to_string()),
            ("j-older".to_string(), "cpu".to_string()),
        ]
    );
}

macro_rules! backend_tests {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let db = super::Db::sqlite();
                    super::$check(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some(db) = super::Db::postgres().await else { return };
                    super::$check(&db).await;
                }
            )*
        }
    };
}

backend_tests!(
    listed_jobs_carry_their_device_kind,
    claims_take_only_their_device_kind,
    migration_fills_the_column_from_the_spec,
);
