//! The work folder: one sub-folder of scored chunks per job, removed when the job ends. A sweep
//! removes what nobody will read any more: folders of jobs that are finished, failed, canceled
//! or unknown, and partial chunk files left by workers that died mid-write.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fresco_queue::Queue;

/// Partial files from other machines are removed only after this long untouched.
const FOREIGN_PARTIAL_AGE: Duration = Duration::from_secs(3600);

/// The folder of a job's chunks.
pub fn job_dir(work_dir: &Path, job: &str) -> PathBuf {
    work_dir.join(job)
}

/// Removes a job's chunks (after it succeeded, failed or was canceled).
pub fn remove_job_dir(work_dir: &Path, job: &str) {
    let dir = job_dir(work_dir, job);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => tracing::debug!("removed {}", dir.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("could not remove {}: {e}", dir.display()),
    }
}

/// This machine's name, as used in worker names and partial file names.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether a process with this id runs on this machine.
pub fn process_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The worker that wrote a partial file is dead: its pid (in `NAME.partial-PID-SALT`) is gone
/// here, or the file is old.
fn partial_is_orphan(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(rest) = name.split(".partial-").nth(1) else {
        return false;
    };
    let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
    let age = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default();
    match pid {
        Some(pid) if !process_alive(pid) => true,
        _ => age > FOREIGN_PARTIAL_AGE,
    }
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
        if !looks_like_job_id(&id) {
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
            Ok(_) => {
                tracing::info!("removing {}: its job is over or unknown", path.display());
                let _ = std::fs::remove_dir_all(&path);
            }
            Err(e) => {
                tracing::warn!("sweep skipped: {e}");
                return;
            }
        }
    }
}
