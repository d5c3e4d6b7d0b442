//! The default job factory on real files: a tiny clip made with ffmpeg and the built-in vintage
//! style, which needs ONNX Runtime (scripts/setup.sh installs it in .fresco/venv). Without the
//! runtime the test fails, saying so: it must not pass by skipping.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use fresco_infer::registry::Registry;
use fresco_server::LocalJobFactory;
use serde_json::json;

fn make_clip(path: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=64x48:rate=25")
        .args(["-t", "0.4", "-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(path)
        .status()
        .expect("ffmpeg must be installed for this test (scripts/setup.sh installs it)");
    assert!(status.success(), "ffmpeg could not make the test clip");
}

#[tokio::test]
async fn real_files_and_the_vintage_style_make_a_job() {
    if let Err(e) = fresco_infer::runtime::environment() {
        panic!("ONNX Runtime cannot be loaded, so the vintage style cannot be checked: {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    make_clip(&clip);
    let notes = dir.path().join("notes.mp4");
    std::fs::write(&notes, "not a video at all").unwrap();
    let existing = dir.path().join("existing.mp4");
    std::fs::write(&existing, "x").unwrap();
    let out = dir.path().join("out.mp4");

    // A registry without downloads: the test never reaches the network.
    let factory = LocalJobFactory::new(Registry::from_env()).allow_download(false);
    let app = app_with(Arc::new(factory)).await;
    let submit = |input: &Path, output: &Path, style: &str| json!({"input": input, "output": output, "style": style});

    let reply = post_json(
        &app.state,
        "/v1/jobs",
        &submit(&clip, &out, "vintage"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let id = reply.body["id"].as_str().unwrap().to_string();
    let canonical = clip.canonicalize().unwrap();
    assert_eq!(reply.body["input"], canonical.display().to_string());
    // The queued spec is the one a worker reads: model pinned by digest, options as asked.
    let job = app.queue.job(&id).await.unwrap().unwrap();
    let spec = fresco_core::JobSpec::from_json(&job.spec).expect("a worker can read the spec");
    assert_eq!(spec.model.name, "vintage");
    assert_eq!(spec.model.digest.len(), 64);
    // No codec asked for: the output's container picks it (.mp4: x264, as before).
    assert_eq!(spec.options.encode.codec, "libx264");
    assert_eq!(spec.options.encode.crf, Some(18));
    assert_eq!(
        job.identity,
        spec.identity_from(&fresco_store::fingerprint(&spec.input))
    );

    // A hardware encoder is not tried on the server, which needs no GPU: its plan task does.
    let reply = post_json(
        &app.state,
        "/v1/jobs",
        &json!({"input": clip, "output": dir.path().join("gpu.mp4"), "style": "vintage",
                "codec": "h264_nvenc"}),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");

    let cases = [
        (
            submit(&notes, &out, "vintage"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "input-not-media",
            "notes.mp4",
        ),
        (
            submit(&dir.path().join("gone.mp4"), &out, "vintage"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "input-missing",
            "gone.mp4",
        ),
        (
            submit(&clip, &existing, "vintage"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "output-exists",
            "existing.mp4",
        ),
        (
            submit(&clip, &clip, "vintage"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "same-file",
            "clip.mp4",
        ),
        (
            submit(&clip, &out, "no-such-style"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-style",
            "no-such-style",
        ),
        (
            json!({"input": clip, "output": out, "model": dir.path().join("missing.onnx")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "model-missing",
            "missing.onnx",
        ),
        (
            // Read whole by the server: never a device or a folder.
            json!({"input": clip, "output": out, "model": "/dev/zero"}),
            StatusCode::BAD_REQUEST,
            "model-not-a-file",
            "/dev/zero",
        ),
        (
            json!({"input": clip, "output": out, "model": dir.path()}),
            StatusCode::BAD_REQUEST,
            "model-not-a-file",
            "model",
        ),
        (
            // The output's container cannot hold the codec: refused before it is queued.
            json!({"input": clip, "output": dir.path().join("out.webm"), "style": "vintage",
                   "codec": "libx264"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "encoder-unusable",
            "cannot hold video from the encoder libx264",
        ),
        (
            json!({"input": clip, "output": out, "style": "vintage", "codec": "libnosuchcodec"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "encoder-unusable",
            "no encoder 'libnosuchcodec'",
        ),
        (
            json!({"input": "clip.mp4", "output": out, "style": "vintage"}),
            StatusCode::BAD_REQUEST,
            "path-not-absolute",
            "input",
        ),
    ];
    for (body, status, code, named) in cases {
        let reply = post_json(&app.state, "/v1/jobs", &body, None).await;
        let message = reply.error(status, code);
        assert!(message.contains(named), "{body}: {message}");
    }
    // A file that is not a model.
    let bogus = dir.path().join("bogus.onnx");
    std::fs::write(&bogus, "not onnx").unwrap();
    let reply = post_json(
        &app.state,
        "/v1/jobs",
        &json!({"input": clip, "output": dir.path().join("o2.mp4"), "model": bogus}),
        None,
    )
    .await;
    let message = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "model-not-onnx");
    assert!(message.contains("bogus.onnx"), "{message}");
}
