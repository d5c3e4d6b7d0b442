//! Worker processes sharing one SQLite file: the real thing the in-process checks of
//! `backend.rs` stand in for (separate instances there share the file, but not the process).

use std::collections::HashSet;

use fresco_core::TaskKind;
use fresco_queue::{ClaimFilter, LeaseStatus};

mod support;
use support::{job, plan, submit, Db, LONG};

/// Set in the claimer processes of [`sqlite_worker_processes_share_one_file`]: `URL|WORKER`.
const CLAIMER_VAR: &str = "FRESCO_TEST_QUEUE_CLAIMER";

/// Worker processes sharing one SQLite file never get the same task: this test binary, run
/// again as [`sqlite_claimer_process`] three times at once, claims until nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_worker_processes_share_one_file() {
    let db = Db::sqlite();
    let q = db.open().await;
    let id = submit(&q, job("shared")).await;
    plan(&q, &id, 60).await;
    let exe = std::env::current_exe().unwrap();
    let mut processes = tokio::task::JoinSet::new();
    for w in 0..3 {
        let mut command = tokio::process::Command::new(&exe);
        command
            .args(["--exact", "sqlite_claimer_process", "--nocapture"])
            .env(CLAIMER_VAR, format!("{}|p{w}", db.url()))
            .kill_on_drop(true);
        processes.spawn(async move { command.output().await.unwrap() });
    }
    let mut claimed = Vec::new();
    for output in processes.join_all().await {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "a claimer process failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        claimed.extend(
            stdout
                .lines()
                .filter_map(|line| line.strip_prefix("claimed "))
                .map(|id| id.trim().parse::<i64>().unwrap()),
        );
    }
    let distinct: HashSet<i64> = claimed.iter().copied().collect();
    assert_eq!(distinct.len(), claimed.len(), "a task was claimed twice");
    assert!(claimed.len() >= 60, "{} claims", claimed.len());
    let record = q.job(&id).await.unwrap().unwrap();
    assert_eq!(record.chunks_done, 60);
}

/// Not a check of its own: the claimer process of [`sqlite_worker_processes_share_one_file`].
/// Run by anything else, it does nothing.
#[tokio::test]
async fn sqlite_claimer_process() {
    let Ok(claimer) = std::env::var(CLAIMER_VAR) else {
        return;
    };
    let (url, worker) = claimer.split_once('|').unwrap();
    let q = fresco_queue::open(url).await.unwrap();
    while let Some(lease) = q
        .claim(worker, LONG, &ClaimFilter::default())
        .await
        .unwrap()
    {
        let status = match lease.kind {
            TaskKind::Score => q.complete_chunk(&lease).await.unwrap(),
            TaskKind::Assemble => q.complete_job(&lease).await.unwrap(),
            TaskKind::Plan => panic!("the plan was done"),
        };
        assert_eq!(status, LeaseStatus::Held);
        println!("claimed {}", lease.task_id);
    }
}
