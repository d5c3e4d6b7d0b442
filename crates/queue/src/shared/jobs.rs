//! [`Jobs`], [`JobLogs`], [`Workers`] and [`Stats`] for both backends (see `shared/mod.rs`).

use std::time::Duration;

use async_trait::async_trait;
use fresco_core::JobState;

use super::{Backend, Conn, DONE_CHUNKS_INDEX, LOCK_ROW};
use crate::rows::millis;
use crate::rows::{
    job_select, JobRow, TaskRow, ASSEMBLE_WAITING, NEWEST_FIRST, TASK_COLUMNS, TASK_ORDER,
};
use crate::stats::{preview, queue_stats, FramesRow, PreviewRow, StateCount};
use crate::{
    JobLogs, JobRecord, Jobs, LogLine, NewJob, Preview, QueueError, QueueStats, Result, Stats,
    Submitted, TaskCounts, TaskRecord, WorkerRecord, WorkerStatus, Workers,
};

/// Fails a job with `error` and cancels its unfinished tasks (whose holders then see `Lost`).
/// With the job's row locked where the backend locks rows.
pub(super) async fn fail_job(conn: &mut Conn, job: &str, error: &str) -> Result<()> {
    sqlx::query(concat!(
        "UPDATE jobs SET state = 'failed', last_error = $2, finished_at = ",
        now!(),
        " WHERE id = $1 AND state IN ('queued', 'running')"
    ))
    .bind(job)
    .bind(error)
    .execute(&mut *conn)
    .await?;
    cancel_tasks(conn, job).await
}

async fn cancel_tasks(conn: &mut Conn, job: &str) -> Result<()> {
    sqlx::query(concat!(
        "UPDATE tasks SET state = 'canceled', token = NULL, lease_expires_at = NULL, ",
        "finished_at = ",
        now!(),
        " WHERE job_id = $1 AND state IN ('pending', 'leased')"
    ))
    .bind(job)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Makes a failed or canceled job's tasks pending again with fresh budgets (see
/// [`Jobs::retry`]), once the job itself is queued again.
async fn requeue_tasks(conn: &mut Conn, job: &str) -> Result<()> {
    sqlx::query(concat!(
        "UPDATE tasks SET state = 'pending', attempts = 0, expiries = 0, token = NULL, ",
        "lease_expires_at = NULL, finished_at = NULL, not_before = ",
        now!(),
        " WHERE job_id = $1 AND (state IN ('failed', 'canceled') OR kind = 'score')"
    ))
    .bind(job)
    .execute(&mut *conn)
    .await?;
    // Chunks pending again: the assemble task waits for them.
    sqlx::query(
        "UPDATE tasks SET rank = $2 WHERE job_id = $1 AND kind = 'assemble' \
         AND EXISTS (SELECT 1 FROM tasks s \
            WHERE s.job_id = $1 AND s.kind = 'score' AND s.state <> 'done')",
    )
    .bind(job)
    .bind(ASSEMBLE_WAITING)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The job first submitted with this idempotency key, if any (its id).
pub(in super::super) async fn job_with_key(conn: &mut Conn, key: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM jobs WHERE idempotency_key = $1")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// The queued or running job with this identity, if any (its id).
pub(in super::super) async fn active_with_identity(
    conn: &mut Conn,
    identity: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM jobs WHERE identity = $1 AND state IN ('queued', 'running')",
    )
    .bind(identity)
    .fetch_optional(&mut *conn)
    .await?)
}

#[async_trait]
impl Jobs for Backend {
    async fn submit(&self, job: NewJob) -> Result<Submitted> {
        self.submit_as(job, None).await
    }

    async fn cancel(&self, job: &str) -> Result<bool> {
        let mut tx = self.write().await?;
        let changed = sqlx::query(concat!(
            "UPDATE jobs SET state = 'canceled', finished_at = ",
            now!(),
            " WHERE id = $1 AND state IN ('queued', 'running')"
        ))
        .bind(job)
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM jobs WHERE id = $1")
                .bind(job)
                .fetch_optional(&mut *tx)
                .await?;
            return match exists {
                Some(_) => Ok(false),
                None => Err(QueueError::NoSuchJob(job.into())),
            };
        }
        cancel_tasks(&mut tx, job).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn retry(&self, job: &str) -> Result<bool> {
        let mut tx = self.write().await?;
        let found: Option<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT state, identity FROM jobs WHERE id = $1 {LOCK_ROW}"
        )))
        .bind(job)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((state, identity)) = found else {
            return Err(QueueError::NoSuchJob(job.into()));
        };
        match crate::rows::job_state(&state)? {
            JobState::Failed | JobState::Canceled => {}
            JobState::Queued | JobState::Running | JobState::Succeeded => return Ok(false),
        }
        let requeued = sqlx::query(
            "UPDATE jobs SET state = 'queued', started_at = NULL, finished_at = NULL \
             WHERE id = $1",
        )
        .bind(job)
        .execute(&mut *tx)
        .await;
        match requeued {
            Ok(_) => {}
            // Another job with this identity is queued or running (the unique index on active
            // identities): it does the work.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tracing::debug!("not retrying job {job}: identity {identity} is active");
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
        requeue_tasks(&mut tx, job).await?;
        self.work_added(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn job(&self, job: &str) -> Result<Option<JobRecord>> {
        self.job_where("j.id = $1", job).await
    }

    async fn jobs_before(
        &self,
        states: &[JobState],
        limit: u32,
        before_seq: Option<i64>,
    ) -> Result<Vec<JobRecord>> {
        let filter = crate::rows::page_filter(states, before_seq);
        let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(job_select(
            &filter,
            NEWEST_FIRST,
            Some(limit),
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(JobRow::into_record).collect()
    }

    async fn job_by_idempotency_key(&self, key: &str) -> Result<Option<JobRecord>> {
        self.job_where("j.idempotency_key = $1", key).await
    }

    async fn active_job(&self, identity: &str) -> Result<Option<JobRecord>> {
        self.job_where(
            "j.identity = $1 AND j.state IN ('queued', 'running')",
            identity,
        )
        .await
    }

    async fn tasks(&self, job: &str) -> Result<Vec<TaskRecord>> {
        let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM tasks t WHERE t.job_id = $1 {TASK_ORDER}"
        )))
        .bind(job)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TaskRow::into_record).collect()
    }
}

impl Backend {
    /// The one job that `filter` (on `jobs j`, with `$1` bound to `value`) finds, if any.
    async fn job_where(&self, filter: &str, value: &str) -> Result<Option<JobRecord>> {
        let row: Option<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(job_select(filter, "", None)))
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        row.map(JobRow::into_record).transpose()
    }
}

#[async_trait]
impl JobLogs for Backend {
    async fn log(&self, job: &str, worker: Option<&str>, message: &str) -> Result<()> {
        let mut conn = self.write_one().await?;
        sqlx::query(concat!(
            "INSERT INTO job_log (job_id, at, worker, message) VALUES ($1, ",
            now!(),
            ", $2, $3)"
        ))
        .bind(job)
        .bind(worker)
        .bind(message)
        .execute(&mut *conn)
        .await?;
        conn.commit().await?;
        Ok(())
    }

    async fn job_log(&self, job: &str, after: Option<i64>, limit: u32) -> Result<Vec<LogLine>> {
        let rows: Vec<(i64, i64, Option<String>, String)> = sqlx::query_as(
            "SELECT id, at, worker, message FROM job_log WHERE job_id = $1 AND id > $2 \
             ORDER BY id LIMIT $3",
        )
        .bind(job)
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(crate::rows::log_line).collect())
    }

    async fn save_preview(&self, p: &Preview) -> Result<bool> {
        let mut conn = self.write_one().await?;
        let changed = sqlx::query(concat!(
            "INSERT INTO previews (job_id, chunk, frame, mime, before, after, created_at) ",
            "VALUES ($1, $2, $3, $4, $5, $6, ",
            now!(),
            ") ON CONFLICT (job_id) DO NOTHING"
        ))
        .bind(&p.job_id)
        .bind(i32::try_from(p.chunk).unwrap_or(i32::MAX))
        .bind(i64::try_from(p.frame).unwrap_or(i64::MAX))
        .bind(&p.mime)
        .bind(&p.before)
        .bind(&p.after)
        .execute(&mut *conn)
        .await?;
        conn.commit().await?;
        Ok(changed.rows_affected() == 1)
    }

    async fn preview(&self, job: &str) -> Result<Option<Preview>> {
        let row: Option<PreviewRow> = sqlx::query_as(
            "SELECT job_id, chunk, frame, mime, before, after, created_at FROM previews \
             WHERE job_id = $1",
        )
        .bind(job)
        .fetch_optional(&self.pool)
        .await?;
        row.map(preview).transpose()
    }
}

#[async_trait]
impl Workers for Backend {
    async fn worker_seen(&self, status: &WorkerStatus) -> Result<()> {
        let mut conn = self.write_one().await?;
        sqlx::query(concat!(
            "INSERT INTO workers (name, host, device, state, current, started_at, last_seen) ",
            "VALUES ($1, $2, $3, $4, $5, ",
            now!(),
            ", ",
            now!(),
            ") ON CONFLICT (name) DO UPDATE SET host = excluded.host, device = excluded.device, ",
            "state = excluded.state, current = excluded.current, last_seen = excluded.last_seen"
        ))
        .bind(&status.name)
        .bind(&status.host)
        .bind(&status.device)
        .bind(&status.state)
        .bind(&status.current)
        .execute(&mut *conn)
        .await?;
        conn.commit().await?;
        Ok(())
    }

    async fn workers(&self, within: Duration) -> Result<Vec<WorkerRecord>> {
        let rows: Vec<crate::rows::WorkerRow> = sqlx::query_as(concat!(
            "SELECT name, host, device, state, current, started_at, last_seen FROM workers ",
            "WHERE last_seen >= ",
            now!(),
            " - $1 ORDER BY last_seen DESC, name"
        ))
        .bind(crate::rows::millis(within))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(crate::rows::WorkerRow::into_record)
            .collect())
    }
}

#[async_trait]
impl Stats for Backend {
    async fn stats(&self, active_within: Duration, history: Duration) -> Result<QueueStats> {
        let mut conn = self.pool.acquire().await?;
        let states: Vec<StateCount> =
            sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state")
                .fetch_all(&mut *conn)
                .await?;
        // Each count reads its partial index (tasks_claim_order, tasks_leased).
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tasks WHERE state = 'pending'")
            .fetch_one(&mut *conn)
            .await?;
        let leased: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tasks WHERE state = 'leased'")
            .fetch_one(&mut *conn)
            .await?;
        let workers: i64 = sqlx::query_scalar(concat!(
            "SELECT COUNT(*) FROM workers WHERE state <> 'stopped' AND last_seen >= ",
            now!(),
            " - $1"
        ))
        .bind(millis(active_within))
        .fetch_one(&mut *conn)
        .await?;
        let frames: Vec<FramesRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT (finished_at / 60000) * 60000 AS minute, worker, \
             CAST(SUM(frame_end - frame_start) AS BIGINT) FROM tasks {DONE_CHUNKS_INDEX} \
             WHERE kind = 'score' AND state = 'done' AND finished_at >= {} - $1 \
             GROUP BY minute, worker ORDER BY minute, worker",
            now!()
        )))
        .bind(millis(history))
        .fetch_all(&mut *conn)
        .await?;
        queue_stats(states, pending, leased, workers, frames)
    }

    async fn task_counts(&self) -> Result<TaskCounts> {
        self.count_tasks(None).await
    }

    async fn task_counts_of_kind(&self, device_kind: &str) -> Result<TaskCounts> {
        self.count_tasks(Some(device_kind)).await
    }
}

impl Backend {
    /// The backend's task counts, over the jobs of one device kind or all, in one query.
    async fn count_tasks(&self, device_kind: Option<&str>) -> Result<TaskCounts> {
        let (pending, leased): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(CASE WHEN t.state = 'pending' THEN 1 END), \
             COUNT(CASE WHEN t.state = 'leased' THEN 1 END) \
             FROM tasks t JOIN jobs j ON j.id = t.job_id \
             WHERE j.state IN ('queued', 'running') \
             AND (t.state = 'leased' OR (t.state = 'pending' AND t.rank <> $1)) \
             AND (CAST($2 AS TEXT) IS NULL OR j.device_kind = CAST($2 AS TEXT))",
        )
        .bind(ASSEMBLE_WAITING)
        .bind(device_kind)
        .fetch_one(&self.pool)
        .await?;
        Ok(TaskCounts {
            pending: pending.max(0) as u64,
            leased: leased.max(0) as u64,
        })
    }
}
