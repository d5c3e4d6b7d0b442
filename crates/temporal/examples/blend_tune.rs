//! Tries blend settings on a clip and its per-frame styled output, without the model: reads
//! both as packed RGB (WIDTHxHEIGHT, from files ffmpeg wrote with `-f rawvideo -pix_fmt rgb24`),
//! blends the styled frames with each setting given, and prints the warping error of the result
//! (the measure of `fresco eval temporal`, flows computed once), its sharpness (the mean
//! gradient magnitude of the luma, as bench/temporal_figures.py computes it) and the blend's
//! time a frame. What docs/temporal.md's choice of settings rests on.
//! `cargo run --release -p fresco-temporal --example blend_tune -- IN.rgb STYLED.rgb W H
//! keep=0.7,detail=0.5,side=320 ...` (each argument after the size is one setting; keys not
//! given keep the defaults).

use std::time::Instant;

use fresco_temporal::warp::{correspond, warping_error, Correspondence, RgbPlanes};
use fresco_temporal::{BlendSettings, FlowSettings, Plane, Stabilizer};

fn frames(path: &str, bytes: usize) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).expect("a raw RGB file");
    assert_eq!(data.len() % bytes, 0, "{path} is not whole frames");
    data.chunks_exact(bytes).map(<[u8]>::to_vec).collect()
}

fn sharpness(frames: &[Vec<u8>], w: usize, h: usize) -> f64 {
    let mut total = 0.0f64;
    for frame in frames {
        let l: Vec<f64> = frame
            .chunks_exact(3)
            .map(|p| (0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64) / 255.0)
            .collect();
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let gx = (l[y * w + x + 1] - l[y * w + x - 1]) / 2.0;
                let gy = (l[(y + 1) * w + x] - l[(y - 1) * w + x]) / 2.0;
                total += gx.hypot(gy);
            }
        }
    }
    total / (frames.len() * (w - 2) * (h - 2)) as f64
}

fn error(links: &[Correspondence], frames: &[Vec<u8>], w: usize, h: usize) -> f64 {
    let planes: Vec<RgbPlanes> = frames
        .iter()
        .map(|f| RgbPlanes::from_packed(f, w, h))
        .collect();
    let errors: Vec<f64> = links
        .iter()
        .zip(planes.windows(2))
        .filter_map(|(link, pair)| warping_error(&pair[0], &pair[1], link))
        .collect();
    errors.iter().sum::<f64>() / errors.len() as f64
}

fn settings(spec: &str) -> BlendSettings {
    let mut s = BlendSettings::default();
    for pair in spec.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').expect("key=value");
        match key {
            "keep" => s.keep = value.parse().expect("keep"),
            "detail" => s.detail = value.parse().expect("detail"),
            "side" => s.flow_max_side = value.parse().expect("side"),
            "change" => s.input_change = value.parse().expect("change"),
            other => panic!("unknown setting {other}"),
        }
    }
    s
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, styled, w, h, specs @ ..] = &args[..] else {
        panic!("usage: blend_tune IN.rgb STYLED.rgb WIDTH HEIGHT SETTINGS...");
    };
    let (w, h): (usize, usize) = (w.parse().expect("width"), h.parse().expect("height"));
    let inputs = frames(input, w * h * 3);
    let styled = frames(styled, w * h * 3);
    assert_eq!(inputs.len(), styled.len(), "frame counts differ");
    let lumas: Vec<Plane> = inputs.iter().map(|f| Plane::luma(f, w, h)).collect();
    let links: Vec<Correspondence> = lumas
        .windows(2)
        .map(|pair| correspond(&pair[0], &pair[1], &FlowSettings::default()))
        .collect();
    let floor = error(&links, &inputs, w, h);
    let base_error = error(&links, &styled, w, h);
    let base_sharpness = sharpness(&styled, w, h);
    println!("floor {floor:.4e}; per frame: error {base_error:.4e}, sharpness {base_sharpness:.5}");
    for spec in specs {
        let blend = settings(spec);
        let mut stabilizer = Stabilizer::new(w, h, FlowSettings::default(), blend);
        let start = Instant::now();
        let out: Vec<Vec<u8>> = inputs
            .iter()
            .zip(&styled)
            .map(|(input, styled)| {
                let mut out = styled.clone();
                stabilizer.push(input, &mut out);
                out
            })
            .collect();
        let ms = start.elapsed().as_secs_f64() * 1000.0 / inputs.len() as f64;
        let (e, s) = (error(&links, &out, w, h), sharpness(&out, w, h));
        println!(
            "{spec:40} error {e:.4e} ({:+.1}%)  sharpness {s:.5} ({:.1}%)  {ms:.0} ms/frame",
            100.0 * (e / base_error - 1.0),
            100.0 * s / base_sharpness
        );
    }
}
