//! Jobs whose input and output are objects in Azure Blob Storage (Azurite): submitted with
//! `fresco jobs submit az://... -o az://...`, done by `fresco worker`, checked frame by frame
//! and for the audio. Runs when `FRESCO_TEST_AZURITE=1` (after `eval "$(scripts/azurite.sh)"`),
//! says SKIPPED otherwise, and fails with `FRESCO_REQUIRE_AZURITE=1` when it cannot run.

mod common;

use std::path::Path;

use common::jobs::{read_log, sqlite_queue, wait_exit};
use common::objects::{download, exists, upload};
use common::*;

/// Waits for a worker to exit; on a timeout, the panic carries its log.
fn finish_worker(worker: &mut std::process::Child, log: &Path) {
    let log_on_panic = log.to_path_buf();
    let status = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_exit(worker, RUN_TIMEOUT, "worker")
    }))
    .unwrap_or_else(|_| panic!("worker hung; its log:\n{}", read_log(&log_on_panic)));
    assert!(status.success(), "worker failed:\n{}", read_log(log));
}

#[test]
fn a_clip_in_a_container_is_styled_into_the_container() {
    let Some(container) = fresco_testkit::azurite::container("remote_clip") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    make_vfr_clip_with_audio(&clip, 2);
    let model = identity_model(dir.path());
    let input_url = format!("az://{container}/in/clip.mp4");
    let output_url = format!("az://{container}/out/clip.mp4");
    upload(&input_url, &clip);

    let queue = sqlite_queue(dir.path());
    let id = queue.submit(
        Path::new(&input_url),
        Path::new(&output_url),
        &model,
        &["--codec", "libx264rgb", "--crf", "0", "--chunk-frames", "7"],
    );
    assert!(!id.is_empty());
    assert!(!exists(&output_url), "nothing is published before assembly");
    let log = dir.path().join("worker.log");
    let mut worker = queue.spawn_worker(&log, &[], &[]);
    finish_worker(&mut worker, &log);
    let job = queue.show(&id);
    assert_eq!(job["state"], "succeeded", "{job:#}\n{}", read_log(&log));
    let log_text = read_log(&log);
    assert_eq!(
        log_text.matches("downloaded az://").count(),
        1,
        "one download per worker per job:\n{log_text}"
    );

    let styled = dir.path().join("styled.mp4");
    download(&output_url, &styled);
    let (input_frames, output_frames) = (frame_md5s(&clip), frame_md5s(&styled));
    assert!(input_frames.len() > 7, "{} frames", input_frames.len());
    assert_eq!(input_frames, output_frames, "frames changed");
    assert_eq!(audio_md5(&clip, 0), audio_md5(&styled, 0), "audio changed");

    // The worker's scratch folder (beside the work folder) is gone with the worker.
    let scratch = queue.work.parent().unwrap().join("scratch");
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "scratch files left: {left:?}");

    // The output now exists: another job for it is refused without --overwrite...
    let out = fresco(
        [
            s("jobs"),
            s("submit"),
            s(&input_url),
            s("-o"),
            s(&output_url),
        ]
        .into_iter()
        .chain([s("--model"), p(&model), s("--chunk-frames"), s("5")])
        .chain(queue.args()),
    );
    out.fails(5, "out/clip.mp4", &["exists", "--overwrite"]);
    // ...and accepted with it.
    let out = fresco(
        [
            s("jobs"),
            s("submit"),
            s(&input_url),
            s("-o"),
            s(&output_url),
        ]
        .into_iter()
        .chain([s("--model"), p(&model), s("--chunk-frames"), s("5")])
        .chain([s("--overwrite")])
        .chain(queue.args()),
    );
    out.ok();
}

#[test]
fn a_missing_input_object_is_refused_at_submission() {
    let Some(container) = fresco_testkit::azurite::container("remote_missing") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    let queue = sqlite_queue(dir.path());
    let input_url = format!("az://{container}/in/missing.mp4");
    let out = fresco(
        [s("jobs"), s("submit"), s(&input_url), s("-o")]
            .into_iter()
            .chain([s(&format!("az://{container}/out/missing.mp4"))])
            .chain([s("--model"), p(&model)])
            .chain(queue.args()),
    );
    out.fails(3, "in/missing.mp4", &["no such object"]);
    let out = fresco(
        [s("jobs"), s("list"), s("--json")]
            .into_iter()
            .chain(queue.args()),
    );
    let listed = out.ok().json();
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed:#}");
}

#[test]
fn urls_that_name_no_object_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    let queue = sqlite_queue(dir.path());
    let out = fresco(
        [
            s("jobs"),
            s("submit"),
            s("az://container"),
            s("-o"),
            s("/tmp/x.mp4"),
        ]
        .into_iter()
        .chain([s("--model"), p(&model)])
        .chain(queue.args()),
    );
    // A URL with no object name is a prefix, a dataset of images, styled into a folder or
    // scored into records: an output named like a video is neither, and the refusal names the
    // URL and says what each fix is.
    out.fails(
        4,
        "az://container",
        &[
            "names no single object",
            "give a folder or prefix",
            "a .jsonl or .parquet output",
            "name one object",
        ],
    );
}

/// The same path through a `file://` store, which needs no emulator: the input is downloaded
/// into scratch, the output (another container, by its extension) uploaded by rename.
#[test]
fn file_urls_go_through_the_store_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("in")).unwrap();
    let clip = store.join("in/clip.mp4");
    make_vfr_clip_with_audio(&clip, 1);
    let model = identity_model(dir.path());
    let input_url = format!("file://{}", clip.display());
    let output_url = format!("file://{}/out/clip.mkv", store.display());
    let queue = sqlite_queue(dir.path());
    let id = queue.submit(
        Path::new(&input_url),
        Path::new(&output_url),
        &model,
        &["--codec", "libx264rgb", "--crf", "0", "--chunk-frames", "4"],
    );
    let log = dir.path().join("worker.log");
    let mut worker = queue.spawn_worker(&log, &[], &[]);
    finish_worker(&mut worker, &log);
    let job = queue.show(&id);
    assert_eq!(job["state"], "succeeded", "{job:#}\n{}", read_log(&log));
    let styled = store.join("out/clip.mkv");
    assert_eq!(probe(&styled)["format"]["format_name"], "matroska,webm");
    assert_eq!(frame_md5s(&clip), frame_md5s(&styled), "frames changed");
    assert_eq!(audio_md5(&clip, 0), audio_md5(&styled, 0), "audio changed");
    assert_eq!(dir_names(&store.join("out")), vec!["clip.mkv".to_string()]);
}
