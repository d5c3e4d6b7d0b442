//! [`Leases`] for both backends (see `shared/mod.rs`): every verb of a lease holder but the
//! claim, which each backend writes its own way.

use std::time::Duration;

use async_trait::async_trait;
use fresco_core::{FrameRange, TaskKind};

use super::jobs::fail_job;
use super::{Backend, Conn, LOCK_TASK};
use crate::rows::{frame_number, millis, HeldRow, ASSEMBLE_WAITING, HELD_COLUMNS};
use crate::{ClaimFilter, FailOutcome, LeaseStatus, Leases, Result, TaskLease};

/// A task still held by the lease that presents this token (`$1` task id, `$2` token), of a job
/// that is not over. Every verb of a lease holder matches with it, so a worker whose lease moved
/// on never touches the task again.
macro_rules! held {
    () => {
        "id = $1 AND state = 'leased' AND token = $2 AND EXISTS (SELECT 1 FROM jobs j \
         WHERE j.id = tasks.job_id AND j.state IN ('queued', 'running'))"
    };
}

fn status(rows_affected: u64) -> LeaseStatus {
    if rows_affected == 1 {
        LeaseStatus::Held
    } else {
        LeaseStatus::Lost
    }
}

/// Marks a held task of `kind` done; `Lost` (and nothing changed) if the lease is gone.
pub(in super::super) async fn finish_task(
    conn: &mut Conn,
    lease: &TaskLease,
    kind: TaskKind,
) -> Result<LeaseStatus> {
    debug_assert_eq!(
        lease.kind, kind,
        "a {} task completed as {kind}",
        lease.kind
    );
    let changed = sqlx::query(concat!(
        "UPDATE tasks SET state = 'done', token = NULL, lease_expires_at = NULL, finished_at = ",
        now!(),
        " WHERE ",
        held!(),
        " AND kind = $3"
    ))
    .bind(lease.task_id)
    .bind(&lease.token)
    .bind(kind.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(status(changed.rows_affected()))
}

/// Adds a pending task to `job`, ranked `rank` in the claim order (chunk 0 and no frames for
/// the plan and assemble tasks).
pub(in super::super) async fn insert_task(
    conn: &mut Conn,
    job: &str,
    kind: TaskKind,
    chunk: i32,
    frames: Option<&FrameRange>,
    rank: i32,
) -> Result<()> {
    let (start, end) = match frames {
        Some(f) => (frame_number(f.start)?, frame_number(f.end)?),
        None => (0, 0),
    };
    sqlx::query(concat!(
        "INSERT INTO tasks (job_id, kind, chunk, frame_start, frame_end, state, not_before, ",
        "rank, priority, enqueued_at) SELECT id, $2, $3, $4, $5, 'pending', ",
        now!(),
        ", $6, priority, enqueued_at FROM jobs WHERE id = $1"
    ))
    .bind(job)
    .bind(kind.as_str())
    .bind(chunk)
    .bind(start)
    .bind(end)
    .bind(rank)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks a claimed task's job running, if it was queued (started_at).
pub(in super::super) async fn mark_running(conn: &mut Conn, job: &str) -> Result<()> {
    sqlx::query(concat!(
        "UPDATE jobs SET state = 'running', started_at = ",
        now!(),
        " WHERE id = $1 AND state = 'queued'"
    ))
    .bind(job)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait]
impl Leases for Backend {
    async fn claim(
        &self,
        worker: &str,
        lease: Duration,
        filter: &ClaimFilter,
    ) -> Result<Option<TaskLease>> {
        if filter.is_empty() {
            return Ok(None);
        }
        self.claim_task(worker, lease, filter).await
    }

    async fn heartbeat(&self, lease: &TaskLease, extend: Duration) -> Result<LeaseStatus> {
        let mut conn = self.write_one().await?;
        let changed = sqlx::query(concat!(
            "UPDATE tasks SET lease_expires_at = ",
            now!(),
            " + $3 WHERE ",
            held!()
        ))
        .bind(lease.task_id)
        .bind(&lease.token)
        .bind(millis(extend))
        .execute(&mut *conn)
        .await?;
        conn.commit().await?;
        Ok(status(changed.rows_affected()))
    }

    async fn checkpoint(&self, lease: &TaskLease, note: &str) -> Result<LeaseStatus> {
        let mut conn = self.write_one().await?;
        let changed = sqlx::query(concat!("UPDATE tasks SET checkpoint = $3 WHERE ", held!()))
            .bind(lease.task_id)
            .bind(&lease.token)
            .bind(note)
            .execute(&mut *conn)
            .await?;
        conn.commit().await?;
        Ok(status(changed.rows_affected()))
    }

    async fn complete_plan(
        &self,
        lease: &TaskLease,
        plan: &str,
        frames_total: u64,
        chunks: &[FrameRange],
    ) -> Result<LeaseStatus> {
        let mut tx = self.write().await?;
        // The job first: a cancel racing with us either comes before (we see it over) or
        // after (it sees, and cancels, the chunks we add).
        if !Backend::lock_job(&mut tx, &lease.job_id).await? {
            return Ok(LeaseStatus::Lost);
        }
        if finish_task(&mut tx, lease, TaskKind::Plan).await? == LeaseStatus::Lost {
            return Ok(LeaseStatus::Lost);
        }
        sqlx::query("UPDATE jobs SET plan = $2, frames_total = $3 WHERE id = $1")
            .bind(&lease.job_id)
            .bind(plan)
            .bind(frame_number(frames_total)?)
            .execute(&mut *tx)
            .await?;
        Backend::insert_chunks(&mut tx, &lease.job_id, chunks).await?;
        let rank = if chunks.is_empty() {
            0
        } else {
            ASSEMBLE_WAITING
        };
        insert_task(&mut tx, &lease.job_id, TaskKind::Assemble, 0, None, rank).await?;
        self.work_added(&mut tx).await?;
        tx.commit().await?;
        Ok(LeaseStatus::Held)
    }

    async fn complete_chunk(&self, lease: &TaskLease) -> Result<LeaseStatus> {
        let mut tx = self.write().await?;
        // The job first: completions of one job's last chunks take turns, so one of them sees
        // all chunks done and readies the assemble task (unlocked, each could see the other's
        // chunk still out). A chunk takes seconds to score: this lock is not hot.
        if !Backend::lock_job(&mut tx, &lease.job_id).await? {
            return Ok(LeaseStatus::Lost);
        }
        if finish_task(&mut tx, lease, TaskKind::Score).await? == LeaseStatus::Lost {
            return Ok(LeaseStatus::Lost);
        }
        // Moves the assemble task to the front of the claim order once the job's chunks are
        // all done (see `ASSEMBLE_WAITING`).
        let ready = sqlx::query(
            "UPDATE tasks SET rank = 0 WHERE job_id = $1 AND kind = 'assemble' AND rank <> 0 \
             AND NOT EXISTS (SELECT 1 FROM tasks s \
                WHERE s.job_id = $1 AND s.kind = 'score' AND s.state <> 'done')",
        )
        .bind(&lease.job_id)
        .execute(&mut *tx)
        .await?;
        if ready.rows_affected() > 0 {
            // The only work a chunk's completion adds: its job's assemble task.
            self.work_added(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(LeaseStatus::Held)
    }

    async fn complete_job(&self, lease: &TaskLease) -> Result<LeaseStatus> {
        let mut tx = self.write().await?;
        if !Backend::lock_job(&mut tx, &lease.job_id).await? {
            return Ok(LeaseStatus::Lost);
        }
        if finish_task(&mut tx, lease, TaskKind::Assemble).await? == LeaseStatus::Lost {
            return Ok(LeaseStatus::Lost);
        }
        sqlx::query(concat!(
            "UPDATE jobs SET state = 'succeeded', finished_at = ",
            now!(),
            " WHERE id = $1 AND state IN ('queued', 'running')"
        ))
        .bind(&lease.job_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(LeaseStatus::Held)
    }

    async fn fail(
        &self,
        lease: &TaskLease,
        error: &str,
        retryable: bool,
        backoff: Duration,
    ) -> Result<FailOutcome> {
        let mut tx = self.write().await?;
        if !Backend::lock_job(&mut tx, &lease.job_id).await? {
            return Ok(FailOutcome::LeaseLost);
        }
        let held: Option<HeldRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {HELD_COLUMNS} FROM tasks t JOIN jobs j ON j.id = t.job_id \
             WHERE t.id = $1 AND t.state = 'leased' AND t.token = $2 \
             AND j.state IN ('queued', 'running') {LOCK_TASK}"
        )))
        .bind(lease.task_id)
        .bind(&lease.token)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(held) = held else {
            return Ok(FailOutcome::LeaseLost);
        };
        let attempts = held.attempts + 1;
        let job_error = format!("{}: {error}", held.label()?);
        if retryable && attempts < held.max_attempts {
            let not_before: i64 = sqlx::query_scalar(concat!(
                "UPDATE tasks SET state = 'pending', attempts = $2, token = NULL, ",
                "lease_expires_at = NULL, last_error = $3, not_before = ",
                now!(),
                " + $4 WHERE id = $1 RETURNING not_before"
            ))
            .bind(lease.task_id)
            .bind(attempts)
            .bind(error)
            .bind(millis(backoff))
            .fetch_one(&mut *tx)
            .await?;
            // The job shows the latest error while it retries.
            sqlx::query("UPDATE jobs SET last_error = $2 WHERE id = $1")
                .bind(&lease.job_id)
                .bind(&job_error)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(FailOutcome::Retrying {
                not_before_ms: not_before,
            });
        }
        sqlx::query(concat!(
            "UPDATE tasks SET state = 'failed', attempts = $2, token = NULL, ",
            "lease_expires_at = NULL, last_error = $3, finished_at = ",
            now!(),
            " WHERE id = $1"
        ))
        .bind(lease.task_id)
        .bind(attempts)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        fail_job(&mut tx, &lease.job_id, &job_error).await?;
        tx.commit().await?;
        Ok(FailOutcome::JobFailed)
    }

    async fn release(&self, lease: &TaskLease) -> Result<()> {
        let mut conn = self.write_one().await?;
        let changed = sqlx::query(concat!(
            "UPDATE tasks SET state = 'pending', token = NULL, lease_expires_at = NULL, ",
            "not_before = ",
            now!(),
            " WHERE id = $1 AND state = 'leased' AND token = $2"
        ))
        .bind(lease.task_id)
        .bind(&lease.token)
        .execute(&mut *conn)
        .await?;
        if changed.rows_affected() > 0 {
            self.work_added(&mut conn).await?;
        }
        conn.commit().await?;
        Ok(())
    }

    async fn expire_worker(&self, worker: &str) -> Result<u64> {
        self.expire_held(worker).await
    }

    async fn wait_for_work(&self, timeout: Duration) {
        self.wait(timeout).await
    }
}
