//! Dense optical flow: a coarse-to-fine Lucas-Kanade over the whole frame (the same family as
//! Farneback's method), in plain Rust on one core.
//!
//! Each frame is turned to luma in [0, 1] ([`Plane::luma`]) and halved into a pyramid (a
//! `[1 2 1]/4` blur, then every second pixel) until its short side would fall under
//! [`FlowSettings::min_side`]. From the coarsest level down, the flow of the level above is
//! scaled up and refined by [`FlowSettings::iterations`] Gauss-Newton steps: the second frame is
//! sampled at the displaced positions (bilinear, edges clamped), each pixel's brightness
//! constraint is linearised with the first frame's gradient, and each pixel's flow becomes the
//! least-squares solution of the constraints of a square window around it
//! ([`FlowSettings::window_radius`]), each neighbour's constraint taken at that neighbour's own
//! flow (so the step is a weighted mean of the neighbours' estimates, which cannot diverge the
//! way summing residuals of differently displaced neighbours does), with
//! [`FlowSettings::regularization`] pulling towards the current flow so that flat or one-edged
//! windows keep the coarser estimate instead of inventing motion. A pixel displaced out of the
//! frame votes for its current flow.
//!
//! Every sum is in a fixed order in `f32`, so the same frames give bit-identical flow on the
//! same machine: the measure built on it is reproducible.

use crate::sample::Sample;

/// One channel of an image, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Plane {
    pub fn new(width: usize, height: usize) -> Plane {
        Plane {
            width,
            height,
            data: vec![0.0; width * height],
        }
    }

    /// The luma (BT.601 weights) of packed RGB, in [0, 1].
    pub fn luma<S: Sample>(rgb: &[S], width: usize, height: usize) -> Plane {
        assert_eq!(rgb.len(), width * height * 3, "RGB frame of the wrong size");
        let data = rgb
            .chunks_exact(3)
            .map(|p| 0.299 * p[0].to_unit() + 0.587 * p[1].to_unit() + 0.114 * p[2].to_unit())
            .collect();
        Plane {
            width,
            height,
            data,
        }
    }

    /// The value at integer coordinates clamped into the plane.
    fn at_clamped(&self, x: isize, y: isize) -> f32 {
        let x = x.clamp(0, self.width as isize - 1) as usize;
        let y = y.clamp(0, self.height as isize - 1) as usize;
        self.data[y * self.width + x]
    }

    /// The bilinear value at `(x, y)`, the edges extended outwards.
    pub fn sample(&self, x: f32, y: f32) -> f32 {
        let x = x.clamp(0.0, (self.width - 1) as f32);
        let y = y.clamp(0.0, (self.height - 1) as f32);
        let x0 = x.floor();
        let y0 = y.floor();
        let (fx, fy) = (x - x0, y - y0);
        let (x0, y0) = (x0 as usize, y0 as usize);
        let x1 = (x0 + 1).min(self.width - 1);
        let y1 = (y0 + 1).min(self.height - 1);
        let row0 = y0 * self.width;
        let row1 = y1 * self.width;
        let top = self.data[row0 + x0] + fx * (self.data[row0 + x1] - self.data[row0 + x0]);
        let bottom = self.data[row1 + x0] + fx * (self.data[row1 + x1] - self.data[row1 + x0]);
        top + fy * (bottom - top)
    }

    /// The Catmull-Rom cubic value at `(x, y)`, the edges extended outwards: sharper than
    /// [`Plane::sample`] between pixels (a value carried along a flow from frame to frame is
    /// resampled again each frame, and bilinear weights blur it a little more every time).
    pub fn sample_cubic(&self, x: f32, y: f32) -> f32 {
        let x = x.clamp(0.0, (self.width - 1) as f32);
        let y = y.clamp(0.0, (self.height - 1) as f32);
        let (x0, y0) = (x.floor(), y.floor());
        let (wx, wy) = (catmull_rom(x - x0), catmull_rom(y - y0));
        let (x0, y0) = (x0 as isize, y0 as isize);
        let mut value = 0.0f32;
        let inside =
            x0 >= 1 && y0 >= 1 && x0 + 2 < self.width as isize && y0 + 2 < self.height as isize;
        if inside {
            // The same sums without the clamps.
            for (j, wy) in wy.iter().enumerate() {
                let start = (y0 - 1 + j as isize) as usize * self.width + (x0 - 1) as usize;
                let taps = &self.data[start..start + 4];
                let mut row = 0.0f32;
                for (wx, tap) in wx.iter().zip(taps) {
                    row += wx * tap;
                }
                value += wy * row;
            }
            return value;
        }
        for (j, wy) in wy.iter().enumerate() {
            let mut row = 0.0f32;
            for (i, wx) in wx.iter().enumerate() {
                row += wx * self.at_clamped(x0 - 1 + i as isize, y0 - 1 + j as isize);
            }
            value += wy * row;
        }
        value
    }

    /// The `[1 2 1]/4` blur in both directions, the edges extended outwards.
    pub(crate) fn blurred(&self) -> Plane {
        let (w, h) = (self.width, self.height);
        let mut rows = Plane::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let (xi, yi) = (x as isize, y as isize);
                rows.data[y * w + x] = 0.25 * self.at_clamped(xi - 1, yi)
                    + 0.5 * self.at_clamped(xi, yi)
                    + 0.25 * self.at_clamped(xi + 1, yi);
            }
        }
        let mut out = Plane::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let (xi, yi) = (x as isize, y as isize);
                out.data[y * w + x] = 0.25 * rows.at_clamped(xi, yi - 1)
                    + 0.5 * rows.at_clamped(xi, yi)
                    + 0.25 * rows.at_clamped(xi, yi + 1);
            }
        }
        out
    }

    /// Half the size (rounded up), after a `[1 2 1]/4` blur in both directions.
    pub(crate) fn halved(&self) -> Plane {
        // The blur at every second pixel (the same sums as blurring the whole plane).
        let blurred = self.blurred();
        let (hw, hh) = (self.width.div_ceil(2), self.height.div_ceil(2));
        let mut half = Plane::new(hw, hh);
        for y in 0..hh {
            for x in 0..hw {
                half.data[y * hw + x] = blurred.data[2 * y * self.width + 2 * x];
            }
        }
        half
    }
}

/// The weights of the four samples around a point `t` in [0, 1) past the second of them.
fn catmull_rom(t: f32) -> [f32; 4] {
    let (t2, t3) = (t * t, t * t * t);
    [
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    ]
}

/// The settings of [`dense_flow`]; the defaults are the ones `fresco eval temporal` documents.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FlowSettings {
    /// The pyramid stops before a level whose short side is under this many pixels.
    pub min_side: usize,
    /// At most this many levels (the full-size frame counts as one).
    pub max_levels: usize,
    /// Gauss-Newton steps at each level.
    pub iterations: usize,
    /// Half the side of the square window the brightness constraint is summed over: the
    /// window is `2 r + 1` pixels wide at every level.
    pub window_radius: usize,
    /// Added to the diagonal of each window's mean structure tensor (luma in [0, 1] per pixel,
    /// squared): below this much texture a window keeps the coarser level's flow.
    pub regularization: f32,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            min_side: 16,
            max_levels: 6,
            iterations: 4,
            window_radius: 3,
            regularization: 1e-4,
        }
    }
}

/// A displacement per pixel: the pixel `(x, y)` of the first frame is at
/// `(x + u, y + v)` in the second.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub u: Plane,
    pub v: Plane,
}

impl Flow {
    pub fn zero(width: usize, height: usize) -> Flow {
        Flow {
            u: Plane::new(width, height),
            v: Plane::new(width, height),
        }
    }

    pub fn width(&self) -> usize {
        self.u.width
    }

    pub fn height(&self) -> usize {
        self.u.height
    }

    /// This flow at another size, its vectors scaled with the image.
    pub(crate) fn resized(&self, width: usize, height: usize) -> Flow {
        let sx = width as f32 / self.width() as f32;
        let sy = height as f32 / self.height() as f32;
        let mut out = Flow::zero(width, height);
        for y in 0..height {
            let cy = (y as f32 + 0.5) / sy - 0.5;
            for x in 0..width {
                let cx = (x as f32 + 0.5) / sx - 0.5;
                out.u.data[y * width + x] = self.u.sample(cx, cy) * sx;
                out.v.data[y * width + x] = self.v.sample(cx, cy) * sy;
            }
        }
        out
    }
}

/// The flow from `first` to `second` (two planes of one size, e.g. [`Plane::luma`]).
pub fn dense_flow(first: &Plane, second: &Plane, settings: &FlowSettings) -> Flow {
    assert_eq!(
        (first.width, first.height),
        (second.width, second.height),
        "flow between frames of different sizes"
    );
    let firsts = pyramid(first, settings);
    let seconds = pyramid(second, settings);
    let coarsest = firsts.last().expect("a pyramid has a level");
    let mut flow = Flow::zero(coarsest.width, coarsest.height);
    for (a, b) in firsts.iter().zip(&seconds).rev() {
        if (flow.width(), flow.height()) != (a.width, a.height) {
            flow = flow.resized(a.width, a.height);
        }
        refine(a, b, &mut flow, settings);
    }
    flow
}

fn pyramid(base: &Plane, settings: &FlowSettings) -> Vec<Plane> {
    let mut levels = vec![base.clone()];
    while levels.len() < settings.max_levels.max(1) {
        let last = levels.last().expect("one level");
        if last.width.div_ceil(2).min(last.height.div_ceil(2)) < settings.min_side {
            break;
        }
        let next = last.halved();
        levels.push(next);
    }
    levels
}

/// Gauss-Newton steps of the windowed brightness constraint at one level.
fn refine(first: &Plane, second: &Plane, flow: &mut Flow, settings: &FlowSettings) {
    let (w, h) = (first.width, first.height);
    let n = w * h;
    let (mut gx, mut gy) = (vec![0.0f32; n], vec![0.0f32; n]);
    for y in 0..h {
        for x in 0..w {
            let (xi, yi) = (x as isize, y as isize);
            // The five-point central difference: exact for cubics, less biased than two points.
            let d = |a: f32, b: f32, c: f32, e: f32| (a - 8.0 * b + 8.0 * c - e) / 12.0;
            gx[y * w + x] = d(
                first.at_clamped(xi - 2, yi),
                first.at_clamped(xi - 1, yi),
                first.at_clamped(xi + 1, yi),
                first.at_clamped(xi + 2, yi),
            );
            gy[y * w + x] = d(
                first.at_clamped(xi, yi - 2),
                first.at_clamped(xi, yi - 1),
                first.at_clamped(xi, yi + 1),
                first.at_clamped(xi, yi + 2),
            );
        }
    }
    let r = settings.window_radius;
    let mut scratch = vec![0.0f32; n];
    let product =
        |a: &[f32], b: &[f32]| -> Vec<f32> { a.iter().zip(b).map(|(p, q)| p * q).collect() };
    let mut sxx = product(&gx, &gx);
    let mut sxy = product(&gx, &gy);
    let mut syy = product(&gy, &gy);
    box_mean(&mut sxx, w, h, r, &mut scratch);
    box_mean(&mut sxy, w, h, r, &mut scratch);
    box_mean(&mut syy, w, h, r, &mut scratch);
    let lambda = settings.regularization;
    let (mut sxt, mut syt) = (vec![0.0f32; n], vec![0.0f32; n]);
    let (max_x, max_y) = ((w - 1) as f32, (h - 1) as f32);
    for _ in 0..settings.iterations {
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let (u, v) = (flow.u.data[i], flow.v.data[i]);
                let (px, py) = (x as f32 + u, y as f32 + v);
                // A pixel displaced out of the frame says nothing new: it votes for its flow.
                let dt = if (0.0..=max_x).contains(&px) && (0.0..=max_y).contains(&py) {
                    second.sample(px, py) - first.data[i]
                } else {
                    0.0
                };
                // This pixel's own vote for the displacement along its gradient.
                let along = gx[i] * u + gy[i] * v - dt;
                sxt[i] = gx[i] * along;
                syt[i] = gy[i] * along;
            }
        }
        box_mean(&mut sxt, w, h, r, &mut scratch);
        box_mean(&mut syt, w, h, r, &mut scratch);
        for i in 0..n {
            let a11 = sxx[i] + lambda;
            let a22 = syy[i] + lambda;
            let a12 = sxy[i];
            let det = a11 * a22 - a12 * a12;
            let b1 = sxt[i] + lambda * flow.u.data[i];
            let b2 = syt[i] + lambda * flow.v.data[i];
            flow.u.data[i] = (a22 * b1 - a12 * b2) / det;
            flow.v.data[i] = (a11 * b2 - a12 * b1) / det;
        }
    }
}

/// Replaces `values` by their mean over a `(2 r + 1)` square around each pixel, the window cut
/// at the edges (the mean of the pixels inside). Two running sums: along rows, then columns.
fn box_mean(values: &mut [f32], w: usize, h: usize, r: usize, scratch: &mut [f32]) {
    for y in 0..h {
        let row = &values[y * w..(y + 1) * w];
        let out = &mut scratch[y * w..(y + 1) * w];
        let mut sum: f32 = row[..(r + 1).min(w)].iter().sum();
        for x in 0..w {
            let lo = x.saturating_sub(r);
            let hi = (x + r).min(w - 1);
            out[x] = sum / (hi - lo + 1) as f32;
            if x + r + 1 < w {
                sum += row[x + r + 1];
            }
            if x >= r {
                sum -= row[x - r];
            }
        }
    }
    let mut sums: Vec<f32> = vec![0.0; w];
    for y in 0..(r + 1).min(h) {
        for (s, v) in sums.iter_mut().zip(&scratch[y * w..(y + 1) * w]) {
            *s += v;
        }
    }
    for y in 0..h {
        let lo = y.saturating_sub(r);
        let hi = (y + r).min(h - 1);
        let count = (hi - lo + 1) as f32;
        for (out, s) in values[y * w..(y + 1) * w].iter_mut().zip(&sums) {
            *out = s / count;
        }
        if y + r + 1 < h {
            let row = (y + r + 1) * w;
            for (s, v) in sums.iter_mut().zip(&scratch[row..row + w]) {
                *s += v;
            }
        }
        if y >= r {
            let row = (y - r) * w;
            for (s, v) in sums.iter_mut().zip(&scratch[row..row + w]) {
                *s -= v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth texture with detail at several scales, defined everywhere (so that a shifted
    /// copy is exact).
    fn texture(x: f32, y: f32) -> f32 {
        0.5 + 0.2 * (x * 0.31).sin() * (y * 0.23).cos()
            + 0.15 * ((x + 2.0 * y) * 0.11).sin()
            + 0.1 * ((x * 0.07) - (y * 0.13)).cos()
    }

    fn shifted(w: usize, h: usize, dx: f32, dy: f32) -> (Plane, Plane) {
        let mut a = Plane::new(w, h);
        let mut b = Plane::new(w, h);
        for y in 0..h {
            for x in 0..w {
                a.data[y * w + x] = texture(x as f32, y as f32);
                b.data[y * w + x] = texture(x as f32 - dx, y as f32 - dy);
            }
        }
        (a, b)
    }

    #[test]
    fn box_mean_matches_a_direct_sum() {
        let (w, h, r) = (7, 5, 2);
        let original: Vec<f32> = (0..w * h).map(|i| (i * 37 % 11) as f32).collect();
        let mut values = original.clone();
        let mut scratch = vec![0.0; w * h];
        box_mean(&mut values, w, h, r, &mut scratch);
        for y in 0..h {
            for x in 0..w {
                let (mut sum, mut count) = (0.0, 0.0);
                for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
                    for xx in x.saturating_sub(r)..=(x + r).min(w - 1) {
                        sum += original[yy * w + xx];
                        count += 1.0;
                    }
                }
                assert!((values[y * w + x] - sum / count).abs() < 1e-5, "at {x},{y}");
            }
        }
    }

    #[test]
    fn a_still_frame_has_no_flow() {
        let (a, _) = shifted(64, 48, 0.0, 0.0);
        let flow = dense_flow(&a, &a, &FlowSettings::default());
        assert!(flow.u.data.iter().chain(&flow.v.data).all(|d| *d == 0.0));
    }

    #[test]
    fn a_translation_is_found_inside_the_frame() {
        // Large enough for the coarse levels to carry a 9-pixel move.
        let (dx, dy) = (9.0, -3.5);
        let (a, b) = shifted(160, 120, dx, dy);
        let flow = dense_flow(&a, &b, &FlowSettings::default());
        let margin = 16;
        let (mut worst, mut sum, mut count) = (0.0f32, 0.0f32, 0.0f32);
        for y in margin..120 - margin {
            for x in margin..160 - margin {
                let i = y * 160 + x;
                let error = (flow.u.data[i] - dx).hypot(flow.v.data[i] - dy);
                worst = worst.max(error);
                sum += error;
                count += 1.0;
            }
        }
        assert!(sum / count < 0.02, "mean endpoint error {}", sum / count);
        assert!(worst < 0.1, "worst endpoint error {worst}");
    }
}
