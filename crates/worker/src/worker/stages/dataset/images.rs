//! Image dataset jobs: each item of a folder, prefix (no manifest) styled by an image model and
//! written under the job's output folder or prefix with the same relative key
//! ([`fresco_core::dataset::output_key`]), or segmented by a `segment` scoring model into a mask
//! written as PNG under the item's key with `.png` added ([`fresco_core::dataset::mask_key`]).
//!
//! - **plan**: the output must hold nothing yet (or `--overwrite`), and the output's own clock
//!   is read (a probe written and removed), so that whatever a later try finds there written
//!   since is this job's; the model is loaded, the source listed and pinned as for
//!   records ([`super::pin_listing`]), in chunks of [`IMAGES_PER_CHUNK`] items (or
//!   `--chunk-frames`).
//! - **score**: for each pinned item, a bad key is an error row; an output written since the
//!   plan is this job's (an earlier try of the chunk) and is not redone; the others are
//!   read and decoded a batch ahead of the model (the records path's reader, pool and byte
//!   budget), styled at their own size and encoded in their key's format, or (masks) scaled to
//!   the model's input, segmented and their mask encoded as PNG at their own size. The items
//!   of a batch (the worker's `--batch`) go through the model together: masks in calls of the
//!   batch (or of the batch the model fixes), styles the same, the items of one size in a
//!   call. Each output is published whole: a local file under a temporary name, synced, then
//!   renamed; an object by one put. The chunk's part holds its error rows only.
//! - **assemble**: the error rows of all parts are published as [`ERRORS_FILE`] beside the
//!   outputs (when there are any), and a mask job's pinned labels as [`LABELS_FILE`]; the
//!   counts go to the job's log, and the job fails if its failures pass its thresholds (the
//!   images already published stay).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use fresco_core::dataset::{
    mask_key, output_key, DatasetSource, ItemErrorKind, ERRORS_FILE, LABELS_FILE,
};
use fresco_core::FrameRange;
use fresco_pipeline::image::{encode_rgb, ScaledImage};
use fresco_pipeline::{FailureClass, LoadedModel};
use fresco_queue::PinnedItem;
use fresco_score::{Frame, PrepSpec, Scorer};
use fresco_store::Store;
use rayon::prelude::*;

use super::budget::{ByteBudget, DECODE_BUDGET_BYTES};
use super::{
    chunk_items, dataset, dataset_plan, decode_pool, held, prepare, queue_failure, reused,
};
use crate::listing::{ItemError, ItemReader};
use crate::spec::JobSpec;
use crate::worker::stages::records::{ensure_scorer, LoadedScorer};
use crate::worker::stages::{ensure_model, Task, TaskContext};
use crate::worker::{system, TaskFailure, TaskOutput};

/// Items per chunk when `--chunk-frames` does not say: styling a picture takes from a tenth of
/// a second to seconds by its size, which the plan does not know before reading the items.
pub(super) const IMAGES_PER_CHUNK: u64 = 32;

/// A file's modification time in ms since the Unix epoch (0 when the system has none).
fn file_ms(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Where an image job's outputs go: a local folder, or an object-store prefix.
enum Outputs {
    Folder(PathBuf),
    Prefix(Store),
}

fn output_failure(what: impl std::fmt::Display, retryable: bool) -> TaskFailure {
    TaskFailure::new(what.to_string(), FailureClass::Output, retryable)
}

impl Outputs {
    fn open(output: &Path) -> Result<Outputs, TaskFailure> {
        if fresco_store::is_object_url(output) {
            // A store rooted at the prefix: keys are relative to it, as the input's are.
            let store = Store::from_url(&output.to_string_lossy())
                .map_err(|e| output_failure(format!("output {}: {e}", output.display()), false))?;
            return Ok(Outputs::Prefix(store));
        }
        Ok(Outputs::Folder(output.to_path_buf()))
    }

    /// Whether anything is under the output yet (a folder that does not exist holds nothing).
    fn holds_anything(&self, handle: &tokio::runtime::Handle) -> Result<bool, TaskFailure> {
        match self {
            Outputs::Folder(root) => match std::fs::symlink_metadata(root) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(output_failure(format!("{}: {e}", root.display()), true)),
                Ok(meta) if !meta.is_dir() => Err(output_failure(
                    format!(
                        "{}: the output of an image dataset is a folder, and this is not one",
                        root.display()
                    ),
                    false,
                )),
                Ok(_) => {
                    let mut entries = std::fs::read_dir(root)
                        .map_err(|e| output_failure(format!("{}: {e}", root.display()), true))?;
                    Ok(entries.next().is_some())
                }
            },
            Outputs::Prefix(store) => {
                use futures_util::StreamExt;
                let mut listing = store
                    .list_stream("")
                    .map_err(|e| output_failure(format!("listing the output: {e}"), true))?;
                match handle.block_on(listing.next()) {
                    None => Ok(false),
                    Some(Ok(_)) => Ok(true),
                    Some(Err(e)) => Err(output_failure(format!("listing the output: {e}"), true)),
                }
            }
        }
    }

    /// When `key`'s output was last written, if it is there: a regular file (a link is never
    /// taken as one), or an object.
    fn modified(
        &self,
        key: &str,
        handle: &tokio::runtime::Handle,
    ) -> Result<Option<i64>, ItemError> {
        match self {
            Outputs::Folder(root) => Ok(std::fs::symlink_metadata(root.join(key))
                .ok()
                .filter(|m| m.is_file())
                .map(|m| file_ms(&m))),
            Outputs::Prefix(store) => handle
                .block_on(store.head(key))
                .map(|info| info.map(|i| i.last_modified))
                .map_err(|e| {
                    (
                        ItemErrorKind::Unreadable,
                        format!("the output's store: {e}"),
                    )
                }),
        }
    }

    /// The output's own clock now: a probe written, its time read back, and removed.
    fn clock(&self, handle: &tokio::runtime::Handle) -> Result<i64, TaskFailure> {
        let probe = format!(".fresco-clock-{}", std::process::id());
        let time = match self {
            Outputs::Folder(root) => {
                let path = root.join(&probe);
                let written = std::fs::write(&path, b"").and_then(|()| std::fs::metadata(&path));
                let _ = std::fs::remove_file(&path);
                written.map(|m| file_ms(&m)).map_err(|e| {
                    output_failure(format!("{}: cannot write: {e}", path.display()), true)
                })?
            }
            Outputs::Prefix(store) => {
                let put = handle.block_on(store.put_bytes(&probe, bytes::Bytes::new()));
                let _ = handle.block_on(store.delete(&probe));
                put.map(|info| info.last_modified)
                    .map_err(|e| output_failure(format!("output: cannot write: {e}"), true))?
            }
        };
        Ok(time)
    }

    /// Publishes `bytes` as `key`'s output, whole or not at all.
    fn publish(
        &self,
        key: &str,
        bytes: Vec<u8>,
        handle: &tokio::runtime::Handle,
    ) -> Result<(), TaskFailure> {
        match self {
            Outputs::Folder(root) => {
                let path = folder_path(root, key)?;
                let partial = fresco_pipeline::chunk::partial_path(&path);
                let written = std::fs::File::create(&partial).and_then(|mut f| {
                    f.write_all(&bytes)?;
                    f.sync_all()
                });
                written
                    .and_then(|()| std::fs::rename(&partial, &path))
                    .map_err(|e| {
                        let _ = std::fs::remove_file(&partial);
                        output_failure(format!("{}: cannot write: {e}", path.display()), true)
                    })
            }
            Outputs::Prefix(store) => handle
                .block_on(store.put_bytes(key, bytes.into()))
                .map(|_| ())
                .map_err(|e| output_failure(format!("output {key}: cannot write: {e}"), true)),
        }
    }
}

/// `root/key`, its folders made one at a time: a folder on the way (or the file itself) that is
/// a symbolic link is refused, so that no output is written outside `root` through a link.
fn folder_path(root: &Path, key: &str) -> Result<PathBuf, TaskFailure> {
    let mut at = root.to_path_buf();
    let segments: Vec<&str> = key.split('/').collect();
    let (name, folders) = segments.split_last().expect("a checked key has a segment");
    for folder in folders {
        at.push(folder);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(output_failure(
                    format!(
                        "{}: not a folder (a link or a file) where output {key} goes: refused",
                        at.display()
                    ),
                    false,
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match std::fs::create_dir(&at) {
                    Ok(()) => {}
                    // Another worker made it meanwhile.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(output_failure(
                            format!("{}: cannot create the folder: {e}", at.display()),
                            true,
                        ))
                    }
                }
            }
            Err(e) => return Err(output_failure(format!("{}: {e}", at.display()), true)),
        }
    }
    at.push(name);
    if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(output_failure(
            format!(
                "{}: a symbolic link where output {key} goes: refused",
                at.display()
            ),
            false,
        ));
    }
    Ok(at)
}

/// The plan's own checks for an image job: no manifest, an output that holds nothing yet
/// (unless `--overwrite`), made if absent. Returns the output's clock now: what is written
/// there from now on is this job's.
pub(super) fn check_plan(spec: &JobSpec) -> Result<i64, TaskFailure> {
    let dataset = dataset(spec)?;
    if matches!(dataset.source, DatasetSource::Manifest { .. }) {
        return Err(TaskFailure::permanent(
            "a manifest's lines have no common folder to keep their keys under: style a folder \
             or a prefix into an output folder",
            FailureClass::BadInput,
        ));
    }
    let outputs = Outputs::open(&spec.output)?;
    let handle = tokio::runtime::Handle::current();
    if !spec.options.overwrite && outputs.holds_anything(&handle)? {
        return Err(output_failure(
            format!(
                "output {}: already holds files; an image dataset writes into an empty folder \
                 or prefix (or give --overwrite to replace what is there)",
                spec.output.display()
            ),
            false,
        ));
    }
    if let Outputs::Folder(root) = &outputs {
        std::fs::create_dir_all(root).map_err(|e| {
            output_failure(
                format!("{}: cannot create the output folder: {e}", root.display()),
                true,
            )
        })?;
    }
    outputs.clock(&handle)
}

/// What became of one item before the model.
enum Prepared {
    /// Its output is there already, from an earlier try of this job.
    Done,
    Failed(ItemError),
    Ready {
        key: String,
        image: ScaledImage,
    },
}

/// An error row of an image job's part: `{"source": KEY, "error": {"kind", "message"}}`.
fn error_row(key: &str, (kind, message): &ItemError) -> String {
    let mut line = serde_json::json!({
        "source": key,
        "error": {"kind": kind.as_str(), "message": message},
    })
    .to_string();
    line.push('\n');
    line
}

/// The model slot an image job's chunk loads its model into.
pub(super) enum Slot<'s> {
    /// An image model: each item styled at its own size, in its key's format.
    Style(&'s mut Option<LoadedModel>),
    /// A `segment` scoring model: each item's mask, as PNG.
    Masks(&'s mut Option<LoadedScorer>),
}

/// The loaded model an image job's items are drawn with.
enum Painter<'m> {
    Style(&'m mut LoadedModel),
    Masks(&'m mut Scorer),
}

/// What drawing an item gave: its output's bytes, or why it has none (an error row).
type Drawn = Result<Vec<u8>, ItemError>;

impl Painter<'_> {
    /// Where an item's output goes, or why it cannot (a `bad-key` row).
    fn key_of(&self) -> fn(&str) -> Result<String, String> {
        match self {
            Painter::Style(_) => output_key,
            Painter::Masks(_) => mask_key,
        }
    }

    /// The size items are decoded at: their own (styles), or the model's preparation's
    /// (masks, which come back at the item's own size).
    fn fit(&self) -> Option<PrepSpec> {
        match self {
            Painter::Style(_) => None,
            Painter::Masks(scorer) => Some(scorer.plan().prep.clone()),
        }
    }

    /// The outputs of a group's items that reached the model, encoded whole, in order, and the
    /// model calls it took: masks in calls of the worker's `--batch` (or the batch the model
    /// fixes), as records are; styles the items of one size together in such calls (a call
    /// takes pictures of one size). `Err` only when the model fails (the same for every item:
    /// the chunk stops).
    fn draw(&mut self, ready: &[Ready<'_>]) -> Result<(Vec<Drawn>, usize), String> {
        let encoded =
            |bytes: Result<Vec<u8>, String>| bytes.map_err(|e| (ItemErrorKind::NotImage, e));
        match self {
            Painter::Style(model) => {
                let per_call = model.engine.batch().max(1);
                let mut drawn: Vec<Option<Drawn>> = ready.iter().map(|_| None).collect();
                let mut calls = 0;
                for (at, first) in ready.iter().enumerate() {
                    if drawn[at].is_some() {
                        continue;
                    }
                    let (w, h) = first.image.scaled;
                    let members: Vec<usize> = (at..ready.len())
                        .filter(|&i| drawn[i].is_none() && ready[i].image.scaled == (w, h))
                        .collect();
                    let inputs: Vec<&[u8]> = members
                        .iter()
                        .map(|&i| ready[i].image.rgb.as_slice())
                        .collect();
                    let mut styled: Vec<Vec<u8>> =
                        inputs.iter().map(|rgb| vec![0u8; rgb.len()]).collect();
                    let mut outputs: Vec<&mut [u8]> =
                        styled.iter_mut().map(Vec::as_mut_slice).collect();
                    model
                        .engine
                        .style_frames(w, h, &inputs, &mut outputs)
                        .map_err(|e| e.to_string())?;
                    calls += members.len().div_ceil(per_call);
                    for (i, styled) in members.into_iter().zip(styled) {
                        drawn[i] = Some(encoded(encode_rgb(w, h, styled, &ready[i].key)));
                    }
                }
                let drawn = drawn
                    .into_iter()
                    .map(|d| d.expect("every item drawn"))
                    .collect();
                Ok((drawn, calls))
            }
            Painter::Masks(scorer) => {
                let frames: Vec<Frame> = ready
                    .iter()
                    .map(|r| {
                        Frame::still(&r.image.rgb, r.image.scaled, r.image.displayed, &r.item.key)
                    })
                    .collect();
                let masks = scorer.segment(&frames).map_err(|e| e.to_string())?;
                if masks.len() != frames.len() {
                    return Err(format!(
                        "the model gave {} masks for {} pictures",
                        masks.len(),
                        frames.len()
                    ));
                }
                let calls = frames.len().div_ceil(scorer.batch(frames.len()));
                Ok((
                    masks.into_iter().map(|m| encoded(m.to_png())).collect(),
                    calls,
                ))
            }
        }
    }
}

/// What becomes of an item of a group once the group's ready items are drawn.
enum Fate {
    /// Its output is there already, from an earlier try of this job.
    Kept,
    Failed(ItemError),
    /// It went through the model: its output, or an error row if it cannot be encoded.
    Drawn,
}

/// An item ready for the model: where its output goes, and its picture.
struct Ready<'a> {
    item: &'a PinnedItem,
    key: String,
    image: ScaledImage,
}

pub(super) fn score(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
    slot: Slot<'_>,
    faults: &super::super::score::Faults,
) -> Result<TaskOutput, TaskFailure> {
    let lease = task.lease;
    let dataset = dataset(spec)?;
    let range: FrameRange = lease.frames;
    let Some((out, items)) = chunk_items(ctx, lease)? else {
        return Ok(reused(range));
    };
    let handle = tokio::runtime::Handle::current();
    let reader = ItemReader::new(dataset)?;
    let outputs = Outputs::open(&spec.output)?;
    // An output written since the plan looked is this job's (an earlier try of this chunk).
    let since = dataset_plan(lease)?.outputs_since_ms.unwrap_or(i64::MIN);
    let per_call = ctx.stages.batch.max(1);
    let mut painter = match slot {
        Slot::Style(model) => Painter::Style(ensure_model(ctx, spec, model)?),
        Slot::Masks(scorer) => Painter::Masks(ensure_scorer(ctx, spec, scorer)?),
    };
    let (key_of, fit) = (painter.key_of(), painter.fit());
    let pool = decode_pool(ctx.stages.decode_threads)?;
    let budget = ByteBudget::new(DECODE_BUDGET_BYTES);
    let mut part = String::new();
    let mut failures: Vec<(u64, String)> = Vec::new();
    let (mut written, mut kept) = (0u64, 0u64);
    let mut model_seconds = 0.0;
    let (mut calls, mut through_model) = (0usize, 0usize);
    let mut stopped: Option<TaskFailure> = None;
    std::thread::scope(|scope| {
        let (ready_tx, ready_rx) = sync_channel::<Vec<Prepared>>(2);
        let (reader, outputs, items, handle) = (&reader, &outputs, &items, &handle);
        let (pool, budget, fit) = (&pool, &budget, &fit);
        let limits = &spec.options.limits;
        let cancel = task.cancel;
        scope.spawn(move || {
            for group in items.chunks(per_call) {
                if cancel.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let prepared: Vec<Prepared> = pool.install(|| {
                    group
                        .par_iter()
                        .map(|item| {
                            let place = Place {
                                key_of,
                                fit,
                                limits,
                                since,
                            };
                            prepare_item(item, reader, outputs, &place, handle, budget)
                        })
                        .collect()
                });
                if ready_tx.send(prepared).is_err() {
                    return;
                }
            }
        });
        for (group, prepared) in items.chunks(per_call).zip(ready_rx.iter()) {
            task.progress.tick();
            if task.is_canceled() {
                return;
            }
            // The group's items that reach the model go through it together; the others were
            // written by an earlier try, or are error rows.
            let mut ready = Vec::new();
            let mut fates = Vec::with_capacity(group.len());
            for (item, prepared) in group.iter().zip(prepared) {
                fates.push(match prepared {
                    Prepared::Done => Fate::Kept,
                    Prepared::Failed(error) => Fate::Failed(error),
                    Prepared::Ready { key, image } => {
                        ready.push(Ready { item, key, image });
                        Fate::Drawn
                    }
                });
            }
            let mut drawn = Vec::new().into_iter();
            if !ready.is_empty() {
                // The model's time and the encoding's.
                let started = std::time::Instant::now();
                match painter.draw(&ready) {
                    Ok((outputs, made_in)) => {
                        drawn = outputs.into_iter();
                        calls += made_in;
                        through_model += ready.len();
                    }
                    Err(e) => {
                        let keys: Vec<&str> = ready.iter().map(|r| r.item.key.as_str()).collect();
                        stopped = Some(TaskFailure::permanent(
                            format!("{}: the model: {e}", keys.join(", ")),
                            FailureClass::Model,
                        ));
                        return;
                    }
                }
                model_seconds += started.elapsed().as_secs_f64();
            }
            let mut ready = ready.into_iter();
            for (item, fate) in group.iter().zip(fates) {
                faults.after_frame();
                if task.is_canceled() {
                    return;
                }
                match fate {
                    Fate::Kept => kept += 1,
                    Fate::Failed(error) => note_failure(item, &error, &mut part, &mut failures),
                    Fate::Drawn => {
                        let key = ready.next().expect("a ready item").key;
                        match drawn.next().expect("an output per ready item") {
                            Ok(bytes) => {
                                if let Err(e) = outputs.publish(&key, bytes, handle) {
                                    stopped = Some(e);
                                    return;
                                }
                                written += 1;
                            }
                            Err(error) => note_failure(item, &error, &mut part, &mut failures),
                        }
                    }
                }
            }
        }
    });
    if let Some(failure) = stopped {
        return Err(failure);
    }
    if task.is_canceled() {
        return Err(TaskFailure::canceled());
    }
    let accounted = written + kept + failures.len() as u64;
    if accounted != range.len() {
        return Err(TaskFailure::retryable(
            format!(
                "chunk {}: {accounted} items accounted for of {}",
                lease.chunk,
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
    super::super::records::write_atomically(&out, part.as_bytes())?;
    if let Some(store) = ctx.system() {
        system::upload_chunk(store, &lease.job_id, lease.chunk, &out)?;
    }
    metrics::counter!(fresco_core::telemetry::DATASET_ITEMS_SCORED).increment(written + kept);
    tracing::debug!(
        "chunk {} of job {}: {through_model} items scored in {calls} model calls of up to \
         {per_call}",
        lease.chunk,
        lease.job_id,
    );
    tracing::info!(
        "chunk {} of job {}: {written} images written, {kept} already there, {} error rows",
        lease.chunk,
        lease.job_id,
        failures.len()
    );
    Ok(TaskOutput::Scored {
        frames: range.len(),
        reused: false,
        model_seconds,
    })
}

fn note_failure(
    item: &PinnedItem,
    error: &ItemError,
    part: &mut String,
    failures: &mut Vec<(u64, String)>,
) {
    metrics::counter!(
        fresco_core::telemetry::DATASET_ITEMS_FAILED,
        "kind" => error.0.as_str()
    )
    .increment(1);
    part.push_str(&error_row(&item.key, error));
    failures.push((item.index, error.0.as_str().to_string()));
}

/// Where an item's output goes and how it is decoded.
struct Place<'a> {
    key_of: fn(&str) -> Result<String, String>,
    /// The preparation items are scaled for (masks); `None`: their own size, held to the job's
    /// limits on a frame's size (`--max-input-width`, `-height`, `-pixels` of `fresco serve`),
    /// as the model's memory grows with it.
    fit: &'a Option<PrepSpec>,
    limits: &'a fresco_core::MediaLimits,
    /// An output written since is this job's.
    since: i64,
}

/// One item up to the model: its output key checked, an output this job wrote already (since
/// `since`) kept, else read and decoded (at its own size, or the model's) within the budget.
fn prepare_item(
    item: &PinnedItem,
    reader: &ItemReader,
    outputs: &Outputs,
    place: &Place<'_>,
    handle: &tokio::runtime::Handle,
    budget: &ByteBudget,
) -> Prepared {
    let since = place.since;
    let key = match (place.key_of)(&item.key) {
        Ok(key) => key,
        Err(why) => return Prepared::Failed((ItemErrorKind::BadKey, why)),
    };
    match outputs.modified(&key, handle) {
        Ok(Some(at)) if at >= since => return Prepared::Done,
        Ok(_) => {}
        Err(e) => return Prepared::Failed(e),
    }
    let scaled_size = |w, h| match place.fit {
        Some(prep) => prep.scaled_size(w, h),
        None => (w, h),
    };
    match prepare(item, reader, handle, budget, scaled_size) {
        Ok(image) if place.fit.is_none() => {
            let (width, height) = image.scaled;
            match place.limits.check_picture_size(&item.key, width, height) {
                Ok(()) => Prepared::Ready { key, image },
                Err(breach) => Prepared::Failed((ItemErrorKind::TooLarge, breach.to_string())),
            }
        }
        Ok(image) => Prepared::Ready { key, image },
        Err(e) => Prepared::Failed(e),
    }
}

/// Publishes the parts' error rows as [`ERRORS_FILE`] beside the outputs, when there are any.
pub(super) fn publish_errors(
    ctx: &TaskContext<'_>,
    task: &Task<'_>,
    spec: &JobSpec,
) -> Result<(), TaskFailure> {
    let lease = task.lease;
    let plan = dataset_plan(lease)?;
    let (job_dir, files, _downloaded) =
        super::super::assemble::chunk_files(ctx, lease, plan.chunks.len() as u32)?;
    let joined = job_dir.join(format!("{ERRORS_FILE}.joined"));
    let missing = |file: &Path, e: std::io::Error| {
        TaskFailure::permanent(
            format!(
                "{}: a part of job {} is missing ({e}); retry the job to score it again",
                file.display(),
                lease.job_id
            ),
            FailureClass::Processing,
        )
    };
    let unwritable = |e: std::io::Error| {
        output_failure(format!("{}: cannot write: {e}", joined.display()), true)
    };
    let mut bytes = 0;
    {
        let mut writer =
            std::io::BufWriter::new(std::fs::File::create(&joined).map_err(unwritable)?);
        for file in &files {
            let mut part = std::fs::File::open(file).map_err(|e| missing(file, e))?;
            bytes += std::io::copy(&mut part, &mut writer).map_err(unwritable)?;
        }
        let file = writer
            .into_inner()
            .map_err(|e| unwritable(e.into_error()))?;
        file.sync_all().map_err(unwritable)?;
    }
    let published = if bytes == 0 {
        Ok(())
    } else {
        let handle = tokio::runtime::Handle::current();
        match Outputs::open(&spec.output)? {
            Outputs::Folder(root) => {
                let target = root.join(ERRORS_FILE);
                let partial = fresco_pipeline::chunk::partial_path(&target);
                std::fs::copy(&joined, &partial)
                    .and_then(|_| std::fs::File::open(&partial)?.sync_all())
                    .and_then(|()| std::fs::rename(&partial, &target))
                    .map_err(|e| {
                        let _ = std::fs::remove_file(&partial);
                        output_failure(format!("{}: cannot write: {e}", target.display()), true)
                    })
            }
            Outputs::Prefix(store) => handle
                .block_on(store.upload_file(ERRORS_FILE, &joined))
                .map(|_| ())
                .map_err(|e| output_failure(format!("output {ERRORS_FILE}: {e}"), true)),
        }
    };
    let _ = std::fs::remove_file(&joined);
    published
}

/// Publishes a mask job's pinned labels as [`LABELS_FILE`] beside the masks (line `i` names
/// pixel value `i`), when it has labels; written whole, as the masks are.
pub(super) fn publish_labels(spec: &JobSpec) -> Result<(), TaskFailure> {
    let Some(labels) = spec.scoring.as_ref().and_then(|s| s.labels.as_ref()) else {
        return Ok(());
    };
    let handle = tokio::runtime::Handle::current();
    Outputs::open(&spec.output)?.publish(LABELS_FILE, labels.text.clone().into_bytes(), &handle)
}
