//! Helpers shared by the end-to-end tests of the `fresco` command: making tiny clips with
//! ffmpeg's generators, running the binary with a timeout, and decoding outputs for checks.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    cmd.env_remove("FRESCO_MODEL_DIR")
        .env("FRESCO_MODEL_URL", "http://127.0.0.1:9/")
        .env_remove("FRESCO_FFMPEG")
        .env_remove("FRESCO_FFPROBE")
        .env("NO_COLOR", "1");
    cmd
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

/// Runs a tool and returns stdout as bytes; panics (with stderr) on failure.
pub fn tool_bytes(program: &str, args: &[&OsStr]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn os_args<'a>(args: &'a [&'a str]) -> Vec<&'a OsStr> {
    args.iter().map(OsStr::new).collect()
}

/// `ffmpeg -v error -y ARGS... OUT`.
pub fn ffmpeg(args: &[&str], out: &Path) {
    let mut all: Vec<&OsStr> = os_args(&["-nostdin", "-hide_banner", "-v", "error", "-y"]);
    all.extend(args.iter().map(OsStr::new));
    all.push(out.as_os_str());
    tool_bytes("ffmpeg", &all);
}

/// A testsrc2 clip: `size` like "96x64", `rate` frames per second, `seconds` long, encoded with
/// `codec_args` (e.g. `["-c:v", "libx264", "-pix_fmt", "yuv420p"]`).
pub fn make_video(out: &Path, size: &str, rate: u32, seconds: f64, codec_args: &[&str]) {
    let src = format!("testsrc2=size={size}:rate={rate}");
    let t = format!("{seconds}");
    let mut args = vec!["-f", "lavfi", "-i", &src, "-t", &t];
    args.extend_from_slice(codec_args);
    ffmpeg(&args, out);
}

/// A small H.264 clip in the container of `out`'s extension.
pub fn make_h264(out: &Path, size: &str, rate: u32, seconds: f64) {
    make_video(
        out,
        size,
        rate,
        seconds,
        &["-c:v", "libx264", "-pix_fmt", "yuv420p"],
    );
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

/// Per-frame md5 of the first video stream decoded to rgb24 (ffmpeg's default autorotation on).
pub fn frame_md5s(path: &Path) -> Vec<String> {
    let text = tool_bytes(
        "ffmpeg",
        &[
            OsStr::new("-nostdin"),
            OsStr::new("-v"),
            OsStr::new("error"),
            OsStr::new("-i"),
            path.as_os_str(),
            OsStr::new("-map"),
            OsStr::new("0:v:0"),
            OsStr::new("-f"),
            OsStr::new("framemd5"),
            OsStr::new("-pix_fmt"),
            OsStr::new("rgb24"),
            OsStr::new("-"),
        ],
    );
    String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.rsplit(',').next().unwrap().trim().to_string())
        .collect()
}

/// Like [`frame_md5s`] with `-noautorotate`: the frames as stored.
pub fn frame_md5s_stored(path: &Path) -> Vec<String> {
    let text = tool_bytes(
        "ffmpeg",
        &[
            OsStr::new("-nostdin"),
            OsStr::new("-v"),
            OsStr::new("error"),
            OsStr::new("-noautorotate"),
            OsStr::new("-i"),
            path.as_os_str(),
            OsStr::new("-map"),
            OsStr::new("0:v:0"),
            OsStr::new("-f"),
            OsStr::new("framemd5"),
            OsStr::new("-pix_fmt"),
            OsStr::new("rgb24"),
            OsStr::new("-"),
        ],
    );
    String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.rsplit(',').next().unwrap().trim().to_string())
        .collect()
}

/// Per-frame best-effort timestamps of the first video stream, in seconds.
pub fn frame_times(path: &Path) -> Vec<f64> {
    let text = tool_bytes(
        "ffprobe",
        &[
            OsStr::new("-v"),
            OsStr::new("error"),
            OsStr::new("-select_streams"),
            OsStr::new("v:0"),
            OsStr::new("-show_entries"),
            OsStr::new("frame=best_effort_timestamp_time"),
            OsStr::new("-of"),
            OsStr::new("csv=p=0"),
            path.as_os_str(),
        ],
    );
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| l.split(',').next())
        .filter(|f| !f.trim().is_empty())
        .map(|f| {
            f.trim()
                .parse::<f64>()
                .unwrap_or_else(|e| panic!("bad timestamp {f:?}: {e}"))
        })
        .collect()
}

/// Asserts two timestamp lists are equal within 1e-4 s.
pub fn assert_same_times(input: &[f64], output: &[f64]) {
    assert_eq!(
        input.len(),
        output.len(),
        "frame counts differ: input {input:?}, output {output:?}"
    );
    for (i, (a, b)) in input.iter().zip(output).enumerate() {
        assert!(
            (a - b).abs() < 1e-4,
            "frame {i}: input at {a}s, output at {b}s\ninput {input:?}\noutput {output:?}"
        );
    }
}

/// md5 of the packets of audio stream `n` (stream copy, so the coded data itself).
pub fn audio_md5(path: &Path, n: usize) -> String {
    let map = format!("0:a:{n}");
    let text = tool_bytes(
        "ffmpeg",
        &[
            OsStr::new("-nostdin"),
            OsStr::new("-v"),
            OsStr::new("error"),
            OsStr::new("-i"),
            path.as_os_str(),
            OsStr::new("-map"),
            OsStr::new(&map),
            OsStr::new("-c"),
            OsStr::new("copy"),
            OsStr::new("-f"),
            OsStr::new("md5"),
            OsStr::new("-"),
        ],
    );
    String::from_utf8_lossy(&text).trim().to_string()
}

/// `ffprobe -show_streams -show_format` as JSON.
pub fn probe(path: &Path) -> serde_json::Value {
    let text = tool_bytes(
        "ffprobe",
        &[
            OsStr::new("-v"),
            OsStr::new("error"),
            OsStr::new("-show_streams"),
            OsStr::new("-show_format"),
            OsStr::new("-of"),
            OsStr::new("json"),
            path.as_os_str(),
        ],
    );
    serde_json::from_slice(&text).expect("ffprobe json")
}

/// The streams of a file by `codec_type`.
pub fn streams_of(path: &Path, kind: &str) -> Vec<serde_json::Value> {
    probe(path)["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["codec_type"] == kind)
        .cloned()
        .collect()
}

/// Coded width and height of the first video stream.
pub fn video_size(path: &Path) -> (u64, u64) {
    let v = &streams_of(path, "video")[0];
    (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap())
}

/// Pixel format of the first video stream.
pub fn video_pix_fmt(path: &Path) -> String {
    streams_of(path, "video")[0]["pix_fmt"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Container duration in seconds.
pub fn duration(path: &Path) -> f64 {
    probe(path)["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no duration for {}", path.display()))
}

/// All frames of the first video stream decoded to rgb24, with the frame size.
pub fn decode_rgb(path: &Path) -> (u32, u32, Vec<Vec<u8>>) {
    let (w, h) = displayed_size(path);
    let raw = tool_bytes(
        "ffmpeg",
        &[
            OsStr::new("-nostdin"),
            OsStr::new("-v"),
            OsStr::new("error"),
            OsStr::new("-i"),
            path.as_os_str(),
            OsStr::new("-map"),
            OsStr::new("0:v:0"),
            OsStr::new("-f"),
            OsStr::new("rawvideo"),
            OsStr::new("-pix_fmt"),
            OsStr::new("rgb24"),
            OsStr::new("-"),
        ],
    );
    let frame = (w * h * 3) as usize;
    assert!(
        frame > 0 && raw.len() % frame == 0,
        "{} bytes is not whole {w}x{h} frames",
        raw.len()
    );
    (w, h, raw.chunks(frame).map(|c| c.to_vec()).collect())
}

/// Size after rotation (images and unrotated videos: the coded size).
pub fn displayed_size(path: &Path) -> (u32, u32) {
    let v = &streams_of(path, "video")[0];
    let (w, h) = (
        v["width"].as_u64().unwrap() as u32,
        v["height"].as_u64().unwrap() as u32,
    );
    let rotation = v["side_data_list"]
        .as_array()
        .and_then(|l| l.iter().find_map(|s| s["rotation"].as_i64()))
        .unwrap_or(0);
    if rotation.rem_euclid(180) == 90 {
        (h, w)
    } else {
        (w, h)
    }
}

/// PSNR in dB between two equally sized 8-bit buffers (infinite when equal).
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "PSNR of buffers of different sizes");
    let sse: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    if sse == 0.0 {
        return f64::INFINITY;
    }
    let mse = sse / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
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

/// sha256 of a file, via `sha256sum`.
pub fn sha256(path: &Path) -> String {
    let out = tool_bytes("sha256sum", &[path.as_os_str()]);
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A path argument as &OsStr, for building argument lists.
pub fn p(path: &Path) -> &OsStr {
    path.as_os_str()
}

/// A string argument as &OsStr.
pub fn s(text: &str) -> &OsStr {
    OsStr::new(text)
}
