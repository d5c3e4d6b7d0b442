//! Hostile models that reach a worker without the API server. `fresco jobs submit` checks a
//! model as the server does (statically, no session): external data is refused before
//! queueing. A constant-folding bomb the static check cannot see (ConstantOfShape of the shape
//! of a Conv's output, which only ONNX Runtime's shape inference knows: 1.8 GiB from ~500
//! bytes) is queued; the worker's first load of it runs in a `fresco model-trial` child under
//! the memory limit, so that job alone fails with the limit's message, and the same worker
//! then completes the next job. About 10 s.

mod common;

use std::time::Duration;

use common::jobs::{read_log, sqlite_queue, wait_exit};
use common::*;
use fresco_infer::hostile_models;

#[test]
fn jobs_submit_refuses_external_data_before_queueing() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, _) = setup(dir.path());
    let queue = sqlite_queue(dir.path());
    std::fs::write(dir.path().join("secret.txt"), "FRESCO-CLI-SECRET-b41f").unwrap();
    for (name, bytes) in [
        ("init", hostile_models::external_initializer("secret.txt")),
        ("if", hostile_models::external_in_if_subgraph("/etc/passwd")),
    ] {
        let model = dir.path().join(format!("{name}.onnx"));
        std::fs::write(&model, bytes).unwrap();
        let mut args = vec![s("jobs"), s("submit"), p(&clip), s("-o")];
        let out = dir.path().join(format!("{name}.mp4"));
        args.extend([p(&out), s("--model"), p(&model)]);
        args.extend(queue.args());
        let result = fresco(args);
        assert!(
            !result.stderr.contains("FRESCO-CLI-SECRET"),
            "{}",
            result.dump()
        );
        result.fails(
            7,
            &format!("{name}.onnx"),
            &["keeps its data in an external file"],
        );
    }
}

#[test]
fn a_worker_fails_a_bomb_job_alone_under_the_memory_limit_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, model) = setup(dir.path());
    let queue = sqlite_queue(dir.path());
    // Twice 3 x 9000 x 9000 floats: 1.8 GiB, over the 1024 MiB limit given below.
    let bomb = dir.path().join("bomb.onnx");
    let bytes = hostile_models::shape_bomb(9000, "Conv");
    assert!(bytes.len() < 600, "{} bytes", bytes.len());
    std::fs::write(&bomb, &bytes).unwrap();
    let bomb_job = queue.submit(&clip, &dir.path().join("bomb.mp4"), &bomb, &[]);
    let good_job = queue.submit(&clip, &dir.path().join("good.mp4"), &model, &[]);

    let log = dir.path().join("worker.log");
    let mut worker = queue.spawn_worker(&log, &[], &["--model-memory-mib", "1024"]);
    let status = wait_exit(&mut worker, Duration::from_secs(180), "the worker");
    let text = read_log(&log);
    assert!(status.success(), "the worker exited {status:?}:\n{text}");

    let failed = queue.show(&bomb_job);
    assert_eq!(failed["state"], "failed", "{failed:#}\n{text}");
    let error = failed["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("bomb.onnx")
            && error.contains("exceeded the 1024 MiB memory limit while loading"),
        "{error}"
    );
    // Refused once, permanently: the plan task (which loads the model) is not retried.
    let plan = failed["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["kind"] == "plan"))
        .unwrap_or_else(|| panic!("no plan task: {failed:#}"));
    assert_eq!(plan["attempts"], 1, "{failed:#}");
    let done = queue.show(&good_job);
    assert_eq!(done["state"], "succeeded", "{done:#}\n{text}");
}

#[test]
fn fresco_run_tries_a_model_file_in_a_child_first() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, model) = setup(dir.path());
    let bomb = dir.path().join("bomb.onnx");
    std::fs::write(&bomb, hostile_models::shape_bomb(9000, "Conv")).unwrap();
    let out = dir.path().join("out.mp4");
    run(&clip, &out, &bomb, &["--model-memory-mib", "1024"]).fails(
        7,
        "bomb.onnx",
        &["exceeded the 1024 MiB memory limit while loading"],
    );
    assert!(!out.exists());
    // A usable model passes its trial and runs.
    run(&clip, &out, &model, &["--model-memory-mib", "1024"]).ok();
}
