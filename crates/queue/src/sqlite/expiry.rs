//! Lease expiry: tasks whose worker stopped renewing the lease go back to pending, counting an
//! expiry, or fail their job once the expiry budget is spent.

use sqlx::sqlite::SqliteConnection;

use super::shared::{end_lease, LeaseEnded};
use crate::rows::{HeldRow, HELD_COLUMNS};
use crate::Result;

/// What ending leases did.
#[derive(Debug, Default)]
pub(super) struct Expired {
    /// Tasks pending again.
    pub(super) put_back: u64,
    /// Tasks whose expiry budget was spent: they failed their jobs.
    pub(super) failed: u64,
}

/// A leased task read for [`expire_leases`].
#[derive(Debug, sqlx::FromRow)]
struct LeasedRow {
    id: i64,
    job_id: String,
    #[sqlx(flatten)]
    held: HeldRow,
}

/// Ends the leases of the tasks that ran out by `now` (`worker` None) or that `worker` holds,
/// counting an expiry on each: pending again, or, once the expiry budget is spent, failed with
/// their job. Inside a write transaction.
pub(super) async fn expire_leases(
    conn: &mut SqliteConnection,
    now: i64,
    worker: Option<&str>,
) -> Result<Expired> {
    // Each in the order of its index (`tasks_leased`, `tasks_worker`): ordered otherwise,
    // SQLite may scan the whole table instead.
    let which = match worker {
        None => "t.lease_expires_at < ?1 ORDER BY t.lease_expires_at",
        Some(_) => "t.worker = ?1 ORDER BY t.id",
    };
    let sql = format!(
        "SELECT t.id, t.job_id, {HELD_COLUMNS} FROM tasks t JOIN jobs j ON j.id = t.job_id \
         WHERE t.state = 'leased' AND {which}"
    );
    let query = sqlx::query_as::<_, LeasedRow>(sqlx::AssertSqlSafe(sql));
    let rows = match worker {
        None => query.bind(now),
        Some(w) => query.bind(w.to_string()),
    }
    .fetch_all(&mut *conn)
    .await?;

    let mut expired = Expired::default();
    for LeasedRow { id, job_id, held } in rows {
        match end_lease(conn, id, &job_id, &held).await? {
            LeaseEnded::PutBack => expired.put_back += 1,
            LeaseEnded::Failed => expired.failed += 1,
            LeaseEnded::NotLeased => {}
        }
    }
    Ok(expired)
}
