//! ffprobe's output, parsed as fresco parses it: the JSON report and every accessor on it, the
//! input limits that read it, and the frame-time lines of `-show_entries frame=pts`. A file
//! crafted to make ffprobe print odd values must not crash the server.
#![no_main]

use fresco_media::probe::{parse_frame_times, parse_ratio, pix_fmt_bit_depth, ProbeReport};
use fresco_wire::limits::InputLimits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_frame_times(text);
        let _ = parse_ratio(text);
        let _ = pix_fmt_bit_depth(text);
    }
    let Ok(report) = ProbeReport::from_json(data) else {
        return;
    };
    let _ = report.duration_seconds();
    let _ = report.video_stream_ordinal();
    if let Some(video) = report.video_stream() {
        let _ = video.rotation();
        let _ = video.time_base();
        let _ = video.bit_depth();
        let _ = video.hdr_transfer();
    }
    let _ = InputLimits::default().check_probe("input", &report);
});
