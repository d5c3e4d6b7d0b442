//! ffprobe's JSON, parsed into typed structs by pure functions, and the per-frame timestamps of
//! the video stream counted from decoded frames (never from `nb_frames`: edit lists and
//! B-frames make that differ; [`crate::packet_scan`] reads them from packets only where it can
//! show that the packets stand for the decoded frames, and decodes with [`frame_times`] where
//! not).
//!
//! Both runs open the file with [`crate::input::input_args`] (that file and nothing else), ask
//! ffprobe only for the fields used here (`-show_entries`), and read a bounded amount: the
//! report at most [`MAX_REPORT_BYTES`] (a file with a million chapters would print tens of
//! megabytes), the frame scan a line at a time, stopping as soon as a [`MediaLimits`] is
//! passed, so that a million-frame file never becomes a million-entry vector.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use fresco_core::{LimitBreach, MediaLimits};
use serde::Deserialize;

use crate::process::{ProcessError, Tool};

/// The most bytes of ffprobe's report read (about 200,000 chapters' worth).
pub const MAX_REPORT_BYTES: usize = 4 << 20;
/// The longest line of the frame scan.
const MAX_SCAN_LINE: usize = 4096;

/// The fields [`probe`] asks for: what [`ProbeReport`] reads, and one small field per chapter
/// (to count them).
const REPORT_ENTRIES: &str = "format=format_name,duration,nb_streams\
:stream=index,codec_type,codec_name,width,height,pix_fmt,color_range,color_space,color_transfer,\
color_primaries,r_frame_rate,avg_frame_rate,time_base,duration,nb_frames,bits_per_raw_sample,\
field_order,has_b_frames\
:stream_disposition=attached_pic:stream_tags=rotate:stream_side_data=side_data_type,rotation\
:chapter=id";

/// What ffprobe says about a file: the fields [`probe`] asks for, and the number of chapters.
#[derive(Debug, Clone, Deserialize)]
pub struct ProbeReport {
    #[serde(default)]
    pub streams: Vec<StreamInfo>,
    pub format: Option<FormatInfo>,
    /// How many chapters the file has (counted while parsing; their contents are not kept).
    #[serde(default, rename = "chapters", deserialize_with = "count_entries")]
    pub chapter_count: u64,
}

/// Counts a JSON array's entries without keeping them.
fn count_entries<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    struct Counter;
    impl<'de> serde::de::Visitor<'de> for Counter {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
            let mut n = 0;
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                n += 1;
            }
            Ok(n)
        }
    }
    deserializer.deserialize_seq(Counter)
}

/// The container.
#[derive(Debug, Clone, Deserialize)]
pub struct FormatInfo {
    pub format_name: String,
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub nb_streams: u32,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// One stream of the container.
#[derive(Debug, Clone, Deserialize)]
pub struct StreamInfo {
    pub index: u32,
    #[serde(default)]
    pub codec_type: String,
    #[serde(default)]
    pub codec_name: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub pix_fmt: Option<String>,
    pub color_range: Option<String>,
    pub color_space: Option<String>,
    pub color_transfer: Option<String>,
    pub color_primaries: Option<String>,
    pub r_frame_rate: Option<String>,
    pub avg_frame_rate: Option<String>,
    pub time_base: Option<String>,
    /// When the stream starts, in seconds (negative for Opus, whose first samples are skipped).
    #[serde(default)]
    pub start_time: Option<String>,
    pub duration: Option<String>,
    /// Frames in the stream as the container's index says (MP4, MOV), where it says.
    #[serde(default)]
    pub nb_frames: Option<String>,
    pub bits_per_raw_sample: Option<String>,
    /// `progressive`, or how the fields of an interlaced stream are ordered (`tt`, `bb`, ...).
    #[serde(default)]
    pub field_order: Option<String>,
    /// How many frames the decoder holds to put frames in presentation order (B-frames).
    #[serde(default)]
    pub has_b_frames: Option<i64>,
    #[serde(default)]
    pub disposition: BTreeMap<String, i64>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub side_data_list: Vec<SideData>,
}

/// Stream side data; only the display matrix matters here.
#[derive(Debug, Clone, Deserialize)]
pub struct SideData {
    #[serde(default)]
    pub side_data_type: String,
    pub rotation: Option<f64>,
}

impl StreamInfo {
    /// A cover picture (an MP3's album art) is a video stream that is not a video.
    pub fn is_attached_picture(&self) -> bool {
        self.disposition.get("attached_pic").copied().unwrap_or(0) != 0
    }

    /// Rotation that players apply, in degrees counter-clockwise, normalised to 0, 90, 180, 270.
    pub fn rotation(&self) -> i32 {
        let from_side_data = self
            .side_data_list
            .iter()
            .find_map(|s| s.rotation)
            .map(|r| r.round() as i32);
        let from_tag = self.tags.get("rotate").and_then(|r| r.parse::<i32>().ok());
        let degrees = from_side_data.or(from_tag).unwrap_or(0);
        degrees.rem_euclid(360)
    }

    /// The stream's time base as (num, den).
    pub fn time_base(&self) -> Option<(u64, u64)> {
        self.time_base.as_deref().and_then(parse_ratio)
    }

    /// Bits per colour sample of the decoded pixel format (8 for yuv420p, 10 for yuv420p10le).
    pub fn bit_depth(&self) -> u32 {
        if let Some(bits) = self
            .bits_per_raw_sample
            .as_deref()
            .and_then(|b| b.parse::<u32>().ok())
            .filter(|b| *b > 0)
        {
            return bits;
        }
        self.pix_fmt.as_deref().map(pix_fmt_bit_depth).unwrap_or(8)
    }

    /// A transfer function that marks HDR content (PQ or HLG).
    pub fn hdr_transfer(&self) -> Option<&str> {
        match self.color_transfer.as_deref() {
            Some(t @ ("smpte2084" | "arib-std-b67")) => Some(t),
            _ => None,
        }
    }
}

/// Bits per sample from a pixel format's name (`yuv420p10le` -> 10, `p010le` -> 10, `rgb48le` -> 16).
pub fn pix_fmt_bit_depth(pix_fmt: &str) -> u32 {
    let name = pix_fmt.trim_end_matches("le").trim_end_matches("be");
    match name {
        "p010" => return 10,
        "p012" => return 12,
        "p016" | "rgb48" | "bgr48" | "rgba64" | "bgra64" => return 16,
        _ => {}
    }
    let digits: String = name
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    match digits.parse::<u32>() {
        Ok(bits @ 9..=16) if name.contains('p') || name.starts_with("gray") => bits,
        _ => 8,
    }
}

/// Parses "num/den" (also "num:den").
pub fn parse_ratio(text: &str) -> Option<(u64, u64)> {
    let (num, den) = text.split_once(['/', ':'])?;
    let num = num.trim().parse().ok()?;
    let den: u64 = den.trim().parse().ok()?;
    if den == 0 {
        return None;
    }
    Some((num, den))
}

impl ProbeReport {
    /// Parses ffprobe's JSON.
    pub fn from_json(json: &[u8]) -> Result<ProbeReport, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// The first real video stream (cover pictures excluded).
    pub fn video_stream(&self) -> Option<&StreamInfo> {
        self.streams
            .iter()
            .find(|s| s.codec_type == "video" && !s.is_attached_picture())
    }

    /// Index of that stream among the video streams (`0:v:N` in ffmpeg's terms).
    pub fn video_stream_ordinal(&self) -> Option<usize> {
        let target = self.video_stream()?.index;
        self.streams
            .iter()
            .filter(|s| s.codec_type == "video")
            .position(|s| s.index == target)
    }

    /// The container's duration in seconds, where known.
    pub fn duration_seconds(&self) -> Option<f64> {
        self.format.as_ref()?.duration.as_deref()?.parse().ok()
    }

    /// Checks what the report says against `limits`: the header's duration (where it has
    /// one), the video's frame size, and the counts of streams and chapters. The frame scan
    /// checks what decoding finds ([`frame_times`]).
    pub fn check_limits(&self, limits: &MediaLimits, subject: &str) -> Result<(), LimitBreach> {
        if let Some(seconds) = self.duration_seconds() {
            limits.check_seconds(subject, seconds, false)?;
        }
        if let Some(video) = self.video_stream() {
            limits.check_size(subject, video.width.unwrap_or(0), video.height.unwrap_or(0))?;
        }
        let declared = self.format.as_ref().map_or(0, |f| u64::from(f.nb_streams));
        limits.check_streams(subject, declared.max(self.streams.len() as u64))?;
        limits.check_chapters(subject, self.chapter_count)
    }
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{}: not a media file ffprobe can read: {reason}", path.display())]
    NotMedia {
        path: std::path::PathBuf,
        reason: String,
    },
    /// The file is of a kind that can open other files (or names a protocol): refused.
    #[error("{}: {reason}", path.display())]
    Refused {
        path: std::path::PathBuf,
        reason: String,
    },
    /// What was measured (or ffprobe's report itself) is over a limit.
    #[error(transparent)]
    OverLimit(LimitBreach),
    #[error(transparent)]
    Tool(#[from] ProcessError),
    #[error("{}: ffprobe printed JSON we could not read: {source}", path.display())]
    BadJson {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// A failed ffprobe run means the file is not media it can read, or of a kind that is refused;
/// a report over the byte cap is a file with too much in it; anything else is the tool's.
pub(crate) fn not_media(input: &Path, e: ProcessError) -> ProbeError {
    match e {
        ProcessError::Failed { stderr_tail, .. } => match crate::input::refusal(&stderr_tail) {
            Some(refused) => ProbeError::Refused {
                path: input.to_path_buf(),
                reason: refused.reason(),
            },
            None => ProbeError::NotMedia {
                path: input.to_path_buf(),
                reason: crate::process::last_lines(&strip_path(&stderr_tail, input), 2),
            },
        },
        ProcessError::OutputTooLarge { cap, .. } => ProbeError::OverLimit(LimitBreach {
            code: "input-too-complex",
            message: format!(
                "{}: ffprobe's description of the file is over {} MiB (it declares very many \
                 chapters, streams or tags); fresco reads at most that",
                input.display(),
                cap >> 20
            ),
        }),
        other => ProbeError::Tool(other),
    }
}

/// Runs ffprobe on a file, asking only for the fields the report reads.
pub fn probe(tool: &Tool, input: &Path, timeout: Duration) -> Result<ProbeReport, ProbeError> {
    let mut args: Vec<std::ffi::OsString> = [
        "-v",
        "error",
        "-print_format",
        "json=c=1",
        "-show_entries",
        REPORT_ENTRIES,
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.extend(crate::input::input_args(input));
    let captured = tool
        .output_capped(&args, timeout, MAX_REPORT_BYTES)
        .map_err(|e| not_media(input, e))?;
    let report = ProbeReport::from_json(&captured.stdout).map_err(|e| ProbeError::BadJson {
        path: input.to_path_buf(),
        source: e,
    })?;
    if report.streams.is_empty() {
        return Err(ProbeError::NotMedia {
            path: input.to_path_buf(),
            reason: "it has no streams".into(),
        });
    }
    Ok(report)
}

/// ffmpeg prefixes messages with the input path; the path is already in our message.
fn strip_path(text: &str, path: &Path) -> String {
    let p = path.to_string_lossy();
    text.replace(&format!("{p}: "), "")
}

/// The presentation timestamps of every decoded frame of one video stream, in its time base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameTimes {
    pub pts: Vec<i64>,
    /// The first frame's picture size and each change of it (see [`parse_frame_sizes`]).
    pub sizes: Vec<FrameSize>,
    /// Decoder complaints (a truncated or corrupt file); empty for a clean file.
    pub warnings: String,
}

/// What a frame scan measures against, besides the limits: the stream's time base (for
/// durations) and how the file is named in messages.
#[derive(Debug, Clone, Copy)]
pub struct ScanLimits<'a> {
    pub limits: &'a MediaLimits,
    pub time_base: (u64, u64),
    pub subject: &'a str,
}

impl ScanLimits<'_> {
    /// `ticks` of the stream's time base, in seconds.
    pub(crate) fn seconds(&self, ticks: i64) -> f64 {
        let (num, den) = self.time_base;
        ticks as f64 * num as f64 / den.max(1) as f64
    }

    /// The limits a scan checks as it goes: at least `frames` frames, spanning at least
    /// `span` ticks.
    pub(crate) fn check_so_far(&self, frames: u64, span: i64) -> Result<(), LimitBreach> {
        self.limits
            .check_frames(self.subject, frames, true)
            .and_then(|()| {
                self.limits
                    .check_seconds(self.subject, self.seconds(span), true)
            })
    }
}

/// ffprobe's arguments that print `entries` (`-show_entries`) of the `video_ordinal`-th video
/// stream of `input`, one `compact=p=0` line each.
pub(crate) fn stream_entries_args(
    input: &Path,
    video_ordinal: usize,
    entries: &str,
) -> Vec<std::ffi::OsString> {
    let select = format!("v:{video_ordinal}");
    let mut args: Vec<std::ffi::OsString> = [
        "-v",
        "error",
        "-select_streams",
        &select,
        "-show_entries",
        entries,
        "-of",
        "compact=p=0",
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.extend(crate::input::input_args(input));
    args
}

/// Decodes the video stream once and lists each frame's timestamp (`best_effort_timestamp`,
/// which is what ffmpeg itself gives a decoded frame). Frames without one get the previous
/// timestamp plus the previous frame's duration. Each frame is checked against the limits as it
/// comes (count, time span, size), and the scan stops at the first one passed; the frame rate
/// is checked at the end.
pub fn frame_times(
    tool: &Tool,
    input: &Path,
    video_ordinal: usize,
    scan: ScanLimits<'_>,
    timeout: Duration,
) -> Result<FrameTimes, ProbeError> {
    let args = stream_entries_args(
        input,
        video_ordinal,
        "frame=best_effort_timestamp,pkt_duration,duration,width,height",
    );
    let mut parser = FrameTimeParser::default();
    let (mut lowest, mut highest) = (i64::MAX, i64::MIN);
    let ended = tool
        .each_line(&args, timeout, MAX_SCAN_LINE, |line| {
            let Some(frame) = parser.push_line(line) else {
                return ControlFlow::Continue(());
            };
            lowest = lowest.min(frame.pts);
            highest = highest.max(frame.pts);
            let count = parser.pts.len() as u64;
            let checked = scan.check_so_far(count, highest - lowest).and_then(|()| {
                match (frame.width, frame.height) {
                    (Some(w), Some(h)) => scan.limits.check_size(scan.subject, w, h),
                    _ => Ok(()),
                }
            });
            match checked {
                Ok(()) => ControlFlow::Continue(()),
                Err(breach) => ControlFlow::Break(breach),
            }
        })
        .map_err(|e| not_media(input, e))?;
    if let Some(breach) = ended.stopped {
        return Err(ProbeError::OverLimit(breach));
    }
    let FrameTimeParser { pts, sizes, .. } = parser;
    if pts.len() >= 2 {
        scan.limits
            .check_fps(
                scan.subject,
                pts.len() as u64,
                scan.seconds(highest - lowest),
            )
            .map_err(ProbeError::OverLimit)?;
    }
    Ok(FrameTimes {
        pts,
        sizes,
        warnings: strip_path(&ended.stderr_tail, input),
    })
}

/// One frame of the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScannedFrame {
    pts: i64,
    width: Option<u32>,
    height: Option<u32>,
}

/// Turns the scan's lines into timestamps, one line at a time.
#[derive(Debug, Default)]
struct FrameTimeParser {
    pts: Vec<i64>,
    /// The first frame's picture size and each change of it.
    sizes: Vec<FrameSize>,
    last_duration: i64,
}

impl FrameTimeParser {
    /// Parses a `compact=p=0` line such as `best_effort_timestamp=0|pkt_duration=512|width=64`;
    /// `None` for a line that is not a frame.
    fn push_line(&mut self, line: &str) -> Option<ScannedFrame> {
        if !line.contains("best_effort_timestamp=") {
            return None;
        }
        let mut ts = None;
        let mut duration = None;
        let (mut width, mut height) = (None, None);
        for field in line.split('|') {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            match key {
                "best_effort_timestamp" => ts = value.parse::<i64>().ok(),
                "duration" | "pkt_duration" => {
                    if let Ok(d) = value.parse::<i64>() {
                        duration.get_or_insert(d);
                    }
                }
                "width" => width = value.parse::<u32>().ok(),
                "height" => height = value.parse::<u32>().ok(),
                _ => {}
            }
        }
        let ts = match (ts, self.pts.last()) {
            (Some(ts), _) => ts,
            (None, Some(prev)) => prev.saturating_add(self.last_duration.max(1)),
            (None, None) => 0,
        };
        self.last_duration = duration.unwrap_or(self.last_duration);
        self.pts.push(ts);
        if let (Some(width), Some(height)) = (width, height) {
            let changed = self
                .sizes
                .last()
                .is_none_or(|s| (s.width, s.height) != (width, height));
            if changed {
                self.sizes.push(FrameSize {
                    frame: self.pts.len() as u64 - 1,
                    width,
                    height,
                });
            }
        }
        Some(ScannedFrame {
            pts: ts,
            width,
            height,
        })
    }
}

/// Parses `compact=p=0` lines such as `pts=0|best_effort_timestamp=0|pkt_duration=512`.
pub fn parse_frame_times(text: &str) -> Vec<i64> {
    let mut parser = FrameTimeParser::default();
    for line in text.lines() {
        parser.push_line(line);
    }
    parser.pts
}

/// A decoded frame's picture size, from frame number `frame` (in decode order) on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSize {
    pub frame: u64,
    pub width: u32,
    pub height: u32,
}

/// The first frame's size and each frame where the size changes, from the same `compact=p=0`
/// lines as [`parse_frame_times`] (with `width=W|height=H`). Two broadcasts cut together, or a
/// stream that adapts its resolution, decode to frames of more than one size.
pub fn parse_frame_sizes(text: &str) -> Vec<FrameSize> {
    let mut parser = FrameTimeParser::default();
    for line in text.lines() {
        parser.push_line(line);
    }
    parser.sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_list_the_first_and_each_change() {
        let text = "best_effort_timestamp=0|width=96|height=64\n\
                    best_effort_timestamp=1|width=96|height=64\n\
                    best_effort_timestamp=2|width=64|height=48\n\
                    best_effort_timestamp=3|width=N/A|height=N/A\n\
                    best_effort_timestamp=4|width=64|height=48\n\
                    best_effort_timestamp=5|width=96|height=64\n";
        let sizes = parse_frame_sizes(text);
        let plain: Vec<(u64, u32, u32)> =
            sizes.iter().map(|s| (s.frame, s.width, s.height)).collect();
        assert_eq!(plain, [(0, 96, 64), (2, 64, 48), (5, 96, 64)]);
        assert!(parse_frame_sizes("best_effort_timestamp=0|width=8|height=8").len() == 1);
    }

    #[test]
    fn bit_depth_from_pixel_format_names() {
        assert_eq!(pix_fmt_bit_depth("yuv420p"), 8);
        assert_eq!(pix_fmt_bit_depth("yuv420p10le"), 10);
        assert_eq!(pix_fmt_bit_depth("yuv444p12be"), 12);
        assert_eq!(pix_fmt_bit_depth("p010le"), 10);
        assert_eq!(pix_fmt_bit_depth("rgb48le"), 16);
        assert_eq!(pix_fmt_bit_depth("gray16le"), 16);
        assert_eq!(pix_fmt_bit_depth("rgb24"), 8);
        assert_eq!(pix_fmt_bit_depth("nv12"), 8);
    }

    #[test]
    fn frame_times_fill_gaps_from_durations() {
        let text = "best_effort_timestamp=0|pkt_duration=512\n\n\
                    best_effort_timestamp=512|pkt_duration=512\n\
                    best_effort_timestamp=N/A|pkt_duration=512\n\
                    best_effort_timestamp=2048|pkt_duration=N/A\n";
        assert_eq!(parse_frame_times(text), vec![0, 512, 1024, 2048]);
    }

    #[test]
    fn ratios_parse_and_reject_zero_denominators() {
        assert_eq!(parse_ratio("1/12800"), Some((1, 12800)));
        assert_eq!(parse_ratio("30000/1001"), Some((30000, 1001)));
        assert_eq!(parse_ratio("0/0"), None);
    }
}
