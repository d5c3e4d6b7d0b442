//! Workers: processes (or threads of `fresco run`) that take tasks from the queue and do them.
//! [`spec`] loads the model a job pinned, [`worker`] the claim/heartbeat/complete loop and the
//! three stages (one file each, behind the [`Stages`] seam that tests fill with stand-ins),
//! [`sweep`] the housekeeping of the shared work folder, [`model_trial`] the first load of a
//! user's model in a child process with limits, [`overlay`] the drawing over a records job's
//! preview frame, [`listing`] the listing and reading of a dataset's items (shared with
//! `fresco estimate`).

pub mod listing;
pub mod model_trial;
pub mod overlay;
mod preview;
pub mod spec;
pub mod sweep;
pub mod telemetry;
pub mod worker;

pub use spec::{load_pinned_model, JobSpec, ModelPin};
pub use worker::{
    default_decode_threads, default_scratch_dir, threads_per_worker, worker_name, EventSink,
    ProgressClock, Stages, StopSignal, Task, TaskFailure, TaskOutput, Worker, WorkerConfig,
    WorkerEvent, WorkerSummary,
};
