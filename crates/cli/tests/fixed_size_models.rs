//! Image models whose output is not the frame's own RGB image (masks, depth, saliency), end to
//! end through `fresco run`: a fixed 64x64 input with one output channel (grey) and one with a
//! 32x32 RGB output, on an odd-sized (97x61) clip with audio and on a still image. The output
//! has the input's displayed size, exactly its frames, timestamps and streams, and the values
//! the model gave, scaled back. A model whose output is no image is still refused, pointed at
//! records outputs. The models are built in code (`fresco_infer::onnx_build`).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use fresco_infer::onnx_build;
use fresco_testkit::process::{read_log, wait_until};

const W: u32 = 97;
const H: u32 = 61;
/// The clips' colour (mean 60).
const COLOUR: [u8; 3] = [30, 60, 90];
const FRAMES: usize = 50;

/// ffmpeg's `color` source of [`COLOUR`], a little larger than `W`x`H` (it rounds odd sizes
/// down to even ones): the clips crop it.
fn colour_source() -> String {
    let [r, g, b] = COLOUR;
    format!("color=c=0x{r:02x}{g:02x}{b:02x}:size={}x{}", W + 1, H + 1)
}

/// 2 s at 25 fps of one colour, 97x61, lossless 4:4:4 (ffv1) with a FLAC tone, in Matroska.
fn colour_clip(dir: &Path) -> PathBuf {
    let clip = dir.join("colour.mkv");
    let crop = format!("format=yuv444p,crop={W}:{H}:0:0");
    let source = format!("{}:rate=25", colour_source());
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            &source,
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "2",
            "-vf",
            &crop,
            "-pix_fmt",
            "yuv444p",
            "-c:v",
            "ffv1",
            "-c:a",
            "flac",
        ],
        &clip,
    );
    assert_eq!(
        video_size(&clip),
        (W as u64, H as u64),
        "the test clip is not {W}x{H}"
    );
    clip
}

/// A still of the clip's colour, as PNG.
fn colour_png(dir: &Path) -> PathBuf {
    let png = dir.join("colour.png");
    let crop = format!("format=rgb24,crop={W}:{H}:0:0");
    let source = colour_source();
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            &source,
            "-vf",
            &crop,
            "-frames:v",
            "1",
            "-update",
            "1",
        ],
        &png,
    );
    assert_eq!(
        displayed_size(&png),
        (W, H),
        "the test still is not {W}x{H}"
    );
    png
}

/// The colour of the first pixel of `path` as decoded (a lossy step may have moved it a little
/// from [`COLOUR`]).
fn colour_of(path: &Path) -> [u8; 3] {
    let (_, _, frames) = decode_rgb(path);
    [frames[0][0], frames[0][1], frames[0][2]]
}

/// The grey model's value at displayed column `x` for a frame of `colour`: the mean of its
/// channels plus the model's ramp (`2 * x` over 64 columns) stretched to `W`, linear between
/// pixel centres and flat beyond the edge ones.
fn grey_at(colour: [u8; 3], x: u32) -> f32 {
    let mean = colour.iter().map(|&c| c as f32).sum::<f32>() / 3.0;
    let side = onnx_build::FIXED_SIDE as f32;
    let source = (x as f32 + 0.5) * side / W as f32 - 0.5;
    mean + 2.0 * source.clamp(0.0, side - 1.0)
}

/// Checks every pixel of every frame: grey (R, G and B within `spread`), within `tolerance` of
/// [`grey_at`] its column for frames of `colour`.
fn assert_grey_ramp(frames: &[Vec<u8>], colour: [u8; 3], spread: u8, tolerance: f32) {
    for (n, frame) in frames.iter().enumerate() {
        for (i, px) in frame.chunks_exact(3).enumerate() {
            let (x, y) = (i as u32 % W, i as u32 / W);
            let (lo, hi) = (px.iter().min().unwrap(), px.iter().max().unwrap());
            assert!(hi - lo <= spread, "frame {n} ({x},{y}) is not grey: {px:?}");
            let want = grey_at(colour, x);
            assert!(
                (px[1] as f32 - want).abs() <= tolerance,
                "frame {n} ({x},{y}) is {} where {want:.1} was expected",
                px[1]
            );
        }
    }
}

/// Frames, timestamps and streams as the input's, at its displayed size.
fn assert_same_frames_and_streams(input: &Path, output: &Path) {
    assert_eq!(displayed_size(output), (W, H), "{}", output.display());
    assert_eq!(frame_md5s(output).len(), FRAMES);
    assert_same_times(&frame_times(input), &frame_times(output));
    assert_eq!(
        streams_of(output, "audio").len(),
        1,
        "the audio was not kept"
    );
}

#[test]
fn a_fixed_size_grey_model_writes_a_grey_video_of_the_inputs_size() {
    let dir = tempfile::tempdir().unwrap();
    let clip = colour_clip(dir.path());
    let model = write_model(dir.path(), "mask.onnx", onnx_build::fixed_grey_model(false));
    let out = dir.path().join("mask.mkv");
    // Several chunks, as a long film would have.
    let run = run(&clip, &out, &model, &["--chunk-frames", "16"]).ok();
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("takes 64x64"),
        "no note about the model's size:\n{}",
        run.dump()
    );
    assert_same_frames_and_streams(&clip, &out);
    let (_, _, frames) = decode_rgb(&out);
    // Decoded at 64x64 (area), scaled back (bicubic) and encoded 4:4:4 (lossy x264).
    assert_grey_ramp(&frames, colour_of(&clip), 3, 5.0);
}

#[test]
fn a_fixed_size_model_with_a_smaller_rgb_output_writes_the_picture_back_at_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let clip = colour_clip(dir.path());
    let model = write_model(dir.path(), "half.onnx", onnx_build::fixed_rgb_half_model());
    let out = dir.path().join("half.mkv");
    run(&clip, &out, &model, &[]).ok();
    assert_same_frames_and_streams(&clip, &out);
    let (_, _, frames) = decode_rgb(&out);
    let colour = colour_of(&clip);
    for (n, frame) in frames.iter().enumerate() {
        for (i, px) in frame.chunks_exact(3).enumerate() {
            for c in 0..3 {
                assert!(
                    px[c].abs_diff(colour[c]) <= 3,
                    "frame {n} pixel {i}: {px:?} where {colour:?} went in"
                );
            }
        }
    }
}

#[test]
fn still_images_go_through_fixed_size_models_at_their_own_size() {
    let dir = tempfile::tempdir().unwrap();
    let png = colour_png(dir.path());
    let grey = write_model(dir.path(), "mask.onnx", onnx_build::fixed_grey_model(false));
    let out = dir.path().join("mask.png");
    run(&png, &out, &grey, &[]).ok();
    assert_eq!(displayed_size(&out), (W, H));
    let (_, _, frames) = decode_rgb(&out);
    // PNG is lossless and the scaling is the engine's own (bilinear): R = G = B, within 1.
    assert_grey_ramp(&frames, colour_of(&png), 0, 1.0);

    let half = write_model(dir.path(), "half.onnx", onnx_build::fixed_rgb_half_model());
    let out = dir.path().join("half.png");
    run(&png, &out, &half, &[]).ok();
    assert_eq!(displayed_size(&out), (W, H));
    let (_, _, frames) = decode_rgb(&out);
    let want: Vec<u8> = colour_of(&png)
        .iter()
        .copied()
        .cycle()
        .take((W * H * 3) as usize)
        .collect();
    let off = frames[0]
        .iter()
        .zip(&want)
        .filter(|(a, b)| a.abs_diff(**b) > 1)
        .count();
    assert_eq!(
        off, 0,
        "{off} samples differ from the colour by more than 1"
    );
}

#[test]
fn a_model_whose_output_is_no_image_is_refused_and_pointed_at_records() {
    let dir = tempfile::tempdir().unwrap();
    let clip = colour_clip(dir.path());
    let model = write_model(
        dir.path(),
        "scores.onnx",
        onnx_build::not_image_output_model(),
    );
    for out in [dir.path().join("scores.mkv"), dir.path().join("scores.png")] {
        let input = if out.extension().unwrap() == "png" {
            colour_png(dir.path())
        } else {
            clip.clone()
        };
        run(&input, &out, &model, &[]).fails(
            7,
            "scores.onnx",
            &[
                "not an image-to-image model",
                "[1,1000]",
                ".jsonl or .parquet",
            ],
        );
        assert_nothing_left(&out);
    }
}

#[test]
fn a_killed_run_of_a_fixed_size_model_resumes_to_the_same_frames() {
    let dir = tempfile::tempdir().unwrap();
    let clip = colour_clip(dir.path());
    let model = write_model(dir.path(), "mask.onnx", onnx_build::fixed_grey_model(false));
    let args = |output: &Path, extra: &[&str]| {
        let mut cmd = fresco_cmd();
        cmd.args([
            s("run"),
            p(&clip),
            s("-o"),
            p(output),
            s("--model"),
            p(&model),
        ])
        .args(["--codec", "ffv1", "--chunk-frames", "6"])
        .args(extra)
        .env("FRESCO_LOG", "fresco_worker=info");
        cmd
    };
    let output = dir.path().join("mask.mkv");
    let log = dir.path().join("first.log");
    let mut first = args(&output, &[])
        .env("FRESCO_TEST_FRAME_DELAY_MS", "60")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_until(
        std::time::Duration::from_secs(60),
        "three chunks to be scored",
        || read_log(&log).matches("scored chunk").count() >= 3,
    );
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(!output.exists(), "a killed run left an output");

    let again = run_with_timeout(&mut args(&output, &[]), RUN_TIMEOUT).ok();
    assert!(again.stderr.contains("resuming job"), "{}", again.dump());
    assert_same_frames_and_streams(&clip, &output);
    // The frames of a run never interrupted, exactly (ffv1 is lossless, chunks are exact).
    let clean = dir.path().join("clean.mkv");
    run_with_timeout(&mut args(&clean, &[]), RUN_TIMEOUT).ok();
    assert_eq!(frame_md5s(&output), frame_md5s(&clean));
    let (_, _, frames) = decode_rgb(&output);
    assert_grey_ramp(&frames, colour_of(&clip), 3, 5.0);
}

#[test]
fn a_model_fixing_a_huge_input_is_refused_before_frames_are_decoded_at_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let clip = colour_clip(dir.path());
    let png = colour_png(dir.path());
    let bytes = onnx_build::GraphBuilder::new("huge")
        .input("input1", &[1, 3, 8192, 64].map(onnx_build::Dim::Fixed))
        .output("output1", &[1, 1, 8192, 64].map(onnx_build::Dim::Fixed))
        .node(
            "ReduceMean",
            &["input1"],
            &["output1"],
            vec![
                onnx_build::attr_ints("axes", &[1]),
                onnx_build::attr_int("keepdims", 1),
            ],
        )
        .to_bytes();
    let model = write_model(dir.path(), "huge.onnx", bytes);
    for (input, out) in [
        (&clip, dir.path().join("huge.mkv")),
        (&png, dir.path().join("huge.png")),
    ] {
        run(input, &out, &model, &[]).fails(7, "huge.onnx", &["64x8192", "at most 4096"]);
        assert_nothing_left(&out);
    }
}
