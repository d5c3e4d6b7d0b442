//! The engine on models built in code: exact identity through the pre/post-processing (8- and
//! 16-bit, odd sizes, NHWC with a 0-1 range), an opset-9 `Upsample` graph like the zoo's files,
//! and the refusals of models that are not image-to-image. Needs the ONNX Runtime library
//! (scripts/setup.sh installs it).

use fresco_core::InputRange;
use fresco_infer::onnx_build::{self, attr_ints, attr_string, GraphBuilder};
use fresco_infer::{Engine, EngineError, EngineOptions, Layout};
use prost::Message;

fn engine(bytes: &[u8], options: &EngineOptions) -> Engine {
    Engine::from_bytes(bytes, "test-model", options).expect("model loads")
}

fn frame_u8(w: u32, h: u32, seed: u32) -> Vec<u8> {
    (0..w * h * 3)
        .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

#[test]
fn identity_is_exact_for_odd_sizes_in_8_and_16_bits() {
    let mut e = engine(&onnx_build::identity_model(), &EngineOptions::default());
    assert_eq!(e.io().layout, Layout::Nchw);
    for (w, h) in [(1, 1), (5, 3), (33, 17), (64, 48)] {
        let input = frame_u8(w, h, w * 7 + h);
        let mut out = vec![0u8; input.len()];
        e.style_rgb(w, h, &input, &mut out).unwrap();
        assert_eq!(out, input, "{w}x{h} u8");

        let deep: Vec<u16> = input
            .iter()
            .enumerate()
            .map(|(i, v)| (*v as u16 * 257).saturating_sub((i % 3) as u16))
            .collect();
        let mut out16 = vec![0u16; deep.len()];
        e.style_rgb(w, h, &deep, &mut out16).unwrap();
        // 0-255 models see 16-bit samples scaled by 1/257; the round trip is exact to within
        // the float error, far under one 16-bit step.
        for (a, b) in deep.iter().zip(&out16) {
            assert!(a.abs_diff(*b) <= 1, "{w}x{h} u16: {a} vs {b}");
        }
    }
}

#[test]
fn nhwc_unit_range_models_are_read_from_metadata() {
    let mut e = engine(
        &onnx_build::identity_nhwc_unit_range_model(),
        &EngineOptions::default(),
    );
    assert_eq!(e.io().layout, Layout::Nhwc);
    assert_eq!(e.io().range, InputRange::Unit);
    let input = frame_u8(9, 7, 3);
    let mut out = vec![0u8; input.len()];
    e.style_rgb(9, 7, &input, &mut out).unwrap();
    assert_eq!(out, input);
}

#[test]
fn opset_9_upsample_models_load_and_run() {
    // Nearest x2 Upsample (opset 9, as in the zoo's *-9.onnx files), then a 2x2 average pool:
    // the identity, through the operator that opset 13 replaced with Resize.
    let mut model = GraphBuilder::nchw_rgb("upsample9")
        .constant_f32("scales", &[4], &[1.0, 1.0, 2.0, 2.0])
        .node(
            "Upsample",
            &["input1", "scales"],
            &["up"],
            vec![attr_string("mode", "nearest")],
        )
        .node(
            "AveragePool",
            &["up"],
            &["output1"],
            vec![
                attr_ints("kernel_shape", &[2, 2]),
                attr_ints("strides", &[2, 2]),
            ],
        )
        .build();
    model.opset_import[0].version = 9;
    let mut e = engine(&model.encode_to_vec(), &EngineOptions::default());
    let input = frame_u8(12, 8, 1);
    let mut out = vec![0u8; input.len()];
    e.style_rgb(12, 8, &input, &mut out).unwrap();
    assert_eq!(out, input);
}

#[test]
fn the_vintage_filter_changes_pixels_and_keeps_the_size() {
    let mut e = engine(
        &onnx_build::vintage_filter_model(),
        &EngineOptions::default(),
    );
    let input = vec![128u8; 10 * 6 * 3];
    let mut out = vec![0u8; input.len()];
    e.style_rgb(10, 6, &input, &mut out).unwrap();
    assert_ne!(out, input);
    assert!(
        out[0] >= out[1] && out[1] >= out[2] && out[0] > out[2],
        "warm tone: {:?}",
        &out[..3]
    );
}

fn load_error(bytes: &[u8]) -> EngineError {
    Engine::from_bytes(bytes, "bad.onnx", &EngineOptions::default()).unwrap_err()
}

#[test]
fn models_that_are_not_image_to_image_are_refused_at_load() {
    let err = load_error(&onnx_build::rank2_model());
    assert!(matches!(err, EngineError::NotImageModel { .. }), "{err}");
    assert!(
        err.to_string().contains("not an image-to-image model"),
        "{err}"
    );
    let err = load_error(&onnx_build::one_channel_model());
    assert!(err.to_string().contains("[?,1,?,?]"), "{err}");
}

#[test]
fn corrupt_bytes_are_an_invalid_model() {
    let err = load_error(b"this is not protobuf at all \xff\xfe");
    assert!(matches!(err, EngineError::InvalidModel { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("bad.onnx: not a valid ONNX model"),
        "{err}"
    );
}

#[test]
fn a_model_that_fails_at_run_time_reports_the_frame() {
    let mut e = engine(&onnx_build::failing_model(), &EngineOptions::default());
    let input = frame_u8(8, 8, 0);
    let mut out = vec![0u8; input.len()];
    let err = e.style_rgb(8, 8, &input, &mut out).unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Run {
                width: 8,
                height: 8,
                ..
            }
        ),
        "{err}"
    );
}

/// A model card's normalisation, layout and output range, on the identity: what the model
/// sees is `(pixel - mean) / std` per model channel, and the output is read in the card's range.
#[test]
fn a_cards_normalisation_and_output_range_reach_the_model_and_come_back() {
    use fresco_core::{ChannelOrder, ImageCard, Normalization};
    let card = |normalization, output_range, channel_order| ImageCard {
        path: "seg.toml".into(),
        digest: String::new(),
        normalization: Some(normalization),
        layout: None,
        output_range,
        channel_order,
    };
    let n = Normalization {
        mean: [10.0, 20.0, 30.0],
        std: [0.5, 1.0, 2.0],
    };
    let (w, h) = (7, 5);
    let input = frame_u8(w, h, 11);
    let want = |input: &[u8], model_channel: &dyn Fn(usize) -> usize| -> Vec<u8> {
        input
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let c = model_channel(i % 3);
                ((*p as f32 - n.mean[c]) / n.std[c])
                    .round()
                    .clamp(0.0, 255.0) as u8
            })
            .collect()
    };
    let options = EngineOptions::default().with_card(Some(&card(n, None, None)));
    let mut e = engine(&onnx_build::identity_model(), &options);
    let mut out = vec![0u8; input.len()];
    e.style_rgb(w, h, &input, &mut out).unwrap();
    assert_eq!(out, want(&input, &|c| c));
    // BGR: the model's channel 0 is blue, normalised with mean[0] and std[0].
    let options = EngineOptions::default().with_card(Some(&card(n, None, Some(ChannelOrder::Bgr))));
    let mut e = engine(&onnx_build::identity_model(), &options);
    e.style_rgb(w, h, &input, &mut out).unwrap();
    assert_eq!(out, want(&input, &|c| 2 - c));
    // The flag wins over the card's order, as flags do.
    let flagged = EngineOptions {
        channel_order: Some(ChannelOrder::Rgb),
        ..EngineOptions::default()
    }
    .with_card(Some(&card(n, None, Some(ChannelOrder::Bgr))));
    assert_eq!(
        engine(&onnx_build::identity_model(), &flagged)
            .io()
            .channel_order,
        ChannelOrder::Rgb
    );

    // Inputs as 0..1 (std 255) and an output read as 0..1: the identity again, although the
    // model's metadata says its output is 0..255.
    let unit = Normalization {
        mean: [0.0; 3],
        std: [255.0; 3],
    };
    let declared = GraphBuilder::nchw_rgb("identity-255")
        .metadata("fresco.output_range", "0-255")
        .node("Identity", &["input1"], &["output1"], vec![])
        .to_bytes();
    let options =
        EngineOptions::default().with_card(Some(&card(unit, Some(InputRange::Unit), None)));
    let mut e = engine(&declared, &options);
    assert_eq!(e.io().output_range, InputRange::Unit);
    e.style_rgb(w, h, &input, &mut out).unwrap();
    assert_eq!(out, input);
    // Without the card's range, the metadata's: 0..1 values read as 0..255 are black.
    let options = EngineOptions::default().with_card(Some(&card(unit, None, None)));
    let mut e = engine(&declared, &options);
    e.style_rgb(w, h, &input, &mut out).unwrap();
    assert!(out.iter().all(|v| *v <= 1), "{out:?}");
    // An --input-range flag wins over the card's normalisation.
    let flagged = EngineOptions {
        input_range: Some(InputRange::Byte),
        ..EngineOptions::default()
    }
    .with_card(Some(&card(n, None, None)));
    let mut e = engine(&onnx_build::identity_model(), &flagged);
    e.style_rgb(w, h, &input, &mut out).unwrap();
    assert_eq!(out, input);
}

#[test]
fn a_cards_layout_decides_an_open_shape_and_may_not_contradict_a_fixed_one() {
    use fresco_infer::onnx_build::Dim;
    // [1, ?, ?, ?]: nothing says where the colours are; NCHW is the guess, the card says NHWC.
    let open = GraphBuilder::new("open")
        .input(
            "input1",
            &[
                Dim::Fixed(1),
                onnx_build::sym("a"),
                onnx_build::sym("b"),
                onnx_build::sym("c"),
            ],
        )
        .output(
            "output1",
            &[
                Dim::Fixed(1),
                onnx_build::sym("a"),
                onnx_build::sym("b"),
                onnx_build::sym("c"),
            ],
        )
        .node("Identity", &["input1"], &["output1"], vec![])
        .to_bytes();
    assert_eq!(
        engine(&open, &EngineOptions::default()).io().layout,
        Layout::Nchw
    );
    let nhwc = EngineOptions {
        layout: Some(Layout::Nhwc),
        ..EngineOptions::default()
    };
    let mut e = engine(&open, &nhwc);
    assert_eq!(e.io().layout, Layout::Nhwc);
    let input = frame_u8(6, 4, 5);
    let mut out = vec![0u8; input.len()];
    e.style_rgb(6, 4, &input, &mut out).unwrap();
    assert_eq!(out, input);
    // [1, 3, ?, ?] is NCHW: a card saying NHWC is refused, naming the layout.
    let err = Engine::from_bytes(&onnx_build::identity_model(), "test-model", &nhwc).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, EngineError::NotImageModel { .. }), "{text}");
    assert!(
        text.contains(
            "layout: input 'input1' has shape [?,3,?,?], which is nchw, but nhwc was given"
        ),
        "{text}"
    );
}
