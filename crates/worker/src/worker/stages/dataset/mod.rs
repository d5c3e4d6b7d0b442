//! Dataset jobs: a folder, object-store prefix or manifest of images scored into records, one
//! row per item in listing order (see `fresco_core::dataset`), or, for a job with an image model
//! and no scoring, styled into an output folder or prefix with the items' keys, or, for a
//! `segment` scoring task, made masks under an output folder or prefix ([`images`]).
//!
//! - **plan**: the model is loaded and timed (items per chunk from its time, as records chunks
//!   are sized), the source listed as a stream ([`crate::listing::list`]) and pinned into the queue in
//!   batches, under the plan's lease; the chunks are ranges of item indices.
//! - **score**: the chunk's pinned items are read ahead in parallel on the runtime
//!   ([`prefetch`]: downloads from object stores overlap decoding and the model), decoded in
//!   parallel on a pool of the chunk's own (`--decode-threads`), all within a byte budget
//!   ([`budget`]), and gathered in listing order into batches of the worker's `--batch` (or
//!   the batch the model fixes), each one inference call; an item that cannot be read, is
//!   empty, is not an image, is too large, or changed since it was pinned becomes an error row
//!   and the chunk goes on, the batch's other items scored without it. The rows are one part,
//!   written and stored as a records chunk is; the failures are recorded with the queue.
//! - **assemble**: the job fails if its failures pass `--max-failed-items` /
//!   `--max-failed-fraction`; otherwise the parts are joined and published as a records job's
//!   are, and the counts (scored, failed, skipped) go to the job's log.
//!
//! Error rows are `{"source": KEY, "error": {"kind": ..., "message": ...}}` in JSON Lines, and
//! rows with null task columns and `error_kind`, `error_message` in Parquet
//! (`fresco_score::dataset_parquet_schema`).

mod budget;
mod images;
mod prefetch;

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver};

use fresco_core::dataset::{DatasetCounts, DatasetPlan, DatasetSpec, ItemErrorKind};
use fresco_core::FrameRange;
use fresco_pipeline::image::{
    decode_bytes_needed, decode_rgb_scaled, ImageDecodeError, ScaledImage,
};
use fresco_pipeline::records::sampled_per_chunk;
use fresco_pipeline::FailureClass;
use fresco_queue::{LeaseStatus, PinnedItem, PIN_BATCH};
use fresco_score::{write_dataset_part, Frame, ItemRow};

use super::records::{
    ensure_scorer, format_of, join_and_publish, scoring, task_of, time_one_frame, write_atomically,
    LoadedScorer,
};
use super::{Task, TaskContext};
use crate::listing::{self, ItemError, ItemReader, KeyFilter};
use crate::spec::JobSpec;
use crate::worker::{system, TaskFailure, TaskOutput};
use budget::{ByteBudget, DECODE_BUDGET_BYTES};
use prefetch::{Fetched, Next, Prefetcher};

fn dataset(spec: &JobSpec) -> Result<&DatasetSpec, TaskFailure> {
    spec.dataset.as_ref().ok_or_else(|| {
        TaskFailure::permanent("the job has no dataset section", FailureClass::Processing)
    })
}

fn queue_failure(e: fresco_queue::QueueError) -> TaskFailure {
    TaskFailure::retryable(format!("the queue: {e}"), FailureClass::Processing)
}

fn lost() -> TaskFailure {
    TaskFailure::retryable("the task's lease was lost", FailureClass::Canceled)
}

fn held(status: LeaseStatus) -> Result<(), TaskFailure> {
    match status {
        LeaseStatus::Held => Ok(()),
        LeaseStatus::Lost => Err(lost()),
    }
}

fn dataset_plan(lease: &fresco_queue::TaskLease) -> Result<DatasetPlan, TaskFailure> {
    let text = lease.plan.as_deref().ok_or_else(|| {
        TaskFailure::permanent("the job has no plan yet", FailureClass::Processing)
    })?;
    serde_json::from_str(text).map_err(|e| {
        TaskFailure::permanent(
            format!("the dataset's plan cannot be read: {e}"),
            FailureClass::Processing,
        )
    })
}

pub(super) fn plan(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
    slot: &mut Option<LoadedScorer>,
) -> Result<TaskOutput, TaskFailure> {
    let dataset = dataset(spec)?;
    format_of(spec)?;
    // The output may exist only if the user allowed it.
    if fresco_store::ObjectUrl::of(&spec.output).is_none() {
        fresco_pipeline::video::check_output_target(&spec.output, spec.options.overwrite)
            .map_err(TaskFailure::from_run)?;
    }
    // Bad patterns are refused before the model is loaded.
    KeyFilter::new(dataset)?;
    let scorer = ensure_scorer(ctx, spec, slot)?;
    let (per_chunk, seconds_per_item) = match spec.chunk_frames {
        Some(n) => (n.max(1), None),
        None => {
            let seconds = time_one_frame(scorer, ctx.stages.batch)?;
            (sampled_per_chunk(seconds), Some(seconds))
        }
    };
    pin_listing(task, ctx, spec, per_chunk, seconds_per_item, None)
}

/// Lists the dataset's source as a stream and pins its items into the queue in batches, under
/// the plan's lease, then cuts them into chunks of `per_chunk`: the plan of records and image
/// jobs alike.
fn pin_listing(
    task: &Task<'_>,
    ctx: &TaskContext<'_>,
    spec: &JobSpec,
    per_chunk: u64,
    seconds_per_item: Option<f64>,
    outputs_since_ms: Option<i64>,
) -> Result<TaskOutput, TaskFailure> {
    let dataset = dataset(spec)?;
    let filter = KeyFilter::new(dataset)?;
    let lease = task.lease;
    let handle = tokio::runtime::Handle::current();
    // Whatever an earlier try pinned is forgotten: the listing is pinned whole by this one.
    held(
        handle
            .block_on(ctx.queue.clear_items(lease))
            .map_err(queue_failure)?,
    )?;
    let mut batch: Vec<PinnedItem> = Vec::with_capacity(PIN_BATCH);
    let mut items = 0u64;
    let mut skipped = 0u64;
    let pin = |batch: &mut Vec<PinnedItem>| -> Result<(), TaskFailure> {
        if batch.is_empty() {
            return Ok(());
        }
        held(
            handle
                .block_on(ctx.queue.pin_items(lease, batch))
                .map_err(queue_failure)?,
        )?;
        batch.clear();
        task.progress.tick();
        Ok(())
    };
    listing::list(dataset, &filter, &mut skipped, &mut |listed| {
        if task.is_canceled() {
            return Err(TaskFailure::canceled());
        }
        batch.push(listed.pinned(items));
        items += 1;
        if batch.len() >= PIN_BATCH {
            pin(&mut batch)?;
        }
        Ok(())
    })?;
    pin(&mut batch)?;
    if items == 0 {
        return Err(TaskFailure::permanent(
            format!(
                "{}: no items to score ({skipped} skipped by the include patterns)",
                spec.input.display()
            ),
            FailureClass::BadInput,
        ));
    }
    let chunks = fresco_core::split_frames(items, per_chunk);
    Ok(TaskOutput::PlannedDataset {
        plan: DatasetPlan {
            items,
            chunks,
            per_chunk,
            seconds_per_item,
            skipped,
            outputs_since_ms,
        },
    })
}

/// An item read and decoded, or why not.
type Prepared = Result<ScaledImage, ItemError>;

fn decode_failure(e: ImageDecodeError) -> ItemError {
    match e {
        ImageDecodeError::TooLarge(m) => (ItemErrorKind::TooLarge, m),
        ImageDecodeError::NotImage(m) => (ItemErrorKind::NotImage, m),
    }
}

/// One item decoded within the budget: what decoding it allocates is added to its share
/// (taken for its encoded bytes when its read started) before its pixels are decoded; all of it
/// goes back once the picture is at the model's size.
fn decode(fetched: Fetched<'_>, scaled_size: impl FnOnce(u32, u32) -> (u32, u32)) -> Prepared {
    let Fetched {
        item,
        bytes,
        mut share,
    } = fetched;
    share.start();
    let decoded = bytes.and_then(|bytes| {
        if let Some(needed) = decode_bytes_needed(&bytes) {
            share.grow(needed);
        }
        decode_rgb_scaled(&bytes, scaled_size).map_err(decode_failure)
    });
    if let Err((kind, message)) = &decoded {
        tracing::debug!(item = %item.key, kind = kind.as_str(), "dataset item: {message}");
    }
    decoded
}

/// Where a chunk's part goes and the items pinned for its range (checked to be all of them);
/// `None` where an earlier try's part is kept (see [`reused`]).
fn chunk_items(
    ctx: &TaskContext<'_>,
    lease: &fresco_queue::TaskLease,
) -> Result<Option<(std::path::PathBuf, Vec<PinnedItem>)>, TaskFailure> {
    let Some(out) = super::score::chunk_target(ctx, lease)? else {
        return Ok(None);
    };
    let range = lease.frames;
    let items = tokio::runtime::Handle::current()
        .block_on(ctx.queue.items(&lease.job_id, range))
        .map_err(queue_failure)?;
    if items.len() as u64 != range.len() {
        return Err(TaskFailure::permanent(
            format!(
                "chunk {}: {} items pinned for a range of {}",
                lease.chunk,
                items.len(),
                range.len()
            ),
            FailureClass::Processing,
        ));
    }
    Ok(Some((out, items)))
}

/// A chunk whose part an earlier try wrote: nothing scored again.
fn reused(range: FrameRange) -> TaskOutput {
    TaskOutput::Scored {
        frames: range.len(),
        reused: true,
        model_seconds: 0.0,
    }
}

/// One item read and decoded on the calling thread, within the budget (taken for its encoded
/// bytes, waiting for room, before its read): the styled datasets' path, which reads and
/// decodes a batch at a time on the decode pool rather than through the prefetcher.
fn prepare(
    item: &PinnedItem,
    reader: &ItemReader,
    handle: &tokio::runtime::Handle,
    budget: &ByteBudget,
    scaled_size: impl FnOnce(u32, u32) -> (u32, u32),
) -> Prepared {
    let encoded = if item.size > reader.max_item_bytes() {
        0
    } else {
        item.size
    };
    let share = budget.take(encoded);
    let bytes = handle.block_on(reader.fetch(item));
    decode(Fetched { item, bytes, share }, scaled_size)
}

/// The pool a chunk's images are decoded on: `threads` of its own, so that decoding never takes
/// more of the machine than asked while the model runs on its own threads.
fn decode_pool(threads: usize) -> Result<rayon::ThreadPool, TaskFailure> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("fresco-decode-{i}"))
        .build()
        .map_err(|e| {
            TaskFailure::retryable(
                format!("cannot start the decode threads: {e}"),
                FailureClass::Processing,
            )
        })
}

pub(super) fn score(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
    slot: &mut Option<LoadedScorer>,
    faults: &super::score::Faults,
) -> Result<TaskOutput, TaskFailure> {
    let lease = task.lease;
    let dataset = dataset(spec)?;
    let range: FrameRange = lease.frames;
    let Some((out, items)) = chunk_items(ctx, lease)? else {
        return Ok(reused(range));
    };
    let handle = tokio::runtime::Handle::current();
    let reader = ItemReader::new(dataset)?;
    let batch_size = ctx.stages.batch;
    let scorer = ensure_scorer(ctx, spec, slot)?;
    let per_call = scorer.batch(batch_size);
    let prep = scorer.plan().prep.clone();
    let pool = decode_pool(ctx.stages.decode_threads)?;
    let budget = ByteBudget::new(DECODE_BUDGET_BYTES);
    let format = format_of(spec)?;
    let record_task = task_of(scoring(spec)?)?;
    let mut rows: Vec<ItemRow> = Vec::with_capacity(items.len());
    let mut failures: Vec<(u64, String)> = Vec::new();
    let mut model_seconds = 0.0;
    let mut calls = 0usize;
    let mut score_error = None;
    // Decodes queued or running at once: enough to keep every decode thread busy.
    let decode_ahead = 2 * ctx.stages.decode_threads.max(1);
    std::thread::scope(|scope| {
        // Items are read ahead and decoded in parallel, in order, into batches of `per_call`;
        // two batches in the channel bound what waits for the model.
        let (ready_tx, ready_rx) = sync_channel::<Vec<Prepared>>(2);
        let reader = &reader;
        let items = &items;
        let cancel = task.cancel;
        let handle = &handle;
        let (pool, budget, prep) = (&pool, &budget, &prep);
        scope.spawn(move || {
            pool.in_place_scope(|decoders| {
                let mut prefetcher = Prefetcher::new(items, reader, handle, budget);
                let mut decoding: VecDeque<Receiver<Prepared>> = VecDeque::new();
                let mut group: Vec<Prepared> = Vec::with_capacity(per_call);
                loop {
                    if cancel.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    while decoding.len() < decode_ahead {
                        match prefetcher.next() {
                            Next::Item(fetched) => {
                                let (done_tx, done_rx) = sync_channel(1);
                                decoders.spawn(move |_| {
                                    let prepared = decode(fetched, |w, h| prep.scaled_size(w, h));
                                    let _ = done_tx.send(prepared);
                                });
                                decoding.push_back(done_rx);
                            }
                            // The decodes under way give their bytes back first.
                            Next::Full | Next::Done => break,
                        }
                    }
                    // Only decodes hold the budget outside the prefetcher, so with none under
                    // way every item has been handed out.
                    let Some(first) = decoding.pop_front() else {
                        break;
                    };
                    let Ok(prepared) = first.recv() else {
                        return;
                    };
                    group.push(prepared);
                    if group.len() == per_call && ready_tx.send(std::mem::take(&mut group)).is_err()
                    {
                        return;
                    }
                }
                if !group.is_empty() {
                    let _ = ready_tx.send(group);
                }
            });
        });
        for (group, prepared) in items.chunks(per_call).zip(ready_rx.iter()) {
            task.progress.tick();
            let good: Vec<(&PinnedItem, &ScaledImage)> = group
                .iter()
                .zip(&prepared)
                .filter_map(|(item, p)| p.as_ref().ok().map(|img| (item, img)))
                .collect();
            let frames: Vec<Frame> = good
                .iter()
                .map(|(item, img)| Frame::still(&img.rgb, img.scaled, img.displayed, &item.key))
                .collect();
            let started = std::time::Instant::now();
            let scored = if frames.is_empty() {
                Vec::new()
            } else {
                calls += frames.len().div_ceil(per_call);
                match scorer.score(&frames) {
                    Ok(rows) => rows,
                    Err(e) => {
                        score_error = Some(e);
                        return;
                    }
                }
            };
            model_seconds += started.elapsed().as_secs_f64();
            let mut scored = scored.into_iter();
            for (item, prepared) in group.iter().zip(&prepared) {
                faults.after_frame();
                match prepared {
                    Ok(_) => {
                        let row = scored.next().expect("a row per scored image");
                        rows.push(ItemRow::Scored(row));
                    }
                    Err(error) => {
                        metrics::counter!(
                            fresco_core::telemetry::DATASET_ITEMS_FAILED,
                            "kind" => error.0.as_str()
                        )
                        .increment(1);
                        rows.push(ItemRow::Failed {
                            source: item.key.clone(),
                            kind: error.0.as_str().to_string(),
                            message: error.1.clone(),
                        });
                        failures.push((item.index, error.0.as_str().to_string()));
                    }
                }
            }
        }
    });
    if let Some(e) = score_error {
        // The outputs of a real call did not fit the plan: the same on every try.
        return Err(TaskFailure::permanent(e.to_string(), FailureClass::Model));
    }
    if task.is_canceled() {
        return Err(TaskFailure::canceled());
    }
    if rows.len() as u64 != range.len() {
        return Err(TaskFailure::retryable(
            format!(
                "chunk {}: {} rows for {} items",
                lease.chunk,
                rows.len(),
                range.len()
            ),
            FailureClass::Processing,
        ));
    }
    held(
        handle
            .block_on(ctx.queue.record_failures(lease, &failures))
            .map_err(queue_failure)?,
    )?;
    let part = write_dataset_part(format, record_task, &rows)
        .map_err(|e| TaskFailure::permanent(e.to_string(), FailureClass::Processing))?;
    write_atomically(&out, &part)?;
    if let Some(store) = ctx.system() {
        system::upload_chunk(store, &lease.job_id, lease.chunk, &out)?;
    }
    metrics::counter!(fresco_core::telemetry::RECORD_ROWS_WRITTEN).increment(rows.len() as u64);
    metrics::counter!(fresco_core::telemetry::DATASET_ITEMS_SCORED)
        .increment((rows.len() - failures.len()) as u64);
    tracing::debug!(
        "chunk {} of job {}: {} items scored in {calls} model calls of up to {per_call}",
        lease.chunk,
        lease.job_id,
        rows.len() - failures.len()
    );
    if !failures.is_empty() {
        tracing::info!(
            "chunk {} of job {}: {} of {} items are error rows",
            lease.chunk,
            lease.job_id,
            failures.len(),
            range.len()
        );
    }
    Ok(TaskOutput::Scored {
        frames: range.len(),
        reused: false,
        model_seconds,
    })
}

/// The plan of an image job (an image model, styled images under an output folder or prefix;
/// see [`images`]).
pub(super) fn plan_images(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
    model: &mut Option<fresco_pipeline::LoadedModel>,
) -> Result<TaskOutput, TaskFailure> {
    plan_outputs_under_prefix(ctx, task, spec, || {
        super::ensure_model(ctx, spec, model).map(|_| ())
    })
}

/// What the plans of image and mask jobs share: the dataset's and the output's checks, then
/// `load` (the job's model, checked on this worker), then the pinned listing in chunks of
/// [`images::IMAGES_PER_CHUNK`] items (or the job's `chunk_frames`).
fn plan_outputs_under_prefix(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
    load: impl FnOnce() -> Result<(), TaskFailure>,
) -> Result<TaskOutput, TaskFailure> {
    let dataset = dataset(spec)?;
    KeyFilter::new(dataset)?;
    let since = images::check_plan(spec)?;
    load()?;
    let per_chunk = spec.chunk_frames.unwrap_or(images::IMAGES_PER_CHUNK).max(1);
    pin_listing(task, ctx, spec, per_chunk, None, Some(since))
}

/// A chunk of an image job: its items styled and published one by one ([`images`]).
pub(super) fn score_images(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
    model: &mut Option<fresco_pipeline::LoadedModel>,
    faults: &super::score::Faults,
) -> Result<TaskOutput, TaskFailure> {
    images::score(ctx, task, spec, images::Slot::Style(model), faults)
}

/// Whether a job is a mask job: a dataset scored by a `segment` model, whose masks go under
/// an output folder or prefix ([`images`]) rather than into records.
pub(super) fn is_masks(spec: &JobSpec) -> bool {
    spec.dataset.is_some()
        && spec
            .scoring
            .as_ref()
            .and_then(|s| s.settings.task.as_deref())
            == Some("segment")
}

/// The plan of a mask job: an image job's checks and listing, with the scoring model loaded
/// (its plan checked against this worker's runtime) in place of an image model.
pub(super) fn plan_masks(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
    slot: &mut Option<LoadedScorer>,
) -> Result<TaskOutput, TaskFailure> {
    plan_outputs_under_prefix(ctx, task, spec, || {
        ensure_scorer(ctx, spec, slot).map(|_| ())
    })
}

/// A chunk of a mask job: each item's mask made and published one by one ([`images`]).
pub(super) fn score_masks(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
    slot: &mut Option<LoadedScorer>,
    faults: &super::score::Faults,
) -> Result<TaskOutput, TaskFailure> {
    images::score(ctx, task, spec, images::Slot::Masks(slot), faults)
}

/// The counts of a finished dataset job, written to its log.
fn log_counts(ctx: &TaskContext<'_>, task: &Task<'_>) -> Result<(DatasetCounts, u64), TaskFailure> {
    let lease = task.lease;
    let plan = dataset_plan(lease)?;
    let handle = tokio::runtime::Handle::current();
    let counts = handle
        .block_on(ctx.queue.item_counts(&lease.job_id))
        .map_err(queue_failure)?;
    let summary = DatasetCounts {
        scored: counts.total - counts.failed.min(counts.total),
        failed: counts.failed,
        skipped: plan.skipped,
    };
    let line = format!(
        "dataset: {} items scored, {} failed, {} skipped",
        summary.scored, summary.failed, summary.skipped
    );
    let _ = handle.block_on(ctx.queue.log(&lease.job_id, None, &line));
    Ok((summary, counts.total))
}

/// The end of an image job: its error rows published beside the outputs (before the
/// thresholds are checked, so that a job failed by them still says which items failed), its
/// counts logged.
pub(super) fn assemble_images(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
) -> Result<TaskOutput, TaskFailure> {
    let dataset = dataset(spec)?;
    let (counts, total) = log_counts(ctx, task)?;
    images::publish_errors(ctx, task, spec)?;
    if is_masks(spec) {
        images::publish_labels(spec)?;
    }
    if let Some(why) = dataset.over_threshold(counts.failed, total) {
        return Err(TaskFailure::permanent(why, FailureClass::BadInput));
    }
    Ok(TaskOutput::Assembled {
        output: spec.output.clone(),
    })
}

pub(super) fn assemble(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
) -> Result<TaskOutput, TaskFailure> {
    let dataset = dataset(spec)?;
    let plan = dataset_plan(task.lease)?;
    let (counts, total) = log_counts(ctx, task)?;
    if let Some(why) = dataset.over_threshold(counts.failed, total) {
        return Err(TaskFailure::permanent(why, FailureClass::BadInput));
    }
    join_and_publish(ctx, task, spec, plan.items, plan.chunks.len() as u32)
}
