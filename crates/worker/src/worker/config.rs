//! How a worker behaves: [`WorkerConfig`] and the helpers that fill it in for a process that
//! runs one worker or several.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fresco_core::Device;
use fresco_queue::ClaimFilter;

use crate::sweep;

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
    /// Frames, or a dataset's images, per inference call (`--batch`): a setting of this
    /// worker's device, not of the job, since batching leaves the pixels and rows as they are.
    pub batch: usize,
    /// Threads that read and decode a dataset chunk's images, beside the model's own (None:
    /// [`default_decode_threads`]).
    pub decode_threads: Option<usize>,
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
    /// (see [`super::system`]). `None`: `work_dir` is the system store.
    pub system: Option<fresco_store::Store>,
    /// How a user's model is first tried in a child process with limits (`None`: loaded here
    /// directly, after the static inspection; the `fresco` binary always sets it).
    pub model_trial: Option<crate::model_trial::ModelTrial>,
}

/// Decode threads of a dataset chunk when none are asked for: half the cores, from 1 to 4, as
/// the model's own threads take the rest; small images decode faster than a model scores them.
pub fn default_decode_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / 2).clamp(1, 4)
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
            decode_threads: None,
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
