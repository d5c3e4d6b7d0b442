//! `/v1/events/azure` and `/v1/events/s3`: storage services push "object created" events here,
//! and each new video becomes one job (idempotent per object and ETag), so no polling is needed
//! where events exist; an image under the dataset trigger's prefix (`--dataset-watch`) is
//! collected into its next dataset job instead ([`crate::dataset_watch`]). Parsing lives in
//! [`crate::events`].

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fresco_queue::Submitted;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::api::SubmitRequest;
use crate::error::{ApiError, ErrorBody};
use crate::events::{parse_event_grid, parse_s3, CreatedObject, EventAction};
use crate::factory::Rejection;
use crate::AppState;

/// What storage events turn into: outputs under a prefix, styled with one style or model.
#[derive(Debug, Clone)]
pub struct EventTrigger {
    /// Output location prefix (a folder, `az://container/prefix` or `s3://bucket/prefix`).
    pub output: String,
    pub style: Option<String>,
    pub model: Option<String>,
    /// The jobs are steadied (`"temporal": true` in each job's submission).
    pub temporal: bool,
}

/// Event Grid's handshake answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ValidationResponse {
    #[serde(rename = "validationResponse")]
    pub validation_response: String,
}

/// What became of each created object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventOutcome {
    /// The object, as `az://...` or `s3://...`.
    pub input: String,
    /// Its job (new, or made by an earlier delivery of the same event).
    pub job: Option<String>,
    /// An image under the dataset trigger's prefix: collected into its next dataset job
    /// (`job` is then null; a redelivery collects it once).
    #[serde(default)]
    pub collected: bool,
    /// Why no job was made.
    pub error: Option<String>,
}

/// The answer to a delivery of "created" events.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventReply {
    pub objects: Vec<EventOutcome>,
}

/// Azure Event Grid deliveries (Event Grid schema), including the subscription handshake.
#[utoipa::path(
    post,
    path = "/v1/events/azure",
    tag = "events",
    request_body(content = Value, description = "An array of Event Grid events", content_type = "application/json"),
    responses(
        (status = 200, description = "The subscription handshake's answer", body = ValidationResponse),
        (status = 202, description = "Each created object and its job", body = EventReply),
        (status = 400, description = "Not an Event Grid delivery (nothing was done)", body = ErrorBody),
        (status = 404, description = "Event routes are off: the server has no event secret (code `events-disabled`)", body = ErrorBody),
        (status = 409, description = "This server has no event trigger configured", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn azure_events(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let value = parse_body(&body)?;
    let action = parse_event_grid(&value).map_err(|e| ApiError::bad_request("bad-event", e.0))?;
    act(&state, action).await
}

/// S3 event notifications, delivered by SNS (confirmation and notifications) or EventBridge.
#[utoipa::path(
    post,
    path = "/v1/events/s3",
    tag = "events",
    request_body(content = Value, description = "An SNS message or an EventBridge event", content_type = "application/json"),
    responses(
        (status = 200, description = "The SNS subscription was confirmed"),
        (status = 202, description = "Each created object and its job", body = EventReply),
        (status = 400, description = "Not an S3 event (nothing was done)", body = ErrorBody),
        (status = 404, description = "Event routes are off: the server has no event secret (code `events-disabled`)", body = ErrorBody),
        (status = 409, description = "This server has no event trigger configured", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 502, description = "Confirming the SNS subscription failed (code `subscription-confirm-failed`; the detail is in the server's log only)", body = ErrorBody),
    )
)]
pub async fn s3_events(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let value = parse_body(&body)?;
    let action = parse_s3(&value).map_err(|e| ApiError::bad_request("bad-event", e.0))?;
    act(&state, action).await
}

/// The time limit of an SNS confirmation, and the time every failed one is answered at.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// Fetches an SNS SubscribeURL (checked by [`crate::events::check_sns_url`]): redirects are
/// not followed, the addresses are checked before connecting, and any answer but 2xx is a
/// failure.
fn confirm_subscription(url: &str) -> Result<(), String> {
    // AWS's names resolve to public addresses; should this network's DNS say otherwise, the
    // request goes nowhere internal: the addresses are checked as a callback's are, and the
    // connection goes to those checked.
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    let checked = crate::outbound::check_blocking(&parsed, &Default::default()).map_err(|e| e.0)?;
    match checked
        .agent(CONFIRM_TIMEOUT)
        .get(checked.url.as_str())
        .call()
    {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("answered HTTP {}", response.status().as_u16())),
        Err(e) => Err(e.to_string()),
    }
}

/// SNS posts JSON as `text/plain`, so the body is parsed whatever its content type says.
fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("bad-json", format!("the body is not JSON: {e}")))
}

async fn act(state: &AppState, action: EventAction) -> Result<Response, ApiError> {
    match action {
        EventAction::Validate { code } => Ok((
            StatusCode::OK,
            Json(ValidationResponse {
                validation_response: code,
            }),
        )
            .into_response()),
        EventAction::ConfirmSubscription { url } => {
            let started = tokio::time::Instant::now();
            let fetched = tokio::task::spawn_blocking(move || confirm_subscription(&url))
                .await
                .map_err(ApiError::internal)?;
            match fetched {
                Ok(()) => Ok(StatusCode::OK.into_response()),
                Err(detail) => {
                    // The detail (status, connect error) stays in the log: the client must not
                    // learn from the answer what the server reached, or how it answered; nor
                    // from its time, so every failure is answered when the time limit ends.
                    tracing::warn!(error = %detail, "confirming an SNS subscription failed");
                    tokio::time::sleep_until(started + CONFIRM_TIMEOUT).await;
                    Err(ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "subscription-confirm-failed",
                        "confirming the SNS subscription failed; see the server's log",
                    ))
                }
            }
        }
        EventAction::Created(objects) => {
            if state.events.is_none() && state.dataset_watch.is_none() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "no-trigger",
                    "this server makes no jobs from storage events: start it with --event-output \
                     or --dataset-watch",
                ));
            }
            let mut outcomes = Vec::new();
            for object in objects {
                outcomes.push(route(state, &object).await);
            }
            Ok((StatusCode::ACCEPTED, Json(EventReply { objects: outcomes })).into_response())
        }
    }
}

/// An image under the dataset trigger's prefix is collected; anything else goes to the video
/// trigger, if there is one.
async fn route(state: &AppState, object: &CreatedObject) -> EventOutcome {
    if let Some(watch) = &state.dataset_watch {
        if let Some(collected) = watch.collect_event(&object.url, &object.etag).await {
            return EventOutcome {
                input: object.url.clone(),
                job: None,
                collected: collected.is_ok(),
                error: collected.err(),
            };
        }
    }
    match &state.events {
        Some(trigger) => submit(state, trigger, object).await,
        None => EventOutcome {
            input: object.url.clone(),
            job: None,
            collected: false,
            error: Some(
                "no trigger takes it: it is no image under --dataset-watch, and this server \
                 makes no jobs of other objects (--event-output)"
                    .into(),
            ),
        },
    }
}

async fn submit(state: &AppState, trigger: &EventTrigger, object: &CreatedObject) -> EventOutcome {
    let refused = |error: String| EventOutcome {
        input: object.url.clone(),
        job: None,
        collected: false,
        error: Some(error),
    };
    let key = format!("event:{}:{}", object.url, object.etag);
    if let Ok(Some(earlier)) = state.queue.job_by_idempotency_key(&key).await {
        return EventOutcome {
            input: object.url.clone(),
            job: Some(earlier.id),
            collected: false,
            error: None,
        };
    }
    let request: SubmitRequest = match serde_json::from_value(serde_json::json!({
        "input": object.url,
        "output": output_for(trigger, &object.url),
        "style": trigger.style,
        "model": trigger.model,
        "temporal": trigger.temporal,
    })) {
        Ok(request) => request,
        Err(e) => return refused(format!("cannot make a job of it: {e}")),
    };
    let mut job = match state.jobs.build(&request).await {
        Ok(job) => job,
        Err(Rejection::BadField { message, .. } | Rejection::Unusable { message, .. }) => {
            return refused(message)
        }
        Err(other) => {
            tracing::warn!("event for {}: {other}", object.url);
            return refused(
                "the server cannot make jobs right now; deliver the event again".into(),
            );
        }
    };
    job.idempotency_key = Some(key);
    match state.queue.submit(job).await {
        Ok(Submitted::New(id) | Submitted::Existing(id)) => EventOutcome {
            input: object.url.clone(),
            job: Some(id),
            collected: false,
            error: None,
        },
        Err(e) => {
            tracing::warn!("event for {}: {e}", object.url);
            refused("the job queue is unavailable; deliver the event again".into())
        }
    }
}

/// `OUTPUT/PATH/STEM.STYLE.EXT` for an object `SCHEME://CONTAINER/PATH/STEM.EXT`.
pub fn output_for(trigger: &EventTrigger, url: &str) -> String {
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(_, path)| path)
        .unwrap_or(url);
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "mp4"));
    let tag = match (&trigger.style, &trigger.model) {
        (Some(style), _) => style.clone(),
        (None, Some(model)) => std::path::Path::new(model)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("styled")
            .to_string(),
        (None, None) => "styled".into(),
    };
    let base = trigger.output.trim_end_matches('/');
    if dir.is_empty() {
        format!("{base}/{stem}.{tag}.{ext}")
    } else {
        format!("{base}/{dir}/{stem}.{tag}.{ext}")
    }
}
