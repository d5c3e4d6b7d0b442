//! A dataset's items, listed and read.
//!
//! [`list`] streams what a dataset's source holds, one item at a time, never the whole listing:
//! a folder is walked in name order one directory at a time (`walkdir`), an object-store prefix
//! is listed page by page, a manifest read line by line (each line looked up for its size and
//! version). [`ItemReader`] reads one pinned item back in a score task and says whether it is
//! still the version that was pinned.
//!
//! A dataset job's plan task pins what [`list`] yields and its score tasks read items with
//! [`ItemReader`]; `fresco estimate` counts a dataset with the same [`list`] and [`KeyFilter`]
//! and reads its sample with the same [`ItemReader`], so an estimate counts what a job would
//! score. Prefixes and manifests are looked up through `tokio::runtime::Handle::current()`: call
//! [`list`] and [`ItemReader::new`] inside a runtime's context (`Runtime::enter`), off its
//! async tasks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use fresco_core::dataset::{DatasetSource, DatasetSpec, ItemErrorKind};
use fresco_pipeline::FailureClass;
use fresco_queue::PinnedItem;
use fresco_store::{ObjectUrl, Store, StoreError};
use futures_util::StreamExt;

use crate::worker::TaskFailure;

/// One item as listed, before it has its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The key relative to the folder or prefix, or the manifest's line as written.
    pub key: String,
    /// Bytes as listed; 0 for a manifest line that could not be looked up.
    pub size: u64,
    /// ETag, version id or modification time; `None` where the source gives none.
    pub version: Option<String>,
}

impl Listed {
    /// The item pinned at `index`, as a job's plan pins it and [`ItemReader::fetch`] takes it.
    pub fn pinned(self, index: u64) -> PinnedItem {
        PinnedItem {
            index,
            key: self.key,
            size: self.size,
            version: self.version,
        }
    }
}

/// Which keys a dataset takes: its include globs, or the image extensions.
pub struct KeyFilter {
    globs: Option<globset::GlobSet>,
}

impl KeyFilter {
    /// The filter of `spec`'s include patterns; a pattern that is not a glob is a bad input.
    pub fn new(spec: &DatasetSpec) -> Result<KeyFilter, TaskFailure> {
        if spec.include.is_empty() {
            return Ok(KeyFilter { globs: None });
        }
        let mut set = globset::GlobSetBuilder::new();
        for pattern in &spec.include {
            // `*.jpg` matches in every folder, as a user who names no folder means.
            let glob = globset::GlobBuilder::new(pattern)
                .literal_separator(false)
                .build()
                .map_err(|e| {
                    TaskFailure::permanent(
                        format!("--include '{pattern}': {e}"),
                        FailureClass::BadInput,
                    )
                })?;
            set.add(glob);
        }
        let globs = set.build().map_err(|e| {
            TaskFailure::permanent(format!("--include: {e}"), FailureClass::BadInput)
        })?;
        Ok(KeyFilter { globs: Some(globs) })
    }

    /// Whether the dataset takes the item at `key`.
    pub fn takes(&self, key: &str) -> bool {
        match &self.globs {
            Some(globs) => globs.is_match(key),
            None => fresco_pipeline::image::is_image_path(Path::new(key)),
        }
    }
}

fn store_failure(e: StoreError) -> TaskFailure {
    TaskFailure::retryable(
        format!("listing the dataset: {e}"),
        FailureClass::Processing,
    )
}

fn missing(what: &Path, e: std::io::Error) -> TaskFailure {
    TaskFailure::permanent(
        format!("{}: cannot read it: {e}", what.display()),
        FailureClass::InputMissing,
    )
}

/// An object's version as pinned and compared: its ETag without the quotes that some listings
/// keep and others drop (Azure's list and get differ), else its version id.
fn object_version(etag: Option<String>, version: Option<String>) -> Option<String> {
    etag.map(|e| e.trim_start_matches("W/").trim_matches('"').to_string())
        .or(version)
}

/// A local file's version: its modification time in milliseconds.
fn file_version(meta: &std::fs::Metadata) -> Option<String> {
    let modified = meta.modified().ok()?;
    let ms = modified
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis();
    Some(format!("mtime:{ms}"))
}

/// The key of `path` below `root`, with `/` between segments whatever the platform.
fn relative_key(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = relative.iter().map(|p| p.to_str()).collect();
    Some(parts?.join("/"))
}

/// The folder a `file://` URL names, `None` for other URLs.
fn local_folder(url: &str) -> Option<PathBuf> {
    url.strip_prefix("file://").map(PathBuf::from)
}

/// Calls `each` with the key and metadata of every file below `root` that `filter` takes, in
/// name order, one directory at a time; counts the files it skips.
fn walk_folder(
    root: &Path,
    filter: &KeyFilter,
    skipped: &mut u64,
    each: &mut dyn FnMut(String, std::fs::Metadata) -> Result<(), TaskFailure>,
) -> Result<(), TaskFailure> {
    let walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name();
    for entry in walk {
        let entry = entry.map_err(|e| {
            let at = e.path().unwrap_or(root).to_path_buf();
            missing(&at, e.into())
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Some(key) = relative_key(root, entry.path()) else {
            *skipped += 1;
            continue;
        };
        if !filter.takes(&key) {
            *skipped += 1;
            continue;
        }
        let meta = entry
            .metadata()
            .map_err(|e| missing(entry.path(), e.into()))?;
        each(key, meta)?;
    }
    Ok(())
}

/// Calls `each` with every item the source holds that `filter` takes, in listing order, and
/// counts those it skips. Stops at the first error `each` returns.
pub fn list(
    spec: &DatasetSpec,
    filter: &KeyFilter,
    skipped: &mut u64,
    each: &mut dyn FnMut(Listed) -> Result<(), TaskFailure>,
) -> Result<(), TaskFailure> {
    match &spec.source {
        DatasetSource::Folder { path } => walk_folder(path, filter, skipped, &mut |key, meta| {
            each(Listed {
                key,
                size: meta.len(),
                version: file_version(&meta),
            })
        }),
        DatasetSource::Prefix { url } if local_folder(url).is_some() => {
            // object_store lists a local folder in the file system's order: walk it in name
            // order instead, and ask the store (which may encrypt) for each object's version.
            let root = local_folder(url).expect("a file:// URL");
            let store = Store::from_url(url).map_err(store_failure)?;
            let handle = tokio::runtime::Handle::current();
            walk_folder(&root, filter, skipped, &mut |key, _| {
                let Some(info) = handle.block_on(store.head(&key)).map_err(store_failure)? else {
                    // Gone since the walk saw it: not part of the listing.
                    return Ok(());
                };
                each(Listed {
                    key,
                    size: info.size,
                    version: object_version(info.etag, info.version),
                })
            })
        }
        DatasetSource::Prefix { url } => {
            let store = Store::from_url(url).map_err(store_failure)?;
            let handle = tokio::runtime::Handle::current();
            let mut stream = store.list_stream("").map_err(store_failure)?;
            while let Some(info) = handle.block_on(stream.next()) {
                let info = info.map_err(store_failure)?;
                if !filter.takes(&info.key) {
                    *skipped += 1;
                    continue;
                }
                each(Listed {
                    key: info.key,
                    size: info.size,
                    version: object_version(info.etag, info.version),
                })?;
            }
            Ok(())
        }
        DatasetSource::Manifest { path } => {
            let reader = ItemReader::new(spec)?;
            let mut take = |line: &str| {
                let key = line.trim();
                if key.is_empty() || key.starts_with('#') {
                    return Ok(());
                }
                // A manifest's line is taken as listed; one that cannot be looked up is pinned
                // as it is (size 0, no version) and becomes its error row when scored.
                let listed = match reader.look_up(key) {
                    Ok(found) => found,
                    Err(_) => Listed {
                        key: key.to_string(),
                        size: 0,
                        version: None,
                    },
                };
                each(listed)
            };
            match ObjectUrl::of(path) {
                Some(url) => {
                    for line in read_object_manifest(path, url)?.lines() {
                        take(line)?;
                    }
                }
                None => {
                    use std::io::BufRead;
                    let file = std::fs::File::open(path).map_err(|e| missing(path, e))?;
                    for line in std::io::BufReader::new(file).lines() {
                        take(&line.map_err(|e| missing(path, e))?)?;
                    }
                }
            }
            Ok(())
        }
    }
}

/// The most a manifest in an object store may hold (it is read whole): 256 MiB, far above the
/// dataset trigger's largest batch (`fresco_queue::MAX_BATCH_OBJECTS` lines of an object URL).
const MAX_OBJECT_MANIFEST_BYTES: u64 = 256 << 20;

/// The text of a manifest kept in an object store (the dataset trigger writes its batches'
/// manifests beside their outputs, where every worker reaches them).
fn read_object_manifest(
    path: &Path,
    url: Result<ObjectUrl, fresco_store::BadObjectUrl>,
) -> Result<String, TaskFailure> {
    let bad = |message: String| TaskFailure::permanent(message, FailureClass::InputMissing);
    let url = url.map_err(|e| bad(e.to_string()))?;
    let store = url.open().map_err(store_failure)?;
    let handle = tokio::runtime::Handle::current();
    let (_, bytes) = handle
        .block_on(store.get_with_info_within(&url.key, MAX_OBJECT_MANIFEST_BYTES))
        .map_err(|e| match e {
            StoreError::NotFound { .. } => bad(format!("{}: no such manifest", path.display())),
            other => store_failure(other),
        })?;
    let bytes = bytes.ok_or_else(|| {
        bad(format!(
            "{}: the manifest is larger than {MAX_OBJECT_MANIFEST_BYTES} bytes",
            path.display()
        ))
    })?;
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        bad(format!(
            "{}: the manifest is not UTF-8 text",
            path.display()
        ))
    })
}

/// Why an item could not be read, as its error row says.
pub type ItemError = (ItemErrorKind, String);

/// Reads a dataset's items back.
pub struct ItemReader {
    source: Resolved,
    /// The job's `--max-item-bytes`.
    max_item_bytes: u64,
}

enum Resolved {
    Folder(PathBuf),
    Prefix(Store),
    /// A manifest's folder (relative lines; none for a manifest in an object store) and the
    /// stores its URLs named so far.
    Manifest {
        dir: Option<PathBuf>,
        stores: Mutex<HashMap<String, Store>>,
    },
}

/// Where one item is.
enum Location {
    File(PathBuf),
    Object(Store, String),
}

fn unreadable(e: impl std::fmt::Display) -> ItemError {
    (ItemErrorKind::Unreadable, e.to_string())
}

impl ItemReader {
    /// A reader of `spec`'s items, applying its `--max-item-bytes`.
    pub fn new(spec: &DatasetSpec) -> Result<ItemReader, TaskFailure> {
        let source = match &spec.source {
            DatasetSource::Folder { path } => Resolved::Folder(path.clone()),
            DatasetSource::Prefix { url } => {
                Resolved::Prefix(Store::from_url(url).map_err(store_failure)?)
            }
            // A manifest in an object store names its items by URL: it has no folder.
            DatasetSource::Manifest { path } => Resolved::Manifest {
                dir: (!fresco_store::is_object_url(path))
                    .then(|| path.parent().unwrap_or(Path::new("/")).to_path_buf()),
                stores: Mutex::new(HashMap::new()),
            },
        };
        Ok(ItemReader {
            source,
            max_item_bytes: spec.max_item_bytes,
        })
    }

    fn locate(&self, key: &str) -> Result<Location, ItemError> {
        match &self.source {
            Resolved::Folder(root) => Ok(Location::File(root.join(key))),
            Resolved::Prefix(store) => Ok(Location::Object(store.clone(), key.to_string())),
            Resolved::Manifest { dir, stores } => match ObjectUrl::of(Path::new(key)) {
                None => match dir {
                    Some(dir) => Ok(Location::File(dir.join(key))),
                    None => Err(unreadable(format!(
                        "{key}: a manifest in an object store names its items by URL"
                    ))),
                },
                Some(url) => {
                    let url = url.map_err(unreadable)?;
                    let mut stores = stores.lock().unwrap_or_else(|e| e.into_inner());
                    let store = match stores.get(&url.store_url) {
                        Some(store) => store.clone(),
                        None => {
                            let store = url.open().map_err(unreadable)?;
                            stores.insert(url.store_url.clone(), store.clone());
                            store
                        }
                    };
                    Ok(Location::Object(store, url.key))
                }
            },
        }
    }

    /// A manifest line's size and version now.
    fn look_up(&self, key: &str) -> Result<Listed, ItemError> {
        let (size, version) = match self.locate(key)? {
            Location::File(path) => {
                let meta = std::fs::symlink_metadata(&path).map_err(unreadable)?;
                (meta.len(), file_version(&meta))
            }
            Location::Object(store, object) => {
                let handle = tokio::runtime::Handle::current();
                let info = handle
                    .block_on(store.head(&object))
                    .map_err(unreadable)?
                    .ok_or_else(|| unreadable(format!("{}: no such object", key)))?;
                (info.size, object_version(info.etag, info.version))
            }
        };
        Ok(Listed {
            key: key.to_string(),
            size,
            version,
        })
    }

    /// The read of an item's bytes, owning what it needs, to run on the tokio runtime (the
    /// prefetcher spawns it): the bytes if the item is still the version pinned and within the
    /// job's item limit. Never reads more than the pinned size (itself within the limit) and
    /// one byte: an item pinned over the limit is not read at all, one that grew is `changed`
    /// and left unread. A file is read on the runtime's blocking threads.
    pub fn fetch(
        &self,
        item: &PinnedItem,
    ) -> impl std::future::Future<Output = Result<Vec<u8>, ItemError>> + Send + 'static {
        let max = self.max_item_bytes;
        let located = if item.size > max {
            Err(too_large(max, item.size))
        } else {
            self.locate(&item.key)
        };
        let item = item.clone();
        async move {
            let bytes = match located? {
                Location::File(path) => {
                    let reading = item.clone();
                    tokio::task::spawn_blocking(move || read_file(&reading, &path, max))
                        .await
                        .map_err(|e| unreadable(format!("the read stopped: {e}")))??
                }
                Location::Object(store, object) => {
                    let (info, bytes) = store
                        .get_with_info_within(&object, item.size)
                        .await
                        .map_err(unreadable)?;
                    same_version(
                        &item,
                        max,
                        info.size,
                        object_version(info.etag, info.version),
                    )?;
                    bytes.map(|b| b.to_vec()).unwrap_or_default()
                }
            };
            if bytes.len() as u64 != item.size {
                return Err(changed(
                    &item,
                    format!("now {} bytes or more, found while reading it", bytes.len()),
                ));
            }
            if bytes.is_empty() {
                return Err((ItemErrorKind::Empty, "the file is empty (0 bytes)".into()));
            }
            Ok(bytes)
        }
    }

    /// The job's `--max-item-bytes`.
    pub fn max_item_bytes(&self) -> u64 {
        self.max_item_bytes
    }
}

/// A local item's bytes (at most its pinned size and one), if it is still a regular file of
/// the version pinned.
fn read_file(item: &PinnedItem, path: &Path, max: u64) -> Result<Vec<u8>, ItemError> {
    // A regular file, as the listing saw it: not a link put in its place since.
    let meta = std::fs::symlink_metadata(path).map_err(unreadable)?;
    if !meta.is_file() {
        return Err(unreadable(format!("{}: not a regular file", item.key)));
    }
    same_version(item, max, meta.len(), file_version(&meta))?;
    read_at_most(path, item.size)
}

fn too_large(max: u64, size: u64) -> ItemError {
    (
        ItemErrorKind::TooLarge,
        format!("{size} bytes, more than the job's --max-item-bytes {max}: not read"),
    )
}

/// Whether the item as found now (`size`, `version`) is the one pinned: a rewrite past the
/// item limit `max` is `too-large`, any other a `changed`.
fn same_version(
    item: &PinnedItem,
    max: u64,
    size: u64,
    version: Option<String>,
) -> Result<(), ItemError> {
    if size == item.size && version == item.version {
        return Ok(());
    }
    if size > max {
        return Err(too_large(max, size));
    }
    Err(changed(
        item,
        format!(
            "now {size} bytes, version {}",
            version.as_deref().unwrap_or("none")
        ),
    ))
}

fn changed(item: &PinnedItem, now: String) -> ItemError {
    (
        ItemErrorKind::Changed,
        format!(
            "changed since the job listed it ({} bytes, version {}; {now})",
            item.size,
            item.version.as_deref().unwrap_or("none"),
        ),
    )
}

/// The first `size` bytes of the file at `path` and one more, if it has them: a file that grew
/// since it was looked at is not read whole.
fn read_at_most(path: &Path, size: u64) -> Result<Vec<u8>, ItemError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(size + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &Path, include: &[&str]) -> DatasetSpec {
        DatasetSpec {
            source: DatasetSource::Folder {
                path: path.to_path_buf(),
            },
            include: include.iter().map(|s| s.to_string()).collect(),
            max_failed_items: None,
            max_failed_fraction: 0.01,
            max_item_bytes: fresco_core::dataset::DEFAULT_MAX_ITEM_BYTES,
        }
    }

    fn keys(spec: &DatasetSpec) -> (Vec<String>, u64) {
        let filter = KeyFilter::new(spec).unwrap();
        let mut skipped = 0;
        let mut got = Vec::new();
        list(spec, &filter, &mut skipped, &mut |l| {
            got.push(l.key);
            Ok(())
        })
        .unwrap();
        (got, skipped)
    }

    #[test]
    fn folders_are_walked_in_name_order_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b/2.jpg",
            "b/1.PNG",
            "a.jpg",
            "c/d/e.webp",
            "notes.txt",
            "b/0.txt",
        ] {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"x").unwrap();
        }
        let (all, skipped) = keys(&spec(dir.path(), &[]));
        assert_eq!(all, ["a.jpg", "b/1.PNG", "b/2.jpg", "c/d/e.webp"]);
        assert_eq!(skipped, 2);
        let (jpgs, skipped) = keys(&spec(dir.path(), &["*.jpg"]));
        assert_eq!(jpgs, ["a.jpg", "b/2.jpg"]);
        assert_eq!(skipped, 4);
    }

    #[test]
    fn a_rewritten_file_is_changed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jpg"), b"abc").unwrap();
        let spec = spec(dir.path(), &[]);
        let filter = KeyFilter::new(&spec).unwrap();
        let mut listed = Vec::new();
        list(&spec, &filter, &mut 0, &mut |l| {
            listed.push(l);
            Ok(())
        })
        .unwrap();
        let item = PinnedItem {
            index: 0,
            key: listed[0].key.clone(),
            size: listed[0].size,
            version: listed[0].version.clone(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let reader = ItemReader::new(&spec).unwrap();
        assert_eq!(runtime.block_on(reader.fetch(&item)).unwrap(), b"abc");
        std::fs::write(dir.path().join("a.jpg"), b"abcd").unwrap();
        let (kind, _) = runtime.block_on(reader.fetch(&item)).unwrap_err();
        assert_eq!(kind, ItemErrorKind::Changed);
    }

    fn pinned(spec: &DatasetSpec) -> Vec<PinnedItem> {
        let filter = KeyFilter::new(spec).unwrap();
        let mut listed = Vec::new();
        list(spec, &filter, &mut 0, &mut |l| {
            listed.push(PinnedItem {
                index: listed.len() as u64,
                key: l.key,
                size: l.size,
                version: l.version,
            });
            Ok(())
        })
        .unwrap();
        listed
    }

    #[test]
    fn items_over_the_limit_are_too_large_and_not_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jpg"), b"0123456789").unwrap();
        // Sparse: 2 GiB as listed, no blocks on disk; reading it would take 2 GiB of memory.
        let huge = std::fs::File::create(dir.path().join("b.jpg")).unwrap();
        huge.set_len(2 << 30).unwrap();
        let mut spec = spec(dir.path(), &[]);
        spec.max_item_bytes = 10;
        let items = pinned(&spec);
        assert_eq!(items[1].size, 2 << 30);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let reader = ItemReader::new(&spec).unwrap();
        assert_eq!(
            runtime.block_on(reader.fetch(&items[0])).unwrap(),
            b"0123456789"
        );
        let (kind, message) = runtime.block_on(reader.fetch(&items[1])).unwrap_err();
        assert_eq!(kind, ItemErrorKind::TooLarge, "{message}");
        assert!(message.contains("--max-item-bytes 10"), "{message}");
        // Grown past the limit since it was pinned: too large, and still not read.
        std::fs::write(dir.path().join("a.jpg"), b"0123456789abc").unwrap();
        let (kind, _) = runtime.block_on(reader.fetch(&items[0])).unwrap_err();
        assert_eq!(kind, ItemErrorKind::TooLarge);
    }

    #[test]
    fn a_manifest_in_an_object_store_is_read_through_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a b#1.jpg"), b"aaa").unwrap();
        std::fs::write(dir.path().join("c.jpg"), b"ccccc").unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let root = format!("file://{}", dir.path().display());
        std::fs::write(
            dir.path().join("out/batch.manifest"),
            format!("{root}/a b#1.jpg\n\n# a comment\n{root}/c.jpg\nrelative.jpg\n"),
        )
        .unwrap();
        let mut spec = spec(dir.path(), &[]);
        spec.source = DatasetSource::Manifest {
            path: PathBuf::from(format!("{root}/out/batch.manifest")),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _entered = runtime.enter();
        let items = pinned(&spec);
        let keys: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                format!("{root}/a b#1.jpg").as_str(),
                format!("{root}/c.jpg").as_str(),
                "relative.jpg"
            ]
        );
        assert_eq!((items[0].size, items[1].size, items[2].size), (3, 5, 0));
        let reader = ItemReader::new(&spec).unwrap();
        assert_eq!(runtime.block_on(reader.fetch(&items[1])).unwrap(), b"ccccc");
        // No folder to resolve a relative line in: an error row, not a file beside the server.
        let (kind, message) = runtime.block_on(reader.fetch(&items[2])).unwrap_err();
        assert_eq!(kind, ItemErrorKind::Unreadable, "{message}");
        // A manifest that is not there fails the plan, saying which.
        spec.source = DatasetSource::Manifest {
            path: PathBuf::from(format!("{root}/out/gone.manifest")),
        };
        let filter = KeyFilter::new(&spec).unwrap();
        let failure = list(&spec, &filter, &mut 0, &mut |_| Ok(())).unwrap_err();
        assert!(
            format!("{failure:?}").contains("gone.manifest"),
            "{failure:?}"
        );
    }

    #[test]
    fn reads_stop_one_byte_past_the_pinned_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jpg");
        std::fs::write(&path, vec![7u8; 1000]).unwrap();
        assert_eq!(read_at_most(&path, 10).unwrap().len(), 11);
        assert_eq!(read_at_most(&path, 1000).unwrap().len(), 1000);
        assert_eq!(read_at_most(&path, 5000).unwrap().len(), 1000);
    }
}
