//! [`TriggerBatches`] for both backends (see `shared/mod.rs`; the types are in
//! [`crate::batches`]). The conditional updates are what keep an object in one batch and a
//! batch with one holder.

use std::time::Duration;

use async_trait::async_trait;

use super::Backend;
use crate::batches::{BatchLease, BatchOutcome, BatchRecord, CollectedObject, TriggerBatches};
use crate::rows::millis;
use crate::{new_token, now_ms, QueueError, Result};

fn count(value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| QueueError::Corrupt(format!("a negative count: {value}")))
}

fn limit(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[async_trait]
impl TriggerBatches for Backend {
    async fn collect_objects(&self, trigger: &str, objects: &[CollectedObject]) -> Result<u64> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let mut added = 0;
        for object in objects {
            let done = sqlx::query(
                "INSERT INTO trigger_objects (trigger_name, object_key, version, seen_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(trigger)
            .bind(&object.key)
            .bind(&object.version)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            added += done.rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn cut_batch(
        &self,
        trigger: &str,
        max_objects: u64,
        due_ms: i64,
        lease: Duration,
    ) -> Result<Option<BatchLease>> {
        let now = now_ms();
        let max = limit(max_objects.max(1));
        let mut tx = self.write().await?;
        // Counted up to the batch's size only: a flood of waiting objects is not counted whole.
        let (waiting, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT), MIN(seen_at) FROM (SELECT seen_at FROM \
             trigger_objects WHERE trigger_name = $1 AND batch_id IS NULL \
             ORDER BY seen_at LIMIT $2) AS w",
        )
        .bind(trigger)
        .bind(max)
        .fetch_one(&mut *tx)
        .await?;
        let due = waiting >= max || oldest.is_some_and(|at| at <= due_ms);
        if waiting == 0 || !due {
            return Ok(None);
        }
        let token = new_token();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO trigger_batches (trigger_name, created_at, lease_token, \
             lease_expires_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(trigger)
        .bind(now)
        .bind(&token)
        .bind(now.saturating_add(millis(lease)))
        .fetch_one(&mut *tx)
        .await?;
        // `batch_id IS NULL` again outside: of two cuts racing for the same objects, the one
        // that waited for the other's row locks (PostgreSQL) takes none of them.
        let taken = sqlx::query(
            "UPDATE trigger_objects SET batch_id = $2 \
             WHERE trigger_name = $1 AND batch_id IS NULL AND (object_key, version) IN \
             (SELECT object_key, version FROM trigger_objects WHERE trigger_name = $1 \
              AND batch_id IS NULL ORDER BY seen_at, object_key LIMIT $3)",
        )
        .bind(trigger)
        .bind(id)
        .bind(max)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if taken == 0 {
            return Ok(None); // another server cut them first: rolled back
        }
        sqlx::query("UPDATE trigger_batches SET objects = $2 WHERE id = $1")
            .bind(id)
            .bind(limit(taken))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(BatchLease {
            id,
            trigger: trigger.to_string(),
            objects: taken,
            token,
        }))
    }

    async fn claim_open_batch(&self, trigger: &str, lease: Duration) -> Result<Option<BatchLease>> {
        let now = now_ms();
        let token = new_token();
        let mut tx = self.write().await?;
        // One statement: the inner select picks a candidate and the outer condition repeats
        // the test, so of two racing claims one updates the row and the other nothing.
        let row: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE trigger_batches SET lease_token = $2, lease_expires_at = $3 \
             WHERE id = (SELECT id FROM trigger_batches WHERE trigger_name = $1 \
                 AND job_id IS NULL AND error IS NULL AND lease_expires_at <= $4 \
                 ORDER BY id LIMIT 1) \
             AND job_id IS NULL AND error IS NULL AND lease_expires_at <= $4 \
             RETURNING id, objects",
        )
        .bind(trigger)
        .bind(&token)
        .bind(now.saturating_add(millis(lease)))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|(id, objects)| {
            Ok(BatchLease {
                id,
                trigger: trigger.to_string(),
                objects: count(objects)?,
                token,
            })
        })
        .transpose()
    }

    async fn batch_objects(&self, batch: i64) -> Result<Vec<CollectedObject>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT object_key, version FROM trigger_objects WHERE batch_id = $1 \
             ORDER BY seen_at, object_key",
        )
        .bind(batch)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(key, version)| CollectedObject { key, version })
            .collect())
    }

    async fn finish_batch(&self, lease: &BatchLease, outcome: &BatchOutcome) -> Result<bool> {
        let (job, error) = match outcome {
            BatchOutcome::Job(id) => (Some(id.as_str()), None),
            BatchOutcome::Refused(why) => (None, Some(why.as_str())),
        };
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE trigger_batches SET job_id = $3, error = $4, lease_token = NULL, \
             lease_expires_at = NULL \
             WHERE id = $1 AND lease_token = $2 AND job_id IS NULL AND error IS NULL",
        )
        .bind(lease.id)
        .bind(&lease.token)
        .bind(job)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn batches(&self, trigger: &str) -> Result<Vec<BatchRecord>> {
        let rows: Vec<(i64, i64, i64, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT id, objects, created_at, job_id, error FROM trigger_batches \
             WHERE trigger_name = $1 ORDER BY id",
        )
        .bind(trigger)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, objects, created_at_ms, job_id, error)| {
                Ok(BatchRecord {
                    id,
                    trigger: trigger.to_string(),
                    objects: count(objects)?,
                    created_at_ms,
                    job_id,
                    error,
                })
            })
            .collect()
    }

    async fn waiting_objects(&self, trigger: &str) -> Result<u64> {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM trigger_objects \
             WHERE trigger_name = $1 AND batch_id IS NULL",
        )
        .bind(trigger)
        .fetch_one(&self.pool)
        .await?;
        count(waiting)
    }
}
