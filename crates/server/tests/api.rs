//! The API in process, against a real SQLite queue and a fake job factory: every endpoint's happy
//! path and its not-found and bad-request paths, idempotency, paging and the error shape.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn healthz_and_readyz_answer_when_the_queue_does() {
    let app = app().await;
    let reply = get(&app.state, "/healthz").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"status": "ok"}));
    let reply = get(&app.state, "/readyz").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body, json!({"status": "ready"}));
}

#[tokio::test]
async fn a_broken_queue_is_not_ready_but_still_healthy() {
    let state = fresco_server::AppState::new(Arc::new(BrokenQueue), Arc::new(FakeFactory));
    assert_eq!(get(&state, "/healthz").await.status, StatusCode::OK);
    let reply = get(&state, "/readyz").await;
    let message = reply.error(StatusCode::SERVICE_UNAVAILABLE, "queue-unavailable");
    assert!(
        !message.contains("database is down"),
        "5xx bodies must not carry the detail: {message}"
    );
    // Other routes cannot look the token up: a generic 503, the detail only in the log.
    let request = Request::get("/v1/jobs").body(Body::empty()).unwrap();
    let reply = send_as(&state, Some("fresco_some-token"), request).await;
    let message = reply.error(StatusCode::SERVICE_UNAVAILABLE, "auth-unavailable");
    assert!(!message.contains("database is down"), "{message}");
}

#[tokio::test]
async fn a_submitted_job_can_be_followed() {
    let app = app().await;
    let body = json!({
        "input": "/videos/in.mp4",
        "output": "/videos/out.mkv",
        "style": "mosaic",
        "codec": "libx265",
        "crf": 22,
        "preset": "fast",
        "pix_fmt": "yuv420p10le",
        "max_side": 720,
        "drop_streams": ["subtitle", "data"],
        "overwrite": true,
        "chunk_frames": 100,
        "priority": 5,
        "max_attempts": 4,
        "max_expiries": 7,
        "callback_url": "http://93.184.216.34:9/hook",
    });
    let reply = post_json(&app.state, "/v1/jobs", &body, None).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let id = reply.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        reply.headers.get(header::LOCATION).unwrap(),
        &format!("/v1/jobs/{id}")
    );
    assert_eq!(reply.body["state"], "queued");
    assert_eq!(reply.body["priority"], 5);
    assert_eq!(reply.body["max_attempts"], 4);
    assert_eq!(reply.body["max_expiries"], 7);
    assert_eq!(reply.body["output"], "/videos/out.mkv");
    assert_eq!(reply.body["progress"], 0.0);

    let reply = get(&app.state, &format!("/v1/jobs/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["id"], id.as_str());
    assert_eq!(reply.body["state"], "queued");
    let tasks = reply.body["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "only the plan task before planning");
    assert_eq!(tasks[0]["kind"], "plan");
    assert_eq!(tasks[0]["state"], "pending");
    assert_eq!(reply.body["errors"], json!([]));
}

#[tokio::test]
async fn the_errors_of_a_job_are_shown() {
    let app = app().await;
    let id = post_json(&app.state, "/v1/jobs", &submission(1), None)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    fail_job(app.queue.as_ref(), &id).await;
    let reply = get(&app.state, &format!("/v1/jobs/{id}")).await;
    assert_eq!(reply.body["state"], "failed");
    assert!(
        reply.body["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("input is broken")),
        "{reply:?}"
    );
    assert_eq!(reply.body["errors"][0]["kind"], "plan");
    assert_eq!(reply.body["errors"][0]["error"], "input is broken");
}

#[tokio::test]
async fn an_idempotency_key_returns_the_same_job() {
    let app = app().await;
    let first = post_json(&app.state, "/v1/jobs", &submission(1), Some("key-1")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    let second = post_json(&app.state, "/v1/jobs", &submission(1), Some("key-1")).await;
    assert_eq!(second.status, StatusCode::OK, "{second:?}");
    assert_eq!(first.body["id"], second.body["id"]);
    assert!(second.headers.get(header::LOCATION).is_none());

    // Whatever that job's state: a canceled job is still the key's job.
    let id = first.body["id"].as_str().unwrap();
    post_empty(&app.state, &format!("/v1/jobs/{id}/cancel")).await;
    let third = post_json(&app.state, "/v1/jobs", &submission(1), Some("key-1")).await;
    assert_eq!(third.status, StatusCode::OK, "{third:?}");
    assert_eq!(third.body["id"], id);
    assert_eq!(third.body["state"], "canceled");

    // Another key is another job.
    let other = post_json(&app.state, "/v1/jobs", &submission(2), Some("key-2")).await;
    assert_eq!(other.status, StatusCode::CREATED);
    assert_ne!(other.body["id"], first.body["id"]);
}

#[tokio::test]
async fn the_same_work_queued_twice_is_one_job() {
    let app = app().await;
    let first = post_json(&app.state, "/v1/jobs", &submission(1), None).await;
    let second = post_json(&app.state, "/v1/jobs", &submission(1), None).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(first.body["id"], second.body["id"]);
}

#[tokio::test]
async fn bad_idempotency_keys_are_refused() {
    let app = app().await;
    let long = "k".repeat(256);
    for key in ["", "has space", long.as_str()] {
        let reply = post_json(&app.state, "/v1/jobs", &submission(1), Some(key)).await;
        reply.error(StatusCode::BAD_REQUEST, "invalid-header");
    }
}

#[tokio::test]
async fn listings_page_through_every_job_newest_first() {
    let app = app().await;
    let mut ids = Vec::new();
    for n in 0..7 {
        let reply = post_json(&app.state, "/v1/jobs", &submission(n), None).await;
        ids.push(reply.body["id"].as_str().unwrap().to_string());
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut uri = "/v1/jobs?limit=3".to_string();
    let mut pages = 0;
    loop {
        let reply = get(&app.state, &uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        pages += 1;
        let jobs = reply.body["jobs"].as_array().unwrap();
        seen.extend(jobs.iter().map(|j| j["id"].as_str().unwrap().to_string()));
        match reply.body["next"].as_i64() {
            Some(next) => {
                assert_eq!(jobs.len(), 3);
                assert_eq!(Some(next), jobs.last().unwrap()["seq"].as_i64());
                uri = format!("/v1/jobs?limit=3&before={next}");
            }
            None => {
                assert_eq!(reply.body["next"], Value::Null);
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids);

    // The default page holds them all; a state filter keeps only that state.
    let all = get(&app.state, "/v1/jobs").await;
    assert_eq!(all.body["jobs"].as_array().unwrap().len(), 7);
    assert_eq!(all.body["next"], Value::Null);
    post_empty(&app.state, &format!("/v1/jobs/{}/cancel", ids[2])).await;
    let canceled = get(&app.state, "/v1/jobs?state=canceled").await;
    let jobs = canceled.body["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["id"], ids[2].as_str());
    let queued = get(&app.state, "/v1/jobs?state=queued&limit=500").await;
    assert_eq!(queued.body["jobs"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn bad_listing_queries_are_refused() {
    let app = app().await;
    for uri in [
        "/v1/jobs?limit=0",
        "/v1/jobs?limit=501",
        "/v1/jobs?limit=abc",
        "/v1/jobs?state=bogus",
        "/v1/jobs?before=x",
    ] {
        let reply = get(&app.state, uri).await;
        let message = reply.error(StatusCode::BAD_REQUEST, "invalid-query");
        let field = uri.split(['?', '=']).nth(1).unwrap();
        assert!(message.contains(field), "{uri}: {message}");
    }
}

#[tokio::test]
async fn unknown_jobs_are_404() {
    let app = app().await;
    for reply in [
        get(&app.state, "/v1/jobs/no-such-job").await,
        post_empty(&app.state, "/v1/jobs/no-such-job/cancel").await,
        post_empty(&app.state, "/v1/jobs/no-such-job/retry").await,
    ] {
        let message = reply.error(StatusCode::NOT_FOUND, "job-not-found");
        assert!(message.contains("no-such-job"), "{message}");
    }
}

#[tokio::test]
async fn cancel_stops_a_job_and_refuses_a_finished_one() {
    let app = app().await;
    let id = post_json(&app.state, "/v1/jobs", &submission(1), None)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = post_empty(&app.state, &format!("/v1/jobs/{id}/cancel")).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["state"], "canceled");
    // A retried cancel is harmless.
    let again = post_empty(&app.state, &format!("/v1/jobs/{id}/cancel")).await;
    assert_eq!(again.status, StatusCode::OK);

    let failed = post_json(&app.state, "/v1/jobs", &submission(2), None)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    fail_job(app.queue.as_ref(), &failed).await;
    let reply = post_empty(&app.state, &format!("/v1/jobs/{failed}/cancel")).await;
    reply.error(StatusCode::CONFLICT, "job-finished");
}

#[tokio::test]
async fn retry_requeues_failed_and_canceled_jobs_only() {
    let app = app().await;
    let id = post_json(&app.state, "/v1/jobs", &submission(1), None)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = post_empty(&app.state, &format!("/v1/jobs/{id}/retry")).await;
    let message = reply.error(StatusCode::CONFLICT, "job-not-retryable");
    assert!(message.contains("queued"), "{message}");

    fail_job(app.queue.as_ref(), &id).await;
    let reply = post_empty(&app.state, &format!("/v1/jobs/{id}/retry")).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["state"], "queued");

    post_empty(&app.state, &format!("/v1/jobs/{id}/cancel")).await;
    // The same work submitted again while this one is canceled: retrying would duplicate it.
    let other = post_json(&app.state, "/v1/jobs", &submission(1), None).await;
    assert_eq!(other.status, StatusCode::CREATED);
    let reply = post_empty(&app.state, &format!("/v1/jobs/{id}/retry")).await;
    let message = reply.error(StatusCode::CONFLICT, "duplicate-job-active");
    assert!(
        message.contains(other.body["id"].as_str().unwrap()),
        "{message}"
    );
}

#[tokio::test]
async fn malformed_bodies_get_the_json_error_shape() {
    let app = app().await;
    let raw = |body: &str, content_type: Option<&str>| {
        let mut request = Request::post("/v1/jobs");
        if let Some(ct) = content_type {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        request.body(Body::from(body.to_string())).unwrap()
    };
    let reply = send(&app.state, raw("{\"input\": ", Some("application/json"))).await;
    reply.error(StatusCode::BAD_REQUEST, "bad-json");

    let reply = send(&app.state, raw("[1, 2]", Some("application/json"))).await;
    reply.error(StatusCode::BAD_REQUEST, "invalid-field");

    let mut unknown = submission(1);
    unknown["colour"] = json!("red");
    let reply = post_json(&app.state, "/v1/jobs", &unknown, None).await;
    let message = reply.error(StatusCode::BAD_REQUEST, "invalid-field");
    assert!(message.contains("colour"), "{message}");

    let mut wrong_type = submission(1);
    wrong_type["crf"] = json!("high");
    let reply = post_json(&app.state, "/v1/jobs", &wrong_type, None).await;
    let message = reply.error(StatusCode::BAD_REQUEST, "invalid-field");
    assert!(
        message.contains("crf") || message.contains("u8"),
        "{message}"
    );

    let body = submission(1).to_string();
    let reply = send(&app.state, raw(&body, Some("text/plain"))).await;
    reply.error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
    let reply = send(&app.state, raw(&body, None)).await;
    reply.error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");

    let mut huge = submission(1);
    huge["input"] = json!("x".repeat(100 * 1024));
    let reply = post_json(&app.state, "/v1/jobs", &huge, None).await;
    reply.error(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large");
}

#[tokio::test]
async fn invalid_fields_are_named() {
    let app = app().await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"input": "/a.mp4", "output": "/b.mp4"}),
            "missing-field",
            "style",
        ),
        (
            json!({"input": "/a.mp4", "output": "/b.mp4", "style": "mosaic", "model": "/m.onnx"}),
            "conflicting-fields",
            "model",
        ),
        (
            json!({"output": "/b.mp4", "style": "mosaic"}),
            "invalid-field",
            "input",
        ),
        (
            json!({"input": "", "output": "/b.mp4", "style": "mosaic"}),
            "invalid-field",
            "input",
        ),
        (
            json!({"input": "/a.mp4", "output": "/b.mp4", "style": "Mo saic"}),
            "invalid-field",
            "style",
        ),
        (
            json!({"input": "/a.mp4", "output": "/b.mp4", "style": "mosaic", "crf": 64}),
            "invalid-field",
            "crf",
        ),
        (
            json!({"input": "/a.mp4", "output": "/b.mp4", "style": "mosaic", "max_side": 0}),
            "invalid-field",
            "max_side",
        ),
        (
            json!({"input": "/a.mp4", "output": "/b.mp4", "style": "mosaic", "chunk_frames": 0}),
            "invalid-field",
            "chunk_frames",
        ),
        (
            json!({"input": "/a.mp4", "output": "/b.mp4", "style": "mosaic", "max_attempts": 0}),
            "invalid-field",
            "max_attempts",
        ),
        (
            json!({"input": "/a.mp4", "output": "/b.mp4", "style": "mosaic", "codec": "x264 -y"}),
            "invalid-field",
            "codec",
        ),
        (
            json!({"input": "/a.mp4", "output": "/b.mp4", "style": "mosaic", "drop_streams": ["video"]}),
            "invalid-field",
            "video",
        ),
        (
            json!({"input": "/a.mp4", "output": "/b.mp4", "style": "mosaic", "callback_url": "ftp://x/y"}),
            "invalid-field",
            "callback_url",
        ),
        (
            json!({"input": "/a.mp4", "output": "/b.mp4", "style": "mosaic", "callback_url": "not a url"}),
            "invalid-field",
            "callback_url",
        ),
    ];
    for (body, code, field) in cases {
        let reply = post_json(&app.state, "/v1/jobs", &body, None).await;
        let message = reply.error(StatusCode::BAD_REQUEST, code);
        assert!(message.contains(field), "{body}: {message}");
    }
    // Nothing was queued by any of them.
    let list = get(&app.state, "/v1/jobs").await;
    assert_eq!(list.body["jobs"], json!([]));
}

#[tokio::test]
async fn a_factory_rejection_is_422_with_its_code() {
    let app = app().await;
    let body = json!({"input": "/notes.txt", "output": "/b.mp4", "style": "mosaic"});
    let reply = post_json(&app.state, "/v1/jobs", &body, None).await;
    let message = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "input-not-media");
    assert!(message.contains("/notes.txt"), "{message}");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = app().await;
    get(&app.state, "/v2/nothing")
        .await
        .error(StatusCode::NOT_FOUND, "route-not-found");
    let reply = send(
        &app.state,
        Request::delete("/v1/jobs").body(Body::empty()).unwrap(),
    )
    .await;
    reply.error(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
    let allow = reply
        .headers
        .get(header::ALLOW)
        .map(|v| v.to_str().unwrap().to_string());
    assert!(
        allow
            .as_deref()
            .is_some_and(|a| a.contains("GET") && a.contains("POST")),
        "405 without an Allow header: {reply:?}"
    );
}

#[tokio::test]
async fn workers_are_listed_with_what_they_do() {
    let app = app().await;
    let empty = get(&app.state, "/v1/workers").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.body["workers"], serde_json::json!([]));
    app.state
        .queue
        .worker_seen(&fresco_queue::WorkerStatus {
            name: "h:1:0".into(),
            host: "h".into(),
            device: "cpu".into(),
            state: "busy".into(),
            current: Some("score chunk 2 of job x".into()),
        })
        .await
        .unwrap();
    let reply = get(&app.state, "/v1/workers").await;
    assert_eq!(reply.status, StatusCode::OK);
    let w = &reply.body["workers"][0];
    assert_eq!(w["id"], "h:1:0");
    assert_eq!(w["current"], "score chunk 2 of job x");
    assert_eq!(w["silent"], false);
}

#[tokio::test]
async fn a_jobs_log_is_read_on_from_a_cursor() {
    let app = app().await;
    let reply = post_json(&app.state, "/v1/jobs", &submission(1), None).await;
    let id = reply.body["id"].as_str().unwrap().to_string();
    for n in 0..3 {
        app.state
            .queue
            .log(&id, Some("w"), &format!("line {n}"))
            .await
            .unwrap();
    }
    let page = get(&app.state, &format!("/v1/jobs/{id}/logs?limit=2")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(page.body["lines"].as_array().unwrap().len(), 2);
    // The log starts with the submission, naming its request id (see tests/hygiene.rs).
    let first = page.body["lines"][0]["message"].as_str().unwrap();
    assert!(
        first.starts_with("submitted by test-admin (request "),
        "{first}"
    );
    assert_eq!(page.body["lines"][0]["worker"], serde_json::Value::Null);
    let next = page.body["next"].as_i64().unwrap();
    let rest = get(&app.state, &format!("/v1/jobs/{id}/logs?after={next}")).await;
    assert_eq!(rest.body["lines"][0]["message"], "line 1");
    assert_eq!(rest.body["lines"][1]["message"], "line 2");
    assert_eq!(rest.body["lines"][0]["worker"], "w");
    assert_eq!(
        get(&app.state, "/v1/jobs/nope/logs").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app.state, &format!("/v1/jobs/{id}/logs?limit=0"))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}
