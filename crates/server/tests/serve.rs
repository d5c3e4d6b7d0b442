//! `serve` answers on a real socket and returns once its shutdown future completes.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_then_shuts_down_gracefully() {
    let app = app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(fresco_server::serve(listener, app.state.clone(), async {
        let _ = stopped.await;
    }));
    let body = tokio::task::spawn_blocking(move || {
        fresco_testkit::http::get(&format!("http://{addr}/healthz"))
            .call()
            .ok()
            .text()
    })
    .await
    .unwrap();
    assert_eq!(body, r#"{"status":"ok"}"#);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve did not return after shutdown")
        .unwrap()
        .expect("serve failed");
}
