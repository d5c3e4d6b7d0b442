//! Records jobs end to end through `fresco run`: a classifier to JSONL and Parquet at sampled
//! frames, a detector's boxes on Darknet's dog picture, a run killed mid-job and resumed, and
//! the bad inputs refused before anything is queued. The real models come from
//! `$FRESCO_MODEL_DIR/scoring`; the tests skip, saying so, where they are absent.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::scoring::*;
use common::*;

/// A 640x360 clip of `seconds` at 25 frames/s from ffmpeg's testsrc2.
fn clip(dir: &Path, seconds: u32) -> PathBuf {
    let input = dir.join("clip.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size=640x360:rate=25:duration={seconds}"),
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
        &input,
    );
    input
}

/// The queue and work folder of one test (not shared with the others).
fn queue_flags(dir: &Path) -> Vec<String> {
    vec![
        "--db".into(),
        format!("sqlite://{}?mode=rwc", dir.join("queue.db").display()),
        "--work-dir".into(),
        dir.join("work").display().to_string(),
    ]
}

fn run_records(dir: &Path, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Out {
    let mut all: Vec<String> = vec!["run".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    all.extend(queue_flags(dir));
    fresco_env(all, env)
}

/// The readable ImageNet names, as the labels file gives them.
fn imagenet_names(models: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(models.join("imagenet_labels.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            l.split_once('\t')
                .map_or(l, |(_, n)| n.split(',').next().unwrap())
                .trim()
                .to_string()
        })
        .collect()
}

#[test]
fn classifier_writes_jsonl_at_one_frame_a_second() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = clip(dir.path(), 3);
    let out = dir.path().join("tags.jsonl");
    let model = models.join("efficientnet-lite0.onnx");
    let labels = models.join("imagenet_labels.txt");
    let started = Instant::now();
    let json = run_records(
        dir.path(),
        &[
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--task",
            "classify",
            "--labels",
            labels.to_str().unwrap(),
            "--fps",
            "1",
            "--chunk-frames",
            "20",
            "--json",
        ],
        &[],
    )
    .ok()
    .json();
    eprintln!(
        "classify, 3 s clip at --fps 1: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let rows = jsonl_rows(&out);
    let frames: Vec<u64> = rows.iter().map(|r| r["frame"].as_u64().unwrap()).collect();
    assert_eq!(
        frames,
        vec![0, 25, 50],
        "one frame a second of a 25 frames/s clip"
    );
    let times: Vec<f64> = rows.iter().map(|r| r["time"].as_f64().unwrap()).collect();
    for (t, want) in times.iter().zip([0.0, 1.0, 2.0]) {
        assert!((t - want).abs() < 1e-6, "times {times:?}");
    }
    let names = imagenet_names(&models);
    for row in &rows {
        assert_eq!(row["source"], input.display().to_string());
        let classes = row["classes"].as_array().expect("classes");
        assert_eq!(classes.len(), 5, "top 5 by default: {row}");
        for c in classes {
            let label = c["label"].as_str().unwrap();
            assert!(
                names.contains(label),
                "label {label} is not from the labels file"
            );
            let score = c["score"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&score), "{row}");
        }
    }
    assert_eq!(json["outputs"][0]["rows"], 3, "{json:#}");
}

#[test]
fn classifier_writes_parquet_every_fifth_frame() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = clip(dir.path(), 2);
    let out = dir.path().join("tags.parquet");
    let model = models.join("efficientnet-lite0.onnx");
    let labels = models.join("imagenet_labels.txt");
    run_records(
        dir.path(),
        &[
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--task",
            "classify",
            "--labels",
            labels.to_str().unwrap(),
            "--every",
            "5",
            "--top-k",
            "3",
            "--chunk-frames",
            "12",
        ],
        &[],
    )
    .ok();
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..4], b"PAR1", "a Parquet file");
    // An independent reader, where one is installed.
    let Some(python) = python_with_pyarrow() else {
        return;
    };
    let script = "import sys, json, pyarrow.parquet as pq\n\
        t = pq.read_table(sys.argv[1]).to_pylist()\n\
        print(json.dumps([[r['frame'], r['time'], [c['label'] for c in r['classes']]] for r in t]))";
    let read = std::process::Command::new(python)
        .args(["-c", script, out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let rows: Vec<(u64, f64, Vec<String>)> = serde_json::from_slice(&read.stdout).unwrap();
    let frames: Vec<u64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(frames, (0..50).step_by(5).collect::<Vec<u64>>());
    let names = imagenet_names(&models);
    for (frame, time, labels) in &rows {
        assert!(
            (time - *frame as f64 / 25.0).abs() < 1e-6,
            "frame {frame} at {time}"
        );
        assert_eq!(labels.len(), 3);
        assert!(labels.iter().all(|l| names.contains(l)), "{labels:?}");
    }
}

#[test]
fn detector_finds_the_dog_the_car_and_the_bicycle() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("dog.mp4");
    ffmpeg(
        &[
            "-loop",
            "1",
            "-i",
            models.join("dog.jpg").to_str().unwrap(),
            "-t",
            "1",
            "-r",
            "25",
            "-c:v",
            "libx264",
            "-crf",
            "10",
            "-pix_fmt",
            "yuv444p",
        ],
        &input,
    );
    let out = dir.path().join("objects.jsonl");
    let model = models.join("yolov3-tiny-416.onnx");
    let labels = models.join("coco.names");
    run_records(
        dir.path(),
        &[
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--task",
            "detect",
            "--labels",
            labels.to_str().unwrap(),
            "--min-score",
            "0.3",
            "--every",
            "25",
        ],
        &[],
    )
    .ok();
    let rows = jsonl_rows(&out);
    assert_eq!(rows.len(), 1, "one sampled frame");
    let found = rows[0]["detections"]
        .as_array()
        .expect("detections")
        .clone();
    assert_readme_boxes(&found);
}

#[test]
fn a_killed_run_resumes_without_duplicating_or_skipping_a_frame() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = clip(dir.path(), 3);
    let model = models.join("efficientnet-lite0.onnx");
    let out = dir.path().join("tags.jsonl");
    let mut args: Vec<String> = [
        "run",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--task",
        "classify",
        "--every",
        "3",
        "--chunk-frames",
        "9",
        "--workers",
        "1",
        "-q",
    ]
    .map(String::from)
    .to_vec();
    args.extend(queue_flags(dir.path()));
    // Slow frames, so that the run is killed with some chunks done and one in flight.
    let mut child = fresco_cmd()
        .args(&args)
        .env("FRESCO_TEST_FRAME_DELAY_MS", "150")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let job_dir_parts = || -> usize {
        walk(&dir.path().join("work"))
            .iter()
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    n.to_string_lossy().starts_with("chunk-")
                        && n.to_string_lossy().ends_with(".nut")
                })
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while job_dir_parts() < 2 {
        assert!(
            Instant::now() < deadline,
            "no two parts were written in time"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.exists(), "a killed run published its output");
    let again = fresco(
        args.iter()
            .map(String::as_str)
            .chain(["--json"])
            .collect::<Vec<_>>(),
    )
    .ok();
    assert!(again.stderr.contains("resuming job"), "{}", again.dump());
    let rows = jsonl_rows(&out);
    let frames: Vec<u64> = rows.iter().map(|r| r["frame"].as_u64().unwrap()).collect();
    assert_eq!(
        frames,
        (0..75).step_by(3).collect::<Vec<u64>>(),
        "every sampled frame once, in order"
    );
    // A clean run gives the same rows, byte for byte.
    let clean_dir = dir.path().join("clean");
    std::fs::create_dir(&clean_dir).unwrap();
    let clean = clean_dir.join("tags.jsonl");
    let mut clean_args = args.clone();
    clean_args[3] = clean.display().to_string();
    let n = clean_args.len();
    clean_args.truncate(n - 4);
    clean_args.extend(queue_flags(&clean_dir));
    fresco(&clean_args).ok();
    assert_eq!(std::fs::read(&clean).unwrap(), std::fs::read(&out).unwrap());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn bad_scoring_inputs_are_refused_before_anything_is_queued() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = clip(dir.path(), 1);
    let classifier = models.join("efficientnet-lite0.onnx");
    let card = dir.path().join("card.toml");
    std::fs::write(&card, "task = \"classify\"\nmin_scor = 0.3\n").unwrap();
    let jsonl = dir.path().join("out.jsonl");
    let mp4 = dir.path().join("out.mp4");
    let cases: Vec<(Vec<String>, &Path, &str)> = vec![
        (
            vec![
                "--task".into(),
                "classify".into(),
                "--labels".into(),
                models.join("coco.names").display().to_string(),
            ],
            &jsonl,
            "has 80 labels but the model gives 1000 classes",
        ),
        (
            vec!["--model-card".into(), card.display().to_string()],
            &jsonl,
            "unknown key 'min_scor'",
        ),
        (
            vec![
                "--task".into(),
                "classify".into(),
                "--input-size".into(),
                "100x100".into(),
            ],
            &jsonl,
            "which says 224x224, but 100x100 was given",
        ),
        (
            vec!["--task".into(), "classify".into()],
            &mp4,
            "give a .jsonl or .parquet output",
        ),
        (
            vec![
                "--task".into(),
                "classify".into(),
                "--every".into(),
                "2".into(),
                "--fps".into(),
                "1".into(),
            ],
            &jsonl,
            "not both",
        ),
    ];
    for (flags, output, words) in cases {
        let mut args: Vec<String> = vec![
            "run".into(),
            input.display().to_string(),
            "-o".into(),
            output.display().to_string(),
            "--model".into(),
            classifier.display().to_string(),
        ];
        args.extend(flags.clone());
        args.extend(queue_flags(dir.path()));
        let out = fresco(&args);
        assert_ne!(out.code, Some(0), "{flags:?} was accepted: {}", out.dump());
        assert!(
            out.stderr.contains(words),
            "{flags:?}: expected '{words}' in: {}",
            out.dump()
        );
        assert!(!output.exists(), "{flags:?} left an output");
    }
    // A detector's outputs do not fit a classifier's task.
    let mut args: Vec<String> = vec![
        "run".into(),
        input.display().to_string(),
        "-o".into(),
        jsonl.display().to_string(),
        "--model".into(),
        models.join("yolov3-tiny-416.onnx").display().to_string(),
        "--task".into(),
        "classify".into(),
    ];
    args.extend(queue_flags(dir.path()));
    let out = fresco(&args);
    assert_ne!(out.code, Some(0), "{}", out.dump());
    assert!(
        out.stderr.contains("outputs do not fit task Classify"),
        "{}",
        out.dump()
    );
    assert!(!jsonl.exists());
    // Nothing was queued: the queue lists no job.
    let mut list: Vec<String> = vec!["jobs".into(), "list".into(), "--json".into()];
    list.push("--db".into());
    list.push(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("queue.db").display()
    ));
    let listed = fresco(&list);
    if listed.code == Some(0) {
        assert!(
            !listed.stdout.contains("out.jsonl"),
            "a refused job was queued: {}",
            listed.stdout
        );
    }
}

/// The message of the CLI's `error: ...` line.
fn cli_message(out: &Out) -> String {
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error"))
        .unwrap_or_else(|| panic!("no error line:\n{}", out.dump()));
    line.trim_start_matches("error:").trim().to_string()
}

/// An API over its own SQLite queue in this process (as `fresco serve` makes it); returns the
/// refusal's (status, code, message) of each body.
fn api_refusals(dir: &Path, bodies: &[serde_json::Value]) -> Vec<(u16, String, String)> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (url, token) = runtime.block_on(async {
        let queue = fresco_queue::open(&format!("sqlite://{}", dir.join("api.db").display()))
            .await
            .unwrap();
        let submitter = fresco_queue::NewToken {
            name: "submitter".into(),
            role: fresco_queue::Role::Submitter,
            expires_at_ms: None,
        };
        let token = queue.create_token(&submitter, None).await.unwrap().secret;
        let factory = fresco_server::LocalJobFactory::default().allow_download(false);
        let state = fresco_server::AppState::new(queue, std::sync::Arc::new(factory));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(fresco_server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        (format!("http://{addr}"), token)
    });
    let refusals = bodies
        .iter()
        .map(|body| {
            let request = ureq::post(&format!("{url}/v1/jobs"))
                .set("Authorization", &format!("Bearer {token}"));
            match request.send_json(body.clone()) {
                Err(ureq::Error::Status(status, response)) => {
                    let body: serde_json::Value = response.into_json().unwrap();
                    let text =
                        |key: &str| body["error"][key].as_str().unwrap_or_default().to_string();
                    (status, text("code"), text("message"))
                }
                other => panic!("the API took the job {body}: {other:?}"),
            }
        })
        .collect();
    let _ = stop.send(());
    refusals
}

#[test]
fn jobs_submit_and_the_api_refuse_bad_scoring_in_the_same_words() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = clip(dir.path(), 1);
    let classifier = models.join("efficientnet-lite0.onnx").display().to_string();
    let coco = models.join("coco.names").display().to_string();
    let card = dir.path().join("card.toml");
    std::fs::write(&card, "task = \"classify\"\nmin_scor = 0.3\n").unwrap();
    let card = card.display().to_string();
    let jsonl = dir.path().join("out.jsonl").display().to_string();
    let mp4 = dir.path().join("out.mp4").display().to_string();
    let detector = models.join("yolov3-tiny-416.onnx").display().to_string();
    // (model, flags, the API's scoring object, output, words)
    let cases: Vec<(&str, Vec<&str>, serde_json::Value, &str, &str)> = vec![
        (
            &classifier,
            vec!["--task", "classify", "--labels", &coco],
            serde_json::json!({"task": "classify", "labels": coco}),
            &jsonl,
            "has 80 labels but the model gives 1000 classes",
        ),
        (
            &classifier,
            vec!["--model-card", &card],
            serde_json::json!({"model_card": card}),
            &jsonl,
            "unknown key 'min_scor'",
        ),
        (
            &detector,
            vec!["--task", "classify"],
            serde_json::json!({"task": "classify"}),
            &jsonl,
            "outputs do not fit task Classify",
        ),
        (
            &classifier,
            vec!["--task", "classify"],
            serde_json::json!({"task": "classify"}),
            &mp4,
            "give a .jsonl or .parquet output",
        ),
    ];
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("queue.db").display()
    );
    let mut bodies = Vec::new();
    let mut messages = Vec::new();
    for (model, flags, scoring, output, words) in &cases {
        let mut args = vec![
            "jobs",
            "submit",
            input.to_str().unwrap(),
            "-o",
            output,
            "--model",
            model,
        ];
        args.extend(flags.iter().copied());
        args.extend(["--db", &db]);
        let cli = fresco(&args);
        assert_ne!(cli.code, Some(0), "{flags:?}: {}", cli.dump());
        let message = cli_message(&cli);
        assert!(
            message.contains(words),
            "{flags:?}: expected '{words}' in {message}"
        );
        messages.push(message);
        bodies.push(serde_json::json!({
            "input": input.display().to_string(),
            "output": output,
            "model": model,
            "device": "cpu",
            "scoring": scoring,
        }));
    }
    for ((status, code, message), cli) in
        api_refusals(dir.path(), &bodies).into_iter().zip(&messages)
    {
        assert!((400..500).contains(&status), "{code}: {status}");
        assert_eq!(&message, cli, "{code}: the two entrances disagree");
    }
    let listed = fresco(["jobs", "list", "--json", "--db", &db]).ok().json();
    assert_eq!(listed, serde_json::json!([]), "nothing was queued");
}

/// A model fresco knows by its bytes, given with no card, is scored with the preparation it was
/// trained for (EfficientNet-Lite0: `(x - 127) / 128` after a centre crop): the rows equal
/// those of the same flags given by hand, and differ from the `/255` a card-less unknown model
/// would get.
#[test]
fn a_known_model_without_a_card_gets_its_own_preparation() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = clip(dir.path(), 1);
    let model = models.join("efficientnet-lite0.onnx");
    let labels = models.join("imagenet_labels.txt");
    let score = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec![
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--task",
            "classify",
            "--labels",
            labels.to_str().unwrap(),
            "--every",
            "10",
        ];
        args.extend_from_slice(extra);
        let sub = dir.path().join(format!("{name}.queue"));
        std::fs::create_dir(&sub).unwrap();
        run_records(&sub, &args, &[]).ok();
        jsonl_rows(&out)
            .into_iter()
            .map(|row| row["classes"].clone())
            .collect::<Vec<_>>()
    };
    let known = score("known.jsonl", &[]);
    let by_hand = score(
        "by-hand.jsonl",
        &[
            "--resize",
            "crop",
            "--mean",
            "127,127,127",
            "--std",
            "128,128,128",
        ],
    );
    let plain = score(
        "plain.jsonl",
        &[
            "--resize",
            "crop",
            "--mean",
            "0,0,0",
            "--std",
            "255,255,255",
        ],
    );
    assert_eq!(known.len(), 3, "frames 0, 10, 20 of a 25-frame clip");
    assert_eq!(
        known, by_hand,
        "the known card is the preparation given by hand"
    );
    assert_ne!(known, plain, "and not the /255 of an unknown model");
}
