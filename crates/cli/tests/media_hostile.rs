//! Hostile media against the real binary: `fresco run` refuses files that would make ffmpeg
//! open other files (exit 4, naming what the file is); a canceled job's ffmpeg children are
//! gone within seconds even when they ignore SIGTERM (a stand-in ffmpeg that traps it); and a
//! chapter bomb submitted to a real `fresco serve` is refused while the server's resident
//! memory stays bounded (VmRSS and VmHWM from /proc, as `serve_flood.rs` reads them).
//!
//! Needs ffmpeg; Linux for the memory test (reads /proc). About 30 s.

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::jobs::{read_log, sqlite_queue, wait_exit, wait_until};
use common::*;

#[test]
fn fresco_run_refuses_files_that_open_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, model) = setup(dir.path());
    let secret = dir.path().join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::copy(&clip, secret.join("clip.mp4")).unwrap();
    let secret_clip = secret.join("clip.mp4").display().to_string();
    let token = "FRESCO-SECRET-3b8e1f-do-not-leak";
    std::fs::write(secret.join("key.txt"), format!("{token}\n")).unwrap();
    let secret_text = secret.join("key.txt").display().to_string();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cases = [
        (
            "clip.mp4",
            format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{secret_clip}\n#EXT-X-ENDLIST\n"
            ),
            "is an HLS playlist, which can open other files",
        ),
        (
            "joined.mkv",
            format!("ffconcat version 1.0\nfile {secret_clip}\n"),
            "is an ffconcat script, which can open other files",
        ),
        (
            "key.mp4",
            format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{secret_text}\n#EXT-X-ENDLIST\n"
            ),
            "is an HLS playlist",
        ),
        (
            "key.mov",
            format!("ffconcat version 1.0\nfile {secret_text}\n"),
            "is an ffconcat script",
        ),
    ];
    for (name, text, says) in cases {
        let input = data.join(name);
        std::fs::write(&input, text).unwrap();
        let output = dir.path().join(format!("out-{name}"));
        let out = run(&input, &output, &model, &[]).fails(4, name, &[says]);
        assert!(!output.exists());
        assert!(
            !out.dump().contains(token),
            "the secret leaked:\n{}",
            out.dump()
        );
    }
}

/// An ffmpeg that ignores SIGTERM, records its pid in `pids` and never finishes.
fn stubborn_ffmpeg(dir: &Path, pids: &Path) -> PathBuf {
    let script = dir.join("ffmpeg-stubborn");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntrap '' TERM\necho $$ >> '{}'\nwhile true; do sleep 1; done\n",
            pids.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie has exited; only its parent's wait is missing.
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn recorded(pids: &Path) -> Vec<u32> {
    read_log(pids)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Cancels a job while its worker waits on stubborn ffmpeg children, at plan (the stream
/// check of a clip with audio) and while scoring (the decoder and encoder of a clip without):
/// every child is gone within the grace period and a heartbeat of the cancel.
#[test]
fn children_of_a_canceled_job_are_gone_within_seconds() {
    for (form, with_audio) in [("scoring", false), ("plan", true)] {
        let dir = tempfile::tempdir().unwrap();
        let queue = sqlite_queue(dir.path());
        let input = dir.path().join("clip.mkv");
        let mut args = vec!["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25"];
        if with_audio {
            args.extend(["-f", "lavfi", "-i", "sine=d=2"]);
        }
        args.extend(["-t", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p"]);
        ffmpeg(&args, &input);
        let model = identity_model(dir.path());
        let output = dir.path().join("out.mkv");
        let id = queue.submit(&input, &output, &model, &[]);
        let pids = dir.path().join("pids");
        let stand_in = stubborn_ffmpeg(dir.path(), &pids);
        let log = dir.path().join("w.log");
        let env = [("FRESCO_FFMPEG", stand_in.to_str().unwrap())];
        let mut worker = queue.spawn_worker(&log, &env, &[]);
        wait_until(
            Duration::from_secs(60),
            "the stand-in ffmpeg to start",
            || !recorded(&pids).is_empty(),
        );
        std::thread::sleep(Duration::from_millis(300));
        let children = recorded(&pids);
        assert!(
            children.iter().all(|&pid| alive(pid)),
            "{form}: {children:?}"
        );
        let canceled_at = Instant::now();
        queue.jobs("cancel", &id).ok();
        // Lease 2 s: a heartbeat within 0.7 s sees the cancel; SIGKILL follows SIGTERM by 2 s.
        wait_until(
            Duration::from_secs(8),
            "the canceled job's ffmpeg to be gone",
            || recorded(&pids).iter().all(|&pid| !alive(pid)),
        );
        let gone_after = canceled_at.elapsed();
        assert!(
            gone_after >= Duration::from_secs(2),
            "{form}: gone in {gone_after:?}, before the grace: was SIGTERM sent first?"
        );
        assert!(wait_exit(&mut worker, Duration::from_secs(30), "worker").success());
        let job = queue.show(&id);
        assert_eq!(job["state"], "canceled", "{form}: {job:#}");
        assert!(!output.exists());
        eprintln!("{form}: children gone {gone_after:?} after the cancel");
    }
}

/// A field of /proc/PID/status, in KiB.
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How much the server's memory may grow over the chapter bombs. Measured (debug build, 2
/// cores): see the numbers this test prints.
const MAX_GROWTH_KIB: u64 = 48 * 1024;

#[test]
fn a_chapter_bomb_is_refused_and_the_servers_memory_stays_bounded() {
    if !Path::new("/proc/self/status").exists() {
        eprintln!("SKIP: no /proc (not Linux): cannot read the server's memory");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data_root = dir.path().join("data");
    // A submitter's relative names resolve in its namespace of the data store.
    let data = data_root.join("tenants").join("bomber");
    std::fs::create_dir_all(data.join("styled")).unwrap();
    let clip = data.join("clip.mp4");
    make_h264(&clip, "64x48", 25, 0.4);
    // 100,000 chapters (counted: over the limit) and 400,000 (ffprobe's report passes its cap).
    chapter_bomb(&clip, 100_000, &data.join("chapters.mkv"));
    chapter_bomb(&clip, 400_000, &data.join("more-chapters.mkv"));
    let db = format!("sqlite://{}", dir.path().join("queue.db").display());
    let token = fresco([
        "tokens",
        "create",
        "--role",
        "submitter",
        "--name",
        "bomber",
        "--db",
        &db,
    ])
    .ok()
    .stdout
    .trim()
    .to_string();
    let log = dir.path().join("serve.log");
    let child = fresco_cmd()
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "0"])
        .args(["--rate-limit", "1000000", "--rate-burst", "1000000"])
        .arg("--data")
        .arg(&data_root)
        .arg("--db")
        .arg(&db)
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .env("FRESCO_LOG", "info")
        .log_to(&log)
        .spawn()
        .expect("start fresco serve");
    let pid = child.id();
    let _server = Server(child);
    let base = word_after(&log, "listening on ", Duration::from_secs(30));
    let submit = |input: &str, n: usize| -> (u16, String) {
        let body = serde_json::json!({
            "input": input, "output": format!("styled/{n}.mp4"), "style": "vintage"
        });
        let answer = fresco_testkit::http::post(&format!("{base}/v1/jobs"))
            .bearer(&token)
            .timeout(Duration::from_secs(60))
            .send_json(&body);
        (answer.status, answer.text())
    };
    // Warm up the submission path once (threads, caches, ffprobe's first run).
    let (status, text) = submit("clip.mp4", 0);
    assert_eq!(status, 201, "{text}");
    let before = proc_kib(pid, "VmRSS:");
    let peak_before = proc_kib(pid, "VmHWM:");
    for n in 1..=6 {
        let (status, text) = submit("chapters.mkv", n);
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("input-too-many-chapters"), "{text}");
        assert!(text.contains("100000 chapters"), "{text}");
        let (status, text) = submit("more-chapters.mkv", n + 100);
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("input-too-complex"), "{text}");
    }
    let after = proc_kib(pid, "VmRSS:");
    let peak = proc_kib(pid, "VmHWM:");
    eprintln!(
        "server VmRSS {before} KiB -> {after} KiB, VmHWM {peak_before} KiB -> {peak} KiB over \
         12 chapter bombs"
    );
    assert!(
        after.saturating_sub(before) < MAX_GROWTH_KIB,
        "VmRSS grew from {before} to {after} KiB"
    );
    assert!(
        peak.saturating_sub(before.max(peak_before)) < MAX_GROWTH_KIB,
        "VmHWM reached {peak} KiB (RSS before: {before} KiB)"
    );
    // Still answering, and a valid submission is still taken.
    let (status, text) = submit("clip.mp4", 999);
    assert_eq!(status, 201, "{text}");
}
