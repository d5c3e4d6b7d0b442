//! Records jobs (`.jsonl`/`.parquet` outputs): a model scored at the sampled frames into rows.
//! The plan scans the input's frames like a video job's; each score task decodes only its
//! chunk's sampled frames (scaled by ffmpeg to the size the model's preparation asks for) and
//! writes its rows as a part where video chunks go (the job's first such chunk also saves the
//! job's preview: its first sampled frame with the row drawn over it); assembly joins the parts
//! in order, checks the row count, and publishes the output atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use fresco_core::scoring::ScoringSpec;
use fresco_core::ModelChoice;
use fresco_infer::EngineOptions;
use fresco_pipeline::records::{
    cut_records, decode_sampled, frame_seconds, picks_in, scan_records, RecordsSizing,
};
use fresco_pipeline::{FailureClass, RunError};
use fresco_score::{
    join_part_files, write_part, Frame, PinnedError, RecordFormat, Scorer, Task as ScoreTask,
};

use super::{job_plan, Task, TaskContext};
use crate::spec::JobSpec;
use crate::worker::remote::LocalOutput;
use crate::worker::{remote, system, TaskFailure, TaskOutput};

/// A scorer loaded for a job's pinned model, card and labels.
pub(in crate::worker) struct LoadedScorer {
    /// The job's spec the scorer was made for (model digest, card and labels).
    key: String,
    pub(in crate::worker) name: String,
    scorer: Scorer,
}

pub(super) fn scoring(spec: &JobSpec) -> Result<&ScoringSpec, TaskFailure> {
    spec.scoring.as_ref().ok_or_else(|| {
        TaskFailure::permanent("the job has no scoring section", FailureClass::Processing)
    })
}

pub(super) fn format_of(spec: &JobSpec) -> Result<RecordFormat, TaskFailure> {
    RecordFormat::from_path(&spec.output).ok_or_else(|| {
        TaskFailure::permanent(
            format!("{}: not a records output", spec.output.display()),
            FailureClass::Output,
        )
    })
}

pub(super) fn task_of(scoring: &ScoringSpec) -> Result<ScoreTask, TaskFailure> {
    let text = scoring.settings.task.clone().unwrap_or_default();
    serde_json::from_value(serde_json::Value::String(text.clone())).map_err(|_| {
        TaskFailure::permanent(
            format!("the job's scoring task '{text}' is unknown"),
            FailureClass::Processing,
        )
    })
}

fn model_failure(reason: String) -> TaskFailure {
    TaskFailure::permanent(reason, FailureClass::Model)
}

/// Loads the job's scorer unless it is the one already loaded: the model's bytes must be the
/// pinned ones, the card is the pinned text, the labels the pinned file's content.
pub(super) fn ensure_scorer<'m>(
    ctx: &TaskContext<'_>,
    spec: &JobSpec,
    slot: &'m mut Option<LoadedScorer>,
) -> Result<&'m mut Scorer, TaskFailure> {
    let scoring = scoring(spec)?;
    let key = format!(
        "{}:{}",
        spec.model.digest,
        serde_json::to_string(scoring).unwrap_or_default()
    );
    if slot.as_ref().map(|s| s.key.as_str()) != Some(key.as_str()) {
        *slot = None;
        let loading = std::time::Instant::now();
        let ModelChoice::File(path) = &spec.model.choice else {
            return Err(model_failure("a records job scores a model file".into()));
        };
        let bytes = std::fs::read(path).map_err(|e| {
            TaskFailure::retryable(
                format!("model {}: cannot read it: {e}", path.display()),
                FailureClass::MissingDependency,
            )
        })?;
        let digest = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        if digest != spec.model.digest {
            return Err(model_failure(format!(
                "model {}: its bytes changed since the job was submitted (sha256 {digest}, \
                 pinned {})",
                path.display(),
                spec.model.digest
            )));
        }
        // The submission's static inspection again: a job queued directly (or a file changed
        // since) must not bring external data or a constant-folding bomb into this process.
        match fresco_infer::inspect::inspect_model(
            &bytes,
            &path.display().to_string(),
            fresco_infer::inspect::Origin::Submitted,
            &fresco_infer::inspect::ModelBudget::default(),
        ) {
            Ok(_) | Err(fresco_infer::inspect::InspectError::NotImageModel { .. }) => {}
            Err(refusal) => return Err(model_failure(refusal.to_string())),
        }
        // The first load of a submitted model happens in a child process under memory and time
        // limits, as for image models: what ONNX Runtime builds while loading (constants folded
        // over shapes only its inference knows) cannot take this process (maybe a server) down.
        if let Some(trial) = ctx.stages.model_trial.as_ref() {
            crate::model_trial::trial_load_as(
                trial,
                path,
                &digest,
                crate::model_trial::Interface::Tensors,
            )
            .map_err(|e| {
                if e.is_retryable() {
                    TaskFailure::retryable(e.to_string(), FailureClass::MissingDependency)
                } else {
                    model_failure(e.to_string())
                }
            })?;
        }
        let stages = ctx.stages;
        let options = EngineOptions {
            threads: stages.threads,
            device: stages.device,
            ..EngineOptions::default()
        };
        // The pinned labels are written where this worker can read them.
        let labels_dir = ctx.scratch.job_dir("labels")?;
        let scorer = Scorer::from_pinned(
            &bytes,
            &path.display().to_string(),
            path.parent(),
            &options,
            scoring,
            &labels_dir,
        )
        .map_err(|e| match e {
            PinnedError::LabelsFile { .. } => {
                TaskFailure::retryable(e.to_string(), FailureClass::Processing)
            }
            other => model_failure(other.to_string()),
        })?;
        tracing::debug!(
            ms = loading.elapsed().as_millis() as u64,
            "records: the scorer loaded (model read, digest, inspection, trial, session)"
        );
        let asked = stages.batch.max(1);
        if let Some(fixed) = scorer.plan().fixed_batch.filter(|f| *f != asked) {
            if first_time(&format!("{}:{fixed}:{asked}", spec.model.digest)) {
                tracing::warn!(
                    "{}: the model fixes its batch size at {fixed}, so frames are scored {fixed} \
                     per call instead of the {asked} asked (--batch)",
                    path.display()
                );
            }
        }
        *slot = Some(LoadedScorer {
            key,
            name: spec.model.name.clone(),
            scorer,
        });
    }
    Ok(&mut slot.as_mut().expect("just loaded").scorer)
}

/// Whether `what` is new to this process: a note about a model is said once, not by each of
/// a process's workers and at each of their loads.
fn first_time(what: &str) -> bool {
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if said.iter().any(|s| s == what) {
        return false;
    }
    said.push(what.to_string());
    true
}

pub(super) fn plan(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
    slot: &mut Option<LoadedScorer>,
) -> Result<TaskOutput, TaskFailure> {
    let job = &task.lease.job_id;
    scoring(spec)?
        .sampling
        .check()
        .map_err(|e| TaskFailure::permanent(e, FailureClass::BadInput))?;
    // A local input is probed and scanned (by ffprobe, in child processes) while the model
    // loads and is timed here; a remote one is fetched only once the model has loaded.
    let local = fresco_store::ObjectUrl::of(&spec.input).is_none()
        && fresco_store::ObjectUrl::of(&spec.output).is_none();
    let (timed, early) = std::thread::scope(|s| {
        let scanning = local.then(|| {
            let (tools, span) = (ctx.tools.clone(), tracing::Span::current());
            s.spawn(move || {
                span.in_scope(|| scan_timed(&tools, &spec.input, &spec.output, &spec.options))
            })
        });
        // The model is loaded first: one that cannot be scored fails the job before any chunk.
        let timed = ensure_scorer(ctx, spec, slot).and_then(|scorer| {
            let timing = std::time::Instant::now();
            let sizing = match spec.chunk_frames {
                Some(frames) => RecordsSizing::Frames(frames),
                None => RecordsSizing::Sampled {
                    sampling: &scoring(spec)?.sampling,
                    seconds_per_frame: time_one_frame(scorer, ctx.stages.batch)?,
                },
            };
            tracing::debug!(
                ms = timing.elapsed().as_millis() as u64,
                "records: the model timed for chunk sizes"
            );
            Ok(sizing)
        });
        (timed, scanning.map(|handle| handle.join()))
    });
    let sizing = timed?;
    let mut plan = match early {
        Some(Ok(scanned)) => scanned,
        Some(Err(panicked)) => std::panic::resume_unwind(panicked),
        None => {
            let input = remote::local_input(ctx, job, spec)?;
            // An object output is planned as a file in scratch (after checking that the
            // object may be written); the plan records its URL.
            let output = remote::plan_output(ctx, job, spec)?;
            scan_timed(&ctx.tools, &input, &output, &spec.options)
        }
    }
    .map_err(TaskFailure::from_run)?;
    cut_records(&mut plan, sizing);
    remote::record_locations(&mut plan, spec);
    Ok(TaskOutput::Planned {
        plan: Box::new(plan),
    })
}

/// [`scan_records`], with its time logged.
fn scan_timed(
    tools: &fresco_pipeline::Tools,
    input: &Path,
    output: &Path,
    options: &fresco_pipeline::VideoOptions,
) -> Result<fresco_pipeline::JobPlan, RunError> {
    let started = std::time::Instant::now();
    let scanned = scan_records(tools, input, output, options);
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "records: input probed and its frames scanned"
    );
    scanned
}

/// Seconds of model time a scored frame takes on this machine, for sizing chunks: a batch of
/// grey frames at the model's size, timed after a warm-up batch.
pub(super) fn time_one_frame(scorer: &mut Scorer, batch: usize) -> Result<f64, TaskFailure> {
    let per_call = scorer.batch(batch);
    let (w, h) = scorer.scaled_size(1280, 720);
    let rgb = vec![128u8; w as usize * h as usize * 3];
    let frame = Frame {
        rgb: &rgb,
        width: w,
        height: h,
        frame_width: 1280,
        frame_height: 720,
        source: "",
        index: 0,
        pts: 0,
        time: 0.0,
    };
    let frames = vec![frame; per_call];
    let mut seconds = 0.0;
    for _ in 0..2 {
        let started = std::time::Instant::now();
        scorer
            .score(&frames)
            .map_err(|e| TaskFailure::permanent(e.to_string(), FailureClass::Model))?;
        seconds = started.elapsed().as_secs_f64() / per_call as f64;
    }
    Ok(seconds)
}

/// The job's sampled frames, as decode-order indices.
fn sampled(spec: &JobSpec, plan: &fresco_pipeline::JobPlan) -> Result<Vec<u64>, TaskFailure> {
    Ok(scoring(spec)?.sampling.pick(&frame_seconds(plan)))
}

pub(super) fn score(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
    slot: &mut Option<LoadedScorer>,
    faults: &super::score::Faults,
) -> Result<TaskOutput, TaskFailure> {
    let lease = task.lease;
    let mut plan = job_plan(lease)?;
    let format = format_of(spec)?;
    let all = sampled(spec, &plan)?;
    let picks = picks_in(&all, lease.frames);
    let Some(out) = super::score::chunk_target(ctx, lease)? else {
        return Ok(TaskOutput::Scored {
            frames: picks.len() as u64,
            reused: true,
            model_seconds: 0.0,
        });
    };
    remote::localize_input(ctx, &lease.job_id, spec, &mut plan)?;
    task.progress.tick();
    // The job's preview is the first sampled frame of the first chunk scored: grabbed beside
    // the scoring, saved once the chunk's rows are written.
    let preview = match picks.first() {
        Some(&first) => {
            crate::preview::start_records_grab(&ctx.tools, &ctx.queue, &lease.job_id, &plan, first)
        }
        None => None,
    };
    let batch_size = ctx.stages.batch;
    let scorer = ensure_scorer(ctx, spec, slot)?;
    let per_call = scorer.batch(batch_size);
    let (fw, fh) = (plan.video.width, plan.video.height);
    let (sw, sh) = scorer.scaled_size(fw, fh);
    let source = spec.input.display().to_string();
    let start_pts = fresco_pipeline::records::start_pts(&plan);
    let mut rows = Vec::with_capacity(picks.len());
    let mut pending: Vec<(u64, Vec<u8>)> = Vec::with_capacity(per_call);
    let mut model_seconds = 0.0;
    let mut flush = |pending: &mut Vec<(u64, Vec<u8>)>,
                     scorer: &mut Scorer,
                     rows: &mut Vec<fresco_score::Record>|
     -> Result<(), fresco_score::ScoreError> {
        if pending.is_empty() {
            return Ok(());
        }
        let frames: Vec<Frame> = pending
            .iter()
            .map(|(index, rgb)| {
                let pts = plan.frame_pts[*index as usize];
                Frame {
                    rgb,
                    width: sw,
                    height: sh,
                    frame_width: fw,
                    frame_height: fh,
                    source: &source,
                    index: *index,
                    pts,
                    time: fresco_pipeline::records::time_from_start(&plan, start_pts, pts),
                }
            })
            .collect();
        let started = std::time::Instant::now();
        let scored = scorer.score(&frames)?;
        model_seconds += started.elapsed().as_secs_f64();
        rows.extend(scored);
        pending.clear();
        Ok(())
    };
    let events = ctx.stages.events.clone();
    let mut score_error = None;
    let mut decode_by = |by_number: bool,
                         pending: &mut Vec<(u64, Vec<u8>)>,
                         rows: &mut Vec<fresco_score::Record>| {
        pending.clear();
        rows.clear();
        let decoded = decode_sampled(
            &ctx.tools,
            &plan,
            lease.frames,
            picks,
            (sw, sh),
            by_number,
            task.cancel,
            &mut |index, rgb| {
                task.progress.tick();
                faults.after_frame();
                pending.push((index, rgb.to_vec()));
                if pending.len() >= per_call {
                    if let Err(e) = flush(pending, scorer, rows) {
                        score_error = Some(e);
                        return Err(RunError::Canceled);
                    }
                    if let Some(sink) = &events {
                        sink(crate::worker::WorkerEvent::Frames {
                            job: lease.job_id.clone(),
                            chunk: lease.chunk,
                            done: index + 1 - lease.frames.start,
                        });
                    }
                }
                Ok(())
            },
        );
        decoded.and_then(|()| {
            flush(pending, scorer, rows).map_err(|e| {
                score_error = Some(e);
                RunError::Canceled
            })
        })
    };
    // After a reported error, count frames from the start instead of seeking: exact for any
    // input, whatever its index or timestamps. A seek that missed frames is caught by the count
    // of frames the decoder gave (each pick is kept by its time, never a neighbour).
    let by_number = lease.attempts > 0;
    let decoded = match decode_by(by_number, &mut pending, &mut rows) {
        Err(RunError::Decode { .. }) if !by_number && !task.is_canceled() => {
            tracing::info!(
                "chunk {}: seeking missed frames; decoding from the start instead",
                lease.chunk
            );
            decode_by(true, &mut pending, &mut rows)
        }
        other => other,
    };
    if let Some(e) = score_error {
        // The outputs of a real call did not fit the plan: the same on every try.
        return Err(TaskFailure::permanent(e.to_string(), FailureClass::Model));
    }
    decoded.map_err(|e| match e {
        RunError::Decode { .. } => TaskFailure::retryable(e.to_string(), FailureClass::BadInput),
        other => TaskFailure::from_run(other),
    })?;
    if rows.len() != picks.len() {
        return Err(TaskFailure::retryable(
            format!(
                "chunk {}: {} rows for {} sampled frames",
                lease.chunk,
                rows.len(),
                picks.len()
            ),
            FailureClass::Processing,
        ));
    }
    let part = write_part(format, task_of(scoring(spec)?)?, &rows)
        .map_err(|e| TaskFailure::permanent(e.to_string(), FailureClass::Processing))?;
    write_atomically(&out, &part)?;
    if let Some(store) = ctx.system() {
        system::upload_chunk(store, &lease.job_id, lease.chunk, &out)?;
    }
    metrics::counter!(fresco_core::telemetry::RECORD_ROWS_WRITTEN).increment(rows.len() as u64);
    if let (Some(preview), Some(first)) = (preview, rows.first()) {
        preview.save(&ctx.queue, &lease.job_id, lease.chunk, &plan, first);
    }
    Ok(TaskOutput::Scored {
        frames: picks.len() as u64,
        reused: false,
        model_seconds,
    })
}

/// Writes `bytes` under a temporary name beside `out`, synced, then renamed into place.
pub(super) fn write_atomically(out: &Path, bytes: &[u8]) -> Result<(), TaskFailure> {
    let partial = fresco_pipeline::chunk::partial_path(out);
    let written = std::fs::File::create(&partial).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    written
        .and_then(|()| std::fs::rename(&partial, out))
        .map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            TaskFailure::retryable(
                format!("{}: cannot write the part: {e}", out.display()),
                FailureClass::Processing,
            )
        })
}

pub(super) fn assemble(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
) -> Result<TaskOutput, TaskFailure> {
    let plan = job_plan(task.lease)?;
    let expected = sampled(spec, &plan)?.len() as u64;
    join_and_publish(ctx, task, spec, expected, plan.chunks.len() as u32)
}

/// Joins the `count` parts of a records job, in order, checking that they hold `expected` rows,
/// and publishes the output atomically (a local file by rename, an object by upload).
pub(super) fn join_and_publish(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
    expected: u64,
    count: u32,
) -> Result<TaskOutput, TaskFailure> {
    let lease = task.lease;
    let format = format_of(spec)?;
    let record_task = task_of(scoring(spec)?)?;
    let output = spec.output.clone();
    let parts = || -> Result<(Vec<PathBuf>, u64), TaskFailure> {
        let (_, files, _downloaded) = super::assemble::chunk_files(ctx, lease, count)?;
        let mut bytes = 0;
        for file in &files {
            bytes += std::fs::metadata(file)
                .map_err(|e| {
                    TaskFailure::permanent(
                        format!(
                            "{}: a part of job {} is missing ({e}); retry the job to score it \
                             again",
                            file.display(),
                            lease.job_id
                        ),
                        FailureClass::Processing,
                    )
                })?
                .len();
        }
        Ok((files, bytes))
    };
    let mut joined = JoinedRecords {
        format,
        task: record_task,
        expected,
        parts: &parts,
        loaded: Vec::new(),
    };
    if let Some(url) = fresco_store::ObjectUrl::of(&output) {
        let url = url.map_err(|e| TaskFailure::permanent(e.to_string(), FailureClass::Output))?;
        return remote::publish_to_object(ctx, lease, spec, &url, task.cancel, &mut joined);
    }
    if super::assemble::published_before(lease, &output) {
        return Ok(TaskOutput::Assembled { output });
    }
    joined.prepare()?;
    let temp = fresco_pipeline::chunk::partial_path(&output);
    let mut before_publish =
        |temp: &Path| super::assemble::checkpoint_publishing(ctx, task, &output, temp);
    joined.write(&temp, &mut before_publish)?;
    if !spec.options.overwrite && output.exists() {
        let _ = std::fs::remove_file(&temp);
        return Err(TaskFailure::permanent(
            format!("{}: already exists (use --overwrite)", output.display()),
            FailureClass::Output,
        ));
    }
    std::fs::rename(&temp, &output).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        TaskFailure::retryable(
            format!("{}: cannot publish: {e}", output.display()),
            FailureClass::Output,
        )
    })?;
    Ok(TaskOutput::Assembled { output })
}

/// A records job's parts joined into one file, with the row count checked.
struct JoinedRecords<'a> {
    format: RecordFormat,
    task: ScoreTask,
    /// The rows the parts must hold: the job's sampled frames.
    expected: u64,
    /// The parts' files, in order, and their size in all.
    parts: &'a dyn Fn() -> Result<(Vec<PathBuf>, u64), TaskFailure>,
    loaded: Vec<PathBuf>,
}

impl LocalOutput for JoinedRecords<'_> {
    fn prepare(&mut self) -> Result<u64, TaskFailure> {
        let (files, bytes) = (self.parts)()?;
        self.loaded = files;
        // The joined file is about the size of its parts.
        Ok(bytes)
    }

    /// Joins the parts into `target`, synced; on any failure nothing is left there.
    fn write(
        &mut self,
        target: &Path,
        before_publish: &mut dyn FnMut(&Path) -> Result<(), RunError>,
    ) -> Result<PathBuf, TaskFailure> {
        let cleanup = |e: String| {
            let _ = std::fs::remove_file(target);
            TaskFailure::retryable(e, FailureClass::Output)
        };
        let file = std::fs::File::create(target)
            .map_err(|e| cleanup(format!("{}: cannot write: {e}", target.display())))?;
        let mut writer = std::io::BufWriter::new(file);
        join_part_files(
            self.format,
            self.task,
            &self.loaded,
            self.expected,
            &mut writer,
        )
        .map_err(|e| {
            let _ = std::fs::remove_file(target);
            TaskFailure::permanent(e.to_string(), FailureClass::Processing)
        })?;
        let file = writer
            .into_inner()
            .map_err(|e| cleanup(format!("{}: cannot write: {e}", target.display())))?;
        file.sync_all()
            .map_err(|e| cleanup(format!("{}: cannot write: {e}", target.display())))?;
        drop(file);
        before_publish(target).map_err(|e| {
            let _ = std::fs::remove_file(target);
            match e {
                RunError::Canceled => TaskFailure::canceled(),
                other => TaskFailure::from_run(other),
            }
        })?;
        Ok(target.to_path_buf())
    }
}
