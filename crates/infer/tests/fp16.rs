//! The fp16 conversion (`fresco_infer::fp16`): a small generated style-like network and the real
//! mosaic model (from `FRESCO_MODEL_DIR`, skipped with a message when absent) are run in fp32
//! and converted, on CPU, on a generated image; the outputs must agree to PSNR >= 40 dB, and the
//! converted weights must be float16 (half the bytes). Needs the ONNX Runtime library
//! (scripts/setup.sh installs it).

use std::path::PathBuf;
use std::time::Instant;

use fresco_core::Device;
use fresco_infer::fp16::{
    check_device, initializer_types, to_fp16, to_fp16_weights_only, Precision, DT_FLOAT, DT_FLOAT16,
};
use fresco_infer::onnx_build::{
    attr_float, attr_ints, attr_string, tensor_i64, GraphBuilder, INPUT_NAME, OUTPUT_NAME,
};
use fresco_infer::{Engine, EngineOptions};
use fresco_testkit::media::psnr;

/// The quality bar of issue 7.
const MIN_PSNR_DB: f64 = 40.0;

/// A deterministic pseudo-random value in -1..1.
fn noise(i: u64) -> f32 {
    let x = i
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// A miniature fast-neural-style network: reflect pad, 3x3 conv to 8 channels, instance norm,
/// relu, nearest 2x Resize (float32 `scales`), strided 3x3 conv back to 3 channels, plus the
/// input. Same interface as the zoo models (0-255 RGB NCHW).
fn tiny_style_model() -> Vec<u8> {
    let w1: Vec<f32> = (0..8 * 3 * 9).map(|i| noise(i) * 0.3).collect();
    let b1: Vec<f32> = (0..8).map(|i| noise(1000 + i) * 5.0).collect();
    let gamma: Vec<f32> = (0..8).map(|i| 1.0 + noise(2000 + i) * 0.2).collect();
    let beta: Vec<f32> = (0..8).map(|i| noise(3000 + i) * 0.5).collect();
    let w2: Vec<f32> = (0..3 * 8 * 9).map(|i| noise(4000 + i) * 6.0).collect();
    let b2: Vec<f32> = (0..3).map(|i| noise(5000 + i) * 4.0).collect();
    GraphBuilder::nchw_rgb("tiny-style")
        .initializer(tensor_i64("pads", &[8], &[0, 0, 1, 1, 0, 0, 1, 1]))
        .constant_f32("w1", &[8, 3, 3, 3], &w1)
        .constant_f32("b1", &[8], &b1)
        .constant_f32("gamma", &[8], &gamma)
        .constant_f32("beta", &[8], &beta)
        .constant_f32("scales", &[4], &[1.0, 1.0, 2.0, 2.0])
        .constant_f32("w2", &[3, 8, 3, 3], &w2)
        .constant_f32("b2", &[3], &b2)
        .node(
            "Pad",
            &[INPUT_NAME, "pads"],
            &["padded"],
            vec![attr_string("mode", "reflect")],
        )
        .node(
            "Conv",
            &["padded", "w1", "b1"],
            &["c1"],
            vec![attr_ints("kernel_shape", &[3, 3])],
        )
        .node(
            "InstanceNormalization",
            &["c1", "gamma", "beta"],
            &["n1"],
            vec![attr_float("epsilon", 1e-5)],
        )
        .node("Relu", &["n1"], &["r1"], vec![])
        .node(
            "Resize",
            &["r1", "", "scales"],
            &["up"],
            vec![attr_string("mode", "nearest")],
        )
        .node(
            "Conv",
            &["up", "w2", "b2"],
            &["c2"],
            vec![
                attr_ints("kernel_shape", &[3, 3]),
                attr_ints("strides", &[2, 2]),
                attr_ints("pads", &[1, 1, 1, 1]),
            ],
        )
        .node("Add", &[INPUT_NAME, "c2"], &[OUTPUT_NAME], vec![])
        .to_bytes()
}

/// A generated test picture: smooth gradients, circles and some fine texture.
fn picture(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let d = ((fx - 0.5).powi(2) + (fy - 0.4).powi(2)).sqrt();
            let ring = ((d * 40.0).sin() * 0.5 + 0.5) * 120.0;
            let grain = noise((y * w + x) as u64) * 12.0;
            out.push((fx * 200.0 + grain + 20.0).clamp(0.0, 255.0) as u8);
            out.push((ring + fy * 100.0 + grain).clamp(0.0, 255.0) as u8);
            out.push(((1.0 - fx) * 150.0 + fy * 80.0 - grain).clamp(0.0, 255.0) as u8);
        }
    }
    out
}

fn options(precision: Precision) -> EngineOptions {
    EngineOptions {
        threads: Some(2),
        precision,
        ..EngineOptions::default()
    }
}

/// Styles `frame` with `model` and returns the output and the seconds the call took.
fn style(model: &[u8], precision: Precision, w: u32, h: u32, frame: &[u8]) -> (Vec<u8>, f64) {
    let mut engine = Engine::from_bytes(model, "test-model", &options(precision))
        .unwrap_or_else(|e| panic!("model loads at {precision}: {e}"));
    let mut out = vec![0u8; frame.len()];
    let start = Instant::now();
    engine.style_rgb(w, h, frame, &mut out).expect("styles");
    (out, start.elapsed().as_secs_f64())
}

/// Checks that every float initializer of `converted` is float16 except the named float32 ones,
/// and that the float data takes half the bytes it took in `original`.
fn assert_weights_are_half(original: &[u8], converted: &[u8], kept_fp32: &[&str]) {
    let before = initializer_types(original).unwrap();
    let after = initializer_types(converted).unwrap();
    let mut float_before = 0;
    let mut half_after = 0;
    for (name, dt, bytes) in &before {
        if *dt != DT_FLOAT {
            continue;
        }
        let (_, new_dt, new_bytes) = after
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("initializer {name} is gone"));
        if kept_fp32.contains(&name.as_str()) {
            assert_eq!(*new_dt, DT_FLOAT, "{name} must stay float32");
            continue;
        }
        assert_eq!(*new_dt, DT_FLOAT16, "{name} must be float16");
        assert_eq!(*new_bytes * 2, *bytes, "{name}: half the bytes");
        float_before += bytes;
        half_after += new_bytes;
    }
    assert!(float_before > 0, "the model has float weights");
    assert_eq!(half_after * 2, float_before);
}

#[test]
fn tiny_model_in_fp16_matches_fp32() {
    let model = tiny_style_model();
    let (half, report) = to_fp16(&model).expect("converts");
    assert_weights_are_half(&model, &half, &["scales"]);
    assert_eq!(report.converted_tensors, 6, "{report:?}");
    assert_eq!(report.kept_fp32_tensors, 1, "{report:?}");
    assert_eq!(report.casts_added, 2, "one Cast in, one out: {report:?}");
    assert_eq!(report.clamped, 0);

    let (w, h) = (64, 48);
    let frame = picture(w, h);
    let (reference, _) = style(&model, Precision::Fp32, w, h, &frame);
    assert!(
        psnr(&reference, &frame) < 30.0,
        "the tiny model changes the picture"
    );

    // The converted model, loaded as fp32 bytes (its graph inputs/outputs are float32).
    let (converted, _) = style(&half, Precision::Fp32, w, h, &frame);
    // The same through the engine's precision option.
    let full = psnr(&reference, &converted);

    let (weights_only, _) = to_fp16_weights_only(&model).expect("converts");
    assert_weights_are_half(&model, &weights_only, &["scales"]);
    let (rounded, _) = style(&weights_only, Precision::Fp32, w, h, &frame);
    let weights = psnr(&reference, &rounded);
    println!(
        "tiny model: fp16 output identical to fp16-weights/fp32-compute output: {}",
        converted == rounded
    );
    println!("tiny model: PSNR fp16 vs fp32 = {full:.2} dB (fp16 model on the CPU provider, which computes it in fp32), {weights:.2} dB (fp16 weights, fp32 compute)");
    assert!(full >= MIN_PSNR_DB, "fp16 PSNR {full:.2} dB < 40");
    assert!(
        weights >= MIN_PSNR_DB,
        "weights-only PSNR {weights:.2} dB < 40"
    );
}

#[test]
fn mosaic_in_fp16_matches_fp32() {
    let Some(dir) = std::env::var_os("FRESCO_MODEL_DIR").map(PathBuf::from) else {
        println!("skipping: FRESCO_MODEL_DIR is not set (the folder with mosaic.onnx)");
        return;
    };
    let path = dir.join("mosaic.onnx");
    let Ok(model) = std::fs::read(&path) else {
        println!("skipping: {} is absent", path.display());
        return;
    };
    let start = Instant::now();
    let (half, report) = to_fp16(&model).expect("converts mosaic");
    let convert_s = start.elapsed().as_secs_f64();
    assert_weights_are_half(&model, &half, &["scales119", "scales130"]);
    assert_eq!(report.clamped, 0, "{report:?}");
    println!(
        "mosaic: {} tensors to fp16, {} -> {} bytes, in {convert_s:.2}s; model file {} -> {} bytes",
        report.converted_tensors,
        report.bytes_before,
        report.bytes_after,
        model.len(),
        half.len()
    );
    assert!(
        half.len() * 10 < model.len() * 6,
        "the file shrinks to about half"
    );

    let (w, h) = (256, 192);
    let frame = picture(w, h);
    let (reference, fp32_s) = style(&model, Precision::Fp32, w, h, &frame);
    let (converted, fp16_s) = style(&half, Precision::Fp32, w, h, &frame);
    let full = psnr(&reference, &converted);
    let (weights_only, _) = to_fp16_weights_only(&model).expect("converts mosaic");
    let (rounded, _) = style(&weights_only, Precision::Fp32, w, h, &frame);
    let weights = psnr(&reference, &rounded);
    println!(
        "mosaic {w}x{h}: PSNR fp16 vs fp32 = {full:.2} dB (fp16 model on the CPU provider, which computes it in fp32, \
         {fp16_s:.3}s vs {fp32_s:.3}s fp32), {weights:.2} dB (fp16 weights, fp32 compute)"
    );
    assert!(
        weights >= MIN_PSNR_DB,
        "weights-only PSNR {weights:.2} dB < 40"
    );
    assert!(full >= MIN_PSNR_DB, "fp16 PSNR {full:.2} dB < 40");
    println!(
        "mosaic: fp16 output identical to fp16-weights/fp32-compute output: {}",
        converted == rounded
    );
}

#[test]
fn precision_parses_and_refuses_unknown_values() {
    assert_eq!("fp32".parse::<Precision>().unwrap(), Precision::Fp32);
    assert_eq!("FP16".parse::<Precision>().unwrap(), Precision::Fp16);
    assert_eq!(Precision::default(), Precision::Fp32);
    assert_eq!(Precision::Fp16.to_string(), "fp16");
    let err = "int8".parse::<Precision>().unwrap_err().to_string();
    assert!(
        err.contains("\"int8\"") && err.contains("fp32 or fp16"),
        "{err}"
    );
}

#[test]
fn conversion_refuses_what_is_not_a_model() {
    let err = to_fp16(b"not a model at all").unwrap_err().to_string();
    assert!(err.contains("not a valid ONNX model"), "{err}");
}

#[test]
fn fp16_is_refused_on_the_cpu_with_the_flag_named() {
    let err = Engine::from_bytes(&tiny_style_model(), "tiny.onnx", &options(Precision::Fp16))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--precision fp16") && err.contains("--device cuda"),
        "{err}"
    );
    assert!(check_device(Precision::Fp32, Device::Cpu).is_ok());
    assert!(check_device(Precision::Fp16, Device::Cuda(0)).is_ok());
    assert!(check_device(Precision::Fp16, Device::Cpu).is_err());
}
