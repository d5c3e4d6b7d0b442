//! The warping error of a whole clip: frame pairs go in one at a time ([`ClipMeter::push`]),
//! each frame after the first gets the error of the output and of the input (the floor: how
//! much the scene itself changes where the flow is trusted), and [`ClipMeter::finish`] averages
//! them per frame, over the clip, and separately at the first frame of each chunk (where a seam
//! between independently scored chunks would show).

use serde::Serialize;

use crate::flow::{FlowSettings, Plane};
use crate::warp::{correspond, warping_error, RgbPlanes};

/// One frame's figures (frame numbers from 0; frame 0 has none).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameError {
    pub frame: u64,
    /// The output's warping error; `None` when no pixel was visible in the previous frame.
    pub output: Option<f64>,
    /// The same for the input.
    pub input: Option<f64>,
    /// The share of pixels visible in the previous frame (the rest are left out).
    pub visible: f64,
}

/// Means over a set of frames (those whose error is defined).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub frames: usize,
    pub output: Option<f64>,
    pub input: Option<f64>,
}

impl Summary {
    fn of<'a>(frames: impl Iterator<Item = &'a FrameError>) -> Summary {
        let (mut count, mut output, mut input) = (0usize, 0.0f64, 0.0f64);
        for frame in frames {
            if let (Some(o), Some(i)) = (frame.output, frame.input) {
                count += 1;
                output += o;
                input += i;
            }
        }
        let mean = |sum: f64| (count > 0).then(|| sum / count as f64);
        Summary {
            frames: count,
            output: mean(output),
            input: mean(input),
        }
    }
}

/// The clip's figures, split at chunk boundaries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChunkSplit {
    pub chunk_frames: u64,
    /// Frames that start a chunk (after the first): compared with the last frame of the chunk
    /// before.
    pub boundaries: Summary,
    /// Every other frame after the first.
    pub inside: Summary,
}

impl ChunkSplit {
    /// The split at the chunks that start at `starts` (frame numbers, the first chunk's 0
    /// included or not), as a job's plan cut them: those frames against all others after the
    /// first. `chunk_frames` is the first chunk's length (the plan's nominal size).
    pub fn at_starts(per_frame: &[FrameError], starts: &[u64]) -> ChunkSplit {
        let starts: std::collections::BTreeSet<u64> =
            starts.iter().copied().filter(|s| *s > 0).collect();
        let boundary = |f: &&FrameError| starts.contains(&f.frame);
        ChunkSplit {
            chunk_frames: starts.first().copied().unwrap_or(0),
            boundaries: Summary::of(per_frame.iter().filter(boundary)),
            inside: Summary::of(per_frame.iter().filter(|f| !boundary(f))),
        }
    }
}

/// What `fresco eval temporal` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemporalReport {
    pub width: usize,
    pub height: usize,
    /// Frames read from each file.
    pub frames: u64,
    pub flow: FlowSettings,
    /// The clip's mean over frames 1.. (the warping error of Lai et al.).
    pub clip: Summary,
    pub chunks: Option<ChunkSplit>,
    pub per_frame: Vec<FrameError>,
}

/// Takes the frames of an input and its output in step, at one size.
pub struct ClipMeter {
    width: usize,
    height: usize,
    settings: FlowSettings,
    previous: Option<(Plane, RgbPlanes, RgbPlanes)>,
    frames: u64,
    per_frame: Vec<FrameError>,
}

impl ClipMeter {
    pub fn new(width: usize, height: usize, settings: FlowSettings) -> ClipMeter {
        ClipMeter {
            width,
            height,
            settings,
            previous: None,
            frames: 0,
            per_frame: Vec::new(),
        }
    }

    /// The next frame of the input and of the output, packed 8-bit RGB at the meter's size.
    pub fn push(&mut self, input: &[u8], output: &[u8]) {
        let (w, h) = (self.width, self.height);
        let luma = Plane::luma(input, w, h);
        let input = RgbPlanes::from_packed(input, w, h);
        let output = RgbPlanes::from_packed(output, w, h);
        if let Some((prev_luma, prev_input, prev_output)) = &self.previous {
            let link = correspond(prev_luma, &luma, &self.settings);
            self.per_frame.push(FrameError {
                frame: self.frames,
                output: warping_error(prev_output, &output, &link),
                input: warping_error(prev_input, &input, &link),
                visible: link.visible_count() as f64 / (w * h) as f64,
            });
        }
        self.previous = Some((luma, input, output));
        self.frames += 1;
    }

    /// The report, with boundaries every `chunk_frames` frames when given.
    pub fn finish(self, chunk_frames: Option<u64>) -> TemporalReport {
        let chunks = chunk_frames.filter(|n| *n > 0).map(|n| ChunkSplit {
            chunk_frames: n,
            boundaries: Summary::of(self.per_frame.iter().filter(|f| f.frame % n == 0)),
            inside: Summary::of(self.per_frame.iter().filter(|f| f.frame % n != 0)),
        });
        TemporalReport {
            width: self.width,
            height: self.height,
            frames: self.frames,
            flow: self.settings,
            clip: Summary::of(self.per_frame.iter()),
            chunks,
            per_frame: self.per_frame,
        }
    }
}
