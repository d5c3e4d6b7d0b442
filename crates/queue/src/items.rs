//! A dataset job's pinned items ([`DatasetItems`]): what its plan task listed, stored so that
//! every chunk, retry and rerun scores the same set, and the failures its chunks report, for
//! the job's counts. Both backends run the same statements (`shared/items.rs`).

use std::collections::HashMap;

use async_trait::async_trait;
use fresco_core::FrameRange;
use serde::Serialize;

use crate::{LeaseStatus, Result, TaskLease};

/// One item of a dataset as its plan listed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinnedItem {
    /// Its place in the listing, from 0: the order of the output's rows.
    pub index: u64,
    /// The key relative to the folder or prefix, or the manifest's line.
    pub key: String,
    pub size: u64,
    /// What tells a rewritten object apart: its ETag, or `mtime:MS` for a local file.
    pub version: Option<String>,
}

/// What a dataset job's items came to so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ItemCounts {
    /// Items pinned.
    pub total: u64,
    /// Items that chunks reported as error rows.
    pub failed: u64,
}

/// Items per statement batch when a plan pins its listing.
pub const PIN_BATCH: usize = 1000;

/// Pinning and reading a dataset's items. Writes are fenced by the lease of the task that makes
/// them: a worker whose lease moved on changes nothing ([`LeaseStatus::Lost`]).
#[async_trait]
pub trait DatasetItems: Send + Sync {
    /// Forgets what an earlier try of this plan task pinned.
    async fn clear_items(&self, lease: &TaskLease) -> Result<LeaseStatus>;

    /// Pins `items` (a batch of the listing, at most [`PIN_BATCH`] for one statement's worth).
    async fn pin_items(&self, lease: &TaskLease, items: &[PinnedItem]) -> Result<LeaseStatus>;

    /// The pinned items of `job` with an index in `range`, in order.
    async fn items(&self, job: &str, range: FrameRange) -> Result<Vec<PinnedItem>>;

    /// Records which items of the lease's chunk failed, and with what kind of error (those not
    /// named scored): the chunk's earlier tries are forgotten.
    async fn record_failures(
        &self,
        lease: &TaskLease,
        failures: &[(u64, String)],
    ) -> Result<LeaseStatus>;

    /// Items pinned and items failed.
    async fn item_counts(&self, job: &str) -> Result<ItemCounts>;

    /// Items failed so far of each of `jobs` that has any (a job absent from the map has none),
    /// read from an index of the failures alone: cheap enough for a page that refreshes every
    /// second over jobs of millions of items.
    async fn failed_items(&self, jobs: &[String]) -> Result<HashMap<String, u64>>;
}
