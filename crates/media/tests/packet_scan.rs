//! The packet scan against the decode scan, on real clips made by ffmpeg: where the packets are
//! taken for frames (B-frames, a variable rate, timestamps that do not start at 0, MPEG-TS,
//! HEVC) they give exactly the decoded frames' timestamps, and where they cannot be (no
//! timestamps, an edit list that discards packets, interlacing, another codec, joined
//! recordings, size limits, a limit passed) the frames are decoded, with the same result as
//! the decode scan and its own limit messages.
//!
//! Needs ffmpeg and ffprobe (scripts/setup.sh installs them).

use std::path::Path;
use std::time::Duration;

use fresco_core::MediaLimits;
use fresco_media::packet_scan::{frame_pts, parse_packet_line, ScannedPts, Unfit};
use fresco_media::probe::{frame_times, probe, ProbeError, ScanLimits};
use fresco_media::process::Tool;
use fresco_testkit::media::{
    clip, ffmpeg, make_vfr_clip_with_audio, make_video, read_out, tool_bytes,
};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Both scans of `path`'s first video stream under `limits`: [`frame_pts`] (packets where
/// they fit) and the decode scan alone.
fn both(path: &Path, limits: &MediaLimits) -> (Result<ScannedPts, ProbeError>, Vec<i64>) {
    let report = probe(&Tool::ffprobe(), path, TIMEOUT).unwrap();
    let stream = report.video_stream().unwrap();
    let ordinal = report.video_stream_ordinal().unwrap();
    let scan = ScanLimits {
        limits,
        time_base: stream.time_base().unwrap(),
        subject: "input",
    };
    let none = MediaLimits::none();
    let unlimited = ScanLimits {
        limits: &none,
        ..scan
    };
    let decoded = frame_times(&Tool::ffprobe(), path, ordinal, unlimited, TIMEOUT)
        .unwrap()
        .pts;
    let scanned = frame_pts(&Tool::ffprobe(), path, stream, ordinal, scan, TIMEOUT);
    (scanned, decoded)
}

/// Asserts that the packets were taken for the frames and give the decoded timestamps.
fn from_packets(path: &Path) -> Vec<i64> {
    let (scanned, decoded) = both(path, &MediaLimits::none());
    let scanned = scanned.unwrap();
    assert_eq!(scanned.decoded_because, None, "{}", path.display());
    assert!(!decoded.is_empty(), "{}", path.display());
    assert_eq!(scanned.pts, decoded, "{}", path.display());
    scanned.pts
}

/// Asserts that the frames were decoded, for the `expected` reason, with the decode scan's
/// timestamps.
fn decoded(path: &Path, expected: impl Fn(&Unfit) -> bool) -> Vec<i64> {
    let (scanned, decoded) = both(path, &MediaLimits::none());
    let scanned = scanned.unwrap();
    let why = scanned.decoded_because.as_ref();
    assert!(why.is_some_and(&expected), "{}: {why:?}", path.display());
    assert_eq!(scanned.pts, decoded, "{}", path.display());
    scanned.pts
}

/// The packets' timestamps in file order, as ffprobe lists them.
fn packet_order(path: &Path) -> Vec<i64> {
    let before = [
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts,flags",
        "-of",
        "compact=p=0",
    ];
    let text = read_out("ffprobe", &before, path, &[]);
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(parse_packet_line)
        .filter_map(|p| p.pts)
        .collect()
}

fn has_encoder(name: &str) -> bool {
    let args = ["-hide_banner", "-encoders"].map(std::ffi::OsStr::new);
    let text = tool_bytes("ffmpeg", &args);
    String::from_utf8_lossy(&text)
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(name))
}

#[test]
fn packets_give_the_decoded_times_with_b_frames_a_variable_rate_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    // B-frames in a pyramid: the packets come out of presentation order.
    let pyramid = dir.path().join("pyramid.mp4");
    clip(
        &pyramid,
        "3",
        &["-bf", "3", "-x264-params", "b-pyramid=normal", "-g", "30"],
    );
    let pts = from_packets(&pyramid);
    assert_eq!(pts.len(), 75);
    let in_file = packet_order(&pyramid);
    assert!(
        in_file.windows(2).any(|w| w[1] < w[0]),
        "no B-frames: {in_file:?}"
    );

    // A variable rate: frames dropped in a pattern, so the gaps differ.
    let vfr = dir.path().join("vfr.mp4");
    make_vfr_clip_with_audio(&vfr, 3);
    let pts = from_packets(&vfr);
    let gaps: std::collections::BTreeSet<i64> = pts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() > 1, "constant gaps {gaps:?}");

    // Timestamps that start late, in three containers.
    for (name, extra) in [
        ("offset.mkv", vec!["-bf", "3", "-output_ts_offset", "10"]),
        ("offset.mp4", vec!["-bf", "2", "-output_ts_offset", "3.3"]),
        ("offset.ts", vec!["-bf", "3"]),
    ] {
        let path = dir.path().join(name);
        clip(&path, "2", &extra);
        let pts = from_packets(&path);
        assert_eq!(pts.len(), 50, "{name}");
        assert!(pts[0] > 0, "{name}: starts at {}", pts[0]);
    }

    if has_encoder("libx265") {
        let hevc = dir.path().join("hevc.mkv");
        make_video(
            &hevc,
            "64x48",
            25,
            2.0,
            &[
                "-c:v",
                "libx265",
                "-x265-params",
                "log-level=error",
                "-pix_fmt",
                "yuv420p",
            ],
        );
        assert_eq!(from_packets(&hevc).len(), 50);
    } else {
        eprintln!("this ffmpeg has no libx265: the HEVC case is not checked");
    }
}

#[test]
fn frames_are_decoded_where_packets_do_not_stand_for_them() {
    let dir = tempfile::tempdir().unwrap();
    // An elementary stream: packets without timestamps.
    let raw = dir.path().join("raw.h264");
    clip(&raw, "2", &["-f", "h264"]);
    let pts = decoded(&raw, |u| matches!(u, Unfit::NoTimestamp(_)));
    assert_eq!(pts.len(), 50);

    // Cut inside a group of pictures without re-encoding: an MP4 edit list, whose packets
    // before the cut are decoded and dropped.
    let whole = dir.path().join("whole.mp4");
    clip(&whole, "4", &["-g", "50"]);
    let cut = dir.path().join("cut.mp4");
    ffmpeg(
        &["-ss", "1.3", "-i", whole.to_str().unwrap(), "-c", "copy"],
        &cut,
    );
    let pts = decoded(&cut, |u| matches!(u, Unfit::Flagged(_)));
    assert!(
        pts.len() < packet_order(&cut).len(),
        "nothing was discarded"
    );

    // Interlaced coding.
    let interlaced = dir.path().join("interlaced.mp4");
    make_video(
        &interlaced,
        "64x48",
        25,
        1.0,
        &[
            "-c:v",
            "libx264",
            "-flags",
            "+ildct+ilme",
            "-x264opts",
            "tff=1",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    decoded(&interlaced, |u| matches!(u, Unfit::FieldOrder(_)));

    // Another codec.
    let vp9 = dir.path().join("vp9.webm");
    make_video(
        &vp9,
        "64x48",
        25,
        1.0,
        &["-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p"],
    );
    decoded(&vp9, |u| matches!(u, Unfit::Codec(c) if c == "vp9"));

    // Two recordings joined: the second's timestamps start again.
    let first = dir.path().join("a.ts");
    clip(&first, "1", &[]);
    let joined = dir.path().join("joined.ts");
    let mut bytes = std::fs::read(&first).unwrap();
    bytes.extend(std::fs::read(&first).unwrap());
    std::fs::write(&joined, bytes).unwrap();
    let pts = decoded(&joined, |u| {
        matches!(u, Unfit::BeforeFirstKeyframe(_) | Unfit::OutOfOrder(_))
    });
    assert!(pts.windows(2).any(|w| w[1] <= w[0]), "{pts:?}");
}

#[test]
fn limits_hand_the_verdict_to_the_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    clip(&path, "2", &["-bf", "3"]);
    // A size limit: only decoding measures every frame's size.
    let sized = MediaLimits {
        max_width: Some(640),
        ..MediaLimits::none()
    };
    let (scanned, decoded) = both(&path, &sized);
    let scanned = scanned.unwrap();
    assert_eq!(scanned.decoded_because, Some(Unfit::SizeLimited));
    assert_eq!(scanned.pts, decoded);
    // Over a frame limit: the decode scan's own refusal, stopped at its first frame over.
    let few = MediaLimits {
        max_frames: Some(20),
        ..MediaLimits::none()
    };
    match both(&path, &few).0 {
        Err(ProbeError::OverLimit(breach)) => {
            assert_eq!(breach.code, "input-too-many-frames");
            assert!(
                breach.message.contains("at least 21 frames"),
                "{}",
                breach.message
            );
            assert!(
                breach.message.contains("counted by decoding"),
                "{}",
                breach.message
            );
        }
        other => panic!("expected the frame limit, got {other:?}"),
    }
    // Within generous limits other than size, the packets are taken.
    let generous = MediaLimits {
        max_frames: Some(1000),
        max_seconds: Some(60.0),
        max_fps: Some(60.0),
        ..MediaLimits::none()
    };
    let (scanned, decoded) = both(&path, &generous);
    let scanned = scanned.unwrap();
    assert_eq!(scanned.decoded_because, None);
    assert_eq!(scanned.pts, decoded);
}
