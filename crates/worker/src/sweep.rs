//! The work folder: one sub-folder of scored chunks per job, removed when the job ends. A sweep
//! removes what nobody will read any more: folders of jobs that are finished, failed, canceled
//! or unknown, and partial chunk files left by workers that died mid-write.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fresco_queue::Queue;

/// Partial files from other machines are removed only after this long untouched.
const FOREIGN_PARTIAL_AGE: Duration = Duration::from_secs(3600);
/// Job folders this queue does not know are removed only after this long untouched.
const UNKNOWN_JOB_AGE: Duration = Duration::from_secs(24 * 3600);

/// How long ago anything in `dir` last changed.
fn newest_age(dir: &Path) -> Duration {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| age(&e.path()))
                .min()
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

// Where a job's chunks are is the system store's layout (the server removes them too).
pub use fresco_store::system::{job_dir, remove_job_dir};

/// This machine's name, as used in worker names and partial file names.
pub fn host_name() -> String {
    fresco_pipeline::chunk::host_name()
}

/// The file that marks a folder as a job folder fresco made; the sweep touches nothing else.
pub const JOB_MARKER: &str = ".fresco-job";

/// Creates a job's chunk folder (and its marker).
pub fn create_job_dir(work_dir: &Path, job: &str) -> std::io::Result<PathBuf> {
    let dir = job_dir(work_dir, job);
    std::fs::create_dir_all(&dir)?;
    let marker = dir.join(JOB_MARKER);
    if !marker.exists() {
        std::fs::write(&marker, job)?;
    }
    Ok(dir)
}

/// Whether a process with this id runs on this machine.
pub fn process_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The worker that wrote a partial file is dead: it was a process of this machine that is gone
/// (`NAME.partial~HOST~PID~SALT`), or the file has not changed for an hour.
fn partial_is_orphan(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(rest) = name.split(fresco_pipeline::chunk::PARTIAL_MARK).nth(1) else {
        return false;
    };
    let mut parts = rest.split('~');
    let (host, pid) = (
        parts.next(),
        parts.next().and_then(|p| p.parse::<u32>().ok()),
    );
    if host == Some(host_name().as_str()) {
        if let Some(pid) = pid {
            if !process_alive(pid) {
                return true;
            }
        }
    }
    age(path) > FOREIGN_PARTIAL_AGE
}

fn age(path: &Path) -> Duration {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default()
}

/// Job ids are UUIDs: 36 characters of hex digits and dashes.
fn looks_like_job_id(name: &str) -> bool {
    name.len() == 36 && name.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Removes the folders of jobs that are over (or unknown to the queue) and orphaned partial
/// files in the others. Errors are logged, never fatal: a sweep is housekeeping.
pub async fn sweep_work_dir(queue: &dyn Queue, work_dir: &Path, _lease: Duration) {
    let Ok(entries) = std::fs::read_dir(work_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let id = entry.file_name().to_string_lossy().into_owned();
        if !looks_like_job_id(&id) || !path.join(JOB_MARKER).is_file() {
            // Not ours: never touch what we did not make.
            continue;
        }
        match queue.job(&id).await {
            Ok(Some(job)) if !job.state.is_terminal() => {
                let Ok(files) = std::fs::read_dir(&path) else {
                    continue;
                };
                for file in files.flatten() {
                    let file = file.path();
                    if partial_is_orphan(&file) {
                        tracing::info!("removing {}, left by a worker that died", file.display());
                        let _ = std::fs::remove_file(&file);
                    }
                }
            }
            Ok(Some(_)) => {
                tracing::info!("removing {}: its job is over", path.display());
                let _ = std::fs::remove_dir_all(&path);
            }
            // Unknown here: perhaps the job of another queue sharing the folder. Only once it
            // has been left alone for long.
            Ok(None)
                if age(&path.join(JOB_MARKER)) > UNKNOWN_JOB_AGE
                    && newest_age(&path) > UNKNOWN_JOB_AGE =>
            {
                tracing::info!(
                    "removing {}: no queue job of that id for a day",
                    path.display()
                );
                let _ = std::fs::remove_dir_all(&path);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("sweep skipped: {e}");
                return;
            }
        }
    }
}

/// Removes the scratch folders of workers of this machine whose process is gone (a worker
/// removes its own when it exits; one that was killed cannot). Folders are named
/// `HOST~PID~N` and marked with [`crate::worker::SCRATCH_MARKER`]; nothing else is touched.
pub fn sweep_scratch_dir(scratch_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(scratch_dir) else {
        return;
    };
    let host = crate::worker::worker_folder_name(&host_name());
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.join(crate::worker::SCRATCH_MARKER).is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let mut parts = name.rsplitn(3, '~');
        let (_n, pid, folder_host) = (parts.next(), parts.next(), parts.next());
        let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if folder_host == Some(host.as_str()) && !process_alive(pid) {
            tracing::info!("removing {}, left by a worker that died", path.display());
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_of_dead_workers_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let host = crate::worker::worker_folder_name(&host_name());
        // A pid far above any pid_max: no such process.
        let dead = dir.path().join(format!("{host}~2000000000~0"));
        let alive = dir.path().join(format!("{host}~{}~0", std::process::id()));
        let unmarked = dir.path().join(format!("{host}~2000000001~0"));
        for folder in [&dead, &alive, &unmarked] {
            std::fs::create_dir_all(folder.join("job")).unwrap();
        }
        for folder in [&dead, &alive] {
            std::fs::write(folder.join(crate::worker::SCRATCH_MARKER), b"").unwrap();
        }
        sweep_scratch_dir(dir.path());
        assert!(!dead.exists());
        assert!(alive.exists());
        assert!(unmarked.exists());
    }
}
