//! What a dataset job writes under an output folder (styled images, masks): its keys, its error
//! rows, and the check that a retried job keeps what an earlier try wrote.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use super::jobs::{read_log, wait_exit, wait_until, TestQueue};
use super::scoring::jsonl_rows;

/// Every file below `dir`, as keys relative to it, sorted (links listed, not followed).
pub fn keys_below(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, at: &Path, keys: &mut Vec<String>) {
        for entry in std::fs::read_dir(at).unwrap() {
            let path = entry.unwrap().path();
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                walk(root, &path, keys);
            } else {
                let key = path.strip_prefix(root).unwrap();
                keys.push(key.to_string_lossy().into_owned());
            }
        }
    }
    let mut keys = Vec::new();
    walk(dir, dir, &mut keys);
    keys.sort();
    keys
}

/// The `(source, kind)` of each row of an errors file, sorted.
pub fn error_rows(path: &Path) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = jsonl_rows(path)
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap().to_string(),
                r["error"]["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Job `id` of `queue`, writing the outputs `keys` under `output`, is canceled once a slowed
/// worker has written `first`, then retried to success on a fresh worker (logs in `dir`): the
/// first try wrote some outputs but not all, the retry writes the rest and leaves those alone
/// (the same inodes), and `output` then holds exactly `keys`.
pub fn a_retry_keeps_what_the_first_try_wrote(
    queue: &TestQueue,
    dir: &Path,
    id: &str,
    output: &Path,
    first: &str,
    keys: &[String],
) {
    let log = dir.join("canceled.log");
    let slow = [("FRESCO_TEST_FRAME_DELAY_MS", "400")];
    let mut worker = queue.spawn_worker(&log, &slow, &[]);
    wait_until(Duration::from_secs(120), "a first output", || {
        output.join(first).exists()
    });
    queue.jobs("cancel", id).ok();
    wait_exit(&mut worker, Duration::from_secs(120), "the worker");
    assert_eq!(queue.show(id)["state"], "canceled");
    let early: Vec<(String, u64)> = keys
        .iter()
        .filter_map(|k| {
            std::fs::metadata(output.join(k))
                .ok()
                .map(|m| (k.clone(), m.ino()))
        })
        .collect();
    assert!(
        !early.is_empty() && early.len() < keys.len(),
        "the first try wrote {} of {} outputs",
        early.len(),
        keys.len()
    );
    queue.jobs("retry", id).ok();
    let log = dir.join("retried.log");
    let mut worker = queue.spawn_worker(&log, &[], &[]);
    let status = wait_exit(&mut worker, Duration::from_secs(300), "the worker");
    assert!(status.success(), "{}", read_log(&log));
    assert_eq!(queue.show(id)["state"], "succeeded");
    assert_eq!(keys_below(output), keys);
    for (key, inode) in early {
        assert_eq!(
            std::fs::metadata(output.join(&key)).unwrap().ino(),
            inode,
            "{key} was written again by the retry"
        );
    }
}
