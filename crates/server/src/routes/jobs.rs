//! `/v1/jobs`: submit, list, show, cancel and retry jobs. Each handler checks what the request
//! says, asks the queue, and answers with the API's own views of the queue's records.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fresco_core::JobState;
use fresco_queue::{Admission, JobRecord, QueueError, Submitted};

use crate::api::{JobDetail, JobPage, JobView, ListParams, SubmitRequest};
use crate::auth::{too_many, Principal};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::AppState;

/// The header that makes a retried submission return the job the first one made.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Submits a job.
///
/// 201 with `Location` for a new job. 200 with the existing job when the `Idempotency-Key` was
/// used before (whatever that job's state), or when the same work (input, model, options,
/// output) is already queued or running.
#[utoipa::path(
    post,
    path = "/v1/jobs",
    tag = "jobs",
    request_body = SubmitRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header,
            description = "Retrying with the same key returns the job the first request made.",
            min_length = 1, max_length = 255, pattern = r"^[!-~]+$"),
    ),
    responses(
        (status = 201, description = "A new job was queued", body = JobView,
            headers(("Location" = String, description = "/v1/jobs/{id}"))),
        (status = 200, description = "The job this key (or the same work) already made", body = JobView),
        (status = 400, description = "Bad JSON, an unknown or invalid field; a `callback_url` whose host resolves to an address callbacks may not reach (code `callback-url-not-allowed`)", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 409, description = "A submitter's work is already queued by another token (code `duplicate-job-active`)", body = ErrorBody),
        (status = 422, description = "The input, output or model cannot be used", body = ErrorBody),
        (status = 429, description = "Too many submissions (code `rate-limited`), or too many unfinished jobs of this token (`token-queue-full`) or overall (`queue-full`); see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "A dependency (queue, ffprobe, ONNX Runtime) is unavailable", body = ErrorBody),
    )
)]
pub async fn submit_job(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SubmitRequest>,
) -> Result<Response, ApiError> {
    // Keys are per token: one client's key never finds another's job.
    let key = idempotency_key(&headers)?.map(|k| format!("token:{}:{k}", principal.name));
    request.validate()?;
    // A submitter's names resolve in its namespace; others' are answered as missing.
    let request = match &state.tenancy {
        Some(tenancy) => tenancy.scope(&principal, &request)?,
        None => request,
    };
    if let Err(wait) = state.auth.limits.check_submission(&principal.token_id) {
        let error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            format!(
                "token '{}' submits faster than this server allows; retry after the Retry-After seconds",
                principal.name
            ),
        );
        return Ok(too_many(error, wait));
    }
    // A repeat returns the job the key made before any check: by now that job may have written
    // the output, which the checks would refuse.
    if let Some(key) = &key {
        if let Some(earlier) = state.queue.job_by_idempotency_key(key).await? {
            return Ok((StatusCode::OK, Json(JobView::from(&earlier))).into_response());
        }
    }
    // Resolved and checked before anything is queued: no job made with a URL the server
    // will not call (see `outbound`).
    if let Some(url) = &request.callback_url {
        crate::outbound::check(url, &state.callbacks.policy)
            .await
            .map_err(|e| ApiError::bad_request("callback-url-not-allowed", e.to_string()))?;
    }
    let within = match &state.tenancy {
        Some(tenancy) => tenancy.rules(&principal),
        None => None,
    };
    let mut job = state.jobs.build_within(&request, within).await?;
    job.idempotency_key = key;
    let admission = Admission {
        owner: principal.name.clone(),
        max_active_per_owner: state.auth.max_active_per_token,
        max_active: state.auth.max_active,
        callback_url: request.callback_url.clone(),
    };
    let submitted = match state.queue.submit_owned(job, &admission).await {
        Ok(submitted) => submitted,
        Err(QueueError::CapReached(cap)) => return Ok(cap_reached(&principal, cap)),
        Err(e) => return Err(e.into()),
    };
    let record = state
        .queue
        .job(submitted.id())
        .await?
        .ok_or_else(|| ApiError::internal(format!("job {} vanished", submitted.id())))?;
    if !principal.may_see(&record) {
        return Err(ApiError::conflict(
            "duplicate-job-active",
            "the same work (input, model, options and output) is already queued or running for another token",
        ));
    }
    let view = JobView::from(&record);
    match submitted {
        Submitted::New(id) => {
            crate::routes::audit::record(&state, &principal.name, "submit", &id, None).await;
            // The job's log starts with the request that made it, so a client's
            // `x-request-id` leads from its own logs to the job's and the server's.
            let request_id = crate::hygiene::request_id(&headers);
            tracing::info!(job_id = %id, submitter = %principal.name, "job submitted");
            let line = format!("submitted by {} (request {request_id})", principal.name);
            if let Err(e) = state.queue.log(&id, None, &line).await {
                tracing::warn!(job_id = %id, "could not write the job's submitted line: {e}");
            }
            let location = format!("/v1/jobs/{id}");
            Ok((
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                Json(view),
            )
                .into_response())
        }
        Submitted::Existing(_) => Ok((StatusCode::OK, Json(view)).into_response()),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(
            "invalid-header",
            "Idempotency-Key: must be 1 to 255 visible ASCII characters",
        )
    };
    let text = value.to_str().map_err(|_| bad())?;
    if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(text.to_string()))
}

/// Lists jobs, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "jobs",
    params(ListParams),
    responses(
        (status = 200, description = "A page of jobs; `next` is the `before` of the next page", body = JobPage),
        (status = 400, description = "A bad query parameter", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<JobPage>, ApiError> {
    let limit = params.limit()?;
    let states: Vec<JobState> = params.state.into_iter().map(JobState::from).collect();
    // One more than asked tells whether another page exists, so `next` is null on the last one.
    let mut jobs = match principal.only_owner() {
        None => {
            state
                .queue
                .jobs_before(&states, limit + 1, params.before)
                .await?
        }
        Some(owner) => {
            state
                .queue
                .owned_jobs_before(owner, &states, limit + 1, params.before)
                .await?
        }
    };
    let more = jobs.len() > limit as usize;
    jobs.truncate(limit as usize);
    let next = if more {
        jobs.last().map(|j| j.seq)
    } else {
        None
    };
    Ok(Json(JobPage {
        jobs: jobs.iter().map(JobView::from).collect(),
        next,
    }))
}

/// One job with its tasks (plan, chunks, assemble), progress and errors.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job", body = JobDetail),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn get_job(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JobDetail>, ApiError> {
    let job = visible_job(&state, &principal, &id).await?;
    let tasks = state.queue.tasks(&id).await?;
    Ok(Json(JobDetail::new(&job, &tasks)))
}

/// Cancels a queued or running job; its workers drop its chunks within one lease.
///
/// Canceling a canceled job again answers 200 (so a retried request is harmless); a job that
/// already succeeded or failed answers 409.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/cancel",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job, now canceled", body = JobView),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job already succeeded or failed (code `job-finished`)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn cancel_job(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JobView>, ApiError> {
    let job = visible_job(&state, &principal, &id).await?;
    if state.queue.cancel(&id).await? {
        crate::routes::audit::record(&state, &principal.name, "cancel", &id, None).await;
    }
    // Workers sweep a canceled job's folder too; removing it now frees the disk sooner.
    fresco_store::system::remove_job_files(state.work_dir.as_deref(), state.system.as_ref(), &id)
        .await;
    let after = state
        .queue
        .job(&id)
        .await?
        .ok_or_else(|| ApiError::job_not_found(&id))?;
    match after.state {
        JobState::Canceled => Ok(Json(JobView::from(&after))),
        JobState::Succeeded | JobState::Failed => Err(ApiError::conflict(
            "job-finished",
            format!(
                "job {id} already {}; only queued or running jobs can be canceled",
                after.state
            ),
        )),
        JobState::Queued | JobState::Running => Err(ApiError::internal(format!(
            "job {id} is still {} after cancel (was {})",
            after.state, job.state
        ))),
    }
}

/// Queues a failed or canceled job again (its plan is kept; its chunks are scored again).
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/retry",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job, queued again", body = JobView),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job is not failed or canceled (code `job-not-retryable`), or the same work is queued or running in another job (code `duplicate-job-active`)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn retry_job(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JobView>, ApiError> {
    let job = visible_job(&state, &principal, &id).await?;
    if state.queue.retry(&id).await? {
        crate::routes::audit::record(&state, &principal.name, "retry", &id, None).await;
        let after = state
            .queue
            .job(&id)
            .await?
            .ok_or_else(|| ApiError::job_not_found(&id))?;
        return Ok(Json(JobView::from(&after)));
    }
    match job.state {
        JobState::Failed | JobState::Canceled => {
            let other = state.queue.active_job(&job.identity).await?;
            Err(ApiError::conflict(
                "duplicate-job-active",
                match other {
                    Some(other) => format!(
                        "job {id}: the same work is {} as job {}",
                        other.state, other.id
                    ),
                    None => format!("job {id} changed state meanwhile; try again"),
                },
            ))
        }
        JobState::Queued | JobState::Running | JobState::Succeeded => Err(ApiError::conflict(
            "job-not-retryable",
            format!(
                "job {id} is {}: only failed or canceled jobs can be retried",
                job.state
            ),
        )),
    }
}

/// The job with this id if `principal` may see it; 404 otherwise (a submitter is not told that
/// another token's job exists).
pub(crate) async fn visible_job(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<JobRecord, ApiError> {
    match state.queue.job(id).await? {
        Some(job) if principal.may_see(&job) => Ok(job),
        Some(_) | None => Err(ApiError::job_not_found(id)),
    }
}

/// 429 for a cap on unfinished jobs: retrying makes sense once some of them finish.
fn cap_reached(principal: &Principal, cap: fresco_queue::CapReached) -> Response {
    let error = match cap {
        fresco_queue::CapReached::Owner { active, cap } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "token-queue-full",
            format!(
                "token '{}' has {active} unfinished jobs, the most one token may have is {cap}; submit again when some have finished",
                principal.name
            ),
        ),
        fresco_queue::CapReached::Total { active, cap } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "queue-full",
            format!(
                "the queue holds {active} unfinished jobs, its cap is {cap}; submit again when some have finished"
            ),
        ),
    };
    too_many(error, CAP_RETRY_AFTER)
}

/// What Retry-After says when a cap on unfinished jobs is reached.
const CAP_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(30);
