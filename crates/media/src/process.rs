//! The one process runner. Every ffmpeg and ffprobe call goes through [`Tool`]: the child leads
//! its own process group and is stopped when its handle is dropped, stderr is drained
//! concurrently into a bounded tail (so a chatty child can never block on a full pipe, nor grow
//! our memory), every read of stdout has a byte cap, waits time out, a job's cancel flag
//! ([`Tool::with_cancel`]) is watched while waiting, and failures come back as a typed
//! [`ProcessError`] that carries that tail.
//!
//! A child is stopped by SIGTERM to its group, then SIGKILL after [`STOP_GRACE`]: ffmpeg ends
//! cleanly on SIGTERM, and a child that ignores it (or is stuck in a write) is gone anyway
//! within seconds of a cancel or a timeout.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

/// How many stderr lines a failure keeps.
const STDERR_TAIL_LINES: usize = 40;
/// The longest stderr line kept (the rest of a longer line is read and dropped).
const STDERR_LINE_BYTES: usize = 2048;
/// The most bytes of stdout [`Tool::output`] keeps; more is [`ProcessError::OutputTooLarge`].
pub const DEFAULT_OUTPUT_CAP: usize = 16 << 20;
/// How long a stopped child has between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(2);
/// How often a wait looks at the cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// The start of every ffmpeg command line fresco runs: no stdin (it is a pipe or nothing),
/// no banner, errors only (stderr is kept for the failure's message).
pub fn ffmpeg_quiet() -> Vec<std::ffi::OsString> {
    ["-nostdin", "-hide_banner", "-v", "error"]
        .map(std::ffi::OsString::from)
        .to_vec()
}

/// An external program, found on PATH or named by an environment variable.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Short name for messages (`ffmpeg`).
    pub name: &'static str,
    /// What is executed.
    pub program: PathBuf,
    /// Said when the program is missing.
    pub install_hint: &'static str,
    /// A job's cancel flag: once raised, runs of this tool stop their child and fail with
    /// [`ProcessError::Canceled`].
    pub cancel: Option<Arc<AtomicBool>>,
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
            cancel: None,
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
            cancel: None,
        }
    }

    /// This tool, with its runs stopped when `cancel` is raised.
    pub fn with_cancel(mut self, cancel: Arc<AtomicBool>) -> Tool {
        self.cancel = Some(cancel);
        self
    }

    fn canceled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
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

    /// Runs to completion and returns stdout (at most [`DEFAULT_OUTPUT_CAP`] bytes); a non-zero
    /// exit is an error with the stderr tail.
    pub fn output<I, S>(&self, args: I, timeout: Duration) -> Result<Captured, ProcessError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.output_capped(args, timeout, DEFAULT_OUTPUT_CAP)
    }

    /// Like [`Tool::output`], keeping at most `cap` bytes of stdout: a child that prints more
    /// is stopped and the run fails with [`ProcessError::OutputTooLarge`].
    pub fn output_capped<I, S>(
        &self,
        args: I,
        timeout: Duration,
        cap: usize,
    ) -> Result<Captured, ProcessError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut running = self.spawn(self.command(args), Pipes::stdout())?;
        let stdout = running.take_stdout().expect("stdout was piped");
        let over = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&over);
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut limited = stdout.take(cap as u64 + 1);
            let read = limited.read_to_end(&mut buf);
            if buf.len() > cap {
                // Stop reading: the wait below sees the flag and stops the child.
                flag.store(true, Ordering::SeqCst);
                buf.truncate(cap);
            }
            read.map(|_| buf)
        });
        let status = running.wait_watching(timeout, Some(&over));
        let stdout = reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("stdout reader panicked")));
        if over.load(Ordering::SeqCst) {
            return Err(ProcessError::OutputTooLarge {
                program: self.name,
                cap,
            });
        }
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

    /// Runs the tool and hands each line of its stdout (at most `max_line` bytes; longer lines
    /// are an error) to `each`, without keeping them: memory stays bounded whatever the child
    /// prints. `each` may stop the run early ([`ControlFlow::Break`]): the child is stopped and
    /// the break value returned. A run that ends by itself must exit with success.
    pub fn each_line<I, S, B>(
        &self,
        args: I,
        timeout: Duration,
        max_line: usize,
        mut each: impl FnMut(&str) -> ControlFlow<B>,
    ) -> Result<LinesEnd<B>, ProcessError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let deadline = Instant::now() + timeout;
        let mut running = self.spawn(self.command(args), Pipes::stdout())?;
        let stdout = running.take_stdout().expect("stdout was piped");
        // Lines come through a small channel, so that waiting for the next one can also watch
        // the clock and the cancel flag.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<String, String>>(64);
        let reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                match read_line_capped(&mut reader, max_line) {
                    Ok(None) => return,
                    Ok(Some(line)) => {
                        if tx.send(Ok(line)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        let mut stopped = None;
        let mut failure = None;
        loop {
            if self.canceled() {
                failure = Some(ProcessError::Canceled { program: self.name });
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                failure = Some(ProcessError::Timeout {
                    program: self.name,
                    seconds: timeout.as_secs(),
                    stderr_tail: String::new(),
                });
                break;
            }
            match rx.recv_timeout(left.min(CANCEL_POLL)) {
                Ok(Ok(line)) => {
                    if let ControlFlow::Break(value) = each(&line) {
                        stopped = Some(value);
                        break;
                    }
                }
                Ok(Err(_too_long)) => {
                    failure = Some(ProcessError::OutputTooLarge {
                        program: self.name,
                        cap: max_line,
                    });
                    break;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if stopped.is_some() || failure.is_some() {
            drop(rx);
            running.stop();
            let _ = reader.join();
            if let Some(failure) = failure {
                return Err(match failure {
                    ProcessError::Timeout {
                        program, seconds, ..
                    } => ProcessError::Timeout {
                        program,
                        seconds,
                        stderr_tail: running.stderr_tail(),
                    },
                    other => other,
                });
            }
            return Ok(LinesEnd {
                stopped,
                stderr_tail: running.stderr_tail(),
            });
        }
        let _ = reader.join();
        let left = deadline.saturating_duration_since(Instant::now());
        let status = running.wait_timeout(left.max(Duration::from_millis(1)))?;
        let stderr_tail = running.stderr_tail();
        if !status.success() {
            return Err(ProcessError::Failed {
                program: self.name,
                status: status.to_string(),
                stderr_tail,
            });
        }
        Ok(LinesEnd {
            stopped: None,
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
            cancel: self.cancel.clone(),
            terminated_at: None,
        })
    }
}

/// How an [`Tool::each_line`] run ended: stopped by the caller (with its value), or by itself.
#[derive(Debug)]
pub struct LinesEnd<B> {
    pub stopped: Option<B>,
    /// The last lines of stderr.
    pub stderr_tail: String,
}

/// Reads one line of at most `max` bytes (without its newline); `Err` for a longer one,
/// `Ok(None)` at the end of the stream.
fn read_line_capped(reader: &mut impl BufRead, max: usize) -> Result<Option<String>, String> {
    let mut line = Vec::new();
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        if buf.is_empty() {
            return Ok((!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned()));
        }
        let (used, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(end) => (end + 1, true),
            None => (buf.len(), false),
        };
        let take = if done { used - 1 } else { used };
        if line.len() + take > max {
            return Err(format!("a line longer than {max} bytes"));
        }
        line.extend_from_slice(&buf[..take]);
        reader.consume(used);
        if done {
            return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
        }
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

/// Keeps the last [`STDERR_TAIL_LINES`] lines of stderr, each cut to [`STDERR_LINE_BYTES`]:
/// the rest of a longer line (a binary blob, a line with no end) is read and dropped, so memory
/// stays bounded whatever the child writes.
fn drain_stderr(stderr: impl Read, tail: &Mutex<VecDeque<String>>) {
    let mut reader = BufReader::new(stderr);
    let mut line: Vec<u8> = Vec::with_capacity(256);
    loop {
        let (used, ended) = match reader.fill_buf() {
            Ok([]) => {
                push_line(&line, tail);
                return;
            }
            Ok(buf) => {
                let (used, ended) = match buf.iter().position(|&b| b == b'\n') {
                    Some(end) => (end + 1, true),
                    None => (buf.len(), false),
                };
                let room = STDERR_LINE_BYTES.saturating_sub(line.len());
                let content = if ended { used - 1 } else { used };
                line.extend_from_slice(&buf[..content.min(room)]);
                (used, ended)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        reader.consume(used);
        if ended {
            push_line(&line, tail);
            line.clear();
        }
    }
}

fn push_line(line: &[u8], tail: &Mutex<VecDeque<String>>) {
    // The tools echo their input URLs, signatures included: blank those before the line can
    // reach an error message, a job record or a log.
    let text = crate::redact::redact(String::from_utf8_lossy(line).trim_end());
    if text.is_empty() {
        return;
    }
    let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
    if tail.len() == STDERR_TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(text);
}

/// A started child. Dropping it stops the child (and reaps it), so no early return leaves an
/// ffmpeg behind.
#[derive(Debug)]
pub struct Running {
    name: &'static str,
    child: Option<Child>,
    tail: Arc<Mutex<VecDeque<String>>>,
    stderr_thread: Option<JoinHandle<()>>,
    cancel: Option<Arc<AtomicBool>>,
    /// When SIGTERM was sent ([`Running::terminate`]): the grace runs from then.
    terminated_at: Option<Instant>,
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

    /// Waits for exit, stopping the child after `timeout` or when the tool's cancel flag is
    /// raised. stderr is fully drained on return.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus, ProcessError> {
        self.wait_watching(timeout, None)
    }

    /// [`Running::wait_timeout`], also stopping the child (with `Ok` of its status) when
    /// `abandon` is raised: the caller has what it needs or has seen too much.
    fn wait_watching(
        &mut self,
        timeout: Duration,
        abandon: Option<&AtomicBool>,
    ) -> Result<ExitStatus, ProcessError> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("child present until drop");
        loop {
            let canceled = self
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::SeqCst));
            let abandoned = abandon.is_some_and(|a| a.load(Ordering::SeqCst));
            let left = deadline.saturating_duration_since(Instant::now());
            if canceled || abandoned || left.is_zero() {
                let status = stop_group(child, self.terminated_at);
                self.join_stderr();
                return if canceled {
                    Err(ProcessError::Canceled { program: self.name })
                } else if abandoned {
                    status.map_err(|e| ProcessError::Io {
                        program: self.name,
                        source: e,
                    })
                } else {
                    Err(ProcessError::Timeout {
                        program: self.name,
                        seconds: timeout.as_secs(),
                        stderr_tail: self.stderr_tail(),
                    })
                };
            }
            let slice = if self.cancel.is_some() || abandon.is_some() {
                left.min(CANCEL_POLL)
            } else {
                left
            };
            match child.wait_timeout(slice) {
                Ok(Some(status)) => {
                    self.join_stderr();
                    return Ok(status);
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(ProcessError::Io {
                        program: self.name,
                        source: e,
                    })
                }
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

    /// Kills the child's group now, without a grace period: for a child whose output is no
    /// longer wanted (a decoder past its window). Waiting afterwards reaps it.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            signal_group(child, libc::SIGKILL);
            let _ = child.kill();
        }
    }

    /// Sends SIGTERM to the child's group and returns: several children stopped together
    /// share one grace period ([`Running::stop`] each afterwards).
    pub fn terminate(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if self.terminated_at.is_none() && matches!(child.try_wait(), Ok(None)) {
                signal_group(child, libc::SIGTERM);
                self.terminated_at = Some(Instant::now());
            }
        }
    }

    /// Stops the child (SIGTERM to its group, SIGKILL once [`STOP_GRACE`] has passed since
    /// the SIGTERM) and reaps it: on cancel and failure.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = stop_group(child, self.terminated_at);
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
            let _ = stop_group(&mut child, self.terminated_at);
        }
        self.join_stderr();
    }
}

/// Sends `signal` to the child's whole process group (it leads one, see [`Tool::spawn`]).
fn signal_group(child: &Child, signal: libc::c_int) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: killpg only sends a signal; the group id is our own child's pid.
    unsafe {
        libc::killpg(pid, signal);
    }
}

/// Stops a child that may still run: SIGTERM to its group (unless sent at `terminated_at`),
/// then SIGKILL to the group once [`STOP_GRACE`] has passed since, and reaps it. A child that
/// has exited is only reaped.
fn stop_group(child: &mut Child, terminated_at: Option<Instant>) -> io::Result<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Ok(status);
    }
    let since = match terminated_at {
        Some(at) => at,
        None => {
            signal_group(child, libc::SIGTERM);
            Instant::now()
        }
    };
    let grace = STOP_GRACE.saturating_sub(since.elapsed());
    if let Ok(Some(status)) = child.wait_timeout(grace) {
        // Anything it started and left behind goes too.
        signal_group(child, libc::SIGKILL);
        return Ok(status);
    }
    signal_group(child, libc::SIGKILL);
    let _ = child.kill();
    child.wait()
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
        "{program} did not finish within {seconds} s and was stopped{}",
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
    /// The child printed more than the caller reads (a whole output over `cap` bytes, or a
    /// line over `cap` bytes): it was stopped.
    #[error("{program} printed more than {cap} bytes, more than fresco reads, and was stopped")]
    OutputTooLarge { program: &'static str, cap: usize },
    /// The job's cancel flag was raised: the child was stopped.
    #[error("{program} was stopped: the job was canceled")]
    Canceled { program: &'static str },
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
mod tests;
