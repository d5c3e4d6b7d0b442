//! Containers as users have them (issue 19), each made here with ffmpeg's generators and run
//! through `fresco run` and through a pool of `fresco worker`s: a WebM (VP9 by default, Opus
//! kept, AAC or an H.264 `--codec` refused), a fansub Matroska with ASS subtitles and a font
//! attachment (tags kept; refused into MP4), an MPEG-4 Part 2 + MP3 AVI (frame times exact),
//! and a transport stream whose picture size changes mid-stream (styled at the first size) or
//! whose frame times restart (refused). Refusals must come when the job is planned: no frame
//! is decoded for the model (a logging ffmpeg shows no `rawvideo` decoder) and no chunk is
//! scored; in a pool, the plan fails once and is not retried.

mod common;

use common::jobs::*;
use common::*;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const JOB_TIMEOUT: Duration = Duration::from_secs(180);
const FONT_MIME: &str = "application/x-truetype-font";

// ---- inputs -------------------------------------------------------------------------------

/// A fansub-style Matroska: H.264, Opus, ASS subtitles and a font attachment with its
/// `filename` and `mimetype` tags, 1 s.
fn make_fansub_mkv(dir: &Path, out: &Path) {
    let ass = dir.join("subs.ass");
    std::fs::write(
        &ass,
        "[Script Info]\nScriptType: v4.00+\nPlayResX: 96\nPlayResY: 64\n\n[V4+ Styles]\n\
         Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, \
         BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, \
         BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n\
         Style: Default,Test Sans,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,\
         100,0,0,1,1,0,2,10,10,10,1\n\n[Events]\n\
         Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n\
         Dialogue: 0,0:00:00.20,0:00:00.80,Default,,0,0,0,,Hello\n",
    )
    .unwrap();
    // Any bytes do for a font here: ffmpeg copies attachments without reading them.
    let font = dir.join("TestSans.ttf");
    std::fs::write(
        &font,
        (0..1500u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let mime = format!("mimetype={FONT_MIME}");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=96x64:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-i",
            ass.to_str().unwrap(),
            "-map",
            "0",
            "-map",
            "1",
            "-map",
            "2",
            "-t",
            "1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "libopus",
            "-c:s",
            "ass",
            "-attach",
            font.to_str().unwrap(),
            "-metadata:s:t",
            &mime,
            "-metadata:s:a",
            "language=jpn",
        ],
        out,
    );
}

/// An old AVI: MPEG-4 Part 2 video and MP3 audio, 2 s at 25 fps.
fn make_old_avi(out: &Path) {
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=96x64:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "2",
            "-c:v",
            "mpeg4",
            "-c:a",
            "libmp3lame",
        ],
        out,
    );
}

/// Two transport-stream segments of different picture sizes (96x64, then 64x48), 1 s each,
/// joined by concatenating the files. With `continuous`, the second one's times follow the
/// first (one recording whose picture changes); without, they restart (two recordings cut
/// together).
fn make_two_size_ts(dir: &Path, out: &Path, continuous: bool) {
    let first = dir.join("part1.ts");
    let second = dir.join("part2.ts");
    let common = [
        "-c:v",
        "libx264",
        "-bf",
        "0",
        "-muxdelay",
        "0",
        "-muxpreload",
        "0",
    ];
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=96x64:rate=25",
        "-t",
        "1",
    ];
    args.extend(common);
    args.extend(["-f", "mpegts"]);
    ffmpeg(&args, &first);
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25",
        "-t",
        "1",
    ];
    args.extend(common);
    if continuous {
        args.extend(["-output_ts_offset", "1"]);
    }
    args.extend(["-f", "mpegts"]);
    ffmpeg(&args, &second);
    let mut joined = std::fs::read(&first).unwrap();
    joined.extend(std::fs::read(&second).unwrap());
    std::fs::write(out, joined).unwrap();
}

// ---- checks -------------------------------------------------------------------------------

/// Frame count and every frame's time of `output` equal those of `input`, and the duration is
/// within one frame.
fn assert_same_timing(input: &Path, output: &Path) {
    let (t_in, t_out) = (frame_times(input), frame_times(output));
    assert_same_times(&t_in, &t_out);
    let (d_in, d_out) = (duration(input), duration(output));
    assert!(
        (d_in - d_out).abs() <= 0.04 + 1e-3,
        "{}: duration {d_in} s became {d_out} s",
        output.display()
    );
}

/// Each audio stream starts where the input's does (sync kept), to the millisecond.
fn assert_audio_starts_alike(input: &Path, output: &Path) {
    let starts = |path: &Path| -> Vec<String> {
        streams_of(path, "audio")
            .iter()
            .map(|a| a["start_time"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    assert_eq!(
        starts(input),
        starts(output),
        "{}: audio moved",
        output.display()
    );
}

/// A non-video stream: codec_type, codec_name, and the tags we care about.
type StreamSummary = (String, String, Vec<(String, String)>);

/// The non-video streams of a file.
fn other_streams(path: &Path) -> Vec<StreamSummary> {
    probe(path)["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["codec_type"] != "video")
        .map(|s| {
            let mut tags: Vec<(String, String)> = ["filename", "mimetype", "language"]
                .iter()
                .filter_map(|k| {
                    s["tags"][*k]
                        .as_str()
                        .map(|v| (k.to_string(), v.to_string()))
                })
                .collect();
            tags.sort();
            (
                s["codec_type"].as_str().unwrap_or("").to_string(),
                s["codec_name"].as_str().unwrap_or("").to_string(),
                tags,
            )
        })
        .collect()
}

/// The bytes of the first attachment, as ffmpeg extracts them.
fn attachment_bytes(path: &Path, dir: &Path) -> Vec<u8> {
    let target = dir.join(format!(
        "dumped-{}",
        path.file_name().unwrap().to_string_lossy()
    ));
    // ffmpeg dumps, then complains that there is no output file: ignore its status.
    let _ = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-dump_attachment:t:0"])
        .arg(&target)
        .arg("-i")
        .arg(path)
        .output()
        .unwrap();
    std::fs::read(&target).unwrap_or_default()
}

/// A logging ffmpeg in `dir` and its log.
fn logged_ffmpeg(dir: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("ffmpeg-calls.log");
    (logging_ffmpeg(dir, &log), log)
}

/// The job stopped at its plan: no ffmpeg call decoded frames for the model (`-f rawvideo`) or
/// encoded a chunk (`-f nut`).
fn assert_nothing_scored(ffmpeg_log: &Path) {
    let calls = read_log(ffmpeg_log);
    assert!(
        !calls.is_empty(),
        "the logging ffmpeg was not used: {}",
        ffmpeg_log.display()
    );
    for call in calls.lines() {
        assert!(
            !call.contains("rawvideo") && !call.contains("-f nut"),
            "frames were scored before the refusal: {call}"
        );
    }
}

/// `fresco run INPUT -o OUTPUT --style vintage`, in chunks of 7 frames on 2 workers, with
/// `ffmpeg` as the ffmpeg.
fn vintage_run(input: &Path, output: &Path, ffmpeg: &Path, extra: &[&str]) -> Out {
    let mut args: Vec<&OsStr> = vec![
        s("run"),
        p(input),
        s("-o"),
        p(output),
        s("--style"),
        s("vintage"),
        s("--chunk-frames"),
        s("7"),
        s("--workers"),
        s("2"),
    ];
    args.extend(extra.iter().map(|a| s(a)));
    fresco_env(args, &[("FRESCO_FFMPEG", ffmpeg.as_os_str())])
}

/// A pool of two workers runs one job; returns `fresco jobs show --json`, and the job's log
/// (`fresco jobs logs`, where the plan's notes are) followed by the workers' logs.
fn pool_run(
    dir: &Path,
    input: &Path,
    output: &Path,
    extra: &[&str],
    ffmpeg: &Path,
) -> (serde_json::Value, String) {
    let queue = sqlite_queue(dir);
    let vintage = dir.join("vintage.onnx");
    if !vintage.exists() {
        export_builtin("vintage", &vintage);
    }
    let mut all = vec!["--chunk-frames", "7"];
    all.extend_from_slice(extra);
    let id = queue.submit(input, output, &vintage, &all);
    let ffmpeg = ffmpeg.to_str().unwrap();
    let logs: Vec<PathBuf> = (0..2)
        .map(|n| dir.join(format!("worker-{n}.log")))
        .collect();
    let mut workers: Vec<_> = logs
        .iter()
        .map(|log| queue.spawn_worker(log, &[("FRESCO_FFMPEG", ffmpeg)], &[]))
        .collect();
    for worker in &mut workers {
        wait_exit(worker, JOB_TIMEOUT, "worker");
    }
    let job_log = queue.jobs("logs", &id).ok().stdout;
    let worker_logs = logs.iter().map(|l| read_log(l)).collect::<Vec<_>>();
    (
        queue.show(&id),
        format!("{job_log}\n{}", worker_logs.join("\n")),
    )
}

/// The job failed at its plan, at the first attempt, with `words` in its error, and no chunk
/// was claimed.
fn assert_failed_at_plan(job: &serde_json::Value, log: &str, words: &[&str]) {
    assert_eq!(job["state"], "failed", "{job:#}");
    let error = job["last_error"].as_str().unwrap_or_default();
    for word in words {
        assert!(
            error.contains(word),
            "{word:?} not in the job's error: {job:#}"
        );
    }
    let tasks = job["tasks"].as_array().expect("tasks");
    let plan = tasks
        .iter()
        .find(|t| t["kind"] == "plan")
        .expect("a plan task");
    assert_eq!(plan["state"], "failed", "{job:#}");
    assert_eq!(
        plan["attempts"], 1,
        "a permanent failure was retried: {job:#}"
    );
    assert!(
        tasks.iter().all(|t| t["kind"] == "plan"),
        "chunks were made for a job refused at plan: {job:#}"
    );
    assert!(score_claims(log).is_empty(), "a chunk was scored:\n{log}");
}

// ---- WebM ---------------------------------------------------------------------------------

/// The default encoder follows the container: VP9 in a WebM, with Opus audio copied bit-exactly
/// and every frame at its time; and H.264 elsewhere.
fn webm_is_vp9_with_its_opus(dir: &Path, pool: bool) {
    let input = dir.join("talk.mkv");
    av_clip(&input, "1", "libopus", &[]);
    let (ffmpeg, log) = logged_ffmpeg(dir);
    let output = dir.join("talk.webm");
    if pool {
        let (job, text) = pool_run(dir, &input, &output, &[], &ffmpeg);
        assert_eq!(job["state"], "succeeded", "{job:#}\n{text}");
    } else {
        vintage_run(&input, &output, &ffmpeg, &[]).ok();
    }
    let video = &streams_of(&output, "video")[0];
    assert_eq!(video["codec_name"], "vp9", "{video:#}");
    assert_eq!(probe(&output)["format"]["format_name"], "matroska,webm");
    assert_eq!(other_streams(&output), other_streams(&input));
    assert_eq!(audio_md5(&input, 0), audio_md5(&output, 0), "audio changed");
    assert_same_timing(&input, &output);
    assert_audio_starts_alike(&input, &output);
    // VP9's own constant quality, not x264's numbers.
    let calls = read_log(&log);
    assert!(
        calls.contains("-c:v:0 libvpx-vp9 -crf 24") && calls.contains("-b:v:0 0"),
        "VP9 not in constant-quality mode:\n{calls}"
    );

    let mp4 = dir.join("talk.mp4");
    if pool {
        let (job, _) = pool_run(&dir.join("mp4"), &input, &mp4, &[], &ffmpeg);
        assert_eq!(job["state"], "succeeded", "{job:#}");
    } else {
        vintage_run(&input, &mp4, &ffmpeg, &[]).ok();
    }
    assert_eq!(streams_of(&mp4, "video")[0]["codec_name"], "h264");
}

#[test]
fn webm_output_is_vp9_with_opus_kept_through_run() {
    let dir = tempfile::tempdir().unwrap();
    webm_is_vp9_with_its_opus(dir.path(), false);
    // Vorbis, WebM's other audio codec, is copied too.
    let input = dir.path().join("vorbis.mkv");
    av_clip(&input, "1", "libvorbis", &[]);
    let (ffmpeg, _) = logged_ffmpeg(dir.path());
    let output = dir.path().join("vorbis.webm");
    vintage_run(&input, &output, &ffmpeg, &[]).ok();
    assert_eq!(streams_of(&output, "video")[0]["codec_name"], "vp9");
    assert_eq!(audio_md5(&input, 0), audio_md5(&output, 0), "audio changed");
    assert_same_timing(&input, &output);
    assert_audio_starts_alike(&input, &output);
}

#[test]
fn webm_output_is_vp9_with_opus_kept_through_workers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("mp4")).unwrap();
    webm_is_vp9_with_its_opus(dir.path(), true);
}

/// What a WebM cannot hold is refused at plan, with what to do: AAC audio (unless dropped),
/// an H.264 `--codec`; and an encoder this ffmpeg lacks, or one MP4 cannot hold.
#[test]
fn webm_refusals_come_at_plan_through_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("phone.mp4");
    av_clip(&input, "1", "aac", &[]);
    let (ffmpeg, log) = logged_ffmpeg(dir.path());
    let webm = dir.path().join("phone.webm");

    let started = std::time::Instant::now();
    vintage_run(&input, &webm, &ffmpeg, &[]).fails(
        5,
        "phone.webm",
        &[
            "audio stream #1 (aac)",
            ".webm",
            "--drop-streams audio",
            ".mkv",
        ],
    );
    let refused_in = started.elapsed();
    assert_nothing_left(&webm);
    vintage_run(
        &input,
        &webm,
        &ffmpeg,
        &["--drop-streams", "audio", "--codec", "libx264"],
    )
    .fails(
        5,
        "phone.webm",
        &[
            "cannot hold video from the encoder libx264",
            "--codec",
            "libvpx-vp9",
        ],
    );
    let mkv = dir.path().join("phone.mkv");
    vintage_run(&input, &mkv, &ffmpeg, &["--codec", "libnosuchcodec"]).fails(
        5,
        "phone.mkv",
        &["no encoder 'libnosuchcodec'", "ffmpeg -encoders"],
    );
    let mp4 = dir.path().join("out.mp4");
    vintage_run(&input, &mp4, &ffmpeg, &["--codec", "ffv1"]).fails(
        5,
        "out.mp4",
        &["cannot hold video from the encoder ffv1", "(e.g. .mkv)"],
    );
    for (name, words) in [
        ("out.xyz", &["no container for the extension .xyz"][..]),
        ("out.mp3", &[".mp3 file cannot hold video"][..]),
    ] {
        let output = dir.path().join(name);
        vintage_run(&input, &output, &ffmpeg, &["--drop-streams", "audio"]).fails(5, name, words);
        assert_nothing_left(&output);
    }
    assert_nothing_scored(&log);
    eprintln!("the AAC-in-WebM refusal took {refused_in:?}");

    // Dropping the audio makes it a WebM with VP9.
    vintage_run(&input, &webm, &ffmpeg, &["--drop-streams", "audio"]).ok();
    assert_eq!(streams_of(&webm, "video")[0]["codec_name"], "vp9");
    assert!(streams_of(&webm, "audio").is_empty());
    assert_same_timing(&input, &webm);
}

/// What the container cannot hold is refused before any frame is scored: an encoder the
/// container refuses, or one ffmpeg lacks, at submission (the one submission path tries the
/// encoder, as the API always did); a stream only the plan finds, as a permanent plan failure.
#[test]
fn webm_refusals_come_before_any_scoring_in_a_pool() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("phone.mp4");
    av_clip(&input, "1", "aac", &[]);
    let (ffmpeg, log) = logged_ffmpeg(dir.path());
    let webm = dir.path().join("phone.webm");
    let (job, text) = pool_run(dir.path(), &input, &webm, &[], &ffmpeg);
    assert_failed_at_plan(
        &job,
        &text,
        &["audio stream #1 (aac)", "--drop-streams audio"],
    );
    assert!(!webm.exists());

    let sub = dir.path().join("codec");
    std::fs::create_dir(&sub).unwrap();
    let queue = sqlite_queue(&sub);
    let vintage = sub.join("vintage.onnx");
    export_builtin("vintage", &vintage);
    let refused = |output: &Path, extra: &[&str], words: &[&str]| {
        let out = queue.try_submit(&input, output, &vintage, extra);
        assert_ne!(out.code, Some(0), "{}", out.dump());
        for word in words {
            assert!(
                out.stderr.contains(word),
                "{word:?} not said: {}",
                out.dump()
            );
        }
        assert!(out.stdout.trim().is_empty(), "no job id: {}", out.dump());
        assert!(!output.exists());
    };
    refused(
        &webm,
        &["--drop-streams", "audio", "--codec", "libx264"],
        &["cannot hold video from the encoder libx264"],
    );
    let mkv = dir.path().join("phone.mkv");
    refused(
        &mkv,
        &["--codec", "libnosuchcodec"],
        &["no encoder 'libnosuchcodec'"],
    );
    let listed = run_with_timeout(
        fresco_cmd()
            .args([s("jobs"), s("list"), s("--json")])
            .args(queue.args()),
        Duration::from_secs(60),
    )
    .ok()
    .json();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(0),
        "nothing queued: {listed}"
    );
    assert_nothing_scored(&log);
}

// ---- Matroska with fonts ------------------------------------------------------------------

/// Subtitles and the font attachment come through with their tags and bytes, the audio
/// bit-exactly, every frame at its time.
fn fonts_survive(dir: &Path, pool: bool) {
    let input = dir.join("episode.mkv");
    make_fansub_mkv(dir, &input);
    let want = other_streams(&input);
    assert!(
        want.iter().any(|(kind, _, tags)| kind == "attachment"
            && tags.contains(&("mimetype".into(), FONT_MIME.into()))
            && tags.contains(&("filename".into(), "TestSans.ttf".into()))),
        "the test input has no tagged font: {want:?}"
    );
    let (ffmpeg, _) = logged_ffmpeg(dir);
    let output = dir.join("styled.mkv");
    if pool {
        let (job, text) = pool_run(dir, &input, &output, &[], &ffmpeg);
        assert_eq!(job["state"], "succeeded", "{job:#}\n{text}");
    } else {
        vintage_run(&input, &output, &ffmpeg, &[]).ok();
    }
    assert_eq!(other_streams(&output), want);
    assert_eq!(
        attachment_bytes(&output, dir),
        attachment_bytes(&input, dir),
        "the font's bytes changed"
    );
    assert_eq!(audio_md5(&input, 0), audio_md5(&output, 0), "audio changed");
    assert_same_timing(&input, &output);
    assert_audio_starts_alike(&input, &output);
}

#[test]
fn matroska_fonts_keep_their_tags_through_run() {
    let dir = tempfile::tempdir().unwrap();
    fonts_survive(dir.path(), false);
}

#[test]
fn matroska_fonts_keep_their_tags_through_workers() {
    let dir = tempfile::tempdir().unwrap();
    fonts_survive(dir.path(), true);
}

/// MP4 holds no attachments: refused at plan, naming the stream (once the subtitles, which it
/// cannot hold either and which come first, are dropped), through `run` and through a pool.
#[test]
fn attachments_into_mp4_are_refused_at_plan() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("episode.mkv");
    make_fansub_mkv(dir.path(), &input);
    let (ffmpeg, log) = logged_ffmpeg(dir.path());
    let mp4 = dir.path().join("episode.mp4");
    vintage_run(&input, &mp4, &ffmpeg, &[]).fails(
        5,
        "episode.mp4",
        &["subtitle stream #2 (ass)", "--drop-streams subtitle"],
    );
    vintage_run(&input, &mp4, &ffmpeg, &["--drop-streams", "subtitle"]).fails(
        5,
        "episode.mp4",
        &[
            "attachment stream #3 (ttf)",
            ".mp4",
            "--drop-streams attachment",
        ],
    );
    let (job, text) = pool_run(
        dir.path(),
        &input,
        &mp4,
        &["--drop-streams", "subtitle"],
        &ffmpeg,
    );
    assert_failed_at_plan(&job, &text, &["attachment stream #3 (ttf)"]);
    assert_nothing_scored(&log);
    assert_nothing_left(&mp4);
    // Dropped, the rest comes through.
    vintage_run(
        &input,
        &mp4,
        &ffmpeg,
        &["--drop-streams", "subtitle,attachment"],
    )
    .ok();
    assert_eq!(audio_md5(&input, 0), audio_md5(&mp4, 0));
    assert_same_timing(&input, &mp4);
}

// ---- AVI ----------------------------------------------------------------------------------

/// From an MPEG-4 Part 2 + MP3 AVI, the styled AVI's first frame is at 0, every frame at the
/// input's time, the duration the input's, the MP3 bit-exact; its H.264 has no B-frames.
fn avi_is_exact(dir: &Path, pool: bool) {
    let input = dir.join("old.avi");
    make_old_avi(&input);
    let (ffmpeg, _) = logged_ffmpeg(dir);
    let output = dir.join("styled.avi");
    if pool {
        let (job, text) = pool_run(dir, &input, &output, &[], &ffmpeg);
        assert_eq!(job["state"], "succeeded", "{job:#}\n{text}");
    } else {
        vintage_run(&input, &output, &ffmpeg, &[]).ok();
    }
    let video = &streams_of(&output, "video")[0];
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["has_b_frames"], 0, "{video:#}");
    let times = frame_times(&output);
    assert_eq!(times.first().copied(), Some(0.0), "first frame not at 0");
    assert_same_timing(&input, &output);
    assert_eq!(audio_md5(&input, 0), audio_md5(&output, 0), "audio changed");
    assert_audio_starts_alike(&input, &output);
}

#[test]
fn avi_output_is_exact_through_run() {
    let dir = tempfile::tempdir().unwrap();
    avi_is_exact(dir.path(), false);
}

#[test]
fn avi_output_is_exact_through_workers() {
    let dir = tempfile::tempdir().unwrap();
    avi_is_exact(dir.path(), true);
}

// ---- picture size changes -----------------------------------------------------------------

/// A transport stream whose picture changes from 96x64 to 64x48 at frame 25 is styled at
/// 96x64, every frame at its time, with a note naming the frame; into Matroska and MPEG-TS.
fn size_change_is_styled(dir: &Path, pool: bool) {
    let input = dir.join("broadcast.ts");
    make_two_size_ts(dir, &input, true);
    let (ffmpeg, _) = logged_ffmpeg(dir);
    for name in ["styled.mkv", "styled.ts"] {
        let output = dir.join(name);
        let notes = if pool {
            let sub = dir.join(format!("pool-{name}"));
            std::fs::create_dir_all(&sub).unwrap();
            let (job, text) = pool_run(&sub, &input, &output, &[], &ffmpeg);
            assert_eq!(job["state"], "succeeded", "{job:#}\n{text}");
            format!("{job}\n{text}")
        } else {
            vintage_run(&input, &output, &ffmpeg, &[]).ok().stderr
        };
        assert!(
            notes.contains(
                "picture size changes mid-stream (from 96x64 to 64x48 at frame 25 (1.000 s))"
            ),
            "no note about the size change:\n{notes}"
        );
        assert_eq!(video_size(&output), (96, 64));
        let (w, h, frames) = decode_rgb(&output);
        assert_eq!((w, h), (96, 64));
        assert_eq!(frames.len(), 50);
        assert_same_times(&frame_times(&input), &frame_times(&output));
    }
}

#[test]
fn size_change_mid_stream_is_styled_through_run() {
    let dir = tempfile::tempdir().unwrap();
    size_change_is_styled(dir.path(), false);
}

#[test]
fn size_change_mid_stream_is_styled_through_workers() {
    let dir = tempfile::tempdir().unwrap();
    size_change_is_styled(dir.path(), true);
}

/// Two recordings cut together whose times restart: refused at plan naming the frame (they
/// failed after scoring, as "decoded 0 frames" or an encoder's "pts does not follow").
#[test]
fn restarting_frame_times_are_refused_at_plan() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("two-recordings.ts");
    make_two_size_ts(dir.path(), &input, false);
    let (ffmpeg, log) = logged_ffmpeg(dir.path());
    let output = dir.path().join("styled.mkv");
    vintage_run(&input, &output, &ffmpeg, &[]).fails(
        4,
        "two-recordings.ts",
        &["frame times go back at frame 25", "concat demuxer"],
    );
    let (job, text) = pool_run(dir.path(), &input, &output, &[], &ffmpeg);
    assert_failed_at_plan(&job, &text, &["frame times go back at frame 25"]);
    assert_nothing_scored(&log);
    assert_nothing_left(&output);
}

// ---- retry or not -------------------------------------------------------------------------

/// An ffmpeg that fails the chunks' join with `message` (and runs the real one otherwise).
fn ffmpeg_failing_the_join(dir: &Path, message: &str) -> PathBuf {
    let real = String::from_utf8_lossy(&tool_bytes(
        "sh",
        &[OsStr::new("-c"), OsStr::new("command -v ffmpeg")],
    ))
    .trim()
    .to_string();
    let script = dir.join("ffmpeg-failing-join");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$*\" in *'-f concat'*) printf '%s\\n' \"{message}\" >&2; exit 1;; esac\nexec '{real}' \"$@\"\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// A join that the muxer refuses fails the same way on every try: the assemble task fails
/// once, for good; a join that ran out of disk is tried again (three attempts by default).
#[test]
fn a_muxer_refusing_the_join_is_permanent_and_a_full_disk_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mkv");
    av_clip(&input, "0.6", "libopus", &[]);
    for (name, message, attempts) in [
        (
            "refused",
            "[matroska @ 0x1] Attachment stream 3 has no filename tag.\nCould not write header for output file #0 (incorrect codec parameters ?): Invalid argument",
            1,
        ),
        (
            "disk",
            "Could not write header for output file #0 (incorrect codec parameters ?): No space left on device",
            3,
        ),
    ] {
        let sub = dir.path().join(name);
        std::fs::create_dir(&sub).unwrap();
        let ffmpeg = ffmpeg_failing_the_join(&sub, message);
        let output = sub.join("out.mkv");
        let (job, text) = pool_run(&sub, &input, &output, &[], &ffmpeg);
        assert_eq!(job["state"], "failed", "{job:#}\n{text}");
        let assemble = job["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["kind"] == "assemble")
            .expect("an assemble task")
            .clone();
        assert_eq!(assemble["attempts"], attempts, "{name}: {assemble:#}");
        let error = job["last_error"].as_str().unwrap_or_default();
        if attempts == 1 {
            assert!(error.contains("muxer refused the joined streams"), "{job:#}");
        }
        assert!(!output.exists());
    }
}

/// Opus from an MP4 into Matroska: the plan cannot tell from the probe that the muxer will
/// move every stream by Opus's pre-skip, so the join measures it and places the video again;
/// every frame keeps its time, through `run` and through a pool.
#[test]
fn opus_from_mp4_into_matroska_keeps_every_frame_time() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("voice.mp4");
    av_clip(&input, "1", "libopus", &[]);
    let (ffmpeg, _) = logged_ffmpeg(dir.path());
    let output = dir.path().join("voice.mkv");
    vintage_run(&input, &output, &ffmpeg, &[]).ok();
    assert_same_times(&frame_times(&input), &frame_times(&output));
    assert_eq!(audio_md5(&input, 0), audio_md5(&output, 0), "audio changed");

    let pooled = dir.path().join("pooled.webm");
    let (job, text) = pool_run(dir.path(), &input, &pooled, &[], &ffmpeg);
    assert_eq!(job["state"], "succeeded", "{job:#}\n{text}");
    assert_same_times(&frame_times(&input), &frame_times(&pooled));
    assert_eq!(audio_md5(&input, 0), audio_md5(&pooled, 0), "audio changed");
}
