//! A video in chunks: the stages of a durable job.
//!
//! ```text
//! plan_job:     probe, plan, scan frame timestamps, size and cut frame ranges -> JobPlan (stored in the queue)
//! score_chunk:  decode frames a..b, run the model, encode with the job's settings -> chunk-NNNNN.nut (any worker)
//! assemble:     ffconcat of the chunks with exact durations + the input's other streams -> output
//! ```
//!
//! A chunk is a frame range, exact whatever the keyframe spacing: its decoder seeks to a
//! keyframe before the range and keeps the frames whose time lies between the midpoints to
//! the neighbouring frames (or, on a retry, decodes from the start and counts frames). Each
//! chunk is encoded with timestamps from zero; at assembly every chunk gets the exact duration
//! up to the next chunk's first frame, computed from cumulative times so rounding never adds
//! up, and the whole is shifted to the input's first frame time. Rotation is baked into the
//! pixels when decoding, so the chunks need no display matrix.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fresco_core::FrameRange;
use fresco_infer::Engine;
use fresco_temporal::BlendSettings;
use serde::{Deserialize, Serialize};

use crate::error::RunError;
use crate::output::TempOutput;
use crate::plan::{FrameWindow, VideoOptions, VideoSettings};
use crate::sizing::ChunkSizing;
use crate::video::{prepare_video, pump_plan_frames, FramePass, Progress, Tools};

/// How far before a chunk's first frame its decoder seeks, in seconds: formats whose seeking is
/// approximate (MPEG-TS) may land a little late; a late landing is caught by the frame count.
/// Inputs with longer keyframe intervals may miss the first frames of a chunk; that is caught
/// by the frame count and the chunk is decoded again by counting frames from the start.
const SEEK_MARGIN_SECS: f64 = 5.0;

/// Everything decided for a job before any chunk is scored; stored with the job so that every
/// worker, on any machine, scores and assembles the same way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobPlan {
    pub video: VideoSettings,
    /// Every frame's timestamp, in the video stream's time base, in decode order. Stored as
    /// runs of equal steps, so a constant-rate input of any length takes a few bytes in the
    /// queue, where every claim reads it.
    #[serde(with = "pts_runs")]
    pub frame_pts: Vec<i64>,
    pub chunks: Vec<FrameRange>,
    pub warnings: Vec<String>,
    /// Frame timestamps are not strictly increasing (repeated or out of order), so a time
    /// window could take a neighbour's frame: chunks are decoded by counting frames instead.
    #[serde(default)]
    pub count_frames: bool,
}

/// Plans a job: checks and probes the input, scans its frames and cuts them into chunks sized
/// as `sizing` says (a calibration times the model once the frame size is known).
pub fn plan_job(
    tools: &Tools,
    input: &Path,
    output: &Path,
    options: &VideoOptions,
    sizing: ChunkSizing<'_>,
) -> Result<JobPlan, RunError> {
    let prepared = prepare_video(tools, input, output, options)?;
    let frames = prepared.frame_pts.len() as u64;
    let chunk_frames = sizing.frames_per_chunk(&prepared.plan, frames);
    let chunks = fresco_core::split_frames(frames, chunk_frames);
    let count_frames = !prepared.frame_pts.windows(2).all(|w| w[0] < w[1]);
    Ok(JobPlan {
        video: prepared.plan,
        frame_pts: prepared.frame_pts,
        chunks,
        warnings: prepared.warnings,
        count_frames,
    })
}

/// Which frames a chunk's decoder delivers: by time after a seek (fast), or, when `by_number`,
/// by counting from the start (exact for any input, for a retry after a miscount).
pub fn chunk_window(plan: &JobPlan, range: FrameRange, by_number: bool) -> FrameWindow {
    if by_number || plan.count_frames {
        return FrameWindow::Numbers {
            start: range.start,
            end: range.end,
        };
    }
    let (num, den) = plan.video.time_base;
    let secs = |ticks: f64| ticks * num as f64 / den as f64;
    let pts = &plan.frame_pts;
    let (s, e) = (range.start as usize, range.end as usize);
    let from_secs = (s > 0).then(|| secs((pts[s - 1] as f64 + pts[s] as f64) / 2.0));
    let to_secs = (e < pts.len()).then(|| secs((pts[e - 1] as f64 + pts[e] as f64) / 2.0));
    let seek_secs = if s > 0 {
        (secs((pts[s] - pts[0]) as f64) - SEEK_MARGIN_SECS).max(0.0)
    } else {
        0.0
    };
    FrameWindow::Times {
        seek_secs,
        from_secs,
        to_secs,
    }
}

/// What scoring a chunk did.
#[derive(Debug, Clone, Copy)]
pub struct ChunkStats {
    pub frames: u64,
    pub seconds: f64,
    pub model_seconds: f64,
}

/// Scores the frames of `range` into the chunk file `out`. The file is written under a
/// temporary name beside `out` and renamed into place only once complete.
#[allow(clippy::too_many_arguments)]
pub fn score_chunk(
    tools: &Tools,
    plan: &JobPlan,
    range: FrameRange,
    by_number: bool,
    engine: &mut Engine,
    out: &Path,
    cancel: &Arc<AtomicBool>,
    progress: &mut dyn FnMut(Progress),
) -> Result<ChunkStats, RunError> {
    let started = Instant::now();
    let base = plan.frame_pts[range.start as usize];
    let pts: Vec<i64> = plan.frame_pts[range.start as usize..range.end as usize]
        .iter()
        .map(|p| p - base)
        .collect();
    let partial = partial_path(out);
    let _cleanup = RemoveOnDrop(partial.clone());
    // `--temporal`: the chunk's decoder starts a few frames early, so that the blend has settled
    // by its first frame, and a retried chunk scores the same frames.
    let warm_up = if plan.video.temporal {
        range
            .start
            .min(u64::from(BlendSettings::default().warm_up_frames))
    } else {
        0
    };
    let scored = FrameRange {
        start: range.start - warm_up,
        end: range.end,
    };
    let window = chunk_window(plan, scored, by_number);
    let pass = FramePass {
        plan: &plan.video,
        decoder_args: plan.video.window_decoder_args(Some(&window)),
        encoder_args: plan.video.chunk_encoder_args(&partial),
        pts: &pts,
        temp_path: &partial,
        bounded: range.end < plan.frame_pts.len() as u64,
        warm_up,
    };
    let stats = pump_plan_frames(tools, &pass, engine, cancel, progress)?;
    // On disk before it is renamed: a chunk file that exists is a complete one, even after a
    // power cut.
    let synced = std::fs::File::open(&partial).and_then(|f| f.sync_all());
    synced
        .and_then(|()| std::fs::rename(&partial, out))
        .map_err(|e| RunError::OutputUnwritable {
            path: out.to_path_buf(),
            reason: format!("cannot move the finished chunk into place: {e}"),
        })?;
    Ok(ChunkStats {
        frames: stats.frames,
        seconds: started.elapsed().as_secs_f64(),
        model_seconds: stats.model_time.as_secs_f64(),
    })
}

/// The temporary name a chunk is written under: `NAME.partial~HOST~PID~SALT`, unique per
/// machine, process and call, so that a sweep can tell which are orphans: those of a process
/// that is gone from this machine, or old ones from other machines.
pub fn partial_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "chunk".into());
    let salt: u32 = rand_salt();
    out.with_file_name(format!(
        "{name}{PARTIAL_MARK}{}~{}~{salt:08x}",
        host_name(),
        std::process::id()
    ))
}

/// What marks a partial file's name.
pub const PARTIAL_MARK: &str = ".partial~";

/// This machine's name.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).replace('~', "-")
}

fn rand_salt() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish() as u32
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Joins the scored chunks (in order, one file per range of `plan.chunks`) with the input's
/// other streams into `plan.video.output`, verifies the frame count, and publishes it
/// atomically. `overwrite` as for `fresco run`. `before_publish` gets the finished temporary
/// file just before it is renamed into place; an error from it abandons the output.
pub fn assemble(
    tools: &Tools,
    plan: &JobPlan,
    chunk_files: &[PathBuf],
    work_dir: &Path,
    overwrite: bool,
    before_publish: &mut dyn FnMut(&Path) -> Result<(), RunError>,
) -> Result<PathBuf, RunError> {
    let video = &plan.video;
    if chunk_files.len() != plan.chunks.len() {
        return Err(RunError::Encode {
            path: video.output.clone(),
            reason: format!(
                "{} chunk files for {} chunks",
                chunk_files.len(),
                plan.chunks.len()
            ),
        });
    }
    for file in chunk_files {
        if !file.is_file() {
            return Err(RunError::Encode {
                path: video.output.clone(),
                reason: format!("the scored chunk {} is missing", file.display()),
            });
        }
    }
    let list = work_dir.join("chunks.ffconcat");
    std::fs::write(&list, concat_list(plan, chunk_files)).map_err(|e| {
        RunError::OutputUnwritable {
            path: list.clone(),
            reason: e.to_string(),
        }
    })?;
    let temp = TempOutput::create(&video.output, overwrite)?;
    let offset_us = ticks_to_us(plan.frame_pts[0], video.time_base);
    join_chunks(tools, video, &list, offset_us, temp.path())?;
    let (mut frames, mut first_secs, mut last_secs) = scan_video_packets(tools, temp.path())?;
    let (num, den) = video.time_base;
    let secs = |ticks: i64| ticks as f64 * num as f64 / den as f64;
    // A muxer that moves every stream to make a copied one non-negative (Matroska under Opus
    // in ffmpeg 5.1, from inputs where the plan could not tell) moves the video with it: it is
    // joined again, placed earlier by what was measured. Matroska's times are in
    // milliseconds, so a smaller difference is rounding.
    let drift = first_secs.map_or(0.0, |first| first - secs(plan.frame_pts[0]));
    if matches!(video.container().as_str(), "mkv" | "mka" | "webm") && drift.abs() > 0.002 {
        let corrected = offset_us - (drift * 1e6).round() as i64;
        join_chunks(tools, video, &list, corrected, temp.path())?;
        (frames, first_secs, last_secs) = scan_video_packets(tools, temp.path())?;
        tracing::debug!(
            drift,
            first = ?first_secs,
            "joined again: the muxer had moved the video"
        );
    }
    let expected = plan.frame_pts.len() as u64;
    if frames != expected {
        return Err(RunError::Encode {
            path: video.output.clone(),
            reason: format!("the joined video has {frames} frames, expected {expected}"),
        });
    }
    // The duration: the last frame must sit where the input's last frame does (the first one
    // is pinned by the offset), to within the longest gap between the input's frames.
    let want_last = secs(*plan.frame_pts.last().expect("a plan has frames"));
    let slack = plan
        .frame_pts
        .windows(2)
        .map(|w| secs(w[1] - w[0]))
        .fold(0.001, f64::max);
    if let Some(last) = last_secs {
        if (last - want_last).abs() > slack {
            return Err(RunError::Encode {
                path: video.output.clone(),
                reason: format!(
                    "the joined video's last frame is at {last:.3} s, the input's at {want_last:.3} s"
                ),
            });
        }
    }
    before_publish(temp.path())?;
    temp.commit()
}

/// Joins the chunks listed in `list` with the input's other streams into `out`, the video
/// placed at `offset_us`.
fn join_chunks(
    tools: &Tools,
    video: &VideoSettings,
    list: &Path,
    offset_us: i64,
    out: &Path,
) -> Result<(), RunError> {
    let args = video.assemble_args(list, offset_us, out);
    tools
        .ffmpeg
        .output(&args, Duration::from_secs(3600))
        .map(drop)
        .map_err(|e| {
            crate::video::refused_or(&video.input, e, |e| match e {
                // Past the plan's checks, but the same on every try: not worth retrying.
                fresco_media::process::ProcessError::Failed { stderr_tail, .. }
                    if crate::container::muxer_refused(&stderr_tail) =>
                {
                    RunError::EncoderUnusable {
                        path: video.output.clone(),
                        reason: format!(
                            "the .{} muxer refused the joined streams (it would on every try): {}",
                            video.container(),
                            fresco_media::process::last_lines(&stderr_tail, 3)
                        ),
                    }
                }
                fresco_media::process::ProcessError::Failed { stderr_tail, .. } => {
                    RunError::Encode {
                        path: video.output.clone(),
                        reason: format!(
                            "joining the chunks failed: {}",
                            fresco_media::process::last_lines(&stderr_tail, 3)
                        ),
                    }
                }
                other => RunError::Tool(other),
            })
        })
}

/// An ffconcat list: each chunk with the exact duration up to the next chunk's first frame
/// (cumulative times rounded once, so the durations telescope); the last keeps its own.
pub fn concat_list(plan: &JobPlan, chunk_files: &[PathBuf]) -> String {
    let tb = plan.video.time_base;
    let first = plan.frame_pts[0];
    let mut list = String::from("ffconcat version 1.0\n");
    for (i, (range, file)) in plan.chunks.iter().zip(chunk_files).enumerate() {
        let path = file.to_string_lossy().replace('\'', "'\\''");
        list.push_str(&format!("file '{path}'\n"));
        if i + 1 < plan.chunks.len() {
            let start = ticks_to_us(plan.frame_pts[range.start as usize] - first, tb);
            let end = ticks_to_us(plan.frame_pts[range.end as usize] - first, tb);
            list.push_str(&format!("duration {}us\n", end - start));
        }
    }
    list
}

fn ticks_to_us(ticks: i64, (num, den): (u64, u64)) -> i64 {
    let us = ticks as i128 * num as i128 * 1_000_000;
    let den = den as i128;
    // Round half away from zero.
    ((us + us.signum() * den / 2) / den) as i64
}

/// Video packets in a file we wrote (one per frame for the codecs we encode), and the earliest
/// and latest presentation times among them, in seconds.
fn scan_video_packets(
    tools: &Tools,
    path: &Path,
) -> Result<(u64, Option<f64>, Option<f64>), RunError> {
    let args: Vec<std::ffi::OsString> = [
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time",
        "-of",
        "csv=p=0",
    ]
    .iter()
    .map(Into::into)
    .chain(std::iter::once(path.as_os_str().to_os_string()))
    .collect();
    // A line per packet, counted as it comes: hours of video never sit in memory.
    let mut count = 0u64;
    let mut first: Option<f64> = None;
    let mut last: Option<f64> = None;
    tools
        .ffprobe
        .each_line(&args, Duration::from_secs(600), 256, |line| {
            let line = line.trim();
            if !line.is_empty() {
                count += 1;
                if let Ok(t) = line.trim_end_matches(',').parse::<f64>() {
                    first = Some(first.map_or(t, |f| f.min(t)));
                    last = Some(last.map_or(t, |l| l.max(t)));
                }
            }
            std::ops::ControlFlow::<()>::Continue(())
        })
        .map_err(RunError::from)?;
    Ok((count, first, last))
}

/// Writes `text` to `path` through a temporary name, so a reader never sees half of it.
pub fn write_atomically(path: &Path, text: &[u8]) -> std::io::Result<()> {
    let partial = partial_path(path);
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(text)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

/// Timestamps as `{"first": P, "runs": [[STEP, COUNT], ...]}`: each run adds STEP, COUNT times.
mod pts_runs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Runs {
        first: Option<i64>,
        runs: Vec<(i64, u64)>,
    }

    pub fn serialize<S: Serializer>(pts: &[i64], serializer: S) -> Result<S::Ok, S::Error> {
        let mut runs: Vec<(i64, u64)> = Vec::new();
        for pair in pts.windows(2) {
            let step = pair[1] - pair[0];
            match runs.last_mut() {
                Some((last, count)) if *last == step => *count += 1,
                _ => runs.push((step, 1)),
            }
        }
        Runs {
            first: pts.first().copied(),
            runs,
        }
        .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<i64>, D::Error> {
        let Runs { first, runs } = Runs::deserialize(deserializer)?;
        let Some(mut at) = first else {
            return Ok(Vec::new());
        };
        let total: u64 = runs.iter().map(|(_, n)| n).sum();
        let mut pts = Vec::with_capacity(total as usize + 1);
        pts.push(at);
        for (step, count) in runs {
            for _ in 0..count {
                at += step;
                pts.push(at);
            }
        }
        Ok(pts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Wrapped(#[serde(with = "pts_runs")] Vec<i64>);

    #[test]
    fn timestamps_round_trip_as_runs() {
        for pts in [
            vec![],
            vec![7],
            vec![0, 512, 1024, 1536],
            vec![100, 103, 110, 110, 90, 91, 92, 200],
        ] {
            let text = serde_json::to_string(&Wrapped(pts.clone())).unwrap();
            let back: Wrapped = serde_json::from_str(&text).unwrap();
            assert_eq!(back.0, pts, "{text}");
        }
        // Three hours at 30 fps, constant rate: a few bytes, not megabytes.
        let long: Vec<i64> = (0..324_000).map(|i| i * 3003).collect();
        let text = serde_json::to_string(&Wrapped(long.clone())).unwrap();
        assert!(text.len() < 64, "{} bytes", text.len());
        assert_eq!(serde_json::from_str::<Wrapped>(&text).unwrap().0, long);
    }

    #[test]
    fn microseconds_round_to_nearest() {
        assert_eq!(ticks_to_us(1, (1, 3)), 333_333);
        assert_eq!(ticks_to_us(2, (1, 3)), 666_667);
        assert_eq!(ticks_to_us(3003, (1, 30000)), 100_100);
        assert_eq!(ticks_to_us(-1, (1, 3)), -333_333);
    }
}
