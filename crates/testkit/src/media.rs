//! ffmpeg and ffprobe for tests: making clips with ffmpeg's generators, and decoding outputs
//! for checks (frame hashes and times, streams, pixels, PSNR).
//!
//! Every helper panics with the tool's stderr when the tool fails; ffmpeg and ffprobe must be
//! on PATH (scripts/setup.sh installs them).

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs a tool and returns stdout as bytes; panics (with stderr) on failure.
pub fn tool_bytes(program: &str, args: &[&OsStr]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (scripts/setup.sh installs it): {e}"));
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

/// `PROGRAM BEFORE... PATH AFTER...`, returning stdout; panics (with stderr) on failure.
pub fn read_out(program: &str, before: &[&str], path: &Path, after: &[&str]) -> Vec<u8> {
    let mut args = os_args(before);
    args.push(path.as_os_str());
    args.extend(after.iter().map(OsStr::new));
    tool_bytes(program, &args)
}

/// `ffmpeg -v error -y ARGS... OUT`.
pub fn ffmpeg(args: &[&str], out: &Path) {
    let mut all: Vec<&OsStr> = os_args(&["-nostdin", "-hide_banner", "-v", "error", "-y"]);
    all.extend(args.iter().map(OsStr::new));
    all.push(out.as_os_str());
    tool_bytes("ffmpeg", &all);
}

/// A stream copy of `input` into `out` whose video carries a rotation tag of 90 degrees, so
/// that players show it upright at the transposed size.
pub fn rotate_90(input: &Path, out: &Path) {
    ffmpeg(
        &[
            "-i",
            &input.to_string_lossy(),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
        ],
        out,
    );
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

/// `seconds` of 64x48 H.264 at 25 fps from testsrc2, with `extra` output options before the
/// path: the small clip of the hostile-input tests.
pub fn clip(out: &Path, seconds: &str, extra: &[&str]) {
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25",
        "-t",
        seconds,
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    ];
    args.extend_from_slice(extra);
    ffmpeg(&args, out);
}

/// `seconds` of 96x64 H.264 at 25 fps from testsrc2 with a 440 Hz tone (48 kHz) encoded with
/// `audio_codec`, in `out`'s container, with `extra` output options before the path.
pub fn av_clip(out: &Path, seconds: &str, audio_codec: &str, extra: &[&str]) {
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=96x64:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        seconds,
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        audio_codec,
    ];
    args.extend_from_slice(extra);
    ffmpeg(&args, out);
}

/// A variable-rate clip with an audio track: 96x64 testsrc2 at 30 fps with frames dropped in
/// an uneven pattern (gaps of 1 to 3 frames), a 440 Hz tone, `seconds` long.
pub fn make_vfr_clip_with_audio(out: &Path, seconds: u32) {
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=96x64:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            &seconds.to_string(),
            "-vf",
            "select='not(mod(n\\,3))+eq(mod(n\\,7)\\,1)'",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
        out,
    );
}

/// Per-frame md5 of the first video stream decoded to rgb24 (ffmpeg's default autorotation on).
pub fn frame_md5s(path: &Path) -> Vec<String> {
    md5_column(&read_out(
        "ffmpeg",
        &["-nostdin", "-v", "error", "-i"],
        path,
        FRAMEMD5,
    ))
}

/// Like [`frame_md5s`] with `-noautorotate`: the frames as stored.
pub fn frame_md5s_stored(path: &Path) -> Vec<String> {
    let before = ["-nostdin", "-v", "error", "-noautorotate", "-i"];
    md5_column(&read_out("ffmpeg", &before, path, FRAMEMD5))
}

const FRAMEMD5: &[&str] = &["-map", "0:v:0", "-f", "framemd5", "-pix_fmt", "rgb24", "-"];

/// The hash column of framemd5 output.
fn md5_column(text: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(text)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.rsplit(',').next().unwrap().trim().to_string())
        .collect()
}

/// Per-frame best-effort timestamps of the first video stream, in seconds.
pub fn frame_times(path: &Path) -> Vec<f64> {
    let entries = "frame=best_effort_timestamp_time";
    let before = [
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        entries,
        "-of",
        "csv=p=0",
    ];
    let text = read_out("ffprobe", &before, path, &[]);
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
    assert!(!input.is_empty(), "no timestamps read from the input");
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
    let after = ["-map", &map, "-c", "copy", "-f", "md5", "-"];
    let text = read_out("ffmpeg", &["-nostdin", "-v", "error", "-i"], path, &after);
    String::from_utf8_lossy(&text).trim().to_string()
}

/// `ffprobe -show_streams -show_format` as JSON.
pub fn probe(path: &Path) -> serde_json::Value {
    let before = [
        "-v",
        "error",
        "-show_streams",
        "-show_format",
        "-of",
        "json",
    ];
    serde_json::from_slice(&read_out("ffprobe", &before, path, &[])).expect("ffprobe json")
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
    let after = ["-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"];
    let raw = read_out("ffmpeg", &["-nostdin", "-v", "error", "-i"], path, &after);
    let frame = (w * h * 3) as usize;
    assert!(
        frame > 0 && raw.chunks_exact(frame).remainder().is_empty(),
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

/// sha256 of a file, via `sha256sum`.
pub fn sha256(path: &Path) -> String {
    let out = tool_bytes("sha256sum", &[path.as_os_str()]);
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A Matroska copy of `source` with `chapters` chapters (from an ffmetadata file written beside
/// `out` and removed afterwards), at `out`: a file whose header alone is large.
pub fn chapter_bomb(source: &Path, chapters: usize, out: &Path) {
    let mut meta = String::from(";FFMETADATA1\n");
    for i in 0..chapters {
        meta.push_str(&format!(
            "[CHAPTER]\nTIMEBASE=1/1000\nSTART={i}\nEND={}\ntitle=chapter {i}\n",
            i + 1
        ));
    }
    let meta_path = out.with_extension(format!("chapters-{chapters}.txt"));
    std::fs::write(&meta_path, meta).unwrap();
    let (source, meta) = (source.to_str().unwrap(), meta_path.to_str().unwrap());
    let args = [
        "-i",
        source,
        "-i",
        meta,
        "-map",
        "0",
        "-map_metadata",
        "1",
        "-map_chapters",
        "1",
        "-c",
        "copy",
    ];
    ffmpeg(&args, out);
    std::fs::remove_file(meta_path).unwrap();
}

#[cfg(test)]
mod tests {
    use super::psnr;

    #[test]
    fn psnr_is_infinite_for_equal_buffers_and_falls_with_the_error() {
        let a = [10u8, 20, 30, 40];
        assert_eq!(psnr(&a, &a), f64::INFINITY);
        // One step off everywhere: MSE 1, so 10 log10(255^2) = 48.13 dB.
        let b = [11u8, 21, 31, 41];
        assert!((psnr(&a, &b) - 48.1308).abs() < 1e-3, "{}", psnr(&a, &b));
        let c = [20u8, 30, 40, 50];
        assert!(psnr(&a, &c) < psnr(&a, &b));
    }
}
