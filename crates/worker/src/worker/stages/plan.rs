//! The plan stage: the job's model is loaded (so a model that cannot be loaded fails the job
//! before any chunk is cut), the input probed and its frames scanned, and the frames cut into
//! chunks sized by the job or by timing the model here ([`fresco_pipeline::sizing`]).

use fresco_pipeline::chunk;
use fresco_pipeline::{ChunkSizing, LoadedModel};

use super::{ensure_model, Task, TaskContext};
use crate::spec::JobSpec;
use crate::worker::{remote, TaskFailure, TaskOutput};

pub(super) fn plan(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
    model: &mut Option<LoadedModel>,
) -> Result<TaskOutput, TaskFailure> {
    let job = &task.lease.job_id;
    // The output may exist only if the user allowed overwriting; the folder must be writable.
    let mut options = spec.options.clone();
    // Pin the encoder's thread count, so every chunk is encoded alike wherever it runs.
    if options.encode.threads.is_none() {
        options.encode.threads = Some(default_encoder_threads());
    }
    let loaded = ensure_model(ctx, spec, model)?;
    // A model that fixes its input size gets its frames decoded at that size (see
    // `VideoOptions::model_size`); the plan keeps it for every chunk.
    loaded.engine.check_fixed_size().map_err(|source| {
        TaskFailure::from_run(fresco_pipeline::RunError::Model {
            path: spec.input.clone(),
            source,
        })
    })?;
    options.model_size = loaded.engine.io().fixed_size;
    // Remote locations are planned on local stand-ins: the input's copy, a scratch output.
    let input = remote::local_input(ctx, job, spec)?;
    let output = remote::plan_output(ctx, job, spec)?;
    let sizing = match spec.chunk_frames {
        Some(n) => ChunkSizing::Frames(n),
        None => ChunkSizing::Calibrate(&mut loaded.engine),
    };
    let mut plan = chunk::plan_job(&ctx.tools, &input, &output, &options, sizing)
        .map_err(TaskFailure::from_run)?;
    remote::record_locations(&mut plan, spec);
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
