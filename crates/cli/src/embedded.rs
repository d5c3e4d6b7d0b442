//! `fresco run` on videos: the durable job engine in one process. Each video becomes a job in
//! the local queue (or joins the job already there for the same work, which is how a run that
//! was interrupted or killed resumes), and N in-process workers plan, score and assemble it.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fresco_core::{JobSpec, ModelPin};
use fresco_core::{JobState, RetryBudgets, TaskState};
use fresco_pipeline::{FailureClass, JobPlan, VideoOptions};
use fresco_queue::{ClaimFilter, Queue, Submitted};
use fresco_store::absolute;
use fresco_submit::{Built, ModelSource, Submission};
use fresco_worker::{worker_name, StopSignal, Worker, WorkerConfig, WorkerEvent};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::exit::{self, Failure};
use crate::queue_args::{runtime, QueueArgs};

/// One video and where its result goes.
#[derive(Debug, Clone)]
pub struct VideoJob {
    pub input: PathBuf,
    pub output: PathBuf,
    /// A dataset job (a folder, prefix or manifest of images; `input` names it).
    pub dataset: Option<fresco_core::dataset::DatasetSpec>,
}

/// How the embedded engine runs.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    pub workers: usize,
    pub chunk_frames: Option<u64>,
    pub queue: QueueArgs,
    pub chatty: bool,
    pub device: fresco_core::Device,
    pub threads: Option<usize>,
    /// Frames per inference call.
    pub batch: usize,
    /// The scoring flags of a records run (or flags given with a video output, which the
    /// submission's checks refuse).
    pub scoring: Option<fresco_submit::ScoringAsk>,
}

impl EmbeddedOptions {
    /// The options of `fresco run`'s own workers: `workers` of them, the rest from `args`.
    pub(crate) fn of_run(
        args: &crate::run::RunArgs,
        workers: usize,
        chatty: bool,
        scoring: Option<fresco_submit::ScoringAsk>,
    ) -> Self {
        Self {
            workers,
            chunk_frames: args.chunk_frames,
            queue: args.queue.clone(),
            chatty,
            device: args.model.device,
            threads: args.model.threads,
            batch: args.batch,
            scoring,
        }
    }
}

/// What a finished video run did (the `--json` report's entry).
#[derive(Debug, Clone, Serialize)]
pub struct VideoOutcome {
    pub job: String,
    pub input: PathBuf,
    pub output: PathBuf,
    pub frames: u64,
    pub chunks: u32,
    /// Chunks found already done when this run started (resumed work).
    pub chunks_resumed: u32,
    pub seconds: f64,
    pub fps: f64,
    pub model_seconds: f64,
    pub width: u32,
    pub height: u32,
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
    /// Records outputs (`.jsonl`/`.parquet`): the rows written (one per sampled frame).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// A dataset job's items: scored (or styled), failed (error rows) and skipped (listed, not
    /// taken by the include patterns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset: Option<fresco_core::dataset::DatasetCounts>,
}

/// Progress shared between the workers' events and the display.
#[derive(Default)]
struct Tally {
    /// Frames of each job in done chunks.
    done: HashMap<String, u64>,
    /// Frames of the chunk each (job, chunk) in flight has done.
    in_flight: HashMap<(String, u32), u64>,
    totals: HashMap<String, u64>,
    model_seconds: HashMap<String, f64>,
    failures: HashMap<String, (String, FailureClass)>,
}

impl Tally {
    fn position(&self) -> u64 {
        self.done.values().sum::<u64>() + self.in_flight.values().sum::<u64>()
    }
}

/// Styles `jobs` through the queue; one result per job, in order. `Err` only for what stops the
/// whole run (the queue cannot be opened, or the user interrupted it).
pub fn run_videos(
    jobs: &[VideoJob],
    pin: ModelPin,
    options: VideoOptions,
    opts: &EmbeddedOptions,
    stop: Arc<StopSignal>,
) -> Result<Vec<Result<VideoOutcome, Failure>>, Failure> {
    runtime().block_on(run_videos_async(jobs, pin, options, opts, stop))
}

async fn run_videos_async(
    jobs: &[VideoJob],
    pin: ModelPin,
    options: VideoOptions,
    opts: &EmbeddedOptions,
    stop: Arc<StopSignal>,
) -> Result<Vec<Result<VideoOutcome, Failure>>, Failure> {
    let opened = std::time::Instant::now();
    let queue = opts.queue.open().await?;
    tracing::debug!(ms = opened.elapsed().as_millis() as u64, "queue opened");
    let work_dir = opts.queue.work_dir();
    let system = opts.queue.system_store()?;
    std::fs::create_dir_all(&work_dir).map_err(|e| {
        Failure::new(
            exit::OUTPUT,
            format!("{}: cannot create the work folder: {e}", work_dir.display()),
        )
    })?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut ids = Vec::new();
    let mut resumed_chunks = HashMap::new();
    // The same checks as every other entrance (`fresco_submit`), with the model run loaded and
    // pinned already; `fresco run` has no input limits and never downloads here.
    let submitter = fresco_submit::Submitter::new(fresco_infer::registry::Registry::from_env())
        .load_scoring_models(true)
        .allow_download(false)
        .limits(fresco_wire::limits::InputLimits::none());
    let mut slots = Vec::new();
    for job in jobs {
        let submission = Submission {
            input: match &job.dataset {
                // A prefix URL stays as it is.
                Some(_) if job.input.to_string_lossy().contains("://") => {
                    job.input.display().to_string()
                }
                _ => absolute(&job.input).display().to_string(),
            },
            output: absolute(&job.output).display().to_string(),
            model: ModelSource::Pinned(pin.clone()),
            device: opts.device,
            precision: pin.precision,
            input_range: pin.input_range,
            channel_order: pin.channel_order,
            options: options.clone(),
            chunk_frames: opts.chunk_frames,
            priority: 0,
            budgets: RetryBudgets::default(),
            scoring: opts.scoring.clone(),
        };
        let checks = submitter.clone();
        let checked = std::time::Instant::now();
        let dataset = job.dataset.clone();
        let built = tokio::task::spawn_blocking(move || match &dataset {
            Some(dataset) => checks.build_dataset(&submission, dataset),
            None => checks.build(&submission),
        })
        .await
        .map_err(|e| Failure::new(exit::PROCESSING, format!("job checks panicked: {e}")))?;
        tracing::debug!(
            ms = checked.elapsed().as_millis() as u64,
            "{}: the submission's checks",
            job.input.display()
        );
        let Built { job: new_job, spec } = match built {
            Ok(built) => built,
            Err(refused) => {
                slots.push(Err(Failure::from(refused)));
                continue;
            }
        };
        let identity = new_job.identity.clone();
        supersede_other_jobs_for(&*queue, &spec, &identity).await;
        let submitted = queue.submit(new_job).await.map_err(queue_failure)?;
        let id = submitted.id().to_string();
        if let Submitted::Existing(_) = submitted {
            expire_dead_local_workers(&*queue, &id).await;
            if let Ok(Some(record)) = queue.job(&id).await {
                resumed_chunks.insert(id.clone(), record.chunks_done);
                if let Some(total) = record.frames_total {
                    let mut t = tally.lock().expect("tally lock");
                    t.totals.insert(id.clone(), total);
                    t.done.insert(id.clone(), record.frames_done);
                }
                eprintln!(
                    "{}: resuming job {id}: {} of {} chunks already done ({} frames)",
                    job.input.display(),
                    record.chunks_done,
                    record.chunks_total,
                    record.frames_done
                );
            }
        }
        ids.push(id.clone());
        slots.push(Ok(id));
    }

    let bar = if opts.chatty && std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("[{bar:32}] {pos}/{len} frames  {per_sec}  ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let sink = {
        let tally = Arc::clone(&tally);
        let bar = bar.clone();
        let chatty = opts.chatty;
        Arc::new(move |event: WorkerEvent| on_event(&tally, &bar, chatty, event))
    };

    let workers = opts.workers.max(1);
    let threads = fresco_worker::threads_per_worker(opts.threads, workers);
    let mut handles = Vec::new();
    for n in 0..workers {
        let mut config = WorkerConfig::new(worker_name(n), work_dir.clone());
        config.system = system.clone();
        config.until_idle = true;
        config.filter = ClaimFilter {
            jobs: Some(ids.clone()),
            device_kinds: Some(vec![opts.device.kind().to_string()]),
        };
        config.device = opts.device;
        config.threads = threads;
        config.batch = opts.batch;
        config.grace = Duration::ZERO;
        config.idle_wait = Duration::from_millis(500);
        let worker =
            Worker::new(Arc::clone(&queue), config, Arc::clone(&stop)).with_events(sink.clone());
        handles.push(tokio::spawn(worker.run()));
    }
    for handle in handles {
        let _ = handle.await;
    }
    bar.finish_and_clear();

    if stop.is_stopping() {
        let mut progress = Vec::new();
        for id in &ids {
            if let Ok(Some(job)) = queue.job(id).await {
                if !job.state.is_terminal() {
                    progress.push(format!(
                        "{}: {} of {} chunks done",
                        job.input, job.chunks_done, job.chunks_total
                    ));
                }
            }
        }
        return Err(Failure::new(
            exit::CANCELED,
            format!(
                "interrupted{}; run the same command again to resume",
                if progress.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", progress.join("; "))
                }
            ),
        ));
    }

    let mut results = Vec::new();
    for (slot, job) in slots.into_iter().zip(jobs) {
        results.push(match slot {
            Ok(id) => outcome(&*queue, &tally, &id, job, &resumed_chunks).await,
            Err(refused) => Err(refused),
        });
    }
    Ok(results)
}

/// An unfinished job that writes the same output with other options (an interrupted run whose
/// command was then changed) would fight this one for the file: cancel it, saying so.
async fn supersede_other_jobs_for(queue: &dyn Queue, spec: &JobSpec, identity: &str) {
    let output = spec.output.display().to_string();
    let Ok(active) = queue
        .jobs(&[JobState::Queued, JobState::Running], 10_000)
        .await
    else {
        return;
    };
    for job in active {
        if job.output == output && job.identity != identity {
            if let Ok(true) = queue.cancel(&job.id).await {
                eprintln!(
                    "{output}: canceled unfinished job {} (same output, other input or options)",
                    job.id
                );
            }
        }
    }
}

fn queue_failure(e: fresco_queue::QueueError) -> Failure {
    Failure::new(exit::PROCESSING, format!("job queue: {e}"))
}

/// A rerun after a crash finds the old process's leases still held: end those of workers of
/// this machine whose process is gone, so their chunks need not wait for the lease to run out.
async fn expire_dead_local_workers(queue: &dyn Queue, job: &str) {
    let Ok(tasks) = queue.tasks(job).await else {
        return;
    };
    let host = fresco_worker::sweep::host_name();
    let mut seen = std::collections::HashSet::new();
    for task in tasks {
        if task.state != TaskState::Leased {
            continue;
        }
        let Some(worker) = task.worker else { continue };
        let mut parts = worker.split(':');
        let (Some(h), Some(pid)) = (parts.next(), parts.next().and_then(|p| p.parse().ok())) else {
            continue;
        };
        if h == host && !fresco_worker::sweep::process_alive(pid) && seen.insert(worker.clone()) {
            if let Ok(n) = queue.expire_worker(&worker).await {
                tracing::info!("took back {n} chunks from {worker}, which is gone");
            }
        }
    }
}

fn on_event(tally: &Mutex<Tally>, bar: &ProgressBar, chatty: bool, event: WorkerEvent) {
    let mut t = tally.lock().expect("tally lock");
    match event {
        WorkerEvent::Planned {
            job,
            frames,
            notes,
            warnings,
            ..
        } => {
            t.totals.insert(job, frames);
            bar.set_length(t.totals.values().sum());
            for warning in warnings {
                bar.suspend(|| eprintln!("warning: {warning}"));
            }
            if chatty {
                for note in notes {
                    bar.suspend(|| eprintln!("note: {note}"));
                }
            }
        }
        WorkerEvent::Frames { job, chunk, done } => {
            t.in_flight.insert((job, chunk), done);
        }
        WorkerEvent::ChunkDone {
            job,
            chunk,
            span,
            model_seconds,
            ..
        } => {
            t.in_flight.remove(&(job.clone(), chunk));
            *t.done.entry(job.clone()).or_default() += span;
            *t.model_seconds.entry(job).or_default() += model_seconds;
        }
        WorkerEvent::ChunkAbandoned { job, chunk } => {
            t.in_flight.remove(&(job, chunk));
        }
        WorkerEvent::Retrying { error, .. } => {
            bar.suspend(|| eprintln!("warning: {error}; retrying"));
        }
        WorkerEvent::Failed { job, error, class } => {
            t.failures.insert(job, (error, class));
        }
        WorkerEvent::Claimed { .. } | WorkerEvent::Succeeded { .. } => {}
    }
    bar.set_position(t.position());
}

async fn outcome(
    queue: &dyn Queue,
    tally: &Mutex<Tally>,
    id: &str,
    job: &VideoJob,
    resumed: &HashMap<String, u32>,
) -> Result<VideoOutcome, Failure> {
    let record = queue.job(id).await.map_err(queue_failure)?.ok_or_else(|| {
        Failure::new(
            exit::PROCESSING,
            format!("job {id} vanished from the queue"),
        )
    })?;
    match record.state {
        JobState::Succeeded => {}
        JobState::Failed | JobState::Canceled | JobState::Queued | JobState::Running => {
            let local = tally.lock().expect("tally lock").failures.get(id).cloned();
            return Err(match local {
                Some((message, class)) => Failure::new(exit::code_for(class), message),
                None => Failure::new(
                    if record.state == JobState::Canceled {
                        exit::CANCELED
                    } else {
                        exit::PROCESSING
                    },
                    format!(
                        "{}: job {id} {}: {}",
                        job.input.display(),
                        record.state,
                        record.last_error.as_deref().unwrap_or("no error recorded")
                    ),
                ),
            });
        }
    }
    let plan: Option<JobPlan> = record
        .plan
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok());
    let seconds = match (record.started_at_ms, record.finished_at_ms) {
        (Some(a), Some(b)) => (b - a).max(0) as f64 / 1000.0,
        _ => 0.0,
    };
    let frames = record.frames_total.unwrap_or(0);
    let model_seconds = tally
        .lock()
        .expect("tally lock")
        .model_seconds
        .get(id)
        .copied()
        .unwrap_or(0.0);
    let dataset = match &job.dataset {
        Some(_) => {
            let counts = queue.item_counts(id).await.map_err(queue_failure)?;
            let skipped = record
                .plan
                .as_deref()
                .and_then(|p| serde_json::from_str::<fresco_core::dataset::DatasetPlan>(p).ok())
                .map(|p| p.skipped)
                .unwrap_or(0);
            Some(fresco_core::dataset::DatasetCounts {
                scored: counts.total - counts.failed.min(counts.total),
                failed: counts.failed,
                skipped,
            })
        }
        None => None,
    };
    let outcome = VideoOutcome {
        dataset,
        job: id.to_string(),
        input: job.input.clone(),
        output: job.output.clone(),
        frames,
        chunks: record.chunks_total,
        chunks_resumed: resumed.get(id).copied().unwrap_or(0),
        seconds,
        fps: if seconds > 0.0 {
            frames as f64 / seconds
        } else {
            0.0
        },
        model_seconds,
        width: plan.as_ref().map(|p| p.video.width).unwrap_or(0),
        height: plan.as_ref().map(|p| p.video.height).unwrap_or(0),
        notes: plan
            .as_ref()
            .map(|p| p.video.notes.clone())
            .unwrap_or_default(),
        rows: fresco_score::RecordFormat::from_path(&job.output)
            .and_then(|_| fresco_score::count_rows(&job.output).ok()),
        warnings: plan.map(|p| p.warnings).unwrap_or_default(),
    };
    Ok(outcome)
}
