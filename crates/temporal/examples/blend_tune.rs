//! Tries blend settings on a clip and its per-frame styled output, without the model: reads
//! both as packed RGB (WIDTHxHEIGHT, from files ffmpeg wrote with `-f rawvideo -pix_fmt rgb24`),
//! blends the styled frames with each setting given, and prints the warping error of the result
//! (the measure of `fresco eval temporal`, flows computed once), its sharpness (the mean
//! gradient magnitude of the luma, as bench/temporal_figures.py computes it) and the blend's
//! time a frame. What docs/temporal.md's choice of settings rests on.
//! `cargo run --release -p fresco-temporal --example blend_tune -- IN.rgb STYLED.rgb W H
//! keep=0.7,detail=0.5,side=320 ...` (each argument after the size is one setting; keys not
//! given keep the defaults; `chunk=N` blends as chunks of N frames do, each started `warm=W`
//! frames early, and prints the error at chunk starts and inside chunks).

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

/// The warping error of each frame from the second on.
fn errors(links: &[Correspondence], frames: &[Vec<u8>], w: usize, h: usize) -> Vec<Option<f64>> {
    let planes: Vec<RgbPlanes> = frames
        .iter()
        .map(|f| RgbPlanes::from_packed(f, w, h))
        .collect();
    links
        .iter()
        .zip(planes.windows(2))
        .map(|(link, pair)| warping_error(&pair[0], &pair[1], link))
        .collect()
}

/// The mean of the errors of the frames whose number (from 0) `pick` selects.
fn mean(errors: &[Option<f64>], pick: impl Fn(usize) -> bool) -> f64 {
    let values: Vec<f64> = errors
        .iter()
        .enumerate()
        .filter(|(i, _)| pick(i + 1))
        .filter_map(|(_, e)| *e)
        .collect();
    values.iter().sum::<f64>() / values.len() as f64
}

fn error(links: &[Correspondence], frames: &[Vec<u8>], w: usize, h: usize) -> f64 {
    mean(&errors(links, frames, w, h), |_| true)
}

/// The styled frames blended the way chunks of `chunk` frames are, each started
/// `warm_up_frames` early (`chunk` 0: one run over the whole clip).
fn blended(
    inputs: &[Vec<u8>],
    styled: &[Vec<u8>],
    w: usize,
    h: usize,
    blend: BlendSettings,
    chunk: usize,
) -> Vec<Vec<u8>> {
    let chunk = if chunk == 0 { inputs.len() } else { chunk };
    let mut out = Vec::with_capacity(inputs.len());
    for start in (0..inputs.len()).step_by(chunk) {
        let from = start.saturating_sub(blend.warm_up_frames as usize);
        let end = (start + chunk).min(inputs.len());
        let mut stabilizer = Stabilizer::new(w, h, FlowSettings::default(), blend);
        for i in from..end {
            let mut frame = styled[i].clone();
            stabilizer.push(&inputs[i], &mut frame);
            if i >= start {
                out.push(frame);
            }
        }
    }
    out
}

fn settings(spec: &str) -> (BlendSettings, usize) {
    let mut s = BlendSettings::default();
    let mut chunk = 0;
    for pair in spec.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').expect("key=value");
        match key {
            "keep" => s.keep = value.parse().expect("keep"),
            "detail" => s.detail = value.parse().expect("detail"),
            "side" => s.flow_max_side = value.parse().expect("side"),
            "change" => s.input_change = value.parse().expect("change"),
            "warm" => s.warm_up_frames = value.parse().expect("warm"),
            "chunk" => chunk = value.parse().expect("chunk"),
            other => panic!("unknown setting {other}"),
        }
    }
    (s, chunk)
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
        let (blend, chunk) = settings(spec);
        let start = Instant::now();
        let out = blended(&inputs, &styled, w, h, blend, chunk);
        let ms = start.elapsed().as_secs_f64() * 1000.0 / inputs.len() as f64;
        let each = errors(&links, &out, w, h);
        let (e, s) = (mean(&each, |_| true), sharpness(&out, w, h));
        print!(
            "{spec:40} error {e:.4e} ({:+.1}%)  sharpness {s:.5} ({:.1}%)  {ms:.0} ms/frame",
            100.0 * (e / base_error - 1.0),
            100.0 * s / base_sharpness
        );
        if chunk > 0 {
            let starts = mean(&each, |i| i % chunk == 0);
            let inside = mean(&each, |i| i % chunk != 0);
            print!(
                "  chunk starts {starts:.4e} / inside {inside:.4e} ({:+.1}%)",
                100.0 * (starts / inside - 1.0)
            );
        }
        println!();
    }
}
