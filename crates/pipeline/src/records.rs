//! Records jobs (`.jsonl`/`.parquet` outputs): planned like videos (probe, frame scan, chunks;
//! the scan reads the packets where they stand for the frames, see
//! [`fresco_media::packet_scan`]) but with no encoder, and decoded only at the sampled frames,
//! scaled in ffmpeg to the size the scoring model's preparation asks for.

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fresco_core::scoring::Sampling;
use fresco_core::FrameRange;
use fresco_media::input::input_args;
use fresco_media::{packet_scan, probe};

use crate::chunk::{chunk_window, JobPlan};
use crate::error::RunError;
use crate::plan::{video_settings, FrameWindow, VideoOptions};
use crate::sizing::{at_least_two_chunks, CHUNK_TARGET_SECS, MIN_CHUNK_FRAMES};
use crate::video::{check_input_file, check_output_target, Tools};

const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
const FRAME_SCAN_TIMEOUT: Duration = Duration::from_secs(3600);

/// How a records job's frames are cut into chunks.
pub enum RecordsSizing<'s> {
    /// This many input frames per chunk (at least one): the job's `chunk_frames`.
    Frames(u64),
    /// Chunks of about [`CHUNK_TARGET_SECS`] of model time, counted in frames that `sampling`
    /// picks (a chunk of `--fps 1` holds as many scored frames as one of every frame), at
    /// `seconds_per_frame` each as timed on the planning machine; at least two chunks where the
    /// job samples frames for two minimal ones.
    Sampled {
        sampling: &'s Sampling,
        seconds_per_frame: f64,
    },
}

/// Most sampled frames in a records chunk: a chunk is retried whole, and its decoder's
/// selection holds a window per pick.
pub const MAX_SAMPLED_PER_CHUNK: u64 = 2000;

/// Plans a records job: the input checked, probed and its frames scanned (their timestamps are
/// the records' `pts`), cut into chunks as `sizing` says.
pub fn plan_records(
    tools: &Tools,
    input: &Path,
    output: &Path,
    options: &VideoOptions,
    sizing: RecordsSizing<'_>,
) -> Result<JobPlan, RunError> {
    let mut plan = scan_records(tools, input, output, options)?;
    cut_records(&mut plan, sizing);
    Ok(plan)
}

/// The first half of [`plan_records`]: the input checked, probed and its frames scanned, in a
/// plan with no chunks yet (a worker scans while it loads and times the model).
pub fn scan_records(
    tools: &Tools,
    input: &Path,
    output: &Path,
    options: &VideoOptions,
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
    let stream = report.video_stream().ok_or_else(|| RunError::NotMedia {
        path: input.to_path_buf(),
        reason: "it has no video stream".into(),
    })?;
    // Only the timestamps are needed (the decoder scales whatever size comes): read from the
    // packets where they stand for the frames, decoded otherwise.
    let times = packet_scan::frame_pts(
        &tools.ffprobe,
        input,
        stream,
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
    let count_frames = !times.pts.windows(2).all(|w| w[0] < w[1]);
    Ok(JobPlan {
        video,
        frame_pts: times.pts,
        chunks: Vec::new(),
        warnings: Vec::new(),
        count_frames,
    })
}

/// The second half of [`plan_records`]: the scanned plan's frames cut into chunks as `sizing`
/// says.
pub fn cut_records(plan: &mut JobPlan, sizing: RecordsSizing<'_>) {
    let frames = plan.frame_pts.len() as u64;
    plan.chunks = match sizing {
        RecordsSizing::Frames(n) => fresco_core::split_frames(frames, n),
        RecordsSizing::Sampled {
            sampling,
            seconds_per_frame,
        } => {
            let picks = sampling.pick(&frame_seconds(plan));
            let per_chunk = sampled_per_chunk(seconds_per_frame);
            let per_chunk = at_least_two_chunks(per_chunk, picks.len() as u64);
            tracing::info!(
                "records: {:.4} s a scored frame -> {per_chunk} sampled frames a chunk",
                seconds_per_frame
            );
            cut_at_picks(frames, &picks, per_chunk)
        }
    };
}

/// Sampled frames per chunk for about [`CHUNK_TARGET_SECS`] of model time at
/// `seconds_per_frame`, within [`MIN_CHUNK_FRAMES`]..=[`MAX_SAMPLED_PER_CHUNK`].
pub fn sampled_per_chunk(seconds_per_frame: f64) -> u64 {
    if seconds_per_frame > 0.0 && seconds_per_frame.is_finite() {
        ((CHUNK_TARGET_SECS / seconds_per_frame).round() as u64)
            .clamp(MIN_CHUNK_FRAMES, MAX_SAMPLED_PER_CHUNK)
    } else {
        MAX_SAMPLED_PER_CHUNK
    }
}

/// Cuts `frames` frames into ranges holding `per_chunk` of the `picks` (decode-order indices,
/// increasing) each, the last one the rest: a range starts at its first pick (the first range at
/// frame 0) and ends where the next begins, so the frames between picks cost no chunk of their
/// own. No picks: one range of every frame.
pub fn cut_at_picks(frames: u64, picks: &[u64], per_chunk: u64) -> Vec<FrameRange> {
    let starts: Vec<u64> = std::iter::once(0)
        .chain(
            picks
                .iter()
                .step_by(per_chunk.max(1) as usize)
                .skip(1)
                .copied(),
        )
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(i, &start)| FrameRange {
            start,
            end: starts.get(i + 1).copied().unwrap_or(frames),
        })
        .collect()
}

/// Seconds of a timestamp in the plan's time base.
pub fn seconds(plan: &JobPlan, pts: i64) -> f64 {
    let (num, den) = plan.video.time_base;
    pts as f64 * num as f64 / den.max(1) as f64
}

/// The stream's start: its earliest frame's timestamp (0 for a plan with no frames).
pub fn start_pts(plan: &JobPlan) -> i64 {
    plan.frame_pts.iter().copied().min().unwrap_or(0)
}

/// A record's `time`: the seconds from the stream's start ([`start_pts`]) to `pts`, so that the
/// first frame is at 0.0 whatever the container's timestamps start at (an MPEG-TS starts at
/// 1.4 s, a cut may keep its offset); the record's `pts` keeps the raw value.
pub fn time_from_start(plan: &JobPlan, start_pts: i64, pts: i64) -> f64 {
    seconds(plan, pts.saturating_sub(start_pts))
}

/// Every frame's time in seconds, in decode order.
pub fn frame_seconds(plan: &JobPlan) -> Vec<f64> {
    plan.frame_pts.iter().map(|p| seconds(plan, *p)).collect()
}

/// What [`decode_sampled`] gives each frame to: its decode-order index and RGB24 bytes.
pub type SampledFrame<'a> = dyn FnMut(u64, &[u8]) -> Result<(), RunError> + 'a;

/// The ffmpeg arguments that decode the frames `picks` (decode-order indices, increasing, all
/// in `range`) of a records chunk, rotated upright and scaled to `width`x`height` RGB24.
///
/// As for a video chunk ([`chunk_window`]), the decoder seeks to a keyframe a margin before the
/// range and keeps each pick by its time: the frames whose time lies between the midpoints to
/// its neighbours, so rounding never takes a neighbour. A seek that lands late delivers fewer
/// frames than picks, which [`decode_sampled`] reports. With `by_number` (a retry), or where the
/// timestamps are not strictly increasing, it decodes from the start and keeps the picks by
/// frame number: exact for any input, slower for late chunks. Either way the selection is a
/// binary search over the picks (`if(lt(t, pivot), ...)`), so a chunk of any number of irregular
/// picks (an `--fps` of a variable-rate input) costs a few comparisons a frame, and the decoder
/// stops at the last pick (`-frames:v`).
pub fn sampled_decoder_args(
    plan: &JobPlan,
    range: FrameRange,
    picks: &[u64],
    (width, height): (u32, u32),
    by_number: bool,
) -> Vec<OsString> {
    let video = &plan.video;
    let mut args = fresco_media::process::ffmpeg_quiet();
    let select = match chunk_window(plan, range, by_number) {
        FrameWindow::Numbers { .. } => {
            let windows: Vec<Window> = runs(picks)
                .map(|(a, b)| (Some(a as f64), Some(b as f64 + 1.0)))
                .collect();
            select_expression("n", &windows, |x| format!("{x:.0}"))
        }
        FrameWindow::Times { seek_secs, .. } => {
            // -copyts keeps the original timestamps, so the windows are in the scan's terms;
            // the seek lands on a keyframe before the range, never inside it.
            args.extend(["-copyts", "-noaccurate_seek"].map(OsString::from));
            if seek_secs > 0.0 {
                args.extend(["-ss".into(), format!("{seek_secs:.6}").into()]);
            }
            let pts = &plan.frame_pts;
            let mid = |i: usize| seconds(plan, pts[i - 1]) / 2.0 + seconds(plan, pts[i]) / 2.0;
            let windows: Vec<Window> = runs(picks)
                .map(|(a, b)| {
                    let (a, b) = (a as usize, b as usize);
                    let from = (a > 0).then(|| mid(a));
                    let to = (b + 1 < pts.len()).then(|| mid(b + 1));
                    (from, to)
                })
                .collect();
            select_expression("t", &windows, |x| format!("{x:.9}"))
        }
    };
    let filters = [
        format!("select='{select}'"),
        format!("scale={width}:{height}:flags=bilinear"),
        "format=rgb24".to_string(),
    ];
    args.extend(crate::hardware::hwaccel_args(video.hwaccel.as_deref()));
    args.extend(input_args(&video.input));
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
    args
}

/// Decodes the frames of `picks` (decode-order indices, increasing, all in `range`) as
/// [`sampled_decoder_args`] says and gives each to `frame` with its index. A decoder that
/// delivers fewer frames than picks (a seek that landed late, a broken input) is a
/// [`RunError::Decode`]; decoding again `by_number` is exact for any input.
#[allow(clippy::too_many_arguments)]
pub fn decode_sampled(
    tools: &Tools,
    plan: &JobPlan,
    range: FrameRange,
    picks: &[u64],
    (width, height): (u32, u32),
    by_number: bool,
    cancel: &Arc<AtomicBool>,
    frame: &mut SampledFrame<'_>,
) -> Result<(), RunError> {
    if picks.is_empty() {
        return Ok(());
    }
    let video = &plan.video;
    let args = sampled_decoder_args(plan, range, picks, (width, height), by_number);
    let last = *picks.last().expect("not empty");
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
    let mut errors = Some(errors);
    let mut ffmpeg_said = || {
        errors
            .take()
            .and_then(|e| e.join().ok())
            .map(|t| t.trim().to_string())
            .unwrap_or_default()
    };
    // Frames are read ahead in their own thread, so that ffmpeg decodes the next ones while the
    // model scores this one (the pipe alone holds a fifth of a 455x256 frame); buffers go back
    // to the reader once the caller is done with them.
    let frame_len = width as usize * height as usize * 3;
    let wanted = picks.len();
    let (frames_tx, frames_rx) =
        std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(READ_AHEAD);
    let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        for _ in 0..wanted {
            let mut buffer = free_rx.try_recv().unwrap_or_else(|_| vec![0u8; frame_len]);
            let read = stdout.read_exact(&mut buffer).map(|()| buffer);
            let failed = read.is_err();
            if frames_tx.send(read).is_err() || failed {
                return;
            }
        }
    });
    let mut got = 0usize;
    let result = (|| {
        for &index in picks {
            let next = loop {
                if cancel.load(Ordering::SeqCst) {
                    return Err(RunError::Canceled);
                }
                match frames_rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(next) => break next,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        break Err(std::io::ErrorKind::UnexpectedEof.into())
                    }
                }
            };
            let buffer = next.map_err(|e| {
                let _ = child.kill();
                let _ = child.wait();
                RunError::Decode {
                    path: video.input.clone(),
                    reason: format!(
                        "ffmpeg gave {got} of {} sampled frames (up to frame {last}): {e} {}",
                        picks.len(),
                        ffmpeg_said()
                    ),
                }
            })?;
            got += 1;
            frame(index, &buffer)?;
            let _ = free_tx.send(buffer);
        }
        Ok(())
    })();
    drop(frames_rx);
    if result.is_err() {
        let _ = child.kill();
    }
    let _ = reader.join();
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

/// Frames a records decoder reads ahead of the model.
const READ_AHEAD: usize = 4;

/// A pick window: the values of the select variable from (inclusive) to (exclusive); `None`:
/// open on that side.
type Window = (Option<f64>, Option<f64>);

/// The runs of consecutive indices in `picks` (increasing), as first and last: every frame of a
/// range is one window, not one per frame.
fn runs(picks: &[u64]) -> impl Iterator<Item = (u64, u64)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let first = *picks.get(i)?;
        let mut last = first;
        i += 1;
        while picks.get(i) == Some(&(last + 1)) {
            last += 1;
            i += 1;
        }
        Some((first, last))
    })
}

/// ffmpeg's `select` expression (commas escaped) true where `var` lies in one of `windows`
/// (increasing, disjoint, not empty): a balanced tree of `if(lt(var, pivot), ...)` over the
/// windows, so a frame costs about log2(windows) comparisons and the parser's nesting stays
/// shallow (a flat sum of 250 terms is refused by ffmpeg's expression parser).
fn select_expression(var: &str, windows: &[Window], num: impl Fn(f64) -> String + Copy) -> String {
    match windows {
        [] => "0".into(),
        [(from, to)] => {
            let mut terms = Vec::new();
            if let Some(from) = from {
                terms.push(format!("gte({var}\\,{})", num(*from)));
            }
            if let Some(to) = to {
                terms.push(format!("lt({var}\\,{})", num(*to)));
            }
            if terms.is_empty() {
                "1".into()
            } else {
                terms.join("*")
            }
        }
        _ => {
            let (left, right) = windows.split_at(windows.len() / 2);
            let pivot = right[0].0.expect("only the first window is open below");
            format!(
                "if(lt({var}\\,{})\\,{}\\,{})",
                num(pivot),
                select_expression(var, left, num),
                select_expression(var, right, num)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_are_grouped_into_runs() {
        let picks = [0, 1, 2, 5, 7, 8];
        assert_eq!(runs(&picks).collect::<Vec<_>>(), [(0, 2), (5, 5), (7, 8)]);
        assert_eq!(runs(&[]).count(), 0);
    }

    #[test]
    fn selections_search_the_windows() {
        let num = |x: f64| format!("{x:.0}");
        assert_eq!(
            select_expression("n", &[(Some(3.0), Some(6.0))], num),
            "gte(n\\,3)*lt(n\\,6)"
        );
        assert_eq!(select_expression("t", &[(None, None)], num), "1");
        assert_eq!(
            select_expression(
                "n",
                &[(None, Some(1.0)), (Some(5.0), Some(6.0)), (Some(9.0), None)],
                num
            ),
            "if(lt(n\\,5)\\,lt(n\\,1)\\,if(lt(n\\,9)\\,gte(n\\,5)*lt(n\\,6)\\,gte(n\\,9)))"
        );
        // A thousand windows nest ten deep.
        let many: Vec<Window> = (0..1000)
            .map(|i| (Some(i as f64 * 2.0), Some(i as f64 * 2.0 + 1.0)))
            .collect();
        let text = select_expression("n", &many, num);
        assert_eq!(text.matches("if(").count(), 999);
        let mut depth = 0i32;
        let mut deepest = 0;
        for c in text.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            deepest = deepest.max(depth);
        }
        assert!(deepest <= 2 * 11, "{deepest}");
    }

    #[test]
    fn chunks_hold_a_number_of_sampled_frames() {
        // --fps 1 of 25 frames/s: picks every 25 frames; three picks a chunk.
        let picks: Vec<u64> = (0..250).step_by(25).collect();
        let chunks = cut_at_picks(250, &picks, 3);
        let ranges: Vec<(u64, u64)> = chunks.iter().map(|r| (r.start, r.end)).collect();
        assert_eq!(ranges, [(0, 75), (75, 150), (150, 225), (225, 250)]);
        for r in &chunks[..3] {
            assert_eq!(picks_in(&picks, *r).len(), 3);
        }
        // Picks not starting at 0: the first chunk still starts at frame 0.
        let ranges: Vec<(u64, u64)> = cut_at_picks(10, &[4, 6, 8], 2)
            .iter()
            .map(|r| (r.start, r.end))
            .collect();
        assert_eq!(ranges, [(0, 8), (8, 10)]);
        assert_eq!(cut_at_picks(10, &[], 5).len(), 1);
        // Timed: 23 ms a frame is about 30 s in 1304 frames; bounds hold.
        assert_eq!(sampled_per_chunk(0.023), 1304);
        assert_eq!(sampled_per_chunk(0.0), MAX_SAMPLED_PER_CHUNK);
        assert_eq!(sampled_per_chunk(100.0), MIN_CHUNK_FRAMES);
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
