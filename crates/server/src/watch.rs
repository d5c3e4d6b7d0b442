//! The watch trigger: every new video object under a watched prefix becomes exactly one job.
//!
//! ```text
//! list the prefix every interval -> a video (by extension), not hidden, not an output
//!   -> unchanged (same ETag and size) since the previous listing: its upload is complete
//!   -> submit with idempotency key "watch:PREFIX:KEY:ETAG"
//! ```
//!
//! Exactly once, across restarts and with several servers watching: the key is recorded with
//! the job in the queue's database, and a second submission with it returns the first job. An
//! object still being written changes between listings and waits for the next one. Outputs go
//! to another prefix, with a predictable name (`KEY-STEM.STYLE.EXT`), and a prefix inside the
//! watched one is skipped, so a job's output never triggers a job.
//!
//! Inputs must be local folders for now: workers read and write local paths (reading object
//! stores directly is the next step of the object-store work).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fresco_queue::{Queue, Submitted};
use fresco_store::{ObjectInfo, Store};

use crate::api::SubmitRequest;
use crate::factory::{JobFactory, Rejection};

/// File extensions taken for videos.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "ts", "mts", "m2ts", "mxf", "mpg", "mpeg", "flv",
    "wmv", "3gp", "ogv",
];

/// What to watch and what each new video becomes.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// A local folder (path or `file://` URL).
    pub watch: String,
    /// The folder outputs go to.
    pub output: String,
    /// A named style, or a model file (exactly one).
    pub style: Option<String>,
    pub model: Option<String>,
    /// How often the prefix is listed.
    pub interval: Duration,
}

/// Why a watch cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("--watch {0}: {1}")]
    Store(String, Box<fresco_store::StoreError>),
    #[error("{0}: cannot create the folder: {1}")]
    Folder(String, std::io::Error),
    #[error("--watch {0}: only local folders can be watched for now (workers do not read object stores yet)")]
    NotLocal(String),
    #[error("--output {output} is the watched folder {watch}: every output would trigger a job; choose another folder")]
    SameFolder { watch: String, output: String },
    #[error("--watch needs a style or a model for the jobs it makes")]
    NoModel,
}

/// A running watcher's state: what each object looked like at the last listing, and what was
/// already submitted or refused by this process.
pub struct Watcher {
    config: WatchConfig,
    store: Store,
    root: PathBuf,
    output_root: PathBuf,
    /// The output folder's prefix when it lies inside the watched folder.
    skip_prefix: Option<String>,
    queue: Arc<dyn Queue>,
    jobs: Arc<dyn JobFactory>,
    last_seen: HashMap<String, (Option<String>, u64)>,
    done: HashSet<(String, String)>,
}

impl Watcher {
    pub fn new(
        config: WatchConfig,
        queue: Arc<dyn Queue>,
        jobs: Arc<dyn JobFactory>,
    ) -> Result<Watcher, WatchError> {
        if config.style.is_none() && config.model.is_none() {
            return Err(WatchError::NoModel);
        }
        let root = local_root(&config.watch)?;
        let output_root = local_root(&config.output)?;
        std::fs::create_dir_all(&output_root)
            .map_err(|e| WatchError::Folder(config.output.clone(), e))?;
        let store = Store::from_url(&root.display().to_string())
            .map_err(|e| WatchError::Store(config.watch.clone(), Box::new(e)))?;
        let (root, output_root) = (canonical(&root), canonical(&output_root));
        if root == output_root {
            return Err(WatchError::SameFolder {
                watch: config.watch.clone(),
                output: config.output.clone(),
            });
        }
        let skip_prefix = output_root
            .strip_prefix(&root)
            .ok()
            .map(|p| format!("{}/", p.display()));
        Ok(Watcher {
            config,
            store,
            root,
            output_root,
            skip_prefix,
            queue,
            jobs,
            last_seen: HashMap::new(),
            done: HashSet::new(),
        })
    }

    /// Lists and submits until `stop` completes.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        tracing::info!(
            "watching {} for videos; outputs go to {}",
            self.root.display(),
            self.output_root.display()
        );
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.poll().await {
                tracing::warn!("watch {}: {e}", self.config.watch);
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.interval) => {}
                _ = &mut stop => return,
            }
        }
    }

    /// One listing: submits the videos that did not change since the previous one. Returns
    /// the ids of the jobs it submitted or found.
    pub async fn poll(&mut self) -> Result<Vec<String>, fresco_store::StoreError> {
        let objects = self.store.list("").await?;
        let mut current = HashMap::new();
        let mut jobs = Vec::new();
        for object in objects {
            if !self.is_candidate(&object.key) {
                continue;
            }
            let fingerprint = (object.etag.clone(), object.size);
            let stable = self.last_seen.get(&object.key) == Some(&fingerprint);
            current.insert(object.key.clone(), fingerprint);
            if !stable || object.size == 0 {
                continue; // new, still being written, or changed: look again next time
            }
            let etag = object
                .etag
                .clone()
                .unwrap_or_else(|| object.size.to_string());
            if self.done.contains(&(object.key.clone(), etag.clone())) {
                continue;
            }
            match self.submit(&object, &etag).await {
                Outcome::Job(id) => {
                    jobs.push(id);
                    self.done.insert((object.key.clone(), etag));
                }
                Outcome::Refused => {
                    self.done.insert((object.key.clone(), etag));
                }
                Outcome::Later => {}
            }
        }
        self.last_seen = current;
        Ok(jobs)
    }

    fn is_candidate(&self, key: &str) -> bool {
        if key.split('/').any(|segment| segment.starts_with('.')) {
            return false; // hidden files: temporary names of uploads and of our own outputs
        }
        if let Some(skip) = &self.skip_prefix {
            if key.starts_with(skip.as_str()) {
                return false;
            }
        }
        Path::new(key)
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
    }

    /// Where the output of `key` goes: the same sub-folders, `STEM.STYLE.EXT`.
    pub fn output_for(&self, key: &str) -> PathBuf {
        let path = Path::new(key);
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("video");
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("mp4");
        let tag = match (&self.config.style, &self.config.model) {
            (Some(style), _) => style.clone(),
            (None, Some(model)) => Path::new(model)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("styled")
                .to_string(),
            (None, None) => "styled".into(),
        };
        let name = format!("{stem}.{tag}.{ext}");
        match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) => self.output_root.join(dir).join(name),
            None => self.output_root.join(name),
        }
    }

    async fn submit(&self, object: &ObjectInfo, etag: &str) -> Outcome {
        let input = self.root.join(&object.key);
        let output = self.output_for(&object.key);
        if let Some(dir) = output.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let idempotency_key = format!("watch:{}:{}:{etag}", self.root.display(), object.key);
        if let Ok(Some(earlier)) = self.queue.job_by_idempotency_key(&idempotency_key).await {
            return Outcome::Job(earlier.id); // seen before this process started, or by another server
        }
        let request: SubmitRequest = match serde_json::from_value(serde_json::json!({
            "input": input,
            "output": output,
            "style": self.config.style,
            "model": self.config.model,
        })) {
            Ok(request) => request,
            Err(e) => {
                tracing::warn!("watch: {}: {e}", object.key);
                return Outcome::Refused;
            }
        };
        let mut job = match self.jobs.build(&request).await {
            Ok(job) => job,
            Err(Rejection::Unusable { message, .. } | Rejection::BadField { message, .. }) => {
                tracing::warn!("watch: {} is not made a job: {message}", object.key);
                return Outcome::Refused;
            }
            Err(other) => {
                tracing::warn!("watch: {}: {other}; trying again later", object.key);
                return Outcome::Later;
            }
        };
        job.idempotency_key = Some(idempotency_key);
        match self.queue.submit(job).await {
            Ok(Submitted::New(id)) => {
                tracing::info!(
                    "watch: {} became job {id} -> {}",
                    object.key,
                    output.display()
                );
                Outcome::Job(id)
            }
            Ok(Submitted::Existing(id)) => Outcome::Job(id),
            Err(e) => {
                tracing::warn!(
                    "watch: {}: could not queue it, trying again later: {e}",
                    object.key
                );
                Outcome::Later
            }
        }
    }
}

/// What became of one object.
enum Outcome {
    /// Its job (new, or made earlier).
    Job(String),
    /// Not a usable video, or a bad name: not tried again by this process.
    Refused,
    /// The queue or a dependency is away: try at the next listing.
    Later,
}

fn local_root(location: &str) -> Result<PathBuf, WatchError> {
    if let Some(path) = location.strip_prefix("file://") {
        return Ok(PathBuf::from(path));
    }
    if location.contains("://") {
        return Err(WatchError::NotLocal(location.to_string()));
    }
    let path = PathBuf::from(location);
    Ok(if path.is_absolute() {
        path
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    })
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}
