//! ffprobe's JSON, parsed into typed structs by pure functions, and the per-frame timestamps of
//! the video stream counted from decoded frames (never from `nb_frames` or packets: edit lists
//! and B-frames make those differ).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::process::{ProcessError, Tool};

/// What ffprobe says about a file (`-show_format -show_streams -show_chapters`).
#[derive(Debug, Clone, Deserialize)]
pub struct ProbeReport {
    #[serde(default)]
    pub streams: Vec<StreamInfo>,
    pub format: Option<FormatInfo>,
    #[serde(default)]
    pub chapters: Vec<serde_json::Value>,
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
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{}: not a media file ffprobe can read: {reason}", path.display())]
    NotMedia {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error(transparent)]
    Tool(#[from] ProcessError),
    #[error("{}: ffprobe printed JSON we could not read: {source}", path.display())]
    BadJson {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// A failed ffprobe run means the file is not media it can read; anything else is the tool's.
fn not_media(input: &Path, e: ProcessError) -> ProbeError {
    match e {
        ProcessError::Failed { stderr_tail, .. } => ProbeError::NotMedia {
            path: input.to_path_buf(),
            reason: crate::process::last_lines(&strip_path(&stderr_tail, input), 2),
        },
        other => ProbeError::Tool(other),
    }
}

/// Runs ffprobe on a file or URL.
pub fn probe(tool: &Tool, input: &Path, timeout: Duration) -> Result<ProbeReport, ProbeError> {
    let captured = tool
        .output(
            [
                "-v".as_ref(),
                "error".as_ref(),
                "-print_format".as_ref(),
                "json".as_ref(),
                "-show_format".as_ref(),
                "-show_streams".as_ref(),
                "-show_chapters".as_ref(),
                input.as_os_str(),
            ],
            timeout,
        )
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

/// Decodes the video stream once and lists each frame's timestamp (`best_effort_timestamp`,
/// which is what ffmpeg itself gives a decoded frame). Frames without one get the previous
/// timestamp plus the previous frame's duration.
pub fn frame_times(
    tool: &Tool,
    input: &Path,
    video_ordinal: usize,
    timeout: Duration,
) -> Result<FrameTimes, ProbeError> {
    let select = format!("v:{video_ordinal}");
    let captured = tool
        .output(
            [
                "-v".as_ref(),
                "error".as_ref(),
                "-select_streams".as_ref(),
                select.as_ref(),
                "-show_entries".as_ref(),
                "frame=best_effort_timestamp,pkt_duration,duration,width,height".as_ref(),
                "-of".as_ref(),
                "compact=p=0".as_ref(),
                input.as_os_str(),
            ],
            timeout,
        )
        .map_err(|e| not_media(input, e))?;
    let text = String::from_utf8_lossy(&captured.stdout);
    let pts = parse_frame_times(&text);
    Ok(FrameTimes {
        pts,
        sizes: parse_frame_sizes(&text),
        warnings: strip_path(&captured.stderr_tail, input),
    })
}

/// Parses `compact=p=0` lines such as `pts=0|best_effort_timestamp=0|pkt_duration=512`.
pub fn parse_frame_times(text: &str) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::new();
    let mut last_duration: i64 = 0;
    for line in text.lines() {
        if !line.contains("best_effort_timestamp=") {
            continue;
        }
        let mut ts = None;
        let mut duration = None;
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
                _ => {}
            }
        }
        let ts = match (ts, out.last()) {
            (Some(ts), _) => ts,
            (None, Some(prev)) => prev + last_duration.max(1),
            (None, None) => 0,
        };
        last_duration = duration.unwrap_or(last_duration);
        out.push(ts);
    }
    out
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
    let mut sizes: Vec<FrameSize> = Vec::new();
    let frames = text
        .lines()
        .filter(|line| line.contains("best_effort_timestamp="));
    for (n, line) in frames.enumerate() {
        let field = |key: &str| {
            line.split('|')
                .filter_map(|f| f.split_once('='))
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v.parse::<u32>().ok())
        };
        let (Some(width), Some(height)) = (field("width"), field("height")) else {
            continue;
        };
        if sizes
            .last()
            .is_some_and(|s| (s.width, s.height) == (width, height))
        {
            continue;
        }
        sizes.push(FrameSize {
            frame: n as u64,
            width,
            height,
        });
    }
    sizes
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
