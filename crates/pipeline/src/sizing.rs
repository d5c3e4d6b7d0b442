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
                balanced_temporal_halves(two, frames, video.temporal)
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

/// A `--temporal` job cut in two halves scores the second half's warm-up frames too: the first
/// chunk takes half of them more frames of its own, so that two workers score as many frames
/// each and finish together (48 frames with 8 warm-ups: 28, then 20 after 8).
pub fn balanced_temporal_halves(chunk_frames: u64, frames: u64, temporal: bool) -> u64 {
    let warm_up = u64::from(fresco_temporal::BlendSettings::default().warm_up_frames);
    if temporal && chunk_frames == frames.div_ceil(2) && frames > warm_up {
        (frames + warm_up).div_ceil(2)
    } else {
        chunk_frames
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
        let first = balanced_temporal_halves(halves, 48, true);
        assert_eq!(first, (48 + warm_up).div_ceil(2));
        assert_eq!(first, (48 - first) + warm_up);
        assert_eq!(fresco_core::split_frames(48, first).len(), 2);
        // Per-frame styling, and chunks that are not halves, stay as they were.
        assert_eq!(balanced_temporal_halves(24, 48, false), 24);
        assert_eq!(balanced_temporal_halves(96, 1000, true), 96);
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
