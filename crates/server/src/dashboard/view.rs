//! The dashboard's views: what a page shows, built from the queue in one go, as JSON (each
//! server-sent event carries a whole view; the page redraws from it).

use std::collections::HashMap;
use std::time::Duration;

use fresco_core::scoring::ScoringSpec;
use fresco_core::{JobState, TaskKind, TaskState};
use fresco_pipeline::records::{frame_seconds, picks_in};
use fresco_pipeline::JobPlan;
use fresco_queue::{JobRecord, Queue, QueueError, QueueStats, TaskRecord};
use serde::Serialize;

/// Jobs listed on the overview.
pub const JOBS_LISTED: u32 = 100;
/// Log lines shown on a job's page (the last ones).
pub const LOG_LINES: u32 = 500;
/// The throughput chart's span, in minutes.
pub const CHART_MINUTES: i64 = 60;
/// Workers not heard from for this long are left out.
const WORKERS_LISTED_FOR: Duration = Duration::from_secs(24 * 3600);
/// A worker not stopped and not heard from for this long is silent.
const SILENT_AFTER_MS: i64 = 60_000;

/// The overview page: jobs, workers, totals and the throughput chart.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Overview {
    pub now_ms: i64,
    pub jobs: Vec<JobSummary>,
    pub jobs_by_state: serde_json::Map<String, serde_json::Value>,
    pub queue_pending: u64,
    pub queue_leased: u64,
    pub workers_active: u64,
    pub workers: Vec<WorkerSummary>,
    /// One point per minute, oldest first, [`CHART_MINUTES`] of them.
    pub throughput: Vec<ThroughputPoint>,
}

/// A job as the dashboard shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobSummary {
    pub id: String,
    pub state: String,
    /// 0 to 1.
    pub progress: f64,
    pub frames_done: u64,
    pub frames_total: Option<u64>,
    pub chunks_done: u32,
    pub chunks_total: u32,
    /// Frames per second since the job started (until it finished).
    pub fps: Option<f64>,
    /// Seconds left at that rate (running jobs).
    pub eta_seconds: Option<f64>,
    /// The style's or model file's name.
    pub model: String,
    /// Whether the job is steadied (`--temporal`, pinned in its spec).
    pub temporal: bool,
    pub input: String,
    pub output: String,
    /// Who submitted it, where the server knows (authenticated submissions).
    pub submitted_by: Option<String>,
    pub attempts: u32,
    pub expiries: u32,
    pub last_error: Option<String>,
    /// A dataset job's items (None for a video or image job).
    pub items: Option<ItemProgress>,
    pub enqueued_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
}

/// A dataset job's items (docs/datasets.md), from the queue's counts: its chunks are ranges of
/// items, so the frames a job has done are the items its done chunks took, scored or failed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ItemProgress {
    /// Items of the chunks that are done, scored or written as error rows.
    pub done: u64,
    /// Of those, items scored (`done - failed`).
    pub scored: u64,
    /// Items written as error rows so far.
    pub failed: u64,
    /// Items listed but not taken (no include pattern matched), known once the job is planned.
    pub skipped: Option<u64>,
    /// Items pinned, known once the job is planned.
    pub total: Option<u64>,
    /// Items per second since the job started (until it finished).
    pub per_second: Option<f64>,
}

/// A worker as the dashboard shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WorkerSummary {
    pub id: String,
    pub host: String,
    pub device: String,
    pub state: String,
    pub current: Option<String>,
    /// Frames per second over the last minute or two (from the chunks it finished).
    pub fps: Option<f64>,
    pub last_seen_ms: i64,
    pub silent: bool,
}

/// Frames per second in one minute, over all workers.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ThroughputPoint {
    pub minute_ms: i64,
    pub frames_per_second: f64,
}

/// A job's page: the job, its chunks, errors, the end of its log and its preview.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobPage {
    pub now_ms: i64,
    pub job: JobSummary,
    pub tasks: Vec<TaskCell>,
    pub errors: Vec<TaskError>,
    pub log: Vec<LogEntry>,
    pub preview: Option<PreviewLinks>,
    /// A records job's rows (`.jsonl`/`.parquet` outputs); None for a video or image job.
    pub rows: Option<RowCount>,
}

/// A records job's rows: one per sampled frame.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RowCount {
    /// Rows in the chunks that are done (all of them once the job succeeded: assembly checks
    /// that the output holds exactly this many).
    pub written: u64,
    /// Rows the job writes in all, known once it is planned (the frames its sampling picks).
    pub total: Option<u64>,
}

/// One task in the chunk strip.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskCell {
    pub kind: String,
    pub chunk: u32,
    /// pending, leased, done, failed or canceled.
    pub state: String,
    pub worker: Option<String>,
    pub attempts: u32,
    pub expiries: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskError {
    pub kind: String,
    pub chunk: u32,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogEntry {
    pub at_ms: i64,
    pub worker: Option<String>,
    pub message: String,
}

/// Where a job's preview images are.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PreviewLinks {
    pub chunk: u32,
    pub frame: u64,
    pub before_url: String,
    pub after_url: String,
}

/// The overview, optionally of jobs in one state only, and of one owner's jobs only (a
/// submitter sees its own jobs, as in the API; the totals are the whole queue's).
pub async fn overview(
    queue: &dyn Queue,
    state: Option<JobState>,
    only_owner: Option<&str>,
) -> Result<Overview, QueueError> {
    let history = Duration::from_secs(CHART_MINUTES as u64 * 60);
    let stats = queue.stats(Duration::from_secs(60), history).await?;
    let states: Vec<JobState> = state.into_iter().collect();
    let jobs = match only_owner {
        None => queue.jobs(&states, JOBS_LISTED).await?,
        Some(owner) => {
            queue
                .owned_jobs_before(owner, &states, JOBS_LISTED, None)
                .await?
        }
    };
    let workers = queue.workers(WORKERS_LISTED_FOR).await?;
    let visible = visible_current(queue, only_owner).await?;
    let now = workers
        .iter()
        .map(|w| w.last_seen_ms)
        .max()
        .unwrap_or(0)
        .max(fresco_queue::now_ms());
    let worker_fps = recent_worker_rates(&stats, now);
    let datasets: Vec<String> = jobs
        .iter()
        .filter(|j| is_dataset(&j.spec))
        .map(|j| j.id.clone())
        .collect();
    let failed = if datasets.is_empty() {
        HashMap::new()
    } else {
        queue.failed_items(&datasets).await?
    };
    Ok(Overview {
        now_ms: now,
        jobs: jobs
            .iter()
            .map(|j| job_summary(j, now, failed.get(&j.id).copied().unwrap_or(0)))
            .collect(),
        jobs_by_state: stats
            .jobs_by_state
            .iter()
            .map(|(s, n)| (s.as_str().to_string(), serde_json::Value::from(*n)))
            .collect(),
        queue_pending: stats.tasks_pending,
        queue_leased: stats.tasks_leased,
        workers_active: stats.workers_active,
        workers: workers
            .into_iter()
            .map(|w| WorkerSummary {
                fps: worker_fps.get(&w.name).copied(),
                silent: w.state != "stopped" && now - w.last_seen_ms > SILENT_AFTER_MS,
                id: w.name,
                host: w.host,
                device: w.device,
                state: w.state,
                current: visible(w.current),
                last_seen_ms: w.last_seen_ms,
            })
            .collect(),
        throughput: throughput(&stats, now),
    })
}

/// What a worker's "current" line (`score chunk 3 of job ID`) may show to `only_owner`: all of
/// it to those who see every job; to a submitter only a line that names one of its own unfinished
/// jobs, since other tenants' job ids are not its to see.
pub async fn visible_current(
    queue: &dyn Queue,
    only_owner: Option<&str>,
) -> Result<impl Fn(Option<String>) -> Option<String>, QueueError> {
    let own: Option<Vec<String>> = match only_owner {
        None => None,
        Some(owner) => Some(
            queue
                .owned_jobs_before(owner, &[JobState::Queued, JobState::Running], 10_000, None)
                .await?
                .into_iter()
                .map(|job| job.id)
                .collect(),
        ),
    };
    Ok(move |current: Option<String>| match &own {
        None => current,
        Some(ids) => current.filter(|line| ids.iter().any(|id| line.contains(id.as_str()))),
    })
}

/// A job's page, or None when there is no such job (or it is not `only_owner`'s).
pub async fn job_page(
    queue: &dyn Queue,
    id: &str,
    only_owner: Option<&str>,
) -> Result<Option<JobPage>, QueueError> {
    let Some(job) = queue.job(id).await? else {
        return Ok(None);
    };
    if only_owner.is_some_and(|owner| job.owner.as_deref() != Some(owner)) {
        return Ok(None);
    }
    let tasks = queue.tasks(id).await?;
    let log = last_log_lines(queue, id).await?;
    let preview = queue.preview(id).await?;
    let failed = if is_dataset(&job.spec) {
        let counts = queue.failed_items(std::slice::from_ref(&job.id)).await?;
        counts.get(&job.id).copied().unwrap_or(0)
    } else {
        0
    };
    let now = fresco_queue::now_ms();
    let base = format!("/ui/jobs/{}/preview", percent_encode(id));
    let summary = job_summary(&job, now, failed);
    // A dataset's rows are one per item, written by the chunks that are done.
    let rows = match &summary.items {
        Some(items) => Some(RowCount {
            written: items.done,
            total: items.total,
        }),
        None => row_count(&job, &tasks),
    };
    Ok(Some(JobPage {
        now_ms: now,
        job: summary,
        errors: tasks
            .iter()
            .filter_map(|t| {
                t.last_error.as_ref().map(|e| TaskError {
                    kind: t.kind.as_str().into(),
                    chunk: t.chunk,
                    error: e.clone(),
                })
            })
            .collect(),
        tasks: tasks
            .iter()
            .map(|t| TaskCell {
                kind: t.kind.as_str().into(),
                chunk: t.chunk,
                state: t.state.as_str().into(),
                worker: t.worker.clone(),
                attempts: t.attempts,
                expiries: t.expiries,
            })
            .collect(),
        log,
        rows,
        preview: preview.map(|p| PreviewLinks {
            chunk: p.chunk,
            frame: p.frame,
            before_url: format!("{base}/before"),
            after_url: format!("{base}/after"),
        }),
    }))
}

/// A records job's rows, from its spec's sampling and its plan: the frames the sampling picks,
/// in all and in the chunks done (the sums the worker's parts and assembly count). None for a
/// job without a scoring section, or one whose spec or plan this server cannot read.
fn row_count(job: &JobRecord, tasks: &[TaskRecord]) -> Option<RowCount> {
    let spec: serde_json::Value = serde_json::from_str(&job.spec).ok()?;
    let scoring = spec.get("scoring").filter(|s| !s.is_null())?;
    let scoring: ScoringSpec = serde_json::from_value(scoring.clone()).ok()?;
    let Some(plan) = job.plan.as_deref() else {
        return Some(RowCount {
            written: 0,
            total: None,
        });
    };
    let plan: JobPlan = serde_json::from_str(plan).ok()?;
    let picked = scoring.sampling.pick(&frame_seconds(&plan));
    let written = tasks
        .iter()
        .filter(|t| t.kind == TaskKind::Score && t.state == TaskState::Done)
        .filter_map(|t| plan.chunks.get(t.chunk as usize))
        .map(|range| picks_in(&picked, *range).len() as u64)
        .sum();
    Some(RowCount {
        written,
        total: Some(picked.len() as u64),
    })
}

/// The last [`LOG_LINES`] lines of a job's log, oldest first (the log is read from a cursor).
async fn last_log_lines(queue: &dyn Queue, id: &str) -> Result<Vec<LogEntry>, QueueError> {
    let mut lines = std::collections::VecDeque::new();
    let mut after = None;
    loop {
        let page = queue.job_log(id, after, LOG_LINES).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        let full = page.len() as u32 == LOG_LINES;
        for line in page {
            if lines.len() == LOG_LINES as usize {
                lines.pop_front();
            }
            lines.push_back(LogEntry {
                at_ms: line.at_ms,
                worker: line.worker,
                message: line.message,
            });
        }
        if !full {
            break;
        }
    }
    Ok(lines.into())
}

/// Whether a job's spec has a dataset section (`spec.dataset`), whatever else it holds.
fn is_dataset(spec: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(spec)
        .is_ok_and(|v| v.get("dataset").is_some_and(|d| d.is_object()))
}

/// A dataset job's items, from its counts and its plan (`DatasetPlan`'s `skipped`); None for
/// other jobs. `failed`: its error rows, from the queue.
fn item_progress(job: &JobRecord, failed: u64, per_second: Option<f64>) -> Option<ItemProgress> {
    if !is_dataset(&job.spec) {
        return None;
    }
    let skipped = job
        .plan
        .as_deref()
        .and_then(|plan| serde_json::from_str::<serde_json::Value>(plan).ok())
        .and_then(|plan| plan.get("skipped").and_then(|n| n.as_u64()));
    Some(ItemProgress {
        done: job.frames_done,
        scored: job.frames_done.saturating_sub(failed),
        failed,
        skipped,
        total: job.frames_total,
        per_second,
    })
}

/// A job as the dashboard shows it; `failed` is a dataset job's error rows (0 for others).
fn job_summary(job: &JobRecord, now: i64, failed: u64) -> JobSummary {
    let progress = match job.frames_total {
        Some(total) if total > 0 => (job.frames_done as f64 / total as f64).clamp(0.0, 1.0),
        _ if job.state == JobState::Succeeded => 1.0,
        _ => 0.0,
    };
    let (fps, eta_seconds) = rate_and_eta(
        job.state,
        job.frames_done,
        job.frames_total,
        job.started_at_ms,
        job.finished_at_ms,
        now,
    );
    JobSummary {
        id: job.id.clone(),
        state: job.state.as_str().into(),
        progress,
        frames_done: job.frames_done,
        frames_total: job.frames_total,
        chunks_done: job.chunks_done,
        chunks_total: job.chunks_total,
        fps,
        eta_seconds,
        model: model_name(&job.spec),
        temporal: fresco_core::JobSpec::temporal_in(&job.spec),
        input: job.input.clone(),
        output: job.output.clone(),
        submitted_by: job.owner.clone(),
        attempts: job.attempts,
        expiries: job.expiries,
        last_error: job.last_error.clone(),
        items: item_progress(job, failed, fps),
        enqueued_at_ms: job.enqueued_at_ms,
        started_at_ms: job.started_at_ms,
        finished_at_ms: job.finished_at_ms,
    }
}

/// Frames per second from the job's start to now (or to its end), and the seconds left at
/// that rate.
pub fn rate_and_eta(
    state: JobState,
    frames_done: u64,
    frames_total: Option<u64>,
    started_at_ms: Option<i64>,
    finished_at_ms: Option<i64>,
    now: i64,
) -> (Option<f64>, Option<f64>) {
    let Some(started) = started_at_ms else {
        return (None, None);
    };
    let end = finished_at_ms.unwrap_or(now);
    let seconds = (end - started) as f64 / 1000.0;
    if frames_done == 0 || seconds <= 0.0 {
        return (None, None);
    }
    let fps = frames_done as f64 / seconds;
    let eta = match (state, frames_total) {
        (JobState::Running, Some(total)) => Some(total.saturating_sub(frames_done) as f64 / fps),
        _ => None,
    };
    (Some(fps), eta)
}

/// The model's name from the job's spec (`model.name`), whatever else the spec holds.
fn model_name(spec: &str) -> String {
    serde_json::from_str::<serde_json::Value>(spec)
        .ok()
        .and_then(|v| v["model"]["name"].as_str().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Frames per second of the last [`CHART_MINUTES`] minutes, zeros included, oldest first.
fn throughput(stats: &QueueStats, now: i64) -> Vec<ThroughputPoint> {
    let this_minute = now - now.rem_euclid(60_000);
    let first = this_minute - (CHART_MINUTES - 1) * 60_000;
    let mut frames = vec![0u64; CHART_MINUTES as usize];
    for done in &stats.frames_done {
        let slot = (done.minute_ms - first).div_euclid(60_000);
        if (0..CHART_MINUTES).contains(&slot) {
            frames[slot as usize] += done.frames;
        }
    }
    frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| ThroughputPoint {
            minute_ms: first + i as i64 * 60_000,
            frames_per_second: f as f64 / 60.0,
        })
        .collect()
}

/// Each worker's frames per second over this minute and the one before it.
fn recent_worker_rates(stats: &QueueStats, now: i64) -> HashMap<String, f64> {
    let since = now - now.rem_euclid(60_000) - 60_000;
    let seconds = ((now - since) as f64 / 1000.0).max(1.0);
    let mut frames: HashMap<String, u64> = HashMap::new();
    for done in &stats.frames_done {
        if let (Some(worker), true) = (&done.worker, done.minute_ms >= since) {
            *frames.entry(worker.clone()).or_default() += done.frames;
        }
    }
    frames
        .into_iter()
        .map(|(w, f)| (w, f as f64 / seconds))
        .collect()
}

/// A path segment, percent-encoded.
fn percent_encode(segment: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fresco_queue::FramesDone;

    #[test]
    fn throughput_fills_every_minute_of_the_hour() {
        let now = 10 * 3_600_000 + 30_000;
        let stats = QueueStats {
            frames_done: vec![
                FramesDone {
                    minute_ms: 10 * 3_600_000,
                    worker: Some("a".into()),
                    frames: 120,
                },
                FramesDone {
                    minute_ms: 10 * 3_600_000,
                    worker: Some("b".into()),
                    frames: 60,
                },
                FramesDone {
                    minute_ms: 9 * 3_600_000 - 60_000,
                    worker: None,
                    frames: 999,
                },
            ],
            ..QueueStats::default()
        };
        let points = throughput(&stats, now);
        assert_eq!(points.len(), 60);
        assert_eq!(points[59].minute_ms, 10 * 3_600_000);
        assert_eq!(points[59].frames_per_second, 3.0);
        assert!(points[..59].iter().all(|p| p.frames_per_second == 0.0));
        let rates = recent_worker_rates(&stats, now);
        assert_eq!(rates["a"], 120.0 / 90.0);
        assert!(!rates.contains_key("c"));
    }

    #[test]
    fn model_names_come_from_the_spec() {
        assert_eq!(model_name(r#"{"model":{"name":"mosaic"}}"#), "mosaic");
        assert_eq!(model_name("not json"), "?");
    }
}
