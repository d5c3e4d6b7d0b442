//! A real `fresco serve` under a bounded flood: thousands of requests over several concurrent
//! connections (submissions past the per-token rate and cap, bodies near and over the body
//! limit, malformed JSON, guessed tokens, requests without credentials, slow bodies held open).
//! The server's resident memory (VmRSS and VmHWM, its peak, from /proc) must stay within
//! [`MAX_GROWTH_KIB`] of what it was before, a second round of the same flood must not add more
//! than [`MAX_ROUND_GROWTH_KIB`], and the server must still answer `/healthz` and a valid
//! submission from another token afterwards. Linux only (reads /proc); about 15 s.

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::TcpStream;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::jobs::read_log;
use common::*;

/// How much the server's resident memory may grow over the flood. Measured (debug build,
/// 2 cores): +38 MiB over the first round (not broken down; the allocator's per-thread arenas
/// and the database's caches filling up are the likely part), VmHWM, the peak, within 1 MiB of
/// that, then +0.1 MiB over a second round of the same 2,400 requests.
const MAX_GROWTH_KIB: u64 = 64 * 1024;
/// How much a second round of the same flood may add to the first's: a leak of 8 KiB per
/// request (half a near-limit body kept) would add about 19 MiB over a round.
const MAX_ROUND_GROWTH_KIB: u64 = 16 * 1024;
/// Connections sending requests at once.
const CONNECTIONS: usize = 8;
/// Requests per connection in each of the two phases.
const PER_CONNECTION: usize = 150;
/// Connections that send headers and part of a body, then stall, through the flood.
const SLOW_BODIES: usize = 64;

/// A field of /proc/PID/status, in KiB.
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Sends one request and reads the whole answer (so the connection is reused); the status, or
/// `io` for a connection the server closed (e.g. after refusing an oversized body).
fn call(agent: &ureq::Agent, method: &str, url: &str, token: Option<&str>, body: &str) -> String {
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Content-Type", "application/json");
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let result = if method == "GET" {
        agent.run(request.body(()).unwrap())
    } else {
        agent.run(request.body(body).unwrap())
    };
    match result {
        Ok(mut response) => {
            let _ = response.body_mut().read_to_vec();
            response.status().as_u16().to_string()
        }
        Err(_) => "io".to_string(),
    }
}

/// An agent that keeps its connections and hands every status back as an answer.
fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build(),
    )
}

/// A submission of `n`-th output from the data store's clip.
fn submission(n: usize) -> String {
    serde_json::json!({"input": "clip.mp4", "output": format!("styled/{n}.mp4"), "style": "vintage"})
        .to_string()
}

/// A JSON body of about `bytes` bytes: a submission with a long unknown field.
fn padded(bytes: usize) -> String {
    format!(
        "{{\"input\": \"clip.mp4\", \"output\": \"styled/x.mp4\", \"style\": \"vintage\", \"padding\": \"{}\"}}",
        "x".repeat(bytes)
    )
}

fn token(db: &str, name: &str, role: &str) -> String {
    fresco([
        "tokens", "create", "--role", role, "--name", name, "--db", db,
    ])
    .ok()
    .stdout
    .trim()
    .to_string()
}

/// One round of the flood: phase 1, a valid token's requests (submissions past the rate and
/// the cap, bodies just under and over the 64 KiB limit, malformed JSON, listings); phase 2,
/// the same connections without valid credentials (guessed tokens, none at all, the sign-in
/// page, a page without a session).
fn flood(
    base: &str,
    flooder: &str,
    round: usize,
    counts: &Arc<Mutex<BTreeMap<String, u64>>>,
    sent: &Arc<std::sync::atomic::AtomicU64>,
) {
    for phase in 0..2 {
        let workers: Vec<_> = (0..CONNECTIONS)
            .map(|c| {
                let (base, flooder, counts, sent) = (
                    base.to_string(),
                    flooder.to_string(),
                    counts.clone(),
                    sent.clone(),
                );
                std::thread::spawn(move || {
                    let agent = agent();
                    let jobs = format!("{base}/v1/jobs");
                    let mut local: BTreeMap<String, u64> = BTreeMap::new();
                    for i in 0..PER_CONNECTION {
                        let n = (round * CONNECTIONS + c) * PER_CONNECTION + i;
                        let (what, status) = match (phase, i % 5) {
                            (0, 0) => (
                                "submit",
                                call(&agent, "POST", &jobs, Some(&flooder), &submission(n)),
                            ),
                            (0, 1) => (
                                "near-limit",
                                call(&agent, "POST", &jobs, Some(&flooder), &padded(63_000)),
                            ),
                            (0, 2) => (
                                "over-limit",
                                call(&agent, "POST", &jobs, Some(&flooder), &padded(70_000)),
                            ),
                            (0, 3) => (
                                "bad-json",
                                call(&agent, "POST", &jobs, Some(&flooder), "{\"input\": [[[["),
                            ),
                            (0, _) => ("list", call(&agent, "GET", &jobs, Some(&flooder), "")),
                            (_, 0 | 1) => (
                                "bad-token",
                                call(&agent, "GET", &jobs, Some(&format!("fresco_guess{n}")), ""),
                            ),
                            (_, 2) => (
                                "no-token",
                                call(&agent, "POST", &jobs, None, &submission(n)),
                            ),
                            (_, 3) => (
                                "sign-in",
                                call(&agent, "GET", &format!("{base}/ui/login"), None, ""),
                            ),
                            (_, _) => ("page", call(&agent, "GET", &format!("{base}/"), None, "")),
                        };
                        *local.entry(format!("{what} {status}")).or_insert(0) += 1;
                        sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    let mut counts = counts.lock().unwrap();
                    for (key, n) in local {
                        *counts.entry(key).or_insert(0) += n;
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn server_memory_stays_bounded_under_a_flood() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("SKIP: no /proc (not Linux): cannot read the server's memory");
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Each submitter's `clip.mp4` is in its own namespace of the data store.
    for tenant in ["flooder", "other"] {
        let own = data.join("tenants").join(tenant);
        std::fs::create_dir_all(&own).unwrap();
        make_h264(&own.join("clip.mp4"), "64x48", 25, 0.4);
    }
    let db = format!("sqlite://{}", dir.path().join("queue.db").display());
    let flooder = token(&db, "flooder", "submitter");
    let other = token(&db, "other", "submitter");
    let log = dir.path().join("serve.log");
    // Per-token request rates high enough that a valid token's requests reach the handlers
    // (the body limit, JSON parsing, the submission rate and cap); the per-address limits
    // at their defaults.
    let child = fresco_cmd()
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "0"])
        .args(["--rate-limit", "1000000", "--rate-burst", "1000000"])
        .args(["--submit-rate-limit", "60", "--submit-burst", "30"])
        .args(["--max-queued-per-token", "10"])
        .arg("--data")
        .arg(&data)
        .arg("--db")
        .arg(&db)
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .env("FRESCO_LOG", "info")
        .log_to(&log)
        .spawn()
        .expect("start fresco serve");
    let pid = child.id();
    let mut server = Server(child);
    let base = word_after(&log, "listening on ", Duration::from_secs(30));
    let address = base.trim_start_matches("http://").to_string();

    // Warm up every path once (the runtime's threads, the database's caches), then measure.
    let agent = agent();
    for n in 0..20 {
        call(&agent, "GET", &format!("{base}/healthz"), None, "");
        call(&agent, "GET", &format!("{base}/v1/jobs"), Some(&other), "");
        call(
            &agent,
            "POST",
            &format!("{base}/v1/jobs"),
            Some(&other),
            &padded(60_000),
        );
        call(&agent, "GET", &format!("{base}/ui/login"), None, "");
        call(
            &agent,
            "GET",
            &format!("{base}/v1/jobs"),
            Some(&format!("fresco_warm{n}")),
            "",
        );
    }
    // The warm-up's failures block this address for a moment: let that pass.
    std::thread::sleep(Duration::from_secs(2));
    let before = proc_kib(pid, "VmRSS:");

    let counts: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // Slow bodies: headers with a valid token and a 60,000-byte length, then 1,000 bytes, held.
    let slow: Vec<TcpStream> = (0..SLOW_BODIES)
        .filter_map(|_| {
            let mut stream = TcpStream::connect(&address).ok()?;
            let head = format!(
                "POST /v1/jobs HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {flooder}\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{\"input\": \"{}",
                "y".repeat(1000)
            );
            stream.write_all(head.as_bytes()).ok()?;
            Some(stream)
        })
        .collect();
    let flood_started = Instant::now();
    flood(&base, &flooder, 0, &counts, &sent);
    let after_first = proc_kib(pid, "VmRSS:");
    // Round 1's guessed tokens block this address for a moment: let the block end, so that
    // round 2's valid requests reach the handlers again.
    std::thread::sleep(Duration::from_secs(2));
    flood(&base, &flooder, 1, &counts, &sent);
    let flood_time = flood_started.elapsed();
    let peak = proc_kib(pid, "VmHWM:");
    let during = proc_kib(pid, "VmRSS:");
    drop(slow);
    // Let the slow bodies' connections and the address's block end.
    std::thread::sleep(Duration::from_secs(2));
    let after = proc_kib(pid, "VmRSS:");
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    let counts = counts.lock().unwrap().clone();
    eprintln!(
        "flood: {sent} requests in two rounds over {CONNECTIONS} connections (+{SLOW_BODIES} slow bodies) in {flood_time:?}; \
         server RSS before {before} KiB, after round 1 {after_first} KiB, peak {peak} KiB, at the end {during} KiB, \
         after {after} KiB (growth: peak +{} KiB, after +{} KiB, round 2 +{} KiB; bounds +{MAX_GROWTH_KIB} KiB, \
         round 2 +{MAX_ROUND_GROWTH_KIB} KiB)\nstatuses: {counts:#?}",
        peak.saturating_sub(before),
        after.saturating_sub(before),
        during.saturating_sub(after_first),
    );
    assert_eq!(sent, (2 * 2 * CONNECTIONS * PER_CONNECTION) as u64);
    // The flood met every limit it was meant to.
    let seen = |key: &str| counts.get(key).copied().unwrap_or(0);
    assert!(
        seen("submit 201") >= 1 && seen("submit 201") <= 10,
        "{counts:?}"
    );
    assert!(
        seen("submit 429") > 0,
        "no submission was limited: {counts:?}"
    );
    assert!(
        seen("over-limit 413") + seen("over-limit io") > 0,
        "{counts:?}"
    );
    assert!(
        seen("bad-token 429") > 0,
        "guessed tokens were never limited: {counts:?}"
    );
    assert!(seen("bad-token 401") > 0, "{counts:?}");
    let server_errors: u64 = counts
        .iter()
        .filter(|(key, _)| key.ends_with(" 500") || key.ends_with(" 503"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(server_errors, 0, "{counts:?}");
    assert!(
        peak.saturating_sub(before) < MAX_GROWTH_KIB && after.saturating_sub(before) < MAX_GROWTH_KIB,
        "the server's memory grew past the bound: before {before} KiB, peak {peak} KiB, after {after} KiB"
    );
    // The first round fills what the allocator and the database's caches keep; a second
    // round of the same requests must find it there, not add to it (a leak would).
    assert!(
        during.saturating_sub(after_first) < MAX_ROUND_GROWTH_KIB,
        "the second round of the flood grew the server's memory: {after_first} KiB -> {during} KiB"
    );

    // Still serving: the health probe, and another token's submission.
    assert_eq!(
        call(&agent, "GET", &format!("{base}/healthz"), None, ""),
        "200"
    );
    fresco_testkit::http::post(&format!("{base}/v1/jobs"))
        .bearer(&other)
        .send_json(&serde_json::json!({"input": "clip.mp4", "output": "styled/other.mp4", "style": "vintage"}))
        .expect(201);
    let status = terminate(&mut server.0, Duration::from_secs(30), "fresco serve");
    assert!(status.success(), "{}", read_log(&log));
    eprintln!("the flood test took {:?}", started.elapsed());
}
