//! The API contract, checked by an outside tool: schemathesis (PyPI) generates requests from
//! `/openapi.json`, valid and invalid, sends them to a running server and checks every answer
//! against the document (no 5xx, documented status codes, content types, headers and schemas;
//! invalid data refused, valid data accepted).
//!
//! The server runs with a real SQLite queue and the fake job factory (no models or ffmpeg), so
//! what is checked is the HTTP layer. Without schemathesis installed the test prints "SKIPPED"
//! and passes, unless FRESCO_REQUIRE_SCHEMATHESIS=1.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::FakeFactory;

/// schemathesis on PATH, or in the project's virtual environment.
fn schemathesis() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("schemathesis");
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.fresco/venv/bin/schemathesis");
    venv.is_file().then_some(venv)
}

/// Starts the server on a free loopback port in a thread of its own, with an admin token and
/// rate limits that schemathesis's bursts stay under; returns the port and the token.
fn start_server(dir: &Path) -> (u16, String) {
    let url = format!("sqlite://{}", dir.join("queue.db").display());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let queue = fresco_queue::open(&url).await.expect("open the queue");
            let token =
                common::make_token(queue.as_ref(), "contract", fresco_queue::Role::Admin).await;
            let mut state = fresco_server::AppState::new(queue, Arc::new(FakeFactory));
            // What this checks is the HTTP layer: any address a generated callback URL names
            // is allowed (which ones callbacks may reach is tests/callback.rs's), and no
            // delivery loop runs, so nothing is called.
            for range in ["0.0.0.0/0", "::/0"] {
                state.callbacks.policy.allow(range).unwrap();
            }
            state.auth.limits = Arc::new(fresco_server::auth::RateLimits::new(
                &fresco_server::auth::RateLimitConfig {
                    requests_per_minute: 1_000_000,
                    request_burst: 1_000_000,
                    submissions_per_minute: 1_000_000,
                    submission_burst: 1_000_000,
                    anonymous_per_minute: 1_000_000,
                    anonymous_burst: 1_000_000,
                    address_failures_per_minute: 1_000_000,
                    address_failure_burst: 1_000_000,
                    ..Default::default()
                },
            ));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send((listener.local_addr().unwrap().port(), token))
                .unwrap();
            // Runs until the test process exits.
            fresco_server::serve(listener, state, std::future::pending())
                .await
                .unwrap();
        });
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the server did not start")
}

#[test]
fn schemathesis_finds_nothing() {
    let Some(tool) = schemathesis() else {
        if std::env::var("FRESCO_REQUIRE_SCHEMATHESIS").as_deref() == Ok("1") {
            panic!("schemathesis is not installed (pip install schemathesis into .fresco/venv) and FRESCO_REQUIRE_SCHEMATHESIS=1");
        }
        eprintln!("SKIPPED: schemathesis is not installed (pip install schemathesis into .fresco/venv, or put it on PATH)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (port, token) = start_server(dir.path());
    let started = Instant::now();
    // Reproducible: the same requests on every run (FRESCO_SCHEMATHESIS_SEED explores others).
    let seed = std::env::var("FRESCO_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".into());
    // The document from a file (serving it needs a token too); requests carry the admin token,
    // and schemathesis checks that the secured operations refuse requests without it.
    let schema = dir.path().join("openapi.json");
    std::fs::write(
        &schema,
        fresco_server::openapi::document().to_json().unwrap(),
    )
    .unwrap();
    let url = schema.display().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let authorization = format!("Authorization: Bearer {token}");
    let run = |extra: &[&str]| {
        Command::new(&tool)
            .args([
                "run",
                &url,
                "--checks",
                "all",
                "--max-examples",
                "30",
                "--seed",
                &seed,
            ])
            .args([
                "--generation-database",
                "none",
                "--no-color",
                "--request-timeout",
                "10",
                "--url",
                &base,
                "--header",
                &authorization,
            ])
            .args(extra)
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()))
    };
    // Every route with every check, but the storage-event routes: their bodies are whatever
    // Azure or AWS send (documented as any JSON), and the meaning of a field decides between
    // 202 and 400. They get every check but "schema-valid data is accepted" in a second run;
    // their parsing is tested against the services' documented bodies in tests/events.rs.
    let main = run(&["--exclude-path-regex", "^/v1/events/"]);
    let events = run(&[
        "--include-path-regex",
        "^/v1/events/",
        "--exclude-checks",
        "positive_data_acceptance",
    ]);
    eprintln!("schemathesis took {:.1} s", started.elapsed().as_secs_f64());
    for output in [main, events] {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "schemathesis found problems ({}):\n{stdout}\n{stderr}",
            output.status
        );
    }
}
