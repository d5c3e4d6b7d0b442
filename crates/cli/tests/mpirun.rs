//! `mpirun -n 3 fresco worker --until-idle`: an HPC launcher starts the workers, the queue splits
//! the work, and there is no MPI code in fresco. Open MPI (Debian's openmpi-bin) starts three
//! ranks on this machine (`--oversubscribe`: it has fewer cores; `--allow-run-as-root` where the
//! tests run as root); together they finish a job, every chunk scored once, by more than one
//! rank, and every rank exits 0 once the queue is idle, so mpirun does too.
//!
//! Skips with a message where mpirun is missing, unless FRESCO_REQUIRE_MPI=1 (CI).

mod common;
mod joblog;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::jobs::*;
use common::*;

const LOSSLESS: &[&str] = &[
    "--codec",
    "libx264rgb",
    "--crf",
    "0",
    "--encoder-threads",
    "1",
];

/// Whether mpirun is here; panics without it when FRESCO_REQUIRE_MPI=1.
fn have_mpirun() -> bool {
    let found = Command::new("mpirun")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("FRESCO_REQUIRE_MPI").as_deref() != Ok("1"),
            "FRESCO_REQUIRE_MPI=1 but mpirun is not installed (apt-get install openmpi-bin)"
        );
        eprintln!(
            "SKIPPED: mpirun is not installed (apt-get install openmpi-bin; scripts/test.sh does)"
        );
    }
    found
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn mpirun_workers(dir: &Path, queue: &TestQueue) {
    let input = dir.join("clip.mp4");
    make_h264(&input, "64x48", 25, 2.4);
    let frames = frame_md5s(&input).len() as u64;
    let model = identity_model(dir);
    let output = dir.join("out.mp4");
    let mut extra = LOSSLESS.to_vec();
    extra.extend(["--chunk-frames", "5"]);
    let id = queue.submit(&input, &output, &model, &extra);
    let chunks = frames.div_ceil(5);

    let mut cmd = Command::new("mpirun");
    cmd.args(["-n", "3", "--oversubscribe"]);
    if is_root() {
        cmd.arg("--allow-run-as-root");
    }
    cmd.arg(env!("CARGO_BIN_EXE_fresco"))
        .arg("worker")
        .args(queue.args())
        .args(["--until-idle", "--lease-seconds", "10", "--threads", "1"])
        // A delay per frame keeps each chunk busy long enough for all ranks to get some.
        .env("FRESCO_TEST_FRAME_DELAY_MS", "40")
        .env("FRESCO_LOG", "info,ort=error,sqlx=warn");
    // The environment of fresco_cmd(), which mpirun passes on to the ranks it starts here.
    for (key, value) in fresco_cmd().get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let started = Instant::now();
    let out = run_with_timeout(&mut cmd, Duration::from_secs(180));
    let took = started.elapsed();
    assert_eq!(out.code, Some(0), "mpirun failed:\n{}", out.dump());

    let job = queue.show(&id);
    assert_eq!(job["state"], "succeeded", "{job:#}\n{}", out.dump());
    assert_eq!(
        frame_md5s(&output),
        frame_md5s(&input),
        "output frames differ"
    );

    let log = joblog::read(queue, &id);
    let times = joblog::times_scored(&log);
    assert_eq!(times.len() as u64, chunks, "chunks scored: {times:?}");
    assert!(
        times.values().all(|&n| n == 1),
        "a chunk was scored more than once with no failure: {times:?}"
    );
    let ranks: BTreeSet<String> = joblog::scored(&log)
        .into_iter()
        .map(|(w, _, _)| w)
        .collect();
    assert!(
        ranks.len() >= 2,
        "only {ranks:?} scored the {chunks} chunks:\n{}",
        out.dump()
    );
    // Three processes of their own: three worker names started (host:pid:0).
    let started_workers = out.stderr.matches("worker started").count();
    assert_eq!(started_workers, 3, "{}", out.dump());
    eprintln!(
        "mpirun -n 3: {frames} frames in {chunks} chunks scored by {} ranks in {took:.1?}",
        ranks.len()
    );
}

#[test]
fn mpirun_ranks_share_a_job_through_a_sqlite_queue() {
    if !have_mpirun() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(dir.path());
    mpirun_workers(dir.path(), &queue);
}

#[test]
fn mpirun_ranks_share_a_job_through_a_postgres_queue() {
    if !have_mpirun() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(queue) = postgres_queue(dir.path()) else {
        return;
    };
    mpirun_workers(dir.path(), &queue);
}
