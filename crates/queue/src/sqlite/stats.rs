//! Counts for dashboards and metrics in SQLite.

use std::time::Duration;

use sqlx::sqlite::SqlitePool;

use crate::rows::millis;
use crate::stats::{queue_stats, FramesRow, StateCount};
use crate::{now_ms, QueueStats, Result};

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
