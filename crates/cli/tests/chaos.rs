//! Pre-emption chaos: three `fresco worker` processes on one job while a controller, driven by
//! a seeded random generator, pre-empts them for over two minutes: SIGKILL (a lost VM) and
//! SIGTERM with a short grace period (a spot eviction notice), each followed by a replacement
//! worker. The job must finish with the very frames of a fault-free run, and the work done twice
//! must stay within what the design promises:
//! - a SIGKILL costs at most the one chunk its worker held (its lease runs out, another worker
//!   scores the chunk again): lease expiries <= SIGKILLs;
//! - a SIGTERM whose grace covers the rest of the chunk costs nothing: the chunk is finished and
//!   never claimed again;
//! - a SIGTERM whose grace is too short hands the chunk back at once, uncounted (no attempt, no
//!   expiry): the frames scored so far are scored again by the next worker, at most one chunk.
//!
//! Runs on PostgreSQL when FRESCO_TEST_POSTGRES_URL is set (the backend of a cluster), on SQLite
//! otherwise; the fault-free run uses the same backend. FRESCO_CHAOS_SEED=N replays another
//! schedule. Takes about 3 minutes.

mod common;
mod joblog;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::jobs::*;
use common::*;

/// Frames per chunk, and the test hook's delay per frame: a chunk takes about 2.5 s, so that
/// signals land mid-chunk and a 5 s grace covers the rest of any chunk while 0 s covers none.
const CHUNK_FRAMES: u64 = 10;
const FRAME_DELAY_MS: u64 = 250;
/// 60 s at 25 frames/s: 1500 frames, 150 chunks, at least 1500 * 0.25 / 3 = 125 s of scoring
/// for three workers, so the chaos lasts over two minutes whatever the machine.
const CLIP_SECONDS: f64 = 60.0;
const WORKERS: usize = 3;
/// Lease of the chaos workers: long enough that a busy 2-core machine never delays a heartbeat
/// past it (which would look like a lost worker), short enough that a killed worker's chunk
/// comes back soon.
const LEASE_SECONDS: u64 = 5;
/// Grace periods a worker may be started with: none, one that covers the rest of some chunks,
/// and one that covers the rest of every chunk.
const GRACES: [u64; 3] = [0, 1, 5];
/// Time between pre-emptions.
const EVENT_GAP_MS: (u64, u64) = (4000, 9000);
const ENCODE: &[&str] = &["--style", "vintage", "--encoder-threads", "1"];
const DEFAULT_SEED: u64 = 20_261_128;
/// Give up (and fail) after this long.
const LIMIT: Duration = Duration::from_secs(540);

/// splitmix64: a seeded generator, so a schedule can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn millis(&mut self, (low, high): (u64, u64)) -> Duration {
        Duration::from_millis(low + self.below(high - low + 1))
    }
}

struct Worker {
    child: Child,
    log: PathBuf,
    grace: u64,
}

impl Drop for Worker {
    /// A failing test leaves no worker behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Worker {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The score chunk this worker holds now, from its log: claimed and neither scored nor
    /// handed back since (None while it plans, assembles, waits or starts up).
    fn held_chunk(&self) -> Option<u64> {
        let text = read_log(&self.log);
        let last_claim = text.lines().rev().find(|l| l.contains("claimed "))?;
        let chunk = last_claim
            .split("claimed score chunk ")
            .nth(1)?
            .split(' ')
            .next()?
            .parse::<u64>()
            .ok()?;
        let after = &text[text.rfind(last_claim).unwrap() + last_claim.len()..];
        let over = after.contains(&format!("scored chunk {chunk} of job"))
            || after.contains(&format!("releasing score chunk {chunk} of job"));
        (!over).then_some(chunk)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Kill,
    Term,
}

/// What a pre-emption found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// SIGKILL while scoring this chunk: lost, scored again after its lease ran out.
    KilledMidChunk(u64),
    /// SIGTERM, and the chunk was finished within the grace period.
    FinishedInGrace(u64),
    /// SIGTERM, the grace period ran out: the chunk was handed back.
    HandedBack(u64),
    /// The worker held no score chunk (starting, planning, assembling, waiting).
    Idle,
}

#[derive(Debug)]
struct Event {
    at: Duration,
    signal: Signal,
    pid: u32,
    grace: u64,
    outcome: Outcome,
}

fn spawn(queue: &TestQueue, dir: &Path, n: usize, grace: u64) -> Worker {
    let log = dir.join(format!("worker-{n}.log"));
    let child = fresco_cmd()
        .arg("worker")
        .args(queue.args())
        .args(["--until-idle", "--threads", "1", "--retry-delay-ms", "100"])
        .args(["--lease-seconds", &LEASE_SECONDS.to_string()])
        .args(["--grace-seconds", &grace.to_string()])
        .env("FRESCO_TEST_FRAME_DELAY_MS", FRAME_DELAY_MS.to_string())
        .env("FRESCO_LOG", "info,ort=error,sqlx=warn")
        .log_to(&log)
        .spawn()
        .expect("start fresco worker");
    Worker { child, log, grace }
}

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// `fresco jobs submit INPUT -o OUTPUT --style vintage ...`; returns the job id.
fn submit(queue: &TestQueue, input: &Path, output: &Path) -> String {
    let mut args = vec![s("jobs"), s("submit"), p(input), s("-o"), p(output)];
    args.extend(queue.args());
    let chunk = CHUNK_FRAMES.to_string();
    args.extend(ENCODE.iter().map(|a| s(a)));
    args.extend([s("--chunk-frames"), s(&chunk)]);
    let out = run_with_timeout(fresco_cmd().args(args), Duration::from_secs(60)).ok();
    out.stdout.trim().to_string()
}

fn pre_empt(worker: &mut Worker, sig: Signal, at: Duration) -> Event {
    let pid = worker.pid();
    let held = worker.held_chunk();
    let outcome = match sig {
        Signal::Kill => {
            worker.child.kill().expect("SIGKILL");
            worker.child.wait().expect("reap");
            match held {
                Some(chunk) => Outcome::KilledMidChunk(chunk),
                None => Outcome::Idle,
            }
        }
        // Near the end a worker run with --until-idle may exit on its own between the choice
        // of a victim and the signal: nothing to pre-empt then.
        Signal::Term if worker.child.try_wait().ok().flatten().is_some() => Outcome::Idle,
        Signal::Term => {
            signal(pid, "TERM");
            // An eviction notice: the machine goes at the end of it whatever the worker does.
            let notice = Duration::from_secs(worker.grace + 10);
            let status = wait_exit(&mut worker.child, notice, "a worker after SIGTERM");
            assert!(
                status.success(),
                "worker {pid} exited {status:?} after SIGTERM:\n{}",
                read_log(&worker.log)
            );
            let text = read_log(&worker.log);
            match held {
                Some(chunk) if text.contains(&format!("releasing score chunk {chunk} of job")) => {
                    Outcome::HandedBack(chunk)
                }
                Some(chunk) if text.contains(&format!("scored chunk {chunk} of job")) => {
                    Outcome::FinishedInGrace(chunk)
                }
                _ => Outcome::Idle,
            }
        }
    };
    Event {
        at,
        signal: sig,
        pid,
        grace: worker.grace,
        outcome,
    }
}

/// Waits until `worker` holds a score chunk, then `into` more (so a signal lands mid-chunk).
fn until_mid_chunk(worker: &Worker, into: Duration) {
    wait_until(Duration::from_secs(30), "a worker to claim a chunk", || {
        worker.held_chunk().is_some()
    });
    std::thread::sleep(into);
}

/// The job's state, by `fresco jobs show`; if that fails, the failure with the tails of the
/// live workers' logs (what held the queue then).
fn job_state(queue: &TestQueue, id: &str, live: &[Worker]) -> String {
    let mut args = vec![s("jobs"), s("show"), s(id), s("--json")];
    args.extend(queue.args());
    let out = run_with_timeout(fresco_cmd().args(args), Duration::from_secs(90));
    if out.code != Some(0) {
        let tails: Vec<String> = live
            .iter()
            .map(|w| {
                let text = read_log(&w.log);
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                format!("--- worker {} (grace {} s) ---\n{tail}", w.pid(), w.grace)
            })
            .collect();
        panic!(
            "fresco jobs show failed:\n{}\n{}",
            out.dump(),
            tails.join("\n")
        );
    }
    out.json()["state"].as_str().unwrap_or("").to_string()
}

fn queue_for(dir: &Path) -> (TestQueue, &'static str) {
    if std::env::var("FRESCO_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty()) {
        (
            postgres_queue(dir).expect("a PostgreSQL queue"),
            "PostgreSQL",
        )
    } else {
        (sqlite_queue(dir), "SQLite")
    }
}

#[test]
fn pre_empted_workers_finish_the_job_with_identical_output() {
    let seed = std::env::var("FRESCO_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "96x64", 25, CLIP_SECONDS);
    let frames = frame_md5s(&input).len() as u64;
    let chunks = frames.div_ceil(CHUNK_FRAMES);

    // The fault-free run: the same job in a queue of its own, one worker, no delay, alongside.
    let reference_dir = dir.path().join("reference");
    std::fs::create_dir_all(&reference_dir).unwrap();
    let (reference_queue, _) = queue_for(&reference_dir);
    let reference_out = reference_dir.join("out.mp4");
    let reference_id = submit(&reference_queue, &input, &reference_out);
    let reference_log = reference_dir.join("worker.log");
    let mut reference_worker = Worker {
        child: reference_queue.spawn_worker(&reference_log, &[], &[]),
        log: reference_log,
        grace: 30,
    };

    let chaos_dir = dir.path().join("chaos");
    std::fs::create_dir_all(&chaos_dir).unwrap();
    let (queue, backend) = queue_for(&chaos_dir);
    let output = chaos_dir.join("out.mp4");
    let id = submit(&queue, &input, &output);
    eprintln!(
        "chaos: seed {seed}, {backend}, {WORKERS} workers, {frames} frames in {chunks} chunks of {CHUNK_FRAMES}, {FRAME_DELAY_MS} ms per frame, leases {LEASE_SECONDS} s"
    );

    // The first three workers have each grace period once; replacements get one at random.
    let mut spawned = 0;
    let mut live: Vec<Worker> = Vec::new();
    let mut all_logs = Vec::new();
    for grace in [1, 0, 5] {
        let worker = spawn(&queue, &chaos_dir, spawned, grace);
        all_logs.push(worker.log.clone());
        live.push(worker);
        spawned += 1;
    }
    let started = Instant::now();
    let mut events: Vec<Event> = Vec::new();
    let mut next_event = started + rng.millis(EVENT_GAP_MS);
    let mut last_poll = Instant::now();
    let state = loop {
        assert!(
            started.elapsed() < LIMIT,
            "the job did not finish within {LIMIT:?} of chaos; events: {events:#?}"
        );
        if last_poll.elapsed() > Duration::from_secs(1) {
            last_poll = Instant::now();
            let state = job_state(&queue, &id, &live);
            if state != "queued" && state != "running" {
                break state;
            }
        }
        // With --until-idle a worker leaves, with 0, once no job is queued or running: not before.
        for worker in &mut live {
            if let Some(status) = worker.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "a worker failed ({status:?}):\n{}",
                    read_log(&worker.log)
                );
                let state = job_state(&queue, &id, &[]);
                assert!(
                    state != "queued" && state != "running",
                    "a worker left while the job was {state}:\n{}",
                    read_log(&worker.log)
                );
            }
        }
        if Instant::now() >= next_event {
            // The first three pre-emptions are one of each kind, landing mid-chunk: SIGKILL the
            // 1 s-grace worker, SIGTERM the 0 s one (too short), SIGTERM the 5 s one (enough).
            // After that: a random worker, a random signal, whenever the clock says.
            let (index, sig) = match events.len() {
                0 => (0, Signal::Kill),
                1 | 2 => (0, Signal::Term),
                _ => (
                    rng.below(live.len() as u64) as usize,
                    if rng.below(2) == 0 {
                        Signal::Kill
                    } else {
                        Signal::Term
                    },
                ),
            };
            if events.len() < 3 {
                // 10% to 40% into the chunk.
                let chunk_ms = CHUNK_FRAMES * FRAME_DELAY_MS;
                until_mid_chunk(&live[index], rng.millis((chunk_ms / 10, chunk_ms * 4 / 10)));
            }
            let mut victim = live.remove(index);
            let event = pre_empt(&mut victim, sig, started.elapsed());
            eprintln!(
                "chaos: {:>6.1} s  {:?} worker {} (grace {} s): {:?}",
                event.at.as_secs_f64(),
                event.signal,
                event.pid,
                event.grace,
                event.outcome
            );
            events.push(event);
            let grace = GRACES[rng.below(GRACES.len() as u64) as usize];
            let worker = spawn(&queue, &chaos_dir, spawned, grace);
            all_logs.push(worker.log.clone());
            live.push(worker);
            spawned += 1;
            next_event = Instant::now() + rng.millis(EVENT_GAP_MS);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let chaos_time = started.elapsed();
    for worker in &mut live {
        let status = wait_exit(
            &mut worker.child,
            Duration::from_secs(60),
            "a worker at the end",
        );
        assert!(status.success(), "{}", read_log(&worker.log));
    }
    let job = queue.show(&id);
    assert_eq!(state, "succeeded", "{job:#}");
    assert!(
        chaos_time >= Duration::from_secs(120),
        "the chaos lasted only {chaos_time:?}"
    );

    // Identical to the fault-free run, frame by frame.
    let status = wait_exit(
        &mut reference_worker.child,
        Duration::from_secs(300),
        "the fault-free worker",
    );
    assert!(status.success());
    assert_eq!(reference_queue.show(&reference_id)["state"], "succeeded");
    let (want, got) = (frame_md5s(&reference_out), frame_md5s(&output));
    assert_eq!(want.len() as u64, frames, "the fault-free run lost frames");
    assert_eq!(
        got.len(),
        want.len(),
        "frame count differs from the fault-free run"
    );
    let differing: Vec<usize> = (0..want.len()).filter(|&i| want[i] != got[i]).collect();
    assert!(
        differing.is_empty(),
        "{} frames differ from the fault-free run, first {:?}",
        differing.len(),
        &differing[..differing.len().min(10)]
    );

    // The work done twice, from the queue's own records and the job's log.
    let tasks = job["tasks"].as_array().unwrap();
    let count = |signal: Signal, pred: &dyn Fn(&Outcome) -> bool| {
        events
            .iter()
            .filter(|e| e.signal == signal && pred(&e.outcome))
            .count()
    };
    let kills = count(Signal::Kill, &|_| true);
    let kills_mid_chunk = count(Signal::Kill, &|o| matches!(o, Outcome::KilledMidChunk(_)));
    let terms = count(Signal::Term, &|_| true);
    let finished_in_grace = count(Signal::Term, &|o| matches!(o, Outcome::FinishedInGrace(_)));
    let handed_back = count(Signal::Term, &|o| matches!(o, Outcome::HandedBack(_)));
    assert!(
        kills_mid_chunk >= 1 && finished_in_grace >= 1 && handed_back >= 1,
        "{events:#?}"
    );

    for task in tasks {
        assert_eq!(task["state"], "done", "{task}");
        assert_eq!(
            task["attempts"], 0,
            "a pre-emption counted as a failed attempt: {task}"
        );
    }
    let expiries: u64 = tasks.iter().map(|t| t["expiries"].as_u64().unwrap()).sum();
    assert!(
        expiries <= kills as u64,
        "{expiries} leases ran out for {kills} SIGKILLs: a live worker lost its lease, or a kill cost more than its chunk"
    );
    let worker_logs: String = all_logs.iter().map(|l| read_log(l)).collect();
    let releases = worker_logs
        .matches("grace period over: releasing score chunk")
        .count();
    assert_eq!(
        releases, handed_back,
        "hand-backs in the worker logs vs SIGTERMs found handing back"
    );

    let log = joblog::read(&queue, &id);
    let claims = joblog::score_claims(&log);
    let mut claims_per_chunk: BTreeMap<u64, usize> = BTreeMap::new();
    for (_, chunk, _, _) in &claims {
        *claims_per_chunk.entry(*chunk).or_insert(0) += 1;
    }
    assert_eq!(
        claims_per_chunk.len() as u64,
        chunks,
        "chunks never claimed"
    );
    let reclaims: usize = claims_per_chunk.values().map(|n| n - 1).sum();
    // Every second claim of a chunk comes from a lease that ran out or a hand-back.
    assert!(
        reclaims as u64 <= expiries + handed_back as u64,
        "{reclaims} chunks claimed again, for {expiries} expiries and {handed_back} hand-backs"
    );
    // A chunk finished within the grace period is never claimed again.
    for event in &events {
        let Outcome::FinishedInGrace(chunk) = event.outcome else {
            continue;
        };
        let worker = format!(":{}:", event.pid);
        let done_at = log
            .iter()
            .position(|e| {
                e.worker.contains(&worker)
                    && e.message.starts_with(&format!("scored chunk {chunk} ("))
            })
            .unwrap_or_else(|| {
                panic!(
                    "worker {} finished chunk {chunk} but the job log does not say so",
                    event.pid
                )
            });
        assert!(
            !log[done_at..].iter().any(|e| e
                .message
                .starts_with(&format!("claimed score chunk {chunk} "))),
            "chunk {chunk}, finished within the grace period of worker {}, was claimed again",
            event.pid
        );
    }
    let reclaimed_frames: u64 = claims_per_chunk
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(chunk, n)| {
            let task = tasks
                .iter()
                .find(|t| t["kind"] == "score" && t["chunk"].as_u64() == Some(*chunk))
                .unwrap();
            let len =
                task["frames"]["end"].as_u64().unwrap() - task["frames"]["start"].as_u64().unwrap();
            len * (*n as u64 - 1)
        })
        .sum();
    let scored_twice: usize = joblog::times_scored(&log)
        .values()
        .filter(|n| **n > 1)
        .count();

    eprintln!("chaos: report (seed {seed}, {backend})");
    eprintln!(
        "chaos:   {:.1} s under chaos, {} pre-emptions, {} workers started in all",
        chaos_time.as_secs_f64(),
        events.len(),
        spawned
    );
    eprintln!(
        "chaos:   SIGKILL {kills} ({kills_mid_chunk} mid-chunk); SIGTERM {terms}: {finished_in_grace} finished the chunk within the grace period, {handed_back} handed it back, {} held none",
        terms - finished_in_grace - handed_back
    );
    eprintln!(
        "chaos:   chunks claimed again: {reclaims} of {chunks} ({expiries} after a lease ran out, at most 1 per SIGKILL; {handed_back} handed back at a SIGTERM; 0 after a SIGTERM with enough grace)"
    );
    eprintln!(
        "chaos:   frames scored more than once: at most {reclaimed_frames} of {frames} ({:.1}%): the frames of the chunks claimed again; chunks scored to the end twice: {scored_twice}",
        100.0 * reclaimed_frames as f64 / frames as f64
    );
    eprintln!("chaos:   output: {frames} frames, identical to the fault-free run (framemd5)");
}
