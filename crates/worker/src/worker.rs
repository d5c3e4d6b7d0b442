//! One worker: a loop that claims a task, does it on a blocking thread while a heartbeat renews
//! the lease, and reports the outcome.
//!
//! ```text
//! claim ──> plan | score chunk | assemble  (blocking thread, cancel flag)
//!   ^            │      ^
//!   │            │      └── heartbeat every lease/3; a lost lease raises the cancel flag
//!   └── complete / fail (back-off) / release (on stop)
//! ```
//!
//! A stop request (SIGTERM, Ctrl-C) stops claiming at once; a task in flight gets `grace` to
//! finish, after which it is canceled and released without counting against its budgets.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fresco_core::{Device, FrameRange, JobState, TaskKind};
use fresco_infer::registry::Registry;
use fresco_pipeline::chunk::{self, JobPlan};
use fresco_pipeline::{FailureClass, LoadedModel, Progress, RunError, Tools};
use fresco_queue::{
    ClaimFilter, FailOutcome, LeaseStatus, Queue, QueueError, TaskLease, WorkerStatus,
};
use tokio::sync::Notify;

use crate::spec::{load_pinned_model, JobSpec, PinError};
use fresco_store::ObjectUrl;
use crate::sweep;

mod remote;
pub mod system;

use remote::Scratch;
pub use remote::{worker_folder_name, SCRATCH_MARKER};

/// Target compute per chunk when a job does not fix `chunk_frames`.
const CHUNK_TARGET_SECS: f64 = 30.0;
const MIN_CHUNK_FRAMES: u64 = 8;
const MAX_CHUNK_FRAMES: u64 = 5000;
/// What a plan checkpoint says once the output has been moved into place.
const PUBLISHING: &str = "publishing:";

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique among live workers: `host:pid:n`.
    pub name: String,
    /// Where scored chunks are written; every worker of a deployment must see the same folder.
    pub work_dir: PathBuf,
    pub lease: Duration,
    /// After a stop request, how long a task in flight may go on before it is released.
    pub grace: Duration,
    /// Exit once no job that this worker may work on is queued or running.
    pub until_idle: bool,
    pub filter: ClaimFilter,
    pub device: Device,
    /// Inference threads (None: one per core).
    pub threads: Option<usize>,
    /// Frames per inference call (`--batch`): a setting of this worker's device, not of the
    /// job, since batching leaves the pixels as they are.
    pub batch: usize,
    /// First back-off after a reported error; doubles with each attempt.
    pub retry_delay: Duration,
    /// Longest wait for work before looking again.
    pub idle_wait: Duration,
    /// A score task with no frame done for this long is stopped and reported as failed.
    pub stall_limit: Duration,
    /// Where remote inputs are downloaded and remote outputs assembled before upload; each
    /// worker uses a folder of its own in it. Local to the machine, unlike `work_dir`.
    pub scratch_dir: PathBuf,
    /// Bytes the workers of this process may keep in `scratch_dir` together (`None`: no
    /// limit). A download that does not fit first evicts other jobs' copies, then fails and is
    /// retried later.
    pub scratch_budget: Option<u64>,
    /// The system store when it is an object store: chunks go there instead of `work_dir`
    /// (see [`system`]). `None`: `work_dir` is the system store.
    pub system: Option<fresco_store::Store>,
    /// How a user's model is first tried in a child process with limits (`None`: loaded here
    /// directly, after the static inspection; the `fresco` binary always sets it).
    pub model_trial: Option<crate::model_trial::ModelTrial>,
}

impl WorkerConfig {
    /// Defaults for a worker named `name` writing chunks under `work_dir`.
    pub fn new(name: String, work_dir: PathBuf) -> WorkerConfig {
        WorkerConfig {
            name,
            lease: Duration::from_secs(60),
            grace: Duration::from_secs(30),
            until_idle: false,
            filter: ClaimFilter::default(),
            device: Device::Cpu,
            threads: None,
            batch: 1,
            retry_delay: Duration::from_secs(2),
            idle_wait: Duration::from_secs(10),
            stall_limit: Duration::from_secs(600),
            scratch_dir: default_scratch_dir(&work_dir),
            work_dir,
            scratch_budget: None,
            system: None,
            model_trial: None,
        }
    }
}

/// `scratch` beside the work folder (`scratch` inside it when it has no parent).
pub fn default_scratch_dir(work_dir: &Path) -> PathBuf {
    match work_dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join("scratch"),
        _ => work_dir.join("scratch"),
    }
}

/// Inference threads for each of `workers` workers in one process: what was asked, or the
/// cores shared between them when there are several (None: one per core, for a lone worker).
pub fn threads_per_worker(asked: Option<usize>, workers: usize) -> Option<usize> {
    asked.or_else(|| {
        (workers > 1).then(|| {
            let cores = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            (cores / workers).max(1)
        })
    })
}

/// A worker name unique on this machine: `host:pid:n`.
pub fn worker_name(n: usize) -> String {
    format!("{}:{}:{n}", sweep::host_name(), std::process::id())
}

/// Things a worker reports as it goes, for progress displays.
#[derive(Debug, Clone)]
pub enum WorkerEvent {
    Claimed {
        job: String,
        kind: TaskKind,
        chunk: u32,
        frames: FrameRange,
    },
    /// Frames of the current chunk done so far.
    Frames {
        job: String,
        chunk: u32,
        done: u64,
    },
    Planned {
        job: String,
        frames: u64,
        chunks: usize,
        notes: Vec<String>,
        warnings: Vec<String>,
    },
    ChunkDone {
        job: String,
        chunk: u32,
        frames: u64,
        reused: bool,
        model_seconds: f64,
    },
    /// The chunk's frames went back to the queue (canceled, lease lost, stopping).
    ChunkAbandoned {
        job: String,
        chunk: u32,
    },
    Succeeded {
        job: String,
        output: PathBuf,
    },
    Retrying {
        job: String,
        kind: TaskKind,
        chunk: u32,
        error: String,
    },
    Failed {
        job: String,
        error: String,
        class: FailureClass,
    },
}

/// Receives [`WorkerEvent`]s.
pub type EventSink = Arc<dyn Fn(WorkerEvent) + Send + Sync>;

/// Asks workers to stop; shared by all the workers of a process.
#[derive(Debug, Default)]
pub struct StopSignal {
    stopping: AtomicBool,
    notify: Notify,
}

impl StopSignal {
    pub fn new() -> Arc<StopSignal> {
        Arc::new(StopSignal::default())
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Completes once a stop was asked for.
    pub async fn stopped(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_stopping() {
                return;
            }
            notified.await;
        }
    }
}

/// What a worker did before it exited.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerSummary {
    pub tasks_done: u64,
    pub chunks_scored: u64,
    pub frames_scored: u64,
    pub tasks_failed: u64,
    pub tasks_released: u64,
}

/// A worker: a queue, its configuration, and where its events go.
pub struct Worker {
    queue: Arc<dyn Queue>,
    config: WorkerConfig,
    tools: Tools,
    events: Option<EventSink>,
    stop: Arc<StopSignal>,
    /// The last model used, kept loaded for the next task of the same job.
    model: Option<LoadedModel>,
    /// Local copies of remote inputs, kept for the next task of the same job.
    scratch: Arc<Scratch>,
}

/// Why a task did not complete.
#[derive(Debug)]
struct TaskFailure {
    message: String,
    retryable: bool,
    class: FailureClass,
}

impl TaskFailure {
    fn from_run(e: RunError) -> TaskFailure {
        let class = e.class();
        TaskFailure {
            message: e.to_string(),
            // Hardware a job asks for that its plan found not working: the workers of its
            // device kind share a setup, so another try would fail alike, only later.
            retryable: is_retryable(class) && !matches!(e, RunError::Hardware { .. }),
            class,
        }
    }

    fn permanent(message: String, class: FailureClass) -> TaskFailure {
        TaskFailure {
            message,
            retryable: false,
            class,
        }
    }
}

/// Infrastructure trouble is worth another try, and so is a missing runtime or model: another
/// worker may have what this one lacks. A bad input is not.
fn is_retryable(class: FailureClass) -> bool {
    match class {
        FailureClass::Processing
        | FailureClass::Canceled
        | FailureClass::MissingDependency
        | FailureClass::Model => true,
        FailureClass::InputMissing | FailureClass::BadInput | FailureClass::Output => false,
    }
}

/// What a task produced.
enum TaskOutput {
    Planned {
        plan: Box<JobPlan>,
    },
    Scored {
        frames: u64,
        reused: bool,
        model_seconds: f64,
    },
    Assembled {
        output: PathBuf,
    },
}

impl Worker {
    /// A worker claims only the tasks of jobs submitted for its kind of device unless its
    /// filter names device kinds itself.
    pub fn new(queue: Arc<dyn Queue>, mut config: WorkerConfig, stop: Arc<StopSignal>) -> Worker {
        if config.filter.device_kinds.is_none() {
            config.filter.device_kinds = Some(vec![config.device.kind().to_string()]);
        }
        let scratch = Arc::new(Scratch::new(
            &config.scratch_dir,
            &config.name,
            config.scratch_budget,
        ));
        Worker {
            queue,
            config,
            tools: Tools::default(),
            events: None,
            stop,
            model: None,
            scratch,
        }
    }

    pub fn with_events(mut self, sink: EventSink) -> Worker {
        self.events = Some(sink);
        self
    }

    pub fn with_tools(mut self, tools: Tools) -> Worker {
        self.tools = tools;
        self
    }

    fn status(&self, state: &str, current: Option<String>) -> WorkerStatus {
        WorkerStatus {
            name: self.config.name.clone(),
            host: sweep::host_name(),
            device: self.config.device.to_string(),
            state: state.into(),
            current,
        }
    }

    /// Tells the queue this worker is alive; a failure is only logged (the queue may be away).
    async fn announce(&self, state: &str, current: Option<String>) {
        if let Err(e) = self.queue.worker_seen(&self.status(state, current)).await {
            tracing::debug!("could not announce the worker: {e}");
        }
    }

    /// Removes what a job left in the system store and archives its log, once it has ended.
    async fn job_ended(&self, job: &str) {
        sweep::remove_job_dir(&self.config.work_dir, job);
        if let Some(store) = &self.config.system {
            system::remove_chunks(store, job).await;
        }
        self.archive_log(job).await;
    }

    /// Writes the job's log so far to the system store (see [`system`]).
    async fn archive_log(&self, job: &str) {
        let store = match &self.config.system {
            Some(store) => Some(store.clone()),
            None => fresco_store::Store::from_url(&self.config.work_dir.display().to_string()).ok(),
        };
        if let Some(store) = store {
            system::archive_log(&*self.queue, &store, job).await;
        }
    }

    /// Appends to the job's log (served by the API); a failure is only traced.
    async fn job_log(&self, job: &str, message: String) {
        if let Err(e) = self.queue.log(job, Some(&self.config.name), &message).await {
            tracing::debug!("could not write the job's log: {e}");
        }
    }

    fn emit(&self, event: WorkerEvent) {
        let model = self.model.as_ref().map(|m| m.name.as_str());
        crate::telemetry::record(&event, model, self.config.device);
        if let Some(sink) = &self.events {
            sink(event);
        }
    }

    /// Works until stopped (or, with `until_idle`, until no work is left). Queue errors (a
    /// database restart, a cut connection) are logged and retried, never fatal.
    pub async fn run(mut self) -> WorkerSummary {
        let mut summary = WorkerSummary::default();
        let mut db_backoff = Duration::from_millis(200);
        let mut last_sweep: Option<Instant> = None;
        tracing::info!(worker = %self.config.name, "worker started");
        self.announce("idle", None).await;
        let mut last_announced = Instant::now();
        loop {
            if last_announced.elapsed() > Duration::from_secs(10) {
                self.announce("idle", None).await;
                last_announced = Instant::now();
            }
            if self.stop.is_stopping() {
                break;
            }
            if last_sweep.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                sweep::sweep_work_dir(&*self.queue, &self.config.work_dir, self.config.lease).await;
                sweep::sweep_scratch_dir(&self.config.scratch_dir);
                self.drop_finished_inputs().await;
                last_sweep = Some(Instant::now());
            }
            let claimed = self
                .queue
                .claim(&self.config.name, self.config.lease, &self.config.filter)
                .await;
            let lease = match claimed {
                Ok(Some(lease)) => {
                    db_backoff = Duration::from_millis(200);
                    lease
                }
                Ok(None) => {
                    if self.config.until_idle {
                        match self.work_remains().await {
                            Ok(false) => break,
                            Ok(true) => {}
                            Err(e) => tracing::warn!("queue unavailable: {e}"),
                        }
                    }
                    tokio::select! {
                        _ = self.queue.wait_for_work(self.config.idle_wait) => {}
                        _ = self.stop.stopped() => {}
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(worker = %self.config.name, "queue unavailable, retrying in {:?}: {e}", db_backoff);
                    tokio::select! {
                        _ = tokio::time::sleep(db_backoff) => {}
                        _ = self.stop.stopped() => {}
                    }
                    db_backoff = (db_backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            // Every line logged while doing the task carries its job and chunk.
            let span = crate::telemetry::task_span(&self.config.name, &lease);
            tracing::Instrument::instrument(self.run_task(lease, &mut summary), span).await;
        }
        self.scratch.remove_all();
        self.announce("stopped", None).await;
        tracing::info!(worker = %self.config.name, "worker stopped: {} tasks done, {} chunks ({} frames) scored, {} failed, {} released",
            summary.tasks_done, summary.chunks_scored, summary.frames_scored, summary.tasks_failed, summary.tasks_released);
        summary
    }

    /// Removes the scratch copies of jobs that ended (finished by other workers).
    async fn drop_finished_inputs(&self) {
        for job in self.scratch.jobs() {
            match self.queue.job(&job).await {
                Ok(Some(record)) if !record.state.is_terminal() => {}
                Ok(_) => self.scratch.remove_job(&job),
                Err(e) => {
                    tracing::debug!("could not look up job {job}: {e}");
                    return;
                }
            }
        }
    }

    /// Whether a job this worker may work on is still queued or running.
    async fn work_remains(&self) -> Result<bool, QueueError> {
        match &self.config.filter.jobs {
            Some(ids) => {
                for id in ids {
                    if let Some(job) = self.queue.job(id).await? {
                        if !job.state.is_terminal() {
                            return Ok(true);
                        }
                    }
                }
                Ok(false)
            }
            None => {
                // Jobs for other kinds of device are other workers' work.
                let mine = |job: &fresco_queue::JobRecord| {
                    self.config
                        .filter
                        .device_kinds
                        .as_ref()
                        .is_none_or(|kinds| kinds.iter().any(|k| k == job.device_kind.as_str()))
                };
                let mut before = None;
                loop {
                    let page = self
                        .queue
                        .jobs_before(&[JobState::Queued, JobState::Running], 200, before)
                        .await?;
                    let Some(last) = page.last() else {
                        return Ok(false);
                    };
                    if page.iter().any(mine) {
                        return Ok(true);
                    }
                    before = Some(last.seq);
                }
            }
        }
    }

    async fn run_task(&mut self, lease: TaskLease, summary: &mut WorkerSummary) {
        tracing::info!(
            worker = %self.config.name,
            job = %lease.job_id,
            "claimed {} chunk {} (frames {}-{}) of job {} (attempts {}, expiries {})",
            lease.kind, lease.chunk, lease.frames.start, lease.frames.end, lease.job_id, lease.attempts, lease.expiries
        );
        self.emit(WorkerEvent::Claimed {
            job: lease.job_id.clone(),
            kind: lease.kind,
            chunk: lease.chunk,
            frames: lease.frames,
        });
        self.job_log(
            &lease.job_id,
            format!(
                "claimed {} chunk {} (frames {}-{}; attempts {}, expiries {})",
                lease.kind,
                lease.chunk,
                lease.frames.start,
                lease.frames.end,
                lease.attempts,
                lease.expiries
            ),
        )
        .await;
        let doing = format!(
            "{} chunk {} of job {}",
            lease.kind, lease.chunk, lease.job_id
        );
        self.announce("busy", Some(doing.clone())).await;
        let cancel = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicBool::new(false));
        let last_progress = Arc::new(std::sync::atomic::AtomicU64::new(monotonic_ms()));
        let heartbeat = tokio::spawn(tracing::Instrument::in_current_span(heartbeat_loop(
            Arc::clone(&self.queue),
            lease.clone(),
            self.config.lease,
            Arc::clone(&cancel),
            Arc::clone(&lost),
            self.status("busy", Some(doing)),
        )));
        // A chunk that stops making progress (a hung decoder, a stuck network mount) would
        // otherwise hold its lease forever, renewed by the heartbeat.
        let watchdog = (lease.kind == TaskKind::Score).then(|| {
            let (cancel, stalled, last) = (
                Arc::clone(&cancel),
                Arc::clone(&stalled),
                Arc::clone(&last_progress),
            );
            let limit = self.config.stall_limit;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1).min(limit)).await;
                    let idle = monotonic_ms().saturating_sub(last.load(Ordering::SeqCst));
                    if idle > limit.as_millis() as u64 {
                        stalled.store(true, Ordering::SeqCst);
                        cancel.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            })
        });

        let context = TaskContext {
            // Every ffmpeg/ffprobe of the task is stopped when the task is canceled (lease
            // lost, job canceled, stall, stop): none outlives it.
            tools: self.tools.with_cancel(Arc::clone(&cancel)),
            work_dir: self.config.work_dir.clone(),
            device: self.config.device,
            threads: self.config.threads,
            batch: self.config.batch,
            queue: Arc::clone(&self.queue),
            events: self.events.clone(),
            last_progress: Arc::clone(&last_progress),
            scratch: Arc::clone(&self.scratch),
            system: self.config.system.clone(),
            model_trial: self.config.model_trial.clone(),
        };
        let model = self.model.take();
        let task_lease = lease.clone();
        let task_cancel = Arc::clone(&cancel);
        let span = tracing::Span::current();
        let mut blocking = tokio::task::spawn_blocking(move || {
            let _in_task = span.enter();
            let mut model = model;
            let result = execute(&context, &task_lease, &mut model, &task_cancel);
            (result, model)
        });
        let joined = tokio::select! {
            joined = &mut blocking => joined,
            _ = self.stop.stopped() => {
                let finished_in_time = tokio::time::timeout(self.config.grace, &mut blocking).await;
                match finished_in_time {
                    Ok(joined) => joined,
                    Err(_) => {
                        tracing::info!(worker = %self.config.name, "grace period over: releasing {} chunk {} of job {}", lease.kind, lease.chunk, lease.job_id);
                        cancel.store(true, Ordering::SeqCst);
                        blocking.await
                    }
                }
            }
        };
        heartbeat.abort();
        if let Some(watchdog) = watchdog {
            watchdog.abort();
        }
        let (result, model) = match joined {
            Ok(pair) => pair,
            Err(panic) => (
                Err(TaskFailure {
                    message: format!("the worker's task panicked: {panic}"),
                    retryable: true,
                    class: FailureClass::Processing,
                }),
                None,
            ),
        };
        self.model = model;

        if stalled.load(Ordering::SeqCst) && !lost.load(Ordering::SeqCst) {
            let failure = TaskFailure {
                message: format!(
                    "chunk {} made no progress for {} s (hung decoder or storage?)",
                    lease.chunk,
                    self.config.stall_limit.as_secs()
                ),
                retryable: true,
                class: FailureClass::Processing,
            };
            self.report_failure(&lease, failure, summary).await;
            return;
        }
        if lost.load(Ordering::SeqCst) {
            tracing::warn!(worker = %self.config.name, "lost the lease on {} chunk {} of job {} (canceled, or reclaimed after expiry); its result is discarded", lease.kind, lease.chunk, lease.job_id);
            self.job_log(&lease.job_id, format!("{} chunk {}: lease lost (canceled, or reclaimed after it expired); result discarded", lease.kind, lease.chunk)).await;
            // A job canceled while this task started may have had its folder removed before
            // this worker made it again: remove it once more now that the task is over.
            if let Ok(Some(job)) = self.queue.job(&lease.job_id).await {
                if job.state.is_terminal() {
                    self.job_ended(&lease.job_id).await;
                }
            }
            if lease.kind == TaskKind::Score {
                self.emit(WorkerEvent::ChunkAbandoned {
                    job: lease.job_id.clone(),
                    chunk: lease.chunk,
                });
            }
            return;
        }
        match result {
            Ok(output) => self.report_success(&lease, output, summary).await,
            Err(failure) if failure.class == FailureClass::Canceled => {
                // Stopped by us (stop request): give the task back, uncounted.
                if let Err(e) = self.queue.release(&lease).await {
                    tracing::warn!(
                        "could not release {} chunk {}: {e}",
                        lease.kind,
                        lease.chunk
                    );
                }
                summary.tasks_released += 1;
                if lease.kind == TaskKind::Score {
                    self.emit(WorkerEvent::ChunkAbandoned {
                        job: lease.job_id.clone(),
                        chunk: lease.chunk,
                    });
                }
            }
            Err(failure) => self.report_failure(&lease, failure, summary).await,
        }
    }

    async fn report_success(
        &mut self,
        lease: &TaskLease,
        output: TaskOutput,
        summary: &mut WorkerSummary,
    ) {
        let status = match &output {
            TaskOutput::Planned { plan } => {
                let text = serde_json::to_string(plan).expect("a plan serialises");
                self.queue
                    .complete_plan(lease, &text, plan.frame_pts.len() as u64, &plan.chunks)
                    .await
            }
            TaskOutput::Scored { .. } => self.queue.complete_chunk(lease).await,
            TaskOutput::Assembled { .. } => self.queue.complete_job(lease).await,
        };
        match status {
            Ok(LeaseStatus::Held) => {}
            Ok(LeaseStatus::Lost) => {
                tracing::warn!(worker = %self.config.name, "finished {} chunk {} of job {} but the lease was gone; result discarded", lease.kind, lease.chunk, lease.job_id);
                return;
            }
            Err(e) => {
                // The lease will run out and another worker will redo the task.
                tracing::warn!(worker = %self.config.name, "could not record {} chunk {} of job {} as done: {e}", lease.kind, lease.chunk, lease.job_id);
                return;
            }
        }
        summary.tasks_done += 1;
        match output {
            TaskOutput::Planned { plan } => {
                tracing::info!(job = %lease.job_id, "planned job {}: {} frames in {} chunks", lease.job_id, plan.frame_pts.len(), plan.chunks.len());
                self.job_log(
                    &lease.job_id,
                    format!(
                        "planned: {} frames of {}x{} in {} chunks; {}",
                        plan.frame_pts.len(),
                        plan.video.width,
                        plan.video.height,
                        plan.chunks.len(),
                        plan.video.notes.join("; ")
                    ),
                )
                .await;
                self.archive_log(&lease.job_id).await;
                self.emit(WorkerEvent::Planned {
                    job: lease.job_id.clone(),
                    frames: plan.frame_pts.len() as u64,
                    chunks: plan.chunks.len(),
                    notes: plan.video.notes.clone(),
                    warnings: plan.warnings.clone(),
                });
            }
            TaskOutput::Scored {
                frames,
                reused,
                model_seconds,
            } => {
                if !reused {
                    summary.chunks_scored += 1;
                    summary.frames_scored += frames;
                }
                tracing::info!(job = %lease.job_id, "scored chunk {} of job {} ({frames} frames{})", lease.chunk, lease.job_id, if reused { ", already on disk" } else { "" });
                self.job_log(
                    &lease.job_id,
                    format!(
                        "scored chunk {} ({frames} frames, {model_seconds:.1} s in the model{})",
                        lease.chunk,
                        if reused { ", already on disk" } else { "" }
                    ),
                )
                .await;
                self.emit(WorkerEvent::ChunkDone {
                    job: lease.job_id.clone(),
                    chunk: lease.chunk,
                    frames,
                    reused,
                    model_seconds,
                });
            }
            TaskOutput::Assembled { output } => {
                tracing::info!(job = %lease.job_id, "job {} succeeded: {}", lease.job_id, output.display());
                self.job_log(
                    &lease.job_id,
                    format!("assembled and published {}", output.display()),
                )
                .await;
                self.job_ended(&lease.job_id).await;
                self.scratch.remove_job(&lease.job_id);
                self.emit(WorkerEvent::Succeeded {
                    job: lease.job_id.clone(),
                    output,
                });
            }
        }
    }

    async fn report_failure(
        &mut self,
        lease: &TaskLease,
        failure: TaskFailure,
        summary: &mut WorkerSummary,
    ) {
        crate::telemetry::chunk_error(lease.kind);
        let attempt = lease.attempts + 1;
        let backoff = Duration::from_millis(fresco_core::job::retry_backoff_ms(
            attempt,
            self.config.retry_delay.as_millis() as u64,
        ));
        tracing::warn!(worker = %self.config.name, job = %lease.job_id, "{} chunk {} of job {} failed (attempt {attempt}): {}", lease.kind, lease.chunk, lease.job_id, failure.message);
        self.job_log(
            &lease.job_id,
            format!(
                "{} chunk {} failed (attempt {attempt}{}): {}",
                lease.kind,
                lease.chunk,
                if failure.retryable {
                    ""
                } else {
                    ", not retryable"
                },
                failure.message
            ),
        )
        .await;
        match self
            .queue
            .fail(lease, &failure.message, failure.retryable, backoff)
            .await
        {
            Ok(FailOutcome::Retrying { .. }) => {
                self.archive_log(&lease.job_id).await;
                self.emit(WorkerEvent::Retrying {
                    job: lease.job_id.clone(),
                    kind: lease.kind,
                    chunk: lease.chunk,
                    error: failure.message,
                });
            }
            Ok(FailOutcome::JobFailed) => {
                summary.tasks_failed += 1;
                self.job_ended(&lease.job_id).await;
                self.scratch.remove_job(&lease.job_id);
                self.emit(WorkerEvent::Failed {
                    job: lease.job_id.clone(),
                    error: failure.message,
                    class: failure.class,
                });
            }
            Ok(FailOutcome::LeaseLost) => {}
            Err(e) => tracing::warn!("could not record the failure: {e}"),
        }
    }
}

/// Renews the lease every third of its length; raises `cancel` (and `lost`) when it is gone.
async fn heartbeat_loop(
    queue: Arc<dyn Queue>,
    lease: TaskLease,
    length: Duration,
    cancel: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    status: WorkerStatus,
) {
    let every = (length / 3).max(Duration::from_millis(50));
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = queue.worker_seen(&status).await {
            tracing::debug!("could not announce the worker: {e}");
        }
        match queue.heartbeat(&lease, length).await {
            Ok(LeaseStatus::Held) => {}
            Ok(LeaseStatus::Lost) => {
                lost.store(true, Ordering::SeqCst);
                cancel.store(true, Ordering::SeqCst);
                return;
            }
            // Keep working: if the database stays away past the lease, the task is reclaimed
            // and our result will be refused.
            Err(e) => tracing::warn!("heartbeat failed: {e}"),
        }
    }
}

/// What the blocking part of a task needs.
struct TaskContext {
    tools: Tools,
    work_dir: PathBuf,
    device: Device,
    threads: Option<usize>,
    batch: usize,
    queue: Arc<dyn Queue>,
    events: Option<EventSink>,
    /// `monotonic_ms()` of the last frame done, for the stall watchdog.
    last_progress: Arc<std::sync::atomic::AtomicU64>,
    /// This worker's scratch folder, for remote inputs and outputs.
    scratch: Arc<Scratch>,
    /// The object system store for chunks, if any.
    system: Option<fresco_store::Store>,
    model_trial: Option<crate::model_trial::ModelTrial>,
}

/// Milliseconds on a clock that only goes forward (since the first call).
fn monotonic_ms() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

fn execute(
    ctx: &TaskContext,
    lease: &TaskLease,
    model: &mut Option<LoadedModel>,
    cancel: &Arc<AtomicBool>,
) -> Result<TaskOutput, TaskFailure> {
    let spec = JobSpec::from_json(&lease.spec).map_err(|e| {
        TaskFailure::permanent(
            format!("the job's spec cannot be read: {e}"),
            FailureClass::Processing,
        )
    })?;
    match lease.kind {
        TaskKind::Plan => plan_task(ctx, lease, &spec, model),
        TaskKind::Score => score_task(ctx, lease, &spec, model, cancel),
        TaskKind::Assemble => assemble_task(ctx, lease, &spec, cancel),
    }
}

fn job_plan(lease: &TaskLease) -> Result<JobPlan, TaskFailure> {
    let text = lease.plan.as_deref().ok_or_else(|| {
        TaskFailure::permanent("the job has no plan yet".into(), FailureClass::Processing)
    })?;
    serde_json::from_str(text).map_err(|e| {
        TaskFailure::permanent(
            format!("the job's plan cannot be read: {e}"),
            FailureClass::Processing,
        )
    })
}

/// Loads the job's model unless it is the one already loaded.
fn ensure_model<'m>(
    ctx: &TaskContext,
    spec: &JobSpec,
    model: &'m mut Option<LoadedModel>,
) -> Result<&'m mut LoadedModel, TaskFailure> {
    if model.as_ref().map(|m| m.digest.as_str()) != Some(spec.model.digest.as_str()) {
        *model = None;
        let here = ctx.device.kind();
        if spec.model.device_kind != here {
            // Claims filter by device kind, so this is a worker claiming with a filter that
            // names other kinds: refuse rather than mix devices' results in one job.
            return Err(TaskFailure::permanent(
                format!(
                    "the job was submitted for {} workers, but this worker runs on the {here}: \
                     its claim filter must name its own device kind only",
                    spec.model.device_kind
                ),
                FailureClass::MissingDependency,
            ));
        }
        let mut loaded = load_pinned_model(
            &spec.model,
            &Registry::from_env(),
            ctx.device,
            ctx.threads,
            ctx.model_trial.as_ref(),
        )
        .map_err(|e| {
            let class = match &e {
                PinError::Model(m) if m.is_missing_runtime() => FailureClass::MissingDependency,
                _ => FailureClass::Model,
            };
            TaskFailure {
                message: e.to_string(),
                // A model the static inspection refused is refused on every try.
                retryable: !matches!(
                    e,
                    PinError::DigestChanged { .. }
                        | PinError::Model(fresco_pipeline::ModelError::Inspect(_))
                ) && !matches!(&e, PinError::Trial(t) if !t.is_retryable()),
                class,
            }
        })?;
        if let Some(note) = loaded.engine.set_batch(ctx.batch) {
            tracing::warn!("{note}");
        }
        *model = Some(loaded);
    }
    Ok(model.as_mut().expect("just loaded"))
}

fn plan_task(
    ctx: &TaskContext,
    lease: &TaskLease,
    spec: &JobSpec,
    model: &mut Option<LoadedModel>,
) -> Result<TaskOutput, TaskFailure> {
    // The output may exist only if the user allowed overwriting; the folder must be writable.
    let mut options = spec.options.clone();
    let loaded = ensure_model(ctx, spec, model)?;
    // Remote locations are planned on local stand-ins: the input's copy, a scratch output.
    let input = remote::local_input(ctx, &lease.job_id, spec)?;
    let output = remote::plan_output(ctx, &lease.job_id, spec)?;
    let mut plan =
        chunk::plan_job(&ctx.tools, &input, &output, &options, 1).map_err(TaskFailure::from_run)?;
    remote::record_locations(&mut plan, spec);
    let chunk_frames = match spec.chunk_frames {
        Some(n) => n.max(1),
        None => at_least_two_chunks(
            calibrated_chunk_frames(loaded, &plan),
            plan.frame_pts.len() as u64,
        ),
    };
    // Pin the encoder's thread count, so every chunk is encoded alike wherever it runs.
    if options.encode.threads.is_none() {
        options.encode.threads = Some(default_encoder_threads());
        plan.video.encode.threads = options.encode.threads;
    }
    plan.chunks = fresco_core::split_frames(plan.frame_pts.len() as u64, chunk_frames);
    Ok(TaskOutput::Planned {
        plan: Box::new(plan),
    })
}

/// x264 and friends pick their thread count from the machine; a job pins one instead.
fn default_encoder_threads() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get().min(4) as u32)
        .unwrap_or(2)
}

/// Caps a calibrated chunk size so that a job of at least two minimal chunks has two chunks or
/// more: two workers (`fresco run`'s default on a multi-core CPU, or two machines) can then share
/// any but the shortest job, for the cost of one more encoder start (about 0.2 s).
fn at_least_two_chunks(chunk_frames: u64, frames: u64) -> u64 {
    if frames >= 2 * MIN_CHUNK_FRAMES {
        chunk_frames.min(frames.div_ceil(2))
    } else {
        chunk_frames
    }
}

/// Frames per chunk so that a chunk costs about [`CHUNK_TARGET_SECS`] of model time on this
/// machine: the model is timed on one frame (after a warm-up frame) of at most
/// [`CALIBRATION_PIXELS`], with the job's aspect, and the time scaled to the job's frame size
/// (the networks' cost is linear in pixels). Timing a full frame twice cost as much as two
/// frames of the job: 5 s at 720p, 3% of a 3 s clip.
fn calibrated_chunk_frames(model: &mut LoadedModel, plan: &JobPlan) -> u64 {
    let (w, h) = (plan.video.model_width, plan.video.model_height);
    let (cw, ch) = calibration_size(w, h);
    let pixels = cw as usize * ch as usize * 3;
    let input = vec![128u8; pixels];
    let mut output = vec![0u8; pixels];
    let mut per_frame = None;
    for _ in 0..2 {
        let t0 = Instant::now();
        if model.engine.style_rgb(cw, ch, &input, &mut output).is_err() {
            break;
        }
        let scale = (w as f64 * h as f64) / (cw as f64 * ch as f64);
        per_frame = Some(t0.elapsed().as_secs_f64() * scale);
    }
    let frames = match per_frame {
        Some(secs) if secs > 0.0 => (CHUNK_TARGET_SECS / secs).round() as u64,
        _ => MAX_CHUNK_FRAMES,
    };
    let frames = frames.clamp(MIN_CHUNK_FRAMES, MAX_CHUNK_FRAMES);
    tracing::info!(
        "calibration: {:.3} s per {w}x{h} frame (timed at {cw}x{ch}) -> {frames} frames per chunk",
        per_frame.unwrap_or(0.0)
    );
    frames
}

/// Most pixels of the frame that calibration times (320x180).
const CALIBRATION_PIXELS: u64 = 320 * 180;

/// The job's frame size scaled down to at most [`CALIBRATION_PIXELS`], keeping its aspect;
/// sides are multiples of 4 (the networks' stride), at least 4.
fn calibration_size(w: u32, h: u32) -> (u32, u32) {
    let pixels = w as u64 * h as u64;
    if pixels <= CALIBRATION_PIXELS {
        return (w, h);
    }
    let factor = (CALIBRATION_PIXELS as f64 / pixels as f64).sqrt();
    let side = |n: u32| (((n as f64 * factor) / 4.0).floor() as u32 * 4).max(4);
    (side(w), side(h))
}

/// Test hooks, read from the environment: a chunk that always fails, and a delay per frame so
/// that a test can kill a worker in the middle of a chunk.
struct FaultInjection {
    fail_chunk: Option<u32>,
    frame_delay: Option<Duration>,
}

impl FaultInjection {
    fn from_env() -> FaultInjection {
        let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
        FaultInjection {
            fail_chunk: var("FRESCO_TEST_FAIL_CHUNK").map(|n| n as u32),
            frame_delay: var("FRESCO_TEST_FRAME_DELAY_MS").map(Duration::from_millis),
        }
    }
}

fn score_task(
    ctx: &TaskContext,
    lease: &TaskLease,
    spec: &JobSpec,
    model: &mut Option<LoadedModel>,
    cancel: &Arc<AtomicBool>,
) -> Result<TaskOutput, TaskFailure> {
    let mut plan = job_plan(lease)?;
    let faults = FaultInjection::from_env();
    if faults.fail_chunk == Some(lease.chunk) {
        return Err(TaskFailure {
            message: format!(
                "injected failure in chunk {} (FRESCO_TEST_FAIL_CHUNK)",
                lease.chunk
            ),
            retryable: true,
            class: FailureClass::Processing,
        });
    }
    let stored = match &ctx.system {
        Some(store) => system::chunk_stored(store, &lease.job_id, lease.chunk)?,
        None => false,
    };
    let job_dir = match &ctx.system {
        // Scored in scratch, then uploaded.
        Some(_) => ctx.scratch.job_dir(&lease.job_id)?,
        None => sweep::create_job_dir(&ctx.work_dir, &lease.job_id).map_err(|e| TaskFailure {
            message: format!(
                "{}: cannot create the job's work folder: {e}",
                sweep::job_dir(&ctx.work_dir, &lease.job_id).display()
            ),
            retryable: true,
            class: FailureClass::Processing,
        })?,
    };
    let out = job_dir.join(fresco_store::system::chunk_file_name(lease.chunk));
    if stored || (ctx.system.is_none() && out.is_file()) {
        // A previous holder finished the file (renamed into place only when complete) but did
        // not live to record it.
        return Ok(TaskOutput::Scored {
            frames: lease.frames.len(),
            reused: true,
            model_seconds: 0.0,
        });
    }
    remote::localize_input(ctx, &lease.job_id, spec, &mut plan)?;
    // A first download of a remote input is not a stall of the chunk.
    ctx.last_progress.store(monotonic_ms(), Ordering::SeqCst);
    let loaded = ensure_model(ctx, spec, model)?;
    let events = ctx.events.clone();
    let job = lease.job_id.clone();
    let chunk_number = lease.chunk;
    let last_progress = Arc::clone(&ctx.last_progress);
    let mut progress = |p: Progress| {
        last_progress.store(monotonic_ms(), Ordering::SeqCst);
        if let Some(delay) = faults.frame_delay {
            std::thread::sleep(delay);
        }
        if let Some(sink) = &events {
            sink(WorkerEvent::Frames {
                job: job.clone(),
                chunk: chunk_number,
                done: p.frames_done,
            });
        }
    };
    // After a reported error, count frames from the start instead of seeking: exact for any
    // input, whatever its index or timestamps.
    let by_number = lease.attempts > 0;
    let first = chunk::score_chunk(
        &ctx.tools,
        &plan,
        lease.frames,
        by_number,
        &mut loaded.engine,
        &out,
        cancel,
        &mut progress,
    );
    let result = match first {
        Err(RunError::Decode { .. }) if !by_number && !cancel.load(Ordering::SeqCst) => {
            tracing::info!(
                "chunk {}: seeking missed frames; decoding from the start instead",
                lease.chunk
            );
            chunk::score_chunk(
                &ctx.tools,
                &plan,
                lease.frames,
                true,
                &mut loaded.engine,
                &out,
                cancel,
                &mut progress,
            )
        }
        other => other,
    };
    let stats = result.map_err(|e| match e {
        // A decode failure in one chunk after the whole input decoded at plan time is more
        // likely the machine than the file: try again elsewhere.
        RunError::Decode { .. } => TaskFailure {
            message: e.to_string(),
            retryable: true,
            class: FailureClass::BadInput,
        },
        // The shared work folder, not the user's output: another try may well work.
        RunError::OutputUnwritable { .. } => TaskFailure {
            message: e.to_string(),
            retryable: true,
            class: FailureClass::Processing,
        },
        other => TaskFailure::from_run(other),
    })?;
    if let Some(store) = &ctx.system {
        system::upload_chunk(store, &lease.job_id, lease.chunk, &out)?;
    }
    crate::preview::save_first(
        &ctx.tools,
        &ctx.queue,
        &lease.job_id,
        lease.chunk,
        lease.frames,
        &plan,
        &out,
    );
    Ok(TaskOutput::Scored {
        frames: stats.frames,
        reused: false,
        model_seconds: stats.model_seconds,
    })
}

fn assemble_task(
    ctx: &TaskContext,
    lease: &TaskLease,
    spec: &JobSpec,
    cancel: &Arc<AtomicBool>,
) -> Result<TaskOutput, TaskFailure> {
    let mut plan = job_plan(lease)?;
    let mut job_dir = sweep::job_dir(&ctx.work_dir, &lease.job_id);
    let mut files: Vec<PathBuf> = (0..plan.chunks.len() as u32)
        .map(|n| job_dir.join(fresco_store::system::chunk_file_name(n)))
        .collect();
    // Chunks in an object store are fetched into scratch first (held until assembled).
    let mut _downloaded = Vec::new();
    if let Some(store) = &ctx.system {
        job_dir = ctx.scratch.job_dir(&lease.job_id)?;
        (files, _downloaded) = system::download_chunks(
            store,
            &lease.job_id,
            plan.chunks.len() as u32,
            &job_dir.join("chunks"),
            ctx.scratch.budget(),
        )?;
    }
    if let Some(url) = ObjectUrl::of(&spec.output) {
        let url = url.map_err(|e| TaskFailure::permanent(e.to_string(), FailureClass::Output))?;
        return remote::assemble_to_object(ctx, lease, spec, &url, plan, &files, &job_dir, cancel);
    }
    let output = plan.video.output.clone();
    if let Some(identity) = lease
        .checkpoint
        .as_deref()
        .and_then(|c| c.strip_prefix(PUBLISHING))
    {
        if file_identity(&output).as_deref() == Some(identity) {
            // A previous holder moved the output into place and died before recording it: the
            // file there is that very file (same device and inode).
            return Ok(TaskOutput::Assembled { output });
        }
    }
    // The other streams are copied from the input: this worker's copy of a remote one.
    remote::localize_input(ctx, &lease.job_id, spec, &mut plan)?;
    let handle = tokio::runtime::Handle::current();
    let mut before_publish = |temp: &Path| -> Result<(), RunError> {
        // Last chance to back out: a canceled job or a lost lease publishes nothing. The
        // checkpoint names the file about to be published, which a rename keeps.
        let identity = file_identity(temp).unwrap_or_default();
        let status = handle
            .block_on(
                ctx.queue
                    .checkpoint(lease, &format!("{PUBLISHING}{identity}")),
            )
            .map_err(|e| RunError::OutputUnwritable {
                path: output.clone(),
                reason: format!("the job queue is unavailable: {e}"),
            })?;
        if status == LeaseStatus::Lost || cancel.load(Ordering::SeqCst) {
            return Err(RunError::Canceled);
        }
        Ok(())
    };
    let published = chunk::assemble(
        &ctx.tools,
        &plan,
        &files,
        &job_dir,
        spec.options.overwrite,
        &mut before_publish,
    )
    .map_err(TaskFailure::from_run)?;
    Ok(TaskOutput::Assembled { output: published })
}

/// "DEVICE:INODE" of a file, which survives a rename.
fn file_identity(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(format!("{}:{}", meta.dev(), meta.ino()))
}

/// The folder where `fresco run` keeps its queue and chunks when none is given: the per-user
/// state folder (`$XDG_STATE_HOME/fresco`, `~/.local/state/fresco`).
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FRESCO_STATE_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(|| PathBuf::from(".fresco-state"))
        .join("fresco")
}

/// `sqlite://STATE/queue.db`.
pub fn default_db_url(state_dir: &Path) -> String {
    format!("sqlite://{}", state_dir.join("queue.db").display())
}

#[cfg(test)]
mod calibration_tests {
    use super::*;

    #[test]
    fn calibration_times_a_small_frame_of_the_same_aspect() {
        // 720p: a sixteenth of the pixels, sides multiples of 4.
        assert_eq!(calibration_size(1280, 720), (320, 180));
        let (w, h) = calibration_size(1920, 1080);
        assert!(w % 4 == 0 && h % 4 == 0);
        assert!((w as u64 * h as u64) <= CALIBRATION_PIXELS);
        assert!((w as f64 / h as f64 - 16.0 / 9.0).abs() < 0.05);
        // Small frames are timed as they are.
        assert_eq!(calibration_size(320, 180), (320, 180));
        assert_eq!(calibration_size(128, 72), (128, 72));
        // Extreme aspects never reach zero.
        assert_eq!(calibration_size(100_000, 2).1, 4);
    }

    #[test]
    fn jobs_of_two_minimal_chunks_or_more_get_two_chunks_or_more() {
        // A 2 s 360p clip whose calibration says one chunk of 43 frames: two of 25 and 25.
        assert_eq!(at_least_two_chunks(43, 50), 25);
        assert_eq!(fresco_core::split_frames(50, 25).len(), 2);
        // Odd counts round up: 17 frames -> 9 + 8.
        assert_eq!(at_least_two_chunks(100, 17), 9);
        // Long jobs keep the calibrated size.
        assert_eq!(at_least_two_chunks(11, 1000), 11);
        // Below two minimal chunks (16 frames), one chunk is cheaper.
        assert_eq!(at_least_two_chunks(100, 15), 100);
        assert_eq!(at_least_two_chunks(100, 1), 100);
    }
}
