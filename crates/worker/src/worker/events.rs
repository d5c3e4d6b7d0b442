//! What a worker tells the process it runs in: [`WorkerEvent`]s as it goes (for progress
//! displays and metrics), a [`WorkerSummary`] when it exits; and the [`StopSignal`] that the
//! process uses to stop it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fresco_core::{FrameRange, TaskKind};
use fresco_pipeline::FailureClass;
use tokio::sync::Notify;

/// Things a worker reports as it goes, for progress displays.
#[derive(Debug, Clone)]
pub enum WorkerEvent {
    Claimed {
        job: String,
        kind: TaskKind,
        chunk: u32,
        frames: FrameRange,
    },
    /// Frames of the current chunk done so far.
    Frames {
        job: String,
        chunk: u32,
        done: u64,
    },
    Planned {
        job: String,
        frames: u64,
        chunks: usize,
        notes: Vec<String>,
        warnings: Vec<String>,
    },
    ChunkDone {
        job: String,
        chunk: u32,
        /// Frames scored: every frame of a video chunk, the sampled ones of a records chunk.
        frames: u64,
        /// Frames of the input the chunk covers (the job's progress is counted in these).
        span: u64,
        reused: bool,
        model_seconds: f64,
    },
    /// The chunk's frames went back to the queue (canceled, lease lost, stopping).
    ChunkAbandoned {
        job: String,
        chunk: u32,
    },
    Succeeded {
        job: String,
        output: PathBuf,
    },
    Retrying {
        job: String,
        kind: TaskKind,
        chunk: u32,
        error: String,
    },
    Failed {
        job: String,
        error: String,
        class: FailureClass,
    },
}

/// Receives [`WorkerEvent`]s.
pub type EventSink = Arc<dyn Fn(WorkerEvent) + Send + Sync>;

/// Asks workers to stop; shared by all the workers of a process.
#[derive(Debug, Default)]
pub struct StopSignal {
    stopping: AtomicBool,
    notify: Notify,
}

impl StopSignal {
    pub fn new() -> Arc<StopSignal> {
        Arc::new(StopSignal::default())
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Completes once a stop was asked for.
    pub async fn stopped(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_stopping() {
                return;
            }
            notified.await;
        }
    }
}

/// What a worker did before it exited.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerSummary {
    pub tasks_done: u64,
    pub chunks_scored: u64,
    pub frames_scored: u64,
    pub tasks_failed: u64,
    pub tasks_released: u64,
}
