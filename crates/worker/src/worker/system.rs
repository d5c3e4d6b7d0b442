//! The system store: where a job's scored chunks and its log archive live.
//!
//! A deployment has two stores (`--data` and `--system`): the **data** store holds inputs and
//! outputs, which users reach; the **system** store holds what only fresco reads, which users
//! must not reach. The system store is either
//! - a local folder every worker sees (the default, `STATE/work`, or a shared mount): chunks
//!   are written there in place by ffmpeg, as `JOB/chunk-NNNNN.nut`; or
//! - an object-store prefix (`az://fresco-system/work`, `s3://...`): a worker scores a chunk
//!   into its scratch folder and uploads it to `jobs/JOB/chunk-NNNNN.nut` (the object appears
//!   only when complete, so a half-written chunk is never seen), and the assembling worker
//!   downloads the job's chunks into its scratch folder, under the scratch budget.
//!
//! Either way a chunk found already stored counts as done (its earlier scorer died before
//! recording it), and a job's chunks are removed when it ends.
//!
//! Each job's log is also kept in the system store as text, at `logs/JOB.log`: rewritten from
//! the queue's log when the job is planned, when a task fails, and when the job ends. The queue
//! holds the live log (the API reads it with a cursor); the store holds the archive that
//! outlives the queue's rows.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use fresco_pipeline::FailureClass;
use fresco_queue::Queue;
// The layout itself is the store's, so that the server removes a canceled job's files alike.
use fresco_store::system::chunk_file_name;
pub use fresco_store::system::{chunk_key, log_key, remove_chunks, remove_job_files};
use fresco_store::{Downloaded, Store, StoreError};

use super::TaskFailure;

fn failure(e: StoreError) -> TaskFailure {
    // The store being away is not the job's fault: try again later or elsewhere.
    TaskFailure::retryable(format!("the system store: {e}"), FailureClass::Processing)
}

/// Whether chunk `n` of `job` is already stored.
pub(super) fn chunk_stored(store: &Store, job: &str, n: u32) -> Result<bool, TaskFailure> {
    let handle = tokio::runtime::Handle::current();
    Ok(handle
        .block_on(store.head(&chunk_key(job, n)))
        .map_err(failure)?
        .is_some_and(|info| info.size > 0))
}

/// Uploads a scored chunk and removes the local file.
pub(super) fn upload_chunk(
    store: &Store,
    job: &str,
    n: u32,
    local: &Path,
) -> Result<(), TaskFailure> {
    let handle = tokio::runtime::Handle::current();
    let uploaded = handle.block_on(store.upload_file(&chunk_key(job, n), local));
    let _ = std::fs::remove_file(local);
    let info = uploaded.map_err(failure)?;
    tracing::debug!("uploaded chunk {n} of job {job} ({} bytes)", info.size);
    Ok(())
}

/// Downloads the job's `count` chunks into `dir`; the reservations of the scratch budget are
/// held as long as the returned values live.
pub(super) fn download_chunks(
    store: &Store,
    job: &str,
    count: u32,
    dir: &Path,
    budget: Option<&fresco_store::ScratchBudget>,
) -> Result<(Vec<PathBuf>, Vec<Downloaded>), TaskFailure> {
    let handle = tokio::runtime::Handle::current();
    std::fs::create_dir_all(dir).map_err(|e| {
        TaskFailure::retryable(
            format!("{}: cannot create the folder: {e}", dir.display()),
            FailureClass::Processing,
        )
    })?;
    let mut files = Vec::with_capacity(count as usize);
    let mut held = Vec::with_capacity(count as usize);
    for n in 0..count {
        let local = dir.join(chunk_file_name(n));
        let downloaded = handle
            .block_on(store.download_file(&chunk_key(job, n), &local, budget))
            .map_err(|e| match e {
                // Lost chunks are rescored by a retry of the job; say which.
                StoreError::NotFound { .. } => TaskFailure::permanent(
                    format!(
                        "chunk {n} of job {job} is missing from the system store {} (removed by hand?); retry the job to score it again",
                        store.display_url()
                    ),
                    FailureClass::Processing,
                ),
                other => failure(other),
            })?;
        files.push(local);
        held.push(downloaded);
    }
    Ok((files, held))
}

/// Writes the job's log as it stands to `logs/JOB.log` in `store`. Failures are only logged:
/// the queue still has every line.
pub async fn archive_log(queue: &dyn Queue, store: &Store, job: &str) {
    let mut text = String::new();
    let mut after = None;
    loop {
        let lines = match queue.job_log(job, after, 1000).await {
            Ok(lines) => lines,
            Err(e) => {
                tracing::debug!("could not read the log of job {job}: {e}");
                return;
            }
        };
        let Some(last) = lines.last() else { break };
        after = Some(last.id);
        for line in &lines {
            let at = log_time(line.at_ms);
            text.push_str(&format!(
                "{at} {} {}\n",
                line.worker.as_deref().unwrap_or("-"),
                line.message
            ));
        }
        if lines.len() < 1000 {
            break;
        }
    }
    if let Err(e) = store.put_bytes(&log_key(job), text.into()).await {
        tracing::warn!("could not archive the log of job {job}: {e}");
    }
}

/// A log line's time (milliseconds since the epoch) as RFC 3339 in UTC with milliseconds, or the
/// number itself where it is not a time (before 1970).
fn log_time(at_ms: i64) -> String {
    u64::try_from(at_ms)
        .ok()
        .and_then(|ms| UNIX_EPOCH.checked_add(Duration::from_millis(ms)))
        .map(|t| humantime::format_rfc3339_millis(t).to_string())
        .unwrap_or_else(|| at_ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_times_are_rfc3339_with_milliseconds() {
        assert_eq!(log_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(log_time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(log_time(-5), "-5");
    }
}
