//! Counts for dashboards and metrics, and job previews, in SQLite.

use std::time::Duration;

use sqlx::sqlite::SqlitePool;

use crate::rows::millis;
use crate::stats::{preview, queue_stats, FramesRow, PreviewRow, StateCount};
use crate::{now_ms, Preview, QueueStats, Result};

pub(super) async fn stats(
    pool: &SqlitePool,
    active_within: Duration,
    history: Duration,
) -> Result<QueueStats> {
    let now = now_ms();
    let mut conn = pool.acquire().await?;
    let states: Vec<StateCount> = sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        .fetch_all(&mut *conn)
        .await?;
    // Each count reads its partial index (tasks_claim_order, tasks_leased).
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tasks WHERE state = 'pending'")
        .fetch_one(&mut *conn)
        .await?;
    let leased: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tasks WHERE state = 'leased'")
        .fetch_one(&mut *conn)
        .await?;
    let workers: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM workers WHERE state <> 'stopped' AND last_seen >= ?1",
    )
    .bind(now - millis(active_within))
    .fetch_one(&mut *conn)
    .await?;
    let frames: Vec<FramesRow> = sqlx::query_as(
        "SELECT (finished_at / 60000) * 60000 AS minute, worker, \
         SUM(frame_end - frame_start) FROM tasks INDEXED BY tasks_done_chunks \
         WHERE kind = 'score' AND state = 'done' AND finished_at >= ?1 \
         GROUP BY minute, worker ORDER BY minute, worker",
    )
    .bind(now - millis(history))
    .fetch_all(&mut *conn)
    .await?;
    queue_stats(states, pending, leased, workers, frames)
}

pub(super) async fn save_preview(conn: &mut sqlx::SqliteConnection, p: &Preview) -> Result<bool> {
    let changed = sqlx::query(
        "INSERT INTO previews (job_id, chunk, frame, mime, before, after, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (job_id) DO NOTHING",
    )
    .bind(&p.job_id)
    .bind(i64::from(p.chunk))
    .bind(i64::try_from(p.frame).unwrap_or(i64::MAX))
    .bind(&p.mime)
    .bind(&p.before)
    .bind(&p.after)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(changed.rows_affected() == 1)
}

pub(super) async fn preview_of(pool: &SqlitePool, job: &str) -> Result<Option<Preview>> {
    let row: Option<PreviewRow> = sqlx::query_as(
        "SELECT job_id, chunk, frame, mime, before, after, created_at FROM previews \
         WHERE job_id = ?1",
    )
    .bind(job)
    .fetch_optional(pool)
    .await?;
    row.map(preview).transpose()
}
