//! What [`crate::Stats::stats`] and the preview verbs share between the backends: turning the
//! rows of their count queries into a [`QueueStats`], and a stored preview into a [`Preview`].
//! Also the counter of lease expiries, which both backends bump where they end leases.

use fresco_core::JobState;

use crate::rows::job_state;
use crate::{FramesDone, Preview, QueueError, QueueStats, Result};

/// Every job state, in the order the stats list them.
const ALL_STATES: [JobState; 5] = [
    JobState::Queued,
    JobState::Running,
    JobState::Succeeded,
    JobState::Failed,
    JobState::Canceled,
];

/// A row of the jobs-by-state count: state, count.
pub(crate) type StateCount = (String, i64);
/// A row of the frames-done query: minute (ms), worker, frames.
pub(crate) type FramesRow = (i64, Option<String>, i64);
/// A stored preview: job, chunk, frame, mime, before, after, created at (ms).
pub(crate) type PreviewRow = (String, i32, i64, String, Vec<u8>, Vec<u8>, i64);

/// The counts as read, into a [`QueueStats`] that lists every state.
pub(crate) fn queue_stats(
    states: Vec<StateCount>,
    tasks_pending: i64,
    tasks_leased: i64,
    workers_active: i64,
    frames: Vec<FramesRow>,
) -> Result<QueueStats> {
    let mut jobs_by_state: Vec<(JobState, u64)> = ALL_STATES.iter().map(|s| (*s, 0)).collect();
    for (text, count) in states {
        let state = job_state(&text)?;
        if let Some(slot) = jobs_by_state.iter_mut().find(|(s, _)| *s == state) {
            slot.1 = count_of(count)?;
        }
    }
    let frames_done = frames
        .into_iter()
        .map(|(minute_ms, worker, frames)| {
            Ok(FramesDone {
                minute_ms,
                worker,
                frames: count_of(frames)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(QueueStats {
        jobs_by_state,
        tasks_pending: count_of(tasks_pending)?,
        tasks_leased: count_of(tasks_leased)?,
        workers_active: count_of(workers_active)?,
        frames_done,
    })
}

fn count_of(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| QueueError::Corrupt(format!("negative count {n}")))
}

/// A stored preview row as a [`Preview`].
pub(crate) fn preview(row: PreviewRow) -> Result<Preview> {
    let (job_id, chunk, frame, mime, before, after, created_at_ms) = row;
    Ok(Preview {
        job_id,
        chunk: u32::try_from(chunk)
            .map_err(|_| QueueError::Corrupt(format!("preview chunk {chunk}")))?,
        frame: u64::try_from(frame)
            .map_err(|_| QueueError::Corrupt(format!("preview frame {frame}")))?,
        mime,
        before,
        after,
        created_at_ms,
    })
}

/// Counts leases that ran out (or were ended for a dead worker) in this process, for
/// `fresco_lease_expiries_total`.
pub(crate) fn count_lease_expiries(n: u64) {
    if n > 0 {
        metrics::counter!("fresco_lease_expiries_total").increment(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_is_listed_and_counts_land_in_their_state() {
        let stats = queue_stats(
            vec![("running".into(), 2), ("failed".into(), 1)],
            5,
            2,
            1,
            vec![(60_000, Some("w".into()), 30)],
        )
        .unwrap();
        assert_eq!(
            stats.jobs_by_state,
            vec![
                (JobState::Queued, 0),
                (JobState::Running, 2),
                (JobState::Succeeded, 0),
                (JobState::Failed, 1),
                (JobState::Canceled, 0),
            ]
        );
        assert_eq!((stats.tasks_pending, stats.tasks_leased), (5, 2));
        assert_eq!(stats.frames_done[0].frames, 30);
        assert!(queue_stats(vec![("lost".into(), 1)], 0, 0, 0, vec![]).is_err());
    }
}
