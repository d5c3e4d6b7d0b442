//! The fix for flicker: each styled frame is blended with the previous output carried along
//! the input's flow, on the pixels that were visible in the previous frame; where they were
//! not (occlusions, the frame's edge), or where the input itself changed there (a light, a
//! reflection the flow cannot follow), the styled frame is taken as it is; at a scene cut the
//! history is dropped. The previous output is the blended one, so the texture follows the
//! scene's motion over many frames (an exponential average along motion paths).
//!
//! Everything is computed in a fixed order on one frame at a time: the same frames in give
//! the same frames out, so a chunk scored twice is identical, and a chunk that starts a few
//! frames early ([`BlendSettings::warm_up_frames`]) has settled by its first written frame.

use serde::Serialize;

use crate::flow::{FlowSettings, Plane};
use crate::sample::Sample;
use crate::warp::{correspond, warping_error, RgbPlanes};

/// How the blend is done; the defaults are the ones docs/temporal.md states.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BlendSettings {
    /// The share of the warped previous output in a visible pixel.
    pub keep: f32,
    /// A pixel whose input differs from the warped previous input by more than this (mean
    /// absolute difference of its channels, in [0, 1]) is taken as styled.
    pub input_change: f32,
    /// A frame whose input's warping error is above this, or with under
    /// [`BlendSettings::min_visible`] of its pixels visible before, is a scene cut.
    pub scene_cut: f64,
    pub min_visible: f64,
    /// Frames a chunk starts early, scored but not written, so that the blend has settled:
    /// after them the history that a chunk boundary cuts weighs `keep^warm_up_frames`.
    pub warm_up_frames: u32,
}

impl Default for BlendSettings {
    fn default() -> Self {
        BlendSettings {
            keep: 0.7,
            input_change: 0.08,
            scene_cut: 0.02,
            min_visible: 0.3,
            warm_up_frames: 12,
        }
    }
}

/// What [`Stabilizer::push`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// The first frame, or the first after a scene cut: taken as styled.
    Start,
    Cut,
    /// Blended on this share of its pixels.
    Blended {
        share: f64,
    },
}

struct Previous {
    luma: Plane,
    input: RgbPlanes,
    output: RgbPlanes,
}

/// Blends the frames of one video, in order.
pub struct Stabilizer {
    width: usize,
    height: usize,
    flow: FlowSettings,
    blend: BlendSettings,
    previous: Option<Previous>,
}

impl Stabilizer {
    pub fn new(width: usize, height: usize, flow: FlowSettings, blend: BlendSettings) -> Self {
        Stabilizer {
            width,
            height,
            flow,
            blend,
            previous: None,
        }
    }

    /// Blends `styled` (packed RGB, the model's output for `input`) in place with the previous
    /// output.
    pub fn push<S: Sample>(&mut self, input: &[S], styled: &mut [S]) -> Step {
        let (w, h) = (self.width, self.height);
        assert_eq!(styled.len(), w * h * 3, "styled frame of the wrong size");
        let luma = Plane::luma(input, w, h);
        let input = RgbPlanes::from_packed(input, w, h);
        let step = match &self.previous {
            None => Step::Start,
            Some(previous) => self.blend_with(previous, &luma, &input, styled),
        };
        self.previous = Some(Previous {
            luma,
            input,
            output: RgbPlanes::from_packed(styled, w, h),
        });
        step
    }

    fn blend_with<S: Sample>(
        &self,
        previous: &Previous,
        luma: &Plane,
        input: &RgbPlanes,
        styled: &mut [S],
    ) -> Step {
        let link = correspond(&previous.luma, luma, &self.flow);
        let n = self.width * self.height;
        let visible = link.visible_count() as f64 / n as f64;
        let floor = warping_error(&previous.input, input, &link);
        if visible < self.blend.min_visible || floor.is_none_or(|e| e > self.blend.scene_cut) {
            return Step::Cut;
        }
        let keep = self.blend.keep;
        let mut blended = 0usize;
        for i in 0..n {
            if !link.visible[i] {
                continue;
            }
            let (x, y) = (link.from_x[i], link.from_y[i]);
            let change: f32 = (0..3)
                .map(|c| {
                    (input.channels[c].data[i] - previous.input.channels[c].sample(x, y)).abs()
                })
                .sum::<f32>()
                / 3.0;
            if change > self.blend.input_change {
                continue;
            }
            for c in 0..3 {
                let carried = previous.output.channels[c].sample(x, y);
                let value = (1.0 - keep) * styled[3 * i + c].to_unit() + keep * carried;
                styled[3 * i + c] = S::from_unit(value);
            }
            blended += 1;
        }
        Step::Blended {
            share: blended as f64 / n as f64,
        }
    }
}
