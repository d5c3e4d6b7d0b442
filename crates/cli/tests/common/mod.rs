//! Helpers shared by the end-to-end tests of the `fresco` command: making tiny clips with
//! ffmpeg's generators, running the binary with a timeout, and decoding outputs for checks.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub mod jobs;
mod media;
pub mod objects;
pub use media::*;

/// How long one `fresco` run may take before the test calls it hung.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(300);

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
        assert_eq!(self.code, Some(0), "fresco failed:\n{}", self.dump());
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
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err_thread.join().unwrap()).into_owned();
            panic!("{described} did not finish within {timeout:?} (hung?); stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Out {
        code: status.code(),
        stdout: String::from_utf8_lossy(&out_thread.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err_thread.join().unwrap()).into_owned(),
    }
}

/// A `fresco` command without the caller's model folder or tool overrides, and with the download
/// address pointed at a closed port, so a test never downloads anything.
pub fn fresco_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fresco"));
    cmd.env("FRESCO_STATE_DIR", state_dir())
        .env_remove("FRESCO_DB")
        .env_remove("FRESCO_WORK_DIR")
        .env_remove("FRESCO_SYSTEM")
        .env_remove("FRESCO_CONFIG")
        // Nor the user's default config file (~/.config/fresco/config.toml).
        .env("XDG_CONFIG_HOME", state_dir().join("config-home"))
        // `fresco serve`'s data store defaults to ./fresco-data: never the crate's folder.
        .env("FRESCO_DATA", state_dir().join("data"))
        .env_remove("FRESCO_MODEL_DIR")
        .env("FRESCO_MODEL_URL", "http://127.0.0.1:9/")
        .env_remove("FRESCO_FFMPEG")
        .env_remove("FRESCO_FFPROBE")
        .env("NO_COLOR", "1");
    cmd
}

/// The job queue and work folder of this test binary's `fresco run`s (not the user's).
pub fn state_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("state dir"))
        .path()
}

/// Runs `fresco ARGS...`.
pub fn fresco<I, S>(args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_with_timeout(fresco_cmd().args(args), RUN_TIMEOUT)
}

/// Runs `fresco ARGS...` with extra environment variables.
pub fn fresco_env<I, S>(args: I, env: &[(&str, &OsStr)]) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = fresco_cmd();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(&mut cmd, RUN_TIMEOUT)
}

/// Writes the hidden built-in test model `name` (identity, vintage, rank2, one-channel).
pub fn export_builtin(name: &str, path: &Path) {
    let out = fresco([
        OsStr::new("models"),
        OsStr::new("export-builtin"),
        OsStr::new(name),
        path.as_os_str(),
    ]);
    assert_eq!(
        out.code,
        Some(0),
        "export-builtin {name} failed:\n{}",
        out.dump()
    );
    assert!(
        path.is_file(),
        "export-builtin {name} wrote nothing at {}",
        path.display()
    );
}

/// The identity model, written into `dir`.
pub fn identity_model(dir: &Path) -> PathBuf {
    let path = dir.join("identity.onnx");
    if !path.exists() {
        export_builtin("identity", &path);
    }
    path
}

/// Names of the entries of a folder, sorted.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Asserts that nothing is at `output` and that its folder holds no hidden temporary files.
pub fn assert_nothing_left(output: &Path) {
    assert!(
        !output.exists(),
        "{} exists after a failed run",
        output.display()
    );
    if let Some(dir) = output.parent().filter(|d| d.is_dir()) {
        let leftovers: Vec<String> = dir_names(dir)
            .into_iter()
            .filter(|n| n.contains(".fresco-") || n.starts_with('.'))
            .collect();
        assert!(
            leftovers.is_empty(),
            "temporary files left in {}: {leftovers:?}",
            dir.display()
        );
    }
}

/// `$FRESCO_MODEL_DIR/NAME.onnx` when it exists; otherwise prints why the test is skipped.
pub fn real_model(name: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("FRESCO_MODEL_DIR").filter(|d| !d.is_empty()) else {
        eprintln!("skipping: FRESCO_MODEL_DIR not set (point it at the folder holding {name}.onnx, e.g. ../shared/models)");
        return None;
    };
    let dir = PathBuf::from(dir);
    let dir = if dir.is_relative() {
        // cargo runs integration tests in the crate's folder; CI gives the path from the workspace root.
        let from_crate = Path::new(env!("CARGO_MANIFEST_DIR")).join(&dir);
        let from_root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(&dir);
        if from_crate.join(format!("{name}.onnx")).is_file() {
            from_crate
        } else {
            from_root
        }
    } else {
        dir
    };
    let file = dir.join(format!("{name}.onnx"));
    if !file.is_file() {
        eprintln!(
            "skipping: FRESCO_MODEL_DIR set but {} is missing",
            file.display()
        );
        return None;
    }
    Some(dir)
}

/// An ffmpeg stand-in that logs each invocation's arguments to `log` and then runs the real one.
pub fn logging_ffmpeg(dir: &Path, log: &Path) -> PathBuf {
    let real = String::from_utf8_lossy(&tool_bytes(
        "sh",
        &[OsStr::new("-c"), OsStr::new("command -v ffmpeg")],
    ))
    .trim()
    .to_string();
    let script = dir.join("ffmpeg-logged");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// A path argument as &OsStr, for building argument lists.
pub fn p(path: &Path) -> &OsStr {
    path.as_os_str()
}

/// A string argument as &OsStr.
pub fn s(text: &str) -> &OsStr {
    OsStr::new(text)
}

/// A short valid clip and the identity model in `dir`.
pub fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let clip = dir.join("clip.mp4");
    make_h264(&clip, "64x48", 25, 0.4);
    (clip, identity_model(dir))
}

/// `fresco run INPUT -o OUTPUT --model MODEL EXTRA...`.
pub fn run(input: &Path, output: &Path, model: &Path, extra: &[&str]) -> Out {
    let mut args = vec![
        s("run"),
        p(input),
        s("-o"),
        p(output),
        s("--model"),
        p(model),
    ];
    args.extend(extra.iter().map(|a| s(a)));
    fresco(args)
}
