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
//! against the [`crate::limits::InputLimits`] and planned (no video stream, HDR, no frame size:
//! the same codes). A failed probe of the whole object is `input-not-media`, as is a partial
//! one where ffprobe recognised no container at all (random bytes, text). A partial object
//! whose container ffprobe recognised but could not read (an MP4 whose index lies in the
//! unread middle, or one cut short) cannot be judged from its ends: it is accepted, with a log
//! line, and the plan task probes the whole download.
//!
//! The scratch file has no extension, so ffprobe judges it by its content alone (with a `.mp4`
//! name it assumes MP4 and reports random bytes as a damaged MP4).

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use fresco_media::probe::{probe, ProbeError, ProbeReport};
use fresco_pipeline::{RunError, VideoOptions};
use fresco_store::{ObjectInfo, Store};
use fresco_worker::spec::ObjectUrl;

use super::{block_on, run_rejection, store_rejection, LocalJobFactory, Rejection, PROBE_TIMEOUT};

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

impl LocalJobFactory {
    /// Refuses an object input that is not a video this server takes, as a local input would be
    /// refused; `info` is the object's `head`.
    pub(super) fn check_object_input(
        &self,
        url: &ObjectUrl,
        info: &ObjectInfo,
        output: &Path,
        options: &VideoOptions,
    ) -> Result<(), Rejection> {
        let named = PathBuf::from(&url.url);
        match self.probe_object(url, info)? {
            Probed::Report(report) => {
                self.limits.check_probe("input", &report)?;
                fresco_pipeline::plan::plan_video(&named, output, &report, options)
                    .map_err(run_rejection)?;
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
        for range in self.probe_window.ranges(info.size) {
            copy_range(&store, url, range, &mut file, deadline)?;
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
            Err(ProbeError::Tool(tool)) => Err(run_rejection(RunError::Tool(tool))),
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
