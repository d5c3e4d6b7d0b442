//! How many frames go in each chunk of a job, decided when the job is planned
//! ([`crate::chunk::plan_job`]): the number the job fixed, or as many as take about
//! [`CHUNK_TARGET_SECS`] of model time on the planning machine, timed there on a small frame.

use std::time::Instant;

use fresco_infer::Engine;

use crate::plan::VideoSettings;

/// Target model time per chunk when a job does not fix its chunk size.
pub const CHUNK_TARGET_SECS: f64 = 30.0;
pub const MIN_CHUNK_FRAMES: u64 = 8;
pub const MAX_CHUNK_FRAMES: u64 = 5000;
/// A `--temporal` chunk writes at least this many times its warm-up frames (an eighth more
/// frames scored at most), unless the job is too short for two such chunks.
pub const TEMPORAL_CHUNK_WARM_UPS: u64 = 8;
/// Most pixels of the frame that calibration times (320x180).
pub const CALIBRATION_PIXELS: u64 = 320 * 180;

/// How a job's frames are cut into chunks.
pub enum ChunkSizing<'e> {
    /// This many frames per chunk (at least one): the job's `chunk_frames`.
    Frames(u64),
    /// About [`CHUNK_TARGET_SECS`] of model time per chunk, timed with this engine (the job's
    /// model, loaded on the planning worker's device), and at least two chunks where the job
    /// has frames for two minimal ones.
    Calibrate(&'e mut Engine),
}

impl ChunkSizing<'_> {
    /// Frames per chunk for a job of `frames` frames planned as `video`.
    pub fn frames_per_chunk(self, video: &VideoSettings, frames: u64) -> u64 {
        match self {
            ChunkSizing::Frames(n) => n.max(1),
            ChunkSizing::Calibrate(engine) => {
                let calibrated = calibrated_chunk_frames(engine, video);
                let two =
                    at_least_two_chunks(temporal_chunk_frames(calibrated, video.temporal), frames);
                balanced_chunks(two, frames, video.temporal)
            }
        }
    }
}

/// `--temporal` chunks score their warm-up frames too: at least
/// [`TEMPORAL_CHUNK_WARM_UPS`] times as many frames written keeps the warm-up's cost small.
pub fn temporal_chunk_frames(chunk_frames: u64, temporal: bool) -> u64 {
    if temporal {
        let warm_up = u64::from(fresco_temporal::BlendSettings::default().warm_up_frames);
        chunk_frames.max(TEMPORAL_CHUNK_WARM_UPS * warm_up)
    } else {
        chunk_frames
    }
}

/// The planner counts on two workers (as [`at_least_two_chunks`] does): they finish together
/// only when a job has an even number of chunks of equal cost. A job cut into an odd number
/// leaves one worker scoring the last chunk alone; with `--temporal`'s 64-frame minimum that
/// was 192 frames in three chunks, two of them on one worker, and 0.73 of per-frame
/// styling's throughput. So an odd count of three or more becomes even: one chunk more per
/// frame (shorter chunks, under the calibrated time), one fewer with `--temporal` (longer
/// chunks, each still at least eight warm-ups long). And `--temporal` chunks after the first
/// also score their warm-up frames, so the first chunk is longer by a warm-up's share: chunks
/// of (frames + warm-up) / count, the last one shorter by about a warm-up (48 frames with 8
/// warm-ups: 28, then 20 after 8; 192: 100, then 92 after 8).
pub fn balanced_chunks(chunk_frames: u64, frames: u64, temporal: bool) -> u64 {
    let chunk_frames = chunk_frames.max(1);
    let mut count = frames.div_ceil(chunk_frames);
    if count < 2 {
        return chunk_frames;
    }
    if count % 2 == 1 {
        count = if temporal { count - 1 } else { count + 1 };
    }
    let warm_up = if temporal {
        u64::from(fresco_temporal::BlendSettings::default().warm_up_frames)
    } else {
        0
    };
    let balanced = (frames + warm_up).div_ceil(count);
    // The warm-up share must not cost a chunk (it cannot where chunks are longer than
    // warm-ups), nor may longer chunks pass the maximum.
    let plain = frames.div_ceil(count);
    let pick = if frames.div_ceil(balanced) == count { balanced } else { plain };
    if pick > MAX_CHUNK_FRAMES {
        chunk_frames
    } else {
        pick
    }
}

/// Caps a calibrated chunk size so that a job of at least two minimal chunks has two chunks or
/// more: two workers (`fresco run`'s default on a multi-core CPU, or two machines) can then share
/// any but the shortest job, for the cost of one more encoder start (about 0.2 s).
pub fn at_least_two_chunks(chunk_frames: u64, frames: u64) -> u64 {
    if frames >= 2 * MIN_CHUNK_FRAMES {
        chunk_frames.min(frames.div_ceil(2))
    } else {
        chunk_frames
    }
}

/// Frames per chunk so that a chunk costs about [`CHUNK_TARGET_SECS`] of model time on this
/// machine: the model is timed on one frame (after a warm-up frame) of at most
/// [`CALIBRATION_PIXELS`], with the job's aspect, and the time scaled to the job's frame size
/// (the networks' cost is linear in pixels). Timing a full frame twice cost as much as two
/// frames of the job: 5 s at 720p, 3% of a 3 s clip.
fn calibrated_chunk_frames(engine: &mut Engine, video: &VideoSettings) -> u64 {
    let (w, h) = (video.model_width, video.model_height);
    let (cw, ch) = calibration_size(w, h);
    let pixels = cw as usize * ch as usize * 3;
    let input = vec![128u8; pixels];
    let mut output = vec![0u8; pixels];
    let mut per_frame = None;
    for _ in 0..2 {
        let t0 = Instant::now();
        if engine.style_rgb(cw, ch, &input, &mut output).is_err() {
            break;
        }
        let scale = (w as f64 * h as f64) / (cw as f64 * ch as f64);
        per_frame = Some(t0.elapsed().as_secs_f64() * scale);
    }
    let frames = match per_frame {
        Some(secs) if secs > 0.0 => (CHUNK_TARGET_SECS / secs).round() as u64,
        _ => MAX_CHUNK_FRAMES,
    };
    let frames = frames.clamp(MIN_CHUNK_FRAMES, MAX_CHUNK_FRAMES);
    tracing::info!(
        "calibration: {:.3} s per {w}x{h} frame (timed at {cw}x{ch}) -> {frames} frames per chunk",
        per_frame.unwrap_or(0.0)
    );
    frames
}

/// The job's frame size scaled down to at most [`CALIBRATION_PIXELS`], keeping its aspect;
/// sides are multiples of 4 (the networks' stride), at least 4.
pub fn calibration_size(w: u32, h: u32) -> (u32, u32) {
    let pixels = w as u64 * h as u64;
    if pixels <= CALIBRATION_PIXELS {
        return (w, h);
    }
    let factor = (CALIBRATION_PIXELS as f64 / pixels as f64).sqrt();
    let side = |n: u32| (((n as f64 * factor) / 4.0).floor() as u32 * 4).max(4);
    (side(w), side(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_times_a_small_frame_of_the_same_aspect() {
        // 720p: a sixteenth of the pixels, sides multiples of 4.
        assert_eq!(calibration_size(1280, 720), (320, 180));
        let (w, h) = calibration_size(1920, 1080);
        assert!(w % 4 == 0 && h % 4 == 0);
        assert!((w as u64 * h as u64) <= CALIBRATION_PIXELS);
        assert!((w as f64 / h as f64 - 16.0 / 9.0).abs() < 0.05);
        // Small frames are timed as they are.
        assert_eq!(calibration_size(320, 180), (320, 180));
        assert_eq!(calibration_size(128, 72), (128, 72));
        // Extreme aspects never reach zero.
        assert_eq!(calibration_size(100_000, 2).1, 4);
    }

    #[test]
    fn temporal_chunks_are_eight_warm_ups_long_at_least() {
        let warm_up = u64::from(fresco_temporal::BlendSettings::default().warm_up_frames);
        assert_eq!(temporal_chunk_frames(13, false), 13);
        assert_eq!(temporal_chunk_frames(13, true), 8 * warm_up);
        assert_eq!(temporal_chunk_frames(400, true), 400);
        // A 48-frame clip still gets two chunks, the first longer by half the second's warm-up.
        let halves = at_least_two_chunks(temporal_chunk_frames(13, true), 48);
        assert_eq!(halves, 24);
        let first = balanced_chunks(halves, 48, true);
        assert_eq!(first, (48 + warm_up).div_ceil(2));
        assert_eq!(first, (48 - first) + warm_up);
        assert_eq!(fresco_core::split_frames(48, first).len(), 2);
    }

    /// What each of two workers scores, taking the next chunk as it finishes one (the queue's
    /// order), chunks after the first scoring `warm_up` more frames.
    fn two_workers(frames: u64, chunk_frames: u64, warm_up: u64) -> (u64, u64) {
        let mut busy = [0u64, 0u64];
        for (i, range) in fresco_core::split_frames(frames, chunk_frames).iter().enumerate() {
            let cost = range.end - range.start + if i > 0 { warm_up.min(range.start) } else { 0 };
            let next = if busy[0] <= busy[1] { 0 } else { 1 };
            busy[next] += cost;
        }
        (busy[0], busy[1])
    }

    #[test]
    fn two_workers_finish_together() {
        let warm_up = u64::from(fresco_temporal::BlendSettings::default().warm_up_frames);
        // The real clip's 192 frames with --temporal: three 64-frame chunks left one worker
        // with 136 frames and the other with 72; now two chunks, 100 frames each.
        assert_eq!(two_workers(192, 64, warm_up), (136, 72));
        let chunk = balanced_chunks(at_least_two_chunks(temporal_chunk_frames(26, true), 192), 192, true);
        assert_eq!(fresco_core::split_frames(192, chunk).len(), 2);
        assert_eq!(two_workers(192, chunk, warm_up), (100, 100));
        // Five chunks become four, each pair of workers' shares within a frame or two.
        let chunk = balanced_chunks(64, 300, true);
        assert_eq!(fresco_core::split_frames(300, chunk).len(), 4);
        let (a, b) = two_workers(300, chunk, warm_up);
        assert!(a.abs_diff(b) <= 2, "{a} against {b}");
        assert!(chunk >= TEMPORAL_CHUNK_WARM_UPS * warm_up);
        // Per frame: seven calibrated chunks become eight shorter ones.
        let chunk = balanced_chunks(30, 200, false);
        assert!(chunk <= 30);
        assert_eq!(fresco_core::split_frames(200, chunk).len(), 8);
        let (a, b) = two_workers(200, chunk, 0);
        assert!(a.abs_diff(b) <= chunk, "{a} against {b}");
        // Even counts of equal chunks stay; one chunk stays one.
        assert_eq!(balanced_chunks(25, 200, false), 25);
        assert_eq!(balanced_chunks(400, 300, true), 400);
        assert_eq!(balanced_chunks(100, 17, false), 100);
        // Never past the maximum chunk.
        assert!(balanced_chunks(MAX_CHUNK_FRAMES, 3 * MAX_CHUNK_FRAMES, true) <= MAX_CHUNK_FRAMES);
    }

    #[test]
    fn jobs_of_two_minimal_chunks_or_more_get_two_chunks_or_more() {
        // A 2 s 360p clip whose calibration says one chunk of 43 frames: two of 25 and 25.
        assert_eq!(at_least_two_chunks(43, 50), 25);
        assert_eq!(fresco_core::split_frames(50, 25).len(), 2);
        // Odd counts round up: 17 frames -> 9 + 8.
        assert_eq!(at_least_two_chunks(100, 17), 9);
        // Long jobs keep the calibrated size.
        assert_eq!(at_least_two_chunks(11, 1000), 11);
        // Below two minimal chunks (16 frames), one chunk is cheaper.
        assert_eq!(at_least_two_chunks(100, 15), 100);
        assert_eq!(at_least_two_chunks(100, 1), 100);
    }
}
