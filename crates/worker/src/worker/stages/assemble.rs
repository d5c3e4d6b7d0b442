//! The assemble stage: the job's chunks (fetched from the system store when it is an object
//! store) joined with the input's other streams into the output, which is published only while
//! the lease is held; a previous holder's published output is recognised and kept.

use std::path::{Path, PathBuf};

use fresco_pipeline::chunk;
use fresco_pipeline::{FailureClass, RunError};
use fresco_queue::LeaseStatus;

use super::{job_plan, Task, TaskContext};
use crate::spec::JobSpec;
use crate::sweep;
use crate::worker::{remote, system, TaskFailure, TaskOutput, PUBLISHING};
use fresco_store::ObjectUrl;

pub(super) fn assemble(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
) -> Result<TaskOutput, TaskFailure> {
    let lease = task.lease;
    let mut plan = job_plan(lease)?;
    let (job_dir, files, _downloaded) = chunk_files(ctx, lease, plan.chunks.len() as u32)?;
    if let Some(url) = ObjectUrl::of(&spec.output) {
        let url = url.map_err(|e| TaskFailure::permanent(e.to_string(), FailureClass::Output))?;
        return remote::assemble_to_object(
            ctx,
            lease,
            spec,
            &url,
            plan,
            &files,
            &job_dir,
            task.cancel,
        );
    }
    let output = plan.video.output.clone();
    if published_before(lease, &output) {
        return Ok(TaskOutput::Assembled { output });
    }
    // The other streams are copied from the input: this worker's copy of a remote one.
    remote::localize_input(ctx, &lease.job_id, spec, &mut plan)?;
    let mut before_publish = |temp: &Path| checkpoint_publishing(ctx, task, &output, temp);
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

/// Whether a previous holder of this lease moved the output into place and died before
/// recording it: the file there is the very file its checkpoint names (same device and inode).
pub(super) fn published_before(lease: &fresco_queue::TaskLease, output: &Path) -> bool {
    lease
        .checkpoint
        .as_deref()
        .and_then(|c| c.strip_prefix(PUBLISHING))
        .is_some_and(|identity| file_identity(output).as_deref() == Some(identity))
}

/// The last chance to back out, just before `temp` is moved to `output`: the checkpoint names
/// the file about to be published (a rename keeps its identity), and a canceled job or a lost
/// lease publishes nothing.
pub(super) fn checkpoint_publishing(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    output: &Path,
    temp: &Path,
) -> Result<(), RunError> {
    let identity = file_identity(temp).unwrap_or_default();
    let status = tokio::runtime::Handle::current()
        .block_on(
            ctx.queue
                .checkpoint(task.lease, &format!("{PUBLISHING}{identity}")),
        )
        .map_err(|e| RunError::OutputUnwritable {
            path: output.to_path_buf(),
            reason: format!("the job queue is unavailable: {e}"),
        })?;
    if status == LeaseStatus::Lost || task.is_canceled() {
        return Err(RunError::Canceled);
    }
    Ok(())
}

/// "DEVICE:INODE" of a file, which survives a rename.
pub(super) fn file_identity(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(format!("{}:{}", meta.dev(), meta.ino()))
}

/// The job's folder and its chunk files, in order: in the shared work folder, or fetched from
/// the system store into scratch first (the downloads are held, with their scratch budget,
/// until the caller drops them).
pub(super) fn chunk_files(
    ctx: &TaskContext<'_>,
    lease: &fresco_queue::TaskLease,
    count: u32,
) -> Result<(PathBuf, Vec<PathBuf>, Vec<fresco_store::Downloaded>), TaskFailure> {
    let Some(store) = ctx.system() else {
        let job_dir = sweep::job_dir(ctx.work_dir(), &lease.job_id);
        let files = (0..count)
            .map(|n| job_dir.join(fresco_store::system::chunk_file_name(n)))
            .collect();
        return Ok((job_dir, files, Vec::new()));
    };
    let job_dir = ctx.scratch.job_dir(&lease.job_id)?;
    let (files, downloaded) = system::download_chunks(
        store,
        &lease.job_id,
        count,
        &job_dir.join("chunks"),
        ctx.scratch.budget(),
    )?;
    Ok((job_dir, files, downloaded))
}
