//! Jobs whose input or output is an object URL (`az://container/in/clip.mp4`).
//!
//! ffmpeg seeks freely in its input, so a worker **downloads a remote input once per job** into
//! its own folder of the scratch disk and runs every stage of that job on the local copy (see
//! `fresco_store`'s module doc for why not ranged reads). The copy is kept, with the
//! [`Reservation`] of its bytes, until the job ends, or until another job's input needs the room
//! (the copies of other jobs are evicted then), or the worker exits.
//!
//! A remote output is assembled into a local file in scratch, verified as a local output is, and
//! published with [`Store::upload_file`], which leaves nothing at the key until the upload is
//! complete. The plan records the URLs, never a worker's scratch paths, since every worker
//! keeps its own copy.
//!
//! ```text
//! scratch_dir/
//!   HOST~PID~N/            one folder per worker (removed when it exits; the sweep removes
//!     .fresco-scratch      those of dead processes of this machine)
//!     JOB/input.mp4        the job's input, downloaded once
//!     JOB/output.mp4       the assembled output on its way to the store
//! ```
//!
//! Retried assembly stays idempotent: just before uploading, the task's checkpoint says
//! `publishing:upload:SIZE`, and once uploaded `publishing:etag:ETAG`; a retry that finds the
//! object with that ETag (or, without `overwrite`, with that size after an upload began) treats
//! it as already published.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use fresco_pipeline::chunk::{self, JobPlan};
use fresco_pipeline::{FailureClass, RunError};
use fresco_queue::{LeaseStatus, TaskLease};
use fresco_store::{ObjectInfo, Reservation, ScratchBudget, Store, StoreError};

use super::stages::TaskContext;
use super::{TaskFailure, TaskOutput, PUBLISHING};
use crate::spec::JobSpec;
use fresco_store::ObjectUrl;

/// The file that marks a worker folder under the scratch folder as one fresco made.
pub const SCRATCH_MARKER: &str = ".fresco-scratch";

/// One budget per scratch folder per process: the workers of one process (`fresco run
/// --workers N`, `fresco serve`) share it, so together they never exceed it.
fn shared_budget(dir: &Path, limit: Option<u64>) -> Option<ScratchBudget> {
    static BUDGETS: OnceLock<Mutex<HashMap<PathBuf, ScratchBudget>>> = OnceLock::new();
    let limit = limit?;
    let mut budgets = BUDGETS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    Some(
        budgets
            .entry(dir.to_path_buf())
            .or_insert_with(|| ScratchBudget::new(limit))
            .clone(),
    )
}

/// A worker's folder of the scratch disk and the remote inputs it holds there.
#[derive(Debug)]
pub(crate) struct Scratch {
    root: PathBuf,
    budget: Option<ScratchBudget>,
    inputs: Mutex<HashMap<String, CachedInput>>,
}

#[derive(Debug)]
struct CachedInput {
    path: PathBuf,
    /// Held as long as the file is on disk.
    _reservation: Option<Reservation>,
}

/// The folder name of a worker under the scratch folder: its name, `:` made `~`.
pub fn worker_folder_name(worker: &str) -> String {
    worker
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '~'
            }
        })
        .collect()
}

impl Scratch {
    /// The scratch of worker `worker` under `scratch_dir`; nothing is created until needed.
    pub(crate) fn new(scratch_dir: &Path, worker: &str, budget_bytes: Option<u64>) -> Scratch {
        Scratch {
            root: scratch_dir.join(worker_folder_name(worker)),
            budget: shared_budget(scratch_dir, budget_bytes),
            inputs: Mutex::new(HashMap::new()),
        }
    }

    fn inputs(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedInput>> {
        self.inputs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The job's folder in this worker's scratch, created (with the worker folder's marker).
    pub(crate) fn job_dir(&self, job: &str) -> Result<PathBuf, TaskFailure> {
        let dir = self.root.join(job);
        let made = std::fs::create_dir_all(&dir).and_then(|()| {
            let marker = self.root.join(SCRATCH_MARKER);
            if marker.exists() {
                Ok(())
            } else {
                std::fs::write(marker, b"")
            }
        });
        made.map_err(|e| {
            TaskFailure::retryable(
                format!("{}: cannot create the scratch folder: {e}", dir.display()),
                FailureClass::Processing,
            )
        })?;
        Ok(dir)
    }

    /// The scratch budget shared by the workers of this process, if any.
    pub(crate) fn budget(&self) -> Option<&ScratchBudget> {
        self.budget.as_ref()
    }

    /// The jobs whose inputs this worker holds.
    pub(crate) fn jobs(&self) -> Vec<String> {
        self.inputs().keys().cloned().collect()
    }

    /// Removes a job's scratch files and gives their bytes back.
    pub(crate) fn remove_job(&self, job: &str) {
        let cached = self.inputs().remove(job);
        let dir = self.root.join(job);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => tracing::debug!("removed {}", dir.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("could not remove {}: {e}", dir.display()),
        }
        drop(cached);
    }

    /// Removes the scratch files of every job but `keep`, to make room for it.
    fn evict_others(&self, keep: &str) {
        for job in self.jobs() {
            if job != keep {
                tracing::info!(
                    "removing the scratch copy of job {job} to make room for job {keep}"
                );
                self.remove_job(&job);
            }
        }
    }

    /// Removes this worker's whole scratch folder (when it exits).
    pub(crate) fn remove_all(&self) {
        self.inputs().clear();
        match std::fs::remove_dir_all(&self.root) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("could not remove {}: {e}", self.root.display()),
        }
    }

    /// Holds `bytes` of the budget for job `job`, evicting other jobs' files when they do not
    /// fit; `None` without a budget.
    fn reserve(
        &self,
        job: &str,
        bytes: u64,
        url: &str,
    ) -> Result<Option<Reservation>, TaskFailure> {
        let Some(budget) = &self.budget else {
            return Ok(None);
        };
        let reserved = budget.reserve(bytes).or_else(|_| {
            self.evict_others(job);
            budget.reserve(bytes)
        });
        reserved.map(Some).map_err(|source| {
            store_failure(StoreError::ScratchFull {
                url: url.to_string(),
                source,
            })
        })
    }

    /// The local copy of a job's input object, downloaded on first use.
    fn input(&self, job: &str, url: &ObjectUrl) -> Result<PathBuf, TaskFailure> {
        if let Some(cached) = self.inputs().get(job) {
            if cached.path.is_file() {
                return Ok(cached.path.clone());
            }
        }
        let store = url.open().map_err(store_failure)?;
        let name = match url.extension() {
            Some(ext) => format!("input.{ext}"),
            None => "input".to_string(),
        };
        let local = self.job_dir(job)?.join(name);
        let handle = tokio::runtime::Handle::current();
        let budget = self.budget.as_ref();
        let downloaded = match handle.block_on(store.download_file(&url.key, &local, budget)) {
            Err(StoreError::ScratchFull { .. }) => {
                self.evict_others(job);
                // The job's own folder may have gone with a stale entry of the same job.
                self.job_dir(job)?;
                handle.block_on(store.download_file(&url.key, &local, budget))
            }
            other => other,
        }
        .map_err(store_failure)?;
        tracing::info!(
            "downloaded {} ({} bytes) to {}",
            url.url,
            downloaded.size,
            local.display()
        );
        self.inputs().insert(
            job.to_string(),
            CachedInput {
                path: local.clone(),
                _reservation: downloaded.reservation,
            },
        );
        Ok(local)
    }
}

/// How a store error fails a task: a missing object or a bad URL is the user's to fix; the
/// network, the store or a full scratch disk may well work on another try.
fn store_failure(e: StoreError) -> TaskFailure {
    let (retryable, class) = match &e {
        StoreError::NotFound { .. } => (false, FailureClass::InputMissing),
        StoreError::BadUrl { .. } | StoreError::BadKey { .. } | StoreError::BadRange { .. } => {
            (false, FailureClass::BadInput)
        }
        StoreError::BackendNotBuilt { .. } => (false, FailureClass::MissingDependency),
        // Credentials may be where another worker runs.
        StoreError::Open { .. } => (true, FailureClass::MissingDependency),
        StoreError::NotSupported { .. } => (false, FailureClass::Processing),
        StoreError::Backend { .. }
        | StoreError::ScratchFull { .. }
        | StoreError::SizeMismatch { .. }
        | StoreError::LocalIo { .. }
        | StoreError::UploadSource { .. } => (true, FailureClass::Processing),
    };
    TaskFailure::new(e.to_string(), class, retryable)
}

fn object_url(location: &Path) -> Result<Option<ObjectUrl>, TaskFailure> {
    ObjectUrl::of(location)
        .transpose()
        .map_err(|e| TaskFailure::permanent(e.to_string(), FailureClass::BadInput))
}

/// The input to read locally: the job's own path, or this worker's copy of its object.
pub(super) fn local_input(
    ctx: &TaskContext,
    job: &str,
    spec: &JobSpec,
) -> Result<PathBuf, TaskFailure> {
    match object_url(&spec.input)? {
        Some(url) => ctx.scratch.input(job, &url),
        None => Ok(spec.input.clone()),
    }
}

/// The output to plan for: the job's own path, or, for an object, a file of the same extension
/// in scratch (after checking that the object may be written).
pub(super) fn plan_output(
    ctx: &TaskContext,
    job: &str,
    spec: &JobSpec,
) -> Result<PathBuf, TaskFailure> {
    let Some(url) = object_url(&spec.output)? else {
        return Ok(spec.output.clone());
    };
    let store = url.open().map_err(store_failure)?;
    let handle = tokio::runtime::Handle::current();
    let existing = handle
        .block_on(store.head(&url.key))
        .map_err(store_failure)?;
    if existing.is_some() && !spec.options.overwrite {
        return Err(TaskFailure::from_run(RunError::OutputExists {
            path: spec.output.clone(),
        }));
    }
    Ok(ctx.scratch.job_dir(job)?.join(local_output_name(&url)))
}

fn local_output_name(url: &ObjectUrl) -> String {
    match url.extension() {
        Some(ext) => format!("output.{ext}"),
        None => "output".to_string(),
    }
}

/// After planning on local files: the plan names the job's own locations (URLs), which every
/// worker maps to its own local files.
pub(super) fn record_locations(plan: &mut JobPlan, spec: &JobSpec) {
    if fresco_store::is_object_url(&spec.input) {
        plan.video.input = spec.input.clone();
    }
    if fresco_store::is_object_url(&spec.output) {
        plan.video.output = spec.output.clone();
    }
}

/// Points a stored plan's input at this worker's local copy (a no-op for local inputs).
pub(super) fn localize_input(
    ctx: &TaskContext,
    job: &str,
    spec: &JobSpec,
    plan: &mut JobPlan,
) -> Result<(), TaskFailure> {
    if fresco_store::is_object_url(&spec.input) {
        plan.video.input = local_input(ctx, job, spec)?;
    }
    Ok(())
}

/// Whether a previous holder of the assembly already published `existing`, by what its
/// checkpoint said.
fn published_before(note: &str, existing: &ObjectInfo, overwrite: bool) -> bool {
    if let Some(etag) = note.strip_prefix("etag:") {
        return existing.etag.as_deref() == Some(etag);
    }
    if let Some(size) = note.strip_prefix("upload:") {
        // An upload began and the worker died before it could record the ETag. Without
        // overwrite the key was free when the job was planned, so an object of exactly that
        // size there is that upload; with overwrite, uploading again is harmless.
        return !overwrite && size.parse::<u64>().ok() == Some(existing.size);
    }
    false
}

/// How a job's output is made as a local file on its way to its object
/// ([`publish_to_object`]): a video's chunks assembled, or a records job's parts joined.
pub(super) trait LocalOutput {
    /// Readies what writing needs (this worker's copy of the input, for a video) and says how
    /// many bytes of scratch the output may take.
    fn prepare(&mut self) -> Result<u64, TaskFailure>;

    /// Writes the output at `target`, calling `before_publish` with the complete file (which
    /// may back out), and says where it is.
    fn write(
        &mut self,
        target: &Path,
        before_publish: &mut dyn FnMut(&Path) -> Result<(), RunError>,
    ) -> Result<PathBuf, TaskFailure>;
}

/// A video's chunks, joined with the input's other streams.
struct VideoAssembly<'a> {
    ctx: &'a TaskContext<'a>,
    lease: &'a TaskLease,
    spec: &'a JobSpec,
    plan: JobPlan,
    files: &'a [PathBuf],
    job_dir: &'a Path,
}

impl LocalOutput for VideoAssembly<'_> {
    fn prepare(&mut self) -> Result<u64, TaskFailure> {
        localize_input(self.ctx, &self.lease.job_id, self.spec, &mut self.plan)?;
        // The output holds the scored video and at most the input's other streams.
        Ok(self
            .files
            .iter()
            .chain(std::iter::once(&self.plan.video.input))
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum())
    }

    fn write(
        &mut self,
        target: &Path,
        before_publish: &mut dyn FnMut(&Path) -> Result<(), RunError>,
    ) -> Result<PathBuf, TaskFailure> {
        self.plan.video.output = target.to_path_buf();
        chunk::assemble(
            &self.ctx.tools,
            &self.plan,
            self.files,
            self.job_dir,
            true,
            before_publish,
        )
        .map_err(TaskFailure::from_run)
    }
}

/// Assembles into a local file in scratch and uploads it to the output object.
// Eight distinct borrows from the one caller (the task, its lease, the job and its parts); a
// struct made only to carry them into this call would say nothing more.
#[allow(clippy::too_many_arguments)]
pub(super) fn assemble_to_object(
    ctx: &TaskContext,
    lease: &TaskLease,
    spec: &JobSpec,
    url: &ObjectUrl,
    plan: JobPlan,
    files: &[PathBuf],
    job_dir: &Path,
    cancel: &Arc<AtomicBool>,
) -> Result<TaskOutput, TaskFailure> {
    let mut video = VideoAssembly {
        ctx,
        lease,
        spec,
        plan,
        files,
        job_dir,
    };
    publish_to_object(ctx, lease, spec, url, cancel, &mut video)
}

/// Makes the job's output with `output` into a local file in scratch and uploads it to the
/// output object, unless a previous holder of the task published it already (see the module
/// doc); nothing is at the key until the upload is complete.
pub(super) fn publish_to_object(
    ctx: &TaskContext,
    lease: &TaskLease,
    spec: &JobSpec,
    url: &ObjectUrl,
    cancel: &Arc<AtomicBool>,
    output: &mut dyn LocalOutput,
) -> Result<TaskOutput, TaskFailure> {
    let store: Store = url.open().map_err(store_failure)?;
    let handle = tokio::runtime::Handle::current();
    let done = || TaskOutput::Assembled {
        output: spec.output.clone(),
    };
    let existing = handle
        .block_on(store.head(&url.key))
        .map_err(store_failure)?;
    if let (Some(existing), Some(note)) = (
        &existing,
        lease
            .checkpoint
            .as_deref()
            .and_then(|c| c.strip_prefix(PUBLISHING)),
    ) {
        if published_before(note, existing, spec.options.overwrite) {
            return Ok(done());
        }
    }
    if existing.is_some() && !spec.options.overwrite {
        return Err(TaskFailure::from_run(RunError::OutputExists {
            path: spec.output.clone(),
        }));
    }
    let estimate = output.prepare()?;
    let job_scratch = ctx.scratch.job_dir(&lease.job_id)?;
    let target = job_scratch.join(local_output_name(url));
    let _ = std::fs::remove_file(&target);
    let reservation = ctx.scratch.reserve(&lease.job_id, estimate, &url.url)?;

    let checkpoint = |note: String| -> Result<(), RunError> {
        let status = handle
            .block_on(ctx.queue.checkpoint(lease, &format!("{PUBLISHING}{note}")))
            .map_err(|e| RunError::OutputUnwritable {
                path: spec.output.clone(),
                reason: format!("the job queue is unavailable: {e}"),
            })?;
        if status == LeaseStatus::Lost || cancel.load(Ordering::SeqCst) {
            return Err(RunError::Canceled);
        }
        Ok(())
    };
    let mut before_publish = |temp: &Path| -> Result<(), RunError> {
        // Last chance to back out, as for a local output; the size lets a retry recognise an
        // upload that completed after this worker died.
        let size = std::fs::metadata(temp).map(|m| m.len()).unwrap_or(0);
        checkpoint(format!("upload:{size}"))
    };
    let written = output.write(&target, &mut before_publish);
    let uploaded = written.and_then(|local| {
        handle
            .block_on(store.upload_file(&url.key, &local))
            .map_err(store_failure)
    });
    let _ = std::fs::remove_file(&target);
    drop(reservation);
    let info = uploaded?;
    tracing::info!("uploaded {} ({} bytes)", url.url, info.size);
    if let Some(etag) = &info.etag {
        if let Err(e) = checkpoint(format!("etag:{etag}")) {
            // Published all the same; a retry recognises the upload by its size.
            tracing::warn!("could not record the ETag of {}: {e}", url.url);
        }
    }
    Ok(done())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(size: u64, etag: &str) -> ObjectInfo {
        ObjectInfo {
            key: "out/clip.mp4".into(),
            size,
            etag: Some(etag.into()),
            version: None,
            last_modified: 0,
        }
    }

    #[test]
    fn a_checkpoint_recognises_its_own_upload() {
        assert!(published_before(
            "etag:\"0x1\"",
            &info(10, "\"0x1\""),
            false
        ));
        assert!(published_before("etag:\"0x1\"", &info(10, "\"0x1\""), true));
        assert!(!published_before(
            "etag:\"0x1\"",
            &info(10, "\"0x2\""),
            false
        ));
        assert!(published_before("upload:10", &info(10, "x"), false));
        assert!(!published_before("upload:10", &info(10, "x"), true));
        assert!(!published_before("upload:11", &info(10, "x"), false));
        assert!(!published_before("7:1234", &info(10, "x"), false));
    }

    #[test]
    fn worker_folders_are_safe_names() {
        assert_eq!(worker_folder_name("host-1:42:0"), "host-1~42~0");
        assert_eq!(worker_folder_name("a/b"), "a~b");
    }

    #[test]
    fn a_download_that_does_not_fit_evicts_other_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(store.join("a.mp4"), vec![1u8; 600]).unwrap();
        std::fs::write(store.join("b.mp4"), vec![2u8; 600]).unwrap();
        std::fs::write(store.join("big.mp4"), vec![3u8; 1200]).unwrap();
        let url = |name: &str| ObjectUrl::parse(&format!("file://{}/{name}", store.display()));
        let scratch = Arc::new(Scratch::new(
            &dir.path().join("scratch"),
            "w:1:0",
            Some(1000),
        ));
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let fetch = |job: &'static str, name: &'static str| {
            let scratch = Arc::clone(&scratch);
            let object = url(name).unwrap();
            runtime
                .block_on(runtime.spawn_blocking(move || {
                    scratch
                        .input(job, &object)
                        .map_err(|f| f.message().to_string())
                }))
                .unwrap()
        };
        let a = fetch("job-a", "a.mp4").unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), vec![1u8; 600]);
        // Cached: the same file, no second download.
        assert_eq!(fetch("job-a", "a.mp4").unwrap(), a);
        let b = fetch("job-b", "b.mp4").unwrap();
        assert!(!a.exists(), "job-a's copy made room for job-b's");
        assert!(b.is_file());
        assert_eq!(scratch.jobs(), vec!["job-b".to_string()]);
        let err = fetch("job-c", "big.mp4").unwrap_err();
        assert!(err.contains("scratch budget is too small"), "{err}");
        scratch.remove_job("job-b");
        assert!(!b.exists());
        assert_eq!(scratch.budget.as_ref().unwrap().in_use(), 0);
    }

    #[test]
    fn workers_of_a_process_share_a_folder_budget() {
        let dir = tempfile::tempdir().unwrap();
        let a = Scratch::new(dir.path(), "a", Some(100));
        let b = Scratch::new(dir.path(), "b", Some(100));
        let held = a.reserve("job-a", 60, "az://c/x").unwrap();
        assert!(b.reserve("job-b", 60, "az://c/y").is_err());
        drop(held);
        assert!(b.reserve("job-b", 60, "az://c/y").unwrap().is_some());
        assert!(Scratch::new(dir.path(), "c", None)
            .reserve("j", u64::MAX, "u")
            .unwrap()
            .is_none());
    }
}
