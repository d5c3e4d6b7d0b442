//! The frames of an input and its output, decoded by ffmpeg to packed RGB at one size and read
//! from its stdout (never through image files), then measured frame by frame.
//!
//! Every decoded frame is taken once (`-fps_mode passthrough`), upright (ffmpeg applies the
//! rotation tag), from the first video stream that is not a cover picture, scaled to the size
//! measured at (`flags=area`): the input's displayed size unless one is asked for.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ChildStdout;
use std::time::Duration;

use fresco_media::probe::{probe, ProbeError};
use fresco_media::process::{Pipes, ProcessError, Running, Tool};

use crate::flow::FlowSettings;
use crate::measure::{ClipMeter, TemporalReport};

/// How long ffprobe may take, and ffmpeg to exit once its frames are read.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// What [`measure_files`] is asked.
#[derive(Debug, Clone)]
pub struct MeasureOptions {
    /// Measure at this size (width, height); the input's displayed size by default.
    pub size: Option<(usize, usize)>,
    /// Report the frames that start a chunk of this many frames separately.
    pub chunk_frames: Option<u64>,
    pub flow: FlowSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error("{}: no video stream", .0.display())]
    NoVideo(PathBuf),
    #[error("reading frames of {}: {source}", path.display())]
    Decode {
        path: PathBuf,
        #[source]
        source: ProcessError,
    },
    #[error("{}: the decoder stopped in the middle of a frame", .0.display())]
    PartialFrame(PathBuf),
    #[error(
        "the input has {input} frames or more and the output {output}: they must have the same frames"
    )]
    FrameCounts { input: u64, output: u64 },
}

impl MeasureError {
    /// True when ffmpeg or ffprobe could not be run at all.
    pub fn is_missing_tool(&self) -> bool {
        match self {
            MeasureError::Probe(ProbeError::Tool(e)) | MeasureError::Decode { source: e, .. } => {
                e.is_missing_tool()
            }
            _ => false,
        }
    }
}

/// The warping error of `output` against the flow of `input`, frame by frame.
pub fn measure_files(
    input: &Path,
    output: &Path,
    options: &MeasureOptions,
) -> Result<TemporalReport, MeasureError> {
    let (ffmpeg, ffprobe) = (Tool::ffmpeg(), Tool::ffprobe());
    let (width, height) = match options.size {
        Some(size) => size,
        None => displayed_size(&ffprobe, input)?,
    };
    let mut inputs = FrameReader::open(&ffmpeg, input, width, height)?;
    let mut outputs = FrameReader::open(&ffmpeg, output, width, height)?;
    let mut meter = ClipMeter::new(width, height, options.flow);
    let frame_bytes = width * height * 3;
    let (mut a, mut b) = (vec![0u8; frame_bytes], vec![0u8; frame_bytes]);
    let mut count = 0u64;
    loop {
        let got_input = inputs.next(&mut a)?;
        let got_output = outputs.next(&mut b)?;
        match (got_input, got_output) {
            (true, true) => meter.push(&a, &b),
            (false, false) => break,
            (true, false) => {
                return Err(MeasureError::FrameCounts {
                    input: count + 1,
                    output: count,
                })
            }
            (false, true) => {
                return Err(MeasureError::FrameCounts {
                    input: count,
                    output: count + 1,
                })
            }
        }
        count += 1;
    }
    inputs.finish()?;
    outputs.finish()?;
    Ok(meter.finish(options.chunk_frames))
}

/// The size the first video stream is shown at (rotation applied).
fn displayed_size(ffprobe: &Tool, path: &Path) -> Result<(usize, usize), MeasureError> {
    let report = probe(ffprobe, path, TOOL_TIMEOUT)?;
    let stream = report
        .video_stream()
        .ok_or_else(|| MeasureError::NoVideo(path.to_path_buf()))?;
    let (Some(w), Some(h)) = (stream.width, stream.height) else {
        return Err(MeasureError::NoVideo(path.to_path_buf()));
    };
    Ok(match stream.rotation() {
        90 | 270 => (h as usize, w as usize),
        _ => (w as usize, h as usize),
    })
}

/// One ffmpeg decoding a file to packed RGB frames on its stdout.
struct FrameReader {
    path: PathBuf,
    decoder: Running,
    stream: ChildStdout,
}

impl FrameReader {
    fn open(
        ffmpeg: &Tool,
        path: &Path,
        width: usize,
        height: usize,
    ) -> Result<FrameReader, MeasureError> {
        let mut args = fresco_media::process::ffmpeg_quiet();
        args.extend(fresco_media::input::input_args(path));
        args.extend(
            [
                "-map",
                "0:V:0",
                "-fps_mode",
                "passthrough",
                "-vf",
                &format!("scale={width}:{height}:flags=area"),
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "pipe:1",
            ]
            .map(OsString::from),
        );
        let decode_error = |source| MeasureError::Decode {
            path: path.to_path_buf(),
            source,
        };
        let mut decoder = ffmpeg
            .spawn(ffmpeg.command(args), Pipes::stdout())
            .map_err(decode_error)?;
        let stream = decoder.take_stdout().expect("stdout is piped");
        Ok(FrameReader {
            path: path.to_path_buf(),
            decoder,
            stream,
        })
    }

    /// Fills `frame` with the next frame; false at the end of the stream.
    fn next(&mut self, frame: &mut [u8]) -> Result<bool, MeasureError> {
        let mut filled = 0;
        while filled < frame.len() {
            match self.stream.read(&mut frame[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(MeasureError::Decode {
                        path: self.path.clone(),
                        source: ProcessError::Io {
                            program: "ffmpeg",
                            source,
                        },
                    })
                }
            }
        }
        match filled {
            0 => Ok(false),
            n if n == frame.len() => Ok(true),
            _ => Err(MeasureError::PartialFrame(self.path.clone())),
        }
    }

    fn finish(mut self) -> Result<(), MeasureError> {
        self.decoder
            .finish(TOOL_TIMEOUT)
            .map_err(|source| MeasureError::Decode {
                path: self.path,
                source,
            })
    }
}
