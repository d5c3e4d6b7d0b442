//! Masks (`--task segment`): a model's per-pixel map made one 8-bit grayscale PNG per picture,
//! at the picture's own size.
//!
//! - An output `[N, C, H, W]` with `C` from 2 to [`MAX_CLASSES`] is a class map: a pixel is the
//!   index of its largest value over `C` (argmax; on a tie the lower index; NaN never wins).
//! - An output `[N, 1, H, W]` is a binary mask: 255 where the value is above the threshold
//!   (`mask_threshold`, default [`DEFAULT_MASK_THRESHOLD`], for probabilities; a model giving
//!   logits takes 0, where the sigmoid is 0.5), else 0.
//! - Any other shape is refused when the model is loaded, naming the output and its shape.
//!
//! The map, at the output's `H x W`, is brought back to the picture's width and height by
//! nearest neighbour through the preparation's [`Geometry`] (stretch, letterbox or crop alike):
//! pixel `(x, y)` of the picture takes the map's cell under its centre, clamped to the map
//! (a cropped-off border takes the nearest cell). Class indices are never interpolated, and the
//! mask is written as PNG, which keeps them exactly (JPEG would not).

use fresco_infer::{NamedTensor, TensorInfo};

use crate::prep::{Geometry, PrepSpec, Task};
use crate::resolve::{show_shape, the_one_output, PlanError};

/// The most classes a mask holds: its pixels are 8-bit.
pub const MAX_CLASSES: usize = 256;

/// A one-channel output's threshold when none is given: a probability of one half.
pub const DEFAULT_MASK_THRESHOLD: f32 = 0.5;

/// How one output becomes masks.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SegmentSpec {
    /// The output read.
    pub output: usize,
    /// Its channels: 1 for a binary mask, 2 to 256 for a class map; `None` where the model
    /// leaves the axis symbolic (checked on every call).
    pub channels: Option<usize>,
    /// A binary mask's threshold.
    pub threshold: f32,
}

/// One picture's mask: 8-bit pixels, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl Mask {
    /// The mask as an 8-bit grayscale PNG (lossless: every index is kept).
    pub fn to_png(&self) -> Result<Vec<u8>, String> {
        let (w, h) = (self.width, self.height);
        let img = image::GrayImage::from_raw(w, h, self.pixels.clone()).ok_or_else(|| {
            format!(
                "a {w}x{h} mask does not fit its {} pixels",
                self.pixels.len()
            )
        })?;
        let mut bytes = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| format!("cannot encode a {w}x{h} mask as PNG: {e}"))?;
        Ok(bytes)
    }
}

fn bad(output: &TensorInfo, why: &str) -> PlanError {
    PlanError::Outputs {
        task: Task::Segment,
        reason: format!(
            "output '{}' is {}: {why}",
            output.name,
            show_shape(&output.shape)
        ),
    }
}

/// The plan's segment decoder: the one output (named with `outputs`, or the model's only one)
/// must be `[N, C, H, W]` with `C` from 1 to [`MAX_CLASSES`] where it is fixed.
pub(crate) fn segment_spec(
    outputs: &[TensorInfo],
    selected: &Option<Vec<usize>>,
    threshold: Option<f32>,
) -> Result<SegmentSpec, PlanError> {
    let field = |field: &'static str, reason: String| PlanError::Field { field, reason };
    let output = the_one_output(outputs, selected, "segment", "the per-pixel map")?;
    let o = &outputs[output];
    if o.shape.len() != 4 {
        return Err(bad(
            o,
            "segment needs a per-pixel map [N, C, H, W] (C = 1 for a binary mask, 2 to 256 \
             classes for a class map)",
        ));
    }
    let channels = (o.shape[1] > 0).then_some(o.shape[1] as usize);
    if let Some(c) = channels {
        if c > MAX_CLASSES {
            return Err(bad(
                o,
                &format!(
                    "{c} classes, but a mask's pixels are 8-bit: at most {MAX_CLASSES} classes"
                ),
            ));
        }
    }
    if let Some(t) = threshold {
        if !t.is_finite() {
            return Err(field(
                "mask_threshold",
                format!("{t}: give a finite number"),
            ));
        }
        if channels.is_some_and(|c| c >= 2) {
            return Err(field(
                "mask_threshold",
                format!(
                    "output '{}' is {}, a class map whose pixels are argmax indices: a \
                     threshold applies to a one-channel output [N, 1, H, W] only",
                    o.name,
                    show_shape(&o.shape)
                ),
            ));
        }
    }
    Ok(SegmentSpec {
        output,
        channels,
        threshold: threshold.unwrap_or(DEFAULT_MASK_THRESHOLD),
    })
}

/// The channels a call's output gives (its shape checked against the plan), and its map's
/// height and width.
pub(crate) fn map_shape(
    spec: &SegmentSpec,
    t: &NamedTensor,
    batch: usize,
) -> Result<(usize, usize, usize), String> {
    let shown = || {
        let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
        format!("[{}]", dims.join(","))
    };
    let &[n, c, h, w] = t.shape.as_slice() else {
        return Err(format!(
            "output '{}' is {}, not a per-pixel map [N, C, H, W]",
            t.name,
            shown()
        ));
    };
    if n != batch || c == 0 || c > MAX_CLASSES || h == 0 || w == 0 {
        return Err(format!(
            "output '{}' is {} for a call of {batch}: a mask needs [{batch}, C, H, W] with C \
             from 1 to {MAX_CLASSES}",
            t.name,
            shown()
        ));
    }
    if spec.channels.is_some_and(|fixed| fixed != c) {
        return Err(format!(
            "output '{}' is {}, where the model declares {} channels",
            t.name,
            shown(),
            spec.channels.unwrap_or_default()
        ));
    }
    if t.values.len() != n * c * h * w {
        return Err(format!(
            "output '{}' holds {} values, not the {} of {}",
            t.name,
            t.values.len(),
            n * c * h * w,
            shown()
        ));
    }
    Ok((c, h, w))
}

/// The mask of batch item `b` of output `t`, at the picture's displayed size (`geometry`'s
/// frame), by nearest neighbour from the map (see the module doc).
pub(crate) fn mask_of(
    spec: &SegmentSpec,
    t: &NamedTensor,
    b: usize,
    batch: usize,
    prep: &PrepSpec,
    geometry: &Geometry,
) -> Result<Mask, String> {
    let (c, h, w) = map_shape(spec, t, batch)?;
    let plane = h * w;
    let item = &t.values[b * c * plane..(b + 1) * c * plane];
    // The map's own pixels first (C values each), then only lookups per picture pixel.
    let map: Vec<u8> = if c == 1 {
        item.iter()
            .map(|v| if *v > spec.threshold { 255 } else { 0 })
            .collect()
    } else {
        (0..plane)
            .map(|i| {
                let mut best = 0usize;
                let mut top = item[i];
                for k in 1..c {
                    let v = item[k * plane + i];
                    if v > top || (top.is_nan() && !v.is_nan()) {
                        best = k;
                        top = v;
                    }
                }
                best as u8
            })
            .collect()
    };
    let (fw, fh) = (geometry.frame_width, geometry.frame_height);
    // Picture pixel centre -> model input pixel -> map cell, per axis.
    let cells = |size: u32, scale: f64, offset: f64, input: u32, map: usize| -> Vec<usize> {
        (0..size)
            .map(|x| {
                let model = (x as f64 + 0.5) * scale + offset;
                let cell = (model * map as f64 / input.max(1) as f64).floor();
                cell.clamp(0.0, (map - 1) as f64) as usize
            })
            .collect()
    };
    let cols = cells(fw, geometry.scale_x, geometry.offset_x, prep.width, w);
    let rows = cells(fh, geometry.scale_y, geometry.offset_y, prep.height, h);
    let mut pixels = Vec::with_capacity(fw as usize * fh as usize);
    for row in &rows {
        let line = &map[row * w..(row + 1) * w];
        pixels.extend(cols.iter().map(|col| line[*col]));
    }
    Ok(Mask {
        width: fw,
        height: fh,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prep::{Resize, DEFAULT_CROP_FRACTION, DEFAULT_MEAN, DEFAULT_STD};
    use fresco_core::ChannelOrder;
    use fresco_infer::Layout;

    fn info(shape: &[i64]) -> TensorInfo {
        TensorInfo {
            name: "map".into(),
            shape: shape.to_vec(),
            element: "Float32".into(),
        }
    }

    fn prep(w: u32, h: u32, resize: Resize) -> PrepSpec {
        PrepSpec {
            width: w,
            height: h,
            resize,
            mean: DEFAULT_MEAN,
            std: DEFAULT_STD,
            layout: Layout::Nchw,
            channel_order: ChannelOrder::Rgb,
            fill: 127,
            crop_fraction: DEFAULT_CROP_FRACTION,
        }
    }

    #[test]
    fn shapes_are_checked_when_the_model_loads() {
        let ok = segment_spec(&[info(&[1, 21, 8, 8])], &None, None).unwrap();
        assert_eq!((ok.channels, ok.threshold), (Some(21), 0.5));
        let open = segment_spec(&[info(&[-1, -1, -1, -1])], &None, None).unwrap();
        assert_eq!(open.channels, None);
        let binary = segment_spec(&[info(&[1, 1, 8, 8])], &None, Some(0.0)).unwrap();
        assert_eq!(binary.threshold, 0.0);
        let many = segment_spec(&[info(&[1, 300, 8, 8])], &None, None).unwrap_err();
        assert!(many.to_string().contains("'map' is [1,300,8,8]"), "{many}");
        assert!(many.to_string().contains("at most 256"), "{many}");
        let flat = segment_spec(&[info(&[1, 10])], &None, None).unwrap_err();
        assert!(flat.to_string().contains("'map' is [1,10]"), "{flat}");
        let thresholded = segment_spec(&[info(&[1, 3, 8, 8])], &None, Some(0.5)).unwrap_err();
        assert!(
            thresholded.to_string().contains("mask_threshold"),
            "{thresholded}"
        );
        assert!(segment_spec(&[info(&[1, 1, 8, 8])], &None, Some(f32::NAN)).is_err());
        let two = [info(&[1, 2, 8, 8]), info(&[1, 2, 8, 8])];
        assert!(segment_spec(&two, &None, None).is_err());
        assert_eq!(segment_spec(&two, &Some(vec![1]), None).unwrap().output, 1);
    }

    #[test]
    fn a_class_map_is_its_argmax_brought_to_the_picture_by_nearest_neighbour() {
        // Two classes on a 2x2 map: class 1 wins on the diagonal.
        let values = vec![
            0.0, 1.0, 1.0, 0.0, // class 0
            5.0, 0.0, 0.0, 5.0, // class 1
        ];
        let t = NamedTensor {
            name: "map".into(),
            shape: vec![1, 2, 2, 2],
            values,
        };
        let spec = segment_spec(&[info(&[1, 2, 2, 2])], &None, None).unwrap();
        let p = prep(2, 2, Resize::Stretch);
        let mask = mask_of(&spec, &t, 0, 1, &p, &p.geometry(6, 4)).unwrap();
        assert_eq!((mask.width, mask.height), (6, 4));
        // Columns 0-2 of 6 fall in cell 0 ((x+0.5)*2/6 < 1), rows 0-1 of 4 in row 0.
        #[rustfmt::skip]
        let expected = [
            1, 1, 1, 0, 0, 0,
            1, 1, 1, 0, 0, 0,
            0, 0, 0, 1, 1, 1,
            0, 0, 0, 1, 1, 1,
        ];
        assert_eq!(mask.pixels, expected);
        let png = mask.to_png().unwrap();
        let back = image::load_from_memory(&png).unwrap();
        assert_eq!(back.color(), image::ColorType::L8);
        assert_eq!(back.into_luma8().into_raw(), expected);
        // A call whose output does not fit is refused, not read.
        let wrong = NamedTensor {
            shape: vec![1, 3, 2, 2],
            ..t.clone()
        };
        assert!(mask_of(&spec, &wrong, 0, 1, &p, &p.geometry(6, 4)).is_err());
    }

    #[test]
    fn a_binary_mask_takes_the_threshold_and_letterbox_padding_is_left_out() {
        let t = NamedTensor {
            name: "map".into(),
            shape: vec![1, 1, 4, 4],
            // Row 0 is padding, rows 1-2 the picture (left half above 0.5), row 3 padding.
            values: vec![
                1.0, 1.0, 1.0, 1.0, //
                0.9, 0.6, 0.4, 0.1, //
                0.9, 0.6, 0.4, 0.1, //
                1.0, 1.0, 1.0, 1.0,
            ],
        };
        let spec = segment_spec(&[info(&[1, 1, 4, 4])], &None, None).unwrap();
        let p = prep(4, 4, Resize::Letterbox);
        // An 8x4 picture letterboxed into 4x4 is 4x2 at rows 1-2.
        let mask = mask_of(&spec, &t, 0, 1, &p, &p.geometry(8, 4)).unwrap();
        assert_eq!((mask.width, mask.height), (8, 4));
        for row in mask.pixels.chunks(8) {
            assert_eq!(row, [255, 255, 255, 255, 0, 0, 0, 0]);
        }
        let logits = SegmentSpec {
            threshold: 0.95,
            ..spec
        };
        let strict = mask_of(&logits, &t, 0, 1, &p, &p.geometry(8, 4)).unwrap();
        assert_eq!(&strict.pixels[..8], [0, 0, 0, 0, 0, 0, 0, 0]);
    }
}
