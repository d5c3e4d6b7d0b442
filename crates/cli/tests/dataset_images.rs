//! Image dataset jobs (issue 17): a folder or prefix of images styled by an image model into an
//! output folder or prefix, one output per item with the item's relative key:
//! - keys kept (subfolders, odd names), bad items as rows of `_errors.jsonl`, links in the input
//!   not followed, and the same run again is refused (the folder holds outputs) and writes
//!   nothing;
//! - a retried job does not redo an item whose output an earlier try wrote (same inode);
//! - hostile outputs: inside the input, around the input, holding files already, a file, a link
//!   in the output folder;
//! - a prefix in a `file://` store and (where `FRESCO_TEST_AZURITE=1`) in Azurite.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use common::jobs::{read_log, sqlite_queue, wait_exit, wait_until};
use common::outputs::{a_retry_keeps_what_the_first_try_wrote, error_rows, keys_below};
use common::*;

/// A testsrc2 still of `size` at `path` (its format from the extension).
fn still(path: &Path, size: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let src = format!("testsrc2=size={size}");
    ffmpeg(
        &["-f", "lavfi", "-i", &src, "-frames:v", "1", "-update", "1"],
        path,
    );
}

const ODD: &str = "sub/deeper/odd name é #1%20.png";

/// A folder of good stills (a subfolder, an odd name), bad items, a text file and links.
fn photos(dir: &Path) -> std::path::PathBuf {
    let photos = dir.join("photos");
    still(&photos.join("a.png"), "48x32");
    still(&photos.join("sub/b.jpg"), "32x48");
    still(&photos.join(ODD), "16x16");
    std::fs::write(photos.join("broken.jpg"), b"not a picture at all").unwrap();
    std::fs::write(photos.join("empty.png"), b"").unwrap();
    std::fs::write(photos.join("notes.txt"), b"not an image\n").unwrap();
    // A key no output may be named by: a line break.
    std::fs::copy(photos.join("a.png"), photos.join("new\nline.png")).unwrap();
    // Links are not items: neither a linked file nor a linked folder is followed.
    let elsewhere = dir.join("elsewhere");
    still(&elsewhere.join("secret.png"), "16x16");
    std::os::unix::fs::symlink(elsewhere.join("secret.png"), photos.join("link.png")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, photos.join("linked")).unwrap();
    photos
}

#[test]
fn a_folder_is_styled_into_a_folder_with_its_keys_and_bad_items_as_error_rows() {
    let dir = tempfile::tempdir().unwrap();
    let photos = photos(dir.path());
    let model = identity_model(dir.path());
    let styled = dir.path().join("styled");
    let args = [
        s("run"),
        p(&photos),
        s("-o"),
        p(&styled),
        s("--model"),
        p(&model),
        s("--max-failed-fraction"),
        s("0.5"),
        s("--chunk-frames"),
        s("2"),
        s("--json"),
    ];
    let json = fresco(args).ok().json();
    assert_eq!(
        json["dataset"],
        serde_json::json!({"scored": 3, "failed": 3, "skipped": 1}),
        "{json:#}"
    );
    assert_eq!(
        keys_below(&styled),
        ["_errors.jsonl", "a.png", "sub/b.jpg", ODD],
        "one output per good item, its key kept; no link followed"
    );
    // The identity model gives the PNG back exactly; the JPEG keeps its size and format.
    assert_eq!(
        decode_rgb(&photos.join("a.png")).2,
        decode_rgb(&styled.join("a.png")).2
    );
    assert_eq!(displayed_size(&styled.join("sub/b.jpg")), (32, 48));
    assert_eq!(
        &std::fs::read(styled.join("sub/b.jpg")).unwrap()[..2],
        b"\xff\xd8"
    );
    assert_eq!(
        error_rows(&styled.join("_errors.jsonl")),
        [
            ("broken.jpg".to_string(), "not-image".to_string()),
            ("empty.png".to_string(), "empty".to_string()),
            ("new\nline.png".to_string(), "bad-key".to_string()),
        ]
    );
    // The same run again is a new job, refused as the folder holds outputs (as a finished
    // video's output is refused): nothing is written again.
    let before = std::fs::metadata(styled.join("a.png")).unwrap();
    fresco(args).fails(5, "styled", &["already holds files", "--overwrite"]);
    let after = std::fs::metadata(styled.join("a.png")).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );

    // Past the default threshold (1%) the job fails, and its error rows are still there.
    let strict = dir.path().join("strict");
    let failed = fresco([
        s("run"),
        p(&photos),
        s("-o"),
        p(&strict),
        s("--model"),
        p(&model),
    ]);
    assert_ne!(failed.code, Some(0), "{}", failed.dump());
    assert!(
        failed.stderr.contains("3 of 6 items failed"),
        "{}",
        failed.dump()
    );
    assert_eq!(error_rows(&strict.join("_errors.jsonl")).len(), 3);
}

#[test]
fn a_retried_job_does_not_rewrite_what_an_earlier_try_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let mut keys = Vec::new();
    for i in 0..6 {
        let key = format!("p{i}.png");
        still(&photos.join(&key), "32x32");
        keys.push(key);
    }
    let model = identity_model(dir.path());
    let styled = dir.path().join("styled");
    let queue = sqlite_queue(dir.path());
    let id = queue.submit(&photos, &styled, &model, &["--chunk-frames", "6"]);
    a_retry_keeps_what_the_first_try_wrote(&queue, dir.path(), &id, &styled, "p1.png", &keys);
}

#[test]
fn hostile_outputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    still(&photos.join("a.png"), "16x16");
    still(&photos.join("sub/b.png"), "16x16");
    let model = identity_model(dir.path());
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            s("run"),
            p(&photos),
            s("-o"),
            p(out),
            s("--model"),
            p(&model),
        ];
        args.extend(extra.iter().map(|a| s(a)));
        fresco(args)
    };
    // Inside the input: a later listing would style the outputs again.
    let inside = photos.join("styled");
    let refused = run(&inside, &[]);
    assert_ne!(refused.code, Some(0), "{}", refused.dump());
    assert!(
        refused.stderr.contains("inside the input"),
        "{}",
        refused.dump()
    );
    assert!(!inside.exists());
    // Around the input.
    let refused = run(dir.path(), &[]);
    assert!(
        refused.stderr.contains("inside the output"),
        "{}",
        refused.dump()
    );
    // A file.
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let refused = run(&file, &[]);
    assert!(
        refused.stderr.contains("this is a file"),
        "{}",
        refused.dump()
    );
    // A folder holding files already: refused, unless --overwrite.
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep.txt"), b"mine").unwrap();
    // A previous job's output, older than this job: --overwrite replaces it.
    std::fs::write(full.join("a.png"), b"old").unwrap();
    let refused = run(&full, &[]);
    assert!(
        refused.stderr.contains("already holds files"),
        "{}",
        refused.dump()
    );
    assert_eq!(keys_below(&full), ["a.png", "keep.txt"]);
    run(&full, &["--overwrite"]).ok();
    assert_eq!(keys_below(&full), ["a.png", "keep.txt", "sub/b.png"]);
    assert_eq!(
        displayed_size(&full.join("a.png")),
        (16, 16),
        "not replaced"
    );
    assert_eq!(std::fs::read(full.join("keep.txt")).unwrap(), b"mine");
    // A link in the output folder where a subfolder goes: nothing is written through it.
    let linked = dir.path().join("linked");
    let target = dir.path().join("target");
    std::fs::create_dir_all(&linked).unwrap();
    std::fs::create_dir_all(&target).unwrap();
    std::os::unix::fs::symlink(&target, linked.join("sub")).unwrap();
    let refused = run(&linked, &["--overwrite"]);
    assert_ne!(refused.code, Some(0), "{}", refused.dump());
    assert!(
        refused.stderr.contains("not a folder"),
        "{}",
        refused.dump()
    );
    assert!(keys_below(&target).is_empty(), "written through the link");
}

/// A prefix of a store at `base` styled into another prefix of it.
fn a_prefix_is_styled(dir: &Path, base: &str) {
    let local = dir.join("local");
    still(&local.join("a.png"), "24x16");
    still(&local.join("sub/b.webp"), "16x24");
    common::objects::upload(&format!("{base}/photos/a.png"), &local.join("a.png"));
    common::objects::upload(
        &format!("{base}/photos/sub/b.webp"),
        &local.join("sub/b.webp"),
    );
    still(&local.join("odd.png"), "16x16");
    common::objects::upload(
        &format!("{base}/photos/sub/odd name é #1.png"),
        &local.join("odd.png"),
    );
    std::fs::write(local.join("bad.png"), b"no").unwrap();
    common::objects::upload(&format!("{base}/photos/bad.png"), &local.join("bad.png"));
    let model = identity_model(dir);
    let queue = sqlite_queue(dir);
    let id = queue.submit(
        Path::new(&format!("{base}/photos/")),
        Path::new(&format!("{base}/styled/")),
        &model,
        &["--max-failed-items", "1", "--max-failed-fraction", "1"],
    );
    let log = dir.join("worker.log");
    let mut worker = queue.spawn_worker(&log, &[], &[]);
    let status = wait_exit(&mut worker, Duration::from_secs(300), "the worker");
    assert!(status.success(), "{}", read_log(&log));
    let job = queue.show(&id);
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(
        common::objects::keys(&format!("{base}/styled/")),
        [
            "_errors.jsonl",
            "a.png",
            "sub/b.webp",
            "sub/odd name é #1.png"
        ]
    );
    let got = dir.join("got.png");
    common::objects::download(&format!("{base}/styled/a.png"), &got);
    assert_eq!(decode_rgb(&got).2, decode_rgb(&local.join("a.png")).2);
    let errors = dir.join("errors.jsonl");
    common::objects::download(&format!("{base}/styled/_errors.jsonl"), &errors);
    assert_eq!(
        error_rows(&errors),
        [("bad.png".to_string(), "not-image".to_string())]
    );
    let logged = queue.jobs("logs", &id).ok();
    assert!(
        logged
            .stdout
            .contains("3 items scored, 1 failed, 0 skipped"),
        "{}",
        logged.dump()
    );
}

#[test]
fn a_prefix_in_a_file_url_store_is_styled() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    a_prefix_is_styled(dir.path(), &format!("file://{}", store.display()));
}

#[test]
fn a_prefix_in_an_azurite_container_is_styled() {
    let Some(container) = fresco_testkit::azurite::container("dataset_images") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    a_prefix_is_styled(dir.path(), &format!("az://{container}"));
}

/// A real style (mosaic, from `$FRESCO_MODEL_DIR`; skipped, saying so, where it is not set up):
/// a folder styled as a dataset gives each picture exactly as styling that one file does.
#[test]
fn a_folder_styled_with_mosaic_matches_each_file_styled_alone() {
    let Some(models) = fresco_testkit::models::real_model_dir("mosaic") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let env = [
        ("FRESCO_MODEL_DIR", p(&models)),
        ("FRESCO_CACHE_DIR", p(&cache)),
    ];
    let photos = dir.path().join("photos");
    still(&photos.join("wide.png"), "64x40");
    still(&photos.join("sub/tall.png"), "40x64");
    let styled = dir.path().join("styled");
    let style = [s("--style"), s("mosaic"), s("--no-download")];
    let mut args = vec![s("run"), p(&photos), s("-o"), p(&styled)];
    args.extend(style);
    fresco_env(args, &env).ok();
    assert_eq!(keys_below(&styled), ["sub/tall.png", "wide.png"]);
    for key in ["wide.png", "sub/tall.png"] {
        let alone = dir.path().join(format!("alone-{}", key.replace('/', "-")));
        let input = photos.join(key);
        let mut args = vec![s("run"), p(&input), s("-o"), p(&alone)];
        args.extend(style);
        fresco_env(args, &env).ok();
        let (_, _, a) = decode_rgb(&alone);
        let (_, _, b) = decode_rgb(&styled.join(key));
        assert_eq!(
            a, b,
            "{key}: the dataset's picture differs from the file styled alone"
        );
        let (_, _, original) = decode_rgb(&input);
        let db = psnr(&original[0], &b[0]);
        assert!(db < 20.0, "{key}: mosaic barely changed it ({db:.1} dB)");
    }
}

/// `fresco run FOLDER -o OUT/` killed mid-run and run again: the same job resumes, and the
/// outputs the killed run published are kept, not written again.
#[test]
fn a_killed_run_resumes_and_keeps_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let mut keys = Vec::new();
    for i in 0..8 {
        let key = format!("p{i}.png");
        still(&photos.join(&key), "24x24");
        keys.push(key);
    }
    let model = identity_model(dir.path());
    let styled = dir.path().join("styled");
    let args = |cmd: &mut std::process::Command| {
        cmd.args([
            s("run"),
            p(&photos),
            s("-o"),
            p(&styled),
            s("--model"),
            p(&model),
        ])
        .args(["--workers", "1", "--chunk-frames", "4"]);
    };
    let mut first = fresco_cmd();
    args(&mut first);
    let log = dir.path().join("first.log");
    let mut first = first
        .env("FRESCO_TEST_FRAME_DELAY_MS", "300")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(120), "a first output", || {
        styled.join("p1.png").exists()
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let early: Vec<(String, u64)> = keys
        .iter()
        .filter_map(|k| {
            std::fs::metadata(styled.join(k))
                .ok()
                .map(|m| (k.clone(), m.ino()))
        })
        .collect();
    assert!(
        !early.is_empty() && early.len() < keys.len(),
        "the killed run wrote {} of {} outputs",
        early.len(),
        keys.len()
    );
    let mut again = fresco_cmd();
    args(&mut again);
    let out = run_with_timeout(&mut again, Duration::from_secs(180)).ok();
    assert!(out.stderr.contains("resuming job"), "{}", out.dump());
    assert_eq!(keys_below(&styled), keys);
    for (key, inode) in early {
        assert_eq!(
            std::fs::metadata(styled.join(&key)).unwrap().ino(),
            inode,
            "{key} was written again by the resumed run"
        );
    }
}

/// A picture over the server's limits on a frame's size (`--max-input-pixels`, here 4,096) is a
/// `too-large` row of a styled dataset, as the model's memory grows with the picture; the
/// others are styled. Submitted through `POST /v1/jobs`, scored by a worker.
#[test]
fn a_picture_over_the_servers_size_limit_is_a_too_large_row() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    still(&photos.join("small.png"), "64x48");
    still(&photos.join("big.png"), "100x80");
    let model = write_model(
        dir.path(),
        "vintage.onnx",
        fresco_infer::onnx_build::vintage_filter_model(),
    );
    let queue = sqlite_queue(dir.path());
    let limits = fresco_wire::limits::InputLimits {
        max_pixels: Some(4096),
        ..fresco_wire::limits::InputLimits::none()
    };
    let factory = fresco_server::LocalJobFactory::default()
        .allow_download(false)
        .limits(limits);
    let api = common::api::Api::open_with(&queue.url, fresco_queue::Role::Submitter, factory);
    let styled = dir.path().join("styled");
    let answer = fresco_testkit::http::post(&format!("{}/v1/jobs", api.url))
        .bearer(&api.token)
        .send_json(&serde_json::json!({
            "input": photos.display().to_string(),
            "output": styled.display().to_string(),
            "model": model.display().to_string(),
            "device": "cpu",
            "dataset": {"max_failed_fraction": 1.0},
        }));
    assert!(answer.status < 300, "{}: {}", answer.status, answer.text());
    let id = answer.json()["id"].as_str().unwrap().to_string();
    let log = dir.path().join("worker.log");
    let mut worker = queue.spawn_worker(&log, &[], &[]);
    let status = wait_exit(&mut worker, Duration::from_secs(120), "the worker");
    assert!(status.success(), "{}", read_log(&log));
    assert_eq!(queue.show(&id)["state"], "succeeded", "{}", read_log(&log));
    assert_eq!(keys_below(&styled), ["_errors.jsonl", "small.png"]);
    assert_eq!(
        error_rows(&styled.join("_errors.jsonl")),
        [("big.png".to_string(), "too-large".to_string())]
    );
    let errors = std::fs::read_to_string(styled.join("_errors.jsonl")).unwrap();
    assert!(
        errors.contains("100x80") && errors.contains("--max-input-pixels"),
        "{errors}"
    );
}
