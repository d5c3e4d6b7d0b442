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
//! The watched location and the output location are each a local folder or an object-store
//! prefix (`az://container/in`, `s3://bucket/in`, `file:///srv/in`); the two may differ in kind.
//! An object input becomes a job whose input is the object's URL: workers download it once per
//! job into their scratch folder (see `fresco_worker`'s remote module). Object stores publish
//! an upload only when it is complete, so an object seen twice with the same ETag is taken; a
//! local file must also stay the same size and ETag (its mtime) across two listings.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fresco_queue::{Queue, Submitted};
use fresco_store::{ObjectInfo, Store};

use crate::api::SubmitRequest;
use crate::factory::{JobFactory, Rejection};

pub use fresco_core::dataset::VIDEO_EXTENSIONS;

/// What to watch and what each new video becomes.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// A local folder (path or `file://` URL) or an object-store prefix (`az://`, `s3://`).
    pub watch: String,
    /// The folder or prefix outputs go to.
    pub output: String,
    /// A named style, or a model file (exactly one).
    pub style: Option<String>,
    pub model: Option<String>,
    /// The jobs are steadied (`"temporal": true` in each job's submission).
    pub temporal: bool,
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
    #[error("--output {0}: {1}")]
    OutputStore(String, Box<fresco_store::StoreError>),
    #[error("--output {output} is the watched location {watch}: every output would trigger a job; choose another folder or prefix")]
    SameFolder { watch: String, output: String },
    #[error("--watch needs a style or a model for the jobs it makes")]
    NoModel,
}

/// A running watcher's state: what each object looked like at the last listing, and what was
/// already submitted or refused by this process.
pub struct Watcher {
    config: WatchConfig,
    store: Store,
    /// The watched location: a folder, or the canonical URL of a prefix.
    root: Place,
    /// Where outputs go.
    output_root: Place,
    /// The output location's prefix when it lies inside the watched location.
    skip_prefix: Option<String>,
    queue: Arc<dyn Queue>,
    jobs: Arc<dyn JobFactory>,
    last_seen: HashMap<String, (Option<String>, u64)>,
    done: HashSet<(String, String)>,
    /// Why entries of a watched folder were skipped at the last listing (warned of once).
    skipped: HashSet<String>,
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
        let root = Place::parse(&config.watch)
            .map_err(|e| WatchError::Store(config.watch.clone(), Box::new(e)))?;
        let output_root = Place::parse(&config.output)
            .map_err(|e| WatchError::OutputStore(config.output.clone(), Box::new(e)))?;
        if let Place::Folder(dir) = &output_root {
            std::fs::create_dir_all(dir)
                .map_err(|e| WatchError::Folder(config.output.clone(), e))?;
        }
        let store = Store::from_url(&root.url())
            .map_err(|e| WatchError::Store(config.watch.clone(), Box::new(e)))?;
        let (root, output_root) = (root.canonical(), output_root.canonical());
        if root == output_root {
            return Err(WatchError::SameFolder {
                watch: config.watch.clone(),
                output: config.output.clone(),
            });
        }
        let skip_prefix = output_root.inside(&root);
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
            skipped: HashSet::new(),
        })
    }

    /// Lists and submits until `stop` completes.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        tracing::info!(
            "watching {} for videos; outputs go to {}",
            self.root.url(),
            self.output_root.url()
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
        let objects = self.list().await?;
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

    /// The objects under the watched location, in key order. In a folder, an entry the
    /// listing cannot name (a file name with a line break, which no key may hold) is skipped
    /// with a warning and the listing goes on: before, it failed the whole listing, so that one
    /// such file stopped every video beside it. A prefix's listing error fails the listing.
    /// Each skipped entry is warned of once while it is there.
    async fn list(&mut self) -> Result<Vec<ObjectInfo>, fresco_store::StoreError> {
        use futures_util::StreamExt;
        let mut objects = Vec::new();
        let mut skipped = HashSet::new();
        {
            let mut stream = self.store.list_stream("")?;
            while let Some(object) = stream.next().await {
                match object {
                    Ok(object) => objects.push(object),
                    Err(e) if matches!(self.root, Place::Folder(_)) => {
                        skipped.insert(e.to_string());
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        for why in skipped.difference(&self.skipped) {
            tracing::warn!("watch {}: an entry is skipped: {why}", self.config.watch);
        }
        self.skipped = skipped;
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
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

    /// Where the output of `key` goes: the same sub-folders, `STEM.STYLE.EXT`, as a path or a
    /// URL.
    pub fn output_for(&self, key: &str) -> String {
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
            Some(dir) => self.output_root.join(&format!("{}/{name}", dir.display())),
            None => self.output_root.join(&name),
        }
    }

    async fn submit(&self, object: &ObjectInfo, etag: &str) -> Outcome {
        let input = self.root.join(&object.key);
        let output = self.output_for(&object.key);
        if let Place::Folder(_) = self.output_root {
            if let Some(dir) = Path::new(&output).parent() {
                let _ = std::fs::create_dir_all(dir);
            }
        }
        let idempotency_key = format!("watch:{}:{}:{etag}", self.root.key(), object.key);
        if let Ok(Some(earlier)) = self.queue.job_by_idempotency_key(&idempotency_key).await {
            return Outcome::Job(earlier.id); // seen before this process started, or by another server
        }
        let request: SubmitRequest = match serde_json::from_value(serde_json::json!({
            "input": input,
            "output": output,
            "style": self.config.style,
            "model": self.config.model,
            "temporal": self.config.temporal,
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
                tracing::info!("watch: {} became job {id} -> {output}", object.key);
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

/// A watched or output location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place {
    /// A local folder, absolute.
    Folder(PathBuf),
    /// An object-store prefix in canonical URL form, without a trailing `/`.
    Prefix(String),
}

impl Place {
    pub(crate) fn parse(location: &str) -> Result<Place, fresco_store::StoreError> {
        if let Some(path) = location.strip_prefix("file://") {
            return Ok(Place::Folder(PathBuf::from(path)));
        }
        if location.contains("://") {
            // Checks the URL (scheme, container) without touching the network.
            let store = Store::from_url(location)?;
            return Ok(Place::Prefix(
                store.display_url().trim_end_matches('/').to_string(),
            ));
        }
        let path = PathBuf::from(location);
        Ok(Place::Folder(if path.is_absolute() {
            path
        } else {
            std::env::current_dir().unwrap_or_default().join(path)
        }))
    }

    /// Resolves symbolic links of a folder, so that two spellings compare equal.
    pub(crate) fn canonical(self) -> Place {
        match self {
            Place::Folder(path) => Place::Folder(path.canonicalize().unwrap_or(path)),
            prefix => prefix,
        }
    }

    /// What a store opens.
    pub(crate) fn url(&self) -> String {
        match self {
            Place::Folder(path) => path.display().to_string(),
            Place::Prefix(url) => url.clone(),
        }
    }

    /// The location's part of an idempotency key (kept as it was for folders).
    pub(crate) fn key(&self) -> String {
        self.url()
    }

    /// The path or URL of `key` under this location.
    pub(crate) fn join(&self, key: &str) -> String {
        match self {
            Place::Folder(path) => path.join(key).display().to_string(),
            Place::Prefix(url) => format!("{url}/{key}"),
        }
    }

    /// This location's key prefix (ending in `/`) relative to `outer`, when it lies inside it.
    pub(crate) fn inside(&self, outer: &Place) -> Option<String> {
        match (self, outer) {
            (Place::Folder(inner), Place::Folder(outer)) => inner
                .strip_prefix(outer)
                .ok()
                .map(|p| format!("{}/", p.display())),
            (Place::Prefix(inner), Place::Prefix(outer)) => inner
                .strip_prefix(outer.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .map(|rest| format!("{rest}/")),
            _ => None,
        }
    }
}
