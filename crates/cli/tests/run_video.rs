//! End-to-end video runs with the identity model and lossless encoders: frames, timestamps,
//! streams, rotation and sizes must come through exactly.

mod common;

use common::*;
use std::path::Path;

const LOSSLESS_X264: &[&str] = &["--codec", "libx264rgb", "--crf", "0"];
const LOSSLESS_FFV1: &[&str] = &["--codec", "ffv1"];

/// Runs the identity model over `input` into `output` with extra arguments, in chunks of 7
/// frames (which divide none of the test clips) on two local workers, so that every exactness
/// check below also covers chunk boundaries and assembly.
fn identity_run(dir: &Path, input: &Path, output: &Path, extra: &[&str]) -> Out {
    let model = identity_model(dir);
    let mut args = vec![
        s("run"),
        p(input),
        s("-o"),
        p(output),
        s("--model"),
        p(&model),
        s("--chunk-frames"),
        s("7"),
        s("--workers"),
        s("2"),
    ];
    args.extend(extra.iter().map(|a| s(a)));
    fresco(args)
}

/// Frames, timestamps and duration of `output` equal those of `input`.
fn assert_exact_copy(input: &Path, output: &Path) {
    let (want, got) = (frame_md5s(input), frame_md5s(output));
    assert!(!want.is_empty(), "input {} has no frames", input.display());
    assert_eq!(
        want.len(),
        got.len(),
        "frame count changed ({} -> {})",
        want.len(),
        got.len()
    );
    for (i, (a, b)) in want.iter().zip(&got).enumerate() {
        assert_eq!(
            a,
            b,
            "frame {i} of {} differs from the input",
            output.display()
        );
    }
    let (t_in, t_out) = (frame_times(input), frame_times(output));
    assert_same_times(&t_in, &t_out);
    let frame = t_in
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(f64::INFINITY, f64::min)
        .max(1.0 / 120.0);
    let longest = t_in.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    let (d_in, d_out) = (duration(input), duration(output));
    assert!(
        (d_in - d_out).abs() <= longest.max(frame) + 1e-3,
        "duration {d_in}s became {d_out}s (more than one frame apart)"
    );
}

#[test]
fn constant_rate_identity_is_frame_exact_mp4_and_mkv() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cfr.mp4");
    make_h264(&input, "96x64", 25, 1.0);

    let out_mp4 = dir.path().join("out.mp4");
    identity_run(dir.path(), &input, &out_mp4, LOSSLESS_X264).ok();
    // libx264rgb's rgb24 comes back from the H.264 decoder as planar gbrp.
    assert_eq!(video_pix_fmt(&out_mp4), "gbrp", "not an RGB encoding");
    assert_exact_copy(&input, &out_mp4);

    let out_mkv = dir.path().join("out.mkv");
    identity_run(dir.path(), &input, &out_mkv, LOSSLESS_FFV1).ok();
    assert_eq!(streams_of(&out_mkv, "video")[0]["codec_name"], "ffv1");
    assert_exact_copy(&input, &out_mkv);
}

#[test]
fn variable_rate_identity_keeps_every_frame_and_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("vfr.mp4");
    // 60 source frames at 30 fps; keep every third plus those with n % 7 == 1: uneven gaps.
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=96x64:rate=30",
            "-t",
            "2",
            "-vf",
            "select='not(mod(n\\,3))+eq(mod(n\\,7)\\,1)'",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
        &input,
    );
    let times = frame_times(&input);
    let mut gaps: Vec<i64> = times
        .windows(2)
        .map(|w| ((w[1] - w[0]) * 1e4).round() as i64)
        .collect();
    gaps.sort();
    gaps.dedup();
    assert!(
        gaps.len() >= 2,
        "the test clip is not variable-rate: gaps {gaps:?} (times {times:?})"
    );
    assert!(
        times.len() > 15 && times.len() < 60,
        "unexpected frame count {}",
        times.len()
    );

    let out_mp4 = dir.path().join("vfr-out.mp4");
    identity_run(dir.path(), &input, &out_mp4, LOSSLESS_X264).ok();
    assert_exact_copy(&input, &out_mp4);

    // Matroska stores milliseconds, so its input is the same clip remuxed into .mkv (exact
    // comparison still holds: the input's own timestamps are milliseconds too).
    let input_mkv = dir.path().join("vfr.mkv");
    ffmpeg(&["-i", &input.to_string_lossy(), "-c", "copy"], &input_mkv);
    assert_eq!(frame_times(&input_mkv).len(), times.len());
    let out_mkv = dir.path().join("vfr-out.mkv");
    identity_run(dir.path(), &input_mkv, &out_mkv, LOSSLESS_FFV1).ok();
    assert_exact_copy(&input_mkv, &out_mkv);
}

/// A .mkv with video, two AAC tracks (440 Hz and 880 Hz) and an SRT track.
fn make_multi_stream(dir: &Path) -> std::path::PathBuf {
    let srt = dir.join("subs.srt");
    std::fs::write(
        &srt,
        "1\n00:00:00,000 --> 00:00:00,800\nhello\n\n2\n00:00:00,900 --> 00:00:01,400\nworld\n\n",
    )
    .unwrap();
    let input = dir.join("streams.mkv");
    let srt_arg = srt.to_string_lossy().into_owned();
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=96x64:rate=25:duration=1.5",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1.5",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=880:duration=1.5",
            "-i",
            &srt_arg,
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-map",
            "2:a",
            "-map",
            "3:s",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-c:s",
            "srt",
        ],
        &input,
    );
    assert_eq!(streams_of(&input, "audio").len(), 2);
    assert_eq!(streams_of(&input, "subtitle").len(), 1);
    input
}

#[test]
fn other_streams_are_copied_dropped_on_request_and_refused_by_mp4() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_multi_stream(dir.path());

    let out = dir.path().join("all.mkv");
    identity_run(dir.path(), &input, &out, LOSSLESS_FFV1).ok();
    assert_eq!(streams_of(&out, "video").len(), 1);
    assert_eq!(
        streams_of(&out, "audio").len(),
        2,
        "audio tracks lost: {}",
        probe(&out)
    );
    assert_eq!(
        streams_of(&out, "subtitle").len(),
        1,
        "subtitle lost: {}",
        probe(&out)
    );
    for n in 0..2 {
        assert_eq!(
            audio_md5(&input, n),
            audio_md5(&out, n),
            "audio track {n} was altered"
        );
    }
    assert_ne!(
        audio_md5(&out, 0),
        audio_md5(&out, 1),
        "the two audio tracks were merged or swapped"
    );
    assert_exact_copy(&input, &out);

    let dropped = dir.path().join("nosubs.mkv");
    identity_run(
        dir.path(),
        &input,
        &dropped,
        &["--codec", "ffv1", "--drop-streams", "subtitle"],
    )
    .ok();
    assert_eq!(streams_of(&dropped, "audio").len(), 2);
    assert_eq!(
        streams_of(&dropped, "subtitle").len(),
        0,
        "--drop-streams subtitle kept it"
    );
    for n in 0..2 {
        assert_eq!(audio_md5(&input, n), audio_md5(&dropped, n));
    }

    let sub = tempfile::tempdir().unwrap();
    let mp4 = sub.path().join("refused.mp4");
    identity_run(dir.path(), &input, &mp4, LOSSLESS_X264).fails(
        5,
        "refused.mp4",
        &["subtitle", "--drop-streams"],
    );
    assert_nothing_left(&mp4);
    assert!(
        dir_names(sub.path()).is_empty(),
        "files left: {:?}",
        dir_names(sub.path())
    );
}

#[test]
fn a_clip_without_audio_works() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("silent.mp4");
    make_h264(&input, "64x48", 25, 1.0);
    assert!(streams_of(&input, "audio").is_empty());
    let out = dir.path().join("silent-out.mp4");
    identity_run(dir.path(), &input, &out, &[]).ok();
    assert_eq!(frame_md5s(&out).len(), 25);
    assert!(streams_of(&out, "audio").is_empty());
    assert_eq!(video_size(&out), (64, 48));
}

#[test]
fn rotation_is_preserved_as_displayed() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.mp4");
    make_h264(&plain, "96x64", 25, 1.0);
    let rotated = dir.path().join("rot.mp4");
    rotate_90(&plain, &rotated);
    assert_eq!(
        displayed_size(&rotated),
        (64, 96),
        "the test clip carries no rotation"
    );
    assert_ne!(
        frame_md5s(&rotated),
        frame_md5s_stored(&rotated),
        "autorotation changed nothing"
    );

    let out = dir.path().join("rot-out.mp4");
    identity_run(dir.path(), &rotated, &out, LOSSLESS_X264).ok();
    assert_eq!(
        displayed_size(&out),
        (64, 96),
        "the output is not displayed upright"
    );
    let (want, got) = (frame_md5s(&rotated), frame_md5s(&out));
    assert_eq!(want.len(), got.len());
    assert_eq!(want, got, "displayed frames differ: orientation changed");
}

#[test]
fn odd_sizes_are_kept_by_default_and_padded_for_a_named_420() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("odd.mkv");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48:rate=25",
            "-t",
            "0.4",
            "-vf",
            "scale=33:25,format=yuv420p",
            "-c:v",
            "ffv1",
        ],
        &input,
    );
    assert_eq!(video_size(&input), (33, 25), "the test clip is not 33x25");
    assert_eq!(video_pix_fmt(&input), "yuv420p");

    // The default keeps the size: 4:4:4, since 4:2:0 cannot hold 33x25; and says why.
    let exact = dir.path().join("exact.mp4");
    let out = identity_run(dir.path(), &input, &exact, &[]).ok();
    assert_eq!(video_size(&exact), (33, 25));
    assert_eq!(video_pix_fmt(&exact), "yuv444p");
    assert_eq!(frame_md5s(&exact).len(), 10);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("odd size"),
        "no note about the 4:4:4 choice:\n{}",
        out.dump()
    );

    // A named 4:2:0 is padded by one pixel, and the JSON notes say so.
    let padded = dir.path().join("padded.mp4");
    let json = identity_run(
        dir.path(),
        &input,
        &padded,
        &["--pix-fmt", "yuv420p", "--json"],
    )
    .ok()
    .json();
    assert_eq!(video_size(&padded), (34, 26));
    assert_eq!(frame_md5s(&padded).len(), 10);
    let notes = json["outputs"][0]["notes"].to_string().to_lowercase();
    assert!(
        notes.contains("pad"),
        "the JSON notes do not mention padding: {json}"
    );
}

/// The case the issue found: an odd-sized, rotated 4:4:4 input came out one pixel larger on
/// each side (the 4:2:0 default padded it). Through `fresco run` with a real built-in style.
#[test]
fn odd_sized_444_inputs_keep_their_displayed_size_rotated_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("odd444.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-t",
            "0.2",
            "-vf",
            "scale=321:241,format=yuv444p",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv444p",
        ],
        &plain,
    );
    assert_eq!(
        video_size(&plain),
        (321, 241),
        "the test clip is not 321x241"
    );
    assert_eq!(video_pix_fmt(&plain), "yuv444p");
    let rotated = dir.path().join("odd444-rot.mp4");
    rotate_90(&plain, &rotated);
    assert_eq!(
        displayed_size(&rotated),
        (241, 321),
        "the clip carries no rotation"
    );
    // Even-sized 4:4:4 keeps its chroma too; ordinary 4:2:0 input keeps 4:2:0.
    let even = dir.path().join("even444.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-t",
            "0.2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv444p",
        ],
        &even,
    );
    let ordinary = dir.path().join("ordinary.mp4");
    make_h264(&ordinary, "320x240", 25, 0.2);

    for (input, size, pix_fmt) in [
        (&plain, (321, 241), "yuv444p"),
        (&rotated, (241, 321), "yuv444p"),
        (&even, (320, 240), "yuv444p"),
        (&ordinary, (320, 240), "yuv420p"),
    ] {
        let name = input.file_stem().unwrap().to_string_lossy().into_owned();
        for container in ["mp4", "mkv"] {
            let out = dir.path().join(format!("{name}-styled.{container}"));
            fresco([
                s("run"),
                p(input),
                s("-o"),
                p(&out),
                s("--style"),
                s("vintage"),
            ])
            .ok();
            assert_eq!(
                displayed_size(&out),
                size,
                "{name} -> {container}: the displayed size changed"
            );
            assert_eq!(video_pix_fmt(&out), pix_fmt, "{name} -> {container}");
            assert_eq!(frame_md5s(&out).len(), 5, "{name} -> {container}");
        }
    }
}

#[test]
fn max_side_keeps_the_output_size_and_frame_count() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.mp4");
    make_h264(&input, "96x64", 25, 0.8);
    let out = dir.path().join("small-model.mp4");
    let json = identity_run(dir.path(), &input, &out, &["--max-side", "32", "--json"])
        .ok()
        .json();
    assert_eq!(video_size(&out), (96, 64));
    assert_eq!(frame_md5s(&out).len(), frame_md5s(&input).len());
    assert_same_times(&frame_times(&input), &frame_times(&out));
    assert_eq!(json["outputs"][0]["width"], 96, "{json}");
    assert_eq!(json["outputs"][0]["height"], 64, "{json}");
    // Through a 32-pixel model the picture is blurred but still the same picture.
    let (_, _, a) = decode_rgb(&input);
    let (_, _, b) = decode_rgb(&out);
    let db = psnr(&a[0], &b[0]);
    assert!(
        db > 12.0 && db.is_finite(),
        "frame 0 PSNR vs input {db:.1} dB: not a scaled copy"
    );
}

#[test]
fn several_videos_go_into_a_folder_with_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.mp4"), dir.path().join("b.mp4"));
    make_h264(&a, "64x48", 25, 0.4);
    make_h264(&b, "48x32", 25, 0.6);
    let outdir = dir.path().join("styled");
    std::fs::create_dir(&outdir).unwrap();
    let target = format!("{}/", outdir.display());
    let model = identity_model(dir.path());
    let out = fresco([
        s("run"),
        p(&a),
        p(&b),
        s("-o"),
        s(&target),
        s("--model"),
        p(&model),
        s("--json"),
    ])
    .ok();
    assert_eq!(dir_names(&outdir), ["a.mp4", "b.mp4"]);
    assert_eq!(frame_md5s(&outdir.join("a.mp4")).len(), 10);
    assert_eq!(frame_md5s(&outdir.join("b.mp4")).len(), 15);
    assert_eq!(video_size(&outdir.join("b.mp4")), (48, 32));
    let json = out.json();
    assert_eq!(json["frames"], 25, "{json}");
    assert_eq!(
        json["outputs"].as_array().map(|o| o.len()),
        Some(2),
        "{json}"
    );
}

#[test]
fn colour_tags_and_10_bit_depth_survive() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("ten.mkv");
    make_video(
        &clip,
        "64x48",
        10,
        0.5,
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error",
            "-pix_fmt",
            "yuv420p10le",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
            "-colorspace",
            "bt709",
            "-color_range",
            "tv",
        ],
    );
    let out = dir.path().join("styled.mkv");
    fresco([
        s("run"),
        p(&clip),
        s("-o"),
        p(&out),
        s("--style"),
        s("vintage"),
        s("-q"),
    ])
    .ok();
    let stream = &streams_of(&out, "video")[0];
    assert_eq!(stream["pix_fmt"], "yuv420p10le", "{stream}");
    for key in ["color_primaries", "color_transfer", "color_space"] {
        assert_eq!(stream[key], "bt709", "{key}: {stream}");
    }
    assert_eq!(stream["color_range"], "tv", "{stream}");
}

/// An RGB source (lossless ffv1 in bgr0, as screen captures and RGB masters are) styled into
/// H.264 (4:4:4, keeping its chroma): ffprobe calls its matrix `gbr`, which ffmpeg's `-colorspace` does
/// not take, so the job failed at the encoder; the output is BT.709 at limited range.
#[test]
fn an_rgb_source_is_styled_into_yuv() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("rgb.mkv");
    make_video(
        &clip,
        "64x48",
        10,
        0.5,
        &["-c:v", "ffv1", "-pix_fmt", "bgr0"],
    );
    assert_eq!(streams_of(&clip, "video")[0]["color_space"], "gbr");
    let out = dir.path().join("styled.mkv");
    fresco([
        s("run"),
        p(&clip),
        s("-o"),
        p(&out),
        s("--style"),
        s("vintage"),
        s("-q"),
    ])
    .ok();
    let stream = &streams_of(&out, "video")[0];
    assert_eq!(stream["pix_fmt"], "yuv444p", "{stream}");
    assert_eq!(stream["color_space"], "bt709", "{stream}");
    assert_eq!(stream["color_range"], "tv", "{stream}");
    assert_eq!(frame_md5s(&out).len(), 5);
}

#[test]
fn mpeg_ts_with_a_start_offset_and_long_open_gops_is_frame_exact() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("broadcast.ts");
    // Keyframes 8 s apart (longer than the chunk decoder's seek margin), open GOPs, B-frames,
    // and timestamps that start at 100 s, as broadcast captures do.
    av_clip(
        &input,
        "10",
        "mp2",
        &[
            "-g",
            "200",
            "-bf",
            "3",
            "-x264opts",
            "open-gop=1",
            "-output_ts_offset",
            "100",
        ],
    );
    let times = frame_times(&input);
    assert!(
        times[0] >= 99.9,
        "the clip does not start late: {}",
        times[0]
    );
    let output = dir.path().join("broadcast-out.mkv");
    identity_run(dir.path(), &input, &output, LOSSLESS_FFV1).ok();
    // Frames and their times (the 100 s offset is kept, as with every input); the container
    // duration of a .mkv counts from zero, so it is not compared here.
    assert_eq!(frame_md5s(&input), frame_md5s(&output));
    assert_same_times(&times, &frame_times(&output));
    assert_eq!(audio_md5(&input, 0), audio_md5(&output, 0));
}
