//! `--temporal`: frame-exact (odd size, variable frame rate, rotation), a chunk scored twice
//! gives the same frames, chunks join without a seam, and with a real style the warping error
//! falls (skipped without $FRESCO_MODEL_DIR); through every entrance that submits a job (`jobs
//! submit`, `--server`, `POST /v1/jobs`) the same frames as `fresco run --temporal`, and the
//! same refusals where it cannot apply. (Watched folders and storage events: tests/serve.rs
//! and crates/server/tests/events.rs.)

mod common;
use common::*;
use std::path::Path;

/// ffmpeg's test pattern held still, a `w`x`h` window panning 2 px right and 1 down a frame,
/// at irregular times (40 ms a frame, every third frame 15 ms late), losslessly.
fn vfr_pan(out: &Path, w: u32, h: u32, frames: u32) {
    let graph = format!(
        "testsrc2=s=320x180:r=25,trim=end_frame=1,loop=loop={frames}:size=1:start=0,format=rgb24,\
         crop={w}:{h}:x='8+n*2':y='8+n',settb=1/1000,\
         setpts='N*40+if(eq(mod(N\\,3)\\,2)\\,15\\,0)'"
    );
    let count = frames.to_string();
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            &graph,
            "-frames:v",
            &count,
            "-fps_mode",
            "passthrough",
            "-c:v",
            "ffv1",
            "-pix_fmt",
            "bgr0",
        ],
        out,
    );
}

fn run_temporal(input: &Path, output: &Path, model: &Path, chunk_frames: &str) -> Out {
    run(
        input,
        output,
        model,
        &[
            "--temporal",
            "--chunk-frames",
            chunk_frames,
            "--codec",
            "ffv1",
            "--workers",
            "1",
            "--quiet",
            "-y",
        ],
    )
}

fn rgb(path: &Path) -> Vec<u8> {
    read_out(
        "ffmpeg",
        &["-nostdin", "-v", "error", "-i"],
        path,
        &[
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
    )
}

#[test]
fn temporal_is_frame_exact_repeatable_and_seamless() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    let input = dir.path().join("pan.mkv");
    vfr_pan(&input, 97, 55, 21);
    let times = frame_times(&input);
    assert_eq!(times.len(), 21, "unexpected test clip");
    assert_eq!(displayed_size(&input), (97, 55), "unexpected test clip");
    assert!(
        times.windows(2).any(|w| (w[1] - w[0] - 0.04).abs() > 0.01),
        "not VFR: {times:?}"
    );

    let first = dir.path().join("first.mkv");
    let out = run_temporal(&input, &first, &model, "6");
    assert_eq!(out.code, Some(0), "{}", out.dump());
    assert_eq!(displayed_size(&first), (97, 55));
    assert_eq!(frame_times(&first), times);

    // The same chunks again: the same frames.
    let again = dir.path().join("again.mkv");
    let out = run_temporal(&input, &again, &model, "6");
    assert_eq!(out.code, Some(0), "{}", out.dump());
    assert_eq!(frame_md5s(&again), frame_md5s(&first));

    // One chunk: the warmed-up chunk starts differ from the continuous run by rounding at most.
    let whole = dir.path().join("whole.mkv");
    let out = run_temporal(&input, &whole, &model, "100");
    assert_eq!(out.code, Some(0), "{}", out.dump());
    let (chunked, continuous) = (rgb(&first), rgb(&whole));
    assert_eq!(chunked.len(), 21 * 97 * 55 * 3);
    assert_eq!(continuous.len(), chunked.len());
    let worst = chunked
        .iter()
        .zip(&continuous)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(worst <= 2, "a chunk start differs by {worst} of 255");
}

#[test]
fn temporal_keeps_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    let pan = dir.path().join("pan.mkv");
    vfr_pan(&pan, 96, 64, 8);
    let plain = dir.path().join("plain.mp4");
    ffmpeg(
        &["-i", pan.to_str().unwrap(), "-c:v", "libx264", "-qp", "0"],
        &plain,
    );
    let rotated = dir.path().join("rotated.mp4");
    rotate_90(&plain, &rotated);
    assert_eq!(
        displayed_size(&rotated),
        (64, 96),
        "the clip carries no rotation"
    );
    let out_path = dir.path().join("out.mkv");
    let out = run_temporal(&rotated, &out_path, &model, "3");
    assert_eq!(out.code, Some(0), "{}", out.dump());
    assert_eq!(displayed_size(&out_path), (64, 96));
    assert_eq!(frame_times(&out_path), frame_times(&rotated));
}

/// mosaic boils on a pan; `--temporal` takes the warping error well down.
#[test]
fn temporal_lowers_a_real_styles_warping_error() {
    let Some(models) = fresco_testkit::models::real_model_dir("mosaic") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pan.mkv");
    vfr_pan(&input, 128, 96, 12);
    let measure = |temporal: bool| {
        let output = dir.path().join(format!("styled-{temporal}.mkv"));
        let mut args = vec![
            s("run"),
            p(&input),
            s("-o"),
            p(&output),
            s("--style"),
            s("mosaic"),
            s("--no-download"),
            s("--codec"),
            s("ffv1"),
            s("--chunk-frames"),
            s("6"),
            s("--quiet"),
        ];
        if temporal {
            args.push(s("--temporal"));
        }
        let out = fresco_env(args, &[("FRESCO_MODEL_DIR", p(&models))]);
        assert_eq!(out.code, Some(0), "{}", out.dump());
        let eval = fresco([s("eval"), s("temporal"), p(&input), p(&output), s("--json")]);
        assert_eq!(eval.code, Some(0), "{}", eval.dump());
        let report: serde_json::Value = serde_json::from_str(&eval.stdout).unwrap();
        report["clip"]["output"].as_f64().unwrap()
    };
    let (per_frame, steady) = (measure(false), measure(true));
    assert!(
        steady < 0.6 * per_frame,
        "warping error {steady} with --temporal, {per_frame} without"
    );
}

/// `ffv1`, chunks of 6 frames and one worker: the settings every entrance below is given, so
/// that each job's frames can be compared with `fresco run --temporal`'s.
const SAME_JOB: [&str; 4] = ["--chunk-frames", "6", "--codec", "ffv1"];

/// `--temporal` through `fresco jobs submit` (the local queue, and `--server` against the HTTP
/// API) and `POST /v1/jobs` gives the frames `fresco run --temporal` gives, which differ from
/// per-frame styling's; the job shows it (`jobs show`, the API's job view). A chunk that
/// failed and was scored again by a `jobs retry` gives the same frames too.
#[test]
fn temporal_jobs_from_every_entrance_match_fresco_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    let input = dir.path().join("pan.mkv");
    vfr_pan(&input, 97, 55, 18);
    let reference = dir.path().join("run.mkv");
    let out = run_temporal(&input, &reference, &model, "6");
    assert_eq!(out.code, Some(0), "{}", out.dump());
    let steady = rgb(&reference);
    let per_frame = dir.path().join("per-frame.mkv");
    let mut flags = SAME_JOB.to_vec();
    flags.extend(["--workers", "1", "--quiet"]);
    run(&input, &per_frame, &model, &flags).ok();
    assert_ne!(rgb(&per_frame), steady, "--temporal changed nothing");

    let queue = common::jobs::sqlite_queue(dir.path());
    let mut temporal = SAME_JOB.to_vec();
    temporal.push("--temporal");
    // The local queue; its chunk 1 fails once, and is scored again after `jobs retry`.
    let local = dir.path().join("local.mkv");
    let local_id = queue.submit(&input, &local, &model, &temporal);
    let log = dir.path().join("failing-worker.log");
    let mut worker = queue.spawn_worker(&log, &[("FRESCO_TEST_FAIL_CHUNK", "1")], &[]);
    assert!(common::jobs::wait_exit(&mut worker, RUN_TIMEOUT, "worker").success());
    assert_eq!(queue.show(&local_id)["state"], "failed");
    queue.jobs("retry", &local_id).ok();

    // The API over the same queue, in this process; `jobs submit --server` and a plain POST.
    // An admin's token: it sees the jobs submitted to the queue directly too.
    let api = common::api::Api::open(&queue.url, fresco_queue::Role::Admin);
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &api.token).unwrap();
    let server = dir.path().join("server.mkv");
    let mut args = vec![s("jobs"), s("submit"), p(&input), s("-o"), p(&server)];
    args.extend([s("--model"), p(&model), s("--server"), s(&api.url)]);
    args.extend([s("--token-file"), p(&token_file)]);
    args.extend(temporal.iter().map(|a| s(a)));
    let server_id = fresco(args).ok().stdout.trim().to_string();
    let posted = dir.path().join("posted.mkv");
    let answer = fresco_testkit::http::post(&format!("{}/v1/jobs", api.url))
        .bearer(&api.token)
        .send_json(&serde_json::json!({
            "input": input, "output": posted, "model": model, "temporal": true,
            "chunk_frames": 6, "codec": "ffv1",
        }));
    assert!(answer.status < 300, "{}", answer.text());
    let posted_id = answer.json()["id"].as_str().unwrap().to_string();

    let log = dir.path().join("worker.log");
    let mut worker = queue.spawn_worker(&log, &[], &[]);
    assert!(common::jobs::wait_exit(&mut worker, RUN_TIMEOUT, "worker").success());
    for (id, output) in [
        (&local_id, &local),
        (&server_id, &server),
        (&posted_id, &posted),
    ] {
        let shown = queue.show(id);
        assert_eq!(
            shown["state"],
            "succeeded",
            "{shown:#}\n{}",
            common::jobs::read_log(&log)
        );
        assert_eq!(shown["temporal"], true, "{shown:#}");
        assert_eq!(frame_times(output), frame_times(&input));
        assert!(
            rgb(output) == steady,
            "{} differs from fresco run --temporal",
            output.display()
        );
        let view = fresco_testkit::http::get(&format!("{}/v1/jobs/{id}", api.url))
            .bearer(&api.token)
            .call()
            .ok()
            .json();
        assert_eq!(view["temporal"], true, "{view:#}");
    }
    // Chunks were scored before chunk 1 failed the job, and all of them again after the retry.
    let job_log = queue.jobs("logs", &local_id).ok().stdout;
    let scored = job_log.matches("scored chunk").count();
    assert!(scored > 3, "no chunk was scored twice:\n{job_log}");
    let text = queue.jobs("show", &local_id).ok();
    assert!(text.stdout.contains("temporal:  on"), "{}", text.stdout);
    let mut args = vec![
        s("jobs"),
        s("show"),
        s(&posted_id),
        s("--server"),
        s(&api.url),
    ];
    args.extend([s("--token-file"), p(&token_file)]);
    let text = fresco(args).ok();
    assert!(text.stdout.contains("temporal: on"), "{}", text.stdout);

    // A per-frame job is shown as one.
    let plain = dir.path().join("plain.mkv");
    let plain_id = queue.submit(&input, &plain, &model, &SAME_JOB);
    assert_eq!(queue.show(&plain_id)["temporal"], false);
}

/// Where `--temporal` cannot apply, `fresco run`, `jobs submit` (queue and `--server`) and
/// `POST /v1/jobs` refuse it with the same message naming it, before anything is queued: a
/// records output, a still image (input or output), a dataset and a model whose output is no
/// image.
#[test]
fn temporal_is_refused_where_it_cannot_apply() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity_model(dir.path());
    let rank2 = dir.path().join("rank2.onnx");
    export_builtin("rank2", &rank2);
    let clip = dir.path().join("clip.mp4");
    make_h264(&clip, "64x48", 25, 0.2);
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    let photo = photos.join("photo.png");
    ffmpeg(
        &["-f", "lavfi", "-i", "testsrc2=s=64x48", "-frames:v", "1"],
        &photo,
    );
    let queue = common::jobs::sqlite_queue(dir.path());
    let api = common::api::Api::open(&queue.url, fresco_queue::Role::Submitter);
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &api.token).unwrap();
    let out = |name: &str| dir.path().join(name);

    // (input, output, model, words of the message); `fresco run` takes a folder as images.
    let cases = [
        (&clip, out("rows.jsonl"), &model, "holds records"),
        (&photo, out("styled.png"), &model, "is a still image"),
        (&clip, out("frame.png"), &model, "is a still image"),
        (
            &clip,
            out("styled.mkv"),
            &rank2,
            "not an image-to-image model",
        ),
        (&photos, out("photos.jsonl"), &model, "dataset of images"),
    ];
    for (input, output, model, words) in &cases {
        let what = format!("{} -> {}", input.display(), output.display());
        let mut args = vec![s("jobs"), s("submit"), p(input), s("-o"), p(output)];
        args.extend([s("--model"), p(model), s("--temporal")]);
        args.extend(queue.args());
        let local = fresco(args);
        assert_eq!(local.code, Some(2), "{what}: {}", local.dump());
        let message = common::api::cli_message(&local);
        assert!(message.starts_with("temporal: "), "{what}: {message}");
        assert!(message.contains(words), "{what}: {message}");

        let dataset = *words == "dataset of images";
        let mut body = serde_json::json!({
            "input": input, "output": output, "model": model, "temporal": true,
        });
        if dataset {
            body["dataset"] = serde_json::json!({});
        }
        let (status, code, api_message) = api.refuse(&body);
        assert_eq!(api_message, message, "{what}: the API and the CLI disagree");
        assert_eq!(
            (status, code.as_str()),
            (422, "temporal-not-applicable"),
            "{what}"
        );

        // `--server` takes no dataset yet (its own refusal).
        let mut args = vec![s("jobs"), s("submit"), p(input), s("-o"), p(output)];
        args.extend([
            s("--model"),
            p(model),
            s("--temporal"),
            s("--server"),
            s(&api.url),
        ]);
        args.extend([s("--token-file"), p(&token_file)]);
        if !dataset {
            let server = fresco(args);
            assert_eq!(server.code, Some(2), "{what}: {}", server.dump());
            let said = common::api::cli_message(&server);
            assert!(said.contains(&message), "{what}: {said}");
            assert!(said.contains("temporal-not-applicable"), "{what}: {said}");
        }

        let ran = run(input, output, model, &["--temporal", "--quiet"]);
        assert_eq!(ran.code, Some(2), "{what}: {}", ran.dump());
        let said = common::api::cli_message(&ran);
        // `fresco run` takes a plain folder as a dataset job too, refused in the same words.
        assert!(
            said.starts_with("temporal: ") && said.contains(words),
            "{what}: {said}"
        );
        assert!(!output.exists(), "{what}: an output was written");
    }
    let listed = fresco([&[s("jobs"), s("list"), s("--json")][..], &queue.args()].concat());
    assert_eq!(listed.ok().json(), serde_json::json!([]));
}
