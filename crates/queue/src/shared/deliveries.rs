//! [`Deliveries`] for both backends (see `shared/mod.rs`; the statements and rows are in
//! [`crate::deliveries`]). The conditional update of the claim is what keeps two servers from
//! sending one delivery.

use std::time::Duration;

use async_trait::async_trait;

use super::{Backend, Conn};
use crate::deliveries::{
    finish_columns, lease, lease_ms, new_webhook_id, record, ClaimRow, DeliveryRow, CLAIM, FINISH,
    INSERT, OF_JOB,
};
use crate::{now_ms, Deliveries, DeliveryLease, DeliveryOutcome, DeliveryRecord, Result};

/// Writes a pending delivery in the caller's transaction (a submission's).
pub(in super::super) async fn insert(
    conn: &mut Conn,
    job: &str,
    url: &str,
    now: i64,
) -> Result<i64> {
    Ok(sqlx::query_scalar(INSERT)
        .bind(job)
        .bind(url)
        .bind(new_webhook_id())
        .bind(now)
        .fetch_one(&mut *conn)
        .await?)
}

#[async_trait]
impl Deliveries for Backend {
    async fn add_delivery(&self, job: &str, url: &str) -> Result<i64> {
        let mut tx = self.write().await?;
        let id = insert(&mut tx, job, url, now_ms()).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn claim_delivery(&self, lease_for: Duration) -> Result<Option<DeliveryLease>> {
        let token = crate::new_token();
        let mut tx = self.write().await?;
        let row: Option<ClaimRow> = sqlx::query_as(CLAIM)
            .bind(&token)
            .bind(now_ms())
            .bind(lease_ms(lease_for))
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row.map(|row| lease(row, token)))
    }

    async fn finish_delivery(
        &self,
        lease: &DeliveryLease,
        outcome: &DeliveryOutcome,
    ) -> Result<bool> {
        let (state, next, error, finished) = finish_columns(outcome, now_ms());
        let mut tx = self.write().await?;
        let done = sqlx::query(FINISH)
            .bind(lease.id)
            .bind(&lease.token)
            .bind(state)
            .bind(next)
            .bind(error)
            .bind(finished)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn deliveries(&self, job: &str) -> Result<Vec<DeliveryRecord>> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(OF_JOB)
            .bind(job)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(record).collect()
    }
}
