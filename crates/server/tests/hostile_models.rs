//! Hostile models against the real job factory through `POST /v1/jobs`: external data in every
//! place ONNX allows it (naming a secret file beside the server's working directory, climbing
//! out of it, absolute), constant-folding bombs, oversized graphs and broken protobufs. Each is
//! refused with a 422 and its own code, the secret's bytes are in no reply, no ONNX Runtime
//! session is ever built (a model that only a session would refuse is queued), and the
//! server's memory stays flat. Two submitter tokens take turns.
//!
//! Needs ffmpeg for the input clip (as `local_factory.rs`); no ONNX Runtime.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use fresco_infer::hostile_models as hostile;
use fresco_infer::registry::Registry;
use fresco_server::LocalJobFactory;
use serde_json::json;

const SECRET: &str = "FRESCO-TEST-SECRET-5d1c0a7e-do-not-leak";

/// One test at a time: the memory check reads the whole process's resident size.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn make_clip(path: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=64x48:rate=25")
        .args(["-t", "0.2", "-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(path)
        .status()
        .expect("ffmpeg must be installed for this test (scripts/setup.sh installs it)");
    assert!(status.success(), "ffmpeg could not make the test clip");
}

/// The resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_models_are_refused_by_the_api_without_a_session() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    // The server's working directory holds the secret, and so does a folder beside it: what a
    // relative external-data location resolves against when a runtime loads from memory.
    let cwd = root.join("srv");
    std::fs::create_dir_all(cwd.join("models")).unwrap();
    std::fs::write(cwd.join("secret.txt"), SECRET).unwrap();
    std::fs::write(root.join("secret.txt"), SECRET).unwrap();
    std::env::set_current_dir(&cwd).unwrap();
    let clip = root.join("clip.mp4");
    make_clip(&clip);
    let secret_abs = cwd.join("secret.txt").display().to_string();

    type Make = fn(&str) -> Vec<u8>;
    let places: [(&str, Make); 6] = [
        ("initializer", hostile::external_initializer),
        ("constant", hostile::external_constant_node),
        ("if", hostile::external_in_if_subgraph),
        ("sparse", hostile::external_sparse_initializer),
        ("function", hostile::external_in_function),
        ("training", hostile::external_in_training_info),
    ];
    let mut cases: Vec<(String, Vec<u8>, &str)> = Vec::new();
    for (place, make) in places {
        for (i, location) in [
            "secret.txt",
            "../secret.txt",
            "../../../../secret.txt",
            &secret_abs,
        ]
        .into_iter()
        .enumerate()
        {
            cases.push((
                format!("ext-{place}-{i}"),
                make(location),
                "model-external-data",
            ));
        }
    }
    for (name, bytes) in [
        (
            "bomb-constant-of-shape",
            hostile::constant_of_shape_bomb(1 << 17),
        ),
        ("bomb-expand", hostile::expand_bomb(1 << 17)),
        ("bomb-tile", hostile::tile_bomb(1 << 17)),
        ("bomb-range", hostile::range_bomb(1 << 31)),
        ("bomb-pad", hostile::pad_bomb(1 << 16)),
        ("bomb-resize", hostile::resize_bomb(1 << 17)),
        ("bomb-outer-product", hostile::outer_product_bomb(1 << 17)),
        ("too-many-nodes", hostile::long_chain(20_001)),
    ] {
        cases.push((name.into(), bytes, "model-too-complex"));
    }
    let good = fresco_infer::onnx_build::vintage_filter_model();
    for (name, bytes) in [
        ("garbage", b"\x08\x08\x12\xff\xff\xff\xff\x0f".to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        (
            "text",
            format!("model {{ location: \"{secret_abs}\" }}").into_bytes(),
        ),
    ] {
        cases.push((name.into(), bytes, "model-not-onnx"));
    }

    let factory = LocalJobFactory::new(Registry::from_env()).allow_download(false);
    let app = app_with(Arc::new(factory)).await;
    // Two submitters take turns, as hostile tenants would.
    let submitters = [
        make_token(
            app.queue.as_ref(),
            "tenant-a",
            fresco_queue::Role::Submitter,
        )
        .await,
        make_token(
            app.queue.as_ref(),
            "tenant-b",
            fresco_queue::Role::Submitter,
        )
        .await,
    ];
    let sessions = fresco_infer::engine::sessions_built();
    let rss_before = rss_kib();
    let mut failures = Vec::new();
    for (i, (name, bytes, code)) in cases.iter().enumerate() {
        let model = cwd.join("models").join(format!("{name}.onnx"));
        std::fs::write(&model, bytes).unwrap();
        let body = json!({
            "input": clip,
            "output": root.join(format!("out-{i}.mp4")),
            "model": model,
        });
        let request = axum::http::Request::post("/v1/jobs")
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let reply = send_as(&app.state, Some(&submitters[i % 2]), request).await;
        assert!(
            !reply.text.contains(SECRET),
            "{name}: the secret leaked: {}",
            reply.text
        );
        let got = reply.body["error"]["code"].as_str().unwrap_or_default();
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        if reply.status != StatusCode::UNPROCESSABLE_ENTITY || got != *code {
            failures.push(format!(
                "{name}: expected 422 {code}, got {} {}",
                reply.status, reply.text
            ));
        } else if !message.contains(&format!("{name}.onnx")) {
            failures.push(format!(
                "{name}: the message does not name the file: {message}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(cases.len() >= 30);
    assert_eq!(
        app.queue.jobs(&[], 100).await.unwrap().len(),
        0,
        "a hostile model was queued"
    );
    assert_eq!(
        fresco_infer::engine::sessions_built(),
        sessions,
        "the server built an ONNX Runtime session"
    );
    // Bombs of 2^34 elements were refused without being built: memory stays within a margin.
    let grown_mib = rss_kib().saturating_sub(rss_before) / 1024;
    assert!(
        grown_mib < 200,
        "the server's memory grew by {grown_mib} MiB"
    );
}

/// A model that is a valid image-to-image graph statically, but that ONNX Runtime would refuse
/// (an operator that does not exist), is queued: proof that the server never builds a session.
/// The worker is the one that refuses it.
#[tokio::test]
async fn the_server_pins_a_model_without_loading_it() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    make_clip(&clip);
    let model = dir.path().join("no-such-op.onnx");
    let bytes = fresco_infer::onnx_build::GraphBuilder::nchw_rgb("m")
        .node("NoSuchOperator", &["input1"], &["output1"], vec![])
        .to_bytes();
    std::fs::write(&model, &bytes).unwrap();
    let factory = LocalJobFactory::new(Registry::from_env()).allow_download(false);
    let app = app_with(Arc::new(factory)).await;
    let sessions = fresco_infer::engine::sessions_built();
    let body = json!({"input": clip, "output": dir.path().join("out.mp4"), "model": model});
    let reply = post_json(&app.state, "/v1/jobs", &body, None).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let id = reply.body["id"].as_str().unwrap();
    let job = app.queue.job(id).await.unwrap().unwrap();
    let spec = fresco_core::JobSpec::from_json(&job.spec).unwrap();
    use sha2::Digest;
    assert_eq!(spec.model.digest, hex::encode(sha2::Sha256::digest(&bytes)));
    assert_eq!(fresco_infer::engine::sessions_built(), sessions);
}

/// The factory's model budget (`fresco serve --max-model-mb`, `--max-model-nodes`) is the one
/// applied.
#[tokio::test]
async fn the_model_budget_is_the_servers() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    make_clip(&clip);
    let factory = LocalJobFactory::new(Registry::from_env())
        .allow_download(false)
        .model_budget(fresco_infer::inspect::ModelBudget {
            max_bytes: 4096,
            max_nodes: 50,
            ..Default::default()
        });
    let app = app_with(Arc::new(factory)).await;
    for (name, bytes, says) in [
        ("big", hostile::long_chain(300), "more than the 4096 bytes"),
        // Refused from its size, before the server reads it.
        ("huge", vec![0u8; 1 << 20], "more than the 4096 bytes"),
        ("long", hostile::long_chain(51), "more than 50 nodes"),
    ] {
        let model = dir.path().join(format!("{name}.onnx"));
        std::fs::write(&model, &bytes).unwrap();
        let output = dir.path().join(format!("{name}.mp4"));
        let body = json!({"input": clip, "output": output, "model": model});
        let reply = post_json(&app.state, "/v1/jobs", &body, None).await;
        let code = if name != "long" {
            "model-too-large"
        } else {
            "model-too-complex"
        };
        let message = reply.error(StatusCode::UNPROCESSABLE_ENTITY, code);
        assert!(message.contains(says), "{name}: {message}");
    }
}
