//! Where the job queue and the scored chunks live, shared by `run`, `worker` and `jobs`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use fresco_queue::Queue;

use crate::exit::{self, Failure};

#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    /// The job queue: sqlite://PATH or postgres://USER@HOST/DB (default: a SQLite file in the
    /// per-user state folder, ~/.local/state/fresco).
    #[arg(long, env = "FRESCO_DB", hide_env_values = true, value_name = "URL")]
    pub db: Option<String>,
    /// Folder for scored chunks, which every worker of a job must see (default: STATE/work).
    #[arg(long, env = "FRESCO_WORK_DIR", value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// The system store, for scored chunks and job logs, which users never reach: a folder
    /// every worker sees (the same as --work-dir) or an object-store prefix
    /// (`az://container/prefix`, `s3://bucket/prefix`) that workers on other machines reach
    /// with nothing but its URL and credentials (default: --work-dir).
    #[arg(
        long,
        env = "FRESCO_SYSTEM",
        value_name = "URL",
        conflicts_with = "work_dir"
    )]
    pub system: Option<String>,
}

impl QueueArgs {
    pub fn db_url(&self) -> String {
        self.db
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| {
                crate::worker_cmd::default_db_url(&crate::worker_cmd::default_state_dir())
            })
    }

    pub fn work_dir(&self) -> PathBuf {
        if let Some(system) = self.system.as_deref().filter(|s| !s.is_empty()) {
            if !system.contains("://") {
                return PathBuf::from(system);
            }
            if let Some(path) = system.strip_prefix("file://") {
                return PathBuf::from(path);
            }
        }
        self.work_dir
            .clone()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| crate::worker_cmd::default_state_dir().join("work"))
    }

    /// The system store when it is an object-store prefix (`None`: chunks go to
    /// [`QueueArgs::work_dir`]).
    pub fn system_store(&self) -> Result<Option<fresco_store::Store>, Failure> {
        let Some(system) = self.system.as_deref().filter(|s| s.contains("://")) else {
            return Ok(None);
        };
        if system.starts_with("file://") {
            return Ok(None);
        }
        fresco_store::Store::from_url(system)
            .map(Some)
            .map_err(|e| Failure::new(exit::BAD_INPUT, format!("--system {system}: {e}")))
    }

    /// Opens the queue (creating a SQLite file and its folder as needed).
    pub async fn open(&self) -> Result<Arc<dyn Queue>, Failure> {
        let url = self.db_url();
        fresco_queue::open(&url).await.map_err(|e| {
            Failure::new(
                exit::MISSING_DEPENDENCY,
                format!("{}: {e}", fresco_queue::redact_url(&url)),
            )
        })
    }
}

/// A multi-threaded runtime for the queue and the workers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("start the async runtime")
}
