//! Durable jobs end to end: `fresco jobs` and `fresco worker` processes on SQLite and
//! PostgreSQL, with workers killed, stopped, poisoned, canceled and cut off from the database.
//! The identity model with a lossless encoder makes "identical output" checkable frame by frame.

mod common;

use common::jobs::*;
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

const LOSSLESS: &[&str] = &[
    "--codec",
    "libx264rgb",
    "--crf",
    "0",
    "--encoder-threads",
    "1",
];
const JOB_TIMEOUT: Duration = Duration::from_secs(180);

/// Frames, timestamps and audio of `output` equal those of `input`.
fn assert_same_video(input: &Path, output: &Path) {
    let (want, got) = (frame_md5s(input), frame_md5s(output));
    assert!(!want.is_empty());
    assert_eq!(want.len(), got.len(), "frame count changed");
    for (i, (a, b)) in want.iter().zip(&got).enumerate() {
        assert_eq!(
            a,
            b,
            "frame {i} of {} differs from the input",
            output.display()
        );
    }
    assert_same_times(&frame_times(input), &frame_times(output));
    assert_eq!(audio_md5(input, 0), audio_md5(output, 0), "audio changed");
}

fn frame_exact_through_workers(dir: &Path, queue: &TestQueue) {
    let input = dir.join("vfr.mp4");
    make_vfr_clip_with_audio(&input, 2);
    let frames = frame_md5s(&input).len();
    let model = identity_model(dir);
    // Chunk sizes that divide no frame count here (the clip has 26 or so frames).
    for (workers, chunk) in [(1usize, 7u32), (2, 5), (3, 4)] {
        assert_ne!(
            frames % chunk as usize,
            0,
            "chunk size {chunk} divides {frames}"
        );
        let output = dir.join(format!("out-{workers}.mp4"));
        let mut extra = LOSSLESS.to_vec();
        let chunk_text = chunk.to_string();
        extra.extend(["--chunk-frames", &chunk_text]);
        let id = queue.submit(&input, &output, &model, &extra);
        let mut children: Vec<_> = (0..workers)
            .map(|n| queue.spawn_worker(&dir.join(format!("w{workers}-{n}.log")), &[], &[]))
            .collect();
        for (n, child) in children.iter_mut().enumerate() {
            let status = wait_exit(child, JOB_TIMEOUT, "worker");
            assert!(
                status.success(),
                "worker {n} failed: {}",
                read_log(&dir.join(format!("w{workers}-{n}.log")))
            );
        }
        let job = queue.show(&id);
        assert_eq!(job["state"], "succeeded", "{job:#}");
        assert_eq!(job["frames_done"].as_u64(), Some(frames as u64), "{job:#}");
        assert_eq!(
            job["chunks_total"].as_u64(),
            Some(frames.div_ceil(chunk as usize) as u64)
        );
        assert_same_video(&input, &output);
        assert!(
            !queue.work.join(&id).exists(),
            "the job's chunks were not removed"
        );
        if workers > 1 {
            let busy = (0..workers)
                .filter(|n| {
                    !score_claims(&read_log(&dir.join(format!("w{workers}-{n}.log")))).is_empty()
                })
                .count();
            assert!(busy >= 2, "only {busy} of {workers} workers scored chunks");
        }
    }
}

#[test]
fn workers_are_frame_exact_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(dir.path());
    frame_exact_through_workers(dir.path(), &queue);
}

#[test]
fn workers_are_frame_exact_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let Some(queue) = postgres_queue(dir.path()) else {
        return;
    };
    frame_exact_through_workers(dir.path(), &queue);
}

/// Kills workers with SIGKILL in the middle of chunks, at different points, replacing each.
fn killed_workers_lose_one_chunk_each(dir: &Path, queue: &TestQueue) {
    let input = dir.join("clip.mp4");
    make_vfr_clip_with_audio(&input, 4);
    let frames = frame_md5s(&input).len() as u64;
    let model = identity_model(dir);
    let output = dir.join("out.mp4");
    let chunk = 6u64;
    let mut extra = LOSSLESS.to_vec();
    extra.extend(["--chunk-frames", "6"]);
    let id = queue.submit(&input, &output, &model, &extra);
    let slow = [("FRESCO_TEST_FRAME_DELAY_MS", "40")];

    let mut logs = Vec::new();
    let spawn = |logs: &mut Vec<std::path::PathBuf>| {
        let log = dir.join(format!("worker-{}.log", logs.len()));
        let child = queue.spawn_worker(&log, &slow, &[]);
        logs.push(log);
        child
    };
    let mut live = vec![spawn(&mut logs), spawn(&mut logs)];
    let mut killed_chunks = Vec::new();
    for (round, delay_ms) in [60u64, 150, 230].into_iter().enumerate() {
        // Kill the worker that started first, once it holds a chunk it has not finished.
        let victim_log = logs[logs.len() - live.len()].clone();
        let seen = score_claims(&read_log(&victim_log)).len();
        wait_until(Duration::from_secs(60), "a worker to claim a chunk", || {
            score_claims(&read_log(&victim_log)).len() > seen
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        let mut victim = live.remove(0);
        victim.kill().unwrap();
        victim.wait().unwrap();
        let claims = score_claims(&read_log(&victim_log));
        let (held, _, _) = *claims.last().unwrap();
        let log_text = read_log(&victim_log);
        if !log_text.contains(&format!("scored chunk {held} ")) {
            killed_chunks.push(held);
        }
        eprintln!("round {round}: killed a worker holding chunk {held} after {delay_ms} ms");
        live.push(spawn(&mut logs));
    }
    for child in &mut live {
        assert!(wait_exit(child, JOB_TIMEOUT, "worker").success());
    }
    let job = queue.show(&id);
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_same_video(&input, &output);

    let all_logs: Vec<String> = logs.iter().map(|l| read_log(l)).collect();
    assert!(!killed_chunks.is_empty(), "no kill landed mid-chunk");
    for chunk_number in &killed_chunks {
        let reclaimed = all_logs.iter().any(|log| {
            log.lines().any(|l| {
                l.contains(&format!("claimed score chunk {chunk_number} "))
                    && !l.contains("expiries 0)")
            })
        });
        assert!(
            reclaimed,
            "chunk {chunk_number} was not re-claimed after its worker died:\n{}",
            all_logs.join("\n---\n")
        );
    }
    let claimed_frames: u64 = all_logs
        .iter()
        .flat_map(|log| score_claims(log))
        .map(|(_, start, end)| end - start)
        .sum();
    let kills = 3;
    assert!(
        claimed_frames <= frames + kills * chunk,
        "{claimed_frames} frames were scored for {frames} frames and {kills} kills of {chunk}-frame chunks"
    );
    assert!(
        job["expiries"].as_u64().unwrap() >= killed_chunks.len() as u64,
        "{job:#}"
    );
}

#[test]
fn killed_workers_cost_one_chunk_each_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(dir.path());
    killed_workers_lose_one_chunk_each(dir.path(), &queue);
}

#[test]
fn killed_workers_cost_one_chunk_each_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let Some(queue) = postgres_queue(dir.path()) else {
        return;
    };
    killed_workers_lose_one_chunk_each(dir.path(), &queue);
}

#[test]
fn poisoned_chunk_fails_its_job_and_the_next_job_still_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(dir.path());
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "64x48", 25, 0.72);
    let model = identity_model(dir.path());
    let poisoned_out = dir.path().join("poisoned.mp4");
    let healthy_out = dir.path().join("healthy.mp4");
    let with_chunks = |n: &'static str| [LOSSLESS, &["--chunk-frames", n]].concat();
    let poisoned = queue.submit(&input, &poisoned_out, &model, &with_chunks("6"));
    let healthy = queue.submit(&input, &healthy_out, &model, &with_chunks("100"));
    let log = dir.path().join("worker.log");
    let mut worker = queue.spawn_worker(&log, &[("FRESCO_TEST_FAIL_CHUNK", "1")], &[]);
    assert!(wait_exit(&mut worker, JOB_TIMEOUT, "worker").success());

    let job = queue.show(&poisoned);
    assert_eq!(job["state"], "failed", "{job:#}");
    let error = job["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("injected failure in chunk 1"), "{job:#}");
    let chunk1 = job["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "score" && t["chunk"] == 1)
        .unwrap();
    assert_eq!(chunk1["state"], "failed");
    assert_eq!(
        chunk1["attempts"], 3,
        "default --max-attempts is 3: {chunk1}"
    );
    assert!(!poisoned_out.exists(), "a failed job left an output");
    assert!(
        !queue.work.join(&poisoned).exists(),
        "a failed job left its chunks"
    );

    let human = queue.jobs("show", &poisoned).ok();
    assert!(
        human.stdout.contains("injected failure"),
        "{}",
        human.stdout
    );

    let job = queue.show(&healthy);
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert!(healthy_out.is_file());

    // Retrying queues it again; its chunks were removed with the failure, so all are scored
    // again (the plan is kept), and this time the job succeeds.
    queue.jobs("retry", &poisoned).ok();
    let log2 = dir.path().join("worker2.log");
    let mut worker = queue.spawn_worker(&log2, &[], &[]);
    assert!(wait_exit(&mut worker, JOB_TIMEOUT, "worker").success());
    let job = queue.show(&poisoned);
    assert_eq!(job["state"], "succeeded", "{job:#}");
    let rescored: Vec<u64> = score_claims(&read_log(&log2)).iter().map(|c| c.0).collect();
    assert_eq!(rescored, vec![0, 1, 2], "chunks scored after the retry");
    assert!(
        !read_log(&log2).contains("claimed plan"),
        "the plan was redone after a retry"
    );
    assert_eq!(frame_md5s(&poisoned_out), frame_md5s(&input));
    assert_eq!(frame_md5s(&healthy_out), frame_md5s(&input));
}

#[test]
fn canceled_job_stops_its_workers_within_a_lease_and_is_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(dir.path());
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "64x48", 25, 2.4);
    let model = identity_model(dir.path());
    let output = dir.path().join("out.mp4");
    let id = queue.submit(&input, &output, &model, &["--chunk-frames", "10"]);
    let slow = [("FRESCO_TEST_FRAME_DELAY_MS", "100")];
    let logs = [dir.path().join("a.log"), dir.path().join("b.log")];
    let mut workers: Vec<_> = logs
        .iter()
        .map(|l| queue.spawn_worker(l, &slow, &[]))
        .collect();
    wait_until(Duration::from_secs(60), "a chunk to be claimed", || {
        logs.iter().any(|l| !score_claims(&read_log(l)).is_empty())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        queue.work.join(&id).is_dir(),
        "no work folder while scoring"
    );
    let canceled_at = Instant::now();
    queue.jobs("cancel", &id).ok();
    for worker in &mut workers {
        assert!(wait_exit(worker, Duration::from_secs(30), "worker").success());
    }
    let stopped_after = canceled_at.elapsed();
    // Lease 2 s: heartbeats every 2/3 s notice the cancel; each worker then stops within a frame.
    assert!(
        stopped_after < Duration::from_millis(3500),
        "workers took {stopped_after:?} to drop a canceled job"
    );
    let job = queue.show(&id);
    assert_eq!(job["state"], "canceled", "{job:#}");
    assert!(
        job["frames_done"].as_u64().unwrap() < 60,
        "the job ran to the end: {job:#}"
    );
    assert!(!output.exists(), "a canceled job left an output");
    assert!(
        !queue.work.join(&id).exists(),
        "a canceled job left its chunks"
    );
}

#[test]
fn sigterm_hands_the_chunk_back_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(dir.path());
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "64x48", 25, 1.2);
    let model = identity_model(dir.path());
    let output = dir.path().join("out.mp4");
    let id = queue.submit(&input, &output, &model, &["--chunk-frames", "30"]);
    let log = dir.path().join("w.log");
    let mut worker = queue.spawn_worker(
        &log,
        &[("FRESCO_TEST_FRAME_DELAY_MS", "200")],
        &["--grace-seconds", "0"],
    );
    wait_until(Duration::from_secs(60), "a chunk to be claimed", || {
        !score_claims(&read_log(&log)).is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    unsafe_sigterm(worker.id());
    let status = wait_exit(&mut worker, Duration::from_secs(10), "worker after SIGTERM");
    assert!(status.success(), "exit {status:?}: {}", read_log(&log));
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "slow to stop: {:?}",
        sent.elapsed()
    );
    let job = queue.show(&id);
    let chunk0 = job["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "score" && t["chunk"] == 0)
        .unwrap()
        .clone();
    assert_eq!(chunk0["state"], "pending", "{job:#}");
    assert_eq!(
        chunk0["attempts"], 0,
        "a handed-back chunk counted an attempt"
    );
    assert_eq!(
        chunk0["expiries"], 0,
        "a handed-back chunk counted an expiry"
    );

    // With a grace period, the chunk in flight is finished instead.
    let log2 = dir.path().join("w2.log");
    let mut worker = queue.spawn_worker(
        &log2,
        &[("FRESCO_TEST_FRAME_DELAY_MS", "20")],
        &["--grace-seconds", "30"],
    );
    wait_until(Duration::from_secs(60), "a chunk to be claimed", || {
        !score_claims(&read_log(&log2)).is_empty()
    });
    unsafe_sigterm(worker.id());
    assert!(wait_exit(&mut worker, Duration::from_secs(60), "worker").success());
    let text = read_log(&log2);
    assert!(text.contains("scored chunk 0 "), "{text}");
    assert_eq!(
        score_claims(&text).len(),
        1,
        "claimed more work after SIGTERM: {text}"
    );
}

fn unsafe_sigterm(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn killed_run_resumes_from_the_chunks_already_done() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "64x48", 25, 1.44);
    let model = identity_model(dir.path());
    let output = dir.path().join("out.mkv");
    let args = |extra: &[&str]| {
        let mut cmd = fresco_cmd();
        cmd.args([
            s("run"),
            p(&input),
            s("-o"),
            p(&output),
            s("--model"),
            p(&model),
        ])
        .args(["--codec", "ffv1", "--chunk-frames", "6"])
        .args(extra)
        .env("FRESCO_LOG", "fresco_worker=info");
        cmd
    };
    let log1 = dir.path().join("run1.log");
    let mut first = args(&[])
        .env("FRESCO_TEST_FRAME_DELAY_MS", "60")
        .stderr(std::fs::File::create(&log1).unwrap())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(60), "three chunks to be scored", || {
        read_log(&log1).matches("scored chunk").count() >= 3
    });
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(!output.exists(), "a killed run left an output");
    let done_before: Vec<String> = read_log(&log1)
        .lines()
        .filter_map(|l| l.split("scored chunk ").nth(1))
        .filter_map(|r| r.split(' ').next().map(str::to_string))
        .collect();

    // Again, from another folder: the same job is found and continued.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = run_with_timeout(
        args(&["--json"]).current_dir(elsewhere.path()),
        Duration::from_secs(120),
    )
    .ok();
    assert!(out.stderr.contains("resuming job"), "{}", out.stderr);
    let rescored: Vec<String> = out
        .stderr
        .lines()
        .filter_map(|l| l.split("scored chunk ").nth(1))
        .filter(|r| !r.contains("already on disk"))
        .filter_map(|r| r.split(' ').next().map(str::to_string))
        .collect();
    for chunk in &done_before {
        assert!(
            !rescored.contains(chunk),
            "chunk {chunk} was scored before the kill and again after: {rescored:?}"
        );
    }
    let report = out.json();
    assert!(
        report["outputs"][0]["chunks_resumed"].as_u64().unwrap() >= done_before.len() as u64,
        "{report:#}"
    );
    assert_eq!(frame_md5s(&output), frame_md5s(&input));
}

#[test]
fn postgres_restart_mid_job_is_survived() {
    let dir = tempfile::tempdir().unwrap();
    if postgres_queue(dir.path()).is_none() {
        return;
    }
    // A private server, so that restarting it disturbs no other test.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres.sh");
    // Not under the test's temporary folder: that one is private to root, and PostgreSQL runs
    // as its own user.
    let data = std::env::temp_dir().join(format!("fresco-pg-restart-{}", std::process::id()));
    let port = "54377";
    let start = std::process::Command::new(&script)
        .arg(&data)
        .env("PGPORT", port)
        .output()
        .unwrap();
    assert!(
        start.status.success(),
        "{}",
        String::from_utf8_lossy(&start.stderr)
    );
    let url = String::from_utf8_lossy(&start.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    struct Stop(std::path::PathBuf, std::path::PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = std::process::Command::new(&self.0)
                .arg("stop")
                .arg(&self.1)
                .env("PGPORT", "54377")
                .output();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let _stop = Stop(script.clone(), data.clone());
    let queue = pg_queue_on(&url, dir.path());
    let input = dir.path().join("clip.mp4");
    make_vfr_clip_with_audio(&input, 3);
    let model = identity_model(dir.path());
    let output = dir.path().join("out.mp4");
    let mut extra = LOSSLESS.to_vec();
    extra.extend(["--chunk-frames", "5"]);
    let id = queue.submit(&input, &output, &model, &extra);
    let slow = [("FRESCO_TEST_FRAME_DELAY_MS", "40")];
    let logs = [dir.path().join("a.log"), dir.path().join("b.log")];
    let mut workers: Vec<_> = logs
        .iter()
        .map(|l| queue.spawn_worker(l, &slow, &[]))
        .collect();
    wait_until(Duration::from_secs(60), "two chunks to be scored", || {
        logs.iter()
            .map(|l| read_log(l).matches("scored chunk").count())
            .sum::<usize>()
            >= 2
    });
    let restart = std::process::Command::new(&script)
        .arg("restart")
        .arg(&data)
        .env("PGPORT", port)
        .output()
        .unwrap();
    assert!(
        restart.status.success(),
        "{}",
        String::from_utf8_lossy(&restart.stderr)
    );
    for worker in &mut workers {
        assert!(wait_exit(worker, JOB_TIMEOUT, "worker").success());
    }
    let job = queue.show(&id);
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_same_video(&input, &output);
}

#[test]
fn a_stalled_chunk_is_stopped_and_counted_as_a_failed_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(dir.path());
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "64x48", 25, 0.4);
    let model = identity_model(dir.path());
    let output = dir.path().join("out.mp4");
    let id = queue.submit(
        &input,
        &output,
        &model,
        &["--chunk-frames", "100", "--max-attempts", "1"],
    );
    let log = dir.path().join("w.log");
    // Each frame takes 4 s; the watchdog allows 1 s without progress.
    let mut worker = queue.spawn_worker(
        &log,
        &[("FRESCO_TEST_FRAME_DELAY_MS", "4000")],
        &["--stall-seconds", "1"],
    );
    let status = wait_exit(&mut worker, Duration::from_secs(60), "worker");
    assert!(status.success(), "{}", read_log(&log));
    let job = queue.show(&id);
    assert_eq!(job["state"], "failed", "{job:#}");
    assert!(
        job["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("made no progress"),
        "{job:#}"
    );
    assert!(!output.exists());
}

#[test]
fn a_changed_rerun_cancels_the_unfinished_job_for_the_same_output() {
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(dir.path());
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "64x48", 25, 0.4);
    let model = identity_model(dir.path());
    let output = dir.path().join("out.mp4");
    // An interrupted run with other options: queued, never finished.
    let old = queue.submit(&input, &output, &model, &["--chunk-frames", "6"]);
    let mut args = vec![
        s("run"),
        p(&input),
        s("-o"),
        p(&output),
        s("--model"),
        p(&model),
        s("--chunk-frames"),
        s("7"),
    ];
    args.extend(queue.args());
    let out = run_with_timeout(fresco_cmd().args(args), JOB_TIMEOUT).ok();
    assert!(
        out.stderr
            .contains(&format!("canceled unfinished job {old}")),
        "{}",
        out.stderr
    );
    assert_eq!(queue.show(&old)["state"], "canceled");
    assert_eq!(frame_md5s(&output).len(), frame_md5s(&input).len());
}

#[test]
fn ctrl_c_hands_chunks_back_and_says_how_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(dir.path());
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "64x48", 25, 1.2);
    let model = identity_model(dir.path());
    let output = dir.path().join("out.mp4");
    let log = dir.path().join("run.log");
    let mut run = fresco_cmd()
        .args([
            s("run"),
            p(&input),
            s("-o"),
            p(&output),
            s("--model"),
            p(&model),
        ])
        .args(["--chunk-frames", "6"])
        .args(queue.args())
        .env("FRESCO_LOG", "fresco_worker=info")
        .env("FRESCO_TEST_FRAME_DELAY_MS", "150")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(60), "a chunk to be claimed", || {
        !score_claims(&read_log(&log)).is_empty()
    });
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = wait_exit(&mut run, Duration::from_secs(20), "fresco run after Ctrl-C");
    assert_eq!(status.code(), Some(130), "{}", read_log(&log));
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "slow to stop: {:?}",
        sent.elapsed()
    );
    let text = read_log(&log);
    assert!(
        text.contains("run the same command again to resume"),
        "{text}"
    );
    assert!(!output.exists(), "an interrupted run left an output");
    let jobs = run_with_timeout(
        fresco_cmd()
            .args([s("jobs"), s("list"), s("--json")])
            .args(queue.args()),
        Duration::from_secs(30),
    )
    .ok()
    .json();
    let job = &jobs[0];
    let id = job["id"].as_str().unwrap();
    let detail = queue.show(id);
    for task in detail["tasks"].as_array().unwrap() {
        assert_ne!(
            task["state"], "leased",
            "a chunk is still held after Ctrl-C: {detail:#}"
        );
        assert_eq!(
            task["attempts"], 0,
            "Ctrl-C counted as a failure: {detail:#}"
        );
    }
}
