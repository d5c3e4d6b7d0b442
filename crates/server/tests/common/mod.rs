//! Helpers for the in-process API tests: a real SQLite queue in a temporary folder, a fake
//! [`JobFactory`] (no models, no ffmpeg), a queue that always fails, and a one-call request helper.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use fresco_core::{FrameRange, JobState, RetryBudgets};
use fresco_queue::{
    ClaimFilter, FailOutcome, JobRecord, LeaseStatus, NewJob, Queue, QueueError, Submitted,
    TaskLease, TaskRecord, WorkerRecord, WorkerStatus,
};
use fresco_server::{AppState, JobFactory, Rejection, SubmitRequest};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// A server state over a fresh SQLite queue; keep the folder alive as long as the state.
///
/// The queue holds an admin token, `token`; [`send`] and the helpers built on it present it with
/// every request made to this state's router, as an API client would. [`send_as`] chooses the
/// credentials (or none) instead.
pub struct TestApp {
    pub state: AppState,
    pub queue: Arc<dyn Queue>,
    /// The admin token's secret.
    pub token: String,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// The temporary folder of the queue's database.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

/// The admin token of each test app, by its queue's address: what [`send`] presents.
///
/// An address is reused once a test's queue is freed, so the newest entry for an address is
/// the live one: look up with `rfind` (a stale first match gave CI a 401 instead of a 400).
static ADMIN_TOKENS: std::sync::Mutex<Vec<(usize, String)>> = std::sync::Mutex::new(Vec::new());

fn queue_key(queue: &Arc<dyn Queue>) -> usize {
    Arc::as_ptr(queue) as *const () as usize
}

/// Makes a token of `role` named `name` in `queue`; returns its secret.
pub async fn make_token(queue: &dyn Queue, name: &str, role: fresco_queue::Role) -> String {
    let token = fresco_queue::NewToken {
        name: name.into(),
        role,
        expires_at_ms: None,
    };
    queue
        .create_token(&token, None)
        .await
        .expect("make a token")
        .secret
}

pub async fn app() -> TestApp {
    app_with(Arc::new(FakeFactory)).await
}

pub async fn app_with(factory: Arc<dyn JobFactory>) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("queue.db").display());
    let queue = fresco_queue::open(&url)
        .await
        .expect("open the SQLite queue");
    let token = make_token(queue.as_ref(), "test-admin", fresco_queue::Role::Admin).await;
    ADMIN_TOKENS
        .lock()
        .unwrap()
        .push((queue_key(&queue), token.clone()));
    TestApp {
        state: AppState::new(Arc::clone(&queue), factory),
        queue,
        token,
        _dir: dir,
    }
}

/// A response: status, headers and the body as JSON (Null when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// Asserts the JSON error shape, its status and its code; returns the message.
    pub fn error(&self, status: StatusCode, code: &str) -> String {
        assert_eq!(self.status, status, "wrong status: {self:?}");
        let error = &self.body["error"];
        assert_eq!(error["code"], code, "wrong code: {self:?}");
        let message = error["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message: {self:?}"));
        assert!(!message.is_empty());
        assert_eq!(
            self.body.as_object().map(|o| o.len()),
            Some(1),
            "extra fields: {self:?}"
        );
        assert_eq!(
            self.headers
                .get(header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap()),
            Some("application/json"),
            "error not JSON: {self:?}"
        );
        message.to_string()
    }
}

/// Sends one request to a fresh router over `state`, with the admin token of the test app
/// whose state it is (unless the request has an Authorization header already).
pub async fn send(state: &AppState, mut request: Request<Body>) -> Reply {
    let key = queue_key(&state.queue);
    let token = ADMIN_TOKENS
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(k, _)| *k == key)
        .map(|(_, t)| t.clone());
    if let Some(token) = token {
        if !request.headers().contains_key(header::AUTHORIZATION) {
            request.headers_mut().insert(
                header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
        }
    }
    send_raw(state, request).await
}

/// Sends one request with `token` as its bearer token, or with no credentials at all.
pub async fn send_as(state: &AppState, token: Option<&str>, mut request: Request<Body>) -> Reply {
    request.headers_mut().remove(header::AUTHORIZATION);
    if let Some(token) = token {
        request.headers_mut().insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
    }
    send_raw(state, request).await
}

/// Sends one request exactly as it is.
pub async fn send_raw(state: &AppState, request: Request<Body>) -> Reply {
    let response = fresco_server::router(state.clone())
        .oneshot(request)
        .await
        .expect("the router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    Reply {
        status,
        headers,
        body,
        text,
    }
}

pub async fn get(state: &AppState, uri: &str) -> Reply {
    send(state, Request::get(uri).body(Body::empty()).unwrap()).await
}

pub async fn post_empty(state: &AppState, uri: &str) -> Reply {
    send(state, Request::post(uri).body(Body::empty()).unwrap()).await
}

/// POSTs `body` as JSON, with an Idempotency-Key when given.
pub async fn post_json(state: &AppState, uri: &str, body: &Value, key: Option<&str>) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    send(state, request.body(Body::from(body.to_string())).unwrap()).await
}

/// A valid submission for the fake factory.
pub fn submission(n: u32) -> Value {
    serde_json::json!({
        "input": format!("/videos/in-{n}.mp4"),
        "output": format!("/videos/out-{n}.mp4"),
        "style": "mosaic",
    })
}

/// Accepts every valid submission without touching files or models; an input ending in
/// `.txt` is refused as the local factory refuses what is not a video.
pub struct FakeFactory;

#[async_trait]
impl JobFactory for FakeFactory {
    async fn build(&self, request: &SubmitRequest) -> Result<NewJob, Rejection> {
        if request.input.ends_with(".txt") {
            return Err(Rejection::Unusable {
                code: "input-not-media",
                message: format!("{}: not a media file", request.input),
            });
        }
        let identity = serde_json::json!([
            request.input,
            request.output,
            request.style,
            request.model,
            request.codec,
            request.crf,
            request.temporal,
        ])
        .to_string();
        Ok(NewJob {
            identity,
            input: request.input.clone(),
            output: request.output.clone(),
            // What the tests read back of the spec: whether the job is steadied.
            spec: match request.temporal {
                true => r#"{"options":{"temporal":true}}"#.into(),
                false => "{}".into(),
            },
            device_kind: fresco_core::DeviceKind::Cpu,
            priority: request.priority,
            budgets: RetryBudgets {
                max_attempts: request.max_attempts.unwrap_or(3),
                max_expiries: request.max_expiries.unwrap_or(10),
            },
            idempotency_key: None,
        })
    }
}

/// Fails the plan task of `job` for good, so the job is failed.
pub async fn fail_job(queue: &dyn Queue, job: &str) {
    let filter = ClaimFilter {
        jobs: Some(vec![job.to_string()]),
        ..Default::default()
    };
    let lease = queue
        .claim("test-worker", Duration::from_secs(60), &filter)
        .await
        .unwrap()
        .expect("a claimable plan task");
    let outcome = queue
        .fail(&lease, "input is broken", false, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(outcome, FailOutcome::JobFailed);
}

/// A queue whose every call fails, as one whose database is down.
pub struct BrokenQueue;

fn down<T>() -> Result<T, QueueError> {
    Err(QueueError::Corrupt("the database is down (test)".into()))
}

#[async_trait]
impl fresco_queue::Jobs for BrokenQueue {
    async fn submit(&self, _: NewJob) -> fresco_queue::Result<Submitted> {
        down()
    }
    async fn cancel(&self, _: &str) -> fresco_queue::Result<bool> {
        down()
    }
    async fn retry(&self, _: &str) -> fresco_queue::Result<bool> {
        down()
    }
    async fn job(&self, _: &str) -> fresco_queue::Result<Option<JobRecord>> {
        down()
    }
    async fn jobs_before(
        &self,
        _: &[JobState],
        _: u32,
        _: Option<i64>,
    ) -> fresco_queue::Result<Vec<JobRecord>> {
        down()
    }
    async fn job_by_idempotency_key(&self, _: &str) -> fresco_queue::Result<Option<JobRecord>> {
        down()
    }
    async fn active_job(&self, _: &str) -> fresco_queue::Result<Option<JobRecord>> {
        down()
    }
    async fn tasks(&self, _: &str) -> fresco_queue::Result<Vec<TaskRecord>> {
        down()
    }
}

#[async_trait]
impl fresco_queue::Leases for BrokenQueue {
    async fn claim(
        &self,
        _: &str,
        _: Duration,
        _: &ClaimFilter,
    ) -> fresco_queue::Result<Option<TaskLease>> {
        down()
    }
    async fn heartbeat(&self, _: &TaskLease, _: Duration) -> fresco_queue::Result<LeaseStatus> {
        down()
    }
    async fn checkpoint(&self, _: &TaskLease, _: &str) -> fresco_queue::Result<LeaseStatus> {
        down()
    }
    async fn complete_plan(
        &self,
        _: &TaskLease,
        _: &str,
        _: u64,
        _: &[FrameRange],
    ) -> fresco_queue::Result<LeaseStatus> {
        down()
    }
    async fn complete_chunk(&self, _: &TaskLease) -> fresco_queue::Result<LeaseStatus> {
        down()
    }
    async fn complete_job(&self, _: &TaskLease) -> fresco_queue::Result<LeaseStatus> {
        down()
    }
    async fn fail(
        &self,
        _: &TaskLease,
        _: &str,
        _: bool,
        _: Duration,
    ) -> fresco_queue::Result<FailOutcome> {
        down()
    }
    async fn release(&self, _: &TaskLease) -> fresco_queue::Result<()> {
        down()
    }
    async fn expire_worker(&self, _: &str) -> fresco_queue::Result<u64> {
        down()
    }
    async fn wait_for_work(&self, timeout: Duration) {
        tokio::time::sleep(timeout).await
    }
}

#[async_trait]
impl fresco_queue::Workers for BrokenQueue {
    async fn worker_seen(&self, _: &WorkerStatus) -> fresco_queue::Result<()> {
        down()
    }
    async fn workers(&self, _: Duration) -> fresco_queue::Result<Vec<WorkerRecord>> {
        down()
    }
}

#[async_trait]
impl fresco_queue::JobLogs for BrokenQueue {
    async fn log(&self, _: &str, _: Option<&str>, _: &str) -> fresco_queue::Result<()> {
        down()
    }
    async fn job_log(
        &self,
        _: &str,
        _: Option<i64>,
        _: u32,
    ) -> fresco_queue::Result<Vec<fresco_queue::LogLine>> {
        down()
    }
    async fn save_preview(&self, _: &fresco_queue::Preview) -> fresco_queue::Result<bool> {
        down()
    }
    async fn preview(&self, _: &str) -> fresco_queue::Result<Option<fresco_queue::Preview>> {
        down()
    }
}

#[async_trait]
impl fresco_queue::Stats for BrokenQueue {
    async fn stats(
        &self,
        _: Duration,
        _: Duration,
    ) -> fresco_queue::Result<fresco_queue::QueueStats> {
        down()
    }
}

#[async_trait]
impl fresco_queue::Deliveries for BrokenQueue {
    async fn add_delivery(&self, _: &str, _: &str) -> fresco_queue::Result<i64> {
        down()
    }
    async fn claim_delivery(
        &self,
        _: Duration,
    ) -> fresco_queue::Result<Option<fresco_queue::DeliveryLease>> {
        down()
    }
    async fn finish_delivery(
        &self,
        _: &fresco_queue::DeliveryLease,
        _: &fresco_queue::DeliveryOutcome,
    ) -> fresco_queue::Result<bool> {
        down()
    }
    async fn deliveries(&self, _: &str) -> fresco_queue::Result<Vec<fresco_queue::DeliveryRecord>> {
        down()
    }
}

#[async_trait]
impl fresco_queue::Tokens for BrokenQueue {
    async fn create_token(
        &self,
        _: &fresco_queue::NewToken,
        _: Option<&str>,
    ) -> fresco_queue::Result<fresco_queue::IssuedToken> {
        down()
    }
    async fn tokens(&self) -> fresco_queue::Result<Vec<fresco_queue::TokenRecord>> {
        down()
    }
    async fn revoke_token(
        &self,
        _: &str,
        _: Option<&str>,
    ) -> fresco_queue::Result<Option<fresco_queue::TokenRecord>> {
        down()
    }
    async fn set_token_shares(
        &self,
        _: &str,
        _: &[String],
        _: Option<&str>,
    ) -> fresco_queue::Result<Option<fresco_queue::TokenRecord>> {
        down()
    }
    async fn authenticate(
        &self,
        _: &str,
    ) -> fresco_queue::Result<Option<fresco_queue::TokenRecord>> {
        down()
    }
}

#[async_trait]
impl fresco_queue::Sessions for BrokenQueue {
    async fn open_session(&self, _: &str, _: &str, _: &str, _: i64) -> fresco_queue::Result<()> {
        down()
    }
    async fn session(&self, _: &str) -> fresco_queue::Result<Option<fresco_queue::SessionRecord>> {
        down()
    }
    async fn close_session(&self, _: &str) -> fresco_queue::Result<bool> {
        down()
    }
}

#[async_trait]
impl fresco_queue::OwnedJobs for BrokenQueue {
    async fn submit_owned(
        &self,
        _: NewJob,
        _: &fresco_queue::Admission,
    ) -> fresco_queue::Result<Submitted> {
        down()
    }
    async fn owned_jobs_before(
        &self,
        _: &str,
        _: &[JobState],
        _: u32,
        _: Option<i64>,
    ) -> fresco_queue::Result<Vec<JobRecord>> {
        down()
    }
    async fn active_jobs(&self, _: Option<&str>) -> fresco_queue::Result<u64> {
        down()
    }
}

#[async_trait]
impl fresco_queue::AuditTrail for BrokenQueue {
    async fn audit(&self, _: &fresco_queue::NewAudit<'_>) -> fresco_queue::Result<()> {
        down()
    }
    async fn audit_log(
        &self,
        _: &fresco_queue::AuditFilter,
    ) -> fresco_queue::Result<Vec<fresco_queue::AuditEntry>> {
        down()
    }
}

#[async_trait]
impl fresco_queue::DatasetItems for BrokenQueue {
    async fn clear_items(&self, _: &TaskLease) -> fresco_queue::Result<LeaseStatus> {
        down()
    }
    async fn pin_items(
        &self,
        _: &TaskLease,
        _: &[fresco_queue::PinnedItem],
    ) -> fresco_queue::Result<LeaseStatus> {
        down()
    }
    async fn items(
        &self,
        _: &str,
        _: FrameRange,
    ) -> fresco_queue::Result<Vec<fresco_queue::PinnedItem>> {
        down()
    }
    async fn record_failures(
        &self,
        _: &TaskLease,
        _: &[(u64, String)],
    ) -> fresco_queue::Result<LeaseStatus> {
        down()
    }
    async fn item_counts(&self, _: &str) -> fresco_queue::Result<fresco_queue::ItemCounts> {
        down()
    }
    async fn failed_items(
        &self,
        _: &[String],
    ) -> fresco_queue::Result<std::collections::HashMap<String, u64>> {
        down()
    }
}

#[async_trait]
impl fresco_queue::TriggerBatches for BrokenQueue {
    async fn collect_objects(
        &self,
        _: &str,
        _: &[fresco_queue::CollectedObject],
    ) -> fresco_queue::Result<u64> {
        down()
    }
    async fn cut_batch(
        &self,
        _: &str,
        _: u64,
        _: i64,
        _: Duration,
    ) -> fresco_queue::Result<Option<fresco_queue::BatchLease>> {
        down()
    }
    async fn claim_open_batch(
        &self,
        _: &str,
        _: Duration,
    ) -> fresco_queue::Result<Option<fresco_queue::BatchLease>> {
        down()
    }
    async fn batch_objects(
        &self,
        _: i64,
    ) -> fresco_queue::Result<Vec<fresco_queue::CollectedObject>> {
        down()
    }
    async fn finish_batch(
        &self,
        _: &fresco_queue::BatchLease,
        _: &fresco_queue::BatchOutcome,
    ) -> fresco_queue::Result<bool> {
        down()
    }
    async fn batches(&self, _: &str) -> fresco_queue::Result<Vec<fresco_queue::BatchRecord>> {
        down()
    }
    async fn waiting_objects(&self, _: &str) -> fresco_queue::Result<u64> {
        down()
    }
}
