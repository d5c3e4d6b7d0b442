//! Probing an object-store input (`az://`, `s3://`, `file://`) before its job is queued, without
//! downloading it while the request waits.
//!
//! Containers keep what ffprobe needs at their ends: an MP4's index (`moov`) is at the start
//! (`-movflags +faststart`) or at the end, Matroska/WebM headers and AVI headers are at the
//! start, an MPEG-TS stream describes itself in its first packets. So the probe reads a bounded
//! head and tail of the object with ranged reads ([`ProbeWindow`], 8 MiB each by default; the
//! whole object when it is no larger than both), writes them at their offsets into a sparse
//! scratch file of the object's full size (the middle reads as zeros and takes no disk), and
//! runs the usual ffprobe on that file. Reads go in pieces of [`PIECE_BYTES`], each written
//! before the next is fetched, so memory stays bounded whatever the window; reads and probe
//! together get [`super::PROBE_TIMEOUT`]. The scratch file is removed when the check ends.
//!
//! What the probe says decides the submission as for a local input: a report is checked
//! against the [`fresco_wire::limits::InputLimits`] and planned (no video stream, HDR, no frame size:
//! the same codes). A failed probe of the whole object is `input-not-media`, as is a partial
//! one where ffprobe recognised no container at all (random bytes, text). A partial object
//! whose container ffprobe recognised but could not read cannot be judged from its ends: it is
//! accepted, with a log line, and the plan task probes the whole download. For MP4/MOV that is
//! only a file cut short: an index (`moov`) in neither end window (a long video's index can
//! outgrow the tail) is found by walking the top-level box headers, 16 bytes a box, and read
//! too (up to [`MAX_INDEX_BYTES`]).
//!
//! The scratch file has no extension, so ffprobe judges it by its content alone (with a `.mp4`
//! name it assumes MP4 and reports random bytes as a damaged MP4).

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use fresco_core::VideoOptions;
use fresco_media::probe::{probe, ProbeError, ProbeReport};
use fresco_pipeline::RunError;
use fresco_store::ObjectUrl;
use fresco_store::{ObjectInfo, Store};

use super::{block_on, run_rejection, store_rejection, Rejection, Submitter, PROBE_TIMEOUT};

/// The most bytes one ranged read asks for (and so holds in memory).
pub const PIECE_BYTES: u64 = 1 << 20;

/// How much of an object's head and of its tail the probe reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeWindow {
    /// Bytes from the start, and bytes before the end, each.
    pub bytes: u64,
}

impl Default for ProbeWindow {
    /// 8 MiB each: an MP4 index of several hours of video fits in the tail.
    fn default() -> Self {
        ProbeWindow { bytes: 8 << 20 }
    }
}

impl ProbeWindow {
    /// The ranges to read from an object of `size` bytes: its head and its tail, which meet
    /// (the whole object) when it is no larger than both.
    pub fn ranges(&self, size: u64) -> Vec<Range<u64>> {
        let window = self.bytes.max(1);
        let head = 0..size.min(window);
        let tail = size.saturating_sub(window).max(head.end)..size;
        [head, tail].into_iter().filter(|r| !r.is_empty()).collect()
    }

    /// Whether [`ProbeWindow::ranges`] covers the whole of an object of `size` bytes.
    pub fn covers(&self, size: u64) -> bool {
        size <= self.bytes.max(1).saturating_mul(2)
    }
}

/// What the probe of an object's ends found.
#[derive(Debug)]
enum Probed {
    /// ffprobe read the container's description.
    Report(ProbeReport),
    /// The container was recognised but not read from its ends; why, for the log.
    Undecided(String),
}

/// A scratch file removed when dropped.
struct Scratch {
    path: PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Submitter {
    /// Refuses an object input that is not a video this server takes, as a local input would be
    /// refused; `info` is the object's `head`.
    pub(super) fn check_object_input(
        &self,
        url: &ObjectUrl,
        info: &ObjectInfo,
        output: &Path,
        options: &VideoOptions,
        records: bool,
    ) -> Result<(), Rejection> {
        let named = PathBuf::from(&url.url);
        match self.probe_object(url, info)? {
            Probed::Report(report) if records => {
                self.limits.check_probe("input", &report)?;
                super::check_has_video(&named, &report)?;
            }
            Probed::Report(report) => {
                self.limits.check_probe("input", &report)?;
                let plan = fresco_pipeline::plan::video_settings(&named, output, &report, options)
                    .map_err(run_rejection)?;
                // As for a local input: a codec the output's container cannot hold (not a
                // hardware encoder, which the plan task tries on a machine that has one).
                if !fresco_pipeline::hardware::is_hardware_encoder(&plan.encode.codec) {
                    fresco_pipeline::container::check_video_encoder(&self.tools, &plan)
                        .map_err(run_rejection)?;
                }
            }
            Probed::Undecided(reason) => tracing::info!(
                input = %url.url,
                size = info.size,
                reason = %reason,
                "the input's first and last bytes do not show whether it is a video; \
                 queued, and the plan task probes the whole object"
            ),
        }
        Ok(())
    }

    /// Reads the object's ends into a sparse scratch file and probes it.
    fn probe_object(&self, url: &ObjectUrl, info: &ObjectInfo) -> Result<Probed, Rejection> {
        let deadline = Instant::now() + PROBE_TIMEOUT;
        let store = url.open().map_err(|e| store_rejection(url, e))?;
        let whole = self.probe_window.covers(info.size);
        let folder = self.scratch_dir.clone().unwrap_or_else(std::env::temp_dir);
        let scratch = Scratch {
            path: folder.join(format!(".fresco-probe-{}", uuid::Uuid::new_v4().simple())),
        };
        let unwritable = |e: std::io::Error| {
            Rejection::Internal(format!(
                "{}: cannot write the probe's scratch file: {e}",
                scratch.path.display()
            ))
        };
        std::fs::create_dir_all(&folder).map_err(unwritable)?;
        // Readable by this user only (a private input's head and tail), and never an existing
        // file or link.
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&scratch.path)
                .map_err(unwritable)?
        };
        // Sparse: only the ranges written below take disk space.
        file.set_len(info.size).map_err(unwritable)?;
        let ranges = self.probe_window.ranges(info.size);
        for range in &ranges {
            copy_range(&store, url, range.clone(), &mut file, deadline)?;
        }
        // An MP4 whose index (`moov`) is in neither end, or longer than the tail window (hours
        // of video): find it by its box headers and read it too, within bounds.
        if !whole {
            if let Some(moov) = find_moov(&store, url, info.size, deadline)? {
                let read = |r: &Range<u64>| r.start <= moov.start && moov.end <= r.end;
                if !ranges.iter().any(read) && moov.end - moov.start <= MAX_INDEX_BYTES {
                    copy_range(&store, url, moov, &mut file, deadline)?;
                }
            }
        }
        drop(file);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(too_slow(url));
        }
        match probe(&self.tools.ffprobe, &scratch.path, left) {
            Ok(report) => Ok(Probed::Report(report)),
            Err(ProbeError::NotMedia { reason, .. }) if !whole && names_a_container(&reason) => {
                Ok(Probed::Undecided(reason))
            }
            Err(ProbeError::NotMedia { reason, .. }) => Err(not_media(url, &reason)),
            Err(ProbeError::BadJson { source, .. }) => Err(not_media(
                url,
                &format!("ffprobe's report could not be read: {source}"),
            )),
            // Named as the user named it, not as the scratch file.
            Err(ProbeError::Refused { reason, .. }) => Err(run_rejection(RunError::Refused {
                path: PathBuf::from(&url.url),
                reason,
            })),
            Err(ProbeError::OverLimit(breach)) => Err(run_rejection(RunError::OverLimit(
                fresco_core::LimitBreach {
                    code: breach.code,
                    message: breach
                        .message
                        .replace(&scratch.path.display().to_string(), &url.url),
                },
            ))),
            Err(ProbeError::Tool(tool)) => Err(run_rejection(RunError::from(tool))),
        }
    }
}

/// Copies the bytes `range` of the object into `file` at the same offsets, a piece at a time.
fn copy_range(
    store: &Store,
    url: &ObjectUrl,
    range: Range<u64>,
    file: &mut File,
    deadline: Instant,
) -> Result<(), Rejection> {
    let mut start = range.start;
    while start < range.end {
        let end = range.end.min(start + PIECE_BYTES);
        let left = deadline.saturating_duration_since(Instant::now());
        let bytes = block_on(tokio::time::timeout(
            left,
            store.get_range(&url.key, start..end),
        ))
        .map_err(|_| too_slow(url))?
        .map_err(|e| store_rejection(url, e))?;
        if bytes.is_empty() {
            // The object shrank since its `head`: what is left of it is probed.
            break;
        }
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.write_all(&bytes))
            .map_err(|e| Rejection::Internal(format!("the probe's scratch file: {e}")))?;
        start += bytes.len() as u64;
    }
    Ok(())
}

/// The largest MP4 index (`moov` box) the probe reads besides the ends.
const MAX_INDEX_BYTES: u64 = 64 << 20;
/// The most top-level boxes walked looking for it.
const MAX_BOXES: usize = 256;

/// Where an ISO BMFF (MP4, MOV) object's `moov` box lies, from its top-level box headers (16
/// bytes read per box): `None` for another container, or when there is none.
fn find_moov(
    store: &Store,
    url: &ObjectUrl,
    size: u64,
    deadline: Instant,
) -> Result<Option<Range<u64>>, Rejection> {
    let mut offset = 0u64;
    for n in 0..MAX_BOXES {
        if offset + 8 > size {
            return Ok(None);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let header = block_on(tokio::time::timeout(
            left,
            store.get_range(&url.key, offset..size.min(offset + 16)),
        ))
        .map_err(|_| too_slow(url))?
        .map_err(|e| store_rejection(url, e))?;
        let Some((kind, length)) = box_header(&header, size - offset) else {
            return Ok(None);
        };
        if n == 0 && kind != *b"ftyp" {
            return Ok(None);
        }
        if kind == *b"moov" {
            return Ok(Some(offset..offset + length));
        }
        offset += length;
    }
    Ok(None)
}

/// A box header's type and length (`left`: bytes from it to the object's end, for a length of
/// 0, "to the end"); `None` when it is not a sound header.
fn box_header(bytes: &[u8], left: u64) -> Option<([u8; 4], u64)> {
    let size = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?) as u64;
    let kind: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
    let length = match size {
        0 => left,
        1 => u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?),
        n => n,
    };
    (length >= 8 && length <= left).then_some((kind, length))
}

/// Whether ffprobe's complaint comes from a demuxer (`moov atom not found`, from the MP4
/// demuxer, before the final line): the container was recognised, and only its unread middle
/// may be missing. Content that no demuxer recognises fails with the final line alone.
fn names_a_container(reason: &str) -> bool {
    reason.split(" | ").any(|line| {
        let line = line.trim();
        !line.is_empty() && !line.ends_with(NOT_RECOGNISED)
    })
}

/// ffmpeg's message (`AVERROR_INVALIDDATA`) when no demuxer takes the input.
const NOT_RECOGNISED: &str = "Invalid data found when processing input";

fn not_media(url: &ObjectUrl, reason: &str) -> Rejection {
    run_rejection(RunError::NotMedia {
        path: PathBuf::from(&url.url),
        reason: format!("not a media file ffmpeg can read ({reason})"),
    })
}

fn too_slow(url: &ObjectUrl) -> Rejection {
    Rejection::Unavailable {
        code: "store-unavailable",
        detail: format!(
            "{}: reading the object's first and last bytes and probing them took over {} s",
            url.url,
            PROBE_TIMEOUT.as_secs()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_objects_are_read_whole_and_large_ones_at_their_ends() {
        let window = ProbeWindow { bytes: 10 };
        assert_eq!(window.ranges(0), Vec::<Range<u64>>::new());
        assert_eq!(window.ranges(5), vec![Range { start: 0, end: 5 }]);
        assert_eq!(window.ranges(20), [0..10, 10..20]);
        assert!(window.covers(20));
        assert_eq!(window.ranges(21), [0..10, 11..21]);
        assert!(!window.covers(21));
        assert_eq!(
            ProbeWindow::default().ranges(1 << 30),
            [0..8 << 20, (1 << 30) - (8 << 20)..1 << 30]
        );
    }

    #[test]
    fn box_headers_give_type_and_length() {
        let mut header = 24u32.to_be_bytes().to_vec();
        header.extend(b"ftyp");
        assert_eq!(box_header(&header, 100), Some((*b"ftyp", 24)));
        // 0: to the end; 1: a 64-bit length follows.
        let mut to_end = 0u32.to_be_bytes().to_vec();
        to_end.extend(b"mdat");
        assert_eq!(box_header(&to_end, 500), Some((*b"mdat", 500)));
        let mut large = 1u32.to_be_bytes().to_vec();
        large.extend(b"mdat");
        large.extend(5_000_000_000u64.to_be_bytes());
        assert_eq!(
            box_header(&large, 6_000_000_000),
            Some((*b"mdat", 5_000_000_000))
        );
        // Past the end, shorter than a header, or cut: not a box.
        assert_eq!(box_header(&large, 1000), None);
        let mut tiny = 4u32.to_be_bytes().to_vec();
        tiny.extend(b"free");
        assert_eq!(box_header(&tiny, 100), None);
        assert_eq!(box_header(b"abc", 100), None);
    }

    #[test]
    fn only_a_demuxer_complaint_counts_as_a_recognised_container() {
        // As fresco_media::probe words ffprobe's stderr: prefixes and the path stripped.
        assert!(names_a_container(
            "moov atom not found | Invalid data found when processing input"
        ));
        assert!(!names_a_container(
            "Invalid data found when processing input"
        ));
        assert!(!names_a_container(""));
    }
}
