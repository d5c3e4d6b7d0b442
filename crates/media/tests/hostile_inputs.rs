//! Files that try to make ffprobe open other files (HLS playlists, ffconcat scripts, image
//! sequences, in several forms, all named `.mp4`), files whose headers hide their length, and a
//! chapter bomb, against the real ffprobe: each is refused with its own reason or limit, and a
//! secret outside the data folder is never read (its bytes appear in no output or message).
//!
//! Needs ffmpeg and ffprobe (scripts/setup.sh installs them).

use std::path::{Path, PathBuf};
use std::time::Duration;

use fresco_core::MediaLimits;
use fresco_media::probe::{frame_times, probe, ProbeError, ScanLimits};
use fresco_media::process::Tool;
use fresco_testkit::media::{chapter_bomb, clip, ffmpeg};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A folder with `data/` (where users' files are) and `secret/clip.mp4` beside it: a video that
/// no user's file may reach.
struct Dirs {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    secret: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let secret_dir = tmp.path().join("secret");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&secret_dir).unwrap();
    let secret = secret_dir.join("clip.mp4");
    clip(&secret, "1", &[]);
    Dirs {
        _tmp: tmp,
        data,
        secret,
    }
}

fn playlist(entry: &str) -> String {
    format!("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{entry}\n#EXT-X-ENDLIST\n")
}

/// A DASH manifest whose one representation is the file at `url`.
fn dash(url: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
         profiles=\"urn:mpeg:dash:profile:isoff-on-demand:2011\" type=\"static\" \
         mediaPresentationDuration=\"PT1S\" minBufferTime=\"PT1S\"><Period><AdaptationSet \
         mimeType=\"video/mp4\"><Representation id=\"1\" bandwidth=\"1000\" width=\"64\" \
         height=\"48\" codecs=\"avc1.64000a\"><BaseURL>{url}</BaseURL></Representation>\
         </AdaptationSet></Period></MPD>\n"
    )
}

/// An SDP description of an RTP stream on a local port.
const SDP: &str = "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n\
                   m=video 5004 RTP/AVP 96\na=rtpmap:96 H264/90000\n";

fn refused(path: &Path) -> String {
    match probe(&Tool::ffprobe(), path, TIMEOUT) {
        Err(ProbeError::Refused { reason, .. }) => reason,
        other => panic!("{}: expected a refusal, got {other:?}", path.display()),
    }
}

#[test]
fn files_that_open_other_files_are_refused_by_what_they_are() {
    let d = dirs();
    let secret = d.secret.display().to_string();
    let relative = format!("../secret/{}", "clip.mp4");
    let forms: Vec<(&str, String, &str)> = vec![
        (
            "playlist, absolute path",
            playlist(&secret),
            "is an HLS playlist, which can open other files",
        ),
        (
            "playlist, relative path",
            playlist(&relative),
            "is an HLS playlist",
        ),
        (
            "playlist, file: URL",
            playlist(&format!("file:{secret}")),
            "is an HLS playlist",
        ),
        (
            "playlist, file:// URL",
            playlist(&format!("file://{secret}")),
            "is an HLS playlist",
        ),
        (
            "master playlist naming a nested playlist",
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\ninner.m3u8\n".into(),
            "is an HLS playlist",
        ),
        (
            "playlist of an image pattern",
            playlist("img%03d.png"),
            "is an HLS playlist",
        ),
        (
            "DASH manifest, absolute path",
            dash(&secret),
            "is a DASH manifest, which can open other files",
        ),
        (
            "SDP description",
            SDP.to_string(),
            "is a network session description",
        ),
        (
            "ffconcat script, absolute path",
            format!("ffconcat version 1.0\nfile {secret}\n"),
            "is an ffconcat script, which can open other files",
        ),
        (
            "ffconcat script, relative path",
            format!("ffconcat version 1.0\nfile '{relative}'\n"),
            "is an ffconcat script",
        ),
    ];
    std::fs::write(d.data.join("inner.m3u8"), playlist(&secret)).unwrap();
    for (i, (name, text, says)) in forms.iter().enumerate() {
        let path = d.data.join(format!("clip{i}.mp4"));
        std::fs::write(&path, text).unwrap();
        let reason = refused(&path);
        assert!(reason.contains(says), "{name}: {reason}");
        assert!(
            reason.contains("fresco reads only single-file containers"),
            "{name}: {reason}"
        );
    }

    // An image-sequence pattern whose name exists as a file, with frames beside it.
    for n in 1..=3 {
        ffmpeg(
            &["-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "1"],
            &d.data.join(format!("img{n:03}.png")),
        );
    }
    let pattern = d.data.join("img%03d.png");
    std::fs::copy(d.data.join("img001.png"), &pattern).unwrap();
    assert!(refused(&pattern).contains("is an image-sequence pattern"));

    // A pattern named like a video: never expanded. Missing, it is a missing file (not
    // `frame001.mp4`, the secret, beside it); present, it is read as the one file it names.
    let frames = d.data.join("frame%03d.mp4");
    std::fs::copy(&d.secret, d.data.join("frame001.mp4")).unwrap();
    match probe(&Tool::ffprobe(), &frames, TIMEOUT) {
        Err(ProbeError::NotMedia { reason, .. }) => {
            assert!(reason.contains("No such file"), "{reason}")
        }
        other => panic!("frame%03d.mp4: expected no such file, got {other:?}"),
    }
    std::fs::write(&frames, playlist(&secret)).unwrap();
    assert!(refused(&frames).contains("is an HLS playlist"));

    // A protocol in a relative name is a file name, never a protocol.
    let concat = PathBuf::from(format!("concat:{secret}|{secret}"));
    match probe(&Tool::ffprobe(), &concat, TIMEOUT) {
        Err(ProbeError::NotMedia { reason, .. }) => {
            assert!(reason.contains("No such file"), "{reason}")
        }
        other => panic!("concat: expected no such file, got {other:?}"),
    }

    // The secret itself is a fine video: the refusals are about the files, not the tool.
    assert!(probe(&Tool::ffprobe(), &d.secret, TIMEOUT).is_ok());
}

fn scan(path: &Path, limits: &MediaLimits) -> Result<usize, ProbeError> {
    let report = probe(&Tool::ffprobe(), path, TIMEOUT)?;
    report
        .check_limits(limits, "input")
        .map_err(ProbeError::OverLimit)?;
    let video = report.video_stream().unwrap();
    let scan = ScanLimits {
        limits,
        time_base: video.time_base().unwrap(),
        subject: "input",
    };
    let ordinal = report.video_stream_ordinal().unwrap();
    frame_times(&Tool::ffprobe(), path, ordinal, scan, TIMEOUT).map(|t| t.pts.len())
}

fn breach(result: Result<usize, ProbeError>) -> (String, String) {
    match result {
        Err(ProbeError::OverLimit(b)) => (b.code.to_string(), b.message),
        other => panic!("expected a limit breach, got {other:?}"),
    }
}

#[test]
fn limits_apply_to_what_the_scan_measures() {
    let d = dirs();
    // 5 s at 25 fps with no duration in their headers.
    let live = d.data.join("live.mkv");
    clip(&live, "5", &["-f", "matroska", "-live", "1"]);
    let raw = d.data.join("raw.h264");
    clip(&raw, "5", &["-f", "h264"]);
    for path in [&live, &raw] {
        let report = probe(&Tool::ffprobe(), path, TIMEOUT).unwrap();
        assert_eq!(report.duration_seconds(), None, "{}", path.display());
    }
    let two_seconds = MediaLimits {
        max_seconds: Some(2.0),
        ..MediaLimits::none()
    };
    for path in [&live, &raw] {
        let (code, message) = breach(scan(path, &two_seconds));
        assert_eq!(code, "input-too-long", "{message}");
        assert!(message.contains("by its frames' timestamps"), "{message}");
        assert!(message.contains("--max-input-seconds"), "{message}");
    }
    let fifty_frames = MediaLimits {
        max_frames: Some(50),
        ..MediaLimits::none()
    };
    for path in [&live, &raw] {
        let (code, message) = breach(scan(path, &fifty_frames));
        assert_eq!(code, "input-too-many-frames", "{message}");
        // The scan stopped at the first frame over the limit.
        assert!(message.contains("at least 51 frames"), "{message}");
    }
    let slow = MediaLimits {
        max_fps: Some(10.0),
        ..MediaLimits::none()
    };
    let (code, message) = breach(scan(&live, &slow));
    assert_eq!(code, "input-frame-rate-too-high", "{message}");
    assert!(message.contains("25.0 frames per second"), "{message}");
    let small = MediaLimits {
        max_width: Some(32),
        ..MediaLimits::none()
    };
    assert_eq!(breach(scan(&raw, &small)).0, "input-dimensions-too-large");
    // Within every limit: all 125 frames.
    let generous = MediaLimits {
        max_seconds: Some(10.0),
        max_frames: Some(1000),
        max_fps: Some(60.0),
        max_width: Some(64),
        max_height: Some(48),
        max_pixels: Some(64 * 48),
        max_streams: Some(1),
        max_chapters: Some(0),
    };
    assert_eq!(scan(&live, &generous).unwrap(), 125);
    assert_eq!(scan(&raw, &generous).unwrap(), 125);

    // A raw stream whose frames grow mid-stream: the header (its first frames) says 64x48,
    // the scan finds 640x480 frames after them.
    let small = d.data.join("small.h264");
    clip(&small, "0.4", &["-f", "h264"]);
    let large = d.data.join("large.h264");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x480:rate=25",
            "-t",
            "0.4",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "h264",
        ],
        &large,
    );
    let grows = d.data.join("grows.h264");
    let mut bytes = std::fs::read(&small).unwrap();
    bytes.extend(std::fs::read(&large).unwrap());
    std::fs::write(&grows, bytes).unwrap();
    let narrow = MediaLimits {
        max_width: Some(320),
        ..MediaLimits::none()
    };
    let report = probe(&Tool::ffprobe(), &grows, TIMEOUT).unwrap();
    assert_eq!(report.video_stream().unwrap().width, Some(64));
    let (code, message) = breach(scan(&grows, &narrow));
    assert_eq!(code, "input-dimensions-too-large", "{message}");
    assert!(message.contains("640x480"), "{message}");
}

#[test]
fn a_chapter_bomb_is_counted_or_cut_off_never_kept() {
    let d = dirs();
    let limits = MediaLimits {
        max_chapters: Some(1000),
        ..MediaLimits::none()
    };
    // 100,000 chapters: counted (not kept) and over the limit.
    let bomb = d.data.join("bomb-100000.mkv");
    chapter_bomb(&d.secret, 100_000, &bomb);
    let report = probe(&Tool::ffprobe(), &bomb, TIMEOUT).unwrap();
    assert_eq!(report.chapter_count, 100_000);
    let breach = report.check_limits(&limits, "input").unwrap_err();
    assert_eq!(breach.code, "input-too-many-chapters");
    assert!(breach.message.contains("100000 chapters"), "{breach}");
    // 250,000: ffprobe's report passes the byte cap, and the probe stops reading there.
    let bigger = d.data.join("bomb-250000.mkv");
    chapter_bomb(&d.secret, 250_000, &bigger);
    match probe(&Tool::ffprobe(), &bigger, TIMEOUT) {
        Err(ProbeError::OverLimit(b)) => {
            assert_eq!(b.code, "input-too-complex");
            assert!(b.message.contains("very many"), "{b}");
        }
        other => panic!("expected the report's cap, got {other:?}"),
    }
}
