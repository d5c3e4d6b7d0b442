//! The dataset trigger's objects and batches ([`TriggerBatches`]): images that arrived under a
//! watched prefix, collected until a batch of them becomes one dataset job.
//!
//! ```text
//! collect (key, version)  -> waiting      (once per trigger: the primary key)
//! cut: count or age due   -> a batch      (a conditional update takes waiting objects only)
//! the batch's job         -> submitted    (idempotency key per batch) -> finish_batch
//! ```
//!
//! Each object goes into at most one batch: a cut sets `batch_id` only where it is still empty,
//! in one transaction, so of two servers cutting at once each object lands in one batch. A
//! batch is cut before its job is submitted and held under a lease while its job is made; a
//! server that dies between the two leaves a batch whose lease runs out, and the next claim
//! ([`TriggerBatches::claim_open_batch`]) makes its job, with the same idempotency key, so a
//! job that was submitted before the crash is found rather than made twice.
//!
//! Times are the calling process's clock ([`crate::now_ms`]) on both backends; the statements
//! are one text for both (`shared/batches.rs`).

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::Result;

/// One object as a trigger collects it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectedObject {
    /// Its key relative to the watched prefix.
    pub key: String,
    /// Its ETag (or another text that changes when it is rewritten): a rewritten object is
    /// collected again.
    pub version: String,
}

/// A cut batch, held by the caller until its job is made ([`TriggerBatches::finish_batch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchLease {
    /// Unique in the queue, increasing: what the batch's output and idempotency key are named by.
    pub id: i64,
    pub trigger: String,
    /// Objects in the batch.
    pub objects: u64,
    /// Fences this claim.
    pub token: String,
}

/// A batch as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchRecord {
    pub id: i64,
    pub trigger: String,
    pub objects: u64,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Its job, once made.
    pub job_id: Option<String>,
    /// Why no job could be made of it (it is not tried again).
    pub error: Option<String>,
}

/// What became of a batch's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// The job (new, or found by its idempotency key).
    Job(String),
    /// No job can be made of it (a refused model or output): recorded, not tried again.
    Refused(String),
}

/// The most objects one batch may hold: what `--dataset-count` is bounded by.
pub const MAX_BATCH_OBJECTS: u64 = 100_000;

/// Collecting objects into batches (see the module doc).
#[async_trait]
pub trait TriggerBatches: Send + Sync {
    /// Records objects as waiting for a batch of `trigger`; one already recorded (waiting or in
    /// a batch) is left as it is. Returns how many were new.
    async fn collect_objects(&self, trigger: &str, objects: &[CollectedObject]) -> Result<u64>;

    /// Cuts a batch of `trigger` when one is due: at least `max_objects` objects wait, or the
    /// oldest of them was collected at or before `due_ms` (ms since the Unix epoch). Takes at
    /// most `max_objects`, oldest first, and holds the batch for `lease`. None when none is due.
    async fn cut_batch(
        &self,
        trigger: &str,
        max_objects: u64,
        due_ms: i64,
        lease: Duration,
    ) -> Result<Option<BatchLease>>;

    /// Claims, for `lease`, a batch of `trigger` that was cut but has no job, whose lease ran
    /// out (the server that cut it stopped first). None when there is none.
    async fn claim_open_batch(&self, trigger: &str, lease: Duration) -> Result<Option<BatchLease>>;

    /// A batch's objects, in the order collected (then by key).
    async fn batch_objects(&self, batch: i64) -> Result<Vec<CollectedObject>>;

    /// Records what became of a held batch and ends the lease. False (nothing changed) when the
    /// lease was no longer held.
    async fn finish_batch(&self, lease: &BatchLease, outcome: &BatchOutcome) -> Result<bool>;

    /// A trigger's batches, oldest first.
    async fn batches(&self, trigger: &str) -> Result<Vec<BatchRecord>>;

    /// How many objects of `trigger` wait for a batch.
    async fn waiting_objects(&self, trigger: &str) -> Result<u64>;
}
