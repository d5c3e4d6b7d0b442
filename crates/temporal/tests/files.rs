//! `measure_files` on clips made by ffmpeg (lossless FFV1, so the frames are known): frames
//! come from ffmpeg's pipes, at the input's displayed size or the one asked for.

use std::path::Path;

use fresco_temporal::{measure_files, FlowSettings, MeasureError, MeasureOptions};
use fresco_testkit::media::{ffmpeg, read_out, rotate_90};

const LOSSLESS: &[&str] = &["-c:v", "ffv1", "-pix_fmt", "bgr0"];

/// `frames` frames of a lavfi filter graph, losslessly.
fn lavfi_clip(out: &Path, graph: &str, frames: u32, extra: &[&str]) {
    let count = frames.to_string();
    let mut args = vec!["-f", "lavfi", "-i", graph, "-frames:v", &count];
    args.extend_from_slice(LOSSLESS);
    args.extend_from_slice(extra);
    ffmpeg(&args, out);
}

/// ffmpeg's test pattern held still, then a window of `size` moving (dx, dy) a frame over it.
fn panning(out: &Path, size: (u32, u32), step: (u32, u32), frames: u32) {
    let graph = format!(
        "testsrc2=s=640x360:r=25,trim=end_frame=1,loop=loop={frames}:size=1:start=0,\
         crop={}:{}:x='8+n*{}':y='8+n*{}'",
        size.0, size.1, step.0, step.1
    );
    lavfi_clip(out, &graph, frames, &[]);
}

fn options() -> MeasureOptions {
    MeasureOptions {
        size: None,
        chunk_frames: None,
        flow: FlowSettings::default(),
    }
}

fn rgb_frames(path: &Path) -> Vec<Vec<u8>> {
    let raw = read_out(
        "ffmpeg",
        &["-v", "error", "-i"],
        path,
        &["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
    );
    raw.chunks(160 * 96 * 3).map(<[u8]>::to_vec).collect()
}

#[test]
fn a_still_clip_measures_zero() {
    let dir = tempfile::tempdir().unwrap();
    let still = dir.path().join("still.mkv");
    lavfi_clip(
        &still,
        "testsrc2=s=160x96:r=25,trim=end_frame=1,loop=loop=12:size=1:start=0",
        12,
        &[],
    );
    let report = measure_files(&still, &still, &options()).unwrap();
    assert_eq!((report.width, report.height, report.frames), (160, 96, 12));
    assert_eq!(report.clip.frames, 11);
    assert!(report.clip.output.unwrap().abs() < 1e-6);
    assert!(report.clip.input.unwrap().abs() < 1e-6);
}

/// Output = input, panning 4 px right and 2 down a frame: where the flow is trusted the
/// warped previous frame is the frame, so the error is far under the plain difference of
/// consecutive frames (computed here from the decoded frames).
#[test]
fn a_pan_measured_against_itself_is_near_zero() {
    let dir = tempfile::tempdir().unwrap();
    let pan = dir.path().join("pan.mkv");
    panning(&pan, (160, 96), (4, 2), 10);
    let report = measure_files(
        &pan,
        &pan,
        &MeasureOptions {
            chunk_frames: Some(4),
            ..options()
        },
    )
    .unwrap();
    let frames = rgb_frames(&pan);
    assert_eq!(frames.len(), 10);
    let mut plain = 0.0;
    for pair in frames.windows(2) {
        let sum: f64 = pair[0]
            .iter()
            .zip(&pair[1])
            .map(|(a, b)| ((*a as f64 - *b as f64) / 255.0).powi(2))
            .sum();
        plain += sum / pair[0].len() as f64 / 9.0;
    }
    let measured = report.clip.output.unwrap();
    assert_eq!(report.clip.output, report.clip.input);
    assert!(
        measured < plain / 50.0,
        "warping error {measured}, plain difference {plain}"
    );
    let chunks = report.chunks.unwrap();
    // Frames 4 and 8 start chunks; 1-3, 5-7 and 9 are inside.
    assert_eq!((chunks.boundaries.frames, chunks.inside.frames), (2, 7));
}

#[test]
fn size_rotation_and_frame_counts() {
    let dir = tempfile::tempdir().unwrap();
    let pan = dir.path().join("pan.mkv");
    panning(&pan, (160, 96), (2, 0), 6);
    let small = measure_files(
        &pan,
        &pan,
        &MeasureOptions {
            size: Some((80, 48)),
            ..options()
        },
    )
    .unwrap();
    assert_eq!((small.width, small.height, small.frames), (80, 48, 6));

    // A rotation tag: measured upright, at the displayed size.
    let plain = dir.path().join("plain.mp4");
    ffmpeg(
        &["-i", pan.to_str().unwrap(), "-c:v", "libx264", "-qp", "0"],
        &plain,
    );
    let rotated = dir.path().join("rotated.mp4");
    rotate_90(&plain, &rotated);
    let upright = measure_files(&rotated, &rotated, &options()).unwrap();
    assert_eq!((upright.width, upright.height), (96, 160));

    let shorter = dir.path().join("shorter.mkv");
    panning(&shorter, (160, 96), (2, 0), 5);
    match measure_files(&pan, &shorter, &options()) {
        Err(MeasureError::FrameCounts { input, output }) => assert_eq!((input, output), (6, 5)),
        other => panic!("frame counts that differ: {other:?}"),
    }
}
