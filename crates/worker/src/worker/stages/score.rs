//! The score stage: one chunk's frames decoded, run through the model and encoded into a chunk
//! file (in the shared work folder, or in scratch and then uploaded to the system store). A
//! chunk a previous holder finished is not scored again.

use fresco_pipeline::chunk;
use fresco_pipeline::{FailureClass, LoadedModel, Progress, RunError};

use super::{ensure_model, job_plan, Task, TaskContext};
use crate::spec::JobSpec;
use crate::sweep;
use crate::worker::{remote, system, TaskFailure, TaskOutput, WorkerEvent};

pub(super) use hooks::Faults;

pub(super) fn score(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
    model: &mut Option<LoadedModel>,
) -> Result<TaskOutput, TaskFailure> {
    let lease = task.lease;
    let mut plan = job_plan(lease)?;
    let faults = Faults::from_env();
    faults.before_chunk(lease.chunk)?;
    let Some(out) = chunk_target(ctx, lease)? else {
        return Ok(TaskOutput::Scored {
            frames: lease.frames.len(),
            reused: true,
            model_seconds: 0.0,
        });
    };
    remote::localize_input(ctx, &lease.job_id, spec, &mut plan)?;
    // A first download of a remote input is not a stall of the chunk.
    task.progress.tick();
    let loaded = ensure_model(ctx, spec, model)?;
    let events = ctx.stages.events.clone();
    let mut progress = |p: Progress| {
        task.progress.tick();
        faults.after_frame();
        if let Some(sink) = &events {
            sink(WorkerEvent::Frames {
                job: lease.job_id.clone(),
                chunk: lease.chunk,
                done: p.frames_done,
            });
        }
    };
    // After a reported error, count frames from the start instead of seeking: exact for any
    // input, whatever its index or timestamps.
    let by_number = lease.attempts > 0;
    let mut score_by = |by_number: bool| {
        chunk::score_chunk(
            &ctx.tools,
            &plan,
            lease.frames,
            by_number,
            &mut loaded.engine,
            &out,
            task.cancel,
            &mut progress,
        )
    };
    let result = match score_by(by_number) {
        Err(RunError::Decode { .. }) if !by_number && !task.is_canceled() => {
            tracing::info!(
                "chunk {}: seeking missed frames; decoding from the start instead",
                lease.chunk
            );
            score_by(true)
        }
        other => other,
    };
    let stats = result.map_err(|e| match e {
        // A decode failure in one chunk after the whole input decoded at plan time is more
        // likely the machine than the file: try again elsewhere.
        RunError::Decode { .. } => TaskFailure::retryable(e.to_string(), FailureClass::BadInput),
        // The shared work folder, not the user's output: another try may well work.
        RunError::OutputUnwritable { .. } => {
            TaskFailure::retryable(e.to_string(), FailureClass::Processing)
        }
        other => TaskFailure::from_run(other),
    })?;
    if let Some(store) = ctx.system() {
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

/// Failure hooks for the binary's tests (`fresco-worker`'s `test-hooks` feature, which only
/// test builds turn on): a chunk that always fails (`FRESCO_TEST_FAIL_CHUNK`), and a delay
/// per frame (`FRESCO_TEST_FRAME_DELAY_MS`) so that a test can kill a worker in the middle of
/// a chunk. Without the feature they are not compiled, and the environment is not read.
/// The file a score task writes its chunk to: in the job's shared work folder, or in scratch to
/// be uploaded to the system store. `None` when a previous
/// holder finished the file (renamed into place only when complete, or uploaded) but did not
/// live to record it.
pub(super) fn chunk_target(
    ctx: &TaskContext<'_>,
    lease: &fresco_queue::TaskLease,
) -> Result<Option<std::path::PathBuf>, TaskFailure> {
    let stored = match ctx.system() {
        Some(store) => system::chunk_stored(store, &lease.job_id, lease.chunk)?,
        None => false,
    };
    let job_dir = match ctx.system() {
        // Scored in scratch, then uploaded.
        Some(_) => ctx.scratch.job_dir(&lease.job_id)?,
        None => sweep::create_job_dir(ctx.work_dir(), &lease.job_id).map_err(|e| {
            TaskFailure::retryable(
                format!(
                    "{}: cannot create the job's work folder: {e}",
                    sweep::job_dir(ctx.work_dir(), &lease.job_id).display()
                ),
                FailureClass::Processing,
            )
        })?,
    };
    let out = job_dir.join(fresco_store::system::chunk_file_name(lease.chunk));
    if stored || (ctx.system().is_none() && out.is_file()) {
        return Ok(None);
    }
    Ok(Some(out))
}

#[cfg(feature = "test-hooks")]
pub(super) mod hooks {
    use std::time::Duration;

    use fresco_pipeline::FailureClass;

    use crate::worker::TaskFailure;

    pub(in crate::worker) struct Faults {
        fail_chunk: Option<u32>,
        frame_delay: Option<Duration>,
    }

    impl Faults {
        pub(in crate::worker) fn from_env() -> Faults {
            let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
            Faults {
                fail_chunk: var("FRESCO_TEST_FAIL_CHUNK").map(|n| n as u32),
                frame_delay: var("FRESCO_TEST_FRAME_DELAY_MS").map(Duration::from_millis),
            }
        }

        pub(in crate::worker) fn before_chunk(&self, chunk: u32) -> Result<(), TaskFailure> {
            if self.fail_chunk == Some(chunk) {
                return Err(TaskFailure::retryable(
                    format!("injected failure in chunk {chunk} (FRESCO_TEST_FAIL_CHUNK)"),
                    FailureClass::Processing,
                ));
            }
            Ok(())
        }

        pub(in crate::worker) fn after_frame(&self) {
            if let Some(delay) = self.frame_delay {
                std::thread::sleep(delay);
            }
        }
    }
}

/// Without the `test-hooks` feature: no faults.
#[cfg(not(feature = "test-hooks"))]
pub(super) mod hooks {
    use crate::worker::TaskFailure;

    pub(in crate::worker) struct Faults;

    impl Faults {
        pub(in crate::worker) fn from_env() -> Faults {
            Faults
        }

        pub(in crate::worker) fn before_chunk(&self, _chunk: u32) -> Result<(), TaskFailure> {
            Ok(())
        }

        pub(in crate::worker) fn after_frame(&self) {}
    }
}
