//! The HTTP API in this test's process, as `fresco serve` makes it (no downloads: the tests
//! never reach the network), over a queue, with a token of one role.

use std::path::Path;
use std::sync::Arc;

/// A running API and a token to call it with; stopped when dropped.
pub struct Api {
    pub url: String,
    pub token: String,
    pub queue: Arc<dyn fresco_queue::Queue>,
    pub runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Api {
    /// The API over the queue at `queue_url`, with a token of `role`.
    pub fn open(queue_url: &str, role: fresco_queue::Role) -> Api {
        Api::open_with(
            queue_url,
            role,
            fresco_server::LocalJobFactory::default().allow_download(false),
        )
    }

    /// [`Api::open`] with a factory of the test's own (its limits, say).
    pub fn open_with(
        queue_url: &str,
        role: fresco_queue::Role,
        factory: fresco_server::LocalJobFactory,
    ) -> Api {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (queue, url, token) = runtime.block_on(async {
            let queue = fresco_queue::open(queue_url).await.unwrap();
            let new = fresco_queue::NewToken {
                name: "test".into(),
                role,
                expires_at_ms: None,
            };
            let token = queue.create_token(&new, None).await.unwrap().secret;
            let state = fresco_server::AppState::new(queue.clone(), Arc::new(factory));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(fresco_server::serve(listener, state, async {
                let _ = stopped.await;
            }));
            (queue, format!("http://{addr}"), token)
        });
        Api {
            url,
            token,
            queue,
            runtime,
            stop: Some(stop),
        }
    }

    /// A submitter's API over its own SQLite queue in `dir`.
    pub fn submitter(dir: &Path) -> Api {
        let url = format!("sqlite://{}", dir.join("api.db").display());
        Api::open(&url, fresco_queue::Role::Submitter)
    }

    /// `POST /v1/jobs` with `body`, which must be refused: the (status, code, message).
    pub fn refuse(&self, body: &serde_json::Value) -> (u16, String, String) {
        let answer = fresco_testkit::http::post(&format!("{}/v1/jobs", self.url))
            .bearer(&self.token)
            .send_json(body);
        assert!(
            answer.status >= 400,
            "the API took the job {body}: {}",
            answer.text()
        );
        let body = answer.json();
        let text = |key: &str| body["error"][key].as_str().unwrap_or_default().to_string();
        (answer.status, text("code"), text("message"))
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The message of the CLI's `error: ...` line.
pub fn cli_message(out: &super::Out) -> String {
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error"))
        .unwrap_or_else(|| panic!("no error line:\n{}", out.dump()));
    line.trim_start_matches("error:").trim().to_string()
}
