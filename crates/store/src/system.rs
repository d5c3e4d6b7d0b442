//! The layout of the system store: where a job's scored chunks and its log archive live, so
//! that workers (which write them) and the server (which removes a canceled job's) name them
//! alike.
//!
//! The system store is a local folder every worker sees (chunks at `JOB/chunk-NNNNN.nut`) or an
//! object-store prefix (chunks at `jobs/JOB/chunk-NNNNN.nut`); either way each job's log is
//! archived at `logs/JOB.log`. How workers use it is told in `fresco_worker`'s `system` module.

use std::path::{Path, PathBuf};

use crate::Store;

/// The file name of chunk `number` in a job's work folder.
pub fn chunk_file_name(number: u32) -> String {
    format!("chunk-{number:05}.nut")
}

/// The object key of chunk `n` of `job` in an object system store.
pub fn chunk_key(job: &str, n: u32) -> String {
    format!("jobs/{job}/{}", chunk_file_name(n))
}

/// The object key of a job's log archive.
pub fn log_key(job: &str) -> String {
    format!("logs/{job}.log")
}

/// The folder of a job's chunks in a local work folder.
pub fn job_dir(work_dir: &Path, job: &str) -> PathBuf {
    work_dir.join(job)
}

/// Removes a job's chunk folder (after it succeeded, failed or was canceled).
pub fn remove_job_dir(work_dir: &Path, job: &str) {
    let dir = job_dir(work_dir, job);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => tracing::debug!("removed {}", dir.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("could not remove {}: {e}", dir.display()),
    }
}

/// Removes a job's chunks from an object system store.
pub async fn remove_chunks(store: &Store, job: &str) {
    match store.delete_prefix(&format!("jobs/{job}")).await {
        Ok(n) if n > 0 => tracing::debug!("removed {n} chunks of job {job} from the system store"),
        Ok(_) => {}
        Err(e) => tracing::warn!("could not remove the chunks of job {job}: {e}"),
    }
}

/// Removes a job's chunks wherever they are (after it was canceled elsewhere than in a
/// worker): its folder in `work_dir` and its objects in an object system store.
pub async fn remove_job_files(work_dir: Option<&Path>, system: Option<&Store>, job: &str) {
    if let Some(dir) = work_dir {
        remove_job_dir(dir, job);
    }
    if let Some(store) = system {
        remove_chunks(store, job).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_per_job() {
        assert_eq!(chunk_key("j1", 3), "jobs/j1/chunk-00003.nut");
        assert_eq!(log_key("j1"), "logs/j1.log");
        assert_eq!(
            job_dir(Path::new("/w"), "j1").join(chunk_file_name(12)),
            Path::new("/w/j1/chunk-00012.nut")
        );
    }
}
