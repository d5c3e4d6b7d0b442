//! The dataset trigger: images that arrive under a watched prefix are collected, and every
//! `--dataset-interval` or `--dataset-count` images, whichever comes first, they become one
//! dataset job of exactly those images.
//!
//! ```text
//! listing (every --watch-interval; unchanged since the previous one) ─┐
//! storage event (POST /v1/events/...; complete when sent)            ─┴─> an image, not hidden,
//!   not an output -> collected in the queue's database (TriggerBatches), once per key and ETag
//! every second: a batch due (count reached, or its oldest image waited the interval)
//!   -> cut (each image into one batch) -> manifest OUTPUT/batch-N.manifest
//!   -> dataset job (idempotency key per batch) -> records OUTPUT/batch-N.jsonl|.parquet
//! ```
//!
//! Exactly once, across restarts and with several servers: an image is recorded once per
//! trigger and a cut takes only images that no batch holds, in one transaction; the batch is
//! cut before its job is submitted, held under a lease while the job is made, and its job
//! carries an idempotency key of the batch, so a server that dies after the cut leaves a batch
//! that the next claim makes a job of, and one that dies after the submission leaves a job that
//! the next claim finds. Nothing waiting is held in memory: the listing's state is one entry per
//! image under the prefix, and a flood waits in the database, `--dataset-count` a job.
//!
//! The manifest lists each image by its absolute path or object URL, one a line, and is written
//! beside the job's records, where every worker that writes the records reaches it; the job's
//! plan pins what it lists (size and ETag), as any dataset job's.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fresco_queue::{BatchLease, BatchOutcome, CollectedObject, Queue, Submitted};
use fresco_store::Store;
use futures_util::StreamExt;

use crate::api::SubmitRequest;
use crate::factory::{JobFactory, Rejection};
use crate::watch::Place;

/// The longest `--dataset-interval`: a week.
pub const MAX_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The longest key taken (object stores allow 1024 bytes; a longer local path is refused too).
pub const MAX_KEY_BYTES: usize = 1024;

/// How long a server holds a batch while it makes its job: past it, another server takes over.
const BATCH_LEASE: Duration = Duration::from_secs(120);

/// How often due batches are looked for.
const CUT_EVERY: Duration = Duration::from_secs(1);

/// Images recorded in the queue per transaction, from one listing.
const COLLECT_BATCH: usize = 500;

/// The most batches one look cuts, so that a flood is made into jobs over several looks.
const CUTS_PER_LOOK: usize = 16;

/// The records format of the trigger's jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordsFormat {
    Jsonl,
    Parquet,
}

impl RecordsFormat {
    pub fn extension(self) -> &'static str {
        match self {
            RecordsFormat::Jsonl => "jsonl",
            RecordsFormat::Parquet => "parquet",
        }
    }
}

/// What to watch and what each batch becomes.
#[derive(Debug, Clone)]
pub struct DatasetWatchConfig {
    /// A local folder (path or `file://` URL) or an object-store prefix (`az://`, `s3://`).
    pub watch: String,
    /// The folder or prefix the records and manifests go to.
    pub output: String,
    /// The scoring model file (absolute), and its task when its card does not say.
    pub model: String,
    pub task: Option<String>,
    pub format: RecordsFormat,
    /// A batch is cut this long after its oldest image was collected...
    pub interval: Duration,
    /// ...or once this many images wait, whichever comes first; a job holds at most this many.
    pub count: u64,
    /// How often the watched location is listed.
    pub poll: Duration,
    /// Each job fails when more of its items than this cannot be scored (`None`: the
    /// fraction alone decides)...
    pub max_failed_items: Option<u64>,
    /// ...or more than this share of them (`None`: the default of every dataset job, 0.01).
    pub max_failed_fraction: Option<f64>,
}

/// Why a dataset trigger cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DatasetWatchError {
    #[error("--dataset-watch {0}: {1}")]
    Store(String, Box<fresco_store::StoreError>),
    #[error("--dataset-output {0}: {1}")]
    OutputStore(String, Box<fresco_store::StoreError>),
    #[error("{0}: cannot create the folder: {1}")]
    Folder(String, std::io::Error),
    #[error("--dataset-output {output} is the watched location {watch}: choose another folder or prefix")]
    SameFolder { watch: String, output: String },
    #[error("--dataset-interval {0} s: give 1 s to {max} s (a week)", max = MAX_INTERVAL.as_secs())]
    Interval(u64),
    #[error("--dataset-count {0}: give 1 to {max} images a job", max = fresco_queue::MAX_BATCH_OBJECTS)]
    Count(u64),
    #[error("--dataset-task {0}: give classify, detect or tensors")]
    Task(String),
    #[error("--dataset-max-failed-fraction {0}: give a share from 0 to 1")]
    FailedFraction(f64),
}

impl DatasetWatchConfig {
    /// The bounds of the interval, the count and the task.
    pub fn check(&self) -> Result<(), DatasetWatchError> {
        if self.interval < Duration::from_secs(1) || self.interval > MAX_INTERVAL {
            return Err(DatasetWatchError::Interval(self.interval.as_secs()));
        }
        if !(1..=fresco_queue::MAX_BATCH_OBJECTS).contains(&self.count) {
            return Err(DatasetWatchError::Count(self.count));
        }
        if let Some(task) = &self.task {
            if !["classify", "detect", "tensors"].contains(&task.as_str()) {
                return Err(DatasetWatchError::Task(task.clone()));
            }
        }
        if let Some(fraction) = self.max_failed_fraction {
            if !(0.0..=1.0).contains(&fraction) {
                return Err(DatasetWatchError::FailedFraction(fraction));
            }
        }
        Ok(())
    }
}

/// Why an object offered to the trigger is not collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotTaken {
    /// Not an image by its extension, or hidden, or an output: left to other triggers.
    NotOurs,
    /// An image of ours that cannot be listed in a manifest (its name), with the reason.
    BadName(String),
}

/// The trigger, shared by its listing loop and the event routes.
pub struct DatasetWatch {
    config: DatasetWatchConfig,
    /// The watched location; its key names the trigger in the queue.
    root: Place,
    output_root: Place,
    /// The watched location's store and the output location's.
    store: Store,
    output_store: Store,
    /// The output location's prefix when it lies inside the watched location.
    skip_prefix: Option<String>,
    queue: Arc<dyn Queue>,
    jobs: Arc<dyn JobFactory>,
}

/// What the listing loop remembers of each image under the prefix: its fingerprint at the last
/// listing, and whether it was recorded in the queue since.
#[derive(Debug, Default)]
pub struct Listing {
    seen: HashMap<String, Seen>,
    /// Entries the store could not name (warned of once, while they are there).
    bad_names: HashSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    fingerprint: (Option<String>, u64),
    recorded: bool,
}

impl DatasetWatch {
    pub fn new(
        config: DatasetWatchConfig,
        queue: Arc<dyn Queue>,
        jobs: Arc<dyn JobFactory>,
    ) -> Result<DatasetWatch, DatasetWatchError> {
        config.check()?;
        let root = Place::parse(&config.watch)
            .map_err(|e| DatasetWatchError::Store(config.watch.clone(), Box::new(e)))?;
        let output_root = Place::parse(&config.output)
            .map_err(|e| DatasetWatchError::OutputStore(config.output.clone(), Box::new(e)))?;
        if let Place::Folder(dir) = &output_root {
            std::fs::create_dir_all(dir)
                .map_err(|e| DatasetWatchError::Folder(config.output.clone(), e))?;
        }
        let store = Store::from_url(&root.url())
            .map_err(|e| DatasetWatchError::Store(config.watch.clone(), Box::new(e)))?;
        let output_store = Store::from_url(&output_root.url())
            .map_err(|e| DatasetWatchError::OutputStore(config.output.clone(), Box::new(e)))?;
        let (root, output_root) = (root.canonical(), output_root.canonical());
        if root == output_root {
            return Err(DatasetWatchError::SameFolder {
                watch: config.watch.clone(),
                output: config.output.clone(),
            });
        }
        let skip_prefix = output_root.inside(&root);
        Ok(DatasetWatch {
            config,
            store,
            output_store,
            root,
            output_root,
            skip_prefix,
            queue,
            jobs,
        })
    }

    /// The trigger's name in the queue: its watched location.
    pub fn trigger(&self) -> String {
        self.root.key()
    }

    /// Lists, collects and cuts until `stop` completes.
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        tracing::info!(
            "collecting images under {} into dataset jobs of at most {} every {} s; records go to {}",
            self.root.url(),
            self.config.count,
            self.config.interval.as_secs(),
            self.output_root.url()
        );
        tokio::pin!(stop);
        let mut listing = Listing::default();
        let mut next_poll = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_poll {
                if let Err(e) = self.poll(&mut listing).await {
                    tracing::warn!("dataset watch {}: {e}", self.config.watch);
                }
                next_poll = tokio::time::Instant::now() + self.config.poll;
            }
            if let Err(e) = self.cut_due().await {
                tracing::warn!("dataset watch {}: {e}", self.config.watch);
            }
            tokio::select! {
                _ = tokio::time::sleep(CUT_EVERY) => {}
                _ = &mut stop => return,
            }
        }
    }

    /// One listing: records the images that did not change since the previous one. Returns
    /// how many were new to the queue.
    pub async fn poll(&self, listing: &mut Listing) -> Result<u64, fresco_store::StoreError> {
        let (found, bad_names) = self.list().await?;
        for (name, reason) in &bad_names {
            if !listing.bad_names.contains(name) {
                tracing::warn!("dataset watch: {name:?} is not collected: {reason}");
            }
        }
        listing.bad_names = bad_names.into_keys().collect();
        let mut current = HashMap::with_capacity(found.len());
        let mut ready = Vec::new();
        let mut added = 0;
        for object in found {
            let fingerprint = (object.etag.clone(), object.size);
            let before = listing.seen.get(&object.key);
            let stable = before.is_some_and(|seen| seen.fingerprint == fingerprint);
            let recorded = stable && before.is_some_and(|seen| seen.recorded);
            // New, still being written or changed: looked at again next time. Empty: an upload
            // that has not begun (an empty image is an error row; one would wait forever).
            if stable && !recorded && object.size > 0 {
                ready.push(CollectedObject {
                    version: version_of(object.etag.as_deref(), object.size),
                    key: object.key.clone(),
                });
            }
            current.insert(
                object.key,
                Seen {
                    fingerprint,
                    recorded: recorded || (stable && object.size > 0),
                },
            );
            if ready.len() >= COLLECT_BATCH {
                added += self.record(&mut ready, &mut current).await;
            }
        }
        added += self.record(&mut ready, &mut current).await;
        listing.seen = current;
        Ok(added)
    }

    /// The images under the watched location that the trigger takes, and the names it refuses
    /// (with why). A folder is walked here, in name order: a store's listing of a folder stops
    /// at the first file whose name is no key (a line break in it), hiding those after it.
    async fn list(
        &self,
    ) -> Result<(Vec<Found>, HashMap<String, String>), fresco_store::StoreError> {
        let mut found = Vec::new();
        let mut bad = HashMap::new();
        let mut sort = |key: String, etag: Option<String>, size: u64| match self.takes(&key) {
            Ok(()) => found.push(Found { key, etag, size }),
            Err(NotTaken::BadName(reason)) => {
                bad.insert(key, reason);
            }
            Err(NotTaken::NotOurs) => {}
        };
        match &self.root {
            Place::Folder(dir) => {
                let dir = dir.clone();
                let walked = tokio::task::spawn_blocking(move || walk(&dir))
                    .await
                    .map_err(|e| fresco_store::StoreError::Open {
                        url: self.root.url(),
                        reason: format!("the folder walk stopped: {e}"),
                    })?;
                for (key, etag, size) in walked {
                    sort(key, etag, size);
                }
            }
            Place::Prefix(_) => {
                let mut objects = self.store.list_stream("")?;
                while let Some(object) = objects.next().await {
                    let object = object?;
                    sort(object.key, object.etag, object.size);
                }
            }
        }
        Ok((found, bad))
    }

    /// Records `ready` in the queue; on failure, marks them unrecorded to try at the next
    /// listing.
    async fn record(
        &self,
        ready: &mut Vec<CollectedObject>,
        current: &mut HashMap<String, Seen>,
    ) -> u64 {
        if ready.is_empty() {
            return 0;
        }
        let taken = std::mem::take(ready);
        match self.queue.collect_objects(&self.trigger(), &taken).await {
            Ok(added) => added,
            Err(e) => {
                tracing::warn!(
                    "dataset watch: cannot record {} images, trying again: {e}",
                    taken.len()
                );
                for object in &taken {
                    if let Some(seen) = current.get_mut(&object.key) {
                        seen.recorded = false;
                    }
                }
                0
            }
        }
    }

    /// An object a storage event announced (complete, as events are sent once an upload is):
    /// `None` when it is not this trigger's (not under the watched prefix, or not an image, or
    /// an output), else whether it was new to the queue, or why it was refused.
    pub async fn collect_event(&self, url: &str, etag: &str) -> Option<Result<bool, String>> {
        let Place::Prefix(root) = &self.root else {
            return None; // a local folder has no storage events
        };
        let key = url.strip_prefix(root.as_str())?.strip_prefix('/')?;
        match self.takes(key) {
            Ok(()) => {}
            Err(NotTaken::NotOurs) => return None,
            Err(NotTaken::BadName(reason)) => return Some(Err(reason)),
        }
        let object = CollectedObject {
            key: key.to_string(),
            version: version_of(Some(etag), 0),
        };
        Some(
            match self.queue.collect_objects(&self.trigger(), &[object]).await {
                Ok(added) => Ok(added == 1),
                Err(e) => {
                    tracing::warn!("dataset watch: event for {url}: {e}");
                    Err("the job queue is unavailable; deliver the event again".into())
                }
            },
        )
    }

    /// Whether the trigger collects the object at `key`.
    fn takes(&self, key: &str) -> Result<(), NotTaken> {
        if key.split('/').any(|segment| segment.starts_with('.')) {
            return Err(NotTaken::NotOurs); // hidden: temporary names of uploads
        }
        if let Some(skip) = &self.skip_prefix {
            if key.starts_with(skip.as_str()) {
                return Err(NotTaken::NotOurs);
            }
        }
        if !fresco_pipeline::image::is_image_path(Path::new(key)) {
            return Err(NotTaken::NotOurs);
        }
        // A manifest holds one name a line: a name with a line break (or any control
        // character) could list another file; an over-long one no store holds.
        if key.chars().any(char::is_control) {
            return Err(NotTaken::BadName(
                "its name holds a control character (a line break, a tab...), which a manifest cannot list".into(),
            ));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(NotTaken::BadName(format!(
                "its name is longer than {MAX_KEY_BYTES} bytes"
            )));
        }
        Ok(())
    }

    /// Makes jobs of the batches that are due, and of those whose server stopped before it
    /// made theirs. Returns the ids of the jobs made or found.
    pub async fn cut_due(&self) -> Result<Vec<String>, fresco_queue::QueueError> {
        let trigger = self.trigger();
        let mut jobs = Vec::new();
        for _ in 0..CUTS_PER_LOOK {
            let open = self.queue.claim_open_batch(&trigger, BATCH_LEASE).await?;
            let batch = match open {
                Some(batch) => batch,
                None => {
                    let interval =
                        i64::try_from(self.config.interval.as_millis()).unwrap_or(i64::MAX);
                    let due_ms = fresco_queue::now_ms().saturating_sub(interval);
                    match self
                        .queue
                        .cut_batch(&trigger, self.config.count, due_ms, BATCH_LEASE)
                        .await?
                    {
                        Some(batch) => batch,
                        None => break,
                    }
                }
            };
            if let Some(job) = self.make_job(&batch).await {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }

    /// Where batch `id`'s records and manifest go: `OUTPUT/batch-000042.jsonl` and
    /// `OUTPUT/batch-000042.manifest`.
    pub fn outputs_for(&self, id: i64) -> (String, String) {
        let name = format!("batch-{id:06}");
        (
            self.output_root
                .join(&format!("{name}.{}", self.config.format.extension())),
            self.output_root.join(&format!("{name}.manifest")),
        )
    }

    /// Makes (or finds) the job of a held batch and records it. `None` when it must wait (the
    /// queue or a store is away: the lease runs out and the batch is claimed again).
    async fn make_job(&self, batch: &BatchLease) -> Option<String> {
        let key = format!("dataset-watch:{}:{}", batch.trigger, batch.id);
        let outcome = match self.queue.job_by_idempotency_key(&key).await {
            Ok(Some(earlier)) => BatchOutcome::Job(earlier.id),
            Ok(None) => match self.submit(batch, key).await {
                Ok(outcome) => outcome,
                Err(why) => {
                    tracing::warn!(
                        "dataset watch: batch {}: {why}; trying again later",
                        batch.id
                    );
                    return None;
                }
            },
            Err(e) => {
                tracing::warn!("dataset watch: batch {}: {e}; trying again later", batch.id);
                return None;
            }
        };
        if let Err(e) = self.queue.finish_batch(batch, &outcome).await {
            // The job is made; the batch's next holder finds it by its key.
            tracing::warn!("dataset watch: batch {}: {e}", batch.id);
        }
        match outcome {
            BatchOutcome::Job(id) => Some(id),
            BatchOutcome::Refused(why) => {
                tracing::warn!(
                    "dataset watch: batch {} ({} images) is not made a job: {why}",
                    batch.id,
                    batch.objects
                );
                None
            }
        }
    }

    /// Writes the batch's manifest and submits its job with idempotency key `key`.
    async fn submit(&self, batch: &BatchLease, key: String) -> Result<BatchOutcome, String> {
        let objects = self
            .queue
            .batch_objects(batch.id)
            .await
            .map_err(|e| e.to_string())?;
        let (output, manifest) = self.outputs_for(batch.id);
        let mut text = String::new();
        for object in &objects {
            text.push_str(&self.root.join(&object.key));
            text.push('\n');
        }
        self.write_manifest(batch.id, text).await?;
        let mut scoring = serde_json::Map::new();
        if let Some(task) = &self.config.task {
            scoring.insert("task".into(), task.clone().into());
        }
        let mut dataset = serde_json::Map::new();
        if let Some(items) = self.config.max_failed_items {
            dataset.insert("max_failed_items".into(), items.into());
        }
        if let Some(fraction) = self.config.max_failed_fraction {
            dataset.insert("max_failed_fraction".into(), fraction.into());
        }
        let request: SubmitRequest = serde_json::from_value(serde_json::json!({
            "input": manifest,
            "output": output,
            "model": self.config.model,
            "scoring": scoring,
            "dataset": dataset,
        }))
        .map_err(|e| format!("cannot make a job of it: {e}"))?;
        let mut job = match self.jobs.build_manifest(&request).await {
            Ok(job) => job,
            Err(Rejection::Unusable { message, .. } | Rejection::BadField { message, .. }) => {
                return Ok(BatchOutcome::Refused(message))
            }
            Err(other) => return Err(other.to_string()),
        };
        job.idempotency_key = Some(key);
        match self.queue.submit(job).await {
            Ok(Submitted::New(id)) => {
                tracing::info!(
                    "dataset watch: batch {} ({} images) became job {id} -> {output}",
                    batch.id,
                    objects.len()
                );
                Ok(BatchOutcome::Job(id))
            }
            Ok(Submitted::Existing(id)) => Ok(BatchOutcome::Job(id)),
            Err(e) => Err(format!("could not queue it: {e}")),
        }
    }

    /// Writes a batch's manifest, whole or not at all (a half-written one is never read: a
    /// folder's file is renamed into place, an object store publishes a put whole). Written
    /// again by a later holder of the batch, with the same lines.
    async fn write_manifest(&self, id: i64, text: String) -> Result<(), String> {
        let name = format!("batch-{id:06}.manifest");
        match &self.output_root {
            Place::Folder(dir) => {
                let (dir, name) = (dir.clone(), name);
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    let temp = dir.join(format!(".{name}.{}", uuid::Uuid::new_v4()));
                    std::fs::write(&temp, text)?;
                    std::fs::rename(&temp, dir.join(&name)).inspect_err(|_| {
                        let _ = std::fs::remove_file(&temp);
                    })
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| {
                    format!(
                        "{}: cannot write the manifest: {e}",
                        self.output_root.join(&format!("batch-{id:06}.manifest"))
                    )
                })
            }
            Place::Prefix(_) => self
                .output_store
                .put_bytes(&name, text.into())
                .await
                .map(|_| ())
                .map_err(|e| format!("cannot write the manifest: {e}")),
        }
    }
}

/// One image as listed.
struct Found {
    key: String,
    etag: Option<String>,
    size: u64,
}

/// Every regular file below `dir` as (key, version, size), in name order; links are not
/// followed, entries that cannot be read or named in UTF-8 are skipped (logged).
fn walk(dir: &Path) -> Vec<(String, Option<String>, u64)> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                tracing::debug!(
                    "dataset watch: skipped while walking {}: {e}",
                    dir.display()
                );
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(dir) else {
            continue;
        };
        let parts: Option<Vec<&str>> = relative.iter().map(|p| p.to_str()).collect();
        let Some(parts) = parts else {
            tracing::warn!(
                "dataset watch: {:?} is not collected: its name is not UTF-8",
                entry.path()
            );
            continue;
        };
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| format!("mtime:{}", d.as_nanos()));
        files.push((parts.join("/"), modified, meta.len()));
    }
    files
}

/// What tells a rewritten object apart: its ETag without quotes (listings and events differ in
/// quoting), else its size.
fn version_of(etag: Option<&str>, size: u64) -> String {
    match etag {
        Some(tag) => tag.trim_start_matches("W/").trim_matches('"').to_string(),
        None => size.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_ignore_quotes() {
        assert_eq!(version_of(Some("\"0x8D1\""), 3), "0x8D1");
        assert_eq!(version_of(Some("W/\"abc\""), 3), "abc");
        assert_eq!(version_of(None, 3), "3");
    }
}
