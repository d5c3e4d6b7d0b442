//! Watching fresco work, end to end against `fresco serve`: the dashboard in headless Chromium
//! (Debian's `chromium`, driven by `tests/browser/dashboard.mjs` with playwright-core; a video
//! job's live bar and preview, and where the classifier is here a dataset job's items), the
//! `/metrics` text through Python's `prometheus_client` parser with counters that move as a
//! job runs, JSON logs whose every line parses and whose task lines carry the job's id, and
//! `fresco top --once` from the database and through the API.
//!
//! Chromium or the node modules (`npm ci` in tests/browser) missing: the browser test says so
//! and passes, unless `FRESCO_REQUIRE_BROWSER=1`. `prometheus_client` missing from
//! `.fresco/venv`: the parser check says so and is skipped, unless
//! `FRESCO_REQUIRE_PROMETHEUS_CLIENT=1`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::jobs::read_log;
use common::*;
use serde_json::Value;

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A `fresco serve` on a free port with a token of its own; SIGTERM on `stop`, killed on drop.
struct Served {
    child: Child,
    base: String,
    log: PathBuf,
    token: String,
    db: String,
}

impl Served {
    fn start(dir: &Path, global: &[&str], env: &[(&str, &str)]) -> Served {
        let db = format!("sqlite://{}", dir.join("queue.db").display());
        let token = make_token(&db);
        let log = dir.join("serve.log");
        let mut cmd = fresco_cmd();
        cmd.args(global)
            .args(["serve", "--listen", "127.0.0.1:0", "--workers", "1"])
            .args(["--db", &db])
            // The test's inputs and outputs are absolute paths in its temporary folder.
            .arg("--allow-prefix")
            .arg(dir)
            .arg("--work-dir")
            .arg(dir.join("work"))
            .current_dir(dir)
            .log_to(&log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start fresco serve");
        let base = word_after(&log, "listening on ", Duration::from_secs(60));
        Served {
            child,
            base,
            log,
            token,
            db,
        }
    }

    fn get(&self, path: &str) -> fresco_testkit::http::Answer {
        fresco_testkit::http::get(&format!("{}{path}", self.base))
            .bearer(&self.token)
            .call()
            .ok()
    }

    fn submit(&self, body: Value) -> String {
        let job = fresco_testkit::http::post(&format!("{}/v1/jobs", self.base))
            .bearer(&self.token)
            .send_json(&body)
            .expect(201)
            .json();
        job["id"].as_str().unwrap().to_string()
    }

    fn stop(&mut self) {
        let status = terminate(
            &mut self.child,
            Duration::from_secs(60),
            "fresco serve after SIGTERM",
        );
        assert!(
            status.success(),
            "fresco serve exited {status}:\n{}",
            read_log(&self.log)
        );
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An operator token in the queue at `db` (as `fresco tokens create` makes one).
fn make_token(db: &str) -> String {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let queue = fresco_queue::open(db).await.expect("open the queue");
        let issued = queue
            .create_token(
                &fresco_queue::NewToken {
                    name: "dashboard-test".into(),
                    role: fresco_queue::Role::Operator,
                    expires_at_ms: None,
                },
                None,
            )
            .await
            .expect("create a token");
        issued.secret
    })
}

/// Whether a test that needs `what` runs: true if present; false (after saying why) if absent
/// and `require` is not set to 1; a failure if absent and required.
fn present(ok: bool, what: &str, require: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var(require).is_ok_and(|v| v == "1") {
        panic!("{require}=1 but {what}");
    }
    eprintln!("skipped: {what} (set {require}=1 to make this an error)");
    false
}

#[test]
fn the_dashboard_shows_a_job_live_with_its_preview_in_chromium() {
    let chromium = std::env::var("FRESCO_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let script_dir = repo().join("tests/browser");
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present(
        node_ok && Path::new(&chromium).is_file() && script_dir.join("node_modules/playwright-core").is_dir(),
        &format!(
            "no browser to test with (node on PATH, {chromium}, and tests/browser/node_modules from `npm ci` are needed)"
        ),
        "FRESCO_REQUIRE_BROWSER",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "320x240", 20, 3.0);
    let output = dir.path().join("styled.mp4");
    // Slow frames, so that the bar is seen between 0 and 100 %.
    let mut server = Served::start(dir.path(), &[], &[("FRESCO_TEST_FRAME_DELAY_MS", "40")]);
    let shots = repo().join("out/screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    // A dataset job too, where the classifier is here: three pictures and a text file named
    // like an image (an error row).
    let scoring = fresco_testkit::models::real_model_dir("scoring/efficientnet-lite0")
        .map(|models| models.join("scoring"));
    let photos = dir.path().join("photos");
    let mut script = Command::new("node");
    script
        .arg(script_dir.join("dashboard.mjs"))
        .env("BASE", &server.base)
        .env("TOKEN", &server.token)
        .env("INPUT", &input)
        .env("OUTPUT", &output)
        .env("SHOTS", &shots)
        .env("CHROMIUM", &chromium);
    if let Some(scoring) = &scoring {
        std::fs::create_dir_all(&photos).unwrap();
        for name in ["a.jpg", "b.jpg", "c.jpg"] {
            std::fs::copy(scoring.join("dog.jpg"), photos.join(name)).unwrap();
        }
        std::fs::write(photos.join("d.png"), b"not a picture").unwrap();
        // The server reads models only under its roots: a copy in the test's folder.
        let model = dir.path().join("efficientnet-lite0.onnx");
        std::fs::copy(scoring.join("efficientnet-lite0.onnx"), &model).unwrap();
        script
            .env("DATASET", &photos)
            .env("DATASET_OUTPUT", dir.path().join("tags.jsonl"))
            .env("MODEL", &model);
    }
    let started = std::time::Instant::now();
    let out = run_with_timeout(&mut script, Duration::from_secs(300));
    assert_eq!(
        out.code,
        Some(0),
        "the browser script failed:\n{}\n--- server ---\n{}",
        out.dump(),
        read_log(&server.log)
    );
    eprintln!("browser script: {:.1} s", started.elapsed().as_secs_f64());
    let report: Value = serde_json::from_str(out.stdout.trim().lines().last().unwrap())
        .unwrap_or_else(|e| panic!("no report ({e}):\n{}", out.dump()));
    assert_eq!(report["pageErrors"], serde_json::json!([]), "{report}");
    assert_eq!(report["consoleErrors"], serde_json::json!([]), "{report}");
    assert_eq!(report["outsideRequests"], serde_json::json!([]), "{report}");
    assert_eq!(report["sameDocument"], true, "the page reloaded: {report}");
    let seen: Vec<f64> = report["progressSeen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(seen.last(), Some(&100.0), "{report}");
    assert!(
        seen.iter().any(|p| *p > 0.0 && *p < 100.0),
        "the bar was never seen between 0 and 100 %: {report}"
    );
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "the bar went back: {report}"
    );
    for size in report["previewSizes"].as_array().unwrap() {
        let (w, h) = (size[0].as_u64().unwrap(), size[1].as_u64().unwrap());
        assert!(w > 0 && h > 0 && w <= 640, "preview size {w}x{h}: {report}");
    }
    let strip: Vec<&str> = report["strip"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(strip.len(), 8, "plan, 6 chunks, assemble: {report}");
    assert!(strip.iter().all(|c| c.ends_with(":done")), "{report}");
    assert!(output.is_file());
    if scoring.is_some() {
        assert_eq!(
            report["datasetItemsLine"], "4 of 4 items (3 scored, 1 failed, 0 skipped)",
            "{report}"
        );
        assert!(
            report["datasetRate"]
                .as_str()
                .is_some_and(|r| r.ends_with(" items/s") && !r.starts_with('–')),
            "{report}"
        );
        let facts = &report["datasetFacts"];
        assert_eq!(
            facts["items"], "4 of 4 items (3 scored, 1 failed, 0 skipped)",
            "{report}"
        );
        assert_eq!(facts["rows"], "4", "{report}");
        assert!(facts.get("frames").is_none(), "{report}");
        // No preview is made of a dataset: no empty image frames either.
        assert_eq!(report["datasetPreviewShown"], false, "{report}");
    }
    for shot in ["login.png", "overview.png", "job.png"] {
        assert!(
            shots.join(shot).metadata().is_ok_and(|m| m.len() > 1000),
            "{shot}"
        );
    }
    server.stop();
}

/// `/metrics` samples as `name{label="value",...}` → value, parsed by `prometheus_client`
/// when it is installed (None, after saying so, when it is not), else by a plain reading.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let python = repo().join(".fresco/venv/bin/python3");
    let parser = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
print(json.dumps(out))
"#;
    let has_client = Command::new(&python)
        .args(["-c", "import prometheus_client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present(
        has_client,
        "prometheus_client is not installed in .fresco/venv (scripts/test.sh installs it)",
        "FRESCO_REQUIRE_PROMETHEUS_CLIENT",
    ) {
        let mut child = Command::new(&python)
            .args(["-c", parser])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "prometheus_client cannot parse /metrics: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        return serde_json::from_slice(&out.stdout).unwrap();
    }
    // Without the parser: `name{labels} value` lines, labels sorted as above.
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap();
            let key = match key.split_once('{') {
                Some((name, labels)) => {
                    let mut parts: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                    parts.sort();
                    format!("{name}{{{}}}", parts.join(","))
                }
                None => key.to_string(),
            };
            (key, value.parse().unwrap())
        })
        .collect()
}

fn sample(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

#[test]
fn metrics_move_as_a_job_runs_json_logs_name_the_job_and_top_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "160x120", 25, 1.2);
    let output = dir.path().join("styled.mp4");
    let mut server = Served::start(dir.path(), &["--log-format", "json"], &[]);

    let before = samples(&server.get("/metrics").text());
    let id = server.submit(serde_json::json!({
        "input": input, "output": output, "style": "vintage", "chunk_frames": 10,
    }));
    wait_succeeded(&server.base, &server.token, &id, &server.log);
    let text = server.get("/metrics").text();
    let after = samples(&text);
    let moved = |key: &str| sample(&after, key) - sample(&before, key);
    let vintage = "{device=\"cpu\",model=\"vintage\"}";
    assert_eq!(moved("fresco_chunks_claimed_total"), 3.0, "{text}");
    assert_eq!(moved("fresco_chunks_completed_total"), 3.0, "{text}");
    assert_eq!(
        moved(&format!("fresco_frames_scored_total{vintage}")),
        30.0,
        "{text}"
    );
    assert_eq!(
        moved(&format!("fresco_inference_seconds_count{vintage}")),
        30.0,
        "{text}"
    );
    assert!(
        moved(&format!("fresco_inference_seconds_sum{vintage}")) > 0.0,
        "{text}"
    );
    assert_eq!(moved("fresco_previews_saved_total"), 1.0, "{text}");
    assert_eq!(
        sample(&after, "fresco_jobs{state=\"succeeded\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(&after, "fresco_jobs{state=\"running\"}"),
        0.0,
        "{text}"
    );
    assert_eq!(sample(&after, "fresco_queue_pending_tasks"), 0.0, "{text}");
    assert_eq!(sample(&after, "fresco_active_workers"), 1.0, "{text}");
    assert_eq!(
        moved("fresco_http_requests_total{method=\"POST\",route=\"/v1/jobs\",status=\"201\"}"),
        1.0,
        "{text}"
    );
    assert!(
        moved("fresco_http_requests_total{method=\"GET\",route=\"/v1/jobs/{id}\",status=\"200\"}")
            >= 1.0
    );
    assert!(!text.contains(&id), "a job id in a label: {text}");

    // fresco top, from the database and through the API.
    let top = fresco(["top", "--once", "--db", &server.db]).ok();
    let short = &id[..8];
    let line = top
        .stdout
        .lines()
        .find(|l| l.starts_with(short))
        .unwrap_or_else(|| panic!("no line for the job:\n{}", top.stdout));
    assert!(
        line.contains("succeeded") && line.contains("100%") && line.contains("vintage"),
        "{line}"
    );
    assert!(top.stdout.contains("succeeded 1"), "{}", top.stdout);
    assert!(
        top.stdout.contains("throughput, last hour"),
        "{}",
        top.stdout
    );
    assert!(
        top.stdout.contains(":0 "),
        "the worker is listed:\n{}",
        top.stdout
    );
    let api = run_with_timeout(
        fresco_cmd()
            .args(["top", "--once", "--server", &server.base])
            .env("FRESCO_TOKEN", &server.token),
        RUN_TIMEOUT,
    )
    .ok();
    assert!(
        api.stdout
            .lines()
            .any(|l| l.starts_with(short) && l.contains("100%")),
        "{}",
        api.stdout
    );
    let refused = run_with_timeout(
        fresco_cmd()
            .args(["top", "--once", "--server", &server.base])
            .env_remove("FRESCO_TOKEN"),
        RUN_TIMEOUT,
    );
    refused.fails(2, &server.base, &["FRESCO_TOKEN", "401"]);
    // The same token and TLS options as `fresco jobs --server`.
    let scratch = tempfile::tempdir().unwrap();
    let token_file = scratch.path().join("token");
    std::fs::write(&token_file, format!("{}\n", server.token)).unwrap();
    let from_file = run_with_timeout(
        fresco_cmd()
            .args(["top", "--once", "--server", &server.base, "--token-file"])
            .arg(&token_file)
            .env_remove("FRESCO_TOKEN"),
        RUN_TIMEOUT,
    )
    .ok();
    assert!(
        from_file
            .stdout
            .lines()
            .any(|l| l.starts_with(short) && l.contains("100%")),
        "{}",
        from_file.stdout
    );
    let wrong = scratch.path().join("wrong");
    std::fs::write(&wrong, "not-a-token").unwrap();
    run_with_timeout(
        fresco_cmd()
            .args(["top", "--once", "--server", &server.base, "--token-file"])
            .arg(&wrong)
            .env_remove("FRESCO_TOKEN"),
        RUN_TIMEOUT,
    )
    .fails(2, &server.base, &["401"]);
    run_with_timeout(
        fresco_cmd()
            .args(["top", "--once", "--server", &server.base, "--token-file"])
            .arg(scratch.path().join("absent"))
            .env_remove("FRESCO_TOKEN"),
        RUN_TIMEOUT,
    )
    .fails(2, "absent", &["--token-file", "cannot read"]);
    let not_pem = scratch.path().join("ca.pem");
    std::fs::write(&not_pem, "no certificate here").unwrap();
    run_with_timeout(
        fresco_cmd()
            .args(["top", "--once", "--server", &server.base, "--ca-cert"])
            .arg(&not_pem)
            .env("FRESCO_TOKEN", &server.token),
        RUN_TIMEOUT,
    )
    .fails(2, "ca.pem", &["--ca-cert", "no PEM certificate"]);

    server.stop();
    let log = read_log(&server.log);
    let mut of_the_job = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            entry["level"].is_string() && entry["message"].is_string(),
            "{line}"
        );
        let in_span = entry["span"]["job_id"] == id.as_str();
        let names_it = entry["job"] == id.as_str() || entry["job_id"] == id.as_str();
        if in_span {
            of_the_job += 1;
            assert!(entry["span"]["chunk"].is_u64(), "{line}");
        }
        if entry["message"].as_str().unwrap().contains(&id) {
            assert!(
                in_span || names_it,
                "a line about the job without its id as a field: {line}"
            );
        }
    }
    // Claimed, done and more for the plan, three chunks and the assembly.
    assert!(
        of_the_job >= 10,
        "{of_the_job} lines in the job's spans:\n{log}"
    );
}
