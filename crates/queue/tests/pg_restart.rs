//! The PostgreSQL queue outlives a server restart: the calls after it work (pooled connections
//! are checked before use) and the work notifications come back (the listener reconnects).
//!
//! It starts, restarts and stops a server of its own with `scripts/postgres.sh` (PostgreSQL 15
//! binaries; run as root or as a user that may run them), in its own folder and on its own port
//! so that it does not disturb the server the other tests share. Like the other PostgreSQL tests
//! it runs where `FRESCO_TEST_POSTGRES_URL` is set (PostgreSQL is installed), and skips with a
//! message otherwise unless `FRESCO_REQUIRE_POSTGRES=1`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use fresco_core::RetryBudgets;
use fresco_queue::{ClaimFilter, LeaseStatus, NewJob};

const PORT: &str = "54339";

struct Server {
    dir: PathBuf,
}

impl Server {
    fn script(&self, verb: &str) -> String {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/postgres.sh");
        let out = Command::new(script)
            .arg(verb)
            .arg(&self.dir)
            .env("PGPORT", PORT)
            .output()
            .expect("run scripts/postgres.sh");
        assert!(
            out.status.success(),
            "postgres.sh {verb}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout.lines().last().unwrap_or_default().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.script("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn job(identity: &str) -> NewJob {
    NewJob {
        identity: identity.into(),
        input: "in".into(),
        output: "out".into(),
        spec: "{}".into(),
        device_kind: fresco_core::DeviceKind::Cpu,
        priority: 0,
        budgets: RetryBudgets::default(),
        idempotency_key: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_queue_survives_a_server_restart() {
    if std::env::var("FRESCO_TEST_POSTGRES_URL").map_or(true, |u| u.is_empty()) {
        assert!(
            std::env::var("FRESCO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "FRESCO_REQUIRE_POSTGRES=1 but FRESCO_TEST_POSTGRES_URL is not set"
        );
        eprintln!("SKIPPED: PostgreSQL is not available (set FRESCO_TEST_POSTGRES_URL)");
        return;
    }
    let server = Server {
        dir: std::env::temp_dir().join(format!("fresco-pg-restart-{}", std::process::id())),
    };
    let url = server.script("start");
    let q = fresco_queue::open(&url).await.unwrap();
    let other = fresco_queue::open(&url).await.unwrap();
    let lease_time = Duration::from_secs(60);
    q.submit(job("before")).await.unwrap();
    let lease = q
        .claim("w", lease_time, &ClaimFilter::default())
        .await
        .unwrap()
        .unwrap();
    // The listener is up (claims start it).
    q.wait_for_work(Duration::from_millis(10)).await;

    server.script("restart");

    // Every verb works on the first call after the restart: no dead connection is handed out.
    assert_eq!(
        q.heartbeat(&lease, lease_time).await.unwrap(),
        LeaseStatus::Held
    );
    q.submit(job("after")).await.unwrap();
    assert_eq!(q.jobs(&[], 10).await.unwrap().len(), 2);
    assert_eq!(other.jobs(&[], 10).await.unwrap().len(), 2);

    // The listener is back: a submit elsewhere wakes a waiter at once. Let it reconnect (it wakes
    // the waiters when it does: notifications may have been missed meanwhile), then wait.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(q
        .claim("w", lease_time, &ClaimFilter::default())
        .await
        .unwrap()
        .is_some());
    assert!(q
        .claim("w", lease_time, &ClaimFilter::default())
        .await
        .unwrap()
        .is_none());
    let waiting = tokio::spawn(async move {
        let start = Instant::now();
        q.wait_for_work(Duration::from_secs(10)).await;
        start.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    other.submit(job("woken")).await.unwrap();
    let waited = waiting.await.unwrap();
    assert!(
        waited < Duration::from_secs(1),
        "the waiter slept {waited:?}"
    );
}
