//! Hardware decoding and encoding, checked on a machine without an NVIDIA GPU (Debian's ffmpeg
//! lists `-hwaccel cuda` and the NVENC encoders, but there is no device for them): a job that
//! asks for them fails when it is planned, with the hardware named and exit 6, before any
//! chunk is scored; `--hwaccel auto` falls back to software decoding and gives the same frames
//! as software decoding. About 10 s. Skipped where an NVIDIA device node exists (there the
//! hardware may well work).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// The refusals below only hold where there is no NVIDIA GPU.
fn no_gpu_here() -> bool {
    if Path::new("/dev/nvidia0").exists() {
        eprintln!("skipped: /dev/nvidia0 exists, so the hardware may work here");
        return false;
    }
    true
}

fn run_video(input: &Path, output: &Path, extra: &[&str]) -> Out {
    let mut args = vec![
        s("run"),
        p(input),
        s("-o"),
        p(output),
        s("--style"),
        s("vintage"),
        s("--workers"),
        s("1"),
        s("--quiet"),
    ];
    args.extend(extra.iter().map(|a| s(a)));
    fresco(args)
}

#[test]
fn nvenc_and_hwaccel_cuda_fail_when_planned_without_a_gpu() {
    if !no_gpu_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "64x48", 25, 0.4);
    let output = dir.path().join("out.mp4");

    let started = Instant::now();
    let out = run_video(&input, &output, &["--codec", "h264_nvenc"]);
    out.fails(
        6,
        "out.mp4",
        &[
            "the hardware encoder h264_nvenc (--codec) does not work on this machine",
            "libcuda",
        ],
    );
    assert_nothing_left(&output);

    let out = run_video(&input, &output, &["--hwaccel", "cuda"]);
    out.fails(
        6,
        "clip.mp4",
        &["hardware decoding (--hwaccel cuda) does not work on this machine"],
    );
    assert_nothing_left(&output);
    // One try each, at plan time: no retries with back-off, no chunk started.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );

    // A preset NVENC does not have, and an unknown method, are refused with what is accepted.
    let out = run_video(
        &input,
        &output,
        &["--codec", "hevc_nvenc", "--preset", "veryslow"],
    );
    assert_ne!(out.code, Some(0), "{}", out.dump());
    assert!(
        out.stderr.contains("no preset 'veryslow'") && out.stderr.contains("p7"),
        "{}",
        out.dump()
    );
    let out = run_video(&input, &output, &["--hwaccel", "nvdec"]);
    assert_eq!(out.code, Some(2), "{}", out.dump());
    assert!(
        out.stderr
            .contains("unknown hardware decoding method 'nvdec'"),
        "{}",
        out.dump()
    );
}

#[test]
fn hwaccel_auto_gives_the_frames_of_software_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "64x48", 25, 0.4);
    // Lossless output, so the decoded frames compare exactly.
    let lossless = ["--codec", "ffv1"];
    let software = dir.path().join("software.mkv");
    run_video(&input, &software, &lossless).ok();
    let auto = dir.path().join("auto.mkv");
    let mut extra = lossless.to_vec();
    extra.extend(["--hwaccel", "auto"]);
    run_video(&input, &auto, &extra).ok();
    let (a, b) = (frame_md5s(&software), frame_md5s(&auto));
    assert_eq!(a.len(), 10, "frames of the software run");
    assert_eq!(a, b, "--hwaccel auto changed the frames");
}
