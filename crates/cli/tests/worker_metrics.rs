//! `fresco worker --metrics-listen`: a fresh worker and a fresh server each serve every metric
//! family documented in docs/monitoring.md (the worker those marked *worker*) from the first
//! scrape, at zero, before any job; a job the worker then does moves its counters (a records
//! job its rows written and its preview, a dataset job its items scored and failed, which a
//! server on the same queue shows on its dashboard); a bad address is refused before any work.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use common::jobs::{read_log, wait_until};
use common::*;

/// The families of docs/monitoring.md's table: (name, type, served by a worker).
fn documented() -> Vec<(String, String, bool)> {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/monitoring.md"),
    )
    .unwrap();
    let table = doc
        .split("| metric | type | labels | served by | meaning |")
        .nth(1)
        .expect("the metrics table of docs/monitoring.md");
    let families: Vec<_> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_string(),
                cells[2].to_string(),
                cells[4].contains("worker"),
            )
        })
        .collect();
    assert!(families.len() >= 17, "{families:?}");
    families
}

/// `# TYPE` lines by family, and every sample by its line's key.
fn parse(text: &str) -> (BTreeMap<String, String>, BTreeMap<String, f64>) {
    let mut types = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_string(), kind.to_string());
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let (key, value) = line.rsplit_once(' ').unwrap();
            // Labels sorted, so that keys do not depend on the exporter's order.
            let key = match key.split_once('{') {
                Some((name, labels)) => {
                    let mut parts: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                    parts.sort();
                    format!("{name}{{{}}}", parts.join(","))
                }
                None => key.to_string(),
            };
            samples.insert(key, value.parse().unwrap());
        }
    }
    (types, samples)
}

/// Asserts every family is there with its documented type, and every sample of its counters
/// and histograms is zero (gauges are read from the queue at scrape time: a live worker counts).
fn assert_all_at_zero(text: &str, families: &[&(String, String, bool)], who: &str) {
    let (types, samples) = parse(text);
    for (name, kind, _) in families {
        assert_eq!(
            types.get(name.as_str()),
            Some(kind),
            "{who}: family {name} ({kind}) missing from the first scrape:\n{text}"
        );
        let of_family: Vec<_> = samples
            .iter()
            .filter(|(k, _)| k.starts_with(name.as_str()))
            .collect();
        assert!(!of_family.is_empty(), "{who}: no sample of {name}:\n{text}");
        if kind == "gauge" {
            continue;
        }
        for (key, value) in of_family {
            assert_eq!(*value, 0.0, "{who}: {key} is not zero before any job");
        }
    }
}

/// A process whose stderr goes to a file; killed on drop.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(mut cmd: Command, log: PathBuf) -> Running {
        let child = cmd.log_to(&log).spawn().expect("start fresco");
        Running { child, log }
    }

    /// The address after `marker` in the log, once it is there.
    fn address_after(&mut self, marker: &str) -> String {
        let mut address = String::new();
        wait_until(Duration::from_secs(60), marker, || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("fresco exited {status}:\n{}", read_log(&self.log));
            }
            if let Some(rest) = read_log(&self.log).split(marker).nth(1) {
                address = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
            !address.is_empty()
        });
        address
    }
}

fn token(db: &str) -> String {
    fresco([
        "tokens", "create", "--role", "admin", "--name", "metrics", "--db", db,
    ])
    .ok()
    .stdout
    .trim()
    .to_string()
}

#[test]
fn a_fresh_worker_and_server_serve_every_family_at_zero_and_a_job_moves_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("queue.db").display());
    let work = dir.path().join("work");
    let token = token(&db);
    let families = documented();

    let mut worker_cmd = fresco_cmd();
    worker_cmd
        .args(["worker", "--db", &db, "--metrics-listen", "127.0.0.1:0"])
        .arg("--work-dir")
        .arg(&work)
        .current_dir(dir.path());
    let mut worker = Running::start(worker_cmd, dir.path().join("worker.log"));
    let worker_url = worker.address_after("metrics on ");
    assert!(worker_url.ends_with("/metrics"), "{worker_url}");
    let first = fresco_testkit::http::get(&worker_url).call().expect(200);
    assert!(first
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/plain"));
    let text = first.text();
    let of_worker: Vec<_> = families.iter().filter(|f| f.2).collect();
    assert_all_at_zero(&text, &of_worker, "worker");
    // Only the worker's families: the server's HTTP and queue figures are the server's.
    assert!(!text.contains("fresco_http_requests_total"), "{text}");
    assert!(!text.contains("fresco_jobs{"), "{text}");
    // The endpoint serves /metrics alone.
    let body = fresco_testkit::http::get(&worker_url.replace("/metrics", "/v1/jobs"))
        .call()
        .expect(404)
        .json();
    assert_eq!(body["error"]["code"], "route-not-found");

    // A fresh server without workers of its own: every family, at zero.
    let mut serve_cmd = fresco_cmd();
    serve_cmd
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "0",
            "--db",
            &db,
        ])
        .arg("--allow-prefix")
        .arg(dir.path())
        .arg("--work-dir")
        .arg(&work)
        .current_dir(dir.path());
    let mut server = Running::start(serve_cmd, dir.path().join("serve.log"));
    let base = server.address_after("listening on ");
    let scrape = || {
        fresco_testkit::http::get(&format!("{base}/metrics"))
            .bearer(&token)
            .call()
            .ok()
            .text()
    };
    let all: Vec<_> = families.iter().collect();
    // The HTTP families hold this very scrape only after it is answered: the first scrape
    // shows them at zero too.
    assert_all_at_zero(&scrape(), &all, "server");

    // A job, done by the worker process: its own counters move.
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "160x120", 25, 1.2);
    let output = dir.path().join("styled.mp4");
    let submitted = fresco_testkit::http::post(&format!("{base}/v1/jobs"))
        .bearer(&token)
        .send_json(&serde_json::json!({
            "input": input, "output": output, "style": "vintage", "chunk_frames": 10,
        }))
        .ok()
        .json();
    let id = submitted["id"].as_str().unwrap().to_string();
    wait_succeeded(&base, &token, &id, &worker.log);

    let (_, after) = parse(&fresco_testkit::http::get(&worker_url).call().ok().text());
    let vintage = "{device=\"cpu\",model=\"vintage\"}";
    assert_eq!(after["fresco_chunks_claimed_total"], 3.0, "{after:?}");
    assert_eq!(after["fresco_chunks_completed_total"], 3.0, "{after:?}");
    assert_eq!(
        after[&format!("fresco_frames_scored_total{vintage}")],
        30.0,
        "{after:?}"
    );
    assert_eq!(
        after[&format!("fresco_inference_seconds_count{vintage}")],
        30.0
    );
    // The server's own counters did not move: the work was the worker's.
    let (_, served) = parse(&scrape());
    assert_eq!(served["fresco_chunks_claimed_total"], 0.0);
    assert_eq!(served["fresco_jobs{state=\"succeeded\"}"], 1.0);
    drop(server);
    drop(worker);
}

#[test]
fn a_records_job_counts_the_rows_it_writes_and_saves_its_preview() {
    let Some(models) = fresco_testkit::models::real_model_dir("scoring/efficientnet-lite0") else {
        return;
    };
    let scoring = models.join("scoring");
    let dir = tempfile::tempdir().unwrap();
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("queue.db").display()
    );
    let mut worker_cmd = fresco_cmd();
    worker_cmd
        .args(["worker", "--db", &db, "--metrics-listen", "127.0.0.1:0"])
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .current_dir(dir.path());
    let mut worker = Running::start(worker_cmd, dir.path().join("worker.log"));
    let worker_url = worker.address_after("metrics on ");

    // 30 frames, every fifth scored: 6 rows, in chunks of 10 frames (2 rows each).
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "160x120", 25, 1.2);
    let output = dir.path().join("tags.jsonl");
    let id = fresco([
        "jobs",
        "submit",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--model",
        scoring.join("efficientnet-lite0.onnx").to_str().unwrap(),
        "--task",
        "classify",
        "--labels",
        scoring.join("imagenet_labels.txt").to_str().unwrap(),
        "--every",
        "5",
        "--chunk-frames",
        "10",
        "--db",
        &db,
    ])
    .ok()
    .stdout
    .trim()
    .to_string();
    fresco_testkit::process::wait_until(Duration::from_secs(180), "the job to succeed", || {
        let shown = fresco(["jobs", "show", &id, "--json", "--db", &db])
            .ok()
            .json();
        let state = shown["state"]
            .as_str()
            .or_else(|| shown["job"]["state"].as_str())
            .unwrap_or_default()
            .to_string();
        assert!(
            !["failed", "canceled"].contains(&state.as_str()),
            "job ended {state}: {shown}\n{}",
            read_log(&worker.log)
        );
        state == "succeeded"
    });
    assert_eq!(std::fs::read_to_string(&output).unwrap().lines().count(), 6);
    let (_, after) = parse(&fresco_testkit::http::get(&worker_url).call().ok().text());
    assert_eq!(after["fresco_record_rows_written_total"], 6.0, "{after:?}");
    assert_eq!(after["fresco_chunks_completed_total"], 3.0, "{after:?}");
    assert_eq!(after["fresco_previews_saved_total"], 1.0, "{after:?}");
}

/// Waits for job `id` of `db` to succeed (a failed or canceled job is an error naming `log`).
fn wait_job_succeeded(db: &str, id: &str, log: &Path) {
    fresco_testkit::process::wait_until(Duration::from_secs(180), "the job to succeed", || {
        let shown = fresco(["jobs", "show", id, "--json", "--db", db])
            .ok()
            .json();
        let state = shown["state"]
            .as_str()
            .or_else(|| shown["job"]["state"].as_str())
            .unwrap_or_default()
            .to_string();
        assert!(
            !["failed", "canceled"].contains(&state.as_str()),
            "job ended {state}: {shown}\n{}",
            read_log(log)
        );
        state == "succeeded"
    });
}

#[test]
fn a_dataset_job_counts_items_scored_and_failed_on_metrics_and_the_dashboard() {
    let Some(models) = fresco_testkit::models::real_model_dir("scoring/efficientnet-lite0") else {
        return;
    };
    let scoring = models.join("scoring");
    let dir = tempfile::tempdir().unwrap();
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("queue.db").display()
    );
    let work = dir.path().join("work");
    let mut worker_cmd = fresco_cmd();
    worker_cmd
        .args(["worker", "--db", &db, "--metrics-listen", "127.0.0.1:0"])
        .arg("--work-dir")
        .arg(&work)
        .current_dir(dir.path());
    let mut worker = Running::start(worker_cmd, dir.path().join("worker.log"));
    let worker_url = worker.address_after("metrics on ");

    // Three pictures, an empty file and a text file named like an image; a note skipped.
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for name in ["a.jpg", "b.jpg", "c.jpg"] {
        std::fs::copy(scoring.join("dog.jpg"), photos.join(name)).unwrap();
    }
    std::fs::write(photos.join("d-empty.jpg"), b"").unwrap();
    std::fs::write(photos.join("e-notes.png"), b"not a picture").unwrap();
    std::fs::write(photos.join("readme.txt"), b"skipped").unwrap();
    let output = dir.path().join("tags.jsonl");
    let id = fresco([
        "jobs",
        "submit",
        photos.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--model",
        scoring.join("efficientnet-lite0.onnx").to_str().unwrap(),
        "--task",
        "classify",
        "--max-failed-fraction",
        "1",
        "--chunk-frames",
        "2",
        "--db",
        &db,
    ])
    .ok()
    .stdout
    .trim()
    .to_string();
    wait_job_succeeded(&db, &id, &worker.log);
    assert_eq!(std::fs::read_to_string(&output).unwrap().lines().count(), 5);
    let (_, after) = parse(&fresco_testkit::http::get(&worker_url).call().ok().text());
    assert_eq!(after["fresco_dataset_items_scored_total"], 3.0, "{after:?}");
    assert_eq!(
        after["fresco_dataset_items_failed_total{kind=\"empty\"}"], 1.0,
        "{after:?}"
    );
    assert_eq!(
        after["fresco_dataset_items_failed_total{kind=\"not-image\"}"], 1.0,
        "{after:?}"
    );
    assert_eq!(after["fresco_record_rows_written_total"], 5.0, "{after:?}");
    assert_eq!(after["fresco_chunks_completed_total"], 3.0, "{after:?}");
    drop(worker);

    // A server on the same queue shows the job's items from the queue's counts.
    let token = token(&db);
    let mut serve_cmd = fresco_cmd();
    serve_cmd
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "0",
            "--db",
            &db,
        ])
        .arg("--work-dir")
        .arg(&work)
        .current_dir(dir.path());
    let mut server = Running::start(serve_cmd, dir.path().join("serve.log"));
    let base = server.address_after("listening on ");
    let session = fresco_testkit::http::post(&format!("{base}/v1/session"))
        .bearer(&token)
        .send(b"")
        .expect(201);
    let cookie = session
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let detail = fresco_testkit::http::get(&format!("{base}/ui/jobs/{id}/detail"))
        .header("cookie", &cookie)
        .call()
        .ok()
        .json();
    let items = &detail["job"]["items"];
    assert_eq!(items["done"], 5, "{detail:#}");
    assert_eq!(items["scored"], 3, "{detail:#}");
    assert_eq!(items["failed"], 2, "{detail:#}");
    assert_eq!(items["skipped"], 1, "{detail:#}");
    assert_eq!(items["total"], 5, "{detail:#}");
    assert!(items["per_second"].as_f64().unwrap() > 0.0, "{detail:#}");
    assert_eq!(
        detail["rows"],
        serde_json::json!({"written": 5, "total": 5})
    );
    let overview = fresco_testkit::http::get(&format!("{base}/ui/overview"))
        .header("cookie", &cookie)
        .call()
        .ok()
        .json();
    assert_eq!(overview["jobs"][0]["items"]["failed"], 2, "{overview:#}");
    drop(server);
}

#[test]
fn a_metrics_address_that_cannot_be_used_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("queue.db").display());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = listener.local_addr().unwrap().to_string();
    for addr in ["not-an-address", "127.0.0.1:99999", taken.as_str()] {
        let out = fresco([
            "worker",
            "--db",
            &db,
            "--until-idle",
            "--metrics-listen",
            addr,
        ]);
        out.fails(4, addr, &["--metrics-listen", "cannot listen"]);
    }
    drop(listener);
}
