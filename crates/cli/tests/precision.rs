//! `--precision fp32|fp16` on `fresco run` and `fresco jobs submit`: an unknown value and fp16
//! on the CPU are refused before any work (exit 2, the flag named), fp32 is the default and is
//! pinned in the job. About 2 s.

mod common;

use common::jobs::sqlite_queue;
use common::*;

fn error_line(out: &Out) -> String {
    out.stderr
        .lines()
        .find(|l| l.starts_with("error"))
        .unwrap_or_else(|| panic!("no error line:\n{}", out.dump()))
        .to_string()
}

#[test]
fn run_refuses_fp16_on_the_cpu_and_unknown_precisions() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "64x48", 25, 0.2);
    let output = dir.path().join("out.mp4");
    let run = |precision: &str| {
        fresco([
            s("run"),
            p(&input),
            s("-o"),
            p(&output),
            s("--style"),
            s("vintage"),
            s("--precision"),
            s(precision),
        ])
    };

    let out = run("fp16");
    assert_eq!(out.code, Some(2), "{}", out.dump());
    let line = error_line(&out);
    assert!(
        line.contains("--precision fp16 needs --device cuda"),
        "{}",
        out.dump()
    );
    assert!(line.contains("--precision fp32"), "{}", out.dump());
    assert_nothing_left(&output);

    let out = run("int8");
    assert_eq!(out.code, Some(2), "{}", out.dump());
    assert!(
        out.stderr.contains("--precision") && out.stderr.contains("expected fp32 or fp16"),
        "{}",
        out.dump()
    );
    assert_nothing_left(&output);
}

#[test]
fn jobs_submit_refuses_fp16_on_the_cpu_and_pins_fp32() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "64x48", 25, 0.2);
    let output = dir.path().join("out.mp4");
    let queue = sqlite_queue(dir.path());
    let submit = |precision: &str| {
        let mut args = vec![
            s("jobs"),
            s("submit"),
            p(&input),
            s("-o"),
            p(&output),
            s("--style"),
            s("vintage"),
            s("--precision"),
            s(precision),
        ];
        args.extend(queue.args());
        fresco(args)
    };

    let out = submit("fp16");
    assert_eq!(out.code, Some(2), "{}", out.dump());
    assert!(
        error_line(&out).contains("--precision fp16 needs --device cuda"),
        "{}",
        out.dump()
    );

    let id = submit("fp32").ok().stdout.trim().to_string();
    assert!(!id.is_empty());
    // The job spec is stored as JSON text in the SQLite queue (main file or its WAL).
    let stored: Vec<u8> = ["queue.db", "queue.db-wal"]
        .iter()
        .filter_map(|f| std::fs::read(dir.path().join(f)).ok())
        .flatten()
        .collect();
    let pinned = b"\"precision\":\"fp32\"";
    assert!(
        stored.windows(pinned.len()).any(|w| w == pinned),
        "the queued job's spec pins precision fp32"
    );
    assert!(!stored.windows(14).any(|w| w == b"\"precision\":\"fp16"));
}
