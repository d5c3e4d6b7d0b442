//! Counts for dashboards and metrics, and job previews, in PostgreSQL (times by the database's
//! clock, like every other verb of this backend).

use std::time::Duration;

use sqlx::postgres::PgPool;

use crate::rows::millis;
use crate::stats::{preview, queue_stats, FramesRow, PreviewRow, StateCount};
use crate::{Preview, QueueStats, Result};

pub(super) async fn stats(
    pool: &PgPool,
    active_within: Duration,
    history: Duration,
) -> Result<QueueStats> {
    let mut conn = pool.acquire().await?;
    let states: Vec<StateCount> = sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        .fetch_all(&mut *conn)
        .await?;
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
    let frames: Vec<FramesRow> = sqlx::query_as(concat!(
        "SELECT (finished_at / 60000) * 60000 AS minute, worker, ",
        "SUM(frame_end - frame_start)::bigint FROM tasks ",
        "WHERE kind = 'score' AND state = 'done' AND finished_at >= ",
        now!(),
        " - $1 GROUP BY minute, worker ORDER BY minute, worker"
    ))
    .bind(millis(history))
    .fetch_all(&mut *conn)
    .await?;
    queue_stats(states, pending, leased, workers, frames)
}

pub(super) async fn save_preview(pool: &PgPool, p: &Preview) -> Result<bool> {
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
    .execute(pool)
    .await?;
    Ok(changed.rows_affected() == 1)
}

pub(super) async fn preview_of(pool: &PgPool, job: &str) -> Result<Option<Preview>> {
    let row: Option<PreviewRow> = sqlx::query_as(
        "SELECT job_id, chunk, frame, mime, before, after, created_at FROM previews \
         WHERE job_id = $1",
    )
    .bind(job)
    .fetch_optional(pool)
    .await?;
    row.map(preview).transpose()
}
