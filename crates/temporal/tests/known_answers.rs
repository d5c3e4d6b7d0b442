//! The warping error on synthetic clips whose answer is known, computed here without the
//! flow: a still clip, a pure translation with outputs that differ frame to frame, and an
//! object that uncovers the background behind it.

use fresco_temporal::flow::{FlowSettings, Plane};
use fresco_temporal::warp::correspond;
use fresco_temporal::ClipMeter;

mod common;
use common::{frame, noise, texture};

#[test]
fn a_still_clip_has_no_warping_error() {
    let (w, h) = (96, 64);
    let still = frame(w, h, texture);
    let mut meter = ClipMeter::new(w, h, FlowSettings::default());
    for _ in 0..4 {
        meter.push(&still, &still);
    }
    let report = meter.finish(Some(2));
    assert_eq!(report.frames, 4);
    assert_eq!(report.per_frame.len(), 3);
    for f in &report.per_frame {
        assert!(f.output.unwrap().abs() < 1e-6, "{f:?}");
        assert!(f.input.unwrap().abs() < 1e-6, "{f:?}");
        assert_eq!(f.visible, 1.0);
    }
    let chunks = report.chunks.expect("split asked for");
    assert_eq!((chunks.boundaries.frames, chunks.inside.frames), (1, 2));
}

/// The input moves by (dx, dy) a frame; each output frame is the input's content with its own
/// noise on top, moving with it. The answer: over the pixels whose source is inside the
/// previous frame, the mean squared difference of each output pixel and the output pixel
/// (dx, dy) before it, in the previous frame.
#[test]
fn a_translation_styled_per_frame_gives_the_translated_difference() {
    let (w, h, dx, dy) = (160i64, 120i64, 3i64, 1i64);
    let frames = 4;
    let input = |t: i64| {
        frame(w as usize, h as usize, |x, y, c| {
            texture(x - t * dx, y - t * dy, c)
        })
    };
    // Per-frame styling: the moving content, plus noise that changes every frame.
    let styled = |t: i64, x: i64, y: i64, c: usize| {
        let base = texture(x - t * dx, y - t * dy, c) as i64;
        (base + noise(x, y, c, t as u64) as i64 / 8 - 16).clamp(0, 255) as u8
    };
    let output = |t: i64| frame(w as usize, h as usize, |x, y, c| styled(t, x, y, c));
    let mut meter = ClipMeter::new(w as usize, h as usize, FlowSettings::default());
    for t in 0..frames {
        meter.push(&input(t), &output(t));
    }
    let report = meter.finish(None);
    for f in &report.per_frame {
        let t = f.frame as i64;
        let (mut sum, mut count) = (0.0f64, 0usize);
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = (x - dx, y - dy);
                if !(0..w).contains(&sx) || !(0..h).contains(&sy) {
                    continue;
                }
                for c in 0..3 {
                    let d = (styled(t, x, y, c) as f64 - styled(t - 1, sx, sy, c) as f64) / 255.0;
                    sum += d * d;
                }
                count += 1;
            }
        }
        let expected = sum / (3 * count) as f64;
        let visible_expected = count as f64 / (w * h) as f64;
        let got = f.output.expect("visible pixels");
        // Within 2%: the flow's sub-pixel error (about 0.01 pixel here) makes the bilinear
        // sample average neighbouring noise, which lowers the difference by about as much.
        assert!(
            (got - expected).abs() < 0.02 * expected,
            "frame {t}: {got} against {expected}"
        );
        // The flow is less sure at the edges: a few more pixels may be left out, never more.
        assert!(
            f.visible <= visible_expected + 1e-9 && f.visible > visible_expected - 0.02,
            "frame {t}: visible {} against {visible_expected}",
            f.visible
        );
        // The input itself moved exactly: its floor is near zero, far under the output's.
        assert!(f.input.unwrap() < 0.01 * expected, "{f:?}");
    }
    assert!(report.clip.output.unwrap() > 100.0 * report.clip.input.unwrap());
}

/// A textured square moves 4 pixels right a frame over a still background: the strip it
/// uncovers was not visible in the frame before, the background away from it was.
#[test]
fn uncovered_background_is_occluded() {
    let (w, h) = (160usize, 120usize);
    let (side, top, step) = (40i64, 40i64, 4i64);
    let scene = |left: i64| {
        frame(w, h, move |x, y, c| {
            if (left..left + side).contains(&x) && (top..top + side).contains(&y) {
                // The square's own texture, moving with it.
                texture((x - left) * 2 + 500, y * 2 + 300, 2 - c)
            } else {
                texture(x, y, c)
            }
        })
    };
    let left = 60;
    let previous = Plane::luma(&scene(left), w, h);
    let current = Plane::luma(&scene(left + step), w, h);
    let link = correspond(&previous, &current, &FlowSettings::default());
    let visible = |x: i64, y: i64| link.visible[y as usize * w + x as usize];
    // Uncovered: now background, a frame ago under the square.
    let uncovered: Vec<bool> = (top + 4..top + side - 4)
        .flat_map(|y| (left..left + step).map(move |x| (x, y)))
        .map(|(x, y)| visible(x, y))
        .collect();
    let occluded = uncovered.iter().filter(|v| !**v).count();
    assert!(
        occluded * 10 >= uncovered.len() * 7,
        "{occluded} of {} uncovered pixels marked occluded",
        uncovered.len()
    );
    // Far from the square (more than two windows), everything is visible.
    let mut far = 0;
    let mut far_visible = 0;
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            let near = (left - 30..left + side + step + 30).contains(&x)
                && (top - 30..top + side + 30).contains(&y);
            if !near {
                far += 1;
                far_visible += visible(x, y) as usize;
            }
        }
    }
    assert!(
        far_visible * 1000 >= far * 999,
        "{far_visible} of {far} visible"
    );
}
