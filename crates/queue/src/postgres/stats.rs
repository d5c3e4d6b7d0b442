//! Counts for dashboards and metrics in PostgreSQL (times by the database's
//! clock, like every other verb of this backend).

use std::time::Duration;

use sqlx::postgres::PgPool;

use crate::rows::millis;
use crate::stats::{queue_stats, FramesRow, StateCount};
use crate::{QueueStats, Result};

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
