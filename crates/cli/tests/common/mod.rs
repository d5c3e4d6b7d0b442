//! Helpers shared by the end-to-end tests of the `fresco` command: running the binary with a
//! timeout, its built-in models and its argument lists. Clips, checks of outputs and processes
//! come from `fresco-testkit` (re-exported here, so a test file has one `use common::*`).
#![allow(dead_code, unused_imports)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub mod api;
pub mod jobs;
pub mod objects;
pub mod outputs;
pub mod scoring;
pub use fresco_testkit::media::*;
pub use fresco_testkit::process::{
    run_measured, run_with_timeout, terminate, word_after, LogTo, Out,
};

/// How long one `fresco` run may take before the test calls it hung.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(300);

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

/// `bytes` (a model built by the test) written to `dir/name`: its path.
pub fn write_model(dir: &Path, name: &str, bytes: Vec<u8>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
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

/// Polls `GET BASE/v1/jobs/ID` with `token` until the job has succeeded, and returns it; fails
/// (showing `log`, the server's or worker's) when it fails, is canceled, or takes over 3 minutes.
pub fn wait_succeeded(base: &str, token: &str, id: &str, log: &Path) -> serde_json::Value {
    let mut job = serde_json::Value::Null;
    fresco_testkit::process::wait_until(Duration::from_secs(180), "the job to succeed", || {
        job = fresco_testkit::http::get(&format!("{base}/v1/jobs/{id}"))
            .bearer(token)
            .call()
            .ok()
            .json();
        match job["state"].as_str().unwrap() {
            "succeeded" => true,
            "failed" | "canceled" => panic!(
                "job ended {}: {job}\n{}",
                job["state"],
                fresco_testkit::process::read_log(log)
            ),
            _ => false,
        }
    });
    job
}

/// Inserts an EXIF APP1 segment with Orientation = `orientation` right after the JPEG's SOI.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    assert_eq!(&jpeg[..2], [0xFF, 0xD8], "not a JPEG");
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec(); // big-endian TIFF header, IFD0 at 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}
