//! The exact CPU graph rewrite (`fresco_infer::rewrite`): a small generated graph with the
//! nearest-2x-upsample + reflect-pad + 3x3-conv pattern is folded and computes the same values
//! (run in ONNX Runtime on odd sizes); graphs that differ from the pattern in any one respect are
//! left alone; and each real style model (from `FRESCO_MODEL_DIR`, skipped with a message when
//! absent) gives, rewritten, its original output to float rounding. Needs the ONNX Runtime
//! library (scripts/setup.sh installs it). About 2 s with the five real models.

use std::path::PathBuf;

use fresco_infer::onnx_build::{
    attr_int, attr_ints, attr_string, tensor_f32, tensor_i64, AttributeProto, GraphBuilder,
    ModelProto, INPUT_NAME, OUTPUT_NAME,
};
use fresco_infer::rewrite::rewrite_for_cpu;
use ort::session::Session;
use ort::value::TensorRef;
use prost::Message;

/// A deterministic pseudo-random value in -1..1.
fn noise(i: u64) -> f32 {
    let x = i
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// input1 (3 channels) -> 1x1 conv to 4 channels -> nearest 2x Resize -> reflect Pad 1 ->
/// 3x3 conv back to 3 channels (with or without bias) -> output1, the decoder step of the
/// fast-neural-style networks.
fn pattern_model(bias: bool) -> ModelProto {
    let w0: Vec<f32> = (0..4 * 3).map(|i| noise(i) * 0.5).collect();
    let w: Vec<f32> = (0..3 * 4 * 9).map(|i| noise(100 + i)).collect();
    let b: Vec<f32> = (0..3).map(|i| noise(500 + i) * 10.0).collect();
    let mut g = GraphBuilder::nchw_rgb("fold")
        .constant_f32("w0", &[4, 3, 1, 1], &w0)
        .constant_f32("scales", &[4], &[1.0, 1.0, 2.0, 2.0])
        .initializer(tensor_i64("pads", &[8], &[0, 0, 1, 1, 0, 0, 1, 1]))
        .constant_f32("w", &[3, 4, 3, 3], &w)
        .node("Conv", &[INPUT_NAME, "w0"], &["low"], vec![])
        .node(
            "Resize",
            &["low", "", "scales"],
            &["up"],
            vec![
                attr_string("coordinate_transformation_mode", "asymmetric"),
                attr_string("mode", "nearest"),
                attr_string("nearest_mode", "floor"),
            ],
        )
        .node(
            "Pad",
            &["up", "pads"],
            &["padded"],
            vec![attr_string("mode", "reflect")],
        );
    if bias {
        g = g.constant_f32("b", &[3], &b).node(
            "Conv",
            &["padded", "w", "b"],
            &[OUTPUT_NAME],
            vec![
                attr_ints("kernel_shape", &[3, 3]),
                attr_ints("strides", &[1, 1]),
            ],
        );
    } else {
        g = g.node("Conv", &["padded", "w"], &[OUTPUT_NAME], vec![]);
    }
    g.build()
}

fn op_types(model: &[u8]) -> Vec<String> {
    let m = ModelProto::decode(model).expect("decodes");
    m.graph
        .unwrap()
        .node
        .into_iter()
        .map(|n| n.op_type)
        .collect()
}

fn session(model: &[u8]) -> Session {
    let env = fresco_infer::runtime::environment().expect("ONNX Runtime loads");
    Session::builder(env)
        .unwrap()
        .with_intra_threads(1)
        .unwrap()
        .commit_from_memory(model)
        .expect("model loads")
}

/// Runs `input1` of shape `[1, 3, h, w]` and returns `output1`.
fn run(session: &mut Session, h: usize, w: usize, input: &[f32]) -> Vec<f32> {
    let tensor = TensorRef::from_array_view(([1usize, 3, h, w], input)).unwrap();
    let out = session.run(ort::inputs![INPUT_NAME => tensor]).unwrap();
    let (_, data) = out[OUTPUT_NAME].try_extract_tensor::<f32>().unwrap();
    data.to_vec()
}

/// Largest difference, and the PSNR of `b` against `a` over the 0-255 range (floats, no
/// rounding: an exact rewrite is far above 60 dB).
fn compare(a: &[f32], b: &[f32]) -> (f32, f64) {
    assert_eq!(a.len(), b.len(), "output sizes differ");
    let max = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    (max, 10.0 * (255.0f64 * 255.0 / mse.max(1e-30)).log10())
}

fn image(h: usize, w: usize, seed: u64) -> Vec<f32> {
    (0..3 * h * w)
        .map(|i| (noise(seed * 1_000_003 + i as u64) * 0.5 + 0.5) * 255.0)
        .collect()
}

#[test]
fn the_pattern_is_folded_and_computes_the_same_values() {
    for bias in [true, false] {
        let original = pattern_model(bias).encode_to_vec();
        let (rewritten, report) = rewrite_for_cpu(&original)
            .expect("decodes")
            .expect("the pattern matches");
        assert_eq!(report.upsample_folds, 1);
        assert_eq!(
            op_types(&rewritten),
            ["Conv", "Pad", "Conv", "DepthToSpace", "Slice"],
            "bias {bias}"
        );
        let m = ModelProto::decode(&rewritten[..]).unwrap();
        let g = m.graph.unwrap();
        // The 3x3 weights, the scales and the reflect pads are gone; the 2x2 weights are there.
        let names: Vec<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        assert!(
            !names.contains(&"w") && !names.contains(&"scales") && !names.contains(&"pads"),
            "{names:?}"
        );
        let folded = g
            .initializer
            .iter()
            .find(|t| t.dims.len() == 4 && t.dims[2] == 2);
        assert_eq!(folded.expect("2x2 weights").dims, [12, 4, 2, 2]);

        let mut a = session(&original);
        let mut b = session(&rewritten);
        for (h, w) in [(1, 1), (2, 3), (5, 7), (8, 6)] {
            let x = image(h, w, (h * 31 + w) as u64);
            let (ya, yb) = (run(&mut a, h, w, &x), run(&mut b, h, w, &x));
            assert_eq!(ya.len(), 3 * 4 * h * w);
            let (max, psnr) = compare(&ya, &yb);
            assert!(
                max < 1e-3 && psnr > 100.0,
                "bias {bias}, {w}x{h}: max diff {max}, PSNR {psnr:.1} dB"
            );
        }
    }
}

/// Edits the pattern model's nodes; the result must not be rewritten.
fn assert_left_alone(what: &str, edit: impl FnOnce(&mut Vec<fresco_infer::onnx_build::NodeProto>)) {
    let mut m = pattern_model(true);
    edit(&mut m.graph.as_mut().unwrap().node);
    let bytes = m.encode_to_vec();
    assert!(
        rewrite_for_cpu(&bytes).expect("decodes").is_none(),
        "{what}: rewritten, but it is not the pattern"
    );
}

fn set_attr(attrs: &mut Vec<AttributeProto>, attr: AttributeProto) {
    attrs.retain(|a| a.name != attr.name);
    attrs.push(attr);
}

#[test]
fn graphs_that_differ_from_the_pattern_are_left_alone() {
    // The index of each node in `pattern_model`.
    const RESIZE: usize = 1;
    const PAD: usize = 2;
    const CONV: usize = 3;
    assert_left_alone("linear resize", |n| {
        set_attr(&mut n[RESIZE].attribute, attr_string("mode", "linear"))
    });
    assert_left_alone("half-pixel resize", |n| {
        set_attr(
            &mut n[RESIZE].attribute,
            attr_string("coordinate_transformation_mode", "half_pixel"),
        )
    });
    assert_left_alone("constant pad", |n| {
        set_attr(&mut n[PAD].attribute, attr_string("mode", "constant"))
    });
    assert_left_alone("strided conv", |n| {
        set_attr(&mut n[CONV].attribute, attr_ints("strides", &[2, 2]))
    });
    assert_left_alone("grouped conv", |n| {
        set_attr(&mut n[CONV].attribute, attr_int("group", 3))
    });
    assert_left_alone("dilated conv", |n| {
        set_attr(&mut n[CONV].attribute, attr_ints("dilations", &[2, 2]))
    });
    assert_left_alone("upsampled map used twice", |n| {
        n[CONV].input[2] = "up".into();
    });
    assert_left_alone("other pads", |n| n[PAD].input[1] = "w0".into());
    assert_left_alone("other scales", |n| n[RESIZE].input[2] = "b".into());
    assert_left_alone("no conv after the pad", |n| n[CONV].op_type = "Add".into());
    assert_left_alone("other domain", |n| n[RESIZE].domain = "com.example".into());

    // A model without a Resize at all, and one at an opset before Pad took its pads as input.
    let plain = GraphBuilder::nchw_rgb("plain")
        .initializer(tensor_f32("w", &[3, 3, 1, 1], &[1.0; 9]))
        .node("Conv", &[INPUT_NAME, "w"], &[OUTPUT_NAME], vec![])
        .to_bytes();
    assert!(rewrite_for_cpu(&plain).unwrap().is_none());
    let mut old = pattern_model(true);
    old.opset_import[0].version = 9;
    assert!(rewrite_for_cpu(&old.encode_to_vec()).unwrap().is_none());
    assert!(rewrite_for_cpu(b"not a model").is_err());
}

/// input1 -> 1x1 conv to 4 channels -> the upsample pattern (4 -> 4) -> Relu -> reflect Pad 4
/// -> 9x9 conv to 3 channels -> output1: the end of a fast-neural-style network.
fn thin_conv_model() -> ModelProto {
    let w0: Vec<f32> = (0..4 * 3).map(|i| noise(i) * 0.5).collect();
    let w: Vec<f32> = (0..4 * 4 * 9).map(|i| noise(100 + i)).collect();
    let w9: Vec<f32> = (0..3 * 4 * 81).map(|i| noise(900 + i) * 0.2).collect();
    let b9: Vec<f32> = (0..3).map(|i| noise(50 + i) * 10.0).collect();
    GraphBuilder::nchw_rgb("thin")
        .constant_f32("w0", &[4, 3, 1, 1], &w0)
        .constant_f32("scales", &[4], &[1.0, 1.0, 2.0, 2.0])
        .initializer(tensor_i64("pads", &[8], &[0, 0, 1, 1, 0, 0, 1, 1]))
        .initializer(tensor_i64("pads4", &[8], &[0, 0, 4, 4, 0, 0, 4, 4]))
        .constant_f32("w", &[4, 4, 3, 3], &w)
        .constant_f32("w9", &[3, 4, 9, 9], &w9)
        .constant_f32("b9", &[3], &b9)
        .node("Conv", &[INPUT_NAME, "w0"], &["low"], vec![])
        .node(
            "Resize",
            &["low", "", "scales"],
            &["up"],
            vec![
                attr_string("coordinate_transformation_mode", "asymmetric"),
                attr_string("mode", "nearest"),
            ],
        )
        .node(
            "Pad",
            &["up", "pads"],
            &["padded"],
            vec![attr_string("mode", "reflect")],
        )
        .node("Conv", &["padded", "w"], &["c"], vec![])
        .node("Relu", &["c"], &["r"], vec![])
        .node(
            "Pad",
            &["r", "pads4"],
            &["r4"],
            vec![attr_string("mode", "reflect")],
        )
        .node(
            "Conv",
            &["r4", "w9", "b9"],
            &[OUTPUT_NAME],
            vec![attr_ints("kernel_shape", &[9, 9])],
        )
        .build()
}

#[test]
fn thin_convs_on_even_maps_are_split_into_phases_exactly() {
    let original = thin_conv_model().encode_to_vec();
    let (rewritten, report) = rewrite_for_cpu(&original).unwrap().expect("matches");
    assert_eq!((report.upsample_folds, report.thin_convs), (1, 1));
    assert_eq!(
        op_types(&rewritten),
        [
            "Conv",
            "Pad",
            "Conv",
            "DepthToSpace",
            "Slice",
            "Relu",
            "Pad",
            "SpaceToDepth",
            "Conv",
            "DepthToSpace"
        ]
    );
    let mut a = session(&original);
    let mut b = session(&rewritten);
    for (h, w) in [(3, 3), (5, 7), (6, 4)] {
        let x = image(h, w, (h * 7 + w) as u64);
        let (ya, yb) = (run(&mut a, h, w, &x), run(&mut b, h, w, &x));
        let (max, psnr) = compare(&ya, &yb);
        assert!(
            max < 1e-3 && psnr > 100.0,
            "{w}x{h}: max diff {max}, PSNR {psnr:.1} dB"
        );
    }

    // Without a proof that the map's size is even (here: the input itself, any size), or with
    // an odd pad in between, the conv is left as it is.
    let w9: Vec<f32> = (0..3 * 3 * 81).map(|i| noise(i) * 0.2).collect();
    let unknown = GraphBuilder::nchw_rgb("odd")
        .initializer(tensor_i64("pads4", &[8], &[0, 0, 4, 4, 0, 0, 4, 4]))
        .constant_f32("w9", &[3, 3, 9, 9], &w9)
        .node(
            "Pad",
            &[INPUT_NAME, "pads4"],
            &["p"],
            vec![attr_string("mode", "reflect")],
        )
        .node("Conv", &["p", "w9"], &[OUTPUT_NAME], vec![])
        .to_bytes();
    assert!(rewrite_for_cpu(&unknown).unwrap().is_none());
    let mut odd = thin_conv_model();
    odd.graph.as_mut().unwrap().initializer[3] =
        tensor_i64("pads4", &[8], &[0, 0, 4, 4, 0, 0, 5, 4]);
    let (_, report) = rewrite_for_cpu(&odd.encode_to_vec()).unwrap().unwrap();
    assert_eq!((report.upsample_folds, report.thin_convs), (1, 0));
}

#[test]
fn real_style_models_give_the_same_output_rewritten() {
    let Some(dir) = std::env::var_os("FRESCO_MODEL_DIR").map(PathBuf::from) else {
        println!("skipping: FRESCO_MODEL_DIR is not set (the folder with the style models)");
        return;
    };
    let mut tested = 0;
    for name in ["mosaic", "candy", "udnie", "rain-princess", "pointilism"] {
        let path = dir.join(format!("{name}.onnx"));
        let Ok(original) = std::fs::read(&path) else {
            println!("skipping {name}: {} is absent", path.display());
            continue;
        };
        let (rewritten, report) = rewrite_for_cpu(&original)
            .expect("decodes")
            .unwrap_or_else(|| panic!("{name}: the decoder's two upsamples match"));
        assert_eq!(report.upsample_folds, 2, "{name}");
        assert_eq!(report.thin_convs, 1, "{name}: the last 9x9 convolution");
        let ops = op_types(&rewritten);
        assert!(!ops.iter().any(|o| o == "Resize"), "{name}: {ops:?}");
        let mut a = session(&original);
        let mut b = session(&rewritten);
        for (h, w) in [(36, 52), (64, 96), (37, 53)] {
            let x = image(h, w, tested as u64 + h as u64);
            let (ya, yb) = (run(&mut a, h, w, &x), run(&mut b, h, w, &x));
            let (max, psnr) = compare(&ya, &yb);
            println!("{name} {w}x{h}: max diff {max:.2e}, PSNR {psnr:.1} dB");
            assert!(
                max < 0.01 && psnr > 60.0,
                "{name} {w}x{h}: max diff {max}, PSNR {psnr:.1} dB (not float rounding)"
            );
        }
        tested += 1;
    }
    if tested == 0 {
        // As the other real-model tests: a missing folder skips, with a message per model.
        println!("skipping: none of the style models is in {}", dir.display());
    }
}
