//! Completion-callback deliveries, kept in the queue so that they survive a server restart and
//! so that, with several servers, each is sent by one of them.
//!
//! A delivery is written when a job is submitted with a callback URL, in the submission's own
//! transaction ([`crate::Admission::callback_url`]; [`Deliveries::add_delivery`] adds one to a
//! job that exists). A server's delivery loop claims one whose job is terminal and
//! whose next attempt is due ([`Deliveries::claim_delivery`]): a conditional update that sets a
//! lease token, so two servers never send the same delivery at once. It then sends it and
//! records the outcome with that token ([`Deliveries::finish_delivery`]): delivered, retry at a
//! later time, or given up. A server that dies while sending leaves a lease that runs out, and
//! the delivery is sent again (with the same `webhook_id`, so a receiver can tell a repeat).
//!
//! Times are the calling process's clock ([`crate::now_ms`]) on both backends: the statements
//! are the same text for both (`$N` placeholders, which SQLite accepts too).

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::{JobId, Result};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Not yet delivered; sent once its job is terminal and its next attempt is due.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up (attempts spent, or the URL is no longer allowed).
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryState> {
        match text {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// A delivery as stored.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    pub id: i64,
    pub job_id: JobId,
    /// The callback URL (secret to logs: print its scheme and host only).
    #[serde(skip)]
    pub url: String,
    /// `msg_...`: the `webhook-id` of every attempt, stable across retries.
    pub webhook_id: String,
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// Milliseconds since the Unix epoch.
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
    pub finished_at_ms: Option<i64>,
}

/// A claimed delivery: the right to send it until `lease_expires_at_ms`.
#[derive(Debug, Clone)]
pub struct DeliveryLease {
    pub id: i64,
    pub job_id: JobId,
    pub url: String,
    pub webhook_id: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// Fences this claim: [`Deliveries::finish_delivery`] must present it.
    pub token: String,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Failed; try again at this time (ms since the Unix epoch).
    Retry {
        error: String,
        at_ms: i64,
    },
    /// Failed for good.
    GiveUp {
        error: String,
    },
}

/// The queue's role for completion callbacks (see the module doc).
#[async_trait]
pub trait Deliveries: Send + Sync {
    /// Records a delivery of `job`'s completion to `url`, pending until the job is terminal.
    async fn add_delivery(&self, job: &str, url: &str) -> Result<i64>;

    /// Claims, for `lease`, one pending delivery whose job is terminal and whose next attempt
    /// is due, unless another claim holds it. None when there is none.
    async fn claim_delivery(&self, lease: Duration) -> Result<Option<DeliveryLease>>;

    /// Records an attempt's outcome (counting the attempt) and ends the lease. False (nothing
    /// changed) when the lease was no longer held.
    async fn finish_delivery(
        &self,
        lease: &DeliveryLease,
        outcome: &DeliveryOutcome,
    ) -> Result<bool>;

    /// A job's deliveries, oldest first.
    async fn deliveries(&self, job: &str) -> Result<Vec<DeliveryRecord>>;
}

/// A fresh `webhook-id`: `msg_` and 16 random bytes in hex.
pub(crate) fn new_webhook_id() -> String {
    format!("msg_{}", crate::new_token())
}

/// `$1` job, `$2` url, `$3` webhook id, `$4` now.
pub(crate) const INSERT: &str = "INSERT INTO deliveries \
    (job_id, url, webhook_id, state, attempts, next_attempt_at, created_at) \
    VALUES ($1, $2, $3, 'pending', 0, $4, $4) RETURNING id";

/// `$1` token, `$2` now, `$3` lease in ms. One statement: the inner select picks a candidate,
/// and the outer condition repeats the claimability test, so of two racing claims one updates
/// the row and the other finds it leased (and updates nothing).
pub(crate) const CLAIM: &str =
    "UPDATE deliveries SET lease_token = $1, lease_expires_at = $2 + $3 \
    WHERE id = (SELECT d.id FROM deliveries d JOIN jobs j ON j.id = d.job_id \
        WHERE d.state = 'pending' AND d.next_attempt_at <= $2 \
        AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= $2) \
        AND j.state IN ('succeeded', 'failed', 'canceled') \
        ORDER BY d.next_attempt_at, d.id LIMIT 1) \
    AND state = 'pending' AND (lease_expires_at IS NULL OR lease_expires_at <= $2) \
    RETURNING id, job_id, url, webhook_id, attempts";

/// `$1` id, `$2` token, `$3` state, `$4` next attempt, `$5` error, `$6` finished at.
pub(crate) const FINISH: &str = "UPDATE deliveries SET state = $3, attempts = attempts + 1, \
    next_attempt_at = $4, last_error = $5, finished_at = $6, \
    lease_token = NULL, lease_expires_at = NULL \
    WHERE id = $1 AND lease_token = $2 AND state = 'pending'";

/// `$1` job.
pub(crate) const OF_JOB: &str = "SELECT id, job_id, url, webhook_id, state, attempts, \
    next_attempt_at, last_error, finished_at FROM deliveries WHERE job_id = $1 ORDER BY id";

/// A row of [`OF_JOB`].
pub(crate) type DeliveryRow = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<i64>,
);

/// A row of [`CLAIM`]'s `RETURNING`.
pub(crate) type ClaimRow = (i64, String, String, String, i64);

pub(crate) fn record(row: DeliveryRow) -> Result<DeliveryRecord> {
    let (id, job_id, url, webhook_id, state, attempts, next, last_error, finished) = row;
    let state = DeliveryState::parse(&state)
        .ok_or_else(|| crate::QueueError::Corrupt(format!("delivery state '{state}'")))?;
    Ok(DeliveryRecord {
        id,
        job_id,
        url,
        webhook_id,
        state,
        attempts: attempts.clamp(0, i64::from(u32::MAX)) as u32,
        next_attempt_at_ms: next,
        last_error,
        finished_at_ms: finished,
    })
}

pub(crate) fn lease(row: ClaimRow, token: String) -> DeliveryLease {
    let (id, job_id, url, webhook_id, attempts) = row;
    DeliveryLease {
        id,
        job_id,
        url,
        webhook_id,
        attempts: attempts.clamp(0, i64::from(u32::MAX)) as u32,
        token,
    }
}

/// The columns [`FINISH`] writes for `outcome` at `now`: state, next attempt, error, finished.
pub(crate) fn finish_columns(
    outcome: &DeliveryOutcome,
    now: i64,
) -> (&'static str, i64, Option<String>, Option<i64>) {
    match outcome {
        DeliveryOutcome::Delivered => (DeliveryState::Delivered.as_str(), now, None, Some(now)),
        DeliveryOutcome::Retry { error, at_ms } => (
            DeliveryState::Pending.as_str(),
            *at_ms,
            Some(error.clone()),
            None,
        ),
        DeliveryOutcome::GiveUp { error } => (
            DeliveryState::Failed.as_str(),
            now,
            Some(error.clone()),
            Some(now),
        ),
    }
}

/// Milliseconds of a lease, for the statements.
pub(crate) fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 4)
}
