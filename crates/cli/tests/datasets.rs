//! Dataset jobs (issue 17), end to end through `fresco jobs submit` and `fresco worker`:
//! - a folder with corrupt, empty, mislabelled and huge-dimension images among good ones: one
//!   error row each, the job succeeding within its threshold and failing beyond it, saying so;
//! - workers killed with SIGKILL mid-dataset, on SQLite and PostgreSQL, new files added while
//!   the job waits: every pinned item scored exactly once, in listing order, and no other;
//! - a manifest (relative and absolute lines, in its own order);
//! - a folder through `fresco jobs submit --server` with `--include` and both thresholds, and a
//!   manifest refused there (the API takes none);
//! - a prefix in Azurite (where `FRESCO_TEST_AZURITE=1`) and in a `file://` store;
//! - a Parquet output read back by pyarrow: a row per item in listing order, error rows with
//!   their own columns, a row group per chunk;
//! - a 2 GiB (sparse) file among good images: an error row `too-large`, never read, the run's
//!   peak memory small.
//!
//! The classifier comes from `$FRESCO_MODEL_DIR/scoring` (skipped, saying so, where absent).

mod common;

use std::path::Path;
use std::time::Duration;

use common::jobs::{postgres_queue, read_log, sqlite_queue, wait_exit, wait_until, TestQueue};
use common::scoring::*;
use common::*;

/// The classifier's flags.
fn classify(models: &Path) -> Vec<String> {
    vec![
        "--model".into(),
        models.join("efficientnet-lite0.onnx").display().to_string(),
        "--task".into(),
        "classify".into(),
        "--labels".into(),
        models.join("imagenet_labels.txt").display().to_string(),
    ]
}

/// `fresco jobs submit SOURCE... -o OUT` with the classifier and `extra`: what it printed.
fn submit(queue: &TestQueue, source: &[&str], out: &Path, models: &Path, extra: &[&str]) -> Out {
    let mut args: Vec<String> = vec!["jobs".into(), "submit".into()];
    args.extend(source.iter().map(|a| a.to_string()));
    args.extend(["-o".into(), out.display().to_string()]);
    args.extend(classify(models));
    args.extend(
        queue
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned()),
    );
    args.extend(extra.iter().map(|a| a.to_string()));
    common::run_with_timeout(fresco_cmd().args(&args), Duration::from_secs(120))
}

/// Runs one worker until the queue is idle.
fn work(queue: &TestQueue, log: &Path) {
    let mut worker = queue.spawn_worker(log, &[], &[]);
    let status = wait_exit(&mut worker, Duration::from_secs(300), "the worker");
    assert!(status.success(), "{}", read_log(log));
}

/// `count` copies of the dog picture in `dir`, named `dog-NN.jpg` (every other one in a
/// subfolder, so the walk goes down into folders in name order).
fn good_images(dir: &Path, models: &Path, count: usize) -> Vec<String> {
    let mut keys = Vec::new();
    for i in 0..count {
        let key = if i.is_multiple_of(2) {
            format!("dog-{i:02}.jpg")
        } else {
            format!("sub/dog-{i:02}.jpg")
        };
        let path = dir.join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(models.join("dog.jpg"), &path).unwrap();
        keys.push(key);
    }
    keys.sort();
    keys
}

fn sources(rows: &[serde_json::Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["source"].as_str().unwrap().to_string())
        .collect()
}

fn error_kind(row: &serde_json::Value) -> Option<&str> {
    row["error"]["kind"].as_str()
}

#[test]
fn bad_items_are_error_rows_and_the_job_fails_only_past_its_threshold() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let mut keys = good_images(&photos, &models, 6);
    // A PNG cut short (the JPEG decoder fills in a truncated JPEG's missing rows, so a cut
    // JPEG is scored as what it shows).
    let whole = dir.path().join("whole.png");
    ffmpeg(&["-i", models.join("dog.jpg").to_str().unwrap()], &whole);
    let png = std::fs::read(&whole).unwrap();
    std::fs::write(photos.join("cut.png"), &png[..png.len() / 3]).unwrap();
    std::fs::write(photos.join("empty.jpg"), b"").unwrap();
    std::fs::write(
        photos.join("notes.png"),
        b"a text file, named like an image",
    )
    .unwrap();
    zero_png(&photos.join("huge.png"), 100_000, 100_000, 1);
    // Not an image extension: skipped, not an error.
    std::fs::write(photos.join("readme.txt"), b"skip me").unwrap();
    keys.extend(["cut.png", "empty.jpg", "notes.png", "huge.png"].map(String::from));
    keys.sort();
    let queue = sqlite_queue(dir.path());

    // Four bad items of ten are past the default threshold (1%): the job fails, saying why,
    // and publishes nothing.
    let strict = dir.path().join("strict.jsonl");
    let photos_arg = photos.display().to_string();
    let id = submit(
        &queue,
        &[&photos_arg],
        &strict,
        &models,
        &["--chunk-frames", "3"],
    )
    .ok();
    let id = id.stdout.trim().to_string();
    work(&queue, &dir.path().join("strict.log"));
    let job = queue.show(&id);
    assert_eq!(job["state"], "failed", "{job:#}");
    let error = job["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("4 of 10 items failed") && error.contains("--max-failed-fraction"),
        "{job:#}"
    );
    assert!(!strict.exists());

    // Allowed four: the job succeeds with a row per item, in name order, the bad ones as
    // error rows of their kind.
    let out = dir.path().join("tags.jsonl");
    let id = submit(
        &queue,
        &[&photos_arg],
        &out,
        &models,
        &[
            "--chunk-frames",
            "3",
            "--max-failed-items",
            "4",
            "--max-failed-fraction",
            "1",
        ],
    )
    .ok();
    let id = id.stdout.trim().to_string();
    work(&queue, &dir.path().join("lenient.log"));
    let job = queue.show(&id);
    assert_eq!(job["state"], "succeeded", "{job:#}");
    let rows = jsonl_rows(&out);
    assert_eq!(sources(&rows), keys, "a row per item, in listing order");
    let kinds: Vec<(&str, Option<&str>)> = rows
        .iter()
        .map(|r| (r["source"].as_str().unwrap(), error_kind(r)))
        .filter(|(_, kind)| kind.is_some())
        .collect();
    assert_eq!(
        kinds,
        [
            ("cut.png", Some("not-image")),
            ("empty.jpg", Some("empty")),
            ("huge.png", Some("too-large")),
            ("notes.png", Some("not-image")),
        ]
    );
    for row in rows.iter().filter(|r| error_kind(r).is_none()) {
        let top = &row["classes"][0];
        assert!(top["score"].as_f64().unwrap() > 0.0, "{row}");
    }
    let logged = queue.jobs("logs", &id).ok();
    assert!(
        logged
            .stdout
            .contains("dataset: 6 items scored, 4 failed, 1 skipped"),
        "{}",
        logged.dump()
    );
}

/// A dataset of `count` images scored by workers that are killed mid-chunk, with files added
/// after the plan: every pinned item exactly once, in order, none of the new ones.
fn killed_workers_score_each_pinned_item_once(queue: TestQueue, dir: &Path, models: &Path) {
    let photos = dir.join("photos");
    let keys = good_images(&photos, models, 24);
    let out = dir.join("tags.jsonl");
    let photos_arg = photos.display().to_string();
    let id = submit(
        &queue,
        &[&photos_arg],
        &out,
        models,
        &["--chunk-frames", "4"],
    )
    .ok();
    let id = id.stdout.trim().to_string();
    // Slow items, so that each worker is killed holding a chunk.
    let slow = [("FRESCO_TEST_FRAME_DELAY_MS", "150")];
    for round in 0..2 {
        let log = dir.join(format!("killed-{round}.log"));
        let mut worker = queue.spawn_worker(&log, &slow, &[]);
        wait_until(Duration::from_secs(120), "a claimed chunk", || {
            read_log(&log).contains("claimed score chunk")
        });
        std::thread::sleep(Duration::from_millis(400));
        worker.kill().unwrap();
        worker.wait().unwrap();
        if round == 0 {
            // Files that arrive after the plan are not the job's.
            std::fs::copy(models.join("dog.jpg"), photos.join("aaa-new.jpg")).unwrap();
            std::fs::copy(models.join("dog.jpg"), photos.join("zzz-new.jpg")).unwrap();
        }
    }
    assert!(!out.exists(), "published before every chunk was scored");
    work(&queue, &dir.join("finisher.log"));
    let job = queue.show(&id);
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert!(job["expiries"].as_u64().unwrap() >= 1, "{job:#}");
    let rows = jsonl_rows(&out);
    assert_eq!(sources(&rows), keys, "each pinned item once, in order");
    assert!(rows.iter().all(|r| error_kind(r).is_none()));
}

#[test]
fn killed_workers_score_each_item_once_on_sqlite() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    killed_workers_score_each_pinned_item_once(sqlite_queue(dir.path()), dir.path(), &models);
}

#[test]
fn killed_workers_score_each_item_once_on_postgres() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(queue) = postgres_queue(dir.path()) else {
        return;
    };
    killed_workers_score_each_pinned_item_once(queue, dir.path(), &models);
}

#[test]
fn a_manifest_is_scored_in_its_own_order() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    good_images(&photos, &models, 3);
    let absolute = photos.join("sub/dog-01.jpg").display().to_string();
    let lines = [
        "# the cameras' picks",
        "photos/dog-02.jpg",
        "",
        absolute.as_str(),
        "photos/dog-00.jpg",
        "photos/missing.jpg",
    ];
    let manifest = dir.path().join("picks.txt");
    std::fs::write(&manifest, lines.join("\n")).unwrap();
    let queue = sqlite_queue(dir.path());
    let out = dir.path().join("picks.jsonl");
    let manifest_arg = manifest.display().to_string();
    let id = submit(
        &queue,
        &["--manifest", &manifest_arg],
        &out,
        &models,
        &["--max-failed-items", "1", "--max-failed-fraction", "1"],
    )
    .ok();
    // One decode thread: the items still come out in the manifest's order.
    let log = dir.path().join("worker.log");
    let mut worker = queue.spawn_worker(&log, &[], &["--decode-threads", "1"]);
    let status = wait_exit(&mut worker, Duration::from_secs(300), "the worker");
    assert!(status.success(), "{}", read_log(&log));
    assert_eq!(queue.show(id.stdout.trim())["state"], "succeeded");
    let rows = jsonl_rows(&out);
    assert_eq!(
        sources(&rows),
        [
            "photos/dog-02.jpg",
            absolute.as_str(),
            "photos/dog-00.jpg",
            "photos/missing.jpg"
        ]
    );
    assert_eq!(error_kind(&rows[3]), Some("unreadable"), "{}", rows[3]);
    assert!(rows[..3].iter().all(|r| error_kind(r).is_none()));
}

#[test]
fn a_folder_goes_through_the_server_with_its_options_and_a_manifest_is_refused() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let mut keys = good_images(&photos, &models, 3);
    std::fs::write(photos.join("notes.png"), b"not a picture").unwrap();
    // No pattern takes these: skipped.
    std::fs::write(photos.join("extra.png"), b"not taken").unwrap();
    std::fs::write(photos.join("readme.txt"), b"skipped").unwrap();
    keys.push("notes.png".into());
    keys.sort();
    let queue = sqlite_queue(dir.path());
    let api = common::api::Api::open(&queue.url, fresco_queue::Role::Submitter);
    let through_server = |first: &[&str], out: &Path, extra: &[&str]| {
        let mut args: Vec<String> = vec!["jobs".into(), "submit".into()];
        args.extend(first.iter().map(|a| a.to_string()));
        args.extend(["-o".into(), out.display().to_string()]);
        args.extend(classify(&models));
        args.extend(["--server".into(), api.url.clone()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        common::run_with_timeout(
            fresco_cmd().args(&args).env("FRESCO_TOKEN", &api.token),
            Duration::from_secs(120),
        )
    };

    // A folder named with a trailing slash, with --include and both thresholds.
    let out = dir.path().join("tags.jsonl");
    let folder = format!("{}/", photos.display());
    let id = through_server(
        &[&folder],
        &out,
        &[
            "--include",
            "**/*.jpg",
            "--include",
            "notes.png",
            "--max-failed-items",
            "1",
            "--max-failed-fraction",
            "0.5",
            "--chunk-frames",
            "2",
        ],
    )
    .ok()
    .stdout
    .trim()
    .to_string();
    let job = api
        .runtime
        .block_on(api.queue.job(&id))
        .unwrap()
        .expect("the job the server queued");
    let spec: serde_json::Value = serde_json::from_str(&job.spec).unwrap();
    assert_eq!(
        spec["dataset"]["include"],
        serde_json::json!(["**/*.jpg", "notes.png"]),
        "{spec:#}"
    );
    assert_eq!(spec["dataset"]["max_failed_items"], 1, "{spec:#}");
    assert_eq!(spec["dataset"]["max_failed_fraction"], 0.5, "{spec:#}");
    assert_eq!(
        job.owner.as_deref(),
        Some("test"),
        "submitted with the API's token"
    );
    work(&queue, &dir.path().join("worker.log"));
    assert_eq!(queue.show(&id)["state"], "succeeded");
    let rows = jsonl_rows(&out);
    assert_eq!(
        sources(&rows),
        keys,
        "the items --include took, in name order"
    );
    assert_eq!(
        error_kind(&rows[keys.iter().position(|k| k == "notes.png").unwrap()]),
        Some("not-image")
    );
    let logged = queue.jobs("logs", &id).ok();
    assert!(
        logged
            .stdout
            .contains("dataset: 3 items scored, 1 failed, 2 skipped"),
        "{}",
        logged.dump()
    );

    // A manifest is refused before anything is sent, saying what to do instead.
    let manifest = dir.path().join("picks.txt");
    std::fs::write(&manifest, "photos/dog-00.jpg\n").unwrap();
    let manifest_arg = manifest.display().to_string();
    through_server(
        &["--manifest", &manifest_arg],
        &dir.path().join("picks.jsonl"),
        &[],
    )
    .fails(
        4,
        "picks.txt",
        &["the API takes no manifests", "without --server"],
    );
    let listed = api.runtime.block_on(api.queue.jobs(&[], 10)).unwrap();
    assert_eq!(listed.len(), 1, "only the folder's job was queued");
}

/// A prefix of a store at `base`: the images under it (and only those matching `--include`),
/// read ahead and scored two a model call in key order, a broken one an error row in its
/// place; the output published to the store.
fn a_prefix_is_scored(dir: &Path, base: &str) {
    let Some(models) = scoring_models() else {
        return;
    };
    let local = dir.join("local");
    let mut keys = good_images(&local, &models, 4);
    std::fs::write(local.join("broken.jpg"), b"not a picture").unwrap();
    keys.insert(0, "broken.jpg".into());
    for key in &keys {
        common::objects::upload(&format!("{base}/cams/{key}"), &local.join(key));
    }
    common::objects::upload(&format!("{base}/cams/raw.png"), &local.join(&keys[0]));
    common::objects::upload(&format!("{base}/other/dog.jpg"), &local.join(&keys[0]));
    let queue = sqlite_queue(dir);
    let out = format!("{base}/out/cams.jsonl");
    let prefix = format!("{base}/cams/");
    let id = submit(
        &queue,
        &[&prefix, "--include", "*.jpg"],
        Path::new(&out),
        &models,
        &[
            "--chunk-frames",
            "3",
            "--max-failed-items",
            "1",
            "--max-failed-fraction",
            "1",
        ],
    )
    .ok();
    let log = dir.join("worker.log");
    let mut worker = queue.spawn_worker(&log, &[], &["--batch", "2"]);
    let status = wait_exit(&mut worker, Duration::from_secs(300), "the worker");
    assert!(status.success(), "{}", read_log(&log));
    let job = queue.show(id.stdout.trim());
    assert_eq!(job["state"], "succeeded", "{job:#}");
    let got = dir.join("cams.jsonl");
    common::objects::download(&out, &got);
    let rows = jsonl_rows(&got);
    assert_eq!(sources(&rows), keys);
    assert_eq!(error_kind(&rows[0]), Some("not-image"));
    let logged = queue.jobs("logs", id.stdout.trim()).ok();
    assert!(
        logged
            .stdout
            .contains("4 items scored, 1 failed, 1 skipped"),
        "{}",
        logged.dump()
    );
}

#[test]
fn a_prefix_in_a_file_url_store_is_scored() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    a_prefix_is_scored(dir.path(), &format!("file://{}", store.display()));
}

#[test]
fn a_prefix_in_an_azurite_container_is_scored() {
    let Some(container) = fresco_testkit::azurite::container("datasets_prefix") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    a_prefix_is_scored(dir.path(), &format!("az://{container}"));
}

/// `fresco run PREFIX/ -o OUT.jsonl` and `fresco run --manifest FILE` run a dataset job in
/// the run's own engine: a bad image is an error row, and the run succeeds within the threshold.
#[test]
fn fresco_run_scores_a_prefix_and_a_manifest_as_datasets() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let keys = good_images(&store.join("cams"), &models, 2);
    std::fs::write(store.join("cams/broken.jpg"), b"not a picture").unwrap();
    let run = |source: &[&str], out: &Path, queue: &str| {
        let mut args: Vec<String> = vec!["run".into()];
        args.extend(source.iter().map(|a| a.to_string()));
        args.extend(["-o".into(), out.display().to_string(), "-q".into()]);
        args.extend(classify(&models));
        args.extend(["--max-failed-items", "1", "--max-failed-fraction", "1"].map(String::from));
        args.extend(queue_flags(&dir.path().join(queue)));
        fresco(args)
    };
    let prefix = format!("file://{}/cams/", store.display());
    let out = dir.path().join("cams.jsonl");
    run(&[&prefix], &out, "q1").ok();
    let rows = jsonl_rows(&out);
    let mut expected = keys.clone();
    expected.insert(0, "broken.jpg".into());
    assert_eq!(sources(&rows), expected);
    assert_eq!(error_kind(&rows[0]), Some("not-image"));

    let manifest = dir.path().join("picks.txt");
    std::fs::write(
        &manifest,
        format!("store/cams/{}\nstore/cams/broken.jpg\n", keys[1]),
    )
    .unwrap();
    let picked = dir.path().join("picks.jsonl");
    run(&["--manifest", manifest.to_str().unwrap()], &picked, "q2").ok();
    let rows = jsonl_rows(&picked);
    assert_eq!(
        sources(&rows),
        [
            format!("store/cams/{}", keys[1]),
            "store/cams/broken.jpg".into()
        ]
    );
    assert_eq!(error_kind(&rows[1]), Some("not-image"));
}

/// `fresco ARGS`, which must succeed: what it printed, and the peak resident memory of the run
/// in MiB.
fn run_measured(args: &[String]) -> (Out, u64) {
    let (ran, peak_kib) = common::run_measured(fresco_cmd().args(args), Duration::from_secs(600));
    (ran.ok(), peak_kib / 1024)
}

/// A file of 2 GiB (sparse: no blocks on disk) among good images is over the default
/// `--max-item-bytes` (256 MiB): its row is `too-large`, the run succeeds within its threshold,
/// and it is never read, so the run's peak memory stays far below the file's size.
#[test]
fn a_huge_file_is_too_large_and_never_read() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let mut keys = good_images(&photos, &models, 3);
    let huge = std::fs::File::create(photos.join("big.jpg")).unwrap();
    huge.set_len(2 << 30).unwrap();
    keys.push("big.jpg".into());
    keys.sort();

    // The limit is checked where it is given.
    let refused = fresco([
        "jobs",
        "submit",
        photos.to_str().unwrap(),
        "-o",
        "x.jsonl",
        "--max-item-bytes",
        "0",
    ]);
    assert_ne!(refused.code, Some(0), "{}", refused.dump());
    assert!(
        refused.stderr.contains("--max-item-bytes"),
        "{}",
        refused.dump()
    );

    let out = dir.path().join("tags.jsonl");
    let mut args: Vec<String> = vec!["run".into(), photos.display().to_string()];
    args.extend(["-o".into(), out.display().to_string(), "-q".into()]);
    args.extend(classify(&models));
    args.extend(["--max-failed-items", "1", "--max-failed-fraction", "1"].map(String::from));
    args.extend(queue_flags(&dir.path().join("q")));
    let (_, peak_mib) = run_measured(&args);
    let rows = jsonl_rows(&out);
    assert_eq!(sources(&rows), keys);
    let big = rows.iter().find(|r| r["source"] == "big.jpg").unwrap();
    assert_eq!(error_kind(big), Some("too-large"), "{big}");
    let message = big["error"]["message"].as_str().unwrap();
    assert!(message.contains("--max-item-bytes 268435456"), "{message}");
    eprintln!("peak resident memory of the run: {peak_mib} MiB");
    assert!(
        peak_mib < 400,
        "the run's peak memory was {peak_mib} MiB: was the 2 GiB file read?"
    );
}

/// `fresco jobs retry` of a dataset job canceled mid-run, after new files arrived in its folder:
/// the retry scores the set the job pinned (its plan is kept), none of the new files.
#[test]
fn a_retried_job_scores_the_set_it_pinned() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let keys = good_images(&photos, &models, 6);
    let queue = sqlite_queue(dir.path());
    let out = dir.path().join("tags.jsonl");
    let photos_arg = photos.display().to_string();
    let id = submit(
        &queue,
        &[&photos_arg],
        &out,
        &models,
        &["--chunk-frames", "2"],
    )
    .ok();
    let id = id.stdout.trim().to_string();
    let log = dir.path().join("canceled.log");
    let slow = [("FRESCO_TEST_FRAME_DELAY_MS", "300")];
    let mut worker = queue.spawn_worker(&log, &slow, &[]);
    wait_until(Duration::from_secs(120), "a claimed chunk", || {
        read_log(&log).contains("claimed score chunk")
    });
    queue.jobs("cancel", &id).ok();
    wait_exit(&mut worker, Duration::from_secs(120), "the worker");
    assert_eq!(queue.show(&id)["state"], "canceled");
    assert!(!out.exists());

    std::fs::copy(models.join("dog.jpg"), photos.join("aaa-new.jpg")).unwrap();
    std::fs::copy(models.join("dog.jpg"), photos.join("sub/zzz-new.jpg")).unwrap();
    std::fs::write(photos.join("broken-new.jpg"), b"not a picture").unwrap();
    queue.jobs("retry", &id).ok();
    work(&queue, &dir.path().join("retried.log"));
    let job = queue.show(&id);
    assert_eq!(job["state"], "succeeded", "{job:#}");
    let rows = jsonl_rows(&out);
    assert_eq!(
        sources(&rows),
        keys,
        "the pinned set, none of the new files"
    );
    assert!(rows.iter().all(|r| error_kind(r).is_none()));
}

/// A dataset into Parquet: one row per item in listing order, read back by pyarrow (skipped
/// where no Python has it, unless `FRESCO_REQUIRE_PYARROW=1`); error rows have null task
/// columns and their kind and message; one row group per chunk.
#[test]
fn a_dataset_is_written_as_parquet() {
    let Some(models) = scoring_models() else {
        return;
    };
    let Some(python) = python_with_pyarrow() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let mut keys = good_images(&photos, &models, 4);
    std::fs::write(photos.join("broken.jpg"), b"not a picture").unwrap();
    std::fs::write(photos.join("empty.png"), b"").unwrap();
    keys.extend(["broken.jpg", "empty.png"].map(String::from));
    keys.sort();
    let queue = sqlite_queue(dir.path());
    let out = dir.path().join("tags.parquet");
    let photos_arg = photos.display().to_string();
    let id = submit(
        &queue,
        &[&photos_arg],
        &out,
        &models,
        &[
            "--chunk-frames",
            "4",
            "--max-failed-items",
            "2",
            "--max-failed-fraction",
            "1",
        ],
    )
    .ok();
    work(&queue, &dir.path().join("worker.log"));
    let job = queue.show(id.stdout.trim());
    assert_eq!(job["state"], "succeeded", "{job:#}");
    let script = "import sys, json, pyarrow.parquet as pq\n\
        f = pq.ParquetFile(sys.argv[1])\n\
        t = f.read()\n\
        print(json.dumps({'row_groups': f.num_row_groups, \
            'columns': t.schema.names, 'rows': t.to_pylist()}))";
    let read = std::process::Command::new(python)
        .args(["-c", script, out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(got["row_groups"], 2, "a row group per chunk");
    assert_eq!(
        got["columns"],
        serde_json::json!([
            "source",
            "frame",
            "pts",
            "time",
            "classes",
            "error_kind",
            "error_message"
        ])
    );
    let rows = got["rows"].as_array().unwrap();
    assert_eq!(sources(rows), keys, "a row per item, in listing order");
    for row in rows {
        match row["source"].as_str().unwrap() {
            "broken.jpg" | "empty.png" => {
                let kind = if row["source"] == "broken.jpg" {
                    "not-image"
                } else {
                    "empty"
                };
                assert_eq!(row["error_kind"], kind, "{row}");
                assert!(row["error_message"].as_str().unwrap().len() > 3, "{row}");
                assert!(row["classes"].is_null() && row["frame"].is_null(), "{row}");
            }
            _ => {
                assert!(row["error_kind"].is_null() && row["error_message"].is_null());
                assert_eq!(row["frame"], 0, "{row}");
                let top = &row["classes"][0];
                assert!(top["score"].as_f64().unwrap() > 0.0, "{row}");
                assert!(top["label"].is_string(), "{row}");
            }
        }
    }
}
