//! `/v1/jobs/{id}/logs`: a job's log as its workers write it (planning, every task attempt and
//! its worker, errors with ffmpeg's stderr tail, assembly), read on from a cursor.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::AppState;

/// Which lines.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// Only lines after the line with this id (the `next` of the previous answer).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// At most this many lines (default 500).
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<u32>,
}

/// One line.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogLineView {
    pub id: i64,
    pub at_ms: i64,
    /// The worker that wrote it.
    pub worker: Option<String>,
    pub message: String,
}

/// Lines, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogPage {
    pub lines: Vec<LogLineView>,
    /// Pass as `after` to read on (the last line's id; the same when nothing new came).
    pub next: Option<i64>,
}

/// A job's log.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/logs",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id"), LogParams),
    responses(
        (status = 200, description = "Log lines, oldest first", body = LogPage),
        (status = 400, description = "A bad query parameter", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn job_logs(
    State(state): State<AppState>,
    principal: crate::auth::Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<LogParams>,
) -> Result<Json<LogPage>, ApiError> {
    let limit = match params.limit {
        None => 500,
        Some(n @ 1..=5000) => n,
        Some(n) => {
            return Err(ApiError::bad_request(
                "invalid-query",
                format!("limit: must be between 1 and 5000, got {n}"),
            ))
        }
    };
    if params.after.is_some_and(|a| a < 0) {
        return Err(ApiError::bad_request(
            "invalid-query",
            "after: must not be negative",
        ));
    }
    crate::routes::jobs::visible_job(&state, &principal, &id).await?;
    let lines = state.queue.job_log(&id, params.after, limit).await?;
    let next = lines.last().map(|l| l.id).or(params.after);
    Ok(Json(LogPage {
        lines: lines
            .into_iter()
            .map(|l| LogLineView {
                id: l.id,
                at_ms: l.at_ms,
                worker: l.worker,
                message: l.message,
            })
            .collect(),
        next,
    }))
}
