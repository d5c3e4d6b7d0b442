//! Batching (`--batch N`: several frames per inference call, the same pixels as one at a time;
//! models that fix their batch size) and device selection on the CPU build of ONNX Runtime
//! (`--device cuda` is refused with what is missing). Needs the ONNX Runtime library
//! (scripts/setup.sh installs it).

use fresco_core::Device;
use fresco_infer::device::{self, DeviceError};
use fresco_infer::onnx_build::{self, Dim, GraphBuilder};
use fresco_infer::{Engine, EngineError, EngineOptions};

fn engine(bytes: &[u8]) -> Engine {
    Engine::from_bytes(bytes, "test-model", &EngineOptions::default()).expect("model loads")
}

fn frames(n: u32, w: u32, h: u32) -> Vec<Vec<u8>> {
    (0..n)
        .map(|seed| {
            (0..w * h * 3)
                .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed * 7919) >> 13) as u8)
                .collect()
        })
        .collect()
}

/// Styles `inputs` through `style_frames` with the engine's batch.
fn style_all(e: &mut Engine, w: u32, h: u32, inputs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let ins: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
    let mut outs: Vec<Vec<u8>> = inputs.iter().map(|f| vec![0; f.len()]).collect();
    let mut out_refs: Vec<&mut [u8]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
    e.style_frames(w, h, &ins, &mut out_refs).unwrap();
    outs
}

/// Identity with the batch axis fixed at `n`.
fn fixed_batch_identity(n: i64) -> Vec<u8> {
    let shape = [
        Dim::Fixed(n),
        Dim::Fixed(3),
        onnx_build::sym("H"),
        onnx_build::sym("W"),
    ];
    GraphBuilder::new("fixed-batch")
        .input("input1", &shape)
        .output("output1", &shape)
        .node("Identity", &["input1"], &["output1"], vec![])
        .to_bytes()
}

#[test]
fn batches_give_the_same_pixels_as_single_frames() {
    let (w, h) = (37, 21);
    let inputs = frames(7, w, h);
    let vintage = onnx_build::vintage_filter_model();
    let mut single = engine(&vintage);
    assert_eq!(single.batch(), 1);
    let one_by_one = style_all(&mut single, w, h, &inputs);

    let mut batched = engine(&vintage);
    assert_eq!(
        batched.set_batch(3),
        None,
        "a dynamic batch axis takes any size"
    );
    assert_eq!(batched.batch(), 3);
    // 7 frames: two full batches and a short one.
    let in_batches = style_all(&mut batched, w, h, &inputs);
    assert_eq!(in_batches, one_by_one, "batching changed pixels");
    assert_ne!(in_batches[0], inputs[0], "the filter changes pixels");

    let mut identity = engine(&onnx_build::identity_model());
    identity.set_batch(4);
    assert_eq!(style_all(&mut identity, w, h, &inputs), inputs);
}

#[test]
fn a_model_fixed_at_batch_1_falls_back_with_a_note() {
    let mut e = engine(&fixed_batch_identity(1));
    assert_eq!(e.io().fixed_batch, Some(1));
    let note = e.set_batch(8).expect("a note about the fallback");
    assert!(
        note.contains("fixes its batch size at 1") && note.contains("one per call"),
        "{note}"
    );
    assert!(note.contains("8 asked"), "{note}");
    assert_eq!(e.batch(), 1);
    let inputs = frames(3, 9, 5);
    assert_eq!(style_all(&mut e, 9, 5, &inputs), inputs);
    assert_eq!(
        e.set_batch(1),
        None,
        "asking for what the model fixes needs no note"
    );
}

#[test]
fn a_model_fixed_at_batch_2_pads_a_short_batch() {
    let mut e = engine(&fixed_batch_identity(2));
    assert_eq!(e.batch(), 2, "the model's own batch size is the default");
    let inputs = frames(3, 8, 6);
    assert_eq!(style_all(&mut e, 8, 6, &inputs), inputs);
    let mut one = vec![0u8; inputs[0].len()];
    e.style_rgb(8, 6, &inputs[0], &mut one).unwrap();
    assert_eq!(one, inputs[0]);
    assert!(e.set_batch(4).unwrap().contains("scored 2 per call"));
}

#[test]
fn cuda_on_a_cpu_build_names_what_is_missing() {
    fresco_infer::runtime::environment().expect("ONNX Runtime loads (run scripts/setup.sh)");
    if device::cuda_provider_available() {
        eprintln!("skipping: this ONNX Runtime library has the CUDA provider (a GPU build)");
        return;
    }
    let options = EngineOptions {
        device: Device::Cuda(0),
        ..EngineOptions::default()
    };
    let err = Engine::from_bytes(&onnx_build::identity_model(), "test-model", &options)
        .expect_err("cuda must be refused by a CPU build");
    let text = err.to_string();
    match err {
        EngineError::DeviceUnavailable(DeviceError::NoCudaProvider { library, .. }) => {
            assert!(library.contains("libonnxruntime"), "{library}");
        }
        other => panic!("expected NoCudaProvider, got {other:?}"),
    }
    assert!(text.starts_with("device cuda:0: "), "{text}");
    assert!(
        text.contains("onnxruntime-gpu") && text.contains("--device cpu"),
        "{text}"
    );
    // The same check before any model, as workers make it at start.
    let err = device::preflight(Device::Cuda(1)).unwrap_err();
    assert!(err.to_string().starts_with("device cuda:1: "), "{err}");
    assert!(device::preflight(Device::Cpu).is_ok());
}
