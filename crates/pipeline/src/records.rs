//! Records jobs (`.jsonl`/`.parquet` outputs): planned like videos (probe, frame scan, chunks)
//! but with no encoder, and decoded only at the sampled frames, scaled in ffmpeg to the size
//! the scoring model's preparation asks for.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fresco_core::FrameRange;
use fresco_media::input::input_args;
use fresco_media::probe;

use crate::chunk::JobPlan;
use crate::error::RunError;
use crate::plan::{video_settings, VideoOptions};
use crate::video::{check_input_file, check_output_target, Tools};

const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
const FRAME_SCAN_TIMEOUT: Duration = Duration::from_secs(3600);

/// Frames per chunk of a records job when the job does not say: decoding a sampled frame is
/// cheap next to scoring it, and chunks are retried whole.
pub const RECORDS_CHUNK_FRAMES: u64 = 250;

/// Plans a records job: the input checked, probed and its frames scanned (their timestamps are
/// the records' `pts`), cut into chunks of `chunk_frames` decoded frames.
pub fn plan_records(
    tools: &Tools,
    input: &Path,
    output: &Path,
    options: &VideoOptions,
    chunk_frames: Option<u64>,
) -> Result<JobPlan, RunError> {
    check_input_file(input)?;
    check_output_target(output, options.overwrite)?;
    let report = probe::probe(&tools.ffprobe, input, PROBE_TIMEOUT)
        .map_err(|e| crate::video::probe_error(input, e))?;
    let subject = input.display().to_string();
    report
        .check_limits(&options.limits, &subject)
        .map_err(RunError::OverLimit)?;
    // The video plan gives the displayed size, time base and stream; its encoder is unused
    // (a stand-in container for the plan's own choices).
    let mut video = video_settings(input, &output.with_extension("mkv"), &report, options)?;
    video.output = output.to_path_buf();
    let scan = probe::ScanLimits {
        limits: &options.limits,
        time_base: video.time_base,
        subject: &subject,
    };
    let times = probe::frame_times(
        &tools.ffprobe,
        input,
        video.video_ordinal,
        scan,
        FRAME_SCAN_TIMEOUT,
    )
    .map_err(|e| crate::video::probe_error(input, e))?;
    if times.pts.is_empty() {
        return Err(RunError::Decode {
            path: input.to_path_buf(),
            reason: "no video frame could be decoded".into(),
        });
    }
    let frames = times.pts.len() as u64;
    let chunks = fresco_core::split_frames(frames, chunk_frames.unwrap_or(RECORDS_CHUNK_FRAMES));
    let count_frames = !times.pts.windows(2).all(|w| w[0] < w[1]);
    Ok(JobPlan {
        video,
        frame_pts: times.pts,
        chunks,
        warnings: Vec::new(),
        count_frames,
    })
}

/// Seconds of a timestamp in the plan's time base.
pub fn seconds(plan: &JobPlan, pts: i64) -> f64 {
    let (num, den) = plan.video.time_base;
    pts as f64 * num as f64 / den.max(1) as f64
}

/// Every frame's time in seconds, in decode order.
pub fn frame_seconds(plan: &JobPlan) -> Vec<f64> {
    plan.frame_pts.iter().map(|p| seconds(plan, *p)).collect()
}

/// What [`decode_sampled`] gives each frame to: its decode-order index and RGB24 bytes.
pub type SampledFrame<'a> = dyn FnMut(u64, &[u8]) -> Result<(), RunError> + 'a;

/// Decodes the frames of `picks` (decode-order indices, increasing, all in `range`), rotated
/// upright and scaled to `width`x`height` RGB24 by ffmpeg, and gives each to `frame` with its
/// index. Frames are counted from the start of the input (exact for any input); the decoder
/// stops after the range's last pick.
pub fn decode_sampled(
    tools: &Tools,
    plan: &JobPlan,
    picks: &[u64],
    (width, height): (u32, u32),
    cancel: &Arc<AtomicBool>,
    frame: &mut SampledFrame<'_>,
) -> Result<(), RunError> {
    if picks.is_empty() {
        return Ok(());
    }
    let video = &plan.video;
    let filters = [
        format!("select='{}'", select_expression(picks)),
        format!("scale={width}:{height}:flags=bilinear"),
        "format=rgb24".to_string(),
    ];
    let mut args: Vec<std::ffi::OsString> = ["-nostdin", "-hide_banner", "-v", "error"]
        .map(Into::into)
        .to_vec();
    args.extend(crate::hardware::hwaccel_args(video.hwaccel.as_deref()));
    args.extend(input_args(&video.input));
    let last = *picks.last().expect("not empty");
    for a in [
        "-map".to_string(),
        format!("0:v:{}", video.video_ordinal),
        "-vf".into(),
        filters.join(","),
        "-fps_mode".into(),
        "passthrough".into(),
        "-frames:v".into(),
        picks.len().to_string(),
        "-f".into(),
        "rawvideo".into(),
        "pipe:1".into(),
    ] {
        args.push(a.into());
    }
    let mut cmd = tools.ffmpeg.command(&args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| RunError::Decode {
        path: video.input.clone(),
        reason: format!("cannot start ffmpeg: {e}"),
    })?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut buffer = vec![0u8; width as usize * height as usize * 3];
    let mut errors = Some(errors);
    let mut ffmpeg_said = || {
        errors
            .take()
            .and_then(|e| e.join().ok())
            .map(|t| t.trim().to_string())
            .unwrap_or_default()
    };
    let mut got = 0usize;
    let result = (|| {
        for &index in picks {
            if cancel.load(Ordering::SeqCst) {
                return Err(RunError::Canceled);
            }
            if let Err(e) = stdout.read_exact(&mut buffer) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError::Decode {
                    path: video.input.clone(),
                    reason: format!(
                        "ffmpeg gave {got} of {} sampled frames (up to frame {last}): {e} {}",
                        picks.len(),
                        ffmpeg_said()
                    ),
                });
            }
            got += 1;
            frame(index, &buffer)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = child.kill();
    }
    drop(stdout);
    let status = child.wait();
    let text = ffmpeg_said();
    result?;
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(RunError::Decode {
            path: video.input.clone(),
            reason: format!("ffmpeg ended with {s}: {}", text.trim()),
        }),
        Err(e) => Err(RunError::Decode {
            path: video.input.clone(),
            reason: e.to_string(),
        }),
    }
}

/// The decode-order indices in `range` that `picked` (all the job's picks, increasing) holds.
pub fn picks_in(picked: &[u64], range: FrameRange) -> &[u64] {
    let from = picked.partition_point(|&n| n < range.start);
    let to = picked.partition_point(|&n| n < range.end);
    &picked[from..to]
}

/// ffmpeg's `select` expression for the decode-order indices `picks` (increasing, not empty):
/// a range, or a range with a step (every N-th frame; a constant rate's `--fps`), else the
/// frames one by one.
fn select_expression(picks: &[u64]) -> String {
    let first = picks[0];
    let last = *picks.last().expect("not empty");
    let step = picks.get(1).map_or(1, |second| second - first);
    let regular = picks.windows(2).all(|w| w[1] - w[0] == step);
    match (regular, step) {
        (true, 1) => format!("between(n\\,{first}\\,{last})"),
        (true, _) => format!("between(n\\,{first}\\,{last})*not(mod(n-{first}\\,{step}))"),
        _ => picks
            .iter()
            .map(|n| format!("eq(n\\,{n})"))
            .collect::<Vec<_>>()
            .join("+"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_are_ranges_steps_or_lists() {
        assert_eq!(select_expression(&[3, 4, 5]), "between(n\\,3\\,5)");
        assert_eq!(
            select_expression(&[2, 7, 12]),
            "between(n\\,2\\,12)*not(mod(n-2\\,5))"
        );
        assert_eq!(select_expression(&[9]), "between(n\\,9\\,9)");
        assert_eq!(
            select_expression(&[0, 25, 49]),
            "eq(n\\,0)+eq(n\\,25)+eq(n\\,49)"
        );
    }

    #[test]
    fn picks_are_cut_by_chunk() {
        let all = [0, 5, 10, 15, 20];
        assert_eq!(picks_in(&all, FrameRange { start: 5, end: 15 }), &[5, 10]);
        assert_eq!(
            picks_in(&all, FrameRange { start: 21, end: 30 }),
            &[] as &[u64]
        );
    }
}
