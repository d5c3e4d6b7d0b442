//! Completion callbacks: when a job submitted with a `callback_url` ends (succeeded, failed or
//! canceled), its JSON (as `GET /v1/jobs/{id}` gives it) is POSTed to that URL.
//!
//! A background task per job polls the queue until the job is terminal, then POSTs with a timeout,
//! retrying a few times on failure. Known limits: the URL is not stored in the queue, so a server
//! restart before the job ends loses the callback, and with several servers only the one that
//! took the submission calls back. The URL is the client's: the server will POST to any http(s)
//! host it can reach, so deployments exposed to untrusted clients should filter egress.

use std::sync::Arc;
use std::time::Duration;

use fresco_queue::Queue;

use crate::api::JobDetail;
use crate::AppState;

/// How callbacks are made.
#[derive(Debug, Clone)]
pub struct CallbackSettings {
    /// How often the job's state is polled.
    pub poll: Duration,
    /// Time allowed for one POST (connect and answer).
    pub timeout: Duration,
    /// POSTs tried before giving up (a 2xx answer ends them).
    pub tries: u32,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        CallbackSettings {
            poll: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            tries: 3,
        }
    }
}

/// Starts the background task that calls `url` once job `id` ends.
pub fn notify_when_done(state: &AppState, id: String, url: String) {
    let queue = Arc::clone(&state.queue);
    let settings = state.callbacks.clone();
    tokio::spawn(async move {
        let Some(body) = wait_until_done(queue.as_ref(), &id, settings.poll).await else {
            return;
        };
        for attempt in 1..=settings.tries {
            let (url, body, timeout) = (url.clone(), body.clone(), settings.timeout);
            // ureq blocks; the POST must not hold a runtime thread.
            let result = tokio::task::spawn_blocking(move || post(&url, &body, timeout)).await;
            match result {
                Ok(Ok(())) => {
                    tracing::info!(job = %id, "completion callback delivered");
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(job = %id, attempt, error = %e, "completion callback failed")
                }
                Err(e) => tracing::error!(job = %id, error = %e, "completion callback panicked"),
            }
            tokio::time::sleep(settings.poll * attempt).await;
        }
        tracing::error!(job = %id, "completion callback given up");
    });
}

/// The job's JSON once it is terminal; None if it vanished or the queue kept failing.
async fn wait_until_done(queue: &dyn Queue, id: &str, poll: Duration) -> Option<String> {
    let mut failures = 0u32;
    loop {
        match queue.job(id).await {
            Ok(Some(job)) if job.state.is_terminal() => {
                let tasks = queue.tasks(id).await.unwrap_or_default();
                let detail = JobDetail::new(&job, &tasks);
                return Some(serde_json::to_string(&detail).expect("a job view serialises"));
            }
            Ok(Some(_)) => failures = 0,
            Ok(None) => return None,
            Err(e) => {
                failures += 1;
                tracing::warn!(job = %id, error = %e, "polling for a completion callback");
                // About ten minutes of an unreachable queue at the default poll: give up then.
                if failures > 300 {
                    return None;
                }
            }
        }
        tokio::time::sleep(poll).await;
    }
}

fn post(url: &str, body: &str, timeout: Duration) -> Result<(), String> {
    let agent = ureq::AgentBuilder::new().timeout(timeout).build();
    match agent
        .post(url)
        .set("Content-Type", "application/json")
        .send_string(body)
    {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(status, _)) => Err(format!("{url} answered HTTP {status}")),
        Err(e) => Err(format!("{url}: {e}")),
    }
}
