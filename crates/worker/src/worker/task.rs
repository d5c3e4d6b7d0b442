//! One claimed task, start to end: announced, its stage run on a blocking thread under a
//! [`LeaseGuard`] (heartbeat, stall watchdog, cancellation), and its outcome reported by how
//! the lease stood at the end (see [`super::outcome`]).
//!
//! A stop request (SIGTERM, Ctrl-C) gives a task in flight `grace` to finish, after which it is
//! canceled and released without counting against its budgets.

use std::sync::Arc;

use fresco_core::TaskKind;
use fresco_pipeline::FailureClass;
use fresco_queue::TaskLease;

use super::lease::{LeaseEnd, LeaseGuard};
use super::stages::{run_stage, Stages, Task};
use super::{TaskFailure, TaskOutput, Worker, WorkerSummary};

impl Worker {
    pub(super) async fn run_task(
        &mut self,
        stages: &Arc<dyn Stages>,
        lease: TaskLease,
        summary: &mut WorkerSummary,
    ) {
        self.report_claimed(&lease).await;
        let doing = format!(
            "{} chunk {} of job {}",
            lease.kind, lease.chunk, lease.job_id
        );
        self.announce("busy", Some(doing.clone())).await;
        let guard = LeaseGuard::start(
            Arc::clone(&self.queue),
            &lease,
            self.config.lease,
            self.status("busy", Some(doing)),
            (lease.kind == TaskKind::Score).then_some(self.config.stall_limit),
        );
        let result = self.work(stages, &lease, &guard).await;
        match guard.finish() {
            LeaseEnd::Stalled => {
                let failure = TaskFailure::retryable(
                    format!(
                        "chunk {} made no progress for {} s (hung decoder or storage?)",
                        lease.chunk,
                        self.config.stall_limit.as_secs()
                    ),
                    FailureClass::Processing,
                );
                self.report_failure(&lease, failure, summary).await;
            }
            LeaseEnd::Lost => self.report_lease_lost(&lease).await,
            LeaseEnd::Held => match result {
                Ok(output) => self.report_success(&lease, output, summary).await,
                Err(failure) if failure.class() == FailureClass::Canceled => {
                    self.report_released(&lease, summary).await;
                }
                Err(failure) => self.report_failure(&lease, failure, summary).await,
            },
        }
    }

    /// Runs the task's stage on a blocking thread; once a stop is asked for, for at most the
    /// grace period, then cancels it and waits for it to notice.
    async fn work(
        &self,
        stages: &Arc<dyn Stages>,
        lease: &TaskLease,
        guard: &LeaseGuard,
    ) -> Result<TaskOutput, TaskFailure> {
        let (stages, task_lease) = (Arc::clone(stages), lease.clone());
        let (cancel, progress) = (Arc::clone(guard.cancel_flag()), guard.progress().clone());
        let span = tracing::Span::current();
        let mut blocking = tokio::task::spawn_blocking(move || {
            let _in_task = span.enter();
            let task = Task {
                lease: &task_lease,
                cancel: &cancel,
                progress: &progress,
            };
            run_stage(&*stages, &task)
        });
        let joined = tokio::select! {
            joined = &mut blocking => joined,
            _ = self.stop.stopped() => {
                let finished_in_time = tokio::time::timeout(self.config.grace, &mut blocking).await;
                match finished_in_time {
                    Ok(joined) => joined,
                    Err(_) => {
                        tracing::info!(worker = %self.config.name, "grace period over: releasing {} chunk {} of job {}", lease.kind, lease.chunk, lease.job_id);
                        guard.cancel();
                        blocking.await
                    }
                }
            }
        };
        joined.unwrap_or_else(|panic| {
            Err(TaskFailure::retryable(
                format!("the worker's task panicked: {panic}"),
                FailureClass::Processing,
            ))
        })
    }
}
