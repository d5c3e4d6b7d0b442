//! Completion callbacks: when a job submitted with a `callback_url` ends (succeeded, failed or
//! canceled), its JSON (as `GET /v1/jobs/{id}` gives it) is POSTed to that URL, signed.
//!
//! The flow: at submission the URL is checked ([`crate::outbound`]: resolved, no internal
//! addresses) and a delivery is written to the queue with the job ([`fresco_queue::Deliveries`]).
//! Each server runs [`spawn_delivery_loop`], which claims a delivery whose job is terminal (a
//! lease in the queue: one server sends it), checks the URL again, connects to the addresses
//! that check returned (no second lookup) without following redirects, signs the body
//! ([`crate::webhook`]) and records the outcome: delivered on 2xx, otherwise retried with
//! jittered exponential back-off until [`CallbackSettings::max_attempts`]. Being in the queue,
//! pending deliveries survive a restart. Logs show the URL's scheme and host only.

use std::sync::Arc;
use std::time::Duration;

use fresco_queue::{DeliveryLease, DeliveryOutcome, Queue};

use crate::api::JobDetail;
use crate::outbound::{self, CallbackPolicy};
use crate::webhook::WebhookSecrets;
use crate::AppState;

/// How callbacks are made.
#[derive(Debug, Clone)]
pub struct CallbackSettings {
    /// How often the delivery loop looks for due deliveries when it found none.
    pub poll: Duration,
    /// Time allowed for one POST (connect and answer).
    pub timeout: Duration,
    /// Attempts before a delivery is given up.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; doubled after each (at most an hour), and
    /// between half and all of it taken at random so that receivers coming back are not hit
    /// by every server at once.
    pub backoff: Duration,
    /// Hosts and ranges allowed although not public (`--callback-allow`).
    pub policy: CallbackPolicy,
    /// What signs the deliveries.
    pub secrets: WebhookSecrets,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        CallbackSettings {
            poll: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            max_attempts: 8,
            backoff: Duration::from_secs(5),
            policy: CallbackPolicy::default(),
            secrets: WebhookSecrets::random(),
        }
    }
}

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Deliveries one server sends at once: a slow receiver holds one of them, not the others.
const CONCURRENT_DELIVERIES: usize = 16;

/// Starts the loop that sends due deliveries until the task is aborted.
pub fn spawn_delivery_loop(state: &AppState) -> tokio::task::JoinHandle<()> {
    let queue = Arc::clone(&state.queue);
    let settings = Arc::new(state.callbacks.clone());
    tokio::spawn(async move {
        // Longer than one POST, so the lease outlives the attempt that holds it.
        let lease_for = settings.timeout * 2 + Duration::from_secs(30);
        let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_DELIVERIES));
        let mut sending = tokio::task::JoinSet::new();
        loop {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            // Reap finished sends, so the set does not grow.
            while sending.try_join_next().is_some() {}
            match queue.claim_delivery(lease_for).await {
                Ok(Some(lease)) => {
                    let (queue, settings) = (Arc::clone(&queue), Arc::clone(&settings));
                    sending.spawn(async move {
                        deliver(queue.as_ref(), &settings, &lease).await;
                        drop(slot);
                    });
                }
                Ok(None) => tokio::time::sleep(settings.poll).await,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a completion callback");
                    tokio::time::sleep(settings.poll).await;
                }
            }
        }
    })
}

/// One attempt of one delivery, and its outcome recorded.
async fn deliver(queue: &dyn Queue, settings: &CallbackSettings, lease: &DeliveryLease) {
    let target = outbound::redact(&lease.url);
    let attempt = lease.attempts + 1;
    // A URL the server cannot read (the schema let it through) will not become readable.
    if let Err(e) = outbound::parse_callback(&lease.url) {
        tracing::error!(job = %lease.job_id, error = %e, "completion callback given up");
        let outcome = DeliveryOutcome::GiveUp { error: e.0 };
        if let Err(e) = queue.finish_delivery(lease, &outcome).await {
            tracing::warn!(job = %lease.job_id, error = %e, "recording a completion callback");
        }
        return;
    }
    let result = match job_body(queue, &lease.job_id).await {
        Ok(body) => {
            let (url, settings, id) = (
                lease.url.clone(),
                settings.clone(),
                lease.webhook_id.clone(),
            );
            // ureq blocks (and so does the lookup): not on a runtime thread.
            tokio::task::spawn_blocking(move || send(&url, &settings, &id, &body))
                .await
                .unwrap_or_else(|e| Err(format!("the delivery task failed: {e}")))
        }
        Err(e) => Err(e),
    };
    let outcome = match result {
        Ok(()) => {
            tracing::info!(job = %lease.job_id, %target, attempt, "completion callback delivered");
            DeliveryOutcome::Delivered
        }
        Err(error) if attempt >= settings.max_attempts => {
            tracing::error!(job = %lease.job_id, %target, attempt, %error, "completion callback given up");
            DeliveryOutcome::GiveUp { error }
        }
        Err(error) => {
            let wait = backoff(settings.backoff, lease.attempts);
            tracing::warn!(job = %lease.job_id, %target, attempt, %error, retry_in_ms = wait.as_millis() as u64, "completion callback failed");
            DeliveryOutcome::Retry {
                error,
                at_ms: fresco_queue::now_ms() + wait.as_millis() as i64,
            }
        }
    };
    match queue.finish_delivery(lease, &outcome).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(job = %lease.job_id, "a completion callback's lease ran out before its outcome was recorded")
        }
        Err(e) => {
            tracing::warn!(job = %lease.job_id, error = %e, "recording a completion callback")
        }
    }
}

/// The wait after the failed attempt number `attempts + 1`: `base * 2^attempts`, at most an
/// hour, between half and all of it.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let full = base
        .saturating_mul(1u32.checked_shl(attempts.min(20)).unwrap_or(u32::MAX))
        .min(MAX_BACKOFF);
    let half = full / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// The job's JSON; an error when it is gone or cannot be read.
async fn job_body(queue: &dyn Queue, id: &str) -> Result<String, String> {
    let job = queue
        .job(id)
        .await
        .map_err(|e| format!("reading the job: {e}"))?
        .ok_or_else(|| "the job no longer exists".to_string())?;
    let tasks = queue
        .tasks(id)
        .await
        .map_err(|e| format!("reading the job's tasks: {e}"))?;
    serde_json::to_string(&JobDetail::new(&job, &tasks)).map_err(|e| e.to_string())
}

/// Checks the URL again, then POSTs `body` to the addresses the check returned. Errors never
/// hold the URL (it may hold a receiver's secret).
fn send(
    url: &str,
    settings: &CallbackSettings,
    webhook_id: &str,
    body: &str,
) -> Result<(), String> {
    let parsed = outbound::parse_callback(url).map_err(|e| e.0)?;
    let checked = outbound::check_blocking(&parsed, &settings.policy).map_err(|e| e.0)?;
    let agent = checked.agent(settings.timeout);
    let timestamp = fresco_queue::now_ms() / 1000;
    let signature = settings
        .secrets
        .sign(webhook_id, timestamp, body.as_bytes());
    let answer = agent
        .post(checked.url.as_str())
        .header("Content-Type", "application/json")
        .header("webhook-id", webhook_id)
        .header("webhook-timestamp", &timestamp.to_string())
        .header("webhook-signature", &signature)
        .send(body);
    match answer {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) if response.status().is_redirection() => Err(format!(
            "answered HTTP {} (a redirect, which callbacks do not follow)",
            response.status().as_u16()
        )),
        Ok(response) => Err(format!("answered HTTP {}", response.status().as_u16())),
        Err(e) => Err(format!("could not be reached ({})", transport_kind(&e))),
    }
}

/// What kind of failure a transport error is, without the URL (it may hold a secret).
fn transport_kind(e: &ureq::Error) -> &'static str {
    match e {
        ureq::Error::Timeout(_) => "timed out",
        ureq::Error::HostNotFound => "host not found",
        ureq::Error::Io(_) | ureq::Error::ConnectionFailed => "connection failed",
        ureq::Error::Tls(_) => "TLS failed",
        _ => "the exchange failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_secs(5);
        for attempts in 0..6u32 {
            let full = base * 2u32.pow(attempts);
            for _ in 0..20 {
                let wait = backoff(base, attempts);
                assert!(wait >= full / 2 && wait <= full, "{attempts}: {wait:?}");
            }
        }
        assert!(backoff(base, 40) <= MAX_BACKOFF);
        assert!(backoff(base, 40) >= MAX_BACKOFF / 2);
    }
}
