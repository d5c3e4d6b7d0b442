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
}

impl QueueArgs {
    pub fn db_url(&self) -> String {
        self.db
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| fresco_worker::default_db_url(&fresco_worker::default_state_dir()))
    }

    pub fn work_dir(&self) -> PathBuf {
        self.work_dir
            .clone()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| fresco_worker::default_state_dir().join("work"))
    }

    /// Opens the queue (creating a SQLite file and its folder as needed).
    pub async fn open(&self) -> Result<Arc<dyn Queue>, Failure> {
        let url = self.db_url();
        fresco_queue::open(&url)
            .await
            .map_err(|e| Failure::new(exit::MISSING_DEPENDENCY, format!("{}: {e}", redact(&url))))
    }
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    fresco_queue::redact_url(url)
}

/// A multi-threaded runtime for the queue and the workers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("start the async runtime")
}
