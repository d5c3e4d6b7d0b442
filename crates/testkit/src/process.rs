//! Child processes with a timeout: run one to the end collecting its output, wait for one to
//! exit, or poll a condition.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a finished process said.
#[derive(Debug)]
pub struct Out {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Everything printed, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "exit code {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Asserts a zero exit.
    pub fn ok(self) -> Out {
        assert_eq!(self.code, Some(0), "the command failed:\n{}", self.dump());
        self
    }

    /// Asserts the exit code and the shape of the error line: it starts with "error: ", it names
    /// `file` (by file name) and contains each of `words` (case-insensitive).
    pub fn fails(self, code: i32, file: &str, words: &[&str]) -> Out {
        assert_eq!(self.code, Some(code), "wrong exit code:\n{}", self.dump());
        let line = self
            .stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| {
                panic!(
                    "no line starting with 'error: ' on stderr:\n{}",
                    self.dump()
                )
            });
        assert!(
            line.contains(file),
            "the error line does not name {file}:\n{}",
            self.dump()
        );
        let count = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .count();
        assert_eq!(count, 1, "expected one error line:\n{}", self.dump());
        let lower = line.to_lowercase();
        for word in words {
            assert!(
                lower.contains(&word.to_lowercase()),
                "the error line does not mention {word:?}:\n{}",
                self.dump()
            );
        }
        self
    }

    /// stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}):\n{}", self.dump()))
    }
}

/// Runs a command with stdin closed, collecting its output, killing it after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Out {
    run_measured(cmd, timeout).0
}

/// [`run_with_timeout`], and the command's peak resident memory in KiB: the kernel's
/// `ru_maxrss` for the process and the children it waited for (`wait4`), so no outside tool
/// is needed.
// The child is reaped by `wait4` (which gives its rusage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
pub fn run_measured(cmd: &mut Command, timeout: Duration) -> (Out, u64) {
    use std::os::unix::process::ExitStatusExt;
    let described = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {described}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let (status, peak_kib) = loop {
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is this call's own child, not yet reaped; status and usage point at
        // live locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(
            reaped >= 0,
            "wait for {described}: {}",
            std::io::Error::last_os_error()
        );
        if reaped == pid {
            break (ExitStatus::from_raw(status), usage.ru_maxrss as u64);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err_thread.join().unwrap()).into_owned();
            panic!("{described} did not finish within {timeout:?} (hung?); stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Out {
        code: status.code(),
        stdout: String::from_utf8_lossy(&out_thread.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err_thread.join().unwrap()).into_owned(),
    };
    (out, peak_kib)
}

/// Waits for `child` to exit within `timeout`, killing it (and failing) otherwise.
pub fn wait_exit(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads a log file ("" if missing).
pub fn read_log(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits until `log` holds `marker` and returns the word that follows it (e.g. the address
/// after a server's "listening on "); fails after `timeout`.
pub fn word_after(log: &std::path::Path, marker: &str, timeout: Duration) -> String {
    let mut word = String::new();
    wait_until(timeout, &format!("{marker:?} in {}", log.display()), || {
        if let Some(rest) = read_log(log).split(marker).nth(1) {
            word = rest.split_whitespace().next().unwrap_or_default().into();
        }
        !word.is_empty()
    });
    word
}

/// Sends SIGTERM to `child` and waits up to `timeout` for it to exit (killing it, and failing,
/// after that).
pub fn terminate(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    wait_exit(child, timeout, what)
}

/// Runs a command in the background with its stderr in a log file.
pub trait LogTo {
    /// stdin and stdout closed, stderr written to `log` (created afresh).
    fn log_to(&mut self, log: &std::path::Path) -> &mut Self;
}

impl LogTo for Command {
    fn log_to(&mut self, log: &std::path::Path) -> &mut Self {
        let file = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("create the log {}: {e}", log.display()));
        self.stdin(Stdio::null()).stdout(Stdio::null()).stderr(file)
    }
}
