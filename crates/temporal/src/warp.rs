//! Where each pixel of a frame was in the frame before, and whether that can be trusted: the
//! backward flow gives the position, the forward-backward consistency check (Sundaram et al.
//! 2010, as used by Ruder et al. 2016 and Lai et al. 2018) marks the pixels whose two flows
//! disagree as occluded, and a position outside the previous frame has no source at all.

use crate::flow::{dense_flow, Flow, FlowSettings, Plane};
use crate::sample::Sample;

/// The check's tolerance, relative to the squared lengths of the two flows.
pub const CONSISTENCY_RELATIVE: f32 = 0.01;
/// The check's tolerance in squared pixels.
pub const CONSISTENCY_ABSOLUTE: f32 = 0.5;

/// For each pixel of the current frame: its position in the previous frame, and whether it is
/// visible there.
#[derive(Debug, Clone)]
pub struct Correspondence {
    pub width: usize,
    pub height: usize,
    pub from_x: Vec<f32>,
    pub from_y: Vec<f32>,
    pub visible: Vec<bool>,
}

impl Correspondence {
    /// How many pixels are visible in the previous frame.
    pub fn visible_count(&self) -> usize {
        self.visible.iter().filter(|v| **v).count()
    }
}

/// The flows from `current` back to `previous` and forward again (computed side by side on two
/// threads), checked against each other.
pub fn correspond(previous: &Plane, current: &Plane, settings: &FlowSettings) -> Correspondence {
    correspond_scaled(previous, current, settings, previous.width, previous.height)
}

/// As [`correspond`], for frames of `width` x `height` whose planes were reduced (e.g. by
/// [`reduced`]): the flows are computed on the planes, scaled up to the frame's size (bilinear,
/// vectors scaled with the image) and then checked.
pub fn correspond_scaled(
    previous: &Plane,
    current: &Plane,
    settings: &FlowSettings,
    width: usize,
    height: usize,
) -> Correspondence {
    let flow = |from: &Plane, to: &Plane| {
        let flow = dense_flow(from, to, settings);
        if (flow.width(), flow.height()) == (width, height) {
            flow
        } else {
            flow.resized(width, height)
        }
    };
    let (backward, forward) = std::thread::scope(|scope| {
        let forward = scope.spawn(|| flow(previous, current));
        let backward = flow(current, previous);
        (backward, forward.join().expect("the forward flow's thread"))
    });
    check_consistency(&backward, &forward)
}

/// `plane` halved (blurred, every second pixel) until its longer side is at most `max_side`.
pub fn reduced(plane: Plane, max_side: usize) -> Plane {
    let mut plane = plane;
    while plane.width.max(plane.height) > max_side.max(1) {
        plane = plane.halved();
    }
    plane
}

/// Pixel `x` of the current frame comes from `p = x + b(x)` in the previous one; it is visible
/// there when `p` is inside that frame (within its pixels' area) and the forward flow at `p` leads back:
/// `|b(x) + f(p)|^2 < 0.01 (|b(x)|^2 + |f(p)|^2) + 0.5`.
pub fn check_consistency(backward: &Flow, forward: &Flow) -> Correspondence {
    let (w, h) = (backward.width(), backward.height());
    let n = w * h;
    let mut out = Correspondence {
        width: w,
        height: h,
        from_x: vec![0.0; n],
        from_y: vec![0.0; n],
        visible: vec![false; n],
    };
    // Inside means within the previous frame's pixels, which reach half a pixel past the
    // centres of the edge pixels.
    let (min_x, min_y) = (-0.5, -0.5);
    let (max_x, max_y) = (w as f32 - 0.5, h as f32 - 0.5);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let (bu, bv) = (backward.u.data[i], backward.v.data[i]);
            let (px, py) = (x as f32 + bu, y as f32 + bv);
            out.from_x[i] = px;
            out.from_y[i] = py;
            if !(min_x..max_x).contains(&px) || !(min_y..max_y).contains(&py) {
                continue;
            }
            let (fu, fv) = (forward.u.sample(px, py), forward.v.sample(px, py));
            let round_trip = (bu + fu).powi(2) + (bv + fv).powi(2);
            let lengths = bu * bu + bv * bv + fu * fu + fv * fv;
            out.visible[i] = round_trip < CONSISTENCY_RELATIVE * lengths + CONSISTENCY_ABSOLUTE;
        }
    }
    out
}

/// An RGB frame as three planes in [0, 1].
#[derive(Debug, Clone)]
pub struct RgbPlanes {
    pub channels: [Plane; 3],
}

impl RgbPlanes {
    pub fn from_packed<S: Sample>(rgb: &[S], width: usize, height: usize) -> RgbPlanes {
        assert_eq!(rgb.len(), width * height * 3, "RGB frame of the wrong size");
        let channel = |c: usize| Plane {
            width,
            height,
            data: rgb.chunks_exact(3).map(|p| p[c].to_unit()).collect(),
        };
        RgbPlanes {
            channels: [channel(0), channel(1), channel(2)],
        }
    }
}

/// Lai et al.'s warping error of one frame: the squared difference between `current` and
/// `previous` sampled where `link` says each pixel came from (bilinear), averaged over the three
/// channels and the visible pixels. `None` when no pixel is visible.
pub fn warping_error(
    previous: &RgbPlanes,
    current: &RgbPlanes,
    link: &Correspondence,
) -> Option<f64> {
    let visible = link.visible_count();
    if visible == 0 {
        return None;
    }
    let mut total = 0.0f64;
    for (prev, cur) in previous.channels.iter().zip(&current.channels) {
        for (i, value) in cur.data.iter().enumerate() {
            if link.visible[i] {
                let d = (value - prev.sample(link.from_x[i], link.from_y[i])) as f64;
                total += d * d;
            }
        }
    }
    Some(total / (3 * visible) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform_flow(w: usize, h: usize, u: f32, v: f32) -> Flow {
        let mut flow = Flow::zero(w, h);
        flow.u.data.fill(u);
        flow.v.data.fill(v);
        flow
    }

    #[test]
    fn consistent_flows_are_visible_except_where_they_leave_the_frame() {
        let (w, h) = (10, 6);
        let link = check_consistency(
            &uniform_flow(w, h, -2.0, 0.0),
            &uniform_flow(w, h, 2.0, 0.0),
        );
        for y in 0..h {
            for x in 0..w {
                assert_eq!(link.visible[y * w + x], x >= 2, "at {x},{y}");
            }
        }
    }

    #[test]
    fn disagreeing_flows_are_occluded() {
        let (w, h) = (10, 6);
        // The forward flow says the content stayed; the backward one that it moved 3 pixels.
        let link = check_consistency(
            &uniform_flow(w, h, -3.0, 0.0),
            &uniform_flow(w, h, 0.0, 0.0),
        );
        assert_eq!(link.visible_count(), 0);
        // Within the absolute tolerance (half a squared pixel), and inside the frame's pixels.
        let link = check_consistency(
            &uniform_flow(w, h, -0.5, 0.0),
            &uniform_flow(w, h, 0.0, 0.0),
        );
        assert_eq!(link.visible_count(), w * h);
    }

    #[test]
    fn the_error_of_identical_frames_is_zero() {
        let rgb: Vec<u8> = (0..4 * 3 * 3).map(|i| (i * 29 % 256) as u8).collect();
        let frame = RgbPlanes::from_packed(&rgb, 4, 3);
        let link = check_consistency(&uniform_flow(4, 3, 0.0, 0.0), &uniform_flow(4, 3, 0.0, 0.0));
        assert_eq!(warping_error(&frame, &frame, &link), Some(0.0));
    }
}
