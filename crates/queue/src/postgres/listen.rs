//! Wake-ups from PostgreSQL: a background task that `LISTEN`s on the queue's channel and turns
//! each notification into a [`WorkSignal`] for this process's waiters.
//!
//! It outlives connection losses and server restarts: a lost connection is opened again (and the
//! waiters woken, since notifications sent meanwhile are gone), and while the server is away the
//! task retries every half second. Waiters never depend on it alone: they wait with a timeout.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::signal::WorkSignal;

/// The channel every change that may add claimable work notifies (`pg_notify`).
pub(crate) const CHANNEL: &str = "fresco_work";

/// How long to wait before trying again when the server is away.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// Listens until the pool is closed (or the task is aborted). Sends on `ready` once the first
/// `LISTEN` is in place, so that a claim made after that cannot miss a notification.
pub(crate) async fn listen(pool: PgPool, signal: Arc<WorkSignal>, ready: oneshot::Sender<()>) {
    let mut ready = Some(ready);
    loop {
        if pool.is_closed() {
            return;
        }
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::debug!("queue: cannot listen for work yet: {e}");
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::debug!("queue: cannot listen for work yet: {e}");
            tokio::time::sleep(RETRY_AFTER).await;
            continue;
        }
        match ready.take() {
            Some(ready) => {
                let _ = ready.send(());
            }
            // Listening again after a loss: what was notified meanwhile is lost, so wake all.
            None => signal.signal(),
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => {
                    // One wake-up covers every notification already here.
                    while listener.next_buffered().is_some() {}
                    signal.signal();
                }
                // The connection was lost and opened again: notifications may have been missed.
                Ok(None) => signal.signal(),
                Err(e) => {
                    if pool.is_closed() {
                        return;
                    }
                    // E.g. the server shutting down. A fresh listener is the sure way back: this
                    // one may hold on to a dead connection for some kinds of error.
                    tracing::debug!("queue: lost the work notifications: {e}");
                    signal.signal();
                    tokio::time::sleep(RETRY_AFTER).await;
                    break;
                }
            }
        }
    }
}
