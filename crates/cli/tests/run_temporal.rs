//! `fresco run --temporal`: frame-exact (odd size, variable frame rate, rotation), a chunk
//! scored twice gives the same frames, chunks join without a seam, and with a real style the
//! warping error falls (skipped without $FRESCO_MODEL_DIR).

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
