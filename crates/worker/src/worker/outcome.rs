//! What a task came to, and the one place that says so: [`Worker::report`] writes an outcome to
//! this process's log (tracing), the job's log (served by the API) and the event stream, in
//! that order, tidying what the job left between the log and the event.

use std::path::PathBuf;
use std::time::Duration;

use fresco_pipeline::chunk::JobPlan;
use fresco_pipeline::{FailureClass, RunError};
use fresco_queue::{FailOutcome, LeaseStatus, TaskLease};
use tracing::Level;

use super::{Worker, WorkerEvent, WorkerSummary};

/// Why a task did not complete: a message for the job's log and its error, whether another
/// attempt may succeed, and the kind of trouble.
#[derive(Debug)]
pub struct TaskFailure {
    message: String,
    retryable: bool,
    class: FailureClass,
}

impl TaskFailure {
    /// Trouble that another attempt (later, or on another worker) may not meet.
    pub fn retryable(message: impl Into<String>, class: FailureClass) -> TaskFailure {
        TaskFailure::new(message, class, true)
    }

    /// Trouble that every attempt would meet: the job fails at once.
    pub fn permanent(message: impl Into<String>, class: FailureClass) -> TaskFailure {
        TaskFailure::new(message, class, false)
    }

    /// A failure whose retryability is worked out by the caller.
    pub fn new(message: impl Into<String>, class: FailureClass, retryable: bool) -> TaskFailure {
        TaskFailure {
            message: message.into(),
            retryable,
            class,
        }
    }

    /// A pipeline error, retried by its class (see [`is_retryable`]).
    pub fn from_run(e: RunError) -> TaskFailure {
        let class = e.class();
        // Hardware a job asks for that its plan found not working: the workers of its device
        // kind share a setup, so another try would fail alike, only later.
        let retryable = is_retryable(class) && !matches!(e, RunError::Hardware { .. });
        TaskFailure::new(e.to_string(), class, retryable)
    }

    /// The task was stopped on request (a stop, or the lease gone): not counted as an attempt.
    pub fn canceled() -> TaskFailure {
        TaskFailure::from_run(RunError::Canceled)
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    pub fn class(&self) -> FailureClass {
        self.class
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
#[derive(Debug)]
pub enum TaskOutput {
    Planned {
        plan: Box<JobPlan>,
    },
    /// A dataset's items pinned (in the queue) and cut into ranges.
    PlannedDataset {
        plan: fresco_core::dataset::DatasetPlan,
    },
    Scored {
        frames: u64,
        /// A previous holder had written the chunk already.
        reused: bool,
        model_seconds: f64,
    },
    Assembled {
        output: PathBuf,
    },
}

/// What is tidied after an outcome is logged and before its event goes out (a process that
/// waits for the event, such as `fresco run`, may exit at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tidy {
    Nothing,
    /// The job's log so far is copied to the system store.
    ArchiveLog,
    /// The job ended: its work folder, chunks and scratch copies go, its log is archived.
    JobEnded,
    /// As `JobEnded` (scratch copies apart) if the job has ended meanwhile (canceled while this
    /// task ran: its folder may have been removed before this task made it again).
    IfJobEnded,
}

/// One outcome as [`Worker::report`] tells it.
struct Report {
    level: Level,
    /// For this process's log.
    trace: Option<String>,
    /// For the job's log.
    job_log: Option<String>,
    tidy: Tidy,
    event: Option<WorkerEvent>,
}

impl Report {
    fn info(trace: String) -> Report {
        Report {
            level: Level::INFO,
            trace: Some(trace),
            job_log: None,
            tidy: Tidy::Nothing,
            event: None,
        }
    }

    fn warn(trace: String) -> Report {
        Report {
            level: Level::WARN,
            ..Report::info(trace)
        }
    }

    /// Only an event.
    fn event(event: WorkerEvent) -> Report {
        Report {
            trace: None,
            event: Some(event),
            ..Report::info(String::new())
        }
    }

    fn log(mut self, line: String) -> Report {
        self.job_log = Some(line);
        self
    }

    fn tidy(mut self, tidy: Tidy) -> Report {
        self.tidy = tidy;
        self
    }

    fn then(mut self, event: WorkerEvent) -> Report {
        self.event = Some(event);
        self
    }
}

impl Worker {
    /// Tells an outcome of a task of `job` (see the module doc).
    async fn report(&self, job: &str, report: Report) {
        if let Some(line) = &report.trace {
            let worker = &self.config.name;
            match report.level {
                Level::WARN => tracing::warn!(worker = %worker, job = %job, "{line}"),
                _ => tracing::info!(worker = %worker, job = %job, "{line}"),
            }
        }
        if let Some(line) = report.job_log {
            self.job_log(job, line).await;
        }
        match report.tidy {
            Tidy::Nothing => {}
            Tidy::ArchiveLog => self.archive_log(job).await,
            Tidy::JobEnded => {
                self.job_ended(job).await;
                self.scratch.remove_job(job);
            }
            Tidy::IfJobEnded => {
                if let Ok(Some(record)) = self.queue.job(job).await {
                    if record.state.is_terminal() {
                        self.job_ended(job).await;
                    }
                }
            }
        }
        if let Some(event) = report.event {
            self.emit(event);
        }
    }

    /// A task was claimed.
    pub(super) async fn report_claimed(&self, lease: &TaskLease) {
        let (kind, chunk, frames) = (lease.kind, lease.chunk, lease.frames);
        let (attempts, expiries) = (lease.attempts, lease.expiries);
        let report = Report::info(format!(
            "claimed {kind} chunk {chunk} (frames {}-{}) of job {} (attempts {attempts}, expiries {expiries})",
            frames.start, frames.end, lease.job_id
        ))
        .log(format!(
            "claimed {kind} chunk {chunk} (frames {}-{}; attempts {attempts}, expiries {expiries})",
            frames.start, frames.end
        ))
        .then(WorkerEvent::Claimed {
            job: lease.job_id.clone(),
            kind,
            chunk,
            frames,
        });
        self.report(&lease.job_id, report).await;
    }

    /// The task's lease was gone when its work ended: its result is discarded.
    pub(super) async fn report_lease_lost(&self, lease: &TaskLease) {
        let report = Report::warn(format!(
            "lost the lease on {} chunk {} of job {} (canceled, or reclaimed after expiry); its result is discarded",
            lease.kind, lease.chunk, lease.job_id
        ))
        .log(format!(
            "{} chunk {}: lease lost (canceled, or reclaimed after it expired); result discarded",
            lease.kind, lease.chunk
        ))
        .tidy(Tidy::IfJobEnded);
        let report = match abandoned(lease) {
            Some(event) => report.then(event),
            None => report,
        };
        self.report(&lease.job_id, report).await;
    }

    /// Stopped by this worker (a stop request): the task goes back, not counted as an attempt.
    pub(super) async fn report_released(&self, lease: &TaskLease, summary: &mut WorkerSummary) {
        if let Err(e) = self.queue.release(lease).await {
            tracing::warn!(
                "could not release {} chunk {}: {e}",
                lease.kind,
                lease.chunk
            );
        }
        summary.tasks_released += 1;
        if let Some(event) = abandoned(lease) {
            self.report(&lease.job_id, Report::event(event)).await;
        }
    }

    /// Records a task's result with the queue, then tells it.
    pub(super) async fn report_success(
        &self,
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
            TaskOutput::PlannedDataset { plan } => {
                let text = serde_json::to_string(plan).expect("a plan serialises");
                self.queue
                    .complete_plan(lease, &text, plan.items, &plan.chunks)
                    .await
            }
            TaskOutput::Scored { .. } => self.queue.complete_chunk(lease).await,
            TaskOutput::Assembled { .. } => self.queue.complete_job(lease).await,
        };
        let what = format!(
            "{} chunk {} of job {}",
            lease.kind, lease.chunk, lease.job_id
        );
        match status {
            Ok(LeaseStatus::Held) => {}
            Ok(LeaseStatus::Lost) => {
                let trace = format!("finished {what} but the lease was gone; result discarded");
                self.report(&lease.job_id, Report::warn(trace)).await;
                return;
            }
            Err(e) => {
                // The lease will run out and another worker will redo the task.
                let trace = format!("could not record {what} as done: {e}");
                self.report(&lease.job_id, Report::warn(trace)).await;
                return;
            }
        }
        summary.tasks_done += 1;
        let job = lease.job_id.clone();
        let report = match output {
            TaskOutput::Planned { plan } => {
                let frames = plan.frame_pts.len();
                let (chunks, video) = (plan.chunks.len(), &plan.video);
                Report::info(format!(
                    "planned job {job}: {frames} frames in {chunks} chunks"
                ))
                .log(format!(
                    "planned: {frames} frames of {}x{} in {chunks} chunks; {}",
                    video.width,
                    video.height,
                    video.notes.join("; ")
                ))
                .tidy(Tidy::ArchiveLog)
                .then(WorkerEvent::Planned {
                    job: job.clone(),
                    frames: frames as u64,
                    chunks,
                    notes: plan.video.notes.clone(),
                    warnings: plan.warnings.clone(),
                })
            }
            TaskOutput::PlannedDataset { plan } => {
                let (items, chunks) = (plan.items, plan.chunks.len());
                let timed = match plan.seconds_per_item {
                    Some(s) => format!(" ({:.1} ms an item in the model)", s * 1000.0),
                    None => String::new(),
                };
                Report::info(format!(
                    "planned dataset job {job}: {items} items in {chunks} chunks"
                ))
                .log(format!(
                    "planned: {items} items pinned ({} skipped) in {chunks} chunks of {}{timed}",
                    plan.skipped, plan.per_chunk
                ))
                .tidy(Tidy::ArchiveLog)
                .then(WorkerEvent::Planned {
                    job: job.clone(),
                    frames: items,
                    chunks,
                    notes: Vec::new(),
                    warnings: Vec::new(),
                })
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
                let chunk = lease.chunk;
                let on_disk = if reused { ", already on disk" } else { "" };
                Report::info(format!(
                    "scored chunk {chunk} of job {job} ({frames} frames{on_disk})"
                ))
                .log(format!(
                    "scored chunk {chunk} ({frames} frames, {model_seconds:.1} s in the model{on_disk})"
                ))
                .then(WorkerEvent::ChunkDone {
                    job: job.clone(),
                    chunk,
                    frames,
                    span: lease.frames.len(),
                    reused,
                    model_seconds,
                })
            }
            TaskOutput::Assembled { output } => {
                Report::info(format!("job {job} succeeded: {}", output.display()))
                    .log(format!("assembled and published {}", output.display()))
                    .tidy(Tidy::JobEnded)
                    .then(WorkerEvent::Succeeded {
                        job: job.clone(),
                        output,
                    })
            }
        };
        self.report(&job, report).await;
    }

    /// Records a failed attempt with the queue (which retries it after a back-off or fails the
    /// job), then tells it.
    pub(super) async fn report_failure(
        &self,
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
        let (kind, chunk, job) = (lease.kind, lease.chunk, &lease.job_id);
        let not_retryable = if failure.retryable {
            ""
        } else {
            ", not retryable"
        };
        let report = Report::warn(format!(
            "{kind} chunk {chunk} of job {job} failed (attempt {attempt}): {}",
            failure.message
        ))
        .log(format!(
            "{kind} chunk {chunk} failed (attempt {attempt}{not_retryable}): {}",
            failure.message
        ));
        self.report(job, report).await;
        let recorded = self
            .queue
            .fail(lease, &failure.message, failure.retryable, backoff)
            .await;
        let report = match recorded {
            Ok(FailOutcome::Retrying { .. }) => Report::event(WorkerEvent::Retrying {
                job: job.clone(),
                kind,
                chunk,
                error: failure.message,
            })
            .tidy(Tidy::ArchiveLog),
            Ok(FailOutcome::JobFailed) => {
                summary.tasks_failed += 1;
                Report::event(WorkerEvent::Failed {
                    job: job.clone(),
                    error: failure.message,
                    class: failure.class,
                })
                .tidy(Tidy::JobEnded)
            }
            Ok(FailOutcome::LeaseLost) => return,
            Err(e) => {
                tracing::warn!("could not record the failure: {e}");
                return;
            }
        };
        self.report(job, report).await;
    }
}

/// The event of a chunk whose frames went back to the queue (score tasks only).
fn abandoned(lease: &TaskLease) -> Option<WorkerEvent> {
    (lease.kind == fresco_core::TaskKind::Score).then(|| WorkerEvent::ChunkAbandoned {
        job: lease.job_id.clone(),
        chunk: lease.chunk,
    })
}
