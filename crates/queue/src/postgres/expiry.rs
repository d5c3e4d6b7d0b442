//! Lease expiry: tasks whose worker stopped renewing the lease go back to pending, counting an
//! expiry, or fail their job once the expiry budget is spent.

use sqlx::postgres::PgConnection;
use sqlx::Connection as _;

use super::shared::{end_lease, LeaseEnded};
use super::PgQueue;
use crate::rows::{HeldRow, HELD_COLUMNS};
use crate::Result;

/// Puts back the tasks whose lease ran out, counting an expiry. Those whose expiry budget is
/// spent fail their job, one by one, each in a transaction that locks the job first.
pub(super) async fn expire_leases(conn: &mut PgConnection) -> Result<()> {
    let expired: Vec<(i64, bool)> = sqlx::query_as(concat!(
        "SELECT t.id, t.expiries + 1 >= j.max_expiries FROM tasks t ",
        "JOIN jobs j ON j.id = t.job_id WHERE t.state = 'leased' AND t.lease_expires_at < ",
        now!()
    ))
    .fetch_all(&mut *conn)
    .await?;
    if expired.is_empty() {
        return Ok(());
    }
    let (spent, back): (Vec<_>, Vec<_>) = expired.into_iter().partition(|(_, spent)| *spent);
    if !back.is_empty() {
        // SKIP LOCKED: claimers that find the same expired tasks do not queue behind each
        // other; whoever locks a task puts it back.
        let ids: Vec<i64> = back.into_iter().map(|(id, _)| id).collect();
        let back = sqlx::query(concat!(
            "WITH back AS (UPDATE tasks SET state = 'pending', expiries = expiries + 1, ",
            "token = NULL, lease_expires_at = NULL, not_before = ",
            now!(),
            " WHERE id IN (SELECT c.id FROM tasks c JOIN jobs cj ON cj.id = c.job_id ",
            "WHERE c.id = ANY($1) AND c.state = 'leased' AND c.lease_expires_at < ",
            now!(),
            " AND c.expiries + 1 < cj.max_expiries FOR UPDATE OF c SKIP LOCKED) ",
            "RETURNING id) SELECT back.id, ",
            notify!(),
            " FROM back"
        ))
        .bind(ids)
        .execute(&mut *conn)
        .await?;
        crate::stats::count_lease_expiries(back.rows_affected());
    }
    for (id, _) in spent {
        if expire_task(conn, id, None).await? {
            crate::stats::count_lease_expiries(1);
        }
    }
    Ok(())
}

/// Ends one lease with an expiry: the task is pending again, or it fails its job if its
/// expiry budget is spent. `worker` None: only if the lease ran out; Some: only if that
/// worker holds it. True if the lease was ended here.
///
/// On the caller's connection: a claim holding one and waiting for a second could wait forever
/// with the pool full of claims doing the same.
pub(super) async fn expire_task(
    conn: &mut PgConnection,
    task: i64,
    worker: Option<&str>,
) -> Result<bool> {
    let mut tx = conn.begin().await?;
    let job: Option<String> = sqlx::query_scalar("SELECT job_id FROM tasks WHERE id = $1")
        .bind(task)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(job) = job else {
        return Ok(false);
    };
    if !PgQueue::lock_job(&mut tx, &job).await? {
        return Ok(false);
    }
    let which = match worker {
        None => concat!("t.lease_expires_at < ", now!()),
        Some(_) => "t.worker = $2",
    };
    let sql = format!(
        "SELECT {HELD_COLUMNS} FROM tasks t JOIN jobs j ON j.id = t.job_id \
         WHERE t.id = $1 AND t.state = 'leased' AND {which} FOR UPDATE OF t"
    );
    let mut query = sqlx::query_as::<_, HeldRow>(sqlx::AssertSqlSafe(sql)).bind(task);
    if let Some(worker) = worker {
        query = query.bind(worker);
    }
    let held = query.fetch_optional(&mut *tx).await?;
    let Some(held) = held else {
        return Ok(false);
    };
    match end_lease(&mut tx, task, &job, &held).await? {
        LeaseEnded::PutBack => {
            sqlx::query(concat!("SELECT ", notify!()))
                .execute(&mut *tx)
                .await?;
        }
        LeaseEnded::Failed => {}
        // The row is locked and was read leased: not reached.
        LeaseEnded::NotLeased => return Ok(false),
    }
    tx.commit().await?;
    Ok(true)
}
