//! A claimed task's lease while its work runs: [`LeaseGuard`] renews it (the heartbeat), stops a
//! score task that makes no progress (the stall watchdog), and owns the cancel flag that both
//! raise. Dropping the guard stops the heartbeat and the watchdog.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use fresco_queue::{LeaseStatus, Queue, TaskLease, WorkerStatus};
use tokio::task::JoinHandle;

/// When a task last made progress, for the stall watchdog: stages call [`ProgressClock::tick`]
/// for each frame done (and after any long wait that is not a stall, such as a download).
#[derive(Debug, Clone)]
pub struct ProgressClock(Arc<AtomicU64>);

impl ProgressClock {
    fn new() -> ProgressClock {
        ProgressClock(Arc::new(AtomicU64::new(monotonic_ms())))
    }

    /// The task moved just now.
    pub fn tick(&self) {
        self.0.store(monotonic_ms(), Ordering::SeqCst);
    }

    fn idle_ms(&self) -> u64 {
        monotonic_ms().saturating_sub(self.0.load(Ordering::SeqCst))
    }
}

/// How a lease stood when its task's work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LeaseEnd {
    /// Still ours: the task's result counts.
    Held,
    /// Gone (canceled, or reclaimed after it expired): the result is discarded.
    Lost,
    /// Held, but the watchdog stopped the task for making no progress.
    Stalled,
}

/// Owns a task's heartbeat, its stall watchdog and its cancel flag (see the module doc).
pub(super) struct LeaseGuard {
    cancel: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    progress: ProgressClock,
    heartbeat: JoinHandle<()>,
    watchdog: Option<JoinHandle<()>>,
}

impl LeaseGuard {
    /// Starts renewing `lease` every third of `length` (announcing `status` each time), and,
    /// with a `stall_limit`, watching the task's progress.
    pub(super) fn start(
        queue: Arc<dyn Queue>,
        lease: &TaskLease,
        length: Duration,
        status: WorkerStatus,
        stall_limit: Option<Duration>,
    ) -> LeaseGuard {
        let cancel = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicBool::new(false));
        let progress = ProgressClock::new();
        let heartbeat = tokio::spawn(tracing::Instrument::in_current_span(heartbeat_loop(
            queue,
            lease.clone(),
            length,
            Arc::clone(&cancel),
            Arc::clone(&lost),
            status,
        )));
        // A chunk that stops making progress (a hung decoder, a stuck network mount) would
        // otherwise hold its lease forever, renewed by the heartbeat.
        let watchdog = stall_limit.map(|limit| {
            tokio::spawn(watchdog_loop(
                progress.clone(),
                limit,
                Arc::clone(&cancel),
                Arc::clone(&stalled),
            ))
        });
        LeaseGuard {
            cancel,
            lost,
            stalled,
            progress,
            heartbeat,
            watchdog,
        }
    }

    /// Raised when the task must stop: lease lost, stall, or [`LeaseGuard::cancel`].
    pub(super) fn cancel_flag(&self) -> &Arc<AtomicBool> {
        &self.cancel
    }

    pub(super) fn progress(&self) -> &ProgressClock {
        &self.progress
    }

    /// Asks the task to stop (a stop request whose grace ran out).
    pub(super) fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Stops the heartbeat and the watchdog, and says how the lease stands. A lost lease wins
    /// over a stall: the task is someone else's now.
    pub(super) fn finish(self) -> LeaseEnd {
        if self.lost.load(Ordering::SeqCst) {
            LeaseEnd::Lost
        } else if self.stalled.load(Ordering::SeqCst) {
            LeaseEnd::Stalled
        } else {
            LeaseEnd::Held
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.heartbeat.abort();
        if let Some(watchdog) = &self.watchdog {
            watchdog.abort();
        }
    }
}

/// Renews the lease every third of its length; raises `cancel` (and `lost`) when it is gone.
async fn heartbeat_loop(
    queue: Arc<dyn Queue>,
    lease: TaskLease,
    length: Duration,
    cancel: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    status: WorkerStatus,
) {
    let every = (length / 3).max(Duration::from_millis(50));
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = queue.worker_seen(&status).await {
            tracing::debug!("could not announce the worker: {e}");
        }
        match queue.heartbeat(&lease, length).await {
            Ok(LeaseStatus::Held) => {}
            Ok(LeaseStatus::Lost) => {
                lost.store(true, Ordering::SeqCst);
                cancel.store(true, Ordering::SeqCst);
                return;
            }
            // Keep working: if the database stays away past the lease, the task is reclaimed
            // and our result will be refused.
            Err(e) => tracing::warn!("heartbeat failed: {e}"),
        }
    }
}

/// Raises `stalled` and `cancel` once `progress` has not moved for `limit`.
async fn watchdog_loop(
    progress: ProgressClock,
    limit: Duration,
    cancel: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
) {
    loop {
        tokio::time::sleep(Duration::from_secs(1).min(limit)).await;
        if progress.idle_ms() > limit.as_millis() as u64 {
            stalled.store(true, Ordering::SeqCst);
            cancel.store(true, Ordering::SeqCst);
            return;
        }
    }
}

/// Milliseconds on a clock that only goes forward (since the first call).
fn monotonic_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}
