//! Image models whose output is not the frame's own RGB image: a fixed input size (frames are
//! stretched to it), an output of another size (scaled back to the frame), one output channel
//! (grey), in both layouts; and the refusal of a model whose output is no image, which points
//! at records outputs. The models are built in code ([`onnx_build`]); the frames are odd-sized
//! (97x61) so that no side divides evenly. Needs the ONNX Runtime library.

use fresco_infer::inspect::{inspect_model, ModelBudget, Origin};
use fresco_infer::onnx_build::{self, attr_ints, GraphBuilder};
use fresco_infer::{Engine, EngineError, EngineOptions, Layout};

const W: u32 = 97;
const H: u32 = 61;

fn engine(bytes: &[u8]) -> Engine {
    Engine::from_bytes(bytes, "test-model", &EngineOptions::default()).expect("model loads")
}

/// A `w`x`h` frame of one colour.
fn solid(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    rgb.iter()
        .copied()
        .cycle()
        .take((w * h * 3) as usize)
        .collect()
}

/// The grey model's ramp (`2 * x` at model column `x`) where displayed column `x` lands once a
/// 64-wide output is stretched back to `W`: linear between pixel centres, the edge value beyond.
fn ramp_at(x: u32) -> f32 {
    let side = onnx_build::FIXED_SIDE as f32;
    let source = (x as f32 + 0.5) * side / W as f32 - 0.5;
    2.0 * source.clamp(0.0, side - 1.0)
}

#[test]
fn a_fixed_size_grey_model_gives_grey_frames_of_the_frames_size() {
    for nhwc in [false, true] {
        let mut e = engine(&onnx_build::fixed_grey_model(nhwc));
        let io = e.io();
        assert_eq!(io.fixed_size, Some((64, 64)));
        assert_eq!(io.output_channels, Some(1));
        assert_eq!(io.layout, if nhwc { Layout::Nhwc } else { Layout::Nchw });
        // Mean 60: the output is 60 plus the ramp, 60..186.
        let input = solid(W, H, [30, 60, 90]);
        let mut out = vec![0u8; input.len()];
        e.style_rgb(W, H, &input, &mut out).unwrap();
        for y in 0..H {
            for x in 0..W {
                let i = ((y * W + x) * 3) as usize;
                let px = &out[i..i + 3];
                assert!(
                    px[0] == px[1] && px[1] == px[2],
                    "({x},{y}) not grey: {px:?}"
                );
                let want = 60.0 + ramp_at(x);
                assert!(
                    (px[0] as f32 - want).abs() <= 1.0,
                    "nhwc {nhwc}: ({x},{y}) is {} where {want:.1} was expected",
                    px[0]
                );
            }
        }
        assert_eq!(out[0], 60, "the left edge is the ramp's start");
        assert_eq!(
            out[(W as usize - 1) * 3],
            186,
            "the right edge is the ramp's end"
        );
    }
}

#[test]
fn sixteen_bit_frames_go_through_a_fixed_size_model_too() {
    let mut e = engine(&onnx_build::fixed_grey_model(false));
    // 0-255 models see 16-bit samples divided by 257: mean 60 * 257.
    let input: Vec<u16> = [30u16, 60, 90]
        .iter()
        .map(|v| v * 257)
        .cycle()
        .take((W * H * 3) as usize)
        .collect();
    let mut out = vec![0u16; input.len()];
    e.style_rgb(W, H, &input, &mut out).unwrap();
    assert!(out[0].abs_diff(60 * 257) <= 2, "{}", out[0]);
    let last = (W as usize - 1) * 3;
    assert!(out[last].abs_diff(186 * 257) <= 2, "{}", out[last]);
}

#[test]
fn a_fixed_size_rgb_model_of_half_size_is_scaled_back_to_the_frame() {
    let mut e = engine(&onnx_build::fixed_rgb_half_model());
    assert_eq!(e.io().fixed_size, Some((64, 64)));
    assert_eq!(e.io().output_channels, Some(3));
    let input = solid(W, H, [200, 100, 50]);
    let mut out = vec![0u8; input.len()];
    e.style_rgb(W, H, &input, &mut out).unwrap();
    for (i, (a, b)) in input.iter().zip(&out).enumerate() {
        assert!(a.abs_diff(*b) <= 1, "sample {i}: {b} where {a} went in");
    }
    // Left half one colour, right half another: each side keeps its colour away from the
    // seam, and the seam stays in the middle.
    let (left, right) = ([200u8, 100, 50], [20u8, 40, 250]);
    let split: Vec<u8> = (0..W * H)
        .flat_map(|i| if i % W < W / 2 { left } else { right })
        .collect();
    e.style_rgb(W, H, &split, &mut out).unwrap();
    for y in [0, H / 2, H - 1] {
        for (x, want) in [(0, left), (10, left), (W - 11, right), (W - 1, right)] {
            let i = ((y * W + x) * 3) as usize;
            for c in 0..3 {
                assert!(
                    out[i + c].abs_diff(want[c]) <= 1,
                    "({x},{y}) channel {c}: {} where {} was expected",
                    out[i + c],
                    want[c]
                );
            }
        }
    }
}

#[test]
fn a_dynamic_model_with_a_smaller_output_is_scaled_back_over_the_padded_frame() {
    // Any size in, half the (padded) size out.
    let bytes = GraphBuilder::nchw_rgb("half")
        .node(
            "AveragePool",
            &["input1"],
            &["output1"],
            vec![
                attr_ints("kernel_shape", &[2, 2]),
                attr_ints("strides", &[2, 2]),
            ],
        )
        .to_bytes();
    let mut e = engine(&bytes);
    assert_eq!(e.io().fixed_size, None);
    let input = solid(W, H, [10, 128, 240]);
    let mut out = vec![0u8; input.len()];
    e.style_rgb(W, H, &input, &mut out).unwrap();
    for (i, (a, b)) in input.iter().zip(&out).enumerate() {
        assert!(a.abs_diff(*b) <= 1, "sample {i}: {b} where {a} went in");
    }
}

#[test]
fn a_model_whose_output_is_no_image_is_refused_with_a_pointer_to_records() {
    let bytes = onnx_build::not_image_output_model();
    let err = Engine::from_bytes(&bytes, "scores.onnx", &EngineOptions::default()).unwrap_err();
    assert!(matches!(err, EngineError::NotImageModel { .. }), "{err}");
    let loaded = err.to_string();
    for words in [
        "not an image-to-image model",
        "[1,1000]",
        ".jsonl or .parquet",
    ] {
        assert!(loaded.contains(words), "'{words}' missing: {loaded}");
    }
    // The static check (what a server does) refuses it in the same words.
    let inspected = inspect_model(
        &bytes,
        "scores.onnx",
        Origin::Submitted,
        &ModelBudget::default(),
    )
    .unwrap_err();
    assert_eq!(inspected.code(), "model-not-image");
    assert_eq!(inspected.to_string(), loaded);
}

#[test]
fn the_static_check_reads_the_fixed_size_and_the_output_channels() {
    for (bytes, channels) in [
        (onnx_build::fixed_grey_model(false), 1),
        (onnx_build::fixed_grey_model(true), 1),
        (onnx_build::fixed_rgb_half_model(), 3),
    ] {
        let m = inspect_model(&bytes, "m.onnx", Origin::Submitted, &ModelBudget::default())
            .expect("a fixed-size image model passes");
        assert_eq!(m.fixed_size, Some((64, 64)));
        assert_eq!(m.output_channels, Some(channels));
    }
    let m = inspect_model(
        &onnx_build::identity_model(),
        "m.onnx",
        Origin::Submitted,
        &ModelBudget::default(),
    )
    .unwrap();
    assert_eq!((m.fixed_size, m.output_channels), (None, Some(3)));
}

#[test]
fn a_same_size_grey_model_declaring_a_0_1_output_is_mapped_to_full_range() {
    // Any size in, the mean of the channels out as a fraction (0..1) of 255: a probability
    // map, declared with `fresco.output_range`, from 0..255 pixels.
    let shape_out = [
        onnx_build::sym("N"),
        onnx_build::Dim::Fixed(1),
        onnx_build::sym("H"),
        onnx_build::sym("W"),
    ];
    let bytes = GraphBuilder::new("probability")
        .input(
            "input1",
            &[
                onnx_build::sym("N"),
                onnx_build::Dim::Fixed(3),
                onnx_build::sym("H"),
                onnx_build::sym("W"),
            ],
        )
        .output("output1", &shape_out)
        .constant_f32("scale", &[], &[1.0 / 255.0])
        .node(
            "ReduceMean",
            &["input1"],
            &["mean"],
            vec![attr_ints("axes", &[1]), onnx_build::attr_int("keepdims", 1)],
        )
        .node("Mul", &["mean", "scale"], &["output1"], vec![])
        .metadata("fresco.output_range", "0-1")
        .to_bytes();
    let mut e = engine(&bytes);
    assert_eq!(e.io().range, fresco_core::InputRange::Byte);
    assert_eq!(e.io().output_range, fresco_core::InputRange::Unit);
    assert_eq!(e.io().output_channels, Some(1));
    // Each pixel's own mean, exactly, as grey.
    let input: Vec<u8> = (0..W * H)
        .flat_map(|i| [(i % 5 * 40) as u8, 90, (200 - i % 7) as u8])
        .collect();
    let mut out = vec![0u8; input.len()];
    e.style_rgb(W, H, &input, &mut out).unwrap();
    for (i, (px, grey)) in input.chunks_exact(3).zip(out.chunks_exact(3)).enumerate() {
        let mean = px.iter().map(|&v| v as f32).sum::<f32>() / 3.0;
        assert_eq!(grey, [mean.round() as u8; 3], "pixel {i} of {px:?}");
    }
}

#[test]
fn a_fixed_size_larger_than_frames_may_be_scaled_to_is_refused_before_any_frame() {
    let bytes = GraphBuilder::new("huge")
        .input("input1", &[1, 3, 8192, 64].map(onnx_build::Dim::Fixed))
        .output("output1", &[1, 1, 8192, 64].map(onnx_build::Dim::Fixed))
        .node(
            "ReduceMean",
            &["input1"],
            &["output1"],
            vec![attr_ints("axes", &[1]), onnx_build::attr_int("keepdims", 1)],
        )
        .to_bytes();
    // It loads (a first load under a memory limit is left to the trial), but scales no frame.
    let mut e = engine(&bytes);
    let refused = e.check_fixed_size().unwrap_err();
    assert!(
        matches!(refused, EngineError::NotImageModel { .. }),
        "{refused}"
    );
    for words in ["64x8192", "at most 4096"] {
        assert!(
            refused.to_string().contains(words),
            "'{words}' missing: {refused}"
        );
    }
    let input = solid(W, H, [1, 2, 3]);
    let mut out = vec![0u8; input.len()];
    let err = e.style_rgb(W, H, &input, &mut out).unwrap_err();
    assert_eq!(err.to_string(), refused.to_string());
}

#[test]
fn a_dynamic_model_with_a_larger_output_is_scaled_back_not_cropped() {
    // Twice the (padded) size out: the whole picture, scaled down, not its top-left quarter.
    let bytes = GraphBuilder::nchw_rgb("double")
        .constant_f32("scales", &[4], &[1.0, 1.0, 2.0, 2.0])
        .constant_f32("roi", &[0], &[])
        .node(
            "Resize",
            &["input1", "roi", "scales"],
            &["output1"],
            vec![onnx_build::attr_string("mode", "nearest")],
        )
        .to_bytes();
    let mut e = engine(&bytes);
    // Left half one colour, right half another.
    let (left, right) = ([200u8, 100, 50], [20u8, 40, 250]);
    let split: Vec<u8> = (0..W * H)
        .flat_map(|i| if i % W < W / 2 { left } else { right })
        .collect();
    let mut out = vec![0u8; split.len()];
    e.style_rgb(W, H, &split, &mut out).unwrap();
    for y in [0, H - 1] {
        for (x, want) in [
            (0, left),
            (W / 2 - 2, left),
            (W / 2 + 2, right),
            (W - 1, right),
        ] {
            let i = ((y * W + x) * 3) as usize;
            assert_eq!(out[i..i + 3], want, "({x},{y})");
        }
    }
}
