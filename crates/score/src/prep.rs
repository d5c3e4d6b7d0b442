//! Preparing a frame for a model: the size and resize mode, per-channel normalisation, layout
//! and channel order ([`PrepSpec`]), and the way back from model pixels to the displayed frame
//! ([`Geometry`]).
//!
//! The work is split between the decoder and [`PrepSpec::prepare`]: the decoder (ffmpeg)
//! scales each frame to [`PrepSpec::scaled_size`], which is the model's size for `stretch`,
//! the inner (unpadded) size for `letterbox`, and the short-side-resized size for `crop`, so a
//! 4K frame is never decoded at 4K and resized here. `prepare` then only pads (letterbox) or
//! centre-crops (crop), normalises and lays out the channels, writing into the caller's buffer
//! with no allocation per frame.

use fresco_core::{ChannelOrder, Normalization};
use fresco_infer::Layout;

/// What the scores are for; picks the decoder and the default resize mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Scores per class (one output `[N, classes]`).
    Classify,
    /// Boxes with class and score.
    Detect,
    /// Every output as named arrays (embeddings, anything else).
    Tensors,
    /// A per-pixel map (`[N, C, H, W]`) as one mask image per picture ([`crate::mask`]): not
    /// records, so only a dataset with an output folder or prefix takes it.
    Segment,
}

impl std::str::FromStr for Task {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "classify" => Ok(Task::Classify),
            "detect" => Ok(Task::Detect),
            "tensors" => Ok(Task::Tensors),
            "segment" => Ok(Task::Segment),
            other => Err(format!(
                "unknown task '{other}': expected classify, detect, tensors or segment"
            )),
        }
    }
}

/// How a frame is fitted to the model's input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resize {
    /// Scaled to exactly the input size; the aspect ratio is not kept.
    Stretch,
    /// Scaled to fit inside, centred, the rest filled with grey ([`PrepSpec::fill`]).
    Letterbox,
    /// Scaled so that the input size is [`PrepSpec::crop_fraction`] of the frame's short side
    /// (0.875: 256 -> 224), then the centre cut out.
    Crop,
}

impl Resize {
    /// The default for a task: classifiers were trained on centre crops, detectors on
    /// letterboxed frames (nothing is cut off), anything else on the frame as it is (a mask
    /// then covers the whole picture).
    pub fn default_for(task: Task) -> Resize {
        match task {
            Task::Classify => Resize::Crop,
            Task::Detect => Resize::Letterbox,
            Task::Tensors | Task::Segment => Resize::Stretch,
        }
    }
}

impl std::str::FromStr for Resize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stretch" => Ok(Resize::Stretch),
            "letterbox" => Ok(Resize::Letterbox),
            "crop" => Ok(Resize::Crop),
            other => Err(format!(
                "unknown resize '{other}': expected stretch, letterbox or crop"
            )),
        }
    }
}

/// The largest side a model's input may be given (`--input-size`): a 4096x4096 frame is 192 MiB
/// of float32 per batch item, already far past what scoring models take.
pub const MAX_INPUT_SIDE: u32 = 4096;

/// Parses `WxH` (e.g. `224x224`).
pub fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("'{text}' is not WxH (e.g. 224x224)"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|v| (1..=MAX_INPUT_SIDE).contains(v))
            .ok_or_else(|| format!("'{text}' is not WxH with sizes from 1 to {MAX_INPUT_SIDE}"))
    };
    Ok((parse(w)?, parse(h)?))
}

/// How a frame becomes the model's input tensor. Normalisation is on 0..255 pixel values:
/// `x = (pixel - mean[c]) / std[c]`, so `/255` is mean 0, std 255; `(x-127)/128` is mean 127,
/// std 128; `x/127.5-1` is mean 127.5, std 127.5.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PrepSpec {
    pub width: u32,
    pub height: u32,
    pub resize: Resize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub layout: Layout,
    pub channel_order: ChannelOrder,
    /// The letterbox's grey (0..255, all three channels).
    pub fill: u8,
    /// `crop` only: the input size as a fraction of the scaled short side.
    pub crop_fraction: f32,
}

/// The defaults of the parts a model, flag or card did not give.
pub const DEFAULT_MEAN: [f32; 3] = [0.0; 3];
pub const DEFAULT_STD: [f32; 3] = [255.0; 3];
pub const DEFAULT_FILL: u8 = 127;
pub const DEFAULT_CROP_FRACTION: f32 = 0.875;

/// Where model-input pixels are in the displayed frame: `frame = (model - offset) / scale`,
/// per axis. Letterbox: the offset is the padding; crop: minus the cut; stretch: none.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Geometry {
    pub frame_width: u32,
    pub frame_height: u32,
    pub scale_x: f64,
    pub scale_y: f64,
    pub offset_x: f64,
    pub offset_y: f64,
}

impl Geometry {
    /// A point in model-input pixels, in frame pixels (not clamped).
    pub fn to_frame(&self, x: f64, y: f64) -> (f64, f64) {
        (
            (x - self.offset_x) / self.scale_x,
            (y - self.offset_y) / self.scale_y,
        )
    }

    /// A point `x, y` in model-input pixels, in frame pixels, clamped to the frame.
    pub fn point_to_frame(&self, p: [f32; 2]) -> [f32; 2] {
        let (x, y) = self.to_frame(p[0] as f64, p[1] as f64);
        [
            x.clamp(0.0, self.frame_width as f64) as f32,
            y.clamp(0.0, self.frame_height as f64) as f32,
        ]
    }

    /// A box `x0,y0,x1,y1` in model-input pixels, in frame pixels, clamped to the frame.
    pub fn box_to_frame(&self, b: [f32; 4]) -> [f32; 4] {
        let [x0, y0] = self.point_to_frame([b[0], b[1]]);
        let [x1, y1] = self.point_to_frame([b[2], b[3]]);
        [x0, y0, x1, y1]
    }
}

impl PrepSpec {
    /// The size the decoder must scale a `frame_width x frame_height` frame to (see the module
    /// doc): never zero.
    pub fn scaled_size(&self, frame_width: u32, frame_height: u32) -> (u32, u32) {
        let (fw, fh) = (frame_width.max(1) as f64, frame_height.max(1) as f64);
        let (w, h) = (self.width as f64, self.height as f64);
        let round = |v: f64| (v.round() as u32).max(1);
        match self.resize {
            Resize::Stretch => (self.width, self.height),
            Resize::Letterbox => {
                let s = (w / fw).min(h / fh);
                (
                    round(fw * s).min(self.width),
                    round(fh * s).min(self.height),
                )
            }
            Resize::Crop => {
                let s = (w / fw).max(h / fh) / self.crop_fraction as f64;
                (
                    round(fw * s).max(self.width),
                    round(fh * s).max(self.height),
                )
            }
        }
    }

    /// The mapping back to the frame for a frame of this size, scaled by the decoder to
    /// [`PrepSpec::scaled_size`].
    pub fn geometry(&self, frame_width: u32, frame_height: u32) -> Geometry {
        let (sw, sh) = self.scaled_size(frame_width, frame_height);
        let (ox, oy) = self.offsets(sw, sh);
        Geometry {
            frame_width,
            frame_height,
            scale_x: sw as f64 / frame_width.max(1) as f64,
            scale_y: sh as f64 / frame_height.max(1) as f64,
            offset_x: ox as f64,
            offset_y: oy as f64,
        }
    }

    /// Where a scaled frame's top-left corner lands in the input: positive when padded,
    /// negative when cropped (the centre is kept).
    /// Rounded down either way, as numpy's `(w - W) // 2` crops do.
    fn offsets(&self, w: u32, h: u32) -> (i64, i64) {
        let centre = |model: u32, frame: u32| {
            if frame <= model {
                ((model - frame) / 2) as i64
            } else {
                -(((frame - model) / 2) as i64)
            }
        };
        (centre(self.width, w), centre(self.height, h))
    }

    /// The mean and std, as image models' cards give them too.
    pub fn normalization(&self) -> Normalization {
        Normalization {
            mean: self.mean,
            std: self.std,
        }
    }

    /// Values per frame in the input tensor.
    pub fn frame_len(&self) -> usize {
        self.width as usize * self.height as usize * 3
    }

    /// The input tensor's shape for `batch` frames.
    pub fn shape(&self, batch: usize) -> [usize; 4] {
        let (w, h) = (self.width as usize, self.height as usize);
        match self.layout {
            Layout::Nchw => [batch, 3, h, w],
            Layout::Nhwc => [batch, h, w, 3],
        }
    }

    /// Writes one frame into `out` (exactly [`PrepSpec::frame_len`] values): `rgb` is packed
    /// RGB24, `width x height`, as the decoder scaled it (normally [`PrepSpec::scaled_size`];
    /// any size works: smaller is centred and padded with the fill, larger is centre-cropped).
    pub fn prepare(&self, rgb: &[u8], width: u32, height: u32, out: &mut [f32]) {
        let (w, h) = (width as usize, height as usize);
        assert_eq!(rgb.len(), w * h * 3, "RGB frame has the wrong length");
        assert_eq!(
            out.len(),
            self.frame_len(),
            "output slot has the wrong length"
        );
        let (mw, mh) = (self.width as usize, self.height as usize);
        let (ox, oy) = self.offsets(width, height);
        // Per model channel: the source channel, and value = pixel * gain + bias.
        let mut src_channel = [0usize, 1, 2];
        if self.channel_order == ChannelOrder::Bgr {
            src_channel = [2, 1, 0];
        }
        let (gain, bias) = self.normalization().gain_bias(255.0);
        let fill: [f32; 3] = std::array::from_fn(|c| self.fill as f32 * gain[c] + bias[c]);
        // The model columns that show frame pixels, and the frame column of the first.
        let x_start = ox.max(0) as usize;
        let x_end = (ox + w as i64).clamp(0, mw as i64) as usize;
        let src_x0 = (x_start as i64 - ox) as usize;
        let plane = mw * mh;
        let out = &mut out[..plane * 3];
        for y in 0..mh {
            let sy = y as i64 - oy;
            let row = (sy >= 0 && (sy as usize) < h).then(|| {
                let start = (sy as usize * w + src_x0) * 3;
                &rgb[start..start + (x_end - x_start) * 3]
            });
            match self.layout {
                Layout::Nchw => {
                    // This row of each plane, filled in one pass over the source pixels.
                    let (p0, rest) = out.split_at_mut(plane);
                    let (p1, p2) = rest.split_at_mut(plane);
                    let mut dsts = [
                        &mut p0[y * mw..(y + 1) * mw],
                        &mut p1[y * mw..(y + 1) * mw],
                        &mut p2[y * mw..(y + 1) * mw],
                    ];
                    let Some(row) = row else {
                        for (c, d) in dsts.iter_mut().enumerate() {
                            d.fill(fill[c]);
                        }
                        continue;
                    };
                    for (c, d) in dsts.iter_mut().enumerate() {
                        d[..x_start].fill(fill[c]);
                        d[x_end..].fill(fill[c]);
                    }
                    let [d0, d1, d2] = &mut dsts;
                    let (s0, s1, s2) = (src_channel[0], src_channel[1], src_channel[2]);
                    for (((px, a), b), c) in row
                        .chunks_exact(3)
                        .zip(&mut d0[x_start..x_end])
                        .zip(&mut d1[x_start..x_end])
                        .zip(&mut d2[x_start..x_end])
                    {
                        *a = px[s0] as f32 * gain[0] + bias[0];
                        *b = px[s1] as f32 * gain[1] + bias[1];
                        *c = px[s2] as f32 * gain[2] + bias[2];
                    }
                }
                Layout::Nhwc => {
                    let dst = &mut out[y * mw * 3..(y + 1) * mw * 3];
                    let Some(row) = row else {
                        for px in dst.chunks_exact_mut(3) {
                            px.copy_from_slice(&fill);
                        }
                        continue;
                    };
                    let (left, rest) = dst.split_at_mut(x_start * 3);
                    let (middle, right) = rest.split_at_mut((x_end - x_start) * 3);
                    for px in left.chunks_exact_mut(3).chain(right.chunks_exact_mut(3)) {
                        px.copy_from_slice(&fill);
                    }
                    for (d, px) in middle.chunks_exact_mut(3).zip(row.chunks_exact(3)) {
                        for c in 0..3 {
                            d[c] = px[src_channel[c]] as f32 * gain[c] + bias[c];
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(w: u32, h: u32, resize: Resize, layout: Layout) -> PrepSpec {
        PrepSpec {
            width: w,
            height: h,
            resize,
            mean: DEFAULT_MEAN,
            std: [1.0; 3],
            layout,
            channel_order: ChannelOrder::Rgb,
            fill: 127,
            crop_fraction: DEFAULT_CROP_FRACTION,
        }
    }

    #[test]
    fn sizes_parse_as_w_by_h() {
        assert_eq!(parse_size("416x320"), Ok((416, 320)));
        assert!(parse_size("416").is_err());
        assert!(parse_size("0x3").is_err());
    }

    #[test]
    fn letterbox_scales_to_the_inner_size_and_maps_back() {
        let s = spec(416, 416, Resize::Letterbox, Layout::Nchw);
        assert_eq!(s.scaled_size(768, 576), (416, 312));
        let g = s.geometry(768, 576);
        assert_eq!((g.offset_x, g.offset_y), (0.0, 52.0));
        // The inner image's corners are the frame's corners.
        assert_eq!(g.to_frame(0.0, 52.0), (0.0, 0.0));
        let (x, y) = g.to_frame(416.0, 364.0);
        assert!((x - 768.0).abs() < 1e-9 && (y - 576.0).abs() < 1e-9);
        // A box reaching into the padding is clamped to the frame.
        assert_eq!(
            g.box_to_frame([-10.0, 0.0, 500.0, 400.0]),
            [0.0, 0.0, 768.0, 576.0]
        );
    }

    #[test]
    fn crop_scales_the_short_side_and_cuts_the_centre() {
        let s = spec(224, 224, Resize::Crop, Layout::Nchw);
        // 576 * 256/576 = 256, 768 * 256/576 = 341.3.
        assert_eq!(s.scaled_size(768, 576), (341, 256));
        let g = s.geometry(768, 576);
        assert_eq!((g.offset_x, g.offset_y), (-58.0, -16.0));
        let (x, y) = g.to_frame(0.0, 0.0);
        assert!((x - 58.0 * 768.0 / 341.0).abs() < 1e-9 && (y - 36.0).abs() < 1e-9);
    }

    #[test]
    fn stretch_maps_axes_separately() {
        let s = spec(100, 50, Resize::Stretch, Layout::Nchw);
        assert_eq!(s.scaled_size(640, 360), (100, 50));
        let g = s.geometry(640, 360);
        assert_eq!(g.to_frame(100.0, 50.0), (640.0, 360.0));
    }

    #[test]
    fn prepare_pads_normalises_and_orders_channels() {
        // A 2x1 frame into 2x3 letterbox: rows 0 and 2 are fill, row 1 the frame.
        let mut s = spec(2, 3, Resize::Letterbox, Layout::Nchw);
        s.mean = [10.0, 20.0, 30.0];
        s.std = [2.0, 4.0, 5.0];
        let rgb = [10, 20, 30, 12, 24, 35];
        let mut out = vec![0.0; s.frame_len()];
        s.prepare(&rgb, 2, 1, &mut out);
        let r = |v: f32| (v - 10.0) / 2.0;
        let g = |v: f32| (v - 20.0) / 4.0;
        let b = |v: f32| (v - 30.0) / 5.0;
        #[rustfmt::skip]
        let want = vec![
            r(127.0), r(127.0), 0.0, 1.0, r(127.0), r(127.0),
            g(127.0), g(127.0), 0.0, 1.0, g(127.0), g(127.0),
            b(127.0), b(127.0), 0.0, 1.0, b(127.0), b(127.0),
        ];
        assert_eq!(out, want);
        // NHWC, BGR: pixel by pixel, blue first.
        s.layout = Layout::Nhwc;
        s.channel_order = ChannelOrder::Bgr;
        s.mean = [0.0; 3];
        s.std = [1.0; 3];
        s.prepare(&rgb, 2, 1, &mut out);
        assert_eq!(&out[6..12], &[30.0, 20.0, 10.0, 35.0, 24.0, 12.0]);
        assert_eq!(&out[..3], &[127.0; 3]);
    }

    #[test]
    fn nchw_is_nhwc_transposed() {
        // Odd sizes, padding on one axis and cropping on the other, BGR, per-channel gains.
        let rgb: Vec<u8> = (0..7 * 3 * 3).map(|i| (i * 37 % 256) as u8).collect();
        let mut s = spec(5, 6, Resize::Crop, Layout::Nchw);
        s.channel_order = ChannelOrder::Bgr;
        s.mean = [1.0, 2.0, 3.0];
        s.std = [2.0, 3.0, 4.0];
        let mut planar = vec![0.0; s.frame_len()];
        s.prepare(&rgb, 7, 3, &mut planar);
        s.layout = Layout::Nhwc;
        let mut packed = vec![0.0; s.frame_len()];
        s.prepare(&rgb, 7, 3, &mut packed);
        for y in 0..6 {
            for x in 0..5 {
                for c in 0..3 {
                    assert_eq!(
                        planar[c * 30 + y * 5 + x],
                        packed[(y * 5 + x) * 3 + c],
                        "{x},{y},{c}"
                    );
                }
            }
        }
        // 3 rows in 6: row 0 and rows 4, 5 are padding; columns 1..6 of 7 are kept. Model
        // channel 0 is blue (BGR).
        assert_eq!(packed[0], (127.0 - 1.0) / 2.0);
        // Source row 0, column 1, blue.
        let first_kept = (rgb[3 + 2] as f32 - 1.0) / 2.0;
        assert_eq!(packed[5 * 3], first_kept);
        assert_eq!(packed[4 * 5 * 3], (127.0 - 1.0) / 2.0);
    }

    #[test]
    fn prepare_crops_the_centre() {
        let s = spec(2, 1, Resize::Crop, Layout::Nhwc);
        // 4x3 frame, pixel value = 10*y + x in every channel; centre 2x1 is (1..3, 1).
        let rgb: Vec<u8> = (0..3u8)
            .flat_map(|y| (0..4u8).flat_map(move |x| [10 * y + x; 3]))
            .collect();
        let mut out = vec![0.0; s.frame_len()];
        s.prepare(&rgb, 4, 3, &mut out);
        assert_eq!(out, vec![11.0, 11.0, 11.0, 12.0, 12.0, 12.0]);
    }
}
