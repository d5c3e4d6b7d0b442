//! `fresco serve` end to end: the HTTP API and its in-process workers in one process.

mod common;

use common::jobs::{read_log, wait_until};
use common::*;
use std::process::Child;
use std::time::Duration;

/// A running `fresco serve` on a free port, stopped (SIGTERM) when dropped.
struct Server {
    child: Child,
    base: String,
    log: std::path::PathBuf,
    /// An admin token made with `fresco tokens create`, and the file that holds it.
    token: String,
    token_file: std::path::PathBuf,
}

impl Server {
    fn start(dir: &std::path::Path) -> Server {
        Server::start_with(dir, &[])
    }

    /// A server that takes inputs and outputs anywhere under `dir` (the test's temporary
    /// folder), besides its data store.
    fn start_with(dir: &std::path::Path, extra: &[&std::ffi::OsStr]) -> Server {
        let mut args = vec![s("--allow-prefix"), dir.as_os_str()];
        args.extend_from_slice(extra);
        Server::launch(dir, &args)
    }

    /// A server with only `args` (and its queue and work folder in `dir`).
    fn launch(dir: &std::path::Path, extra: &[&std::ffi::OsStr]) -> Server {
        let stamp = std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos();
        let log = dir.join(format!("serve-{stamp}.log"));
        let db = format!("sqlite://{}", dir.join("queue.db").display());
        let made = fresco([
            s("tokens"),
            s("create"),
            s("--role"),
            s("admin"),
            s("--name"),
            s(&format!("admin-{stamp}")),
            s("--db"),
            s(&db),
        ])
        .ok();
        let token = made.stdout.trim().to_string();
        let token_file = dir.join(format!("token-{stamp}"));
        std::fs::write(&token_file, &token).unwrap();
        let child = fresco_cmd()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .arg("--db")
            .arg(format!("sqlite://{}", dir.join("queue.db").display()))
            .arg("--work-dir")
            .arg(dir.join("work"))
            .log_to(&log)
            .spawn()
            .expect("start fresco serve");
        let base = word_after(&log, "listening on ", Duration::from_secs(30));
        Server {
            child,
            base,
            log,
            token,
            token_file,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn post(&self, url: &str) -> fresco_testkit::http::Request {
        fresco_testkit::http::post(url).bearer(&self.token)
    }

    fn json(&self, url: &str) -> serde_json::Value {
        fresco_testkit::http::get(url)
            .bearer(&self.token)
            .call()
            .ok()
            .json()
    }

    fn stop(&mut self) -> std::process::ExitStatus {
        terminate(
            &mut self.child,
            Duration::from_secs(30),
            "fresco serve after SIGTERM",
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_job_submitted_over_http_is_styled_frame_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "64x48", 25, 0.8);
    let model = identity_model(dir.path());
    let output = dir.path().join("out.mp4");
    let mut server = Server::start(dir.path());

    let body = serde_json::json!({
        "input": input,
        "output": output,
        "model": model,
        "codec": "libx264rgb",
        "crf": 0,
        "chunk_frames": 7,
    });
    let job = server
        .post(&server.url("/v1/jobs"))
        .header("Idempotency-Key", "clip-1")
        .send_json(&body)
        .expect(201)
        .json();
    let id = job["id"].as_str().unwrap().to_string();

    // A retried submission with the same key is the same job.
    let again = server
        .post(&server.url("/v1/jobs"))
        .header("Idempotency-Key", "clip-1")
        .send_json(&body)
        .expect(200);
    assert_eq!(again.json()["id"], id.as_str());

    let job_url = server.url(&format!("/v1/jobs/{id}"));
    wait_until(Duration::from_secs(120), "the job to finish", || {
        let state = server.json(&job_url)["state"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_ne!(state, "failed", "{}", server.json(&job_url));
        state == "succeeded"
    });
    assert_eq!(frame_md5s(&output), frame_md5s(&input));

    // Once the output exists, a repeat with the key still returns the job (not "output exists").
    let late = server
        .post(&server.url("/v1/jobs"))
        .header("Idempotency-Key", "clip-1")
        .send_json(&serde_json::json!({
            "input": input, "output": output, "model": model, "chunk_frames": 7,
        }))
        .expect(200);
    assert_eq!(late.json()["id"], id.as_str());

    // The same through `fresco jobs --server`.
    let listed = fresco([
        s("jobs"),
        s("list"),
        s("--server"),
        s(&server.base),
        s("--token-file"),
        p(&server.token_file),
    ])
    .ok();
    assert!(
        listed.stdout.contains(&id) && listed.stdout.contains("succeeded"),
        "{}",
        listed.stdout
    );
    let shown = fresco([
        s("jobs"),
        s("show"),
        s(&id),
        s("--server"),
        s(&server.base),
        s("--token-file"),
        p(&server.token_file),
        s("--json"),
    ])
    .ok()
    .json();
    assert_eq!(shown["state"], "succeeded");
    let log = fresco([
        s("jobs"),
        s("logs"),
        s(&id),
        s("--server"),
        s(&server.base),
        s("--token-file"),
        p(&server.token_file),
    ])
    .ok();
    for words in [
        "claimed plan",
        "planned:",
        "scored chunk 0",
        "assembled and published",
    ] {
        assert!(
            log.stdout.contains(words),
            "no {words:?} in the job's log:\n{}",
            log.stdout
        );
    }
    fresco([
        s("jobs"),
        s("show"),
        s("no-such-job"),
        s("--server"),
        s(&server.base),
        s("--token-file"),
        p(&server.token_file),
    ])
    .fails(3, "", &["no-such-job"]);
    let second = dir.path().join("second.mp4");
    let submitted = fresco([
        s("jobs"),
        s("submit"),
        p(&input),
        s("-o"),
        p(&second),
        s("--model"),
        p(&model),
        s("--server"),
        s(&server.base),
        s("--token-file"),
        p(&server.token_file),
    ])
    .ok();
    let second_id = submitted.stdout.trim().to_string();
    wait_until(Duration::from_secs(120), "the second job to finish", || {
        server.json(&server.url(&format!("/v1/jobs/{second_id}")))["state"] == "succeeded"
    });
    assert!(second.is_file());
    fresco([
        s("jobs"),
        s("submit"),
        p(&dir.path().join("missing.mp4")),
        s("-o"),
        p(&dir.path().join("x.mp4")),
        s("--model"),
        p(&model),
        s("--server"),
        s(&server.base),
        s("--token-file"),
        p(&server.token_file),
    ])
    .fails(3, "", &["missing.mp4"]);

    let workers = server.json(&server.url("/v1/workers"));
    let list = workers["workers"].as_array().expect("a workers list");
    assert_eq!(list.len(), 1, "{workers}");
    assert_eq!(list[0]["device"], "cpu");

    assert!(server.stop().success(), "{}", read_log(&server.log));
}

#[test]
fn a_video_dropped_in_the_watched_folder_becomes_exactly_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let (watch, out) = (dir.path().join("incoming"), dir.path().join("styled"));
    std::fs::create_dir_all(&watch).unwrap();
    let model = identity_model(dir.path());
    let clip = dir.path().join("clip.mp4");
    make_vfr_clip_with_audio(&clip, 1);
    let args = [
        s("--watch"),
        p(&watch),
        s("--output"),
        p(&out),
        s("--model"),
        p(&model),
        s("--watch-interval"),
        s("1"),
    ];
    let mut server = Server::start_with(dir.path(), &args);

    // Things that are not videos, or not finished, or not ours to take.
    std::fs::write(watch.join("notes.txt"), "not a video").unwrap();
    std::fs::write(
        watch.join("broken.mp4"),
        b"\x00\x01 random bytes, not a video",
    )
    .unwrap();
    std::fs::copy(&clip, watch.join(".upload-in-progress.mp4")).unwrap();
    // A name no key may hold, listed before the clip: skipped, and the clip is still taken.
    std::fs::copy(&clip, watch.join("a\nline.mp4")).unwrap();
    // An upload in two steps: half the bytes, then all of them.
    let bytes = std::fs::read(&clip).unwrap();
    std::fs::write(watch.join("clip.mp4"), &bytes[..bytes.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(watch.join("clip.mp4"), &bytes).unwrap();

    let stem = model.file_stem().unwrap().to_string_lossy().into_owned();
    let output = out.join(format!("clip.{stem}.mp4"));
    wait_until(
        Duration::from_secs(120),
        "the watched video's output",
        || output.is_file(),
    );
    assert_eq!(frame_md5s(&output).len(), frame_md5s(&clip).len());
    assert_eq!(
        audio_md5(&output, 0),
        audio_md5(&clip, 0),
        "the audio was not copied"
    );

    // One job in all: the broken file, the text, the hidden upload and the name with a line
    // break made none.
    let succeeded = |server: &Server| {
        let jobs = server.json(&server.url("/v1/jobs"));
        let list = jobs["jobs"].as_array().unwrap().clone();
        assert!(list.iter().all(|j| j["state"] == "succeeded"), "{jobs}");
        list.len()
    };
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        succeeded(&server),
        1,
        "{}",
        server.json(&server.url("/v1/jobs"))
    );
    assert!(server.stop().success());

    // A restart lists the folder again and finds the job already made.
    let mut again = Server::start_with(dir.path(), &args);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        succeeded(&again),
        1,
        "{}",
        again.json(&again.url("/v1/jobs"))
    );
    assert!(again.stop().success(), "{}", read_log(&again.log));
}

/// `fresco serve --dataset-watch`: images dropped in a folder are scored in batches of
/// `--dataset-count`, each one dataset job whose records hold exactly its images (odd names
/// too), the text file beside them in none; a restart scores no image again and batches the
/// one left waiting with the next. A broken image in the second batch is its error row, and
/// the job succeeds within `--dataset-max-failed-fraction 0.5` (one of two items; the default
/// 0.01 would fail it). The classifier comes from `$FRESCO_MODEL_DIR/scoring`.
#[test]
fn images_dropped_in_a_dataset_watch_are_scored_in_batches_once() {
    let Some(models) = common::scoring::scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (watch, out) = (dir.path().join("photos"), dir.path().join("tags"));
    std::fs::create_dir_all(&watch).unwrap();
    // Under the server's allowed roots, as a trigger's model must be.
    let model = dir.path().join("classifier.onnx");
    std::fs::copy(models.join("efficientnet-lite0.onnx"), &model).unwrap();
    let args = [
        s("--dataset-watch"),
        p(&watch),
        s("--dataset-output"),
        p(&out),
        s("--dataset-model"),
        p(&model),
        s("--dataset-task"),
        s("classify"),
        s("--dataset-count"),
        s("2"),
        s("--dataset-interval"),
        s("3600"),
        s("--dataset-max-failed-fraction"),
        s("0.5"),
        s("--watch-interval"),
        s("1"),
    ];
    let mut server = Server::start_with(dir.path(), &args);
    let root = watch.canonicalize().unwrap();
    let drop_image = |name: &str| {
        std::fs::copy(models.join("dog.jpg"), watch.join(name)).unwrap();
        root.join(name).display().to_string()
    };
    let first_two = [drop_image("a.jpg"), drop_image("b c#1.jpg")];
    std::fs::write(watch.join("notes.txt"), "not an image").unwrap();
    let sources = |path: &std::path::Path| -> Vec<String> {
        common::scoring::jsonl_rows(path)
            .iter()
            .map(|row| {
                assert!(
                    row["classes"].as_array().is_some_and(|c| !c.is_empty())
                        || row["error"]["kind"] == "not-image",
                    "{row}"
                );
                row["source"].as_str().unwrap().to_string()
            })
            .collect()
    };
    let first = out.join("batch-000001.jsonl");
    wait_until(
        Duration::from_secs(240),
        "the first batch's records",
        || first.is_file(),
    );
    assert_eq!(sources(&first), first_two, "{}", read_log(&server.log));
    let manifest = std::fs::read_to_string(out.join("batch-000001.manifest")).unwrap();
    assert_eq!(manifest.lines().collect::<Vec<_>>(), first_two);
    // The third waits: fewer than the count, younger than the interval.
    let third = drop_image("c.jpg");
    std::thread::sleep(Duration::from_secs(4));
    assert!(!out.join("batch-000002.manifest").exists());
    assert!(server.stop().success(), "{}", read_log(&server.log));

    // Restarted: nothing scored again; the waiting image and a new one, broken, make the next
    // job.
    std::fs::write(watch.join("d.jpg"), b"not a picture").unwrap();
    let fourth = root.join("d.jpg").display().to_string();
    let mut again = Server::start_with(dir.path(), &args);
    let second = out.join("batch-000002.jsonl");
    wait_until(
        Duration::from_secs(240),
        "the second batch's records",
        || second.is_file(),
    );
    assert_eq!(
        sources(&second),
        [third, fourth],
        "{}",
        read_log(&again.log)
    );
    let rows = common::scoring::jsonl_rows(&second);
    assert!(rows[0]["error"].is_null(), "{}", rows[0]);
    assert_eq!(rows[1]["error"]["kind"], "not-image", "{}", rows[1]);
    std::thread::sleep(Duration::from_secs(3));
    assert!(!out.join("batch-000003.manifest").exists());
    let jobs = again.json(&again.url("/v1/jobs"));
    let list = jobs["jobs"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{jobs}");
    assert!(list.iter().all(|j| j["state"] == "succeeded"), "{jobs}");
    assert!(again.stop().success(), "{}", read_log(&again.log));
}

/// The dataset trigger's settings are checked before anything starts: bounds, and the flags
/// that go together.
#[test]
fn dataset_watch_settings_are_checked_before_the_server_starts() {
    let dir = tempfile::tempdir().unwrap();
    let base = |extra: &[&str]| {
        let mut args = vec![
            "serve".to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--db".into(),
            format!("sqlite://{}", dir.path().join("queue.db").display()),
            "--dataset-watch".into(),
            dir.path().join("in").display().to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        fresco(args)
    };
    let full = [
        "--dataset-output",
        "/tmp/out",
        "--dataset-model",
        "/tmp/m.onnx",
    ];
    for (extra, words) in [
        (
            vec!["--dataset-count", "0"],
            ["--dataset-count", "1..=100000"],
        ),
        (
            vec!["--dataset-count", "100001"],
            ["--dataset-count", "1..=100000"],
        ),
        (
            vec!["--dataset-interval", "0"],
            ["--dataset-interval", "1..=604800"],
        ),
        (
            vec!["--dataset-task", "segment"],
            ["--dataset-task", "classify"],
        ),
        (
            vec!["--dataset-max-failed-fraction", "1.5"],
            ["--dataset-max-failed-fraction", "from 0 to 1"],
        ),
        (
            vec!["--dataset-max-failed-fraction", "NaN"],
            ["--dataset-max-failed-fraction", "from 0 to 1"],
        ),
        (
            vec!["--dataset-max-failed-items", "100001"],
            ["--dataset-max-failed-items", "0..=100000"],
        ),
    ] {
        let mut args: Vec<&str> = full.to_vec();
        args.extend(extra.iter().copied());
        let out = base(&args);
        assert_eq!(out.code, Some(2), "{extra:?}: {}", out.dump());
        for word in words {
            assert!(out.stderr.contains(word), "{extra:?}: {}", out.dump());
        }
    }
    let out = base(&["--dataset-output", "/tmp/out"]);
    assert_eq!(out.code, Some(2), "{}", out.dump());
    assert!(out.stderr.contains("--dataset-model"), "{}", out.dump());
}

/// `fresco serve --temporal`: the watched folder's jobs are steadied (checked as a submission
/// with `"temporal": true`), and their view says so.
#[test]
fn a_temporal_watch_makes_steadied_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let (watch, out) = (dir.path().join("incoming"), dir.path().join("styled"));
    std::fs::create_dir_all(&watch).unwrap();
    let model = identity_model(dir.path());
    let clip = dir.path().join("clip.mp4");
    make_vfr_clip_with_audio(&clip, 1);
    let args = [
        s("--watch"),
        p(&watch),
        s("--output"),
        p(&out),
        s("--model"),
        p(&model),
        s("--temporal"),
        s("--watch-interval"),
        s("1"),
    ];
    let mut server = Server::start_with(dir.path(), &args);
    std::fs::copy(&clip, watch.join("clip.mp4")).unwrap();
    let output = out.join("clip.identity.mp4");
    wait_until(
        Duration::from_secs(120),
        "the watched video's output",
        || output.is_file(),
    );
    assert_eq!(frame_times(&output), frame_times(&clip));
    let jobs = server.json(&server.url("/v1/jobs"));
    let list = jobs["jobs"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{jobs}");
    assert_eq!(list[0]["temporal"], true, "{jobs}");
    assert!(server.stop().success(), "{}", read_log(&server.log));
}

/// `fresco serve --temporal` with a model whose output is no image (a classifier) stops at the
/// start, saying why, rather than refusing every video its triggers find.
#[test]
fn a_temporal_watch_with_a_records_model_is_refused_at_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("classifier.onnx");
    std::fs::write(
        &model,
        fresco_infer::onnx_build::constant_classifier_model(3),
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("queue.db").display());
    let out = fresco([
        s("serve"),
        s("--listen"),
        s("127.0.0.1:0"),
        s("--db"),
        s(&db),
        s("--data"),
        p(dir.path()),
        s("--watch"),
        p(&dir.path().join("in")),
        s("--output"),
        p(&dir.path().join("out")),
        s("--model"),
        p(&model),
        s("--temporal"),
    ]);
    assert_eq!(out.code, Some(2), "{}", out.dump());
    assert!(out.stderr.contains("temporal:"), "{}", out.dump());
    assert!(out.stderr.contains("classifier.onnx"), "{}", out.dump());
}

#[test]
fn a_default_server_takes_only_paths_in_its_data_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    make_h264(&data.join("clip.mp4"), "64x48", 25, 0.4);
    let outside = dir.path().join("outside.mp4");
    std::fs::copy(data.join("clip.mp4"), &outside).unwrap();
    let submit = |server: &Server, input: &str, output: &str| {
        let body = serde_json::json!({ "input": input, "output": output, "style": "vintage" });
        let answer = server.post(&server.url("/v1/jobs")).send_json(&body);
        (answer.status, answer.json())
    };
    let refused = |(status, body): (u16, serde_json::Value), field: &str| {
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "path-not-allowed", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{field}:")), "{body}");
        assert!(message.contains(&data.display().to_string()), "{body}");
    };

    // No --allow-prefix: the data store only (no workers: nothing needs to run).
    let workers = [s("--workers"), s("0"), s("--data"), p(&data)];
    let mut server = Server::launch(dir.path(), &workers);
    refused(submit(&server, "/etc/passwd", "styled/a.mp4"), "input");
    refused(
        submit(&server, &outside.display().to_string(), "styled/b.mp4"),
        "input",
    );
    let elsewhere = dir.path().join("elsewhere.mp4").display().to_string();
    refused(submit(&server, "clip.mp4", &elsewhere), "output");
    let (status, body) = submit(&server, "clip.mp4", "styled/clip.mp4");
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["input"], data.join("clip.mp4").display().to_string());
    // A model file is read by the server: the same roots apply.
    let body = serde_json::json!({
        "input": "clip.mp4", "output": "styled/m.mp4", "model": outside.display().to_string()
    });
    let body = server
        .post(&server.url("/v1/jobs"))
        .send_json(&body)
        .expect(400)
        .json();
    assert_eq!(body["error"]["code"], "path-not-allowed", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("model:"),
        "{body}"
    );
    // A cpu server has no GPU workers: a cuda job would wait forever, so it is refused.
    let body = serde_json::json!({
        "input": "clip.mp4", "output": "styled/g.mp4", "style": "vintage", "device": "cuda"
    });
    let body = server
        .post(&server.url("/v1/jobs"))
        .send_json(&body)
        .expect(422)
        .json();
    assert_eq!(body["error"]["code"], "device-not-served", "{body}");
    assert!(server.stop().success(), "{}", read_log(&server.log));

    // The single-user opt-out takes any local path, and says so in the log.
    let mut args = workers.to_vec();
    args.push(s("--allow-any-local-path"));
    // ... and a deployment with GPU workers too takes cuda jobs (queued; none runs here).
    args.extend([s("--job-devices"), s("cpu,cuda")]);
    let mut server = Server::launch(dir.path(), &args);
    let (status, body) = submit(&server, &outside.display().to_string(), &elsewhere);
    assert_eq!(status, 201, "{body}");
    let body = serde_json::json!({
        "input": "clip.mp4", "output": "styled/g.mp4", "style": "vintage", "device": "cuda"
    });
    let reply = server.post(&server.url("/v1/jobs")).send_json(&body);
    assert_eq!(
        reply.status,
        201,
        "a cuda job was refused: {}",
        reply.text()
    );
    assert!(server.stop().success());
    assert!(
        read_log(&server.log).contains("--allow-any-local-path: job inputs and outputs may be any"),
        "{}",
        read_log(&server.log)
    );
}
