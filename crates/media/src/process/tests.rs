//! The runner's own tests: caps, stops, cancels and tails, with `sh` as the child.
use super::*;

fn sh() -> Tool {
    Tool {
        name: "sh",
        program: "sh".into(),
        install_hint: "",
        cancel: None,
    }
}

#[test]
fn missing_program_is_named_with_its_hint() {
    let tool = Tool {
        name: "ffmpeg",
        program: "/nonexistent/ffmpeg".into(),
        install_hint: FFMPEG_HINT,
        cancel: None,
    };
    let err = tool
        .output(["-version"], Duration::from_secs(5))
        .unwrap_err();
    assert!(err.is_missing_tool());
    let text = err.to_string();
    assert!(text.contains("ffmpeg was not found"), "{text}");
    assert!(text.contains("apt-get install ffmpeg"), "{text}");
}

#[test]
fn failure_carries_the_stderr_tail_and_status() {
    let err = sh()
        .output(
            ["-c", "echo first >&2; echo 'bad input' >&2; exit 3"],
            Duration::from_secs(5),
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("exit status: 3"), "{text}");
    assert!(text.contains("bad input"), "{text}");
}

#[test]
fn last_lines_drop_ffmpeg_context_prefixes() {
    let text = "[mov,mp4,m4a @ 0x5648] moov atom not found\nin.mp4: Invalid data found\n\n";
    assert_eq!(
        last_lines(text, 2),
        "moov atom not found | in.mp4: Invalid data found"
    );
    assert_eq!(last_lines(text, 1), "in.mp4: Invalid data found");
}

#[test]
fn timeout_kills_the_child() {
    let started = std::time::Instant::now();
    let err = sh()
        .output(["-c", "sleep 30"], Duration::from_millis(300))
        .unwrap_err();
    assert!(matches!(err, ProcessError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn stderr_tail_is_bounded() {
    let out = sh()
        .output(
            [
                "-c",
                "i=0; while [ $i -lt 500 ]; do echo line$i >&2; i=$((i+1)); done; echo done",
            ],
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(out.stdout, b"done\n");
    assert_eq!(out.stderr_tail.lines().count(), STDERR_TAIL_LINES);
    assert!(out.stderr_tail.ends_with("line499"));
}

#[test]
fn dropping_a_running_child_kills_it() {
    let mut cmd = sh().command(["-c", "sleep 30"]);
    cmd.stdin(Stdio::null());
    let running = sh().spawn(cmd, Pipes::default()).unwrap();
    let pid = running.id().unwrap();
    drop(running);
    // The pid is reaped: /proc has no entry (or a different process reused it).
    let status = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        !status.contains("(sleep)") && !status.contains("(sh)"),
        "{status}"
    );
}

#[test]
fn stdout_over_the_cap_stops_the_child_with_a_specific_error() {
    let started = std::time::Instant::now();
    let err = sh()
        .output_capped(["-c", "yes fresco"], Duration::from_secs(30), 4096)
        .unwrap_err();
    assert!(
        matches!(err, ProcessError::OutputTooLarge { cap: 4096, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("more than 4096 bytes"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_stderr_line_without_an_end_is_cut_not_kept() {
    // 8 MiB on stderr in one line: the tail keeps its first bytes only.
    let out = sh()
        .output(
            [
                "-c",
                "head -c 8388608 /dev/zero | tr '\\0' x >&2; echo >&2; echo last >&2",
            ],
            Duration::from_secs(30),
        )
        .unwrap();
    let first = out.stderr_tail.lines().next().unwrap();
    assert_eq!(first.len(), STDERR_LINE_BYTES);
    assert!(
        out.stderr_tail.ends_with("last"),
        "{}",
        out.stderr_tail.len()
    );
}

#[test]
fn each_line_stops_early_and_caps_lines() {
    let mut seen = 0;
    let end = sh()
        .each_line(
            ["-c", "i=0; while true; do echo line$i; i=$((i+1)); done"],
            Duration::from_secs(30),
            64,
            |line| {
                seen += 1;
                if seen == 1000 {
                    ControlFlow::Break(line.to_string())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )
        .unwrap();
    assert_eq!(end.stopped.as_deref(), Some("line999"));
    let err = sh()
        .each_line(
            ["-c", "head -c 100000 /dev/zero | tr '\\0' x"],
            Duration::from_secs(30),
            64,
            |_| ControlFlow::<()>::Continue(()),
        )
        .unwrap_err();
    assert!(
        matches!(err, ProcessError::OutputTooLarge { cap: 64, .. }),
        "{err}"
    );
    let end = sh()
        .each_line(
            ["-c", "echo a; echo b"],
            Duration::from_secs(30),
            64,
            |_| ControlFlow::<()>::Continue(()),
        )
        .unwrap();
    assert!(end.stopped.is_none());
}

/// A child that ignores SIGTERM is killed after the grace period, on cancel and on timeout.
#[test]
fn a_child_that_ignores_sigterm_is_gone_soon_after_cancel_or_timeout() {
    let stubborn = ["-c", "trap '' TERM; while true; do sleep 1; done"];
    let cancel = Arc::new(AtomicBool::new(false));
    let tool = sh().with_cancel(Arc::clone(&cancel));
    let flag = Arc::clone(&cancel);
    let raiser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        flag.store(true, Ordering::SeqCst);
    });
    let started = std::time::Instant::now();
    let err = tool.output(stubborn, Duration::from_secs(60)).unwrap_err();
    raiser.join().unwrap();
    assert!(matches!(err, ProcessError::Canceled { .. }), "{err}");
    let took = started.elapsed();
    assert!(took < STOP_GRACE + Duration::from_secs(3), "{took:?}");
    assert!(
        took >= STOP_GRACE,
        "SIGKILL came before the grace: {took:?}"
    );

    let started = std::time::Instant::now();
    let err = sh()
        .each_line(stubborn, Duration::from_millis(300), 64, |_| {
            ControlFlow::<()>::Continue(())
        })
        .unwrap_err();
    assert!(matches!(err, ProcessError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < STOP_GRACE + Duration::from_secs(3));
}
