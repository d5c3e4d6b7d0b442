//! What an image model takes and gives beyond the same-size RGB of style models: the checks on
//! its declared shapes (an RGB input, fixed in size or not; an output of 1 or 3 channels), the
//! reading of one output image as RGB (one channel as grey), and the scaling of frames to and
//! from a fixed size with the `image` crate's triangle filter (bilinear, widened when shrinking
//! so that no pixel is skipped). [`crate::Engine`] uses them around each inference call.

use crate::engine::{show_shape, Layout};

/// The largest side of a fixed input size that frames are scaled to (a 4096x4096 float frame
/// is 192 MiB; masks and depth models take a few hundred pixels).
pub const MAX_FIXED_SIDE: u32 = 4096;

/// What an image model's declared shapes say about the frames it takes and gives.
pub(crate) struct ImageShapes {
    /// Width and height, when the input fixes both.
    pub fixed_size: Option<(u32, u32)>,
    /// 1 or 3, or `None` when the output leaves its channels open.
    pub output_channels: Option<u32>,
}

/// Checks that `input` takes an RGB image and `output` gives an image (1 or 3 channels) in
/// `layout`, each given as (name, declared shape with open dimensions negative). The reason
/// for a refusal points a model that gives no image at records outputs.
pub(crate) fn image_shapes(
    layout: Layout,
    (input_name, in_shape): (&str, &[i64]),
    (output_name, out_shape): (&str, &[i64]),
) -> Result<ImageShapes, String> {
    let (pattern, channel_axis) = match layout {
        Layout::Nchw => ("[N,C,H,W]", 1),
        Layout::Nhwc => ("[N,H,W,C]", 3),
    };
    if in_shape.len() != 4 || !matches!(in_shape[channel_axis], 3 | -1) {
        return Err(format!(
            "input '{input_name}' has shape {}, expected 4 dimensions with 3 colour channels ({})",
            show_shape(in_shape),
            pattern.replace('C', "3")
        ));
    }
    if out_shape.len() != 4 || !matches!(out_shape[channel_axis], 1 | 3 | -1) {
        return Err(format!(
            "output '{output_name}' has shape {}, expected an image {pattern} with 1 or 3 \
             channels; to score a model that gives no image, write records: give a .jsonl or \
             .parquet output with --task classify, detect or tensors (or, for a per-pixel map, \
             masks of a folder or prefix of images: --task segment)",
            show_shape(out_shape)
        ));
    }
    let (h, w) = match layout {
        Layout::Nchw => (in_shape[2], in_shape[3]),
        Layout::Nhwc => (in_shape[1], in_shape[2]),
    };
    let side = |d: i64| u32::try_from(d).ok().filter(|d| *d > 0);
    let fixed_size = side(w).zip(side(h));
    Ok(ImageShapes {
        fixed_size,
        output_channels: side(out_shape[channel_axis]),
    })
}

/// One output image of a batch: its channels (1 or 3), size and layout.
pub(crate) struct OutputImage {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub layout: Layout,
}

impl OutputImage {
    pub fn new(channels: i64, height: i64, width: i64, layout: Layout) -> OutputImage {
        OutputImage {
            channels: channels as usize,
            height: height.max(0) as usize,
            width: width.max(0) as usize,
            layout,
        }
    }

    /// Floats per image.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The value of colour `c` (0 red, 1 green, 2 blue) at `(x, y)`: a grey output's one
    /// channel for all three.
    pub fn sample(&self, image: &[f32], x: usize, y: usize, c: usize, bgr: bool) -> f32 {
        let channel = match (self.channels, bgr) {
            (1, _) => 0,
            (_, true) => 2 - c,
            (_, false) => c,
        };
        let plane = self.height * self.width;
        image[match self.layout {
            Layout::Nchw => channel * plane + y * self.width + x,
            Layout::Nhwc => (y * self.width + x) * self.channels + channel,
        }]
    }
}

/// Scales packed RGB floats in 0..1 from `w`x`h` to `to_w`x`to_h` (triangle filter: bilinear).
pub(crate) fn resize_rgb(unit: Vec<f32>, w: u32, h: u32, to_w: u32, to_h: u32) -> Vec<f32> {
    let image = image::Rgb32FImage::from_raw(w, h, unit).expect("a buffer of w*h*3 floats");
    image::imageops::resize(&image, to_w, to_h, image::imageops::FilterType::Triangle).into_raw()
}
