//! The fix for flicker: each styled frame is blended with the previous output carried along
//! the input's flow, on the pixels that were visible in the previous frame; where they were
//! not (occlusions, the frame's edge), or where the input itself changed there (a light, a
//! reflection the flow cannot follow), the styled frame is taken as it is; at a scene cut the
//! history is dropped. The previous output is the blended one, so the texture follows the
//! scene's motion over many frames (an exponential average along motion paths).
//!
//! It runs in two steps, so that a pipeline can do the first beside the model:
//! [`MotionTracker::track`] looks only at the input frames (the flow, computed on a reduced copy
//! of the frame and scaled up, the consistency check, scene cuts, which pixels to blend) and
//! gives a [`Motion`]; [`Blender::apply`] blends a styled frame along it. [`Stabilizer`] does
//! both, one frame after the other.
//!
//! The carried output is resampled with Catmull-Rom weights (bilinear ones blur it a little more
//! at every frame it is carried), and the blend keeps part of the styled frame's own fine detail
//! ([`BlendSettings::detail`]): the styles' fine texture is what an average of frames loses.
//!
//! Everything is computed in a fixed order on one frame at a time: the same frames in give
//! the same frames out, so a chunk scored twice is identical, and a chunk that starts a few
//! frames early ([`BlendSettings::warm_up_frames`]) has settled by its first written frame.

use serde::Serialize;

use crate::flow::{FlowSettings, Plane};
use crate::sample::Sample;
use crate::warp::{correspond_scaled, reduced, warping_error, RgbPlanes};

/// How the blend is done; the defaults are the ones docs/temporal.md states.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BlendSettings {
    /// The share of the warped previous output in a visible pixel.
    pub keep: f32,
    /// How much of the fine detail (the frame less its `[1 2 1]/4` blur) of a blended pixel
    /// comes from the styled frame rather than from the blend: 0 blends it like the rest, 1
    /// takes it from the styled frame alone.
    pub detail: f32,
    /// A pixel whose input differs from the warped previous input by more than this (mean
    /// absolute difference of its channels, in [0, 1]) is taken as styled.
    pub input_change: f32,
    /// A frame whose input's warping error is above this, or with under
    /// [`BlendSettings::min_visible`] of its pixels visible before, is a scene cut.
    pub scene_cut: f64,
    pub min_visible: f64,
    /// The flow is computed on the frames halved until their longer side is at most this, and
    /// scaled up (the motion of a frame is smooth at this scale; the flow's cost falls with the
    /// square of the reduction).
    pub flow_max_side: usize,
    /// Frames a chunk starts early, scored but not written, so that the blend has settled:
    /// after them the history that a chunk boundary cuts weighs `keep^warm_up_frames`.
    pub warm_up_frames: u32,
}

impl Default for BlendSettings {
    fn default() -> Self {
        BlendSettings {
            keep: 0.7,
            detail: 0.85,
            input_change: 0.08,
            scene_cut: 0.02,
            min_visible: 0.3,
            flow_max_side: 320,
            warm_up_frames: 8,
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

/// Where a frame's pixels come from in the frame before, and which of them to blend: all that
/// [`Blender::apply`] needs besides the styled frames.
pub struct Motion {
    step: Step,
    /// Each pixel's position in the previous frame (empty unless blended).
    from_x: Vec<f32>,
    from_y: Vec<f32>,
    blend: Vec<bool>,
}

impl Motion {
    pub fn step(&self) -> Step {
        self.step
    }

    fn unblended(step: Step) -> Motion {
        Motion {
            step,
            from_x: Vec::new(),
            from_y: Vec::new(),
            blend: Vec::new(),
        }
    }
}

/// The input side of the blend: follows the input frames of one video, in order.
pub struct MotionTracker {
    width: usize,
    height: usize,
    flow: FlowSettings,
    blend: BlendSettings,
    /// The previous frame's reduced luma and its full-size channels.
    previous: Option<(Plane, RgbPlanes)>,
}

impl MotionTracker {
    pub fn new(width: usize, height: usize, flow: FlowSettings, blend: BlendSettings) -> Self {
        MotionTracker {
            width,
            height,
            flow,
            blend,
            previous: None,
        }
    }

    /// The motion from the previous input frame to `input` (packed RGB).
    pub fn track<S: Sample>(&mut self, input: &[S]) -> Motion {
        let (w, h) = (self.width, self.height);
        let luma = reduced(Plane::luma(input, w, h), self.blend.flow_max_side);
        let input = RgbPlanes::from_packed(input, w, h);
        let motion = match &self.previous {
            None => Motion::unblended(Step::Start),
            Some((previous_luma, previous_input)) => {
                self.motion(previous_luma, previous_input, &luma, &input)
            }
        };
        self.previous = Some((luma, input));
        motion
    }

    fn motion(
        &self,
        previous_luma: &Plane,
        previous_input: &RgbPlanes,
        luma: &Plane,
        input: &RgbPlanes,
    ) -> Motion {
        let (w, h) = (self.width, self.height);
        let link = correspond_scaled(previous_luma, luma, &self.flow, w, h);
        let n = w * h;
        let visible = link.visible_count() as f64 / n as f64;
        let floor = warping_error(previous_input, input, &link);
        if visible < self.blend.min_visible || floor.is_none_or(|e| e > self.blend.scene_cut) {
            return Motion::unblended(Step::Cut);
        }
        let blend: Vec<bool> = (0..n)
            .map(|i| {
                if !link.visible[i] {
                    return false;
                }
                let (x, y) = (link.from_x[i], link.from_y[i]);
                let change: f32 = (0..3)
                    .map(|c| {
                        (input.channels[c].data[i] - previous_input.channels[c].sample(x, y)).abs()
                    })
                    .sum::<f32>()
                    / 3.0;
                change <= self.blend.input_change
            })
            .collect();
        let share = blend.iter().filter(|b| **b).count() as f64 / n as f64;
        Motion {
            step: Step::Blended { share },
            from_x: link.from_x,
            from_y: link.from_y,
            blend,
        }
    }
}

/// The output side of the blend: blends the styled frames of one video, in order, along the
/// [`Motion`]s a [`MotionTracker`] gave for their inputs.
pub struct Blender {
    width: usize,
    height: usize,
    blend: BlendSettings,
    previous: Option<RgbPlanes>,
}

impl Blender {
    pub fn new(width: usize, height: usize, blend: BlendSettings) -> Self {
        Blender {
            width,
            height,
            blend,
            previous: None,
        }
    }

    /// Blends `styled` (packed RGB) in place with the previous output carried along `motion`.
    pub fn apply<S: Sample>(&mut self, motion: &Motion, styled: &mut [S]) -> Step {
        let (w, h) = (self.width, self.height);
        assert_eq!(styled.len(), w * h * 3, "styled frame of the wrong size");
        if let (Step::Blended { .. }, Some(previous)) = (motion.step, &self.previous) {
            self.blend_with(previous, motion, styled);
        }
        self.previous = Some(RgbPlanes::from_packed(styled, w, h));
        motion.step
    }

    fn blend_with<S: Sample>(&self, previous: &RgbPlanes, motion: &Motion, styled: &mut [S]) {
        let (w, h) = (self.width, self.height);
        let (keep, detail) = (self.blend.keep, self.blend.detail);
        let current = RgbPlanes::from_packed(styled, w, h);
        for (c, (before, now)) in previous.channels.iter().zip(&current.channels).enumerate() {
            let carried = Plane {
                width: w,
                height: h,
                data: (0..w * h)
                    .map(|i| before.sample_cubic(motion.from_x[i], motion.from_y[i]))
                    .collect(),
            };
            // The fine detail of the styled frame against that of the carried output.
            let blurs = (detail > 0.0).then(|| (carried.blurred(), now.blurred()));
            for i in 0..w * h {
                if !motion.blend[i] {
                    continue;
                }
                let mut value = (1.0 - keep) * now.data[i] + keep * carried.data[i];
                if let Some((carried_blur, now_blur)) = &blurs {
                    let fine_now = now.data[i] - now_blur.data[i];
                    let fine_carried = carried.data[i] - carried_blur.data[i];
                    value += detail * keep * (fine_now - fine_carried);
                }
                styled[3 * i + c] = S::from_unit(value);
            }
        }
    }
}

/// Blends the frames of one video, in order: a [`MotionTracker`] and a [`Blender`] together.
pub struct Stabilizer {
    tracker: MotionTracker,
    blender: Blender,
}

impl Stabilizer {
    pub fn new(width: usize, height: usize, flow: FlowSettings, blend: BlendSettings) -> Self {
        Stabilizer {
            tracker: MotionTracker::new(width, height, flow, blend),
            blender: Blender::new(width, height, blend),
        }
    }

    /// Blends `styled` (packed RGB, the model's output for `input`) in place with the previous
    /// output.
    pub fn push<S: Sample>(&mut self, input: &[S], styled: &mut [S]) -> Step {
        let motion = self.tracker.track(input);
        self.blender.apply(&motion, styled)
    }

    /// The two halves, for a pipeline that tracks the inputs beside the model.
    pub fn into_parts(self) -> (MotionTracker, Blender) {
        (self.tracker, self.blender)
    }
}
