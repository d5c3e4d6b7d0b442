//! The real claim loop ([`Worker::run`]) over a SQLite queue in a temporary folder, with
//! stand-in stages in place of ffmpeg and the model: what the worker does when a task succeeds,
//! fails and is retried, fails until its budget is spent (poison), stalls, panics, loses its
//! lease, or is still running when the worker is asked to stop (the grace period).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fresco_core::{DeviceKind, JobState, RetryBudgets, TaskKind, TaskState};
use fresco_pipeline::chunk::JobPlan;
use fresco_pipeline::FailureClass;
use fresco_queue::{NewJob, Queue, SqliteQueue};
use fresco_worker::{
    Stages, StopSignal, Task, TaskFailure, TaskOutput, Worker, WorkerConfig, WorkerEvent,
    WorkerSummary,
};

/// Frames of the stand-in job, and frames per chunk: two chunks.
const FRAMES: u64 = 20;
const CHUNK_FRAMES: u64 = 10;
/// Longest any test waits for the worker before it fails.
const TEST_LIMIT: Duration = Duration::from_secs(60);

type Step = Box<dyn Fn(&Task<'_>) -> Result<TaskOutput, TaskFailure> + Send + Sync>;

/// Stages made of closures; by default each does its task at once.
struct StandIn {
    plan: Step,
    score: Step,
    assemble: Step,
}

impl Default for StandIn {
    fn default() -> StandIn {
        StandIn {
            plan: Box::new(|_| {
                Ok(TaskOutput::Planned {
                    plan: Box::new(two_chunk_plan()),
                })
            }),
            score: Box::new(scored),
            assemble: Box::new(|_| {
                Ok(TaskOutput::Assembled {
                    output: PathBuf::from("out.mp4"),
                })
            }),
        }
    }
}

impl Stages for StandIn {
    fn plan(&self, task: &Task<'_>) -> Result<TaskOutput, TaskFailure> {
        (self.plan)(task)
    }
    fn score(&self, task: &Task<'_>) -> Result<TaskOutput, TaskFailure> {
        (self.score)(task)
    }
    fn assemble(&self, task: &Task<'_>) -> Result<TaskOutput, TaskFailure> {
        (self.assemble)(task)
    }
}

/// A score task done at once.
fn scored(task: &Task<'_>) -> Result<TaskOutput, TaskFailure> {
    task.progress.tick();
    Ok(TaskOutput::Scored {
        frames: task.lease.frames.len(),
        reused: false,
        model_seconds: 0.0,
    })
}

/// Waits (ticking progress unless `stalled`) until the task is canceled, then says so.
fn until_canceled(task: &Task<'_>, stalled: bool) -> Result<TaskOutput, TaskFailure> {
    let t0 = Instant::now();
    while !task.is_canceled() {
        assert!(t0.elapsed() < TEST_LIMIT, "the task was never canceled");
        if !stalled {
            task.progress.tick();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(TaskFailure::canceled())
}

/// The plan a real plan stage would record for a 20-frame clip cut in two chunks.
fn two_chunk_plan() -> JobPlan {
    let plan = serde_json::json!({
        "video": {
            "input": "in.mp4", "output": "out.mp4", "video_ordinal": 0, "video_index": 0,
            "time_base": [1, 25], "width": 64, "height": 64, "model_width": 64,
            "model_height": 64, "out_width": 64, "out_height": 64, "raw_format": "Rgb24",
            "out_pix_fmt": "yuv420p", "streams": [], "notes": [],
            "encode": {"codec": "libx264", "crf": 18, "preset": "medium", "pix_fmt": null,
                       "threads": 2},
            "colour": {}, "rotation": 0
        },
        "frame_pts": {"first": 0, "runs": [[1, FRAMES - 1]]},
        "chunks": fresco_core::split_frames(FRAMES, CHUNK_FRAMES),
        "warnings": []
    });
    serde_json::from_value(plan).expect("a stand-in plan")
}

/// A queue in a temporary folder, and a worker's settings for it with short timings.
struct Harness {
    dir: tempfile::TempDir,
    queue: Arc<dyn Queue>,
    config: WorkerConfig,
    stop: Arc<StopSignal>,
    events: Arc<Mutex<Vec<WorkerEvent>>>,
}

impl Harness {
    async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let queue = SqliteQueue::open(&dir.path().join("queue.db"))
            .await
            .expect("a SQLite queue");
        let mut config = WorkerConfig::new("test:1:0".into(), dir.path().join("work"));
        config.until_idle = true;
        config.lease = Duration::from_secs(2);
        config.grace = Duration::from_secs(5);
        config.retry_delay = Duration::from_millis(10);
        config.idle_wait = Duration::from_millis(50);
        Harness {
            dir,
            queue: Arc::new(queue),
            config,
            stop: StopSignal::new(),
            events: Arc::default(),
        }
    }

    /// Queues a CPU job.
    async fn submit(&self, budgets: RetryBudgets) -> String {
        let job = NewJob {
            identity: format!("job-{}", self.dir.path().display()),
            input: "in.mp4".into(),
            output: "out.mp4".into(),
            spec: "{}".into(),
            device_kind: DeviceKind::Cpu,
            priority: 0,
            budgets,
            idempotency_key: None,
        };
        self.queue.submit(job).await.unwrap().id().to_string()
    }

    /// Runs a worker with `stages` until it exits.
    async fn run(&self, stages: StandIn) -> WorkerSummary {
        let events = Arc::clone(&self.events);
        let worker = Worker::new(
            Arc::clone(&self.queue),
            self.config.clone(),
            Arc::clone(&self.stop),
        )
        .with_stages(Arc::new(stages))
        .with_events(Arc::new(move |e| events.lock().unwrap().push(e)));
        tokio::time::timeout(TEST_LIMIT, worker.run())
            .await
            .expect("the worker exits")
    }

    async fn state(&self, job: &str) -> JobState {
        self.queue.job(job).await.unwrap().unwrap().state
    }

    async fn log(&self, job: &str) -> Vec<String> {
        let lines = self.queue.job_log(job, None, 1000).await.unwrap();
        lines.into_iter().map(|l| l.message).collect()
    }

    async fn score_tasks(&self, job: &str) -> Vec<fresco_queue::TaskRecord> {
        let mut tasks: Vec<_> = self.queue.tasks(job).await.unwrap();
        tasks.retain(|t| t.kind == TaskKind::Score);
        tasks.sort_by_key(|t| t.chunk);
        tasks
    }

    fn events(&self) -> Vec<WorkerEvent> {
        self.events.lock().unwrap().clone()
    }
}

fn logged(log: &[String], text: &str) -> bool {
    log.iter().any(|line| line.contains(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_planned_scored_and_assembled() {
    let h = Harness::new().await;
    let job = h.submit(RetryBudgets::default()).await;
    let summary = h.run(StandIn::default()).await;

    assert_eq!(h.state(&job).await, JobState::Succeeded);
    assert_eq!(summary.tasks_done, 4, "plan, two chunks, assembly");
    assert_eq!((summary.chunks_scored, summary.frames_scored), (2, FRAMES));
    assert_eq!((summary.tasks_failed, summary.tasks_released), (0, 0));
    let events = h.events();
    assert!(matches!(
        events.first(),
        Some(WorkerEvent::Claimed {
            kind: TaskKind::Plan,
            ..
        })
    ));
    assert!(events.iter().any(|e| matches!(
        e,
        WorkerEvent::Planned {
            chunks: 2,
            frames: FRAMES,
            ..
        }
    )));
    let done = events
        .iter()
        .filter(|e| matches!(e, WorkerEvent::ChunkDone { .. }))
        .count();
    assert_eq!(done, 2);
    assert!(matches!(events.last(), Some(WorkerEvent::Succeeded { .. })));
    let log = h.log(&job).await;
    assert!(
        logged(&log, "planned: 20 frames of 64x64 in 2 chunks"),
        "{log:?}"
    );
    assert!(logged(&log, "scored chunk 1 (10 frames"), "{log:?}");
    assert!(logged(&log, "assembled and published out.mp4"), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_chunk_is_retried_and_the_job_succeeds() {
    let h = Harness::new().await;
    let job = h.submit(RetryBudgets::default()).await;
    let stages = StandIn {
        score: Box::new(|task| {
            if task.lease.chunk == 1 && task.lease.attempts == 0 {
                return Err(TaskFailure::retryable(
                    "the disk hiccuped",
                    FailureClass::Processing,
                ));
            }
            scored(task)
        }),
        ..StandIn::default()
    };
    let summary = h.run(stages).await;

    assert_eq!(h.state(&job).await, JobState::Succeeded);
    assert_eq!(summary.tasks_failed, 0);
    let chunk1 = &h.score_tasks(&job).await[1];
    assert_eq!((chunk1.state, chunk1.attempts), (TaskState::Done, 1));
    let retried = h.events().into_iter().any(|e| {
        matches!(e, WorkerEvent::Retrying { kind: TaskKind::Score, chunk: 1, ref error, .. }
            if error == "the disk hiccuped")
    });
    assert!(retried);
    let log = h.log(&job).await;
    assert!(
        logged(&log, "score chunk 1 failed (attempt 1): the disk hiccuped"),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_that_always_fails_fails_the_job_once_its_attempts_are_spent() {
    let h = Harness::new().await;
    let budgets = RetryBudgets {
        max_attempts: 3,
        max_expiries: 10,
    };
    let job = h.submit(budgets).await;
    let stages = StandIn {
        score: Box::new(|task| {
            if task.lease.chunk == 0 {
                return Err(TaskFailure::retryable("poisoned", FailureClass::Processing));
            }
            scored(task)
        }),
        ..StandIn::default()
    };
    let summary = h.run(stages).await;

    assert_eq!(h.state(&job).await, JobState::Failed);
    assert_eq!(summary.tasks_failed, 1);
    let chunk0 = &h.score_tasks(&job).await[0];
    assert_eq!((chunk0.state, chunk0.attempts), (TaskState::Failed, 3));
    let events = h.events();
    let retries = events
        .iter()
        .filter(|e| matches!(e, WorkerEvent::Retrying { chunk: 0, .. }))
        .count();
    assert_eq!(
        retries, 2,
        "attempts 1 and 2 retried, the third fails the job"
    );
    assert!(
        events.iter().any(|e| matches!(e,
        WorkerEvent::Failed { error, class: FailureClass::Processing, .. } if error == "poisoned"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_fails_the_job_at_once() {
    let h = Harness::new().await;
    let job = h.submit(RetryBudgets::default()).await;
    let stages = StandIn {
        plan: Box::new(|_| {
            Err(TaskFailure::permanent(
                "not a video",
                FailureClass::BadInput,
            ))
        }),
        ..StandIn::default()
    };
    let summary = h.run(stages).await;

    assert_eq!(h.state(&job).await, JobState::Failed);
    assert_eq!(summary.tasks_failed, 1);
    let log = h.log(&job).await;
    assert!(
        logged(
            &log,
            "plan chunk 0 failed (attempt 1, not retryable): not a video"
        ),
        "{log:?}"
    );
    assert!(h.events().iter().any(|e| matches!(
        e,
        WorkerEvent::Failed {
            class: FailureClass::BadInput,
            ..
        }
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_chunk_is_stopped_and_counted_as_a_failed_attempt() {
    let mut h = Harness::new().await;
    h.config.stall_limit = Duration::from_millis(300);
    let job = h.submit(RetryBudgets::default()).await;
    let stages = StandIn {
        // The first attempt at chunk 0 makes no progress; every other works.
        score: Box::new(|task| {
            if task.lease.chunk == 0 && task.lease.attempts == 0 {
                return until_canceled(task, true);
            }
            scored(task)
        }),
        ..StandIn::default()
    };
    let summary = h.run(stages).await;

    assert_eq!(h.state(&job).await, JobState::Succeeded);
    assert_eq!(
        summary.tasks_released, 0,
        "a stall is a failure, not a release"
    );
    let chunk0 = &h.score_tasks(&job).await[0];
    assert_eq!(chunk0.attempts, 1);
    let log = h.log(&job).await;
    assert!(logged(&log, "chunk 0 made no progress for 0 s"), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_that_makes_progress_is_not_stalled() {
    let mut h = Harness::new().await;
    h.config.stall_limit = Duration::from_millis(300);
    let job = h.submit(RetryBudgets::default()).await;
    let stages = StandIn {
        // Slower than the stall limit in all, but never idle that long.
        score: Box::new(|task| {
            for _ in 0..20 {
                task.progress.tick();
                std::thread::sleep(Duration::from_millis(50));
            }
            scored(task)
        }),
        ..StandIn::default()
    };
    h.run(stages).await;

    assert_eq!(h.state(&job).await, JobState::Succeeded);
    assert!(h.score_tasks(&job).await.iter().all(|t| t.attempts == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_stage_is_a_retryable_failure() {
    let h = Harness::new().await;
    let job = h.submit(RetryBudgets::default()).await;
    let stages = StandIn {
        assemble: Box::new(|task| {
            if task.lease.attempts == 0 {
                panic!("stand-in assembly blew up");
            }
            Ok(TaskOutput::Assembled {
                output: PathBuf::from("out.mp4"),
            })
        }),
        ..StandIn::default()
    };
    h.run(stages).await;

    assert_eq!(h.state(&job).await, JobState::Succeeded);
    let log = h.log(&job).await;
    assert!(logged(&log, "the worker's task panicked"), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_stops_the_task_and_discards_its_result() {
    let mut h = Harness::new().await;
    // Heartbeats every 100 ms.
    h.config.lease = Duration::from_millis(300);
    let job = h.submit(RetryBudgets::default()).await;
    let queue = Arc::clone(&h.queue);
    let stages = StandIn {
        // Chunk 0's job is canceled while it is scored: the next heartbeat finds the lease
        // gone and raises the cancel flag.
        score: Box::new(move |task| {
            if task.lease.chunk == 0 {
                let handle = tokio::runtime::Handle::current();
                assert!(handle.block_on(queue.cancel(&task.lease.job_id)).unwrap());
                return until_canceled(task, false);
            }
            scored(task)
        }),
        ..StandIn::default()
    };
    let summary = h.run(stages).await;

    assert_eq!(h.state(&job).await, JobState::Canceled);
    assert_eq!(
        (
            summary.tasks_failed,
            summary.tasks_released,
            summary.chunks_scored
        ),
        (0, 0, 0),
        "a lost lease is neither a failure nor a release"
    );
    assert_eq!(h.score_tasks(&job).await[0].attempts, 0);
    let events = h.events();
    assert!(events
        .iter()
        .any(|e| matches!(e, WorkerEvent::ChunkAbandoned { chunk: 0, .. })));
    assert!(!events
        .iter()
        .any(|e| matches!(e, WorkerEvent::ChunkDone { .. })));
    let log = h.log(&job).await;
    assert!(logged(&log, "score chunk 0: lease lost"), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_outlasts_the_grace_period_is_released_uncounted() {
    let mut h = Harness::new().await;
    h.config.grace = Duration::from_millis(200);
    let job = h.submit(RetryBudgets::default()).await;
    let stop = Arc::clone(&h.stop);
    let stages = StandIn {
        score: Box::new(move |task| {
            stop.stop();
            until_canceled(task, false)
        }),
        ..StandIn::default()
    };
    let summary = h.run(stages).await;

    assert_eq!(summary.tasks_released, 1);
    assert_eq!(summary.tasks_failed, 0);
    assert_eq!(
        h.state(&job).await,
        JobState::Running,
        "the job waits for another worker"
    );
    let chunk0 = &h.score_tasks(&job).await[0];
    assert_eq!((chunk0.state, chunk0.attempts), (TaskState::Pending, 0));
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, WorkerEvent::ChunkAbandoned { chunk: 0, .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_finishes_within_the_grace_period_counts() {
    let h = Harness::new().await;
    let job = h.submit(RetryBudgets::default()).await;
    let stop = Arc::clone(&h.stop);
    let stages = StandIn {
        score: Box::new(move |task| {
            stop.stop();
            std::thread::sleep(Duration::from_millis(200));
            assert!(!task.is_canceled(), "canceled within the grace period");
            scored(task)
        }),
        ..StandIn::default()
    };
    let summary = h.run(stages).await;

    // The plan and the chunk in flight; then the worker stopped claiming.
    assert_eq!((summary.tasks_done, summary.chunks_scored), (2, 1));
    assert_eq!(summary.tasks_released, 0);
    assert_eq!(h.state(&job).await, JobState::Running);
    let states: Vec<_> = h.score_tasks(&job).await.iter().map(|t| t.state).collect();
    assert_eq!(states, [TaskState::Done, TaskState::Pending]);
}
