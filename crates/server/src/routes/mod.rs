//! The router: every route, the body size limit, and JSON answers for unknown paths and methods.
//! A route added here must also be listed in [`crate::openapi::ApiDoc`]; the tests compare the two.

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::AppState;

pub mod events;
pub mod health;
pub mod jobs;
pub mod logs;
pub mod workers;

/// The largest JSON body accepted: a submission is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route of the API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/jobs", post(jobs::submit_job).get(jobs::list_jobs))
        .route("/v1/jobs/{id}", get(jobs::get_job))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel_job))
        .route("/v1/jobs/{id}/retry", post(jobs::retry_job))
        .route("/v1/jobs/{id}/logs", get(logs::job_logs))
        .route("/v1/workers", get(workers::list_workers))
        .route("/v1/events/azure", post(events::azure_events))
        .route("/v1/events/s3", post(events::s3_events))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(crate::openapi::openapi_json))
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route-not-found",
        "no such route; see /openapi.json",
    )
}

async fn no_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this route does not take that method; see /openapi.json",
    )
}
