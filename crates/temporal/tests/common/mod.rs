//! Synthetic frames whose content is known at every integer point.
#![allow(dead_code)]

/// A smooth colour texture with detail at several scales, defined at every integer point.
pub fn texture(x: i64, y: i64, c: usize) -> u8 {
    let (x, y) = (x as f64, y as f64);
    let phase = c as f64 * 1.7;
    let value = 0.5
        + 0.2 * (x * 0.31 + phase).sin() * (y * 0.23).cos()
        + 0.15 * ((x + 2.0 * y) * 0.11 + phase).sin()
        + 0.1 * (x * 0.07 - y * 0.13).cos();
    (value * 255.0).round().clamp(0.0, 255.0) as u8
}

/// A different pattern (a hash of the position and a seed): what per-frame styling that
/// boils looks like.
pub fn noise(x: i64, y: i64, c: usize, seed: u64) -> u8 {
    let mut h = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (c as u64 + 1).wrapping_mul(0x1656_67B1_9E37_79F9)
        ^ seed.wrapping_mul(0x27D4_EB2F_1656_67C5);
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 32;
    (h & 0xFF) as u8
}

pub fn frame(w: usize, h: usize, pixel: impl Fn(i64, i64, usize) -> u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(w * h * 3);
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            for c in 0..3 {
                out.push(pixel(x, y, c));
            }
        }
    }
    out
}
