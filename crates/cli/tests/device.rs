//! Device selection and batching through the `fresco` command on a CPU build of ONNX Runtime:
//! `--device cuda` is refused with what is missing before any work (a worker claims nothing),
//! `--batch N` gives the same frames as one at a time, and a model that fixes its batch size
//! at 1 falls back with a note. About 10 s.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::jobs::sqlite_queue;
use common::*;
use fresco_infer::onnx_build::{sym, Dim, GraphBuilder};

/// Asserts the refusal of `--device cuda` on a machine without a usable CUDA setup; false
/// (with a message) where this machine can run CUDA, so there is nothing to refuse.
fn refused_for_cuda(out: &Out, device: &str) -> bool {
    if out.code == Some(0) {
        eprintln!("skipping: {device} works here (a GPU build of ONNX Runtime and a GPU)");
        return false;
    }
    assert_eq!(out.code, Some(6), "{}", out.dump());
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{}", out.dump()));
    assert!(
        line.starts_with(&format!("error: device {device}: ")),
        "{}",
        out.dump()
    );
    assert!(
        line.contains("has no CUDA provider") || line.contains("no NVIDIA GPU is visible"),
        "{}",
        out.dump()
    );
    assert!(
        line.contains("onnxruntime-gpu") && line.contains("--device cpu"),
        "{}",
        out.dump()
    );
    true
}

#[test]
fn cuda_without_a_gpu_build_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "64x48", 25, 0.4);
    let output = dir.path().join("out.mp4");
    let out = fresco([
        s("run"),
        p(&input),
        s("-o"),
        p(&output),
        s("--style"),
        s("vintage"),
        s("--device"),
        s("cuda"),
    ]);
    if !refused_for_cuda(&out, "cuda:0") {
        return;
    }
    assert_nothing_left(&output);

    // A worker that cannot use its device exits at once and leaves the queued job untouched.
    let queue = sqlite_queue(dir.path());
    let mut submit = vec![
        s("jobs"),
        s("submit"),
        p(&input),
        s("-o"),
        p(&output),
        s("--style"),
        s("vintage"),
    ];
    submit.extend(queue.args());
    let id = fresco(submit).ok().stdout.trim().to_string();
    let mut args = vec![s("worker"), s("--until-idle"), s("--device"), s("cuda:1")];
    args.extend(queue.args());
    let out = run_with_timeout(fresco_cmd().args(args), Duration::from_secs(60));
    assert!(refused_for_cuda(&out, "cuda:1"));
    let shown = queue.show(&id);
    let job = if shown["job"].is_object() {
        &shown["job"]
    } else {
        &shown
    };
    assert_eq!(job["state"], "queued", "{shown}");
    assert_eq!(job["attempts"], 0, "{shown}");

    // So does a server that would run workers.
    let mut args = vec![
        s("serve"),
        s("--listen"),
        s("127.0.0.1:0"),
        s("--device"),
        s("cuda"),
    ];
    args.extend(queue.args());
    let out = run_with_timeout(fresco_cmd().args(args), Duration::from_secs(60));
    assert!(refused_for_cuda(&out, "cuda:0"));
}

fn styled_frames(input: &Path, output: &Path, model: &[&str], batch: &str) -> Out {
    let mut args = vec![s("run"), p(input), s("-o"), p(output)];
    args.extend(model.iter().map(|a| s(a)));
    args.extend([
        s("--batch"),
        s(batch),
        s("--codec"),
        s("libx264rgb"),
        s("--crf"),
        s("0"),
    ]);
    args.extend([s("--threads"), s("1"), s("--quiet")]);
    fresco(args)
}

#[test]
fn batches_style_the_same_frames_as_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mp4");
    // 23 frames: batches of 4 leave a short last one.
    make_h264(&input, "96x64", 25, 0.92);
    let single = dir.path().join("single.mkv");
    let batched = dir.path().join("batched.mkv");
    styled_frames(&input, &single, &["--style", "vintage"], "1").ok();
    styled_frames(&input, &batched, &["--style", "vintage"], "4").ok();
    let a = frame_md5s(&single);
    assert_eq!(a.len(), 23);
    assert_eq!(frame_md5s(&batched), a, "batching changed frames");

    let out = fresco([
        s("run"),
        p(&input),
        s("-o"),
        p(&dir.path().join("x.mp4")),
        s("--style"),
        s("vintage"),
        s("--batch"),
        s("0"),
    ]);
    assert_eq!(out.code, Some(2), "{}", out.dump());
    assert!(out.stderr.contains("must be at least 1"), "{}", out.dump());
}

/// An identity model whose batch axis is fixed at 1.
fn batch_one_model(dir: &Path) -> PathBuf {
    let shape = [Dim::Fixed(1), Dim::Fixed(3), sym("H"), sym("W")];
    let bytes = GraphBuilder::new("batch-one")
        .input("input1", &shape)
        .output("output1", &shape)
        .node("Identity", &["input1"], &["output1"], vec![])
        .to_bytes();
    let path = dir.join("batch-one.onnx");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_model_fixed_at_batch_1_is_scored_one_frame_at_a_time_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "64x48", 25, 0.4);
    let model = batch_one_model(dir.path());
    let output = dir.path().join("out.mkv");
    let out = styled_frames(&input, &output, &["--model", model.to_str().unwrap()], "8").ok();
    assert!(
        out.stderr.contains(
            "fixes its batch size at 1, so frames are scored one per call instead of the 8 asked"
        ),
        "{}",
        out.dump()
    );
    assert_eq!(
        frame_md5s(&output),
        frame_md5s(&input),
        "identity changed frames"
    );
}
