//! ffprobe JSON saved from real files (Debian's ffprobe 5.1), parsed by the pure functions.

use fresco_media::probe::ProbeReport;

fn load(name: &str) -> ProbeReport {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    ProbeReport::from_json(&std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn rotated_h264_reports_rotation_size_and_audio() {
    let report = load("probe_rotated_h264_aac.json");
    let video = report.video_stream().unwrap();
    assert_eq!((video.width, video.height), (Some(320), Some(240)));
    assert_eq!(video.rotation(), 90);
    assert_eq!(video.time_base(), Some((1, 12800)));
    assert_eq!(video.bit_depth(), 8);
    assert!(video.hdr_transfer().is_none());
    assert_eq!(report.video_stream_ordinal(), Some(0));
    assert!(report.streams.iter().any(|s| s.codec_type == "audio"));
    assert!((report.duration_seconds().unwrap() - 2.0).abs() < 0.1);
}

#[test]
fn audio_only_file_has_no_video_stream() {
    let report = load("probe_audio_only.json");
    assert!(report.video_stream().is_none());
}

#[test]
fn hdr10_is_recognised_with_its_depth() {
    let report = load("probe_hdr10_hevc_mkv.json");
    let video = report.video_stream().unwrap();
    assert_eq!(video.bit_depth(), 10);
    assert_eq!(video.hdr_transfer(), Some("smpte2084"));
    assert_eq!(video.color_primaries.as_deref(), Some("bt2020"));
    assert_eq!(
        report
            .streams
            .iter()
            .filter(|s| s.codec_type == "audio")
            .count(),
        2
    );
}
