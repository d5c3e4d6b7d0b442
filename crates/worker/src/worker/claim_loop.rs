//! The claim loop: claim a task, do it (see [`super::task`]), and again, until stopped or, with
//! `until_idle`, until no work is left; with the shared work folder and the scratch folder swept
//! now and then. Queue errors (a database restart, a cut connection) are logged and retried,
//! never fatal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fresco_core::JobState;
use fresco_queue::QueueError;

use super::stages::{Stages, VideoStages};
use super::{Worker, WorkerSummary};
use crate::sweep;

/// How often the worker tells the queue it is alive while idle.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(10);
/// How often the work and scratch folders are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Back-off after a queue error: first, and most.
const DB_BACKOFF_FIRST: Duration = Duration::from_millis(200);
const DB_BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Worker {
    /// Works until stopped (or, with `until_idle`, until no work is left).
    pub async fn run(mut self) -> WorkerSummary {
        let stages = self.stages();
        let mut summary = WorkerSummary::default();
        let mut db_backoff = DB_BACKOFF_FIRST;
        let mut last_sweep: Option<Instant> = None;
        tracing::info!(worker = %self.config.name, "worker started");
        self.announce("idle", None).await;
        let mut last_announced = Instant::now();
        loop {
            if last_announced.elapsed() > ANNOUNCE_EVERY {
                self.announce("idle", None).await;
                last_announced = Instant::now();
            }
            if self.stop.is_stopping() {
                break;
            }
            if last_sweep.is_none_or(|t| t.elapsed() > SWEEP_EVERY) {
                sweep::sweep_work_dir(&*self.queue, &self.config.work_dir, self.config.lease).await;
                sweep::sweep_scratch_dir(&self.config.scratch_dir);
                self.drop_finished_inputs().await;
                last_sweep = Some(Instant::now());
            }
            let claimed = self
                .queue
                .claim(&self.config.name, self.config.lease, &self.config.filter)
                .await;
            let lease = match claimed {
                Ok(Some(lease)) => {
                    db_backoff = DB_BACKOFF_FIRST;
                    lease
                }
                Ok(None) => {
                    if self.config.until_idle {
                        match self.work_remains().await {
                            Ok(false) => break,
                            Ok(true) => {}
                            Err(e) => tracing::warn!("queue unavailable: {e}"),
                        }
                    }
                    tokio::select! {
                        _ = self.queue.wait_for_work(self.config.idle_wait) => {}
                        _ = self.stop.stopped() => {}
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(worker = %self.config.name, "queue unavailable, retrying in {:?}: {e}", db_backoff);
                    tokio::select! {
                        _ = tokio::time::sleep(db_backoff) => {}
                        _ = self.stop.stopped() => {}
                    }
                    db_backoff = (db_backoff * 2).min(DB_BACKOFF_MAX);
                    continue;
                }
            };
            // Every line logged while doing the task carries its job and chunk.
            let span = crate::telemetry::task_span(&self.config.name, &lease);
            let task = self.run_task(&stages, lease, &mut summary);
            tracing::Instrument::instrument(task, span).await;
        }
        self.scratch.remove_all();
        self.announce("stopped", None).await;
        tracing::info!(worker = %self.config.name, "worker stopped: {} tasks done, {} chunks ({} frames) scored, {} failed, {} released",
            summary.tasks_done, summary.chunks_scored, summary.frames_scored, summary.tasks_failed, summary.tasks_released);
        summary
    }

    /// The stages given with [`Worker::with_stages`], or the real ones.
    fn stages(&mut self) -> Arc<dyn Stages> {
        if self.stages.is_none() {
            let stages = VideoStages::new(
                &self.config,
                self.tools.clone(),
                Arc::clone(&self.queue),
                self.events.clone(),
                Arc::clone(&self.scratch),
            );
            self.stages = Some(Arc::new(stages));
        }
        Arc::clone(self.stages.as_ref().expect("just set"))
    }

    /// Removes the scratch copies of jobs that ended (finished by other workers).
    async fn drop_finished_inputs(&self) {
        for job in self.scratch.jobs() {
            match self.queue.job(&job).await {
                Ok(Some(record)) if !record.state.is_terminal() => {}
                Ok(_) => self.scratch.remove_job(&job),
                Err(e) => {
                    tracing::debug!("could not look up job {job}: {e}");
                    return;
                }
            }
        }
    }

    /// Whether a job this worker may work on is still queued or running.
    async fn work_remains(&self) -> Result<bool, QueueError> {
        if let Some(ids) = &self.config.filter.jobs {
            for id in ids {
                if let Some(job) = self.queue.job(id).await? {
                    if !job.state.is_terminal() {
                        return Ok(true);
                    }
                }
            }
            return Ok(false);
        }
        // Jobs for other kinds of device are other workers' work.
        let mine = |job: &fresco_queue::JobRecord| {
            self.config
                .filter
                .device_kinds
                .as_ref()
                .is_none_or(|kinds| kinds.iter().any(|k| k == job.device_kind.as_str()))
        };
        let mut before = None;
        loop {
            let page = self
                .queue
                .jobs_before(&[JobState::Queued, JobState::Running], 200, before)
                .await?;
            let Some(last) = page.last() else {
                return Ok(false);
            };
            if page.iter().any(mine) {
                return Ok(true);
            }
            before = Some(last.seq);
        }
    }
}
