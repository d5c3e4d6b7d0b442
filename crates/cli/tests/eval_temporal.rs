//! `fresco eval temporal`: the report's shape (text and JSON), and its exit codes. The
//! measure's known answers are fresco-temporal's tests.

mod common;
use common::*;

/// ffmpeg's test pattern held still and a 96x64 window panning 3 px a frame over it.
fn pan_clip(out: &std::path::Path, frames: u32) {
    let graph = "testsrc2=s=320x180:r=25,trim=end_frame=1,loop=loop=40:size=1:start=0,\
                 crop=96:64:x='8+n*3':y=8";
    let count = frames.to_string();
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            graph,
            "-frames:v",
            &count,
            "-c:v",
            "ffv1",
            "-pix_fmt",
            "bgr0",
        ],
        out,
    );
}

#[test]
fn json_report_with_chunk_starts() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("pan.mkv");
    pan_clip(&clip, 7);
    let out = fresco([
        "eval".as_ref(),
        "temporal".as_ref(),
        clip.as_os_str(),
        clip.as_os_str(),
        "--chunk-frames".as_ref(),
        "3".as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.dump());
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(report["width"], 96);
    assert_eq!(report["height"], 64);
    assert_eq!(report["frames"], 7);
    assert_eq!(report["per_frame"].as_array().unwrap().len(), 6);
    assert_eq!(report["clip"]["output"], report["clip"]["input"]);
    assert!(report["clip"]["output"].as_f64().unwrap() < 1e-3);
    assert_eq!(report["chunks"]["chunk_frames"], 3);
    assert_eq!(report["chunks"]["boundaries"]["frames"], 2);
    assert_eq!(report["chunks"]["inside"]["frames"], 4);
    assert_eq!(report["flow"]["window_radius"], 3);

    let text = fresco([
        "eval".as_ref(),
        "temporal".as_ref(),
        clip.as_os_str(),
        clip.as_os_str(),
        "--size".as_ref(),
        "48x32".as_ref(),
        "--per-frame".as_ref(),
    ]);
    assert_eq!(text.code, Some(0), "{}", text.dump());
    assert!(
        text.stdout.contains("at 48x32, 7 frames"),
        "{}",
        text.dump()
    );
    assert!(
        text.stdout.lines().any(|l| l.starts_with("clip ")),
        "{}",
        text.dump()
    );
    assert_eq!(
        text.stdout
            .lines()
            .filter(|l| l.starts_with(char::is_numeric))
            .count(),
        6,
        "{}",
        text.dump()
    );
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("pan.mkv");
    pan_clip(&clip, 5);
    let missing = dir.path().join("missing.mkv");
    let out = fresco([
        "eval".as_ref(),
        "temporal".as_ref(),
        clip.as_os_str(),
        missing.as_os_str(),
    ]);
    assert_eq!(out.code, Some(3), "{}", out.dump());
    assert!(out.stderr.contains("missing.mkv"), "{}", out.dump());

    let shorter = dir.path().join("shorter.mkv");
    pan_clip(&shorter, 4);
    let out = fresco([
        "eval".as_ref(),
        "temporal".as_ref(),
        clip.as_os_str(),
        shorter.as_os_str(),
    ]);
    assert_eq!(out.code, Some(4), "{}", out.dump());
    assert!(out.stderr.contains("same frames"), "{}", out.dump());

    let bad = fresco(["eval", "temporal", "a.mkv", "b.mkv", "--size", "640"]);
    assert_eq!(bad.code, Some(2), "{}", bad.dump());
}

/// `--job ID`: the chunk starts of the job's plan, read from the queue; for a job cut every N
/// frames, the same split as `--chunk-frames N`. A job that is not there exits 3.
#[test]
fn chunk_starts_from_a_jobs_plan() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("pan.mkv");
    pan_clip(&clip, 12);
    let model = identity_model(dir.path());
    let queue = common::jobs::sqlite_queue(dir.path());
    let styled = dir.path().join("styled.mkv");
    let mut flags = vec!["--chunk-frames", "5", "--codec", "ffv1", "--workers", "1"];
    flags.extend(["--quiet", "--db", &queue.url, "--work-dir"]);
    flags.push(queue.work.to_str().unwrap());
    run(&clip, &styled, &model, &flags).ok();
    let listed = fresco([&[s("jobs"), s("list"), s("--json")][..], &queue.args()].concat());
    let id = listed.ok().json()[0]["id"].as_str().unwrap().to_string();

    let eval = |extra: &[&std::ffi::OsStr]| {
        let mut args = vec![s("eval"), s("temporal"), p(&clip), p(&styled), s("--json")];
        args.extend_from_slice(extra);
        fresco(args)
    };
    let by_job = eval(&[&[s("--job"), s(&id)][..], &queue.args()].concat())
        .ok()
        .json();
    let by_n = eval(&[s("--chunk-frames"), s("5")]).ok().json();
    assert_eq!(by_job["chunks"], by_n["chunks"]);
    assert_eq!(by_job["chunks"]["boundaries"]["frames"], 2, "{by_job:#}");
    assert_eq!(by_job["chunks"]["chunk_frames"], 5);

    let missing = eval(&[&[s("--job"), s("no-such-job")][..], &queue.args()].concat());
    assert_eq!(missing.code, Some(3), "{}", missing.dump());
}
