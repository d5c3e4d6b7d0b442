//! How a records job finds its sampled frames: a chunk late in a clip seeks to just before its
//! range (it does not decode from the input's start) and still gives exactly the rows of a
//! run that decodes the clip whole; and `--fps` on a variable-rate clip picks, for each 1/R s
//! slot, the first frame at or after it, checked against ffprobe's own frame times. The
//! classifier comes from `$FRESCO_MODEL_DIR/scoring`; the tests skip, saying so, without it.
//! A record's `time` counts from the stream's first frame, its `pts` is the container's.

mod common;

use std::path::{Path, PathBuf};

use common::scoring::jsonl_rows;
use common::*;

/// `$FRESCO_MODEL_DIR/scoring/efficientnet-lite0.onnx`, or why not.
fn classifier() -> Option<PathBuf> {
    common::scoring::scoring_models().map(|dir| dir.join("efficientnet-lite0.onnx"))
}

/// `fresco run INPUT -o OUT --model MODEL --task classify ARGS` with a queue of its own in
/// `dir`, and its `--json` summary.
fn classify(
    dir: &Path,
    input: &Path,
    out: &Path,
    model: &Path,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> serde_json::Value {
    std::fs::create_dir_all(dir).unwrap();
    let mut all: Vec<String> = ["run", "-o", "--model", "--task", "classify"]
        .map(String::from)
        .to_vec();
    all.insert(1, input.display().to_string());
    all.insert(3, out.display().to_string());
    all.insert(5, model.display().to_string());
    all.extend(args.iter().map(|a| a.to_string()));
    all.extend([
        "--workers".into(),
        "1".into(),
        "--json".into(),
        "--db".into(),
        format!("sqlite://{}?mode=rwc", dir.join("queue.db").display()),
        "--work-dir".into(),
        dir.join("work").display().to_string(),
    ]);
    fresco_env(all, env).ok().json()
}

/// The frame index and time of each row.
fn frames_and_times(rows: &[serde_json::Value]) -> Vec<(u64, f64)> {
    rows.iter()
        .map(|r| (r["frame"].as_u64().unwrap(), r["time"].as_f64().unwrap()))
        .collect()
}

#[test]
fn a_late_chunk_seeks_and_gives_the_rows_of_a_whole_clip_run() {
    let Some(model) = classifier() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // 24 s at 25 frames/s with a keyframe every 2 s: chunks of 100 frames (4 s) from frame 200
    // on start more than the 5 s margin into the clip.
    let input = dir.path().join("clip.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25:duration=24",
            "-c:v",
            "libx264",
            "-g",
            "50",
            "-pix_fmt",
            "yuv420p",
        ],
        &input,
    );
    let log = dir.path().join("ffmpeg.log");
    let logged = logging_ffmpeg(dir.path(), &log);
    let chunked = dir.path().join("chunked.jsonl");
    let json = classify(
        &dir.path().join("a"),
        &input,
        &chunked,
        &model,
        &["--every", "10", "--chunk-frames", "100"],
        &[("FRESCO_FFMPEG", logged.as_os_str())],
    );
    assert_eq!(json["outputs"][0]["rows"], 60, "{json}");
    // One chunk of the whole clip: decoded from its start.
    let whole = dir.path().join("whole.jsonl");
    classify(
        &dir.path().join("b"),
        &input,
        &whole,
        &model,
        &["--every", "10", "--chunk-frames", "600"],
        &[],
    );
    let (a, b) = (jsonl_rows(&chunked), jsonl_rows(&whole));
    let expected: Vec<(u64, f64)> = (0..600).step_by(10).map(|n| (n, n as f64 / 25.0)).collect();
    assert_eq!(frames_and_times(&a), expected);
    assert_eq!(frames_and_times(&b), expected);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x["pts"], y["pts"]);
        let (cx, cy) = (
            x["classes"].as_array().unwrap(),
            y["classes"].as_array().unwrap(),
        );
        assert_eq!(cx.len(), cy.len());
        for (p, q) in cx.iter().zip(cy) {
            assert_eq!(p["index"], q["index"], "frame {}: {x} / {y}", x["frame"]);
            let (sp, sq) = (p["score"].as_f64().unwrap(), q["score"].as_f64().unwrap());
            assert!((sp - sq).abs() < 1e-5, "frame {}: {sp} / {sq}", x["frame"]);
        }
    }
    // The decoders of the chunked run: one per chunk (no fallback to counting from the start),
    // and each chunk from frame 200 on seeks to 5 s before its first frame, before the input.
    let decoders: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("rawvideo"))
        .map(String::from)
        .collect();
    assert_eq!(decoders.len(), 6, "{decoders:#?}");
    let mut seeks: Vec<f64> = decoders
        .iter()
        .filter_map(|l| {
            let words: Vec<&str> = l.split(' ').collect();
            let at = words.iter().position(|w| *w == "-ss")?;
            let input_at = words.iter().position(|w| *w == "-i").unwrap();
            assert!(at < input_at, "an input seek: {l}");
            Some(words[at + 1].parse().unwrap())
        })
        .collect();
    seeks.sort_by(f64::total_cmp);
    assert_eq!(seeks, [3.0, 7.0, 11.0, 15.0], "{decoders:#?}");
}

#[test]
fn fps_on_a_variable_rate_clip_picks_the_first_frame_of_each_slot() {
    let Some(model) = classifier() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // 200 frames whose spacing grows from 20 ms to 80 ms (times in ms: 20n + 0.15n^2), about 10 s.
    let input = dir.path().join("vfr.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25:duration=8",
            "-vf",
            "settb=1/1000,setpts=floor(20*N+0.15*N*N)",
            "-fps_mode",
            "passthrough",
            "-enc_time_base",
            "1:1000",
            "-video_track_timescale",
            "1000",
            "-c:v",
            "libx264",
            "-g",
            "30",
            "-pix_fmt",
            "yuv420p",
        ],
        &input,
    );
    let times = frame_times(&input);
    assert_eq!(times.len(), 200);
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps[0] < 0.03 && gaps[198] > 0.07,
        "not variable-rate: {gaps:?}"
    );
    // The rule, computed from ffprobe's times: slot k at t0 + k/R takes the first frame at or
    // after it (a microsecond of tolerance), each frame once.
    let rate = 15.0;
    let t0 = times[0];
    let mut expected: Vec<(u64, f64)> = Vec::new();
    for k in 0.. {
        let slot = t0 + k as f64 / rate;
        let Some(i) = times.iter().position(|t| *t >= slot - 1e-6) else {
            break;
        };
        if expected.last().map(|e| e.0) != Some(i as u64) {
            expected.push((i as u64, times[i]));
        }
    }
    assert!(expected.len() > 50, "{}", expected.len());
    let out = dir.path().join("vfr.jsonl");
    let json = classify(
        &dir.path().join("q"),
        &input,
        &out,
        &model,
        &["--fps", "15", "--chunk-frames", "40"],
        &[],
    );
    assert_eq!(json["outputs"][0]["rows"], expected.len() as u64, "{json}");
    let got = frames_and_times(&jsonl_rows(&out));
    assert_eq!(got.len(), expected.len());
    for ((frame, time), (want_frame, want_time)) in got.iter().zip(&expected) {
        assert_eq!(frame, want_frame, "{got:?}\n{expected:?}");
        assert!(
            (time - want_time).abs() < 1e-6,
            "frame {frame}: {time} / {want_time}"
        );
    }
    // The same rows when the clip is one chunk.
    let whole = dir.path().join("whole.jsonl");
    classify(
        &dir.path().join("w"),
        &input,
        &whole,
        &model,
        &["--fps", "15", "--chunk-frames", "1000"],
        &[],
    );
    assert_eq!(frames_and_times(&jsonl_rows(&whole)), got);
}

/// `time` counts from the stream's first frame while `pts` keeps the container's timestamps: a
/// Matroska clip written with a 10 s offset and an MPEG-TS (whose timestamps start at 1.4 s)
/// both give 0.0 for their first row. Needs no real model: the identity scored as `tensors`.
#[test]
fn time_counts_from_the_streams_first_frame_and_pts_keeps_the_containers() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    let cases: [(&str, &[&str], i64); 2] = [
        ("offset.mkv", &["-output_ts_offset", "10"], 1000),
        ("clip.ts", &[], 90_000),
    ];
    for (name, extra, ticks_per_second) in cases {
        let clip = dir.path().join(name);
        let mut args = vec![
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=32x24:rate=10",
            "-frames:v",
            "6",
            "-c:v",
            "libx264",
        ];
        args.extend(extra);
        ffmpeg(&args, &clip);
        let raw = frame_times(&clip);
        assert!(raw[0] > 1.0, "{name}: its timestamps start at {}", raw[0]);
        let out = dir.path().join(format!("{name}.jsonl"));
        let mut run_args: Vec<String> = vec![
            "run".into(),
            clip.display().to_string(),
            "-o".into(),
            out.display().to_string(),
            "--model".into(),
            model.display().to_string(),
            "--task".into(),
            "tensors".into(),
            "--input-size".into(),
            "4x4".into(),
        ];
        let queue = dir.path().join(format!("{name}.queue"));
        std::fs::create_dir(&queue).unwrap();
        run_args.extend(common::scoring::queue_flags(&queue));
        fresco(run_args).ok();
        let rows = jsonl_rows(&out);
        assert_eq!(rows.len(), raw.len(), "{name}");
        for (row, t) in rows.iter().zip(&raw) {
            let time = row["time"].as_f64().unwrap();
            assert!(
                (time - (t - raw[0])).abs() < 1e-6,
                "{name}: time {time} where {} s after the first frame",
                t - raw[0]
            );
            // pts is the container's own, in its time base.
            let pts = row["pts"].as_i64().unwrap();
            assert_eq!(pts, (t * ticks_per_second as f64).round() as i64, "{name}");
        }
        assert_eq!(rows[0]["time"].as_f64(), Some(0.0), "{name}");
    }
}
