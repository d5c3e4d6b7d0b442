//! The NUT writer against the real thing: ffmpeg/ffprobe from PATH must read back exactly the
//! timestamps and bytes that were written, from a file and through a pipe.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use fresco_media::nut::{NutVideoSpec, NutWriter, RawPixelFormat};
use serde_json::Value;

fn spec(width: u32, height: u32, pix_fmt: RawPixelFormat, num: u64, den: u64) -> NutVideoSpec {
    NutVideoSpec {
        width,
        height,
        pix_fmt,
        time_base_num: num,
        time_base_den: den,
    }
}

/// Deterministic bytes that differ per frame and per position (so swapped rows, frames or
/// channels all show up).
fn frame_content(spec: &NutVideoSpec, index: usize) -> Vec<u8> {
    (0..spec.frame_bytes())
        .map(|i| (i.wrapping_mul(31) ^ (i >> 7) ^ index.wrapping_mul(97)) as u8)
        .collect()
}

fn frames_for(spec: &NutVideoSpec, count: usize) -> Vec<Vec<u8>> {
    (0..count).map(|i| frame_content(spec, i)).collect()
}

fn write_nut_file(path: &Path, spec: NutVideoSpec, pts: &[i64], frames: &[Vec<u8>]) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut writer = NutWriter::new(file, spec).unwrap();
    for (&p, data) in pts.iter().zip(frames) {
        writer.write_frame(p, data).unwrap();
    }
    writer
        .finish()
        .unwrap()
        .into_inner()
        .unwrap()
        .sync_all()
        .unwrap();
}

/// True for the one error ffmpeg 5.1 logs about our files: with a seekable input and no index,
/// the NUT demuxer estimates the duration by scanning back from the end for a syncpoint, and
/// logs "read_timestamp failed." for every window (1 KiB, doubling) that holds none. The pts it
/// then reports are right; a pipe input never does this.
fn is_known_nut_file_noise(line: &str) -> bool {
    (line.starts_with("[nut @ ") && line.ends_with("] read_timestamp failed."))
        || (line.starts_with("Last message repeated ") && line.ends_with(" times"))
}

/// Runs a command (stdin closed), asserts it succeeds and logs nothing at `-v error` beyond
/// [`is_known_nut_file_noise`], returns its stdout.
fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} must be on PATH: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?} failed: {stderr}");
    let complaints: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_known_nut_file_noise(l))
        .collect();
    assert!(
        complaints.is_empty(),
        "{program} {args:?} complained: {stderr}"
    );
    out.stdout
}

struct Probed {
    codec_name: String,
    time_base: String,
    /// (pts, width, height, pix_fmt) per decoded frame.
    frames: Vec<(i64, u64, u64, String)>,
}

fn probe(path: &Path) -> Probed {
    let json = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_frames",
            "-show_entries",
            "stream=codec_name,time_base:frame=pts,width,height,pix_fmt",
            "-of",
            "json",
            path.to_str().unwrap(),
        ],
    );
    let v: Value = serde_json::from_slice(&json).unwrap();
    let stream = &v["streams"][0];
    let frames = v["frames"]
        .as_array()
        .expect("frames array")
        .iter()
        .map(|f| {
            (
                f["pts"].as_i64().expect("pts"),
                f["width"].as_u64().expect("width"),
                f["height"].as_u64().expect("height"),
                f["pix_fmt"].as_str().expect("pix_fmt").to_owned(),
            )
        })
        .collect();
    Probed {
        codec_name: stream["codec_name"].as_str().unwrap().to_owned(),
        time_base: stream["time_base"].as_str().unwrap().to_owned(),
        frames,
    }
}

/// Every frame ffmpeg decodes from `path`, as raw `pix_fmt` bytes, no frames dropped or
/// duplicated. Without `-enc_time_base -1` ffmpeg 5.1 rounds pts to 1/guessed-frame-rate, which
/// merges close frames (1000 and 1001 ms) into equal, rejected timestamps.
fn decode(path: &Path, pix_fmt: &str) -> Vec<u8> {
    run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            path.to_str().unwrap(),
            "-f",
            "rawvideo",
            "-pix_fmt",
            pix_fmt,
            "-fps_mode",
            "passthrough",
            "-enc_time_base",
            "-1",
            "pipe:1",
        ],
    )
}

fn assert_frames(probed: &Probed, spec: &NutVideoSpec, pts: &[i64]) {
    let got: Vec<i64> = probed.frames.iter().map(|f| f.0).collect();
    assert_eq!(got, pts, "pts read back");
    for (_, w, h, fmt) in &probed.frames {
        assert_eq!((*w, *h), (spec.width.into(), spec.height.into()));
        assert_eq!(fmt, spec.pix_fmt.ffmpeg_name());
    }
}

/// Sends frames into `ffmpeg -f nut -i pipe:0 <output args>` and asserts it exits cleanly.
fn pipe_into_ffmpeg(spec: NutVideoSpec, pts: &[i64], frames: &[Vec<u8>], output_args: &[&str]) {
    let mut child = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "nut", "-i", "pipe:0"])
        .args(output_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg must be on PATH");
    let mut writer = NutWriter::new(child.stdin.take().unwrap(), spec).unwrap();
    for (&p, data) in pts.iter().zip(frames) {
        writer.write_frame(p, data).unwrap();
    }
    let mut stdin = writer.finish().unwrap();
    stdin.flush().unwrap();
    drop(stdin); // EOF ends the input
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ffmpeg failed reading NUT from a pipe: {stderr}"
    );
    assert!(stderr.trim().is_empty(), "ffmpeg complained: {stderr}");
}

#[test]
fn irregular_pts_and_exact_bytes_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let pts = [0, 1, 3, 7, 8, 20, 21, 100, 101, 5000];
    for (num, den) in [(1, 90_000), (1001, 30_000)] {
        let spec = spec(33, 17, RawPixelFormat::Rgb24, num, den);
        let frames = frames_for(&spec, pts.len());
        let path = dir.path().join(format!("odd_{num}_{den}.nut"));
        write_nut_file(&path, spec, &pts, &frames);

        let probed = probe(&path);
        assert_eq!(probed.codec_name, "rawvideo");
        assert_eq!(probed.time_base, format!("{num}/{den}"));
        assert_frames(&probed, &spec, &pts);
        assert!(
            decode(&path, "rgb24") == frames.concat(),
            "decoded bytes differ ({num}/{den})"
        );
    }
}

#[test]
fn pipe_into_ffmpeg_keeps_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    // Whole milliseconds (Matroska stores 1/1000) written in 1/90000: 90 ticks per ms.
    let millis = [0, 40, 80, 200, 207, 1000, 1001, 1500];
    let pts: Vec<i64> = millis.iter().map(|ms| ms * 90).collect();
    let spec = spec(33, 17, RawPixelFormat::Rgb24, 1, 90_000);
    let frames = frames_for(&spec, pts.len());
    let mkv = dir.path().join("out.mkv");
    let mkv_str = mkv.to_str().unwrap();
    // ffmpeg 5.1 otherwise encodes in 1/guessed-frame-rate and rounds every pts to it (here
    // 40 ms -> 42, and 200 and 207 both -> 209); `-enc_time_base -1` keeps the input's 1/90000.
    pipe_into_ffmpeg(
        spec,
        &pts,
        &frames,
        &[
            "-c:v",
            "ffv1",
            "-fps_mode",
            "passthrough",
            "-enc_time_base",
            "-1",
            mkv_str,
        ],
    );

    let probed = probe(&mkv);
    assert_eq!(probed.codec_name, "ffv1");
    assert_eq!(probed.time_base, "1/1000");
    let got: Vec<i64> = probed.frames.iter().map(|f| f.0).collect();
    assert_eq!(got, millis, "frame count and pts after the pipe");
    // ffv1 is lossless, so the pixels survived too.
    assert!(
        decode(&mkv, "rgb24") == frames.concat(),
        "decoded bytes differ"
    );
}

#[test]
fn rgb48le_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let pts = [0, 2, 3, 10];
    let spec = spec(33, 17, RawPixelFormat::Rgb48le, 1, 90_000);
    let frames = frames_for(&spec, pts.len());
    let path = dir.path().join("deep.nut");
    write_nut_file(&path, spec, &pts, &frames);

    let probed = probe(&path);
    assert_eq!(probed.codec_name, "rawvideo");
    assert_frames(&probed, &spec, &pts);
    assert!(
        decode(&path, "rgb48le") == frames.concat(),
        "decoded bytes differ"
    );
}

#[test]
fn full_hd_frames_from_a_file_and_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let pts = [0, 3003, 9009];
    let spec = spec(1920, 1080, RawPixelFormat::Rgb24, 1, 90_000);
    let frames = frames_for(&spec, pts.len());
    let expected = frames.concat();

    let path = dir.path().join("big.nut");
    write_nut_file(&path, spec, &pts, &frames);
    assert_frames(&probe(&path), &spec, &pts);
    assert!(
        decode(&path, "rgb24") == expected,
        "decoded bytes differ (file)"
    );

    let raw = dir.path().join("big.rgb");
    let raw_str = raw.to_str().unwrap();
    pipe_into_ffmpeg(
        spec,
        &pts,
        &frames,
        &[
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-fps_mode",
            "passthrough",
            "-enc_time_base",
            "-1",
            raw_str,
        ],
    );
    assert!(
        std::fs::read(&raw).unwrap() == expected,
        "decoded bytes differ (pipe)"
    );
}
