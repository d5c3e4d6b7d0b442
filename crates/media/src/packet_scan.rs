//! A video stream's frame times read from its packets, without decoding a frame: what a records
//! job's plan needs (each frame's presentation timestamp, in the order the decoder gives frames)
//! at a fraction of the cost of [`probe::frame_times`], which decodes every frame (about 0.6 ms
//! of CPU a 640x360 H.264 frame, against a few microseconds a packet).
//!
//! A packet stands for a frame only where the decoder turns each packet into one frame, shown
//! at the packet's timestamp, in timestamp order. [`packet_times`] checks that, and where it
//! cannot say so it answers why ([`Unfit`]) and [`frame_pts`] decodes instead:
//!
//! - the codec is H.264 or HEVC, coded progressive: one access unit a packet, one frame an
//!   access unit (an interlaced stream may carry a frame's two fields in two packets; other
//!   codecs have hidden frames or packed B-frames);
//! - every packet has a timestamp, none is marked to be discarded (an MP4 edit list that starts
//!   inside a group of pictures) or corrupt, and ffprobe said nothing while reading them (a
//!   truncated file);
//! - the first packet is a keyframe and no later one is shown before it (a decoder that starts
//!   at an open group's keyframe drops the pictures that lead it);
//! - passed through the decoder's own reordering (hold as many frames as the stream's
//!   `has_b_frames`, give the earliest each time), the timestamps come out strictly increasing:
//!   B-frames are put in order, and a stream whose timestamps jump back (joined recordings), or
//!   that needs more reordering than the decoder holds (whose decoder drops a frame), is left to
//!   the decoder;
//! - the job sets no limit on the picture's size: only decoding measures every frame's size,
//!   and a stream may change it at any frame.
//!
//! The frame-count, time-span and frame-rate limits are checked on the packets as they come, as
//! the decode scan checks frames; a packet over a limit hands the verdict to the decode scan
//! (which stops at its own first frame over it), so a file with millions of packets costs at
//! most the limit twice, and the message is the decoder's.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use crate::probe::{self, ProbeError, ScanLimits, StreamInfo};
use crate::process::Tool;

/// The longest line of the packet scan (`pts=...|flags=...`).
const MAX_PACKET_LINE: usize = 256;

/// Codecs whose packets are whole frames when coded progressive (see the module doc).
const PACKET_CODECS: &[&str] = &["h264", "hevc"];

/// Why a stream's packets do not stand for its frames: the frames are decoded instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unfit {
    #[error("codec {0}: only H.264 and HEVC packets are taken for frames")]
    Codec(String),
    #[error("field order {0}: only progressive streams have a frame a packet")]
    FieldOrder(String),
    #[error("the job limits the picture's size, which only decoding measures")]
    SizeLimited,
    #[error("packet {0} has no timestamp")]
    NoTimestamp(u64),
    #[error("packet {0} is marked to be discarded (an edit list) or corrupt")]
    Flagged(u64),
    #[error("the first packet is not a keyframe")]
    NoLeadingKeyframe,
    #[error("packet {0} is shown before the first keyframe")]
    BeforeFirstKeyframe(u64),
    #[error("the timestamps do not come out increasing from a reorder of {0} frames")]
    OutOfOrder(u32),
    #[error("a packet is over a limit; decoding counts")]
    OverLimit,
    #[error("ffprobe reported problems reading the packets: {0}")]
    Complaints(String),
    #[error("no packets")]
    Empty,
}

/// One line of the packet scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// `None` where ffprobe prints `N/A`.
    pub pts: Option<i64>,
    pub key: bool,
    /// Marked discard (`D`) or corrupt (`C`).
    pub flagged: bool,
}

/// Parses a `compact=p=0` line such as `pts=1024|flags=K_`; `None` for a line that is not a
/// packet.
pub fn parse_packet_line(line: &str) -> Option<Packet> {
    let (mut pts, mut flags) = (None, None);
    for field in line.split('|') {
        match field.split_once('=') {
            Some(("pts", value)) => pts = Some(value.trim().parse::<i64>().ok()),
            Some(("flags", value)) => flags = Some(value.trim()),
            _ => {}
        }
    }
    let (pts, flags) = (pts?, flags?);
    Some(Packet {
        pts,
        key: flags.contains('K'),
        flagged: flags.contains('D') || flags.contains('C'),
    })
}

/// Puts packets into the order the decoder gives their frames, checking each against the rules
/// of the module doc. Holds at most `delay + 1` timestamps besides the ones given out.
#[derive(Debug)]
pub struct PacketOrder {
    delay: u32,
    held: BinaryHeap<Reverse<i64>>,
    first: Option<i64>,
    packets: u64,
    lowest: i64,
    highest: i64,
    /// The frames' timestamps in presentation order, as the decoder gives them.
    pts: Vec<i64>,
}

impl PacketOrder {
    /// For a decoder that holds `delay` frames to reorder them (the stream's `has_b_frames`).
    pub fn new(delay: u32) -> PacketOrder {
        PacketOrder {
            delay,
            held: BinaryHeap::with_capacity(delay as usize + 2),
            first: None,
            packets: 0,
            lowest: i64::MAX,
            highest: i64::MIN,
            pts: Vec::new(),
        }
    }

    /// Packets taken so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// The span of the timestamps taken so far, in ticks (0 before two).
    pub fn span(&self) -> i64 {
        if self.packets < 2 {
            0
        } else {
            self.highest.saturating_sub(self.lowest)
        }
    }

    /// Takes the next packet in file order.
    pub fn push(&mut self, packet: Packet) -> Result<(), Unfit> {
        let n = self.packets;
        self.packets += 1;
        let pts = packet.pts.ok_or(Unfit::NoTimestamp(n))?;
        if packet.flagged {
            return Err(Unfit::Flagged(n));
        }
        match self.first {
            None if !packet.key => return Err(Unfit::NoLeadingKeyframe),
            None => self.first = Some(pts),
            Some(first) if pts < first => return Err(Unfit::BeforeFirstKeyframe(n)),
            Some(_) => {}
        }
        self.lowest = self.lowest.min(pts);
        self.highest = self.highest.max(pts);
        self.held.push(Reverse(pts));
        if self.held.len() > self.delay as usize {
            self.give_earliest()?;
        }
        Ok(())
    }

    fn give_earliest(&mut self) -> Result<(), Unfit> {
        if let Some(Reverse(next)) = self.held.pop() {
            if self.pts.last().is_some_and(|&last| next <= last) {
                return Err(Unfit::OutOfOrder(self.delay));
            }
            self.pts.push(next);
        }
        Ok(())
    }

    /// The frames' timestamps, once every packet is in.
    pub fn finish(mut self) -> Result<Vec<i64>, Unfit> {
        while !self.held.is_empty() {
            self.give_earliest()?;
        }
        if self.pts.is_empty() {
            return Err(Unfit::Empty);
        }
        Ok(self.pts)
    }
}

/// Whether `stream`'s packets may stand for its frames at all, before reading them.
pub fn check_stream(stream: &StreamInfo, scan: &ScanLimits<'_>) -> Result<(), Unfit> {
    let codec = stream.codec_name.as_deref().unwrap_or("unknown");
    if !PACKET_CODECS.contains(&codec) {
        return Err(Unfit::Codec(codec.to_string()));
    }
    match stream.field_order.as_deref() {
        Some("progressive") => {}
        other => return Err(Unfit::FieldOrder(other.unwrap_or("unknown").to_string())),
    }
    let limits = scan.limits;
    if limits.max_width.is_some() || limits.max_height.is_some() || limits.max_pixels.is_some() {
        return Err(Unfit::SizeLimited);
    }
    Ok(())
}

/// The frame times of `stream` (the `video_ordinal`-th video stream of `input`) from its
/// packets, or why they cannot be taken from there. `Err` only for what also stops a decode
/// scan (ffprobe missing, a refused file, a timeout).
pub fn packet_times(
    tool: &Tool,
    input: &Path,
    stream: &StreamInfo,
    video_ordinal: usize,
    scan: ScanLimits<'_>,
    timeout: Duration,
) -> Result<Result<Vec<i64>, Unfit>, ProbeError> {
    if let Err(unfit) = check_stream(stream, &scan) {
        return Ok(Err(unfit));
    }
    let delay = stream
        .has_b_frames
        .and_then(|d| u32::try_from(d).ok())
        .unwrap_or(0);
    let args = probe::stream_entries_args(input, video_ordinal, "packet=pts,flags");
    let mut order = PacketOrder::new(delay);
    let ended = tool
        .each_line(&args, timeout, MAX_PACKET_LINE, |line| {
            let Some(packet) = parse_packet_line(line) else {
                return ControlFlow::Continue(());
            };
            if let Err(unfit) = order.push(packet) {
                return ControlFlow::Break(unfit);
            }
            match scan.check_so_far(order.packets(), order.span()) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(Unfit::OverLimit),
            }
        })
        .map_err(|e| probe::not_media(input, e))?;
    if let Some(unfit) = ended.stopped {
        return Ok(Err(unfit));
    }
    if !ended.stderr_tail.trim().is_empty() {
        return Ok(Err(Unfit::Complaints(crate::process::last_lines(
            &ended.stderr_tail,
            2,
        ))));
    }
    let span = scan.seconds(order.span());
    let pts = match order.finish() {
        Ok(pts) => pts,
        Err(unfit) => return Ok(Err(unfit)),
    };
    if scan
        .limits
        .check_fps(scan.subject, pts.len() as u64, span)
        .is_err()
    {
        return Ok(Err(Unfit::OverLimit));
    }
    Ok(Ok(pts))
}

/// Frame timestamps found by [`frame_pts`], and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedPts {
    /// Each frame's timestamp, in the order the decoder gives the frames.
    pub pts: Vec<i64>,
    /// `None`: read from the packets; otherwise why the frames were decoded.
    pub decoded_because: Option<Unfit>,
}

/// Every frame's timestamp: from the packets where they stand for the frames
/// ([`packet_times`]), otherwise by decoding every frame ([`probe::frame_times`]); the same
/// list either way. Sizes and decoder complaints are not kept: a caller that needs them (a
/// video job's encoder) decodes.
pub fn frame_pts(
    tool: &Tool,
    input: &Path,
    stream: &StreamInfo,
    video_ordinal: usize,
    scan: ScanLimits<'_>,
    timeout: Duration,
) -> Result<ScannedPts, ProbeError> {
    let started = std::time::Instant::now();
    let unfit = match packet_times(tool, input, stream, video_ordinal, scan, timeout)? {
        Ok(pts) => {
            tracing::debug!(
                frames = pts.len(),
                ms = started.elapsed().as_millis() as u64,
                "frame times read from the packets"
            );
            return Ok(ScannedPts {
                pts,
                decoded_because: None,
            });
        }
        Err(unfit) => unfit,
    };
    let times = probe::frame_times(tool, input, video_ordinal, scan, timeout)?;
    tracing::debug!(
        frames = times.pts.len(),
        ms = started.elapsed().as_millis() as u64,
        "frame times decoded: {unfit}"
    );
    Ok(ScannedPts {
        pts: times.pts,
        decoded_because: Some(unfit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pts: i64, key: bool) -> Packet {
        Packet {
            pts: Some(pts),
            key,
            flagged: false,
        }
    }

    fn order(delay: u32, pts: &[i64]) -> Result<Vec<i64>, Unfit> {
        let mut order = PacketOrder::new(delay);
        for (i, &p) in pts.iter().enumerate() {
            order.push(packet(p, i == 0))?;
        }
        order.finish()
    }

    #[test]
    fn lines_parse_into_packets() {
        assert_eq!(
            parse_packet_line("pts=1024|flags=K_"),
            Some(packet(1024, true))
        );
        assert_eq!(
            parse_packet_line("pts=N/A|flags=__"),
            Some(Packet {
                pts: None,
                key: false,
                flagged: false
            })
        );
        assert!(parse_packet_line("pts=-5|flags=_D").unwrap().flagged);
        assert!(parse_packet_line("pts=7|flags=K_C").unwrap().flagged);
        assert_eq!(parse_packet_line(""), None);
        assert_eq!(parse_packet_line("side_data|x=1"), None);
    }

    #[test]
    fn b_frames_come_out_in_presentation_order() {
        // I0 P4 B2 b1 b3 (a B-pyramid): the decoder holds two frames.
        assert_eq!(
            order(2, &[0, 4, 2, 1, 3, 8, 6, 5, 7]),
            Ok(vec![0, 1, 2, 3, 4, 5, 6, 7, 8])
        );
        // A plain stream needs no delay; irregular gaps (variable rate) are kept.
        assert_eq!(order(0, &[10, 13, 30, 31]), Ok(vec![10, 13, 30, 31]));
    }

    #[test]
    fn what_the_decoder_would_not_give_as_is_is_unfit() {
        // More reordering than the decoder holds: it would drop a frame.
        assert_eq!(order(1, &[0, 4, 2, 1, 3]), Err(Unfit::OutOfOrder(1)));
        // Timestamps that jump back (two recordings joined).
        assert_eq!(
            order(2, &[100, 101, 102, 103, 0, 1]),
            Err(Unfit::BeforeFirstKeyframe(4))
        );
        assert_eq!(order(0, &[0, 5, 3, 6]), Err(Unfit::OutOfOrder(0)));
        // Two frames at one time.
        assert_eq!(order(2, &[0, 1, 1, 2]), Err(Unfit::OutOfOrder(2)));
        // Leading pictures of an open group, shown before the keyframe decoding starts at.
        assert_eq!(order(2, &[8, 6, 7, 12]), Err(Unfit::BeforeFirstKeyframe(1)));
        let mut o = PacketOrder::new(0);
        assert_eq!(o.push(packet(0, false)), Err(Unfit::NoLeadingKeyframe));
        let mut o = PacketOrder::new(0);
        o.push(packet(0, true)).unwrap();
        let missing = Packet {
            pts: None,
            key: false,
            flagged: false,
        };
        assert_eq!(o.push(missing), Err(Unfit::NoTimestamp(1)));
        let mut o = PacketOrder::new(0);
        let discarded = Packet {
            flagged: true,
            ..packet(0, true)
        };
        assert_eq!(o.push(discarded), Err(Unfit::Flagged(0)));
        assert_eq!(PacketOrder::new(0).finish(), Err(Unfit::Empty));
    }

    #[test]
    fn the_span_is_measured_as_packets_come() {
        let mut o = PacketOrder::new(2);
        for (i, p) in [100, 500, 300].into_iter().enumerate() {
            o.push(packet(p, i == 0)).unwrap();
        }
        assert_eq!((o.packets(), o.span()), (3, 400));
    }
}
