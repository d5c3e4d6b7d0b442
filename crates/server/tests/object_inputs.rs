//! Object-store inputs are checked before their job is queued, from their first and last bytes
//! (ranged reads into a sparse scratch file, then ffprobe), with the real job factory: a
//! `file://` store always, Azurite when `FRESCO_TEST_AZURITE=1` (after
//! `eval "$(scripts/azurite.sh)"`; "SKIPPED" otherwise, a failure with
//! `FRESCO_REQUIRE_AZURITE=1`).
//!
//! The probe window is 8 KiB here so that every clip but the smallest is read only at its ends,
//! as a large video would be with the default 8 MiB. Needs ffmpeg and ONNX Runtime (the vintage
//! style is loaded for the accepted ones), as hostile.rs does. About 3-6 s.

mod common;

use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use fresco_infer::registry::Registry;
use fresco_server::factory::ProbeWindow;
use fresco_server::limits::{InputLimits, PathRules};
use fresco_server::LocalJobFactory;
use fresco_testkit::files::write_random;
use fresco_testkit::media::ffmpeg;
use serde_json::json;

const WINDOW: u64 = 8 << 10;

/// An H.264 MP4 of `size` and `seconds`, its index (`moov`) at the start or at the end.
fn clip(path: &Path, size: &str, seconds: &str, faststart: bool) {
    let source = format!("testsrc2=size={size}:rate=25");
    let mut args = vec!["-f", "lavfi", "-i", &source, "-t", seconds];
    args.extend(["-c:v", "libx264", "-pix_fmt", "yuv420p"]);
    if faststart {
        args.extend(["-movflags", "+faststart"]);
    }
    ffmpeg(&args, path);
}

/// Where the moov box of an MP4 starts.
fn moov_offset(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    bytes.windows(4).position(|w| w == b"moov").unwrap() - 4
}

/// The corpus, in `dir`: (file name, expected status, expected code or "" for a job).
fn make_inputs(dir: &Path) -> Vec<(&'static str, StatusCode, &'static str)> {
    let bad = StatusCode::BAD_REQUEST;
    let unusable = StatusCode::UNPROCESSABLE_ENTITY;
    clip(&dir.join("faststart.mp4"), "320x240", "1.5", true);
    clip(&dir.join("moov-at-end.mp4"), "320x240", "1.5", false);
    clip(&dir.join("long.mp4"), "160x120", "3", false);
    clip(&dir.join("wide.mp4"), "640x96", "1", false);
    // A minute of tiny frames: its index at the end is longer than the tail window, so only
    // walking the boxes finds it (and its duration, over the limit).
    clip(&dir.join("long-index.mp4"), "32x32", "60", false);
    write_random(&dir.join("random.mp4"), 64 << 10, 0x2545_f491_4f6c_dd1d);
    write_random(
        &dir.join("random-small.mp4"),
        4 << 10,
        0x2545_f491_4f6c_dd1d,
    );
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=d=1.5",
            "-c:a",
            "aac",
            "-b:a",
            "192k",
        ],
        &dir.join("audio-only.mp4"),
    );
    // An MP4 cut before its index: ffprobe knows the container but finds no moov in the ends.
    // From its ends alone it cannot be told from a long video whose index is in the middle, so
    // it is queued and its plan task refuses it.
    let whole = std::fs::read(dir.join("moov-at-end.mp4")).unwrap();
    std::fs::write(dir.join("truncated.mp4"), &whole[..whole.len() / 2]).unwrap();
    let end = dir.join("moov-at-end.mp4");
    let fast = dir.join("faststart.mp4");
    assert!(moov_offset(&fast) < 64, "faststart put the index first");
    let size = std::fs::metadata(&end).unwrap().len();
    assert!(
        moov_offset(&end) as u64 > size / 2 && size > 4 * WINDOW,
        "the clip without faststart has its index at the end, past the head window"
    );
    let long = dir.join("long-index.mp4");
    let bytes = std::fs::read(&long).unwrap();
    let at = moov_offset(&long);
    let moov_len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
    assert!(
        moov_len > WINDOW && at as u64 > WINDOW,
        "long-index.mp4's index ({moov_len} bytes at {at}) is in neither window"
    );
    for name in [
        "faststart.mp4",
        "random.mp4",
        "audio-only.mp4",
        "truncated.mp4",
    ] {
        let len = std::fs::metadata(dir.join(name)).unwrap().len();
        assert!(
            len > 2 * WINDOW,
            "{name} ({len} bytes) is read only at its ends"
        );
    }
    vec![
        ("faststart.mp4", StatusCode::CREATED, ""),
        ("moov-at-end.mp4", StatusCode::CREATED, ""),
        ("long.mp4", bad, "input-too-long"),
        ("long-index.mp4", bad, "input-too-long"),
        ("wide.mp4", bad, "input-dimensions-too-large"),
        ("random.mp4", unusable, "input-not-media"),
        ("random-small.mp4", unusable, "input-not-media"),
        ("audio-only.mp4", unusable, "input-not-video"),
        ("truncated.mp4", StatusCode::CREATED, ""),
    ]
}

/// Puts the corpus under `base` (a `file://` or `az://` URL) and submits each file: every one
/// gets its expected status and code, and the probe leaves no scratch file.
async fn submit_corpus(base: &str) {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(&scratch).unwrap();
    let cases = make_inputs(&files);
    let store = fresco_store::Store::from_url(base).unwrap();
    for (name, ..) in &cases {
        store
            .upload_file(&format!("in/{name}"), &files.join(name))
            .await
            .unwrap_or_else(|e| panic!("upload {name}: {e}"));
    }
    let factory = LocalJobFactory::new(Registry::from_env())
        .allow_download(false)
        .paths(PathRules::default().allow(base).unwrap())
        .limits(InputLimits {
            max_bytes: Some(1 << 20),
            max_seconds: Some(2.0),
            max_width: Some(320),
            max_height: Some(240),
            max_pixels: Some(320 * 240),
            ..InputLimits::none()
        })
        .probe_window(ProbeWindow { bytes: WINDOW })
        .scratch_dir(scratch.clone());
    let app = app_with(Arc::new(factory)).await;
    let mut failures = Vec::new();
    for (name, status, code) in &cases {
        let body = json!({
            "input": format!("{base}/in/{name}"),
            "output": format!("{base}/out/{name}"),
            "style": "vintage",
        });
        let reply = post_json(&app.state, "/v1/jobs", &body, None).await;
        let got = reply.body["error"]["code"].as_str().unwrap_or_default();
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        let names_it = code.is_empty() || message.contains(name) || message.starts_with("input:");
        if reply.status != *status || got != *code || !names_it {
            failures.push(format!(
                "{name}: expected {status} {code:?}, got {} {}",
                reply.status, reply.text
            ));
        }
    }
    assert!(failures.is_empty(), "{base}:\n{}", failures.join("\n"));
    // A codec the output's container cannot hold is refused before queueing, as for a file.
    let body = json!({
        "input": format!("{base}/in/faststart.mp4"),
        "output": format!("{base}/out/styled.webm"),
        "style": "vintage",
        "codec": "libx264",
    });
    let reply = post_json(&app.state, "/v1/jobs", &body, None).await;
    let message = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "encoder-unusable");
    assert!(
        message.contains("cannot hold video from the encoder libx264"),
        "{message}"
    );
    let accepted = app.queue.jobs(&[], 100).await.unwrap().len();
    assert_eq!(accepted, 3, "three jobs were queued");
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(left.is_empty(), "the probe left scratch files: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_url_inputs_are_probed_from_their_ends_before_queueing() {
    if let Err(e) = fresco_infer::runtime::environment() {
        panic!("ONNX Runtime cannot be loaded, so the vintage style cannot be checked: {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    std::fs::create_dir_all(&root).unwrap();
    let base = format!("file://{}", root.canonicalize().unwrap().display());
    submit_corpus(&base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_inputs_are_probed_from_their_ends_before_queueing() {
    let Some(container) = fresco_testkit::azurite::container(
        "azure_inputs_are_probed_from_their_ends_before_queueing",
    ) else {
        return;
    };
    if let Err(e) = fresco_infer::runtime::environment() {
        panic!("ONNX Runtime cannot be loaded, so the vintage style cannot be checked: {e}");
    }
    submit_corpus(&format!("az://{container}")).await;
}
