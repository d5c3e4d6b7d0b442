//! A wake-up for [`crate::Leases::wait_for_work`] within one process.
//!
//! Waking only the tasks that wait at the moment of a signal loses the signals that come
//! between a worker's empty claim and its wait, so a generation counter remembers them: a wait
//! returns at once if anything was signalled since the last claim began.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub(crate) struct WorkSignal {
    notify: Notify,
    /// Signals so far.
    generation: AtomicU64,
    /// The generation the last claim (or wait) saw.
    seen: AtomicU64,
}

impl WorkSignal {
    /// Work may have appeared: wakes every waiter, and the next wait of a worker that claimed
    /// before this.
    pub(crate) fn signal(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// A claim is about to look for work: what was signalled until now, it will see.
    pub(crate) fn claim_started(&self) {
        self.seen
            .store(self.generation.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Waits for a signal, at most `timeout`; returns at once if one came since the last claim.
    pub(crate) async fn wait(&self, timeout: Duration) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        // Registered before the check, so a signal between the check and the wait still wakes.
        notified.as_mut().enable();
        let now = self.generation.load(Ordering::SeqCst);
        if self.seen.swap(now, Ordering::SeqCst) != now {
            return;
        }
        let _ = tokio::time::timeout(timeout, notified).await;
        self.seen
            .store(self.generation.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}
