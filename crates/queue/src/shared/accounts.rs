//! [`Accounts`](crate::auth::Accounts): tokens, sessions, job owners and the audit trail (see [`crate::auth`]), one
//! copy for both backends (see `shared/mod.rs`). Token and session times are the server
//! process's clock, which also checks them.

use super::{Backend, Conn};
use crate::auth::{
    audit_entry, new_token_id, owned_filter, shares_column, token_record, AuditRow, TokenRow,
    TOKEN_COLUMNS,
};
use crate::rows::{job_select, JobRow, NEWEST_FIRST};
use crate::{
    now_ms, Admission, AuditEntry, AuditFilter, CapReached, IssuedToken, JobRecord, NewAudit,
    NewJob, NewToken, QueueError, Result, SessionRecord, Submitted, TokenRecord,
};
use crate::{AuditTrail, OwnedJobs, Sessions, Tokens};
use async_trait::async_trait;
use fresco_core::JobState;

/// Refuses with [`QueueError::CapReached`] when `admission`'s caps are reached (inside the
/// submission's write transaction, so no other submission counts in between).
pub(in super::super) async fn check_caps(conn: &mut Conn, admission: &Admission) -> Result<()> {
    if let Some(cap) = admission.max_active_per_owner {
        let active: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE owner = $1 AND state IN ('queued', 'running')",
        )
        .bind(&admission.owner)
        .fetch_one(&mut *conn)
        .await?;
        let active = active.max(0) as u64;
        if active >= cap {
            return Err(QueueError::CapReached(CapReached::Owner { active, cap }));
        }
    }
    if let Some(cap) = admission.max_active {
        let active: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')")
                .fetch_one(&mut *conn)
                .await?;
        let active = active.max(0) as u64;
        if active >= cap {
            return Err(QueueError::CapReached(CapReached::Total { active, cap }));
        }
    }
    Ok(())
}

async fn insert_audit(conn: &mut Conn, entry: &NewAudit<'_>, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(now)
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.target)
    .bind(entry.detail)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The token with this id or name, if any.
async fn token_named(conn: &mut Conn, id_or_name: &str) -> Result<Option<TokenRecord>> {
    let row: Option<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1 OR name = $1"
    )))
    .bind(id_or_name)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(token_record).transpose()
}

#[async_trait]
impl Tokens for Backend {
    async fn create_token(&self, token: &NewToken, actor: Option<&str>) -> Result<IssuedToken> {
        let secret = crate::new_secret(crate::TOKEN_PREFIX);
        let record = TokenRecord {
            id: new_token_id(),
            name: token.name.clone(),
            role: token.role,
            created_at_ms: now_ms(),
            expires_at_ms: token.expires_at_ms,
            revoked_at_ms: None,
            shares: Vec::new(),
        };
        let mut tx = self.write().await?;
        let taken: Option<String> = sqlx::query_scalar("SELECT id FROM tokens WHERE name = $1")
            .bind(&record.name)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(QueueError::NameTaken(record.name));
        }
        sqlx::query(
            "INSERT INTO tokens (id, name, role, hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&record.id)
        .bind(&record.name)
        .bind(record.role.as_str())
        .bind(crate::hash_secret(&secret))
        .bind(record.created_at_ms)
        .bind(record.expires_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| match e {
            // Made at the same moment by another request (PostgreSQL; SQLite's write lock
            // makes the check above and this insert one step).
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                QueueError::NameTaken(record.name.clone())
            }
            other => other.into(),
        })?;
        let detail = format!("role {}", record.role);
        insert_audit(
            &mut tx,
            &NewAudit {
                actor,
                action: "token-create",
                target: Some(&record.name),
                detail: Some(&detail),
            },
            record.created_at_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(IssuedToken { record, secret })
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let rows: Vec<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at DESC, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(token_record).collect()
    }

    async fn set_token_shares(
        &self,
        id_or_name: &str,
        shares: &[String],
        actor: Option<&str>,
    ) -> Result<Option<TokenRecord>> {
        let mut tx = self.write().await?;
        let Some(mut record) = token_named(&mut tx, id_or_name).await? else {
            return Ok(None);
        };
        sqlx::query("UPDATE tokens SET shares = $2 WHERE id = $1")
            .bind(&record.id)
            .bind(shares_column(shares))
            .execute(&mut *tx)
            .await?;
        record.shares = shares.to_vec();
        let detail = format!("shares: {}", shares.join(", "));
        insert_audit(
            &mut tx,
            &NewAudit {
                actor,
                action: "token-share",
                target: Some(&record.name),
                detail: Some(&detail),
            },
            now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(record))
    }

    async fn revoke_token(
        &self,
        id_or_name: &str,
        actor: Option<&str>,
    ) -> Result<Option<TokenRecord>> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let Some(mut record) = token_named(&mut tx, id_or_name).await? else {
            return Ok(None);
        };
        if record.revoked_at_ms.is_none() {
            sqlx::query("UPDATE tokens SET revoked_at = $2 WHERE id = $1")
                .bind(&record.id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            record.revoked_at_ms = Some(now);
            insert_audit(
                &mut tx,
                &NewAudit {
                    actor,
                    action: "token-revoke",
                    target: Some(&record.name),
                    detail: None,
                },
                now,
            )
            .await?;
        }
        sqlx::query("DELETE FROM sessions WHERE token_id = $1")
            .bind(&record.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(record))
    }

    async fn authenticate(&self, hash: &str) -> Result<Option<TokenRecord>> {
        let row: Option<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)"
        )))
        .bind(hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.map(token_record).transpose()
    }
}

#[async_trait]
impl Sessions for Backend {
    async fn open_session(
        &self,
        hash: &str,
        token_id: &str,
        csrf: &str,
        expires_at_ms: i64,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (hash, token_id, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash)
        .bind(token_id)
        .bind(csrf)
        .bind(now)
        .bind(expires_at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session(&self, hash: &str) -> Result<Option<SessionRecord>> {
        let now = now_ms();
        let row: Option<(
            String,
            i64,
            String,
            String,
            String,
            i64,
            Option<i64>,
            Option<i64>,
            String,
        )> = sqlx::query_as(
            "SELECT s.csrf, s.expires_at, t.id, t.name, t.role, t.created_at, \
                 t.expires_at, t.revoked_at, t.shares FROM sessions s JOIN tokens t ON t.id = s.token_id \
                 WHERE s.hash = $1 AND s.expires_at > $2 AND t.revoked_at IS NULL \
                 AND (t.expires_at IS NULL OR t.expires_at > $2)",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(
            |(csrf, expires, id, name, role, created, t_expires, revoked, shares)| {
                Ok(SessionRecord {
                    token: token_record((id, name, role, created, t_expires, revoked, shares))?,
                    csrf,
                    expires_at_ms: expires,
                })
            },
        )
        .transpose()
    }

    async fn close_session(&self, hash: &str) -> Result<bool> {
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM sessions WHERE hash = $1")
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl OwnedJobs for Backend {
    async fn submit_owned(&self, job: NewJob, admission: &Admission) -> Result<Submitted> {
        self.submit_as(job, Some(admission)).await
    }

    async fn owned_jobs_before(
        &self,
        owner: &str,
        states: &[JobState],
        limit: u32,
        before_seq: Option<i64>,
    ) -> Result<Vec<JobRecord>> {
        let filter = owned_filter(states, before_seq, "$1");
        let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(job_select(
            &filter,
            NEWEST_FIRST,
            Some(limit),
        )))
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(JobRow::into_record).collect()
    }

    async fn active_jobs(&self, owner: Option<&str>) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running') \
             AND ($1 IS NULL OR owner = $1)",
        )
        .bind(owner)
        .fetch_one(&self.pool)
        .await?;
        Ok(count.max(0) as u64)
    }
}

#[async_trait]
impl AuditTrail for Backend {
    async fn audit(&self, entry: &NewAudit<'_>) -> Result<()> {
        let mut tx = self.write().await?;
        insert_audit(&mut tx, entry, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, at, actor, action, target, detail FROM audit \
             WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR target = $2) \
             AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
        )
        .bind(&filter.actor)
        .bind(&filter.target)
        .bind(filter.before)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(audit_entry).collect())
    }
}
