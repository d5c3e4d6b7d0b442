//! A job's plan over generated clips: the chunks cover every frame once, in order, and each
//! chunk's decoder window delivers exactly its frames: the same pixels as the same frames of a
//! whole decode, whether chosen by time after a seek or by counting. The assembly list gives
//! each chunk the time up to the next chunk's first frame.
//!
//! Needs ffmpeg and ffprobe (scripts/setup.sh installs them); no model.

use std::path::Path;
use std::process::{Command, Stdio};

use fresco_pipeline::chunk::{chunk_window, concat_list, plan_job};
use fresco_pipeline::plan::FrameWindow;
use fresco_pipeline::{JobPlan, Tools, VideoOptions};
use fresco_testkit::media::{frame_times, make_vfr_clip_with_audio, make_video};

/// Raw frames from running the plan's decoder with `window` (None: the whole stream).
fn decode(plan: &JobPlan, window: Option<&FrameWindow>) -> Vec<Vec<u8>> {
    let args = plan.video.window_decoder_args(window);
    let out = Command::new("ffmpeg")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg must be installed (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "decoder {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frame = plan.video.model_frame_bytes();
    assert!(
        out.stdout.len().is_multiple_of(frame),
        "{} bytes is not whole frames of {frame}",
        out.stdout.len()
    );
    out.stdout.chunks(frame).map(<[u8]>::to_vec).collect()
}

fn plan(input: &Path, chunk_frames: u64) -> JobPlan {
    let output = input.with_file_name("out.mp4");
    plan_job(
        &Tools::default(),
        input,
        &output,
        &VideoOptions::default(),
        fresco_pipeline::ChunkSizing::Frames(chunk_frames),
    )
    .unwrap_or_else(|e| panic!("plan of {}: {e}", input.display()))
}

/// The chunks are consecutive, start at frame 0, end at the last frame, and all but the last
/// hold `chunk_frames` frames.
fn assert_chunks_cover(plan: &JobPlan, chunk_frames: u64) {
    let frames = plan.frame_pts.len() as u64;
    assert_eq!(plan.chunks.first().map(|c| c.start), Some(0));
    assert_eq!(plan.chunks.last().map(|c| c.end), Some(frames));
    for pair in plan.chunks.windows(2) {
        assert_eq!(pair[0].end, pair[1].start, "{:?}", plan.chunks);
    }
    let (last, full) = plan.chunks.split_last().unwrap();
    assert!(full.iter().all(|c| c.end - c.start == chunk_frames));
    assert!((1..=chunk_frames).contains(&(last.end - last.start)));
    assert_eq!(
        plan.chunks.len() as u64,
        frames.div_ceil(chunk_frames),
        "{:?}",
        plan.chunks
    );
}

/// Every chunk's window, by time and by number, gives exactly the chunk's frames of `whole`.
fn assert_frame_exact(plan: &JobPlan, whole: &[Vec<u8>]) {
    for range in &plan.chunks {
        let expected = &whole[range.start as usize..range.end as usize];
        for by_number in [false, true] {
            let window = chunk_window(plan, *range, by_number);
            let frames = decode(plan, Some(&window));
            assert_eq!(
                frames.len(),
                expected.len(),
                "chunk {range:?} ({window:?}) delivered {} frames",
                frames.len()
            );
            let first_wrong = frames.iter().zip(expected).position(|(a, b)| a != b);
            assert_eq!(
                first_wrong, None,
                "chunk {range:?} ({window:?}): frames differ from the whole decode's"
            );
        }
    }
}

#[test]
fn a_long_gop_clip_is_cut_into_frame_exact_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    // 8 s at 25 fps with keyframes 4 s apart and B-frames: the later chunks' decoders seek (the
    // seek margin is 5 s) and must throw away the frames before their window.
    let x264 = [
        "-c:v", "libx264", "-g", "100", "-bf", "2", "-pix_fmt", "yuv420p",
    ];
    make_video(&clip, "64x48", 25, 8.0, &x264);
    let plan = plan(&clip, 60);
    assert_eq!(plan.frame_pts.len(), 200);
    assert_eq!(frame_times(&clip).len(), 200);
    assert!(!plan.count_frames);
    assert_chunks_cover(&plan, 60);
    // The time windows meet at the midpoints between neighbouring frames: no frame falls in
    // two chunks or in none.
    let windows: Vec<FrameWindow> = plan
        .chunks
        .iter()
        .map(|r| chunk_window(&plan, *r, false))
        .collect();
    for pair in windows.windows(2) {
        let (
            FrameWindow::Times { to_secs, .. },
            FrameWindow::Times {
                from_secs,
                seek_secs,
                ..
            },
        ) = (&pair[0], &pair[1])
        else {
            panic!("windows by time expected: {pair:?}");
        };
        assert_eq!(to_secs, from_secs);
        assert!(*seek_secs <= from_secs.unwrap(), "{pair:?}");
    }
    let last_seek = match windows.last().unwrap() {
        FrameWindow::Times { seek_secs, .. } => *seek_secs,
        other => panic!("{other:?}"),
    };
    assert!(last_seek > 0.0, "the last chunk's decoder should seek");
    let whole = decode(&plan, None);
    assert_eq!(whole.len(), 200);
    assert_frame_exact(&plan, &whole);
}

#[test]
fn a_variable_rate_clip_is_cut_into_frame_exact_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("vfr.mkv");
    // Frames dropped in an uneven pattern: the gaps between frames vary.
    make_vfr_clip_with_audio(&clip, 2);
    let times = frame_times(&clip);
    let plan = plan(&clip, 7);
    assert_eq!(plan.frame_pts.len(), times.len());
    let steps: Vec<i64> = plan.frame_pts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        steps.iter().any(|s| *s != steps[0]),
        "the clip should have uneven frame gaps: {steps:?}"
    );
    assert_chunks_cover(&plan, 7);
    let whole = decode(&plan, None);
    assert_eq!(whole.len(), times.len());
    assert_frame_exact(&plan, &whole);
}

#[test]
fn the_assembly_list_gives_each_chunk_the_time_to_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    fresco_testkit::media::make_h264(&clip, "64x48", 25, 1.0);
    let plan = plan(&clip, 10);
    assert_chunks_cover(&plan, 10);
    let files: Vec<_> = (0..plan.chunks.len())
        .map(|n| dir.path().join(format!("chunk-{n:05}.nut")))
        .collect();
    let list = concat_list(&plan, &files);
    let durations: Vec<i64> = list
        .lines()
        .filter_map(|l| l.strip_prefix("duration "))
        .map(|d| d.trim_end_matches("us").parse().unwrap())
        .collect();
    // 25 frames in chunks of 10: two durations of 10 frames at 25 fps; the last chunk keeps
    // its own.
    assert_eq!(durations, [400_000, 400_000], "{list}");
    let named: Vec<&str> = list
        .lines()
        .filter_map(|l| l.strip_prefix("file '"))
        .collect();
    assert_eq!(named.len(), 3, "{list}");
    assert!(named[0].ends_with("chunk-00000.nut'"), "{list}");
    assert!(named[2].ends_with("chunk-00002.nut'"), "{list}");
}
