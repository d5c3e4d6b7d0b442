//! The blocking work of a task, one file per kind of task: [`plan`] probes the input and cuts it
//! into chunks, [`score`] runs one chunk's frames through the model, [`assemble`] joins the
//! chunks into the output; records jobs ([`records`]) and datasets ([`dataset`]) have their
//! own. The claim loop calls them through the [`Stages`] trait, so that its tests can put
//! stand-ins in their place; [`VideoStages`] are the real ones.

mod assemble;
mod dataset;
mod plan;
mod records;
mod score;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use fresco_core::{Device, TaskKind};
use fresco_infer::registry::Registry;
use fresco_pipeline::chunk::JobPlan;
use fresco_pipeline::{FailureClass, LoadedModel, Tools};
use fresco_queue::{Queue, TaskLease};

use super::lease::ProgressClock;
use super::remote::Scratch;
use super::{EventSink, TaskFailure, TaskOutput, WorkerConfig};
use crate::spec::{load_pinned_model, JobSpec, PinError};

/// One claimed task as a stage sees it.
pub struct Task<'a> {
    pub lease: &'a TaskLease,
    /// Raised when the task must stop: its lease is lost, it stalled, or the worker stops and
    /// the grace period ran out. A stage that sees it returns [`TaskFailure::canceled`].
    pub cancel: &'a Arc<AtomicBool>,
    /// To be ticked as the task makes progress (the stall watchdog watches score tasks).
    pub progress: &'a ProgressClock,
}

impl Task<'_> {
    pub fn is_canceled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

/// What a worker does with each kind of task, on a blocking thread.
pub trait Stages: Send + Sync {
    fn plan(&self, task: &Task<'_>) -> Result<TaskOutput, TaskFailure>;
    fn score(&self, task: &Task<'_>) -> Result<TaskOutput, TaskFailure>;
    fn assemble(&self, task: &Task<'_>) -> Result<TaskOutput, TaskFailure>;

    /// The name of the model the stages have loaded, for the metrics' `model` label.
    fn model_name(&self) -> Option<String> {
        None
    }
}

/// Runs the stage of the task's kind.
pub(super) fn run_stage(stages: &dyn Stages, task: &Task<'_>) -> Result<TaskOutput, TaskFailure> {
    match task.lease.kind {
        TaskKind::Plan => stages.plan(task),
        TaskKind::Score => stages.score(task),
        TaskKind::Assemble => stages.assemble(task),
    }
}

/// The real stages: videos through ffmpeg and ONNX Runtime, chunks in the system store.
pub(super) struct VideoStages {
    tools: Tools,
    work_dir: PathBuf,
    device: Device,
    threads: Option<usize>,
    batch: usize,
    /// Threads decoding a dataset chunk's images.
    decode_threads: usize,
    queue: Arc<dyn Queue>,
    events: Option<EventSink>,
    scratch: Arc<Scratch>,
    system: Option<fresco_store::Store>,
    model_trial: Option<crate::model_trial::ModelTrial>,
    /// The last model used, kept loaded for the next task of the same job. Taken out while a
    /// task runs, so that a task that panics leaves none behind.
    model: Mutex<Option<LoadedModel>>,
    /// Likewise, the last records job's scorer.
    scorer: Mutex<Option<records::LoadedScorer>>,
}

impl VideoStages {
    pub(super) fn new(
        config: &WorkerConfig,
        tools: Tools,
        queue: Arc<dyn Queue>,
        events: Option<EventSink>,
        scratch: Arc<Scratch>,
    ) -> VideoStages {
        VideoStages {
            tools,
            work_dir: config.work_dir.clone(),
            device: config.device,
            threads: config.threads,
            batch: config.batch,
            decode_threads: config
                .decode_threads
                .unwrap_or_else(crate::worker::default_decode_threads)
                .max(1),
            queue,
            events,
            scratch,
            system: config.system.clone(),
            model_trial: config.model_trial.clone(),
            model: Mutex::new(None),
            scorer: Mutex::new(None),
        }
    }

    /// What one task's work needs: the job's spec, and tools that stop with the task.
    fn context(&self, task: &Task<'_>) -> Result<(TaskContext<'_>, JobSpec), TaskFailure> {
        let spec = JobSpec::from_json(&task.lease.spec).map_err(|e| {
            TaskFailure::permanent(
                format!("the job's spec cannot be read: {e}"),
                FailureClass::Processing,
            )
        })?;
        let context = TaskContext {
            // Every ffmpeg/ffprobe of the task is stopped when the task is canceled (lease
            // lost, job canceled, stall, stop): none outlives it.
            tools: self.tools.with_cancel(Arc::clone(task.cancel)),
            stages: self,
            queue: Arc::clone(&self.queue),
            scratch: Arc::clone(&self.scratch),
        };
        Ok((context, spec))
    }

    /// Runs `work` with the loaded scorer (a panic drops it).
    fn with_scorer<T>(&self, work: impl FnOnce(&mut Option<records::LoadedScorer>) -> T) -> T {
        let slot = || self.scorer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut scorer = slot().take();
        let out = work(&mut scorer);
        *slot() = scorer;
        out
    }

    /// Runs `work` with the loaded model (a panic drops it).
    fn with_model<T>(&self, work: impl FnOnce(&mut Option<LoadedModel>) -> T) -> T {
        let slot = || self.model.lock().unwrap_or_else(PoisonError::into_inner);
        let mut model = slot().take();
        let out = work(&mut model);
        *slot() = model;
        out
    }
}

impl Stages for VideoStages {
    fn plan(&self, task: &Task<'_>) -> Result<TaskOutput, TaskFailure> {
        let (ctx, spec) = self.context(task)?;
        if spec.dataset.is_some() && spec.scoring.is_none() {
            return self.with_model(|m| dataset::plan_images(&ctx, task, &spec, m));
        }
        if dataset::is_masks(&spec) {
            return self.with_scorer(|s| dataset::plan_masks(&ctx, task, &spec, s));
        }
        if spec.dataset.is_some() {
            return self.with_scorer(|s| dataset::plan(&ctx, task, &spec, s));
        }
        if spec.scoring.is_some() {
            return self.with_scorer(|s| records::plan(&ctx, task, &spec, s));
        }
        self.with_model(|model| plan::plan(&ctx, task, &spec, model))
    }

    fn score(&self, task: &Task<'_>) -> Result<TaskOutput, TaskFailure> {
        let (ctx, spec) = self.context(task)?;
        if spec.dataset.is_some() {
            let faults = score::Faults::from_env();
            faults.before_chunk(task.lease.chunk)?;
            if spec.scoring.is_none() {
                return self.with_model(|m| dataset::score_images(&ctx, task, &spec, m, &faults));
            }
            if dataset::is_masks(&spec) {
                return self.with_scorer(|s| dataset::score_masks(&ctx, task, &spec, s, &faults));
            }
            return self.with_scorer(|s| dataset::score(&ctx, task, &spec, s, &faults));
        }
        if spec.scoring.is_some() {
            let faults = score::Faults::from_env();
            faults.before_chunk(task.lease.chunk)?;
            return self.with_scorer(|s| records::score(&ctx, task, &spec, s, &faults));
        }
        self.with_model(|model| score::score(&ctx, task, &spec, model))
    }

    fn assemble(&self, task: &Task<'_>) -> Result<TaskOutput, TaskFailure> {
        let (ctx, spec) = self.context(task)?;
        if (spec.dataset.is_some() && spec.scoring.is_none()) || dataset::is_masks(&spec) {
            return dataset::assemble_images(&ctx, task, &spec);
        }
        if spec.dataset.is_some() {
            return dataset::assemble(&ctx, task, &spec);
        }
        if spec.scoring.is_some() {
            return records::assemble(&ctx, task, &spec);
        }
        assemble::assemble(&ctx, task, &spec)
    }

    fn model_name(&self) -> Option<String> {
        let model = self.model.lock().unwrap_or_else(PoisonError::into_inner);
        let scorer = self.scorer.lock().unwrap_or_else(PoisonError::into_inner);
        model
            .as_ref()
            .map(|m| m.name.clone())
            .or_else(|| scorer.as_ref().map(|s| s.name.clone()))
    }
}

/// What the stages (and [`super::remote`]) use while doing one task.
pub(super) struct TaskContext<'s> {
    pub(super) tools: Tools,
    stages: &'s VideoStages,
    pub(super) queue: Arc<dyn Queue>,
    /// This worker's scratch folder, for remote inputs and outputs.
    pub(super) scratch: Arc<Scratch>,
}

impl TaskContext<'_> {
    fn work_dir(&self) -> &std::path::Path {
        &self.stages.work_dir
    }

    /// The object system store for chunks, if any.
    fn system(&self) -> Option<&fresco_store::Store> {
        self.stages.system.as_ref()
    }
}

/// The job's plan, recorded by its plan task.
fn job_plan(lease: &TaskLease) -> Result<JobPlan, TaskFailure> {
    let text = lease.plan.as_deref().ok_or_else(|| {
        TaskFailure::permanent("the job has no plan yet", FailureClass::Processing)
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
    ctx: &TaskContext<'_>,
    spec: &JobSpec,
    model: &'m mut Option<LoadedModel>,
) -> Result<&'m mut LoadedModel, TaskFailure> {
    if model.as_ref().map(|m| m.digest.as_str()) != Some(spec.model.digest.as_str()) {
        *model = None;
        let stages = ctx.stages;
        let here = stages.device.kind();
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
            stages.device,
            stages.threads,
            stages.model_trial.as_ref(),
        )
        .map_err(pin_failure)?;
        if let Some(note) = loaded.engine.set_batch(stages.batch) {
            tracing::warn!("{note}");
        }
        *model = Some(loaded);
    }
    Ok(model.as_mut().expect("just loaded"))
}

/// A model that could not be loaded: missing runtimes and models may be found by another
/// worker; a model the static inspection or the trial refused is refused on every try.
fn pin_failure(e: PinError) -> TaskFailure {
    let class = match &e {
        PinError::Model(m) if m.is_missing_runtime() => FailureClass::MissingDependency,
        _ => FailureClass::Model,
    };
    let retryable = !matches!(
        e,
        PinError::DigestChanged { .. } | PinError::Model(fresco_pipeline::ModelError::Inspect(_))
    ) && !matches!(&e, PinError::Trial(t) if !t.is_retryable());
    TaskFailure::new(e.to_string(), class, retryable)
}
