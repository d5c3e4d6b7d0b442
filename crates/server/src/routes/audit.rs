//! `/v1/audit`: who (the token's name) submitted, canceled or retried which job, and who made or
//! revoked which token, and when; newest first, filtered by actor or target.

use axum::extract::State;
use axum::Json;
use fresco_queue::{AuditEntry, AuditFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::AppState;

/// Which entries.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only what this token (by name) did.
    #[param(max_length = 64)]
    pub actor: Option<String>,
    /// Only what was done to this job (id) or token (name).
    #[param(max_length = 255)]
    pub target: Option<String>,
    /// Only entries older than this id (the `next` of the previous page).
    pub before: Option<i64>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One audited action.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    pub id: i64,
    pub at_ms: i64,
    /// The token's name; null when done on the database directly (`fresco tokens`).
    pub actor: Option<String>,
    /// `submit`, `cancel`, `retry`, `token-create` or `token-revoke`.
    pub action: String,
    /// The job's id or the token's name.
    pub target: Option<String>,
    pub detail: Option<String>,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        AuditEntryView {
            id: e.id,
            at_ms: e.at_ms,
            actor: e.actor,
            action: e.action,
            target: e.target,
            detail: e.detail,
        }
    }
}

/// A page of the audit trail, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `before` for the next page; null on the last one.
    pub next: Option<i64>,
}

/// The audit trail.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "tokens",
    params(AuditParams),
    responses(
        (status = 200, description = "Entries, newest first", body = AuditPage),
        (status = 400, description = "A bad query parameter", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn audit_log(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = match params.limit {
        None => 100,
        Some(n @ 1..=1000) => n,
        Some(n) => {
            return Err(ApiError::bad_request(
                "invalid-query",
                format!("limit: must be between 1 and 1000, got {n}"),
            ))
        }
    };
    for (name, value, max) in [
        ("actor", &params.actor, 64),
        ("target", &params.target, 255),
    ] {
        if value.as_ref().is_some_and(|v| v.len() > max) {
            return Err(ApiError::bad_request(
                "invalid-query",
                format!("{name}: at most {max} bytes"),
            ));
        }
    }
    let filter = AuditFilter {
        actor: params.actor,
        target: params.target,
        before: params.before,
        limit: limit + 1,
    };
    let mut entries = state.queue.audit_log(&filter).await?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let next = if more {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(AuditEntryView::from).collect(),
        next,
    }))
}

/// Records an action of `actor`; a failure to record is logged, not answered (the action was
/// done).
pub async fn record(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    detail: Option<&str>,
) {
    let entry = fresco_queue::NewAudit {
        actor: Some(actor),
        action,
        target: Some(target),
        detail,
    };
    if let Err(e) = state.queue.audit(&entry).await {
        tracing::error!(error = %e, actor, action, target, "could not record an audit entry");
    }
}
