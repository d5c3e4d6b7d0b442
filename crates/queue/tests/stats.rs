//! The counts behind dashboards and `/metrics`, and job previews, on every backend (SQLite, and
//! PostgreSQL when `FRESCO_TEST_POSTGRES_URL` names a server; see `backend.rs`).

use std::time::Duration;

use fresco_core::JobState;
use fresco_queue::{Preview, WorkerStatus};

mod support;
use support::{claim, job, only, plan, submit, Db, LONG};

const HOUR: Duration = Duration::from_secs(3600);

fn count(stats: &fresco_queue::QueueStats, state: JobState) -> u64 {
    stats
        .jobs_by_state
        .iter()
        .find(|(s, _)| *s == state)
        .map(|(_, n)| *n)
        .expect("every state is listed")
}

async fn stats_follow_jobs_tasks_and_workers(db: &Db) {
    let q = db.open().await;
    let empty = q.stats(Duration::from_secs(60), HOUR).await.unwrap();
    assert_eq!(empty.jobs_by_state.len(), 5);
    assert_eq!((empty.tasks_pending, empty.tasks_leased), (0, 0));
    assert_eq!(empty.workers_active, 0);
    assert!(empty.frames_done.is_empty());

    let a = submit(&q, job("a")).await;
    let b = submit(&q, job("b")).await;
    assert!(q.cancel(&b).await.unwrap());
    plan(&q, &a, 3).await;
    // Job a: three chunks pending, assemble waiting (pending too).
    let stats = q.stats(Duration::from_secs(60), HOUR).await.unwrap();
    assert_eq!(count(&stats, JobState::Running), 1);
    assert_eq!(count(&stats, JobState::Canceled), 1);
    assert_eq!(count(&stats, JobState::Queued), 0);
    assert_eq!((stats.tasks_pending, stats.tasks_leased), (4, 0));

    let first = q.claim("w1", LONG, &only(&a)).await.unwrap().unwrap();
    let second = claim(&q, "w2").await.unwrap();
    assert_eq!(
        q.complete_chunk(&first).await.unwrap(),
        fresco_queue::LeaseStatus::Held
    );
    for (name, state) in [("w1", "idle"), ("w2", "busy"), ("w3", "stopped")] {
        q.worker_seen(&WorkerStatus {
            name: name.into(),
            host: "h".into(),
            device: "cpu".into(),
            state: state.into(),
            current: None,
        })
        .await
        .unwrap();
    }
    let stats = q.stats(Duration::from_secs(60), HOUR).await.unwrap();
    assert_eq!((stats.tasks_pending, stats.tasks_leased), (2, 1));
    assert_eq!(stats.workers_active, 2, "stopped workers are not active");
    assert_eq!(stats.frames_done.len(), 1, "{:?}", stats.frames_done);
    let done = &stats.frames_done[0];
    assert_eq!((done.worker.as_deref(), done.frames), (Some("w1"), 10));
    assert_eq!(done.minute_ms % 60_000, 0);
    assert!((fresco_queue::now_ms() - done.minute_ms).abs() < 120_000);
    // A chunk finished before the window is left out.
    assert_eq!(
        q.complete_chunk(&second).await.unwrap(),
        fresco_queue::LeaseStatus::Held
    );
    let recent = q
        .stats(Duration::from_secs(60), Duration::ZERO)
        .await
        .unwrap();
    assert!(recent.frames_done.len() <= 1);
    let stats = q.stats(Duration::from_secs(60), HOUR).await.unwrap();
    let frames: u64 = stats.frames_done.iter().map(|f| f.frames).sum();
    assert_eq!(frames, 20);
}

async fn the_first_preview_of_a_job_stays(db: &Db) {
    let q = db.open().await;
    let id = submit(&q, job("p")).await;
    assert!(q.preview(&id).await.unwrap().is_none());
    let preview = Preview {
        job_id: id.clone(),
        chunk: 2,
        frame: 20,
        mime: "image/jpeg".into(),
        before: vec![1, 2, 3, 0, 255],
        after: vec![9; 1000],
        created_at_ms: 0,
    };
    assert!(q.save_preview(&preview).await.unwrap());
    let second = Preview {
        chunk: 0,
        before: vec![7],
        ..preview.clone()
    };
    assert!(!q.save_preview(&second).await.unwrap());
    let stored = q.preview(&id).await.unwrap().unwrap();
    assert_eq!((stored.chunk, stored.frame), (2, 20));
    assert_eq!(stored.before, preview.before);
    assert_eq!(stored.after, preview.after);
    assert_eq!(stored.mime, "image/jpeg");
    assert!(stored.created_at_ms > 0);
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
    stats_follow_jobs_tasks_and_workers,
    the_first_preview_of_a_job_stays,
);
