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

/// yolov3-tiny over `input` at its first frame (`--every 25`), to `objects.jsonl` in `dir`:
/// the rows, and the `--json` summary.
fn detect_first_frame(
    dir: &Path,
    models: &Path,
    input: &Path,
) -> (Vec<serde_json::Value>, serde_json::Value) {
    let out = dir.join("objects.jsonl");
    let model = models.join("yolov3-tiny-416.onnx");
    let labels = models.join("coco.names");
    let json = run_records(
        dir,
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
            "--json",
        ],
        &[],
    )
    .ok()
    .json();
    (jsonl_rows(&out), json)
}

#[test]
fn detector_finds_the_dog_the_car_and_the_bicycle() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dog_clip(dir.path(), &models, 25);
    let (rows, _) = detect_first_frame(dir.path(), &models, &input);
    assert_eq!(rows.len(), 1, "one sampled frame");
    assert_readme_boxes(&detection_boxes(&rows[0]));
}

/// The dashboard, served over HTTP from `queue_url` as `fresco serve` serves it, signed in as a
/// viewer: GETs a path and returns (status, content type, body).
struct Dashboard {
    api: common::api::Api,
    cookie: String,
}

impl Dashboard {
    fn open(queue_url: &str) -> Dashboard {
        let api = common::api::Api::open(queue_url, fresco_queue::Role::Viewer);
        let session = fresco_testkit::http::post(&format!("{}/v1/session", api.url))
            .bearer(&api.token)
            .call()
            .ok();
        let cookie = session
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_string();
        Dashboard { api, cookie }
    }

    fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
        let answer = fresco_testkit::http::get(&format!("{}{path}", self.api.url))
            .header("Cookie", &self.cookie)
            .call();
        // The media type without its parameters (`; charset=...`).
        let kind = answer
            .header("content-type")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        (answer.status, kind, answer.body)
    }
}

#[test]
fn a_scored_detection_job_has_a_preview_with_its_boxes_drawn_and_its_rows_counted() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dog_clip(dir.path(), &models, 25);
    let (rows, json) = detect_first_frame(dir.path(), &models, &input);
    assert_eq!(rows.len(), 1, "one sampled frame");
    let job = json["outputs"][0]["job"].as_str().expect("the job's id");

    let dashboard = Dashboard::open(&queue_flags(dir.path())[1]);
    let detail: serde_json::Value =
        serde_json::from_slice(&dashboard.get(&format!("/ui/jobs/{job}/detail")).2).unwrap();
    assert_eq!(detail["job"]["state"], "succeeded", "{detail:#}");
    assert_eq!(
        detail["rows"],
        serde_json::json!({"written": 1, "total": 1})
    );
    assert_eq!(detail["preview"]["frame"], 0, "{detail:#}");
    let stored = dashboard
        .api
        .runtime
        .block_on(dashboard.api.queue.preview(job))
        .unwrap()
        .expect("a saved preview");
    assert_eq!(stored.mime, "image/svg+xml");

    // Before: the sampled frame, a JPEG at most 640 wide.
    let (status, kind, before) = dashboard.get(detail["preview"]["before_url"].as_str().unwrap());
    assert_eq!((status, kind.as_str()), (200, "image/jpeg"));
    let jpeg = dir.path().join("before.jpg");
    std::fs::write(&jpeg, &before).unwrap();
    assert_eq!(fresco_testkit::media::video_size(&jpeg), (640, 480));

    // After: that frame, with the detector's boxes and labels over it in the picture's pixels.
    let (status, kind, after) = dashboard.get(detail["preview"]["after_url"].as_str().unwrap());
    assert_eq!((status, kind.as_str()), (200, "image/svg+xml"));
    let svg = fresco_testkit::svg::parse(std::str::from_utf8(&after).unwrap());
    let root = &svg.elements[0];
    assert_eq!(root.name, "svg");
    assert_eq!(root.get("viewBox"), Some("0 0 768 576"));
    assert_eq!(
        (root.number("width"), root.number("height")),
        (640.0, 480.0)
    );
    let image = svg.named("image").next().expect("the frame");
    let embedded = image
        .get("href")
        .and_then(|h| h.strip_prefix("data:image/jpeg;base64,"))
        .expect("a JPEG data URI");
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(embedded)
            .unwrap(),
        before
    );
    let labels: Vec<String> = svg
        .texts
        .iter()
        .map(|t| t.rsplit_once(' ').expect("label and score").0.to_string())
        .collect();
    let drawn: Vec<(String, [f64; 4])> = svg
        .named("rect")
        .zip(labels)
        .map(|(r, label)| {
            let (x, y) = (r.number("x"), r.number("y"));
            (label, [x, y, x + r.number("width"), y + r.number("height")])
        })
        .collect();
    assert_readme_boxes(&drawn);
    // Exactly the row's boxes, to the drawing's tenth of a pixel.
    let written = detection_boxes(&rows[0]);
    assert_eq!(drawn.len(), written.len(), "{drawn:?} vs {written:?}");
    for ((drawn_label, d), (label, w)) in drawn.iter().zip(&written) {
        assert_eq!(drawn_label, label);
        assert!(
            d.iter().zip(w).all(|(a, b)| (a - b).abs() <= 0.11),
            "{drawn:?} vs {written:?}"
        );
    }
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
        let message = common::api::cli_message(&cli);
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
    let api = common::api::Api::submitter(dir.path());
    for ((status, code, message), cli) in bodies.iter().map(|body| api.refuse(body)).zip(&messages)
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

#[test]
fn a_known_model_is_named_like_a_style_and_brings_its_labels() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = clip(dir.path(), 1);
    let cache = dir.path().join("cache");
    let model_dir = models.parent().unwrap().as_os_str().to_owned();
    let env = [
        ("FRESCO_MODEL_DIR", model_dir.as_os_str()),
        ("FRESCO_CACHE_DIR", cache.as_os_str()),
    ];
    let score = |name: &str, model: &[&str], env: &[(&str, &std::ffi::OsStr)]| {
        let out = dir.path().join(name);
        let mut args = vec![input.to_str().unwrap(), "-o", out.to_str().unwrap()];
        args.extend_from_slice(model);
        args.extend_from_slice(&["--every", "10"]);
        let sub = dir.path().join(format!("{name}.queue"));
        std::fs::create_dir(&sub).unwrap();
        (run_records(&sub, &args, env), out)
    };
    let path = models.join("efficientnet-lite0.onnx");
    let labels = models.join("imagenet_labels.txt");
    let (_, by_path) = score(
        "by-path.jsonl",
        &[
            "--model",
            path.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
        ],
        &env,
    );
    let want: Vec<_> = jsonl_rows(&by_path)
        .into_iter()
        .map(|row| row["classes"].clone())
        .collect();
    assert_eq!(want.len(), 3);
    assert!(
        imagenet_names(&models).contains(want[0][0]["label"].as_str().unwrap()),
        "{want:?}"
    );
    // By name, with --model or --style: the same file, card and labels, found by the registry.
    for flag in ["--model", "--style"] {
        let (out, named) = score(
            &format!("named{flag}.jsonl"),
            &[flag, "efficientnet-lite0"],
            &env,
        );
        out.ok();
        let got: Vec<_> = jsonl_rows(&named)
            .into_iter()
            .map(|row| row["classes"].clone())
            .collect();
        assert_eq!(got, want, "{flag} efficientnet-lite0");
    }
    // `fresco models list` shows it, present, where it was found.
    let list = fresco_env(["models", "list", "--json"], &env).ok();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).unwrap();
    let lite0 = entries
        .iter()
        .find(|e| e["name"] == "efficientnet-lite0")
        .expect("listed");
    assert_eq!(lite0["present"], true);
    assert_eq!(lite0["path"], path.to_str().unwrap());
    // Other bytes under the known name are refused before anything is scored, naming the file.
    let fake = dir.path().join("fake");
    std::fs::create_dir_all(fake.join("scoring")).unwrap();
    std::fs::write(fake.join("scoring/efficientnet-lite0.onnx"), b"not it").unwrap();
    let fake_env = [
        ("FRESCO_MODEL_DIR", fake.as_os_str()),
        ("FRESCO_CACHE_DIR", cache.as_os_str()),
    ];
    let (out, refused) = score("fake.jsonl", &["--model", "efficientnet-lite0"], &fake_env);
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("not the known 'efficientnet-lite0'")
            && out.stderr.contains("efficientnet-lite0.onnx"),
        "{}",
        out.stderr
    );
    assert!(!refused.exists(), "nothing written at the output");
}
