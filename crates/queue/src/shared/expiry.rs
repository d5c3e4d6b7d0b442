//! Ending one lease with an expiry, for both backends (see `shared/mod.rs`). Which leases to end,
//! and how they are locked, each backend decides in its own `expiry.rs`.

use super::jobs::fail_job;
use super::Conn;
use crate::rows::{expiry_error, HeldRow};
use crate::Result;

/// What [`end_lease`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in super::super) enum LeaseEnded {
    /// The task is pending again: work was added.
    PutBack,
    /// Its expiry budget was spent: it failed, and so did its job.
    Failed,
    /// It was no longer leased (an earlier task of its job failed the job and canceled it).
    NotLeased,
}

/// Ends the lease on `task` (of `job`, read as `held`), counting an expiry: pending again, or,
/// once the expiry budget is spent, failed with its job.
pub(in super::super) async fn end_lease(
    conn: &mut Conn,
    task: i64,
    job: &str,
    held: &HeldRow,
) -> Result<LeaseEnded> {
    let expiries = held.expiries + 1;
    if expiries < held.max_expiries {
        let changed = sqlx::query(concat!(
            "UPDATE tasks SET state = 'pending', expiries = $2, token = NULL, ",
            "lease_expires_at = NULL, not_before = ",
            now!(),
            " WHERE id = $1 AND state = 'leased'"
        ))
        .bind(task)
        .bind(expiries)
        .execute(&mut *conn)
        .await?;
        return Ok(if changed.rows_affected() == 1 {
            LeaseEnded::PutBack
        } else {
            LeaseEnded::NotLeased
        });
    }
    let error = expiry_error(expiries, held.worker.as_deref());
    let changed = sqlx::query(concat!(
        "UPDATE tasks SET state = 'failed', expiries = $2, token = NULL, ",
        "lease_expires_at = NULL, last_error = $3, finished_at = ",
        now!(),
        " WHERE id = $1 AND state = 'leased'"
    ))
    .bind(task)
    .bind(expiries)
    .bind(&error)
    .execute(&mut *conn)
    .await?;
    if changed.rows_affected() == 0 {
        return Ok(LeaseEnded::NotLeased);
    }
    fail_job(conn, job, &format!("{}: {error}", held.label()?)).await?;
    Ok(LeaseEnded::Failed)
}
