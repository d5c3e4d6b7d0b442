//! Jobs go to workers of their device kind: `fresco jobs submit --device cuda` queues a job for
//! GPU workers from a machine without a GPU (the model is checked on the CPU), and a CPU
//! `fresco worker --until-idle` leaves it alone — it does the CPU job queued beside it and exits
//! while the cuda job still waits, queued, for a GPU worker. About 5 s.

mod common;

use std::time::Duration;

use common::jobs::{sqlite_queue, wait_exit};
use common::*;

#[test]
fn a_cpu_worker_leaves_cuda_jobs_to_gpu_workers() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, model) = setup(dir.path());
    let queue = sqlite_queue(dir.path());
    let gpu_job = queue.submit(
        &clip,
        &dir.path().join("gpu.mp4"),
        &model,
        &["--device", "cuda"],
    );
    let cpu_job = queue.submit(&clip, &dir.path().join("cpu.mp4"), &model, &[]);

    let log = dir.path().join("worker.log");
    let mut worker = queue.spawn_worker(&log, &[], &[]);
    let status = wait_exit(&mut worker, Duration::from_secs(120), "the cpu worker");
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "worker failed:\n{log_text}");

    assert_eq!(
        queue.show(&cpu_job)["state"],
        "succeeded",
        "the cpu job:\n{log_text}"
    );
    let gpu = queue.show(&gpu_job);
    assert_eq!(gpu["state"], "queued", "the cuda job:\n{gpu:#}\n{log_text}");
    assert!(
        !log_text.contains(&gpu_job),
        "the cpu worker touched the cuda job:\n{log_text}"
    );
    assert!(dir.path().join("cpu.mp4").exists());
    assert!(!dir.path().join("gpu.mp4").exists());
}
