//! HTTP hygiene, in process: a request id on every answer (kept when a caller's is sound,
//! replaced otherwise) that the request's log lines and the job's log carry; a request timeout
//! that answers JSON on bounded routes and leaves uploads and streams alone; security headers
//! on the dashboard and every other answer.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use fresco_queue::NewJob;
use fresco_server::hygiene::{self, CONTENT_SECURITY_POLICY, REQUEST_ID, STREAMING};
use fresco_server::{JobFactory, Rejection, SubmitRequest};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn id_of(reply: &Reply) -> String {
    reply
        .headers
        .get(REQUEST_ID)
        .unwrap_or_else(|| panic!("no x-request-id: {reply:?}"))
        .to_str()
        .unwrap()
        .to_string()
}

/// Sends a GET with the given x-request-id headers (none, one or several), no credentials;
/// the body as text (pages are HTML).
async fn get_with_ids(app: &TestApp, uri: &str, ids: &[&str]) -> Reply {
    let mut request = Request::get(uri);
    for id in ids {
        request = request.header(REQUEST_ID, *id);
    }
    let response = fresco_server::router(app.state.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Reply {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        text,
    }
}

#[tokio::test]
async fn every_answer_has_a_request_id_whatever_its_status() {
    let app = app().await;
    let answers = [
        ("/healthz", StatusCode::OK),
        ("/no/such/route", StatusCode::NOT_FOUND),
        ("/v1/jobs", StatusCode::UNAUTHORIZED),
        ("/ui/login", StatusCode::OK),
        ("/", StatusCode::SEE_OTHER),
    ];
    let mut seen = std::collections::HashSet::new();
    for (uri, status) in answers {
        let reply = get_with_ids(&app, uri, &[]).await;
        assert_eq!(reply.status, status, "{uri}: {reply:?}");
        let id = id_of(&reply);
        assert!(is_uuid(&id), "{uri}: not a UUID: {id}");
        assert!(seen.insert(id), "{uri}: the same id twice");
    }
    // An authenticated API answer too.
    let reply = get(&app.state, "/v1/jobs").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(is_uuid(&id_of(&reply)));
}

#[tokio::test]
async fn a_sound_caller_id_is_kept_and_an_unsound_one_replaced() {
    let app = app().await;
    for sound in [
        "abc-123",
        "trace:4bf92f3577b34da6.a3ce929d0e0e4736_01",
        &"x".repeat(128),
    ] {
        let reply = get_with_ids(&app, "/healthz", &[sound]).await;
        assert_eq!(id_of(&reply), sound);
    }
    let too_long = "y".repeat(129);
    for unsound in [
        too_long.as_str(),
        "has space",
        "semi;colon",
        "quote\"d",
        "new%0Aline",
        "<script>",
    ] {
        let reply = get_with_ids(&app, "/healthz", &[unsound]).await;
        let id = id_of(&reply);
        assert!(is_uuid(&id), "{unsound:?} was kept as {id:?}");
    }
    // Two ids: neither is trusted.
    let reply = get_with_ids(&app, "/healthz", &["one", "two"]).await;
    assert!(is_uuid(&id_of(&reply)), "{reply:?}");
}

/// Log lines written while the guard lives, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn the_request_id_is_in_the_servers_log_lines_and_the_jobs_log() {
    let app = app().await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut request = Request::post("/v1/jobs")
        .header(header::CONTENT_TYPE, "application/json")
        .header(REQUEST_ID, "client-req-42")
        .body(Body::from(submission(1).to_string()))
        .unwrap();
    request.headers_mut().remove(header::AUTHORIZATION);
    let reply = send(&app.state, request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(id_of(&reply), "client-req-42");
    let job = reply.body["id"].as_str().unwrap().to_string();

    let logged = captured.text();
    let line = logged
        .lines()
        .find(|l| l.contains("job submitted"))
        .unwrap_or_else(|| panic!("no 'job submitted' line:\n{logged}"));
    assert!(line.contains("request_id=client-req-42"), "{line}");
    assert!(line.contains("route=/v1/jobs"), "{line}");

    let logs = get(&app.state, &format!("/v1/jobs/{job}/logs")).await;
    let first = logs.body["lines"][0]["message"].as_str().unwrap();
    assert_eq!(first, "submitted by test-admin (request client-req-42)");

    // Without an id of its own, the job's log names the one the server made.
    let reply = post_json(&app.state, "/v1/jobs", &submission(2), None).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let made = id_of(&reply);
    let job = reply.body["id"].as_str().unwrap();
    let logs = get(&app.state, &format!("/v1/jobs/{job}/logs")).await;
    assert_eq!(
        logs.body["lines"][0]["message"],
        format!("submitted by test-admin (request {made})").as_str()
    );
}

/// A factory that takes its time: a submission that outlasts the request timeout.
struct SlowFactory(Duration);

#[async_trait]
impl JobFactory for SlowFactory {
    async fn build(&self, request: &SubmitRequest) -> Result<NewJob, Rejection> {
        tokio::time::sleep(self.0).await;
        FakeFactory.build(request).await
    }
}

#[tokio::test]
async fn a_request_past_the_timeout_is_answered_408_request_timeout() {
    let mut app = app_with(Arc::new(SlowFactory(Duration::from_secs(3)))).await;
    app.state.request_timeout = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let reply = post_json(&app.state, "/v1/jobs", &submission(1), None).await;
    let message = reply.error(StatusCode::REQUEST_TIMEOUT, "request-timeout");
    assert!(message.contains("timeout"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(is_uuid(&id_of(&reply)));
    // Nothing was queued.
    let listed = get(&app.state, "/v1/jobs").await;
    assert_eq!(
        listed.body["jobs"].as_array().unwrap().len(),
        0,
        "{listed:?}"
    );
    // The same submission within the limit goes through.
    let mut fast = app_with(Arc::new(SlowFactory(Duration::from_millis(50)))).await;
    fast.state.request_timeout = Duration::from_secs(5);
    let reply = post_json(&fast.state, "/v1/jobs", &submission(1), None).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
}

#[test]
fn the_routes_without_a_timeout_are_the_streaming_ones_and_exist() {
    let all: Vec<_> = fresco_server::routes::all_routes().collect();
    for (method, path) in STREAMING {
        assert!(
            all.iter().any(|r| r.method == *method && r.path == *path),
            "{method} {path} is listed as streaming but is no route"
        );
    }
    let untimed: Vec<String> = all
        .iter()
        .filter(|r| !hygiene::has_timeout(r))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        untimed,
        [
            "PUT /v1/objects/{*key}",
            "GET /v1/objects/{*key}",
            "GET /ui/events",
            "GET /ui/jobs/{id}/events"
        ]
    );
    for route in &all {
        if route.path == "/v1/jobs" || route.path == "/metrics" || route.path == "/" {
            assert!(
                hygiene::has_timeout(route),
                "{} {}",
                route.method,
                route.path
            );
        }
    }
}

#[tokio::test]
async fn an_upload_slower_than_the_timeout_still_lands() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app().await;
    app.state.data = Some(fresco_store::Store::from_url(dir.path().to_str().unwrap()).unwrap());
    app.state.request_timeout = Duration::from_millis(200);
    let grant = post_json(
        &app.state,
        "/v1/uploads",
        &serde_json::json!({"name": "slow.mp4"}),
        None,
    )
    .await;
    assert_eq!(grant.status, StatusCode::CREATED, "{grant:?}");
    let url = grant.body["upload_url"].as_str().unwrap();
    let path_and_query = url[url.find("/v1/objects/").unwrap()..].to_string();
    // Four pieces, 150 ms apart: 600 ms in all, three times the timeout.
    let pieces = futures_util::stream::unfold(0u8, |n| async move {
        if n == 4 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        Some((Ok::<_, std::io::Error>(vec![n; 1024]), n + 1))
    });
    let stored = send_raw(
        &app.state,
        Request::builder()
            .method(Method::PUT)
            .uri(&path_and_query)
            .body(Body::from_stream(pieces))
            .unwrap(),
    )
    .await;
    assert_eq!(stored.status, StatusCode::CREATED, "{stored:?}");
    assert_eq!(stored.body["size"], 4096);
}

#[tokio::test]
async fn the_dashboard_and_every_answer_carry_the_security_headers() {
    let app = app().await;
    let expected = [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ];
    for uri in [
        "/ui/login",
        "/ui/assets/app.js",
        "/ui/assets/style.css",
        "/",
        "/ui/jobs/x",
        "/healthz",
        "/no/such/route",
        "/v1/jobs",
    ] {
        let reply = get_with_ids(&app, uri, &[]).await;
        for (name, value) in expected {
            assert_eq!(
                reply.headers.get(name).and_then(|v| v.to_str().ok()),
                Some(value),
                "{uri}: {name}: {reply:?}"
            );
        }
    }
    // The policy allows no inline script or style and no framing.
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-eval"));
    assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
    assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self'"));
}

#[tokio::test]
async fn the_pages_have_nothing_inline_that_the_policy_would_block() {
    let app = app().await;
    let login = get_with_ids(&app, "/ui/login", &[]).await;
    assert_eq!(login.status, StatusCode::OK);
    let pages = [
        login.text.clone(),
        include_str!("../src/dashboard/assets/index.html").to_string(),
        include_str!("../src/dashboard/assets/job.html").to_string(),
    ];
    for page in &pages {
        let lower = page.to_lowercase();
        for (i, _) in lower.match_indices("<script") {
            let tag = &lower[i..i + lower[i..].find('>').unwrap()];
            assert!(tag.contains(" src="), "an inline script: {tag}");
        }
        assert!(!lower.contains(" style="), "a style attribute");
        assert!(!lower.contains("<style"), "an inline style sheet");
        for handler in [
            " onclick=",
            " onload=",
            " onsubmit=",
            " onerror=",
            "javascript:",
        ] {
            assert!(!lower.contains(handler), "an inline handler: {handler}");
        }
    }
    let script = include_str!("../src/dashboard/assets/app.js");
    for refused in [
        "eval(",
        "new Function(",
        "innerHTML",
        "setAttribute(\"style\"",
    ] {
        assert!(!script.contains(refused), "app.js uses {refused}");
    }
}
