//! Styling one video: probe it, plan it, then three stages joined by bounded channels:
//!
//! ```text
//! ffmpeg decoder --raw RGB--> reader thread --> model (this thread) --> writer thread --NUT--> ffmpeg encoder
//! ```
//!
//! The channels hold a few frames each, so memory does not grow with the video's length. The
//! writer wraps each styled frame in NUT with the timestamp the probe found for it, so the
//! encoder keeps the input's timing, constant or variable. The output is written to a temporary
//! name and renamed only once the encoder has finished and every frame is accounted for.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// One producer and one consumer per channel, with a blocking bound and a receive timeout: std's
// sync_channel does all of that, so no crossbeam.
use fresco_infer::{Engine, Sample};
use fresco_media::nut::{NutVideoSpec, NutWriter, RawPixelFormat};
use fresco_media::probe::{self, ProbeError};
use fresco_media::process::{Pipes, ProcessError, Running, Tool};
use fresco_temporal::{BlendSettings, FlowSettings, Stabilizer};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};

use crate::error::RunError;
use crate::output::TempOutput;
use crate::plan::{video_settings, VideoOptions, VideoSettings};

/// How long a probe may take before it is called hung.
const PROBE_TIMEOUT: Duration = Duration::from_secs(120);
/// Decoding every frame for their timestamps takes longer on long inputs.
const FRAME_SCAN_TIMEOUT: Duration = Duration::from_secs(3600);
/// Frames in flight between stages.
const QUEUE_FRAMES: usize = 4;

/// Progress of one video, reported after each frame.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub frames_done: u64,
    pub frames_total: u64,
}

/// What a finished video run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VideoSummary {
    pub input: PathBuf,
    pub output: PathBuf,
    pub frames: u64,
    pub seconds: f64,
    pub fps: f64,
    /// Seconds spent inside the model.
    pub model_seconds: f64,
    pub width: u32,
    pub height: u32,
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

/// The external programs a run uses.
#[derive(Debug, Clone)]
pub struct Tools {
    pub ffmpeg: Tool,
    pub ffprobe: Tool,
}

impl Default for Tools {
    fn default() -> Self {
        Tools {
            ffmpeg: Tool::ffmpeg(),
            ffprobe: Tool::ffprobe(),
        }
    }
}

impl Tools {
    /// These tools, with every run stopped (SIGTERM, then SIGKILL after a grace) once `cancel`
    /// is raised: a canceled job's children do not outlive it.
    pub fn with_cancel(&self, cancel: Arc<AtomicBool>) -> Tools {
        Tools {
            ffmpeg: self.ffmpeg.clone().with_cancel(Arc::clone(&cancel)),
            ffprobe: self.ffprobe.clone().with_cancel(cancel),
        }
    }
}

/// A video, probed and planned, with its frame timestamps: ready to style.
#[derive(Debug, Clone)]
pub struct PreparedVideo {
    pub plan: VideoSettings,
    pub frame_pts: Vec<i64>,
    pub warnings: Vec<String>,
}

/// Checks the input, probes it and decides everything, before any model work.
pub fn prepare_video(
    tools: &Tools,
    input: &Path,
    output: &Path,
    options: &VideoOptions,
) -> Result<PreparedVideo, RunError> {
    check_input_file(input)?;
    if same_file(input, output) {
        return Err(RunError::SameFile {
            input: input.to_path_buf(),
            output: output.to_path_buf(),
        });
    }
    check_output_target(output, options.overwrite)?;
    let report =
        probe::probe(&tools.ffprobe, input, PROBE_TIMEOUT).map_err(|e| probe_error(input, e))?;
    let subject = input.display().to_string();
    report
        .check_limits(&options.limits, &subject)
        .map_err(RunError::OverLimit)?;
    let mut plan = video_settings(input, output, &report, options)?;
    check_streams_fit(tools, &plan)?;
    crate::hardware::check_hardware(tools, &plan)?;
    crate::container::check_video_encoder(tools, &plan)?;
    let scan = probe::ScanLimits {
        limits: &options.limits,
        time_base: plan.time_base,
        subject: &subject,
    };
    let times = probe::frame_times(
        &tools.ffprobe,
        input,
        plan.video_ordinal,
        scan,
        FRAME_SCAN_TIMEOUT,
    )
    .map_err(|e| probe_error(input, e))?;
    if times.pts.is_empty() {
        return Err(RunError::Decode {
            path: input.to_path_buf(),
            reason: if times.warnings.is_empty() {
                "no video frame could be decoded".into()
            } else {
                format!(
                    "no video frame could be decoded: {}",
                    fresco_media::process::last_lines(&times.warnings, 2)
                )
            },
        });
    }
    crate::container::check_frame_order(&plan, &times.pts)?;
    crate::container::handle_size_changes(&mut plan, &times.sizes, &times.pts);
    let mut warnings = Vec::new();
    if !times.warnings.trim().is_empty() {
        warnings.push(format!(
            "{}: the decoder reported errors (damaged or truncated file?); styling the {} frames that decode: {}",
            input.display(),
            times.pts.len(),
            fresco_media::process::last_lines(&times.warnings, 2)
        ));
    }
    Ok(PreparedVideo {
        plan,
        frame_pts: times.pts,
        warnings,
    })
}

/// Refuses a missing or empty input with its own message.
pub fn check_input_file(input: &Path) -> Result<(), RunError> {
    match std::fs::metadata(input) {
        Err(_) => Err(RunError::InputMissing {
            path: input.to_path_buf(),
        }),
        Ok(meta) if meta.is_file() && meta.len() == 0 => Err(RunError::InputEmpty {
            path: input.to_path_buf(),
        }),
        Ok(_) => Ok(()),
    }
}

/// Refuses an output that exists (without overwrite) or whose folder is missing, before any work.
pub fn check_output_target(output: &Path, overwrite: bool) -> Result<(), RunError> {
    // Creating and dropping the temporary file proves the folder is writable.
    TempOutput::create(output, overwrite).map(drop)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

pub(crate) fn probe_error(input: &Path, e: ProbeError) -> RunError {
    match e {
        ProbeError::NotMedia { reason, .. } => RunError::NotMedia {
            path: input.to_path_buf(),
            reason: format!("not a media file ffmpeg can read ({reason})"),
        },
        ProbeError::BadJson { source, .. } => RunError::NotMedia {
            path: input.to_path_buf(),
            reason: format!("ffprobe's report could not be read: {source}"),
        },
        ProbeError::Refused { reason, .. } => RunError::Refused {
            path: input.to_path_buf(),
            reason,
        },
        ProbeError::OverLimit(breach) => RunError::OverLimit(breach),
        ProbeError::Tool(t) => RunError::from(t),
    }
}

/// A failed ffmpeg run over the input: refused (it would open other files), or `otherwise`.
pub(crate) fn refused_or(
    input: &Path,
    e: ProcessError,
    otherwise: impl FnOnce(ProcessError) -> RunError,
) -> RunError {
    match &e {
        ProcessError::Failed { stderr_tail, .. } => {
            match fresco_media::input::refusal(stderr_tail) {
                Some(refused) => RunError::Refused {
                    path: input.to_path_buf(),
                    reason: refused.reason(),
                },
                None => otherwise(e),
            }
        }
        _ => otherwise(e),
    }
}

/// Muxes just the copied streams into the output's container, to fail before any scoring if
/// one cannot be stored there. Each is checked alone, so the message names the stream.
fn check_streams_fit(tools: &Tools, plan: &VideoSettings) -> Result<(), RunError> {
    if plan.streams.is_empty() {
        return Ok(());
    }
    // In the temporary folder, not beside the output: a worker killed during the check must
    // leave nothing in the user's output folder.
    let scratch = scratch_file(&plan.output)?;
    let mut args = fresco_media::process::ffmpeg_quiet();
    args.push("-y".into());
    args.extend(fresco_media::input::input_args(&plan.input));
    for stream in &plan.streams {
        args.push("-map".into());
        args.push(format!("0:{}", stream.index).into());
    }
    args.extend(["-c", "copy", "-t", "0.001"].iter().map(Into::into));
    args.push(scratch.path().as_os_str().to_os_string());
    match tools.ffmpeg.output(&args, PROBE_TIMEOUT) {
        Ok(_) => Ok(()),
        Err(e) if fresco_media::input::refusal(e.stderr_tail()).is_some() => {
            Err(refused_or(&plan.input, e, RunError::from))
        }
        Err(ProcessError::Failed { stderr_tail, .. }) => {
            // "Could not find tag for codec subrip in stream #1, codec not currently supported in container"
            // or "Error initializing output stream 0:2 --" (e.g. FLAC in MP4, experimental in 5.1).
            // A muxer that refuses in its header ("Only VP8 or VP9 ... are supported for
            // WebM") names no stream, and ffmpeg then names the last one: each is tried alone.
            if plan.streams.len() > 1 && !stderr_tail.contains("in stream #") {
                for stream in &plan.streams {
                    let mut alone = plan.clone();
                    alone.streams = vec![stream.clone()];
                    if let Err(e @ RunError::StreamNotSupported { .. }) =
                        check_streams_fit(tools, &alone)
                    {
                        return Err(e);
                    }
                }
            }
            let culprit = output_stream_number(&stderr_tail).and_then(|n| plan.streams.get(n));
            match culprit {
                Some(stream) => Err(RunError::StreamNotSupported {
                    path: plan.output.clone(),
                    stream: format!("the input's {}", stream.label),
                    container: plan.container(),
                    kind: stream.kind.to_string(),
                }),
                None => Err(RunError::Encode {
                    path: plan.output.clone(),
                    reason: format!(
                        "the input's other streams cannot be copied into .{}: {}",
                        plan.container(),
                        fresco_media::process::last_lines(&stderr_tail, 2)
                    ),
                }),
            }
        }
        Err(other) => Err(RunError::from(other)),
    }
}

/// The output stream an ffmpeg muxing error is about.
fn output_stream_number(stderr: &str) -> Option<usize> {
    let after = stderr
        .split("in stream #")
        .nth(1)
        .or_else(|| stderr.split("output stream 0:").nth(1))?;
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// An empty temporary file with the output's extension (ffmpeg picks the container from it),
/// removed when dropped.
pub(crate) fn scratch_file(output: &Path) -> Result<tempfile::NamedTempFile, RunError> {
    let ext = output
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix("fresco-streamcheck-")
        .suffix(&ext)
        .tempfile()
        .map_err(|e| RunError::OutputUnwritable {
            path: std::env::temp_dir(),
            reason: format!("cannot make a file for the stream check: {e}"),
        })
}

/// Byte conversions for the pipe format of each sample type.
trait PipeSample: Sample + fresco_temporal::Sample + Default {
    fn from_bytes(bytes: &[u8], out: &mut Vec<Self>);
    fn to_bytes(samples: &[Self], out: &mut Vec<u8>);
}

impl PipeSample for u8 {
    fn from_bytes(bytes: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(bytes);
    }
    fn to_bytes(samples: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(samples);
    }
}

impl PipeSample for u16 {
    fn from_bytes(bytes: &[u8], out: &mut Vec<u16>) {
        out.clear();
        out.extend(
            bytes
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]])),
        );
    }
    fn to_bytes(samples: &[u16], out: &mut Vec<u8>) {
        out.clear();
        out.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
    }
}

/// Scores a prepared video with `engine`: every frame decoded, run through the model and
/// encoded, the output published atomically. `cancel` is checked between frames.
pub fn score_video(
    tools: &Tools,
    prepared: &PreparedVideo,
    engine: &mut Engine,
    options: &VideoOptions,
    cancel: &Arc<AtomicBool>,
    progress: &mut dyn FnMut(Progress),
) -> Result<VideoSummary, RunError> {
    let plan = &prepared.plan;
    let started = Instant::now();
    let temp = TempOutput::create(&plan.output, options.overwrite)?;
    let pass = FramePass {
        plan,
        decoder_args: plan.decoder_args(),
        encoder_args: plan.encoder_args(temp.path()),
        pts: &prepared.frame_pts,
        temp_path: temp.path(),
        bounded: false,
        warm_up: 0,
    };
    let stats = pump_plan_frames(tools, &pass, engine, cancel, progress)?;
    let output_path = temp.commit()?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(VideoSummary {
        input: plan.input.clone(),
        output: output_path,
        frames: stats.frames,
        seconds,
        fps: if seconds > 0.0 {
            stats.frames as f64 / seconds
        } else {
            0.0
        },
        model_seconds: stats.model_time.as_secs_f64(),
        width: plan.width,
        height: plan.height,
        notes: plan.notes.clone(),
        warnings: prepared.warnings.clone(),
    })
}

/// One pass of frames through the model: a decoder command, an encoder command, and the
/// timestamps the encoder gets, one per frame the decoder must deliver.
pub(crate) struct FramePass<'a> {
    pub plan: &'a VideoSettings,
    pub decoder_args: Vec<std::ffi::OsString>,
    pub encoder_args: Vec<std::ffi::OsString>,
    pub pts: &'a [i64],
    /// Where the encoder writes (named in its messages as the plan's output).
    pub temp_path: &'a Path,
    /// The decoder's frame window ends before the input does: once every expected frame has
    /// arrived, stop it instead of letting it decode the rest of the input for nothing.
    pub bounded: bool,
    /// Frames the decoder delivers before those of `pts`: scored (so that `--temporal`'s blend
    /// has settled), not written.
    pub warm_up: u64,
}

/// What a pass did.
pub(crate) struct PassStats {
    pub frames: u64,
    pub model_time: Duration,
}

/// Runs one pass in the pixel type of the plan's pipes.
pub(crate) fn pump_plan_frames(
    tools: &Tools,
    pass: &FramePass<'_>,
    engine: &mut Engine,
    cancel: &Arc<AtomicBool>,
    progress: &mut dyn FnMut(Progress),
) -> Result<PassStats, RunError> {
    match pass.plan.raw_format {
        RawPixelFormat::Rgb24 => pump_frames::<u8>(tools, pass, engine, cancel, progress),
        RawPixelFormat::Rgb48le => pump_frames::<u16>(tools, pass, engine, cancel, progress),
    }
}

/// Decodes, styles and encodes every frame of `pass`; fails unless the decoder delivered
/// exactly one frame per timestamp.
fn pump_frames<S: PipeSample>(
    tools: &Tools,
    pass: &FramePass<'_>,
    engine: &mut Engine,
    cancel: &Arc<AtomicBool>,
    progress: &mut dyn FnMut(Progress),
) -> Result<PassStats, RunError> {
    // Frames per inference call (`--batch`): the decoder may run a whole batch ahead.
    let batch = engine.batch().max(1);
    let running = RunningPass::start(tools, pass, batch)?;
    let ended = score_frames::<S>(pass, engine, cancel, progress, batch, &running);
    running.finish(pass, ended)
}

/// The decoder and encoder of a pass, with the threads that read and write their pipes.
struct RunningPass {
    decoder: Running,
    encoder: Running,
    reader: std::thread::JoinHandle<Result<(), String>>,
    writer: std::thread::JoinHandle<Result<(), String>>,
    raw_rx: Receiver<Vec<u8>>,
    styled_tx: SyncSender<(i64, Vec<u8>)>,
}

/// How the scoring loop of a pass ended.
struct LoopEnd {
    done: u64,
    model_time: Duration,
    failure: Option<RunError>,
    /// A bounded window had all its frames: the decoder was not run to its end.
    stopped_early: bool,
}

impl RunningPass {
    fn start(tools: &Tools, pass: &FramePass<'_>, batch: usize) -> Result<RunningPass, RunError> {
        let plan = pass.plan;
        let mut decoder = tools.ffmpeg.spawn(
            tools.ffmpeg.command(pass.decoder_args.clone()),
            Pipes::stdout(),
        )?;
        let mut encoder = tools.ffmpeg.spawn(
            tools.ffmpeg.command(pass.encoder_args.clone()),
            Pipes::stdin(),
        )?;
        let decoded_stream = decoder.take_stdout().expect("decoder stdout is piped");
        let encoder_stdin = encoder.take_stdin().expect("encoder stdin is piped");
        let frame_bytes = plan.model_frame_bytes();
        let (raw_tx, raw_rx) = sync_channel::<Vec<u8>>(QUEUE_FRAMES.max(batch));
        let (styled_tx, styled_rx) = sync_channel::<(i64, Vec<u8>)>(QUEUE_FRAMES);
        let reader = std::thread::Builder::new()
            .name("fresco-decode".into())
            .spawn(move || read_frames(decoded_stream, frame_bytes, raw_tx))
            .expect("spawn reader thread");
        let spec = NutVideoSpec {
            width: plan.model_width,
            height: plan.model_height,
            pix_fmt: plan.raw_format,
            time_base_num: plan.time_base.0,
            time_base_den: plan.time_base.1,
        };
        let writer = std::thread::Builder::new()
            .name("fresco-encode".into())
            .spawn(move || write_frames(encoder_stdin, spec, styled_rx))
            .expect("spawn writer thread");
        Ok(RunningPass {
            decoder,
            encoder,
            reader,
            writer,
            raw_rx,
            styled_tx,
        })
    }

    /// Stops or waits for both programs and threads, and turns what each said into the pass's
    /// result: the first cause wins (a failure of the loop, the encoder's refusal, the
    /// decoder's error, a frame count that differs from the probe's).
    fn finish(self, pass: &FramePass<'_>, ended: LoopEnd) -> Result<PassStats, RunError> {
        let RunningPass {
            mut decoder,
            mut encoder,
            reader,
            writer,
            raw_rx,
            styled_tx,
        } = self;
        let plan = pass.plan;
        let total = pass.pts.len() as u64;
        let LoopEnd {
            done,
            model_time,
            failure,
            stopped_early,
        } = ended;
        drop(styled_tx);
        if stopped_early {
            // Our own decision: its output is no longer wanted, no grace needed.
            decoder.kill();
        }
        // The reader stops at its next frame, closing the decoder's pipe.
        drop(raw_rx);
        if failure.is_some() {
            // Canceled or failed: SIGTERM to both, and SIGKILL after one short grace for a
            // child that ignores it.
            decoder.terminate();
            encoder.terminate();
            decoder.stop();
            encoder.stop();
        }
        let read_result = reader
            .join()
            .unwrap_or_else(|_| Err("reader thread panicked".into()));
        let write_result = writer
            .join()
            .unwrap_or_else(|_| Err("writer thread panicked".into()));
        if let Some(failure) = failure {
            return Err(failure);
        }
        let decode_status = if stopped_early {
            Ok(())
        } else {
            decoder.finish(Duration::from_secs(60)).map(drop)
        };
        let encode_status = encoder.finish(Duration::from_secs(600));
        let encode_error = |e: ProcessError| match e {
            ProcessError::Failed { stderr_tail, .. } => RunError::Encode {
                path: plan.output.clone(),
                reason: fresco_media::process::last_lines(&strip(&stderr_tail, pass.temp_path), 3),
            },
            other => RunError::from(other),
        };
        if let Err(reason) = write_result {
            // The encoder stopped taking frames: its own message says why.
            return Err(match encode_status {
                Err(e) => encode_error(e),
                Ok(_) => RunError::Encode {
                    path: plan.output.clone(),
                    reason,
                },
            });
        }
        if let Err(e) = decode_status {
            return Err(refused_or(&plan.input, e, |e| match e {
                ProcessError::Failed { stderr_tail, .. } => RunError::Decode {
                    path: plan.input.clone(),
                    reason: fresco_media::process::last_lines(&stderr_tail, 3),
                },
                other => RunError::from(other),
            }));
        }
        if !stopped_early {
            if let Err(reason) = read_result {
                return Err(RunError::Decode {
                    path: plan.input.clone(),
                    reason,
                });
            }
        }
        // Before the encoder's status: with too few frames it fails too ("EOF before video
        // frames"), but the decoder's count is the cause.
        if done != total {
            return Err(RunError::Decode {
                path: plan.input.clone(),
                reason: format!("decoded {done} frames but the probe counted {total}"),
            });
        }
        encode_status.map_err(encode_error)?;
        Ok(PassStats {
            frames: done,
            model_time,
        })
    }
}

/// Takes decoded frames in batches, runs them through the model and hands them to the writer
/// with their timestamps, until the decoder ends, the window is complete, or something fails.
fn score_frames<S: PipeSample>(
    pass: &FramePass<'_>,
    engine: &mut Engine,
    cancel: &Arc<AtomicBool>,
    progress: &mut dyn FnMut(Progress),
    batch: usize,
    running: &RunningPass,
) -> LoopEnd {
    let plan = pass.plan;
    let total = pass.pts.len() as u64;
    let (w, h) = (plan.model_width, plan.model_height);
    // `--temporal`: the blend along the input's flow, one frame after another (docs/temporal.md).
    // The flow needs only the inputs: it is tracked on a thread of its own while the model
    // styles the same batch, and the styled frames are blended along it afterwards.
    let (mut tracker, mut blender) = match plan.temporal {
        true => {
            let (tracker, blender) = Stabilizer::new(
                w as usize,
                h as usize,
                FlowSettings::default(),
                BlendSettings::default(),
            )
            .into_parts();
            (Some(tracker), Some(blender))
        }
        false => (None, None),
    };
    // Frames scored so far, the warm-up's included.
    let mut scored = 0u64;
    let mut inputs: Vec<Vec<S>> = (0..batch).map(|_| Vec::new()).collect();
    let mut outputs: Vec<Vec<S>> = (0..batch)
        .map(|_| vec![S::default(); w as usize * h as usize * 3])
        .collect();
    let mut raws: Vec<Vec<u8>> = Vec::with_capacity(batch);
    let mut end = LoopEnd {
        done: 0,
        model_time: Duration::ZERO,
        failure: None,
        stopped_early: false,
    };
    let mut decoder_ended = false;
    'frames: loop {
        if cancel.load(Ordering::Relaxed) {
            end.failure = Some(RunError::Canceled);
            break;
        }
        if pass.bounded && scored == pass.warm_up + total {
            // The window selects nothing after its last frame: the rest is decoding for nothing.
            end.stopped_early = true;
            break;
        }
        if decoder_ended {
            break;
        }
        // Gather a batch (a bounded window's frames, at most).
        let want = if pass.bounded {
            batch.min((pass.warm_up + total - scored) as usize)
        } else {
            batch
        };
        raws.clear();
        while raws.len() < want {
            // Wake up now and then to notice a cancel while the decoder is busy seeking.
            match running.raw_rx.recv_timeout(Duration::from_millis(200)) {
                Ok(raw) => raws.push(raw),
                Err(RecvTimeoutError::Timeout) => {
                    if cancel.load(Ordering::Relaxed) {
                        continue 'frames;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    decoder_ended = true;
                    break;
                }
            }
        }
        if raws.is_empty() {
            continue;
        }
        if scored + raws.len() as u64 > pass.warm_up + total {
            end.failure = Some(RunError::Decode {
                path: plan.input.clone(),
                reason: format!(
                    "the decoder produced more frames than the {total} the probe counted"
                ),
            });
            break;
        }
        let n = raws.len();
        for (raw, input) in raws.iter().zip(inputs.iter_mut()) {
            S::from_bytes(raw, input);
        }
        let ins: Vec<&[S]> = inputs[..n].iter().map(Vec::as_slice).collect();
        let mut outs: Vec<&mut [S]> = outputs[..n].iter_mut().map(Vec::as_mut_slice).collect();
        let (styled, motions) = std::thread::scope(|scope| {
            let tracking = tracker.as_mut().map(|tracker| {
                let ins = &ins;
                scope.spawn(move || {
                    ins.iter()
                        .map(|input| tracker.track(input))
                        .collect::<Vec<_>>()
                })
            });
            let t0 = Instant::now();
            let styled = engine.style_frames(w, h, &ins, &mut outs);
            end.model_time += t0.elapsed();
            let motions = tracking.map(|t| t.join().expect("the flow's thread"));
            (styled, motions)
        });
        if let Err(e) = styled {
            end.failure = Some(RunError::Model {
                path: plan.input.clone(),
                source: e,
            });
            break;
        }
        if let (Some(blender), Some(motions)) = (blender.as_mut(), motions) {
            for (motion, output) in motions.iter().zip(outputs[..n].iter_mut()) {
                blender.apply(motion, output);
            }
        }
        for (mut bytes, output) in raws.drain(..).zip(&outputs) {
            scored += 1;
            if scored <= pass.warm_up {
                continue;
            }
            let pts = pass.pts[end.done as usize];
            S::to_bytes(output, &mut bytes);
            if running.styled_tx.send((pts, bytes)).is_err() {
                // The writer stopped: the encoder failed; its error is collected below.
                break 'frames;
            }
            end.done += 1;
            progress(Progress {
                frames_done: end.done,
                frames_total: total,
            });
        }
    }
    end
}

fn strip(text: &str, temp: &Path) -> String {
    text.replace(&format!("{}: ", temp.display()), "")
}

/// Reads whole frames until end of stream; a partial last frame is an error.
fn read_frames(
    mut stream: impl Read,
    frame_bytes: usize,
    tx: SyncSender<Vec<u8>>,
) -> Result<(), String> {
    loop {
        let mut frame = vec![0u8; frame_bytes];
        let mut filled = 0;
        while filled < frame_bytes {
            match stream.read(&mut frame[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("reading decoded frames: {e}")),
            }
        }
        if filled == 0 {
            return Ok(());
        }
        if filled < frame_bytes {
            return Err(format!(
                "the decoder stopped in the middle of a frame ({filled} of {frame_bytes} bytes)"
            ));
        }
        if tx.send(frame).is_err() {
            return Ok(()); // the consumer stopped (cancel or failure)
        }
    }
}

/// Writes styled frames as NUT into the encoder; returns when the channel closes.
fn write_frames(
    stdin: impl Write,
    spec: NutVideoSpec,
    rx: Receiver<(i64, Vec<u8>)>,
) -> Result<(), String> {
    let mut nut = NutWriter::new(std::io::BufWriter::with_capacity(1 << 20, stdin), spec)
        .map_err(|e| format!("starting the encoder stream: {e}"))?;
    for (pts, frame) in rx.iter() {
        nut.write_frame(pts, &frame)
            .map_err(|e| format!("sending frames to the encoder: {e}"))?;
    }
    let inner = nut
        .finish()
        .map_err(|e| format!("finishing the encoder stream: {e}"))?;
    drop(inner);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn muxing_errors_name_their_output_stream() {
        assert_eq!(
            output_stream_number("Could not find tag for codec subrip in stream #2, codec not currently supported in container"),
            Some(2)
        );
        assert_eq!(
            output_stream_number("Experimental feature\nError initializing output stream 0:1 --"),
            Some(1)
        );
        assert_eq!(output_stream_number("Invalid argument"), None);
    }
}
