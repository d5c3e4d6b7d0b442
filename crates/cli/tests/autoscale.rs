//! `fresco serve --autoscale MIN..MAX`: worker processes appear when a job is queued (up to
//! MAX), stay warm through the cool-down so that a second job reuses them, and go to zero once
//! nothing has been queued for the idle time. Jobs go in through the database (`fresco jobs
//! submit --db`); the processes are followed through the autoscaler's log lines, `/proc` and
//! the workers that the queue records for each task. About 25 s.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::jobs::{read_log, sqlite_queue, wait_until, TestQueue};
use common::*;

/// Seconds the workers stay up without work.
const IDLE_SECONDS: u64 = 6;

/// A `fresco serve --autoscale` with its log, killed if the test fails.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(dir: &Path, queue: &TestQueue, range: &str) -> Server {
    let log = dir.join("serve.log");
    let child = fresco_cmd()
        .args(["serve", "--listen", "127.0.0.1:0", "--autoscale", range])
        .args(["--autoscale-idle", &IDLE_SECONDS.to_string()])
        .args([
            "--threads",
            "1",
            "--lease-seconds",
            "10",
            "--grace-seconds",
            "5",
        ])
        .args(queue.args())
        .env("FRESCO_LOG", "info,ort=error,sqlx=warn")
        .log_to(&log)
        .spawn()
        .expect("start fresco serve");
    wait_until(Duration::from_secs(30), "the server to listen", || {
        read_log(&log).contains("listening on ")
    });
    Server { child, log }
}

/// Pids the autoscaler logged as started.
fn started_pids(log: &str) -> Vec<u32> {
    pids_after(log, "autoscale: started worker pid ")
}

fn pids_after(log: &str, marker: &str) -> Vec<u32> {
    log.lines()
        .filter_map(|line| line.split(marker).nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Submits a 10-chunk job styled with the built-in vintage filter; returns its id.
fn submit(queue: &TestQueue, input: &Path, output: &Path) -> String {
    let mut args = vec![
        s("jobs"),
        s("submit"),
        p(input),
        s("-o"),
        p(output),
        s("--style"),
        s("vintage"),
        s("--chunk-frames"),
        s("5"),
    ];
    args.extend(queue.args());
    let out = run_with_timeout(fresco_cmd().args(args), Duration::from_secs(60)).ok();
    out.stdout.trim().to_string()
}

fn wait_succeeded(queue: &TestQueue, id: &str, server: &Server) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let shown = queue.show(id);
        let state = shown["state"]
            .as_str()
            .or_else(|| shown["job"]["state"].as_str())
            .unwrap_or_default()
            .to_string();
        match state.as_str() {
            "succeeded" => return shown,
            "failed" | "canceled" => panic!(
                "job {id} ended {state}: {shown}\n--- serve log ---\n{}",
                read_log(&server.log)
            ),
            _ => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "job {id} did not finish; serve log:\n{}",
            read_log(&server.log)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pids of the workers that held the job's tasks (worker names are `host:pid:n`).
fn task_worker_pids(shown: &serde_json::Value) -> BTreeSet<u32> {
    shown["tasks"]
        .as_array()
        .expect("jobs show --json lists tasks")
        .iter()
        .filter_map(|t| t["worker"].as_str())
        .filter_map(|name| name.rsplit(':').nth(1)?.parse().ok())
        .collect()
}

#[test]
fn workers_follow_the_queue_and_stay_warm_through_the_cool_down() {
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(dir.path());
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "160x120", 25, 2.0);
    let mut server = start_server(dir.path(), &queue, "0..2");

    // Nothing queued: no worker.
    std::thread::sleep(Duration::from_secs(2));
    let log = read_log(&server.log);
    assert!(
        log.contains("autoscale: 0..2 worker processes, stopped after 6 s without work"),
        "{log}"
    );
    assert!(
        started_pids(&log).is_empty(),
        "workers without work:\n{log}"
    );

    // A job: workers appear, as many as the work allows and no more than MAX.
    let first = submit(&queue, &input, &dir.path().join("first.mp4"));
    wait_until(Duration::from_secs(20), "a worker to start", || {
        !started_pids(&read_log(&server.log)).is_empty()
    });
    let shown = wait_succeeded(&queue, &first, &server);
    let log = read_log(&server.log);
    let warm = started_pids(&log);
    assert_eq!(
        warm.len(),
        2,
        "ten chunks should bring up MAX=2 workers:\n{log}"
    );
    assert!(
        log.contains("autoscale: up 0 -> 1 worker: work is waiting"),
        "{log}"
    );
    assert!(
        log.contains("autoscale: up 1 -> 2 workers: work is waiting"),
        "{log}"
    );
    assert!(
        warm.iter().all(|pid| alive(*pid)),
        "a worker exited early:\n{log}"
    );
    let first_workers = task_worker_pids(&shown);
    assert!(
        first_workers.iter().all(|pid| warm.contains(pid)),
        "tasks done by {first_workers:?}, not by the started workers {warm:?}"
    );

    // A second job during the cool-down: the warm workers take it, none is started.
    let second = submit(&queue, &input, &dir.path().join("second.mp4"));
    let shown = wait_succeeded(&queue, &second, &server);
    let done_at = Instant::now();
    let log = read_log(&server.log);
    assert_eq!(
        started_pids(&log),
        warm,
        "a cold start for the second job:\n{log}"
    );
    assert!(
        !log.contains("autoscale: down"),
        "workers stopped too soon:\n{log}"
    );
    let second_workers = task_worker_pids(&shown);
    assert!(
        !second_workers.is_empty() && second_workers.iter().all(|pid| warm.contains(pid)),
        "second job done by {second_workers:?}, expected the warm workers {warm:?}"
    );

    // Drained: after the idle time, no worker is left.
    wait_until(
        Duration::from_secs(IDLE_SECONDS + 20),
        "the workers to be stopped",
        || read_log(&server.log).contains("autoscale: down 2 -> 0 workers: no work for 6 s"),
    );
    let waited = done_at.elapsed();
    assert!(
        waited >= Duration::from_secs(IDLE_SECONDS - 2),
        "stopped after {waited:?}, before the idle time of {IDLE_SECONDS} s"
    );
    wait_until(Duration::from_secs(20), "the workers to exit", || {
        warm.iter().all(|pid| !alive(*pid))
    });
    let log = read_log(&server.log);
    let exited: BTreeSet<u32> = pids_after(&log, "autoscale: worker pid ")
        .into_iter()
        .collect();
    assert_eq!(
        exited,
        warm.iter().copied().collect::<BTreeSet<u32>>(),
        "every worker's exit is logged:\n{log}"
    );
    assert!(log.contains("autoscale: cool-down: "), "{log}");

    let status = terminate(&mut server.child, Duration::from_secs(30), "fresco serve");
    assert!(status.success(), "serve exited {status}");
}

#[test]
fn autoscale_ranges_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("q.db").display());
    let out = fresco(["serve", "--autoscale", "3..1", "--db", &db]);
    assert_eq!(out.code, Some(2), "{}", out.dump());
    assert!(
        out.stderr
            .contains("the fewest workers (3) is more than the most (1)"),
        "{}",
        out.dump()
    );
    let out = fresco([
        "serve",
        "--autoscale",
        "0..2",
        "--workers",
        "2",
        "--db",
        &db,
    ]);
    assert_eq!(out.code, Some(2), "{}", out.dump());
    assert!(out.stderr.contains("--workers"), "{}", out.dump());
}
