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
//! One file per concern: [`config`] (how a worker behaves), [`claim_loop`] (claiming, idling,
//! sweeping), [`task`] (one task, start to end, with the grace period after a stop), [`lease`]
//! (heartbeat, stall watchdog and cancellation of a task in flight), [`stages`] (plan, score,
//! assemble), [`outcome`] (failures, and the one place an outcome is told), [`events`] (what a
//! worker tells its process), [`remote`] and [`system`] (object-store inputs, outputs and
//! chunks).

mod claim_loop;
pub mod config;
pub mod events;
mod lease;
mod outcome;
mod remote;
pub mod stages;
pub mod system;
mod task;

use std::sync::Arc;

use fresco_pipeline::Tools;
use fresco_queue::{Queue, WorkerStatus};

use crate::sweep;

pub use config::{
    default_decode_threads, default_scratch_dir, threads_per_worker, worker_name, WorkerConfig,
};
pub use events::{EventSink, StopSignal, WorkerEvent, WorkerSummary};
pub use lease::ProgressClock;
pub use outcome::{TaskFailure, TaskOutput};
use remote::Scratch;
pub use remote::{worker_folder_name, SCRATCH_MARKER};
pub use stages::{Stages, Task};

/// What a plan checkpoint says once the output has been moved into place.
const PUBLISHING: &str = "publishing:";

/// A worker: a queue, its configuration, and where its events go.
pub struct Worker {
    queue: Arc<dyn Queue>,
    config: WorkerConfig,
    tools: Tools,
    events: Option<EventSink>,
    stop: Arc<StopSignal>,
    /// What it does with each kind of task (`None`: the real stages, made when it starts).
    stages: Option<Arc<dyn Stages>>,
    /// Local copies of remote inputs, kept for the next task of the same job.
    scratch: Arc<Scratch>,
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
            stages: None,
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

    /// Does tasks with `stages` instead of the real ones (tests put stand-ins here; the
    /// worker's tools are then unused).
    pub fn with_stages(mut self, stages: Arc<dyn Stages>) -> Worker {
        self.stages = Some(stages);
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

    /// Counts the event in the metrics and passes it to the sink.
    fn emit(&self, event: WorkerEvent) {
        let model = self.stages.as_ref().and_then(|s| s.model_name());
        crate::telemetry::record(&event, model.as_deref(), self.config.device);
        if let Some(sink) = &self.events {
            sink(event);
        }
    }
}
