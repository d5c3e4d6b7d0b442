//! The one process runner. Every ffmpeg and ffprobe call goes through [`Tool`]: the child is
//! killed when its handle is dropped, stderr is drained concurrently into a bounded tail (so a
//! chatty child can never block on a full pipe), waits can time out, and failures come back as
//! a typed [`ProcessError`] that carries that tail.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use wait_timeout::ChildExt;

/// How many stderr lines a failure keeps.
const STDERR_TAIL_LINES: usize = 40;

/// An external program, found on PATH or named by an environment variable.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Short name for messages (`ffmpeg`).
    pub name: &'static str,
    /// What is executed.
    pub program: PathBuf,
    /// Said when the program is missing.
    pub install_hint: &'static str,
}

const FFMPEG_HINT: &str =
    "install it (Debian/Ubuntu: `sudo apt-get install ffmpeg`; macOS: `brew install ffmpeg`) or set FRESCO_FFMPEG/FRESCO_FFPROBE to its path";

impl Tool {
    /// `ffmpeg`, or `$FRESCO_FFMPEG`.
    pub fn ffmpeg() -> Tool {
        Tool {
            name: "ffmpeg",
            program: std::env::var_os("FRESCO_FFMPEG")
                .map(PathBuf::from)
                .unwrap_or_else(|| "ffmpeg".into()),
            install_hint: FFMPEG_HINT,
        }
    }

    /// `ffprobe`, or `$FRESCO_FFPROBE`.
    pub fn ffprobe() -> Tool {
        Tool {
            name: "ffprobe",
            program: std::env::var_os("FRESCO_FFPROBE")
                .map(PathBuf::from)
                .unwrap_or_else(|| "ffprobe".into()),
            install_hint: FFMPEG_HINT,
        }
    }

    /// A command for this tool with the given arguments; stdin is closed unless the caller
    /// asks for a pipe through [`Tool::spawn`].
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.program);
        cmd.args(args);
        cmd
    }

    /// Runs to completion and returns stdout; a non-zero exit is an error with the stderr tail.
    pub fn output<I, S>(&self, args: I, timeout: Duration) -> Result<Captured, ProcessError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut running = self.spawn(self.command(args), Pipes::stdout())?;
        let mut stdout = running.take_stdout().expect("stdout was piped");
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            stdout.read_to_end(&mut buf).map(|_| buf)
        });
        let status = running.wait_timeout(timeout);
        let stdout = reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("stdout reader panicked")));
        let status = status?;
        let stderr_tail = running.stderr_tail();
        if !status.success() {
            return Err(ProcessError::Failed {
                program: self.name,
                status: status.to_string(),
                stderr_tail,
            });
        }
        Ok(Captured {
            stdout: stdout.map_err(|e| ProcessError::Io {
                program: self.name,
                source: e,
            })?,
            stderr_tail,
        })
    }

    /// Starts the tool with the pipes asked for. stderr is always drained into a tail.
    pub fn spawn(&self, mut cmd: Command, pipes: Pipes) -> Result<Running, ProcessError> {
        // Its own process group: a kill reaches anything it started, and a terminal's Ctrl-C
        // reaches only us, so that we decide how the child stops.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.stdin(if pipes.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(if pipes.stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ProcessError::NotFound {
                program: self.name,
                path: self.program.clone(),
                hint: self.install_hint,
            },
            io::ErrorKind::PermissionDenied => ProcessError::Permission {
                program: self.name,
                path: self.program.clone(),
            },
            _ => ProcessError::Io {
                program: self.name,
                source: e,
            },
        })?;
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_LINES)));
        let stderr = child.stderr.take().expect("stderr was piped");
        let sink = Arc::clone(&tail);
        let stderr_thread = std::thread::spawn(move || drain_stderr(stderr, &sink));
        Ok(Running {
            name: self.name,
            child: Some(child),
            tail,
            stderr_thread: Some(stderr_thread),
        })
    }
}

/// Which of a child's standard streams are pipes to us.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pipes {
    pub stdin: bool,
    pub stdout: bool,
}

impl Pipes {
    pub fn stdout() -> Pipes {
        Pipes {
            stdin: false,
            stdout: true,
        }
    }
    pub fn stdin() -> Pipes {
        Pipes {
            stdin: true,
            stdout: false,
        }
    }
}

/// What a finished run printed.
#[derive(Debug)]
pub struct Captured {
    pub stdout: Vec<u8>,
    /// The last lines of stderr (warnings, when the tool succeeded).
    pub stderr_tail: String,
}

fn drain_stderr(stderr: impl Read, tail: &Mutex<VecDeque<String>>) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                // Bound each line too: a binary blob on stderr must not grow memory.
                // The tools echo their input URLs, signatures included: blank those before the
                // line can reach an error message, a job record or a log.
                let text = crate::redact::redact(
                    String::from_utf8_lossy(&line[..line.len().min(2048)]).trim_end(),
                );
                if text.is_empty() {
                    continue;
                }
                let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                if tail.len() == STDERR_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(text);
            }
        }
    }
}

/// A started child. Dropping it kills the child (and reaps it), so no early return leaves an
/// ffmpeg behind.
#[derive(Debug)]
pub struct Running {
    name: &'static str,
    child: Option<Child>,
    tail: Arc<Mutex<VecDeque<String>>>,
    stderr_thread: Option<JoinHandle<()>>,
}

impl Running {
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.as_mut().and_then(|c| c.stdin.take())
    }

    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.as_mut().and_then(|c| c.stdout.take())
    }

    /// The process id, for tests and logs.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last stderr lines seen so far, newest last.
    pub fn stderr_tail(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Waits for exit, killing the child after `timeout`. stderr is fully drained on return.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus, ProcessError> {
        let child = self.child.as_mut().expect("child present until drop");
        let status = child.wait_timeout(timeout).map_err(|e| ProcessError::Io {
            program: self.name,
            source: e,
        })?;
        match status {
            Some(status) => {
                self.join_stderr();
                Ok(status)
            }
            None => {
                kill_group(child);
                let _ = child.wait();
                self.join_stderr();
                Err(ProcessError::Timeout {
                    program: self.name,
                    seconds: timeout.as_secs(),
                    stderr_tail: self.stderr_tail(),
                })
            }
        }
    }

    /// Waits, and turns a non-zero exit into [`ProcessError::Failed`].
    pub fn finish(&mut self, timeout: Duration) -> Result<(), ProcessError> {
        let status = self.wait_timeout(timeout)?;
        if status.success() {
            Ok(())
        } else {
            Err(ProcessError::Failed {
                program: self.name,
                status: status.to_string(),
                stderr_tail: self.stderr_tail(),
            })
        }
    }

    /// Kills the child now (used on cancel); waiting afterwards reaps it.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            kill_group(child);
        }
    }

    fn join_stderr(&mut self) {
        if let Some(handle) = self.stderr_thread.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait() {
                kill_group(&mut child);
            }
            let _ = child.wait();
        }
        self.join_stderr();
    }
}

/// Kills the child's whole process group (it leads one, see [`Tool::spawn`]).
fn kill_group(child: &mut Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: killpg only sends a signal; the group id is our own child's pid.
    unsafe {
        libc::killpg(pid, libc::SIGKILL);
    }
    let _ = child.kill();
}

/// Why running a tool failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{program} was not found (looked for {}): {hint}", path.display())]
    NotFound {
        program: &'static str,
        path: PathBuf,
        hint: &'static str,
    },
    #[error("{program} at {} cannot be executed: permission denied", path.display())]
    Permission {
        program: &'static str,
        path: PathBuf,
    },
    #[error(
        "{program} did not finish within {seconds} s and was killed{}",
        tail_suffix(stderr_tail)
    )]
    Timeout {
        program: &'static str,
        seconds: u64,
        stderr_tail: String,
    },
    #[error("{program} failed ({status}){}", tail_suffix(stderr_tail))]
    Failed {
        program: &'static str,
        status: String,
        stderr_tail: String,
    },
    #[error("{program}: {source}")]
    Io {
        program: &'static str,
        #[source]
        source: io::Error,
    },
}

impl ProcessError {
    /// The stderr tail, where there is one.
    pub fn stderr_tail(&self) -> &str {
        match self {
            ProcessError::Timeout { stderr_tail, .. }
            | ProcessError::Failed { stderr_tail, .. } => stderr_tail,
            _ => "",
        }
    }

    /// True when the tool itself could not be run (not a problem with the input).
    pub fn is_missing_tool(&self) -> bool {
        matches!(
            self,
            ProcessError::NotFound { .. } | ProcessError::Permission { .. }
        )
    }
}

fn tail_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {}", last_lines(tail, 6))
    }
}

/// The last `n` lines of a text, joined with " | " for one-line messages, without ffmpeg's
/// `[demuxer @ 0x55d...]` prefixes (addresses mean nothing to a user).
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(strip_context_prefix)
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn strip_context_prefix(line: &str) -> String {
    let mut rest = line.trim();
    while rest.starts_with('[') {
        match rest.find("] ") {
            Some(end) if rest[..end].contains(" @ 0x") => rest = rest[end + 2..].trim_start(),
            _ => break,
        }
    }
    rest.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> Tool {
        Tool {
            name: "sh",
            program: "sh".into(),
            install_hint: "",
        }
    }

    #[test]
    fn missing_program_is_named_with_its_hint() {
        let tool = Tool {
            name: "ffmpeg",
            program: "/nonexistent/ffmpeg".into(),
            install_hint: FFMPEG_HINT,
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
}
