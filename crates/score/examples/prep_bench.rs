//! Time per frame of [`PrepSpec::prepare`] (pad/crop, normalise, lay out) at the classifier's
//! and the detector's sizes, and, where `FRESCO_MODEL_DIR/scoring` holds them, of the models
//! alone on prepared input (one thread). Build it optimised:
//!
//! ```sh
//! cargo run -p fresco-score --example prep_bench --config 'profile.dev.package.fresco-score.opt-level=3'
//! ```
//! (or `--release`). Figures go to stdout; nothing is asserted.

use std::time::Instant;

use fresco_core::ChannelOrder;
use fresco_infer::{EngineOptions, Layout, TensorEngine};
use fresco_score::{PrepSpec, Resize};

fn spec(size: u32, resize: Resize, layout: Layout) -> PrepSpec {
    PrepSpec {
        width: size,
        height: size,
        resize,
        mean: [127.0; 3],
        std: [128.0; 3],
        layout,
        channel_order: ChannelOrder::Rgb,
        fill: 127,
        crop_fraction: 0.875,
    }
}

fn main() {
    // A 1280x720 frame, scaled by the decoder as each resize mode asks.
    for (size, resize) in [
        (224, Resize::Crop),
        (224, Resize::Stretch),
        (416, Resize::Letterbox),
        (416, Resize::Stretch),
    ] {
        for layout in [Layout::Nchw, Layout::Nhwc] {
            let s = spec(size, resize, layout);
            let (w, h) = s.scaled_size(1280, 720);
            let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
            let mut out = vec![0.0f32; s.frame_len()];
            let rounds = 2000;
            for _ in 0..50 {
                s.prepare(&rgb, w, h, &mut out);
            }
            let start = Instant::now();
            for _ in 0..rounds {
                s.prepare(std::hint::black_box(&rgb), w, h, &mut out);
            }
            let ns = start.elapsed().as_nanos() as f64 / rounds as f64;
            println!(
                "prepare {size}x{size} {resize:?} {layout:?} from {w}x{h}: {:.0} ns/frame ({:.2} ns/value)",
                ns,
                ns / s.frame_len() as f64
            );
        }
    }
    let Some(dir) =
        std::env::var_os("FRESCO_MODEL_DIR").map(|d| std::path::PathBuf::from(d).join("scoring"))
    else {
        println!("FRESCO_MODEL_DIR not set: no model timings");
        return;
    };
    let options = EngineOptions {
        threads: Some(1),
        ..EngineOptions::default()
    };
    for (model, shape) in [
        ("efficientnet-lite0.onnx", [1usize, 3, 224, 224]),
        ("yolov3-tiny-416.onnx", [1, 3, 416, 416]),
        ("blazeface-front-128.onnx", [1, 128, 128, 3]),
    ] {
        let Ok(bytes) = std::fs::read(dir.join(model)) else {
            continue;
        };
        let mut engine = TensorEngine::from_bytes_in(&bytes, model, &options, Some(&dir)).unwrap();
        let input = vec![0.1f32; shape.iter().product()];
        for _ in 0..3 {
            engine.run(&shape, &input).unwrap();
        }
        let rounds = 20;
        let start = Instant::now();
        for _ in 0..rounds {
            engine.run(&shape, &input).unwrap();
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0 / rounds as f64;
        println!("{model}: {ms:.2} ms/frame on 1 thread (model only, outputs copied out)");
    }
}
