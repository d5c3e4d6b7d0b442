//! The checks every store backend must pass; `tests/backends.rs` runs each on every backend.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use fresco_store::{ScratchBudget, Store, StoreError, MIN_PART_SIZE};
use rand::Rng;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use crate::support::Fixture;

const MIB: usize = 1024 * 1024;

fn random_bytes(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    data
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// Files in `folder` other than `keep` (temporary leftovers of a download).
fn leftovers(folder: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| !keep.contains(&name.as_str()))
                .collect()
        })
        .unwrap_or_default()
}

fn keys(infos: &[fresco_store::ObjectInfo]) -> Vec<&str> {
    infos.iter().map(|i| i.key.as_str()).collect()
}

/// A reader that yields `good` random bytes and then an error, or stalls forever.
struct FailingReader {
    data: Vec<u8>,
    at: usize,
    then_stall: bool,
}

impl AsyncRead for FailingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.data.len() {
            let n = buf.remaining().min(self.data.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.data[at..at + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        if self.then_stall {
            return Poll::Pending;
        }
        Poll::Ready(Err(io::Error::other("the camera's card was pulled out")))
    }
}

/// A multi-part upload and a download give back the same bytes; so does a one-put file.
pub async fn upload_download_round_trip(fx: &Fixture) {
    let store = fx.store("round-trip");
    for (name, len) in [
        ("big.bin", 2 * MIN_PART_SIZE + 3 * MIB + 17),
        ("small.bin", 1000),
    ] {
        let source = fx.scratch.join(name);
        std::fs::write(&source, random_bytes(len)).unwrap();
        let key = format!("in/{name}");
        let info = store.upload_file(&key, &source).await.unwrap();
        assert_eq!((info.key.as_str(), info.size), (key.as_str(), len as u64));
        assert!(info.etag.is_some(), "{info:?}");

        let head = store.head(&key).await.unwrap().expect("uploaded object");
        assert_eq!(head.size, len as u64);
        assert_eq!(head.etag, info.etag);

        let target = fx.scratch.join("down").join(name);
        let downloaded = store.download_file(&key, &target, None).await.unwrap();
        assert_eq!(downloaded.size, len as u64);
        assert!(downloaded.reservation.is_none());
        assert_eq!(sha256_file(&target), sha256_file(&source), "{name}");
    }
    assert_eq!(
        leftovers(&fx.scratch.join("down"), &["big.bin", "small.bin"]),
        Vec::<String>::new()
    );
    let missing = store
        .upload_file("x", &fx.scratch.join("no-such-file"))
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::LocalIo { .. }), "{missing}");
    assert!(missing.to_string().contains("no-such-file"), "{missing}");
}

/// An upload whose source fails mid-way, or that is dropped, leaves nothing at its key, and an
/// object already there stays as it was.
pub async fn failed_upload_leaves_nothing(fx: &Fixture) {
    let store = fx.store("failed");
    let reader = FailingReader {
        data: random_bytes(MIN_PART_SIZE + 2 * MIB),
        at: 0,
        then_stall: false,
    };
    let err = store.upload_reader("out.mp4", reader).await.unwrap_err();
    assert!(matches!(err, StoreError::UploadSource { .. }), "{err}");
    assert!(err.to_string().contains("failed/out.mp4"), "{err}");
    assert!(err.to_string().contains("card was pulled out"), "{err}");
    assert_eq!(store.head("out.mp4").await.unwrap(), None);

    store
        .put_bytes("kept.mp4", Bytes::from_static(b"the old one"))
        .await
        .unwrap();
    let reader = FailingReader {
        data: random_bytes(2 * MIN_PART_SIZE),
        at: 0,
        then_stall: false,
    };
    store.upload_reader("kept.mp4", reader).await.unwrap_err();
    assert_eq!(
        store.get_bytes("kept.mp4").await.unwrap(),
        &b"the old one"[..]
    );

    let stalled = FailingReader {
        data: random_bytes(MIN_PART_SIZE + MIB),
        at: 0,
        then_stall: true,
    };
    let upload = store.upload_reader("dropped.mp4", stalled);
    let timed_out = tokio::time::timeout(std::time::Duration::from_millis(1500), upload).await;
    assert!(timed_out.is_err(), "the stalled upload cannot finish");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(store.head("dropped.mp4").await.unwrap(), None);
    assert_eq!(keys(&store.list("").await.unwrap()), ["kept.mp4"]);
}

/// A download that does not fit the scratch budget fails saying so and writes nothing; one that
/// fits holds its size until its reservation is dropped.
pub async fn download_respects_the_budget(fx: &Fixture) {
    let store = fx.store("budget");
    store
        .put_bytes("input.mp4", Bytes::from(random_bytes(MIB)))
        .await
        .unwrap();
    let folder = fx.scratch.join("budget");
    let target = folder.join("input.mp4");

    let budget = ScratchBudget::new(MIB as u64 + 100);
    let held = budget.reserve(1000).unwrap();
    let err = store
        .download_file("input.mp4", &target, Some(&budget))
        .await
        .unwrap_err();
    let StoreError::ScratchFull { source, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (source.needed, source.available),
        (MIB as u64, MIB as u64 + 100 - 1000)
    );
    assert!(err.to_string().contains("budget/input.mp4"), "{err}");
    assert!(
        err.to_string().contains(&format!("{} bytes needed", MIB)),
        "{err}"
    );
    assert!(!target.exists());
    assert_eq!(leftovers(&folder, &[]), Vec::<String>::new());
    assert_eq!(budget.in_use(), 1000);

    drop(held);
    let downloaded = store
        .download_file("input.mp4", &target, Some(&budget))
        .await
        .unwrap();
    assert_eq!(
        downloaded.reservation.as_ref().map(|r| r.bytes()),
        Some(MIB as u64)
    );
    assert_eq!(budget.available(), 100);
    assert_eq!(std::fs::metadata(&target).unwrap().len(), MIB as u64);
    drop(downloaded);
    assert_eq!(budget.available(), MIB as u64 + 100);

    let err = store
        .download_file("absent.mp4", &folder.join("absent.mp4"), Some(&budget))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("budget/absent.mp4"), "{err}");
    assert_eq!(leftovers(&folder, &["input.mp4"]), Vec::<String>::new());
    assert_eq!(budget.in_use(), 0);
}

/// Capped reads give the whole object within the cap, and no bytes past it.
pub async fn capped_reads(fx: &Fixture) {
    let store = fx.store("capped");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    store
        .put_bytes("blob", Bytes::from(data.clone()))
        .await
        .unwrap();
    let (info, bytes) = store.get_with_info_within("blob", 100_000).await.unwrap();
    assert_eq!(info.size, 100_000);
    assert_eq!(bytes.unwrap(), &data[..]);
    let (info, bytes) = store.get_with_info_within("blob", 99_999).await.unwrap();
    assert_eq!(info.size, 100_000);
    assert!(bytes.is_none());
    let err = store.get_with_info_within("absent", 10).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

/// Ranged reads give exactly the bytes asked for.
pub async fn ranged_reads(fx: &Fixture) {
    let store = fx.store("ranges");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    store
        .put_bytes("blob", Bytes::from(data.clone()))
        .await
        .unwrap();
    assert_eq!(
        store.get_range("blob", 10..20).await.unwrap(),
        &data[10..20]
    );
    assert_eq!(
        store.get_range("blob", 99_990..100_000).await.unwrap(),
        &data[99_990..]
    );
    assert_eq!(
        store.get_range("blob", 99_990..200_000).await.unwrap(),
        &data[99_990..]
    );
    assert_eq!(store.get_range("blob", 5..5).await.unwrap(), &b""[..]);
    #[allow(clippy::reversed_empty_ranges)]
    let err = store.get_range("blob", 20..10).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::BadRange {
                start: 20,
                end: 10,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.get_bytes("blob").await.unwrap(), &data[..]);
    let err = store.get_range("absent", 0..10).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let err = store.get_bytes("absent").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

/// A conditional create succeeds once, then reports the object already there, untouched.
pub async fn put_if_absent_creates_once(fx: &Fixture) {
    let store = fx.store("markers");
    assert!(store
        .put_if_absent("seen/abc", Bytes::from_static(b"first"))
        .await
        .unwrap());
    assert!(!store
        .put_if_absent("seen/abc", Bytes::from_static(b"second"))
        .await
        .unwrap());
    assert_eq!(store.get_bytes("seen/abc").await.unwrap(), &b"first"[..]);
}

/// Listings have every object with its size and ETag, match whole segments, and show a new
/// ETag after an overwrite.
pub async fn list_with_etags(fx: &Fixture) {
    let store = fx.store("listing");
    for (key, body) in [
        ("a/1", "one"),
        ("a/2/x", "two!"),
        ("ab/3", "three"),
        ("top", ""),
    ] {
        store.put_bytes(key, Bytes::from(body)).await.unwrap();
    }
    let all = store.list("").await.unwrap();
    assert_eq!(keys(&all), ["a/1", "a/2/x", "ab/3", "top"]);
    assert_eq!(all.iter().map(|i| i.size).collect::<Vec<_>>(), [3, 4, 5, 0]);
    assert!(
        all.iter()
            .all(|i| i.etag.is_some() && i.last_modified > 1_600_000_000_000),
        "{all:?}"
    );
    assert_eq!(keys(&store.list("a").await.unwrap()), ["a/1", "a/2/x"]);
    assert_eq!(keys(&store.list("a/2").await.unwrap()), ["a/2/x"]);
    assert!(store.list("nothing/here").await.unwrap().is_empty());

    let before = all[0].etag.clone();
    // Local ETags include the modification time: make sure it moves.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    store
        .put_bytes("a/1", Bytes::from_static(b"one, rewritten"))
        .await
        .unwrap();
    let after = store.head("a/1").await.unwrap().unwrap();
    assert_ne!(after.etag, before);
    assert_eq!(after.size, 14);
    let json = serde_json::to_value(&after).unwrap();
    assert_eq!(json["key"], "a/1");
    assert_eq!(json["size"], 14);
}

/// Two stores with different prefixes on one container or folder do not see each other.
pub async fn prefixes_isolate_stores(fx: &Fixture) {
    let jobs = fx.store("tenant/jobs");
    let jobs2 = fx.store("tenant/jobs2");
    let root = fx.store("");
    jobs.put_bytes("k", Bytes::from_static(b"from jobs"))
        .await
        .unwrap();
    jobs2
        .put_bytes("k", Bytes::from_static(b"from jobs2"))
        .await
        .unwrap();
    assert_eq!(jobs.get_bytes("k").await.unwrap(), &b"from jobs"[..]);
    assert_eq!(jobs2.get_bytes("k").await.unwrap(), &b"from jobs2"[..]);
    assert_eq!(keys(&jobs.list("").await.unwrap()), ["k"]);
    assert_eq!(keys(&jobs2.list("").await.unwrap()), ["k"]);
    assert_eq!(
        keys(&root.list("tenant").await.unwrap()),
        ["tenant/jobs/k", "tenant/jobs2/k"]
    );

    assert_eq!(jobs.delete_prefix("").await.unwrap(), 1);
    assert!(jobs.list("").await.unwrap().is_empty());
    assert_eq!(jobs2.get_bytes("k").await.unwrap(), &b"from jobs2"[..]);
    assert!(
        jobs.display_url().ends_with("/tenant/jobs"),
        "{}",
        jobs.display_url()
    );
}

/// `delete_prefix` deletes exactly what is under the prefix and counts it; `delete` of a missing
/// object is not an error.
pub async fn delete_prefix_counts(fx: &Fixture) {
    let store = fx.store("deletes");
    for key in ["job1/c0", "job1/c1", "job1/sub/c2", "job10/c0", "other"] {
        store
            .put_bytes(key, Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    assert_eq!(store.delete_prefix("job1").await.unwrap(), 3);
    assert_eq!(keys(&store.list("").await.unwrap()), ["job10/c0", "other"]);
    assert_eq!(store.delete_prefix("job1").await.unwrap(), 0);
    store.delete("other").await.unwrap();
    store.delete("other").await.unwrap();
    assert_eq!(store.head("other").await.unwrap(), None);
    assert_eq!(keys(&store.list("").await.unwrap()), ["job10/c0"]);
}

/// Every operation refuses a bad key with `BadKey` before touching the store.
pub async fn bad_keys_are_refused(fx: &Fixture) {
    let store = fx.store("keys");
    let local = fx.scratch.join("k");
    std::fs::write(&local, b"data").unwrap();
    for key in ["", "/abs", "a//b", "a/", "../up", "a/../../b", "nul\0byte"] {
        let checks: Vec<Result<(), StoreError>> = vec![
            store.put_bytes(key, Bytes::new()).await.map(drop),
            store.put_if_absent(key, Bytes::new()).await.map(drop),
            store.get_bytes(key).await.map(drop),
            store.get_range(key, 0..1).await.map(drop),
            store.head(key).await.map(drop),
            store.delete(key).await,
            store.upload_file(key, &local).await.map(drop),
            store
                .download_file(key, &fx.scratch.join("d"), None)
                .await
                .map(drop),
        ];
        for result in checks {
            let err = result.unwrap_err();
            assert!(matches!(err, StoreError::BadKey { .. }), "{key:?}: {err}");
        }
    }
    for prefix in ["/abs", "a//b", "..", "a/"] {
        assert!(
            matches!(store.list(prefix).await, Err(StoreError::BadKey { .. })),
            "{prefix}"
        );
        assert!(matches!(
            store.delete_prefix(prefix).await,
            Err(StoreError::BadKey { .. })
        ));
    }
    assert!(store.list("").await.unwrap().is_empty());
}

/// Stores opened by equivalent URLs share their objects.
pub async fn equivalent_urls_share_objects(fx: &Fixture) {
    let store = fx.store("same");
    store
        .put_bytes("k", Bytes::from_static(b"v"))
        .await
        .unwrap();
    let other_url = if fx.is_local() {
        url_of_folder(&fx.base_url, "same")
    } else {
        fx.base_url.replacen("az://", "azure://", 1) + "/same/"
    };
    let other = Store::from_url(&other_url).unwrap();
    assert_eq!(other.get_bytes("k").await.unwrap(), &b"v"[..]);
    assert_eq!(other.display_url(), store.display_url());
}

fn url_of_folder(base: &str, sub: &str) -> String {
    format!("file://{}/{sub}", base)
}
