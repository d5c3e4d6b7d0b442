//! Storage events make jobs: Event Grid's handshake and BlobCreated, S3 through SNS (sent as
//! text/plain) and EventBridge; redelivery makes no second job; malformed bodies get 400 and
//! change nothing.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use fresco_server::routes::events::EventTrigger;
use serde_json::{json, Value};

async fn job_count(app: &TestApp) -> usize {
    app.state.queue.jobs(&[], 100).await.unwrap().len()
}

fn with_trigger(app: &mut TestApp) {
    app.state.events = Some(EventTrigger {
        output: "az://styled/out".into(),
        style: Some("mosaic".into()),
        model: None,
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
    let mut app = app().await;
    let handshake = json!([{
        "id": "2d1781af", "topic": "t", "subject": "",
        "data": { "validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6" },
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2026-11-28T12:00:00Z", "metadataVersion": "1", "dataVersion": "1"
    }]);
    let reply = post_json(&app.state, "/v1/events/azure", &handshake, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body["validationResponse"],
        "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
    );

    // Without a trigger configured, created objects are refused and nothing is queued.
    let reply = post_json(
        &app.state,
        "/v1/events/azure",
        &blob_created("\"0x1\""),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    assert_eq!(reply.body["error"]["code"], "no-trigger");
    assert_eq!(job_count(&app).await, 0);

    with_trigger(&mut app);
    let reply = post_json(
        &app.state,
        "/v1/events/azure",
        &blob_created("\"0x1\""),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let job = reply.body["objects"][0]["job"]
        .as_str()
        .unwrap()
        .to_string();
    let record = app.state.queue.job(&job).await.unwrap().unwrap();
    assert_eq!(record.input, "az://videos/in/clip.mp4");
    assert_eq!(record.output, "az://styled/out/in/clip.mosaic.mp4");

    // Event Grid redelivers: the same blob and ETag is the same job.
    let again = post_json(
        &app.state,
        "/v1/events/azure",
        &blob_created("\"0x1\""),
        None,
    )
    .await;
    assert_eq!(again.body["objects"][0]["job"], job.as_str());
    assert_eq!(job_count(&app).await, 1);
}

#[tokio::test]
async fn malformed_events_get_400_and_change_nothing() {
    let mut app = app().await;
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
        let request = Request::builder()
            .method(Method::POST)
            .uri(route)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let reply = send(&app.state, request).await;
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
    let mut app = app().await;
    with_trigger(&mut app);
    let s3_event = json!({ "Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": { "bucket": { "name": "media" },
                "object": { "key": "in/my+clip.mp4", "size": 10, "eTag": "abc" } }
    }]});
    let sns = json!({ "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                      "Message": s3_event.to_string(), "Timestamp": "2026-11-28T12:00:00Z" });
    // SNS sends JSON as text/plain.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/events/s3")
        .header(header::CONTENT_TYPE, "text/plain; charset=UTF-8")
        .body(Body::from(sns.to_string()))
        .unwrap();
    let reply = send(&app.state, request).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let job = reply.body["objects"][0]["job"]
        .as_str()
        .unwrap()
        .to_string();
    let record = app.state.queue.job(&job).await.unwrap().unwrap();
    assert_eq!(record.input, "s3://media/in/my clip.mp4");

    let eventbridge = json!({ "detail-type": "Object Created", "source": "aws.s3",
        "detail": { "bucket": { "name": "media" }, "object": { "key": "in/b.mp4", "etag": "e2" } } });
    let reply = post_json(&app.state, "/v1/events/s3", &eventbridge, None).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    assert_eq!(job_count(&app).await, 2);
}
