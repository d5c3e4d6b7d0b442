//! Completion callbacks: a job submitted with a `callback_url` is POSTed there, signed, once it
//! ends. Internal addresses are refused at submission in every spelling (a local listener sees
//! no connection), an allowed host's redirect is not followed, a 500 is retried, the signature
//! verifies by an independent computation, the delivery outlives a server restart, and logs
//! never show the URL's path or query.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use common::*;
use fresco_queue::DeliveryState;
use fresco_server::outbound::CallbackPolicy;
use fresco_server::webhook::WebhookSecrets;
use hmac::{KeyInit as _, Mac as _};
use serde_json::{json, Value};

/// The signing secret of these tests, as an operator would write it.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What a receiver got: each request's headers and body.
type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// An HTTP receiver on 127.0.0.1 that answers with `answers` in turn (the last one repeated).
async fn receiver(answers: Vec<Response<String>>) -> (u16, Received) {
    let received: Received = Arc::default();
    let answers = Arc::new(Mutex::new(answers));
    let seen = Arc::clone(&received);
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let (seen, answers) = (Arc::clone(&seen), Arc::clone(&answers));
        async move {
            seen.lock().unwrap().push((headers, body));
            let mut answers = answers.lock().unwrap();
            let answer = if answers.len() > 1 {
                answers.remove(0)
            } else {
                clone_response(&answers[0])
            };
            answer.into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, received)
}

fn clone_response(response: &Response<String>) -> Response<String> {
    let mut copy = Response::new(response.body().clone());
    *copy.status_mut() = response.status();
    *copy.headers_mut() = response.headers().clone();
    copy
}

fn status(code: u16) -> Response<String> {
    let mut response = Response::new(String::new());
    *response.status_mut() = StatusCode::from_u16(code).unwrap();
    response
}

/// A TCP listener that only counts the connections made to it.
async fn counting_listener(address: &str) -> Option<(SocketAddr, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind(address).await.ok()?;
    let local = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((_stream, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    Some((local, count))
}

/// A test app with quick polls and back-offs and the test secret; `allow` as `--callback-allow`.
async fn callback_app(allow: &[&str]) -> TestApp {
    let mut app = app().await;
    app.state.callbacks.poll = Duration::from_millis(50);
    app.state.callbacks.backoff = Duration::from_millis(50);
    app.state.callbacks.timeout = Duration::from_secs(5);
    app.state.callbacks.secrets = WebhookSecrets::parse(&[SECRET]).unwrap();
    let mut policy = CallbackPolicy::default();
    for entry in allow {
        policy.allow(entry).unwrap();
    }
    app.state.callbacks.policy = policy;
    app
}

async fn submit_with_callback(app: &TestApp, url: &str) -> Reply {
    let mut body = submission(1);
    body["callback_url"] = json!(url);
    post_json(&app.state, "/v1/jobs", &body, None).await
}

/// Submits with `url` (201 expected) and cancels the job, so that its callback is due.
async fn ended_job_with_callback(app: &TestApp, url: &str) -> String {
    let reply = submit_with_callback(app, url).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let id = reply.body["id"].as_str().unwrap().to_string();
    post_empty(&app.state, &format!("/v1/jobs/{id}/cancel")).await;
    id
}

/// Waits until the job's delivery is no longer pending (or 10 s pass).
async fn settled(app: &TestApp, job: &str) -> fresco_queue::DeliveryRecord {
    for _ in 0..200 {
        let records = app.queue.deliveries(job).await.unwrap();
        assert_eq!(records.len(), 1, "one delivery per job");
        if records[0].state != DeliveryState::Pending {
            return records[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery of {job} is still pending after 10 s");
}

/// `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`, computed here from the
/// specification rather than by the server's code.
fn expected_signature(id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_to_internal_addresses_are_refused_without_a_connection() {
    let app = callback_app(&[]).await;
    let (v4, v4_connections) = counting_listener("127.0.0.1:0").await.unwrap();
    let port = v4.port();
    let mut urls = vec![
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://127.0.0.2:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://LOCALHOST:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://0x7f.1:{port}/hook"),
        format!("http://0x7f000001:{port}/hook"),
        format!("http://017700000001:{port}/hook"),
        format!("http://127.1:{port}/hook"),
        format!("http://0.0.0.0:{port}/hook"),
        format!("http://0:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://[::ffff:7f00:1]:{port}/hook"),
        format!("http://[::]:{port}/hook"),
        format!("https://127.0.0.1:{port}/hook"),
        "http://10.0.0.1/hook".to_string(),
        "http://10.255.1.2:8080/hook".to_string(),
        "http://172.16.5.4/hook".to_string(),
        "http://192.168.1.10/hook".to_string(),
        format!("http://192.168.0.1:{port}/hook"),
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_string(),
        "http://[::ffff:169.254.169.254]/latest/meta-data/".to_string(),
        "http://[fd00:ec2::254]/latest/meta-data/".to_string(),
        "http://[fe80::1]/hook".to_string(),
        "http://[fc00::5]/hook".to_string(),
        "http://100.64.0.1/hook".to_string(),
        "http://224.0.0.1/hook".to_string(),
        "http://255.255.255.255/hook".to_string(),
        "http://192.0.2.10/hook".to_string(),
    ];
    // [::1] with a listener of its own where this machine has IPv6 loopback.
    let v6 = counting_listener("[::1]:0").await;
    match &v6 {
        Some((addr, _)) => urls.push(format!("http://[::1]:{}/hook", addr.port())),
        None => urls.push(format!("http://[::1]:{port}/hook")),
    }
    for url in &urls {
        let reply = submit_with_callback(&app, url).await;
        let message = reply.error(StatusCode::BAD_REQUEST, "callback-url-not-allowed");
        assert!(message.starts_with("callback_url:"), "{url}: {message}");
    }
    // User names and other schemes are refused by the URL's form.
    for url in [
        format!("http://user@127.0.0.1:{port}/hook"),
        format!("http://user:pw@93.184.216.34:{port}/hook"),
        format!("ftp://127.0.0.1:{port}/hook"),
    ] {
        let reply = submit_with_callback(&app, &url).await;
        reply.error(StatusCode::BAD_REQUEST, "invalid-field");
    }
    assert!(app.queue.jobs(&[], 10).await.unwrap().is_empty());
    // Even with the delivery loop running, nothing reaches the listeners.
    let deliveries = fresco_server::callback::spawn_delivery_loop(&app.state);
    tokio::time::sleep(Duration::from_millis(300)).await;
    deliveries.abort();
    assert_eq!(v4_connections.load(Ordering::SeqCst), 0);
    if let Some((_, v6_connections)) = v6 {
        assert_eq!(v6_connections.load(Ordering::SeqCst), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_host_gets_one_signed_delivery() {
    let app = callback_app(&["127.0.0.1"]).await;
    let (port, received) = receiver(vec![status(204)]).await;
    let id = ended_job_with_callback(&app, &format!("http://127.0.0.1:{port}/hook?t=1")).await;
    let deliveries = fresco_server::callback::spawn_delivery_loop(&app.state);
    let record = settled(&app, &id).await;
    assert_eq!(record.state, DeliveryState::Delivered, "{record:?}");
    assert_eq!(record.attempts, 1);
    // No second delivery comes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    deliveries.abort();
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 1);
    let (headers, body) = &received[0];
    let webhook_id = header(headers, "webhook-id");
    let timestamp = header(headers, "webhook-timestamp");
    assert_eq!(webhook_id, record.webhook_id);
    let sent_at: i64 = timestamp.parse().unwrap();
    assert!((sent_at - fresco_queue::now_ms() / 1000).abs() < 60);
    assert_eq!(
        header(headers, "webhook-signature"),
        expected_signature(webhook_id, timestamp, body)
    );
    // A body changed in transit no longer matches.
    assert_ne!(
        header(headers, "webhook-signature"),
        expected_signature(webhook_id, timestamp, b"{}")
    );
    assert_eq!(header(headers, "content-type"), "application/json");
    let job: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(job["id"], id.as_str());
    assert_eq!(job["state"], "canceled");
    assert!(job["tasks"].is_array());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_from_an_allowed_host_is_not_followed() {
    let mut app = callback_app(&["127.0.0.1"]).await;
    app.state.callbacks.max_attempts = 2;
    let (target, target_connections) = counting_listener("127.0.0.1:0").await.unwrap();
    let mut answers = Vec::new();
    for location in [
        format!("http://127.0.0.1:{}/stolen", target.port()),
        "http://169.254.169.254/latest/meta-data/".to_string(),
    ] {
        let mut redirect = status(302);
        redirect
            .headers_mut()
            .insert("location", location.parse().unwrap());
        answers.push(redirect);
    }
    let (port, received) = receiver(answers).await;
    let id = ended_job_with_callback(&app, &format!("http://127.0.0.1:{port}/hook")).await;
    let deliveries = fresco_server::callback::spawn_delivery_loop(&app.state);
    let record = settled(&app, &id).await;
    deliveries.abort();
    assert_eq!(record.state, DeliveryState::Failed, "{record:?}");
    assert_eq!(record.attempts, 2);
    assert!(
        record.last_error.as_deref().unwrap().contains("redirect"),
        "{record:?}"
    );
    assert_eq!(received.lock().unwrap().len(), 2);
    assert_eq!(target_connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_500_is_retried_with_the_same_id_and_logs_show_no_path() {
    // Current-thread: the delivery loop logs on this thread, into the captured output.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = callback_app(&["127.0.0.0/8"]).await;
    let (port, received) = receiver(vec![status(500), status(503), status(200)]).await;
    let url = format!("http://127.0.0.1:{port}/hooks/PATH-SECRET?token=QUERY-SECRET");
    let id = ended_job_with_callback(&app, &url).await;
    let deliveries = fresco_server::callback::spawn_delivery_loop(&app.state);
    let record = settled(&app, &id).await;
    deliveries.abort();
    assert_eq!(record.state, DeliveryState::Delivered, "{record:?}");
    assert_eq!(record.attempts, 3);
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 3);
    let ids: Vec<&str> = received
        .iter()
        .map(|(h, _)| header(h, "webhook-id"))
        .collect();
    assert!(ids.iter().all(|i| *i == record.webhook_id), "{ids:?}");
    for (headers, body) in received.iter() {
        let signature = header(headers, "webhook-signature");
        let expected = expected_signature(ids[0], header(headers, "webhook-timestamp"), body);
        assert_eq!(signature, expected);
    }
    let logs = captured.text();
    assert!(logs.contains("completion callback failed"), "{logs}");
    assert!(logs.contains("target=http://127.0.0.1 "), "{logs}");
    assert!(!logs.contains(&format!("127.0.0.1:{port}")), "{logs}");
    assert!(!logs.contains("SECRET"), "the callback URL leaked: {logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_is_checked_again_at_delivery() {
    let mut app = callback_app(&["127.0.0.1"]).await;
    app.state.callbacks.max_attempts = 1;
    let (listener, connections) = counting_listener("127.0.0.1:0").await.unwrap();
    let id =
        ended_job_with_callback(&app, &format!("http://127.0.0.1:{}/hook", listener.port())).await;
    // The operator took the allowance back before the job's callback was sent.
    app.state.callbacks.policy = CallbackPolicy::default();
    let deliveries = fresco_server::callback::spawn_delivery_loop(&app.state);
    let record = settled(&app, &id).await;
    deliveries.abort();
    assert_eq!(record.state, DeliveryState::Failed, "{record:?}");
    assert!(
        record.last_error.as_deref().unwrap().contains("loopback"),
        "{record:?}"
    );
    assert_eq!(connections.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_delivery_survives_a_server_restart() {
    let app = callback_app(&["127.0.0.1"]).await;
    let (port, received) = receiver(vec![status(204)]).await;
    let reply = submit_with_callback(&app, &format!("http://127.0.0.1:{port}/hook")).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let id = reply.body["id"].as_str().unwrap().to_string();

    // The first server stops before the job ends: no delivery loop ran, nothing in memory
    // survives. A second server opens the same queue.
    let url = format!("sqlite://{}", app.dir().join("queue.db").display());
    let callbacks = app.state.callbacks.clone();
    let factory = Arc::clone(&app.state.jobs);
    let first = app.state.clone();
    drop(first);
    let queue = fresco_queue::open(&url).await.unwrap();
    let mut second = fresco_server::AppState::new(Arc::clone(&queue), factory);
    second.callbacks = callbacks;
    assert!(queue.cancel(&id).await.unwrap());
    let deliveries = fresco_server::callback::spawn_delivery_loop(&second);
    let mut delivered = false;
    for _ in 0..200 {
        if !received.lock().unwrap().is_empty() {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(delivered, "no delivery after the restart");
    tokio::time::sleep(Duration::from_millis(500)).await;
    deliveries.abort();
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 1, "exactly one delivery");
    let (headers, body) = &received[0];
    assert_eq!(
        header(headers, "webhook-signature"),
        expected_signature(
            header(headers, "webhook-id"),
            header(headers, "webhook-timestamp"),
            body
        )
    );
    let job: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(job["id"], id.as_str());
}

/// Log output collected in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_valid_url_the_server_cannot_read_is_given_up_at_once() {
    // The schema's pattern lets these through, so they are accepted; no request can be made.
    let app = callback_app(&[]).await;
    let mut jobs = Vec::new();
    for url in ["http://hooks.example:99999/x", "http://a.5/x"] {
        jobs.push(ended_job_with_callback(&app, url).await);
    }
    let deliveries = fresco_server::callback::spawn_delivery_loop(&app.state);
    for job in &jobs {
        let record = settled(&app, job).await;
        assert_eq!(record.state, DeliveryState::Failed, "{record:?}");
        assert_eq!(record.attempts, 1, "{record:?}");
    }
    deliveries.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_send_each_delivery_once() {
    let app = callback_app(&["127.0.0.1"]).await;
    let (port, received) = receiver(vec![status(204)]).await;
    let mut jobs = Vec::new();
    for n in 0..5 {
        let mut body = submission(n + 1);
        body["callback_url"] = json!(format!("http://127.0.0.1:{port}/hook"));
        let reply = post_json(&app.state, "/v1/jobs", &body, None).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        jobs.push(reply.body["id"].as_str().unwrap().to_string());
    }
    // A second server on the same queue, each with its own delivery loop.
    let url = format!("sqlite://{}", app.dir().join("queue.db").display());
    let mut other = fresco_server::AppState::new(
        fresco_queue::open(&url).await.unwrap(),
        Arc::clone(&app.state.jobs),
    );
    other.callbacks = app.state.callbacks.clone();
    let loops = [
        fresco_server::callback::spawn_delivery_loop(&app.state),
        fresco_server::callback::spawn_delivery_loop(&other),
    ];
    for job in &jobs {
        post_empty(&app.state, &format!("/v1/jobs/{job}/cancel")).await;
    }
    for job in &jobs {
        assert_eq!(settled(&app, job).await.state, DeliveryState::Delivered);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for handle in loops {
        handle.abort();
    }
    let received = received.lock().unwrap();
    let ids: std::collections::HashSet<&str> = received
        .iter()
        .map(|(h, _)| header(h, "webhook-id"))
        .collect();
    assert_eq!(received.len(), 5, "one delivery per job");
    assert_eq!(ids.len(), 5);
}
