//! Storage events make jobs: Event Grid's handshake and BlobCreated, S3 through SNS (sent as
//! text/plain) and EventBridge; redelivery makes no second job; malformed bodies get 400 and
//! change nothing. Without an event secret the routes are off; an SNS SubscribeURL that is not
//! AWS's, in any spelling, is refused without a connection, and a failed confirmation says
//! nothing about the remote side.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use fresco_server::auth::{Secret, EVENT_SECRET_HEADER};
use fresco_server::routes::events::EventTrigger;
use serde_json::{json, Value};

const EVENT_SECRET: &str = "event-secret-for-tests";

/// A test app whose event routes are on (they need the event secret).
async fn events_app() -> TestApp {
    let mut app = app().await;
    app.state.auth.event_secret = Some(Secret::new(EVENT_SECRET));
    app
}

/// POSTs an event body (any text) with the event secret, as `content_type`.
async fn post_event(app: &TestApp, uri: &str, content_type: &str, body: &str) -> Reply {
    let request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .header(EVENT_SECRET_HEADER, EVENT_SECRET)
        .body(Body::from(body.to_string()))
        .unwrap();
    send(&app.state, request).await
}

async fn post_event_json(app: &TestApp, uri: &str, body: &Value) -> Reply {
    post_event(app, uri, "application/json", &body.to_string()).await
}

async fn job_count(app: &TestApp) -> usize {
    app.state.queue.jobs(&[], 100).await.unwrap().len()
}

fn with_trigger(app: &mut TestApp) {
    app.state.events = Some(EventTrigger {
        output: "az://styled/out".into(),
        style: Some("mosaic".into()),
        model: None,
        temporal: false,
    });
}

fn blob_created(etag: &str) -> Value {
    json!([{
        "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct",
        "subject": "/blobServices/default/containers/videos/blobs/in/clip.mp4",
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": "831e1650-001e-001b-66ab-eeb76e069631",
        "eventTime": "2026-11-28T12:00:00Z",
        "data": { "api": "PutBlockList", "eTag": etag, "contentType": "video/mp4",
                  "contentLength": 1024, "blobType": "BlockBlob",
                  "url": "https://acct.blob.core.windows.net/videos/in/clip.mp4" },
        "dataVersion": "", "metadataVersion": "1"
    }])
}

#[tokio::test]
async fn event_grid_handshake_and_blob_created_make_one_job() {
    let mut app = events_app().await;
    let handshake = json!([{
        "id": "2d1781af", "topic": "t", "subject": "",
        "data": { "validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6" },
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2026-11-28T12:00:00Z", "metadataVersion": "1", "dataVersion": "1"
    }]);
    let reply = post_event_json(&app, "/v1/events/azure", &handshake).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body["validationResponse"],
        "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
    );

    // Without a trigger configured, created objects are refused and nothing is queued.
    let reply = post_event_json(&app, "/v1/events/azure", &blob_created("\"0x1\"")).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    assert_eq!(reply.body["error"]["code"], "no-trigger");
    assert_eq!(job_count(&app).await, 0);

    with_trigger(&mut app);
    let reply = post_event_json(&app, "/v1/events/azure", &blob_created("\"0x1\"")).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let job = reply.body["objects"][0]["job"]
        .as_str()
        .unwrap()
        .to_string();
    let record = app.state.queue.job(&job).await.unwrap().unwrap();
    assert_eq!(record.input, "az://videos/in/clip.mp4");
    assert_eq!(record.output, "az://styled/out/in/clip.mosaic.mp4");

    // Event Grid redelivers: the same blob and ETag is the same job.
    let again = post_event_json(&app, "/v1/events/azure", &blob_created("\"0x1\"")).await;
    assert_eq!(again.body["objects"][0]["job"], job.as_str());
    assert_eq!(job_count(&app).await, 1);
}

/// `fresco serve --temporal`: the jobs a storage event makes are steadied, and say so.
#[tokio::test]
async fn a_temporal_trigger_makes_steadied_jobs() {
    let mut app = events_app().await;
    app.state.events = Some(EventTrigger {
        output: "az://styled/out".into(),
        style: Some("mosaic".into()),
        model: None,
        temporal: true,
    });
    let reply = post_event_json(&app, "/v1/events/azure", &blob_created("\"0x2\"")).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let job = reply.body["objects"][0]["job"].as_str().unwrap();
    let record = app.state.queue.job(job).await.unwrap().unwrap();
    assert!(
        fresco_core::JobSpec::temporal_in(&record.spec),
        "{}",
        record.spec
    );
    let view = fresco_server::api::JobView::from(&record);
    assert!(view.temporal);
    // Without the flag, the same object makes a per-frame job.
    with_trigger(&mut app);
    let reply = post_event_json(&app, "/v1/events/azure", &blob_created("\"0x3\"")).await;
    let job = reply.body["objects"][0]["job"].as_str().unwrap();
    let record = app.state.queue.job(job).await.unwrap().unwrap();
    assert!(!fresco_core::JobSpec::temporal_in(&record.spec));
}

#[tokio::test]
async fn malformed_events_get_400_and_change_nothing() {
    let mut app = events_app().await;
    with_trigger(&mut app);
    for (route, body) in [
        ("/v1/events/azure", "not json"),
        ("/v1/events/azure", "{}"),
        ("/v1/events/azure", "[]"),
        (
            "/v1/events/azure",
            r#"[{"eventType": "Microsoft.Storage.BlobCreated", "data": {}}]"#,
        ),
        ("/v1/events/s3", "{}"),
        (
            "/v1/events/s3",
            r#"{"Type": "Notification", "Message": "nope"}"#,
        ),
        (
            "/v1/events/s3",
            r#"{"Type": "SubscriptionConfirmation", "SubscribeURL": "http://169.254.169.254/"}"#,
        ),
    ] {
        let reply = post_event(&app, route, "application/json", body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{route} {body}: {}",
            reply.text
        );
        assert!(reply.body["error"]["code"].is_string(), "{}", reply.text);
    }
    assert_eq!(job_count(&app).await, 0);
}

#[tokio::test]
async fn s3_events_through_sns_and_eventbridge_make_jobs() {
    let mut app = events_app().await;
    with_trigger(&mut app);
    let s3_event = json!({ "Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": { "bucket": { "name": "media" },
                "object": { "key": "in/my+clip.mp4", "size": 10, "eTag": "abc" } }
    }]});
    let sns = json!({ "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                      "Message": s3_event.to_string(), "Timestamp": "2026-11-28T12:00:00Z" });
    // SNS sends JSON as text/plain.
    let reply = post_event(
        &app,
        "/v1/events/s3",
        "text/plain; charset=UTF-8",
        &sns.to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let job = reply.body["objects"][0]["job"]
        .as_str()
        .unwrap()
        .to_string();
    let record = app.state.queue.job(&job).await.unwrap().unwrap();
    assert_eq!(record.input, "s3://media/in/my clip.mp4");

    let eventbridge = json!({ "detail-type": "Object Created", "source": "aws.s3",
        "detail": { "bucket": { "name": "media" }, "object": { "key": "in/b.mp4", "etag": "e2" } } });
    let reply = post_event_json(&app, "/v1/events/s3", &eventbridge).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    assert_eq!(job_count(&app).await, 2);
}

#[tokio::test]
async fn event_routes_are_off_without_an_event_secret() {
    let mut app = app().await;
    with_trigger(&mut app);
    let handshake = json!([{ "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "data": { "validationCode": "c" } }]);
    let confirm = json!({ "Type": "SubscriptionConfirmation",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription" });
    for (uri, body) in [
        ("/v1/events/azure", handshake.to_string()),
        ("/v1/events/azure", blob_created("\"0x1\"").to_string()),
        ("/v1/events/s3", confirm.to_string()),
        ("/v1/events/s3", "not json".to_string()),
    ] {
        // With no credentials, with a token, and with a made-up event secret alike.
        for header in [None, Some(EVENT_SECRET_HEADER)] {
            let mut request = Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(name) = header {
                request = request.header(name, "guess");
            }
            let reply = send(&app.state, request.body(Body::from(body.clone())).unwrap()).await;
            reply.error(StatusCode::NOT_FOUND, "events-disabled");
        }
    }
    assert_eq!(job_count(&app).await, 0);
}

/// A TCP listener that counts the connections made to it.
async fn counting_listener() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((_stream, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (port, count)
}

#[tokio::test]
async fn sns_host_tricks_are_refused_without_a_connection() {
    let app = events_app().await;
    let (port, connections) = counting_listener().await;
    let local = format!("127.0.0.1:{port}");
    let sns = "sns.us-east-1.amazonaws.com";
    let tricks = [
        format!("https://{sns}?@{local}/"),
        format!("https://{sns}#@{local}/"),
        format!("https://{sns}\\@{local}/"),
        format!("https://{sns}@{local}/"),
        format!("https://{sns}:x@{local}/"),
        format!("https://user@{sns}/"),
        format!("https://{sns}:{port}/"),
        format!("https://{sns}:8443/"),
        format!("http://{sns}/"),
        format!("http://{local}/?{sns}"),
        format!("https://{local}/{sns}/"),
        "https://SNS.US-EAST-1.AMAZONAWS.COM/".to_string(),
        format!("https://{sns}./"),
        format!("https://sns.x.amazonaws.com.{local}/"),
        "https://sns.x.amazonaws.com.evil.example/".to_string(),
        format!("https://{local}/"),
        format!("https://2130706433:{port}/"),
        format!("https://[::ffff:127.0.0.1]:{port}/"),
        "https://169.254.169.254/latest/meta-data/".to_string(),
        "https://sns.us-east-1.amazonaws%2ecom/".to_string(),
        "https://%73ns.us-east-1.amazonaws.com/".to_string(),
        "https://sns.us-east-1.amazonaws.c\u{43e}m/".to_string(),
        format!("https://{sns}%2f@{local}/"),
    ];
    for url in &tricks {
        let body = json!({ "Type": "SubscriptionConfirmation", "Token": "t", "SubscribeURL": url });
        let reply = post_event_json(&app, "/v1/events/s3", &body).await;
        reply.error(StatusCode::BAD_REQUEST, "bad-event");
    }
    // Give a stray connection time to show.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the server connected to the local listener"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_confirmation_says_nothing_of_the_remote_side() {
    let app = events_app().await;
    // AWS's hosts are out of reach here (or answer a made-up token with an error): either way
    // the confirmation fails, and the answer is the same generic one, given when the time
    // limit ends however fast the failure was.
    let started = std::time::Instant::now();
    let confirm = |region: &'static str| {
        let state = app.state.clone();
        async move {
            let body = json!({ "Type": "SubscriptionConfirmation", "Token": "t",
                "SubscribeURL": format!("https://sns.{region}.amazonaws.com/?Action=ConfirmSubscription&Token=made-up") });
            let request = Request::builder()
                .method(Method::POST)
                .uri("/v1/events/s3")
                .header(header::CONTENT_TYPE, "application/json")
                .header(EVENT_SECRET_HEADER, EVENT_SECRET)
                .body(Body::from(body.to_string()))
                .unwrap();
            send(&state, request).await
        }
    };
    let (a, b) = tokio::join!(confirm("us-east-1"), confirm("eu-west-3"));
    let elapsed = started.elapsed();
    for reply in [&a, &b] {
        let message = reply.error(StatusCode::BAD_GATEWAY, "subscription-confirm-failed");
        assert!(!message.contains("amazonaws"), "{message}");
    }
    assert_eq!(a.text, b.text);
    assert!(
        elapsed >= std::time::Duration::from_secs(10),
        "answered after {elapsed:?}, before the time limit"
    );
}
