//! [`DatasetItems`] for both backends (see `shared/mod.rs`).

use std::collections::HashMap;

use async_trait::async_trait;
use fresco_core::FrameRange;

use super::{Backend, Conn};
use crate::items::{DatasetItems, ItemCounts, PinnedItem};
use crate::rows::frame_number;
use crate::{LeaseStatus, QueueError, Result, TaskLease};

/// Whether the lease still holds its task, of a job that is not over.
async fn held(conn: &mut Conn, lease: &TaskLease) -> Result<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM tasks WHERE id = $1 AND state = 'leased' AND token = $2 AND EXISTS \
         (SELECT 1 FROM jobs j WHERE j.id = tasks.job_id AND j.state IN ('queued', 'running'))",
    )
    .bind(lease.task_id)
    .bind(&lease.token)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}

fn count(value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| QueueError::Corrupt(format!("a negative count: {value}")))
}

#[async_trait]
impl DatasetItems for Backend {
    async fn clear_items(&self, lease: &TaskLease) -> Result<LeaseStatus> {
        let mut tx = self.write().await?;
        if !held(&mut tx, lease).await? {
            return Ok(LeaseStatus::Lost);
        }
        sqlx::query("DELETE FROM dataset_items WHERE job_id = $1")
            .bind(&lease.job_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(LeaseStatus::Held)
    }

    async fn pin_items(&self, lease: &TaskLease, items: &[PinnedItem]) -> Result<LeaseStatus> {
        let mut tx = self.write().await?;
        if !held(&mut tx, lease).await? {
            return Ok(LeaseStatus::Lost);
        }
        for item in items {
            sqlx::query(
                "INSERT INTO dataset_items (job_id, idx, item_key, size, version) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&lease.job_id)
            .bind(frame_number(item.index)?)
            .bind(&item.key)
            .bind(frame_number(item.size)?)
            .bind(&item.version)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(LeaseStatus::Held)
    }

    async fn items(&self, job: &str, range: FrameRange) -> Result<Vec<PinnedItem>> {
        let rows: Vec<(i64, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT idx, item_key, size, version FROM dataset_items \
             WHERE job_id = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
        )
        .bind(job)
        .bind(frame_number(range.start)?)
        .bind(frame_number(range.end)?)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(index, key, size, version)| {
                Ok(PinnedItem {
                    index: count(index)?,
                    key,
                    size: count(size)?,
                    version,
                })
            })
            .collect()
    }

    async fn record_failures(
        &self,
        lease: &TaskLease,
        failures: &[(u64, String)],
    ) -> Result<LeaseStatus> {
        let mut tx = self.write().await?;
        if !held(&mut tx, lease).await? {
            return Ok(LeaseStatus::Lost);
        }
        sqlx::query(
            "UPDATE dataset_items SET failure = NULL WHERE job_id = $1 AND idx >= $2 AND idx < $3",
        )
        .bind(&lease.job_id)
        .bind(frame_number(lease.frames.start)?)
        .bind(frame_number(lease.frames.end)?)
        .execute(&mut *tx)
        .await?;
        for (index, kind) in failures {
            sqlx::query("UPDATE dataset_items SET failure = $3 WHERE job_id = $1 AND idx = $2")
                .bind(&lease.job_id)
                .bind(frame_number(*index)?)
                .bind(kind)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(LeaseStatus::Held)
    }

    async fn item_counts(&self, job: &str) -> Result<ItemCounts> {
        let (total, failed): (i64, i64) = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN failure IS NULL THEN 0 ELSE 1 END), 0) AS BIGINT) \
             FROM dataset_items WHERE job_id = $1",
        )
        .bind(job)
        .fetch_one(&self.pool)
        .await?;
        Ok(ItemCounts {
            total: count(total)?,
            failed: count(failed)?,
        })
    }

    async fn failed_items(&self, jobs: &[String]) -> Result<HashMap<String, u64>> {
        let mut counts = HashMap::new();
        // A statement's binds are bounded (SQLite's default is 32766): ask in slices.
        for slice in jobs.chunks(500) {
            let marks: Vec<String> = (1..=slice.len()).map(|n| format!("${n}")).collect();
            // `failure IS NOT NULL` lets both databases read the partial index of failures; the
            // text is made of placeholders only, the ids are bound.
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT job_id, CAST(COUNT(*) AS BIGINT) FROM dataset_items \
                 WHERE failure IS NOT NULL AND job_id IN ({}) GROUP BY job_id",
                marks.join(", ")
            ));
            let mut query = sqlx::query_as::<_, (String, i64)>(sql);
            for job in slice {
                query = query.bind(job);
            }
            for (job, failed) in query.fetch_all(&self.pool).await? {
                counts.insert(job, count(failed)?);
            }
        }
        Ok(counts)
    }
}
