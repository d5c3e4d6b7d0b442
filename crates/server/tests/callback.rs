//! A job submitted with a `callback_url` is POSTed there, as JSON, once it ends.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use axum::Json;
use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_gets_the_finished_job() {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Value>(4);
    let receiver = axum::Router::new().route(
        "/hook",
        post(move |Json(body): Json<Value>| {
            let tx = tx.clone();
            async move {
                tx.send(body).await.unwrap();
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let mut app = app().await;
    app.state.callbacks.poll = Duration::from_millis(50);
    let mut body = submission(1);
    body["callback_url"] = json!(format!("http://127.0.0.1:{port}/hook"));
    let reply = post_json(&app.state, "/v1/jobs", &body, None).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let id = reply.body["id"].as_str().unwrap().to_string();

    // Nothing while the job is queued.
    assert!(tokio::time::timeout(Duration::from_millis(300), rx.recv())
        .await
        .is_err());
    post_empty(&app.state, &format!("/v1/jobs/{id}/cancel")).await;
    let delivered = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no callback within 10 s of the job ending")
        .unwrap();
    assert_eq!(delivered["id"], id.as_str());
    assert_eq!(delivered["state"], "canceled");
    assert!(delivered["tasks"].is_array());
}
