//! `/v1/workers`: the workers that announced themselves recently, what each is doing, and
//! which went silent.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// Workers not heard from for this long are left out of the list.
const LISTED_FOR: Duration = Duration::from_secs(24 * 3600);
/// A busy or idle worker not heard from for this long is marked silent: workers announce
/// themselves at least every 10 s when idle and every third of a lease when busy.
const SILENT_AFTER_MS: i64 = 60_000;

/// One worker.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkerView {
    /// `host:pid:n`.
    pub id: String,
    pub host: String,
    /// `cpu`, `cuda:0`, ...
    pub device: String,
    /// `idle`, `busy` or `stopped`.
    pub state: String,
    /// What it works on, e.g. `score chunk 3 of job ID`.
    pub current: Option<String>,
    pub started_at_ms: i64,
    /// Its last heartbeat or announcement.
    pub last_seen_ms: i64,
    /// Not stopped, yet not heard from for a minute: died or lost contact.
    pub silent: bool,
}

/// The list of workers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkerList {
    pub workers: Vec<WorkerView>,
}

/// Workers heard from in the last day, most recently seen first.
#[utoipa::path(
    get,
    path = "/v1/workers",
    tag = "workers",
    responses(
        (status = 200, description = "The workers", body = WorkerList),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn list_workers(
    State(state): State<AppState>,
    principal: crate::auth::Principal,
) -> Result<Json<WorkerList>, ApiError> {
    let visible =
        crate::dashboard::view::visible_current(&*state.queue, principal.only_owner()).await?;
    let records = state.queue.workers(LISTED_FOR).await?;
    let newest = records.iter().map(|w| w.last_seen_ms).max().unwrap_or(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
        .max(newest);
    let workers = records
        .into_iter()
        .map(|w| WorkerView {
            silent: w.state != "stopped" && now - w.last_seen_ms > SILENT_AFTER_MS,
            id: w.name,
            host: w.host,
            device: w.device,
            state: w.state,
            current: visible(w.current),
            started_at_ms: w.started_at_ms,
            last_seen_ms: w.last_seen_ms,
        })
        .collect();
    Ok(Json(WorkerList { workers }))
}
