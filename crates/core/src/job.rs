//! Jobs and their tasks: the states a durable job moves through, with no I/O.
//!
//! A job is one input styled into one output. It is done by tasks that any worker may claim:
//!
//! ```text
//! plan (probe, timestamps, chunk bounds) -> score chunk 0..n (in parallel) -> assemble (join, copy streams, publish)
//! ```
//!
//! The plan task exists from submission; it adds the score and assemble tasks when it completes.
//! The assemble task becomes claimable once every score task of its job is done.

use serde::{Deserialize, Serialize};

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "canceled" => JobState::Canceled,
            _ => return None,
        })
    }

    /// No more work will be done for the job.
    pub fn is_terminal(self) -> bool {
        match self {
            JobState::Queued | JobState::Running => false,
            JobState::Succeeded | JobState::Failed | JobState::Canceled => true,
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// Probe the input, scan its frame timestamps, decide the chunks.
    Plan,
    /// Style one chunk of frames into an intermediate file.
    Score,
    /// Join the scored chunks, copy the other streams, verify, publish.
    Assemble,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Plan => "plan",
            TaskKind::Score => "score",
            TaskKind::Assemble => "assemble",
        }
    }

    pub fn parse(s: &str) -> Option<TaskKind> {
        Some(match s {
            "plan" => TaskKind::Plan,
            "score" => TaskKind::Score,
            "assemble" => TaskKind::Assemble,
            _ => return None,
        })
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskState {
    /// Waiting for a worker (possibly not before a back-off time).
    Pending,
    /// A worker holds it under a lease.
    Leased,
    Done,
    /// A retry budget was spent.
    Failed,
    /// Its job was canceled or failed elsewhere.
    Canceled,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Leased => "leased",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
            TaskState::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<TaskState> {
        Some(match s {
            "pending" => TaskState::Pending,
            "leased" => TaskState::Leased,
            "done" => TaskState::Done,
            "failed" => TaskState::Failed,
            "canceled" => TaskState::Canceled,
            _ => return None,
        })
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A half-open range of frame numbers, `start..end`, in decode order of the input's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRange {
    pub start: u64,
    pub end: u64,
}

impl FrameRange {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Cuts `frames` frames into ranges of `chunk_frames` (the last one shorter): every frame in
/// exactly one chunk, whatever the keyframe spacing.
pub fn split_frames(frames: u64, chunk_frames: u64) -> Vec<FrameRange> {
    let size = chunk_frames.max(1);
    (0..frames)
        .step_by(size as usize)
        .map(|start| FrameRange {
            start,
            end: (start + size).min(frames),
        })
        .collect()
}

/// Retry budgets, pinned on a job when it is submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryBudgets {
    /// Errors a worker reports for one task before the task (and its job) fails.
    pub max_attempts: u32,
    /// Leases that ran out (the worker died or was cut off) before the task fails.
    pub max_expiries: u32,
}

impl Default for RetryBudgets {
    fn default() -> Self {
        RetryBudgets {
            max_attempts: 3,
            max_expiries: 10,
        }
    }
}

/// Back-off before the `attempt`-th retry (1-based): 2, 4, 8 ... seconds, at most 5 minutes.
pub fn retry_backoff_ms(attempt: u32, base_ms: u64) -> u64 {
    let shift = attempt.saturating_sub(1).min(16);
    base_ms.saturating_mul(1u64 << shift).min(300_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_frame_once() {
        for frames in [0u64, 1, 7, 30, 31, 100] {
            for size in [1u64, 3, 7, 30, 1000] {
                let chunks = split_frames(frames, size);
                let mut next = 0;
                for c in &chunks {
                    assert_eq!(c.start, next);
                    assert!(!c.is_empty() && c.len() <= size);
                    next = c.end;
                }
                assert_eq!(next, frames, "{frames} frames in chunks of {size}");
            }
        }
    }

    #[test]
    fn states_round_trip_through_text() {
        for s in [
            JobState::Queued,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Canceled,
        ] {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        for s in [
            TaskState::Pending,
            TaskState::Leased,
            TaskState::Done,
            TaskState::Failed,
            TaskState::Canceled,
        ] {
            assert_eq!(TaskState::parse(s.as_str()), Some(s));
        }
        for k in [TaskKind::Plan, TaskKind::Score, TaskKind::Assemble] {
            assert_eq!(TaskKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(retry_backoff_ms(1, 2000), 2000);
        assert_eq!(retry_backoff_ms(2, 2000), 4000);
        assert_eq!(retry_backoff_ms(3, 2000), 8000);
        assert_eq!(retry_backoff_ms(40, 2000), 300_000);
    }
}
