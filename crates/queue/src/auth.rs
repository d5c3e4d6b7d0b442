//! Who may use `fresco serve`, kept in the queue's database so that every server of a deployment
//! agrees: API tokens with a role, browser sessions opened with a token, the owner of each job,
//! and an audit trail.
//!
//! A token is `fresco_` and 32 random bytes (base64url). Only its SHA-256 is stored
//! ([`hash_secret`]); the token itself exists once, in the [`IssuedToken`] that
//! [`Tokens::create_token`] returns, whose `Debug` does not print it. A request presents the
//! token, the server hashes it and looks the hash up ([`Tokens::authenticate`]); an expired or
//! revoked token finds nothing. Sessions work the same way with their own random cookie.
//!
//! Submissions through the API go through [`OwnedJobs::submit_owned`], which records the owner
//! and enforces the caps on unfinished jobs (per owner and overall) in the submission's own
//! transaction, so racing requests cannot overshoot them.

use async_trait::async_trait;
use base64::Engine as _;
use fresco_core::JobState;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::{JobRecord, NewJob, QueueError, Result, Submitted};

/// What a token may do. See `docs/security.md` for the routes each role reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads jobs, logs and workers.
    Viewer,
    /// Submits jobs, reads and cancels its own jobs only.
    Submitter,
    /// All jobs: read, cancel, retry; workers and the audit trail.
    Operator,
    /// Everything an operator does, and tokens.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Submitter, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Submitter => "submitter",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    /// Random, not secret: what `tokens list` shows and `tokens revoke` takes.
    pub id: String,
    /// Unique: jobs and audit entries name their token by it.
    pub name: String,
    pub role: Role,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    /// Prefixes of the data store (or absolute roots) shared with this token beyond its own
    /// namespace, as an admin granted them ([`Tokens::set_token_shares`]).
    pub shares: Vec<String>,
}

impl TokenRecord {
    /// Neither revoked nor expired at `now_ms`.
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.revoked_at_ms.is_none() && self.expires_at_ms.is_none_or(|e| e > now_ms)
    }
}

/// A token to make.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    /// Milliseconds since the Unix epoch; None: until revoked.
    pub expires_at_ms: Option<i64>,
}

/// A token just made: the only place its secret ever is.
#[derive(Clone)]
pub struct IssuedToken {
    pub record: TokenRecord,
    /// `fresco_...`: give it to the client; it cannot be shown again.
    pub secret: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("record", &self.record)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// What a token name may be: it is shown in listings, logs and the audit trail.
pub fn check_token_name(name: &str) -> std::result::Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "token name '{}': use 1 to 64 letters, digits, '.', '_' or '-'",
            name.escape_debug()
        ))
    }
}

/// The prefix of every token, so that secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "fresco_";

/// A new random secret with `prefix` (32 bytes from the OS's generator, base64url).
pub fn new_secret(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The SHA-256 of a token or session secret, as stored and looked up (hex).
pub fn hash_secret(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// A browser session, found by its cookie.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// The token that opened it (active, or the session would not be found).
    pub token: TokenRecord,
    /// The SHA-256 of what state-changing requests made with the cookie must send in
    /// `X-CSRF-Token` (the server derives the token itself from the cookie).
    pub csrf: String,
    pub expires_at_ms: i64,
}

/// Who submits, and the caps on unfinished (queued or running) jobs to enforce.
#[derive(Debug, Clone)]
pub struct Admission {
    /// The submitting token's name.
    pub owner: String,
    pub max_active_per_owner: Option<u64>,
    pub max_active: Option<u64>,
    /// A completion callback to deliver once the job ends: written in the submission's own
    /// transaction (see [`crate::Deliveries`]), so that a new job never lacks it.
    pub callback_url: Option<String>,
}

/// Why [`OwnedJobs::submit_owned`] queued nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapReached {
    #[error("{active} unfinished jobs of this token (the cap is {cap})")]
    /// The owner has `active` unfinished jobs, the cap is `cap`.
    Owner { active: u64, cap: u64 },
    #[error("{active} unfinished jobs in the queue (the cap is {cap})")]
    /// The queue holds `active` unfinished jobs overall.
    Total { active: u64, cap: u64 },
}

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Increasing: the cursor for paging (newest first).
    pub id: i64,
    pub at_ms: i64,
    /// The token's name; None when the database was used directly (`fresco tokens`).
    pub actor: Option<String>,
    /// `submit`, `cancel`, `retry`, `token-create`, `token-revoke`.
    pub action: String,
    /// The job id or token name acted on.
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// An action to record.
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    pub actor: Option<&'a str>,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub detail: Option<&'a str>,
}

/// Which audit entries: all filters optional, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub target: Option<String>,
    /// Only entries with a smaller id.
    pub before: Option<i64>,
    pub limit: u32,
}

/// API tokens: made, listed, shared with, revoked and looked up by their secret.
#[async_trait]
pub trait Tokens: Send + Sync {
    /// Makes a token with a fresh secret, and audits it as done by `actor`. Errors with
    /// [`crate::QueueError::NameTaken`] when a token (even a revoked one) has the name.
    async fn create_token(&self, token: &NewToken, actor: Option<&str>) -> Result<IssuedToken>;

    /// Every token, newest first (revoked and expired ones too).
    async fn tokens(&self) -> Result<Vec<TokenRecord>>;

    /// Replaces the shared prefixes granted to the token with this id or name (see
    /// [`TokenRecord::shares`]; each checked with [`check_share`] by the caller), and audits it.
    /// None if there is no such token.
    async fn set_token_shares(
        &self,
        id_or_name: &str,
        shares: &[String],
        actor: Option<&str>,
    ) -> Result<Option<TokenRecord>>;

    /// Revokes the token with this id or name, ending its sessions, and audits it. None if there
    /// is no such token; a token revoked before stays revoked as it was.
    async fn revoke_token(
        &self,
        id_or_name: &str,
        actor: Option<&str>,
    ) -> Result<Option<TokenRecord>>;

    /// The active (not revoked, not expired) token whose secret hashes to `hash`.
    async fn authenticate(&self, hash: &str) -> Result<Option<TokenRecord>>;
}

/// Browser sessions opened with a token.
#[async_trait]
pub trait Sessions: Send + Sync {
    /// Stores a session (its cookie's hash, and its CSRF token's hash) for an active token
    /// until `expires_at_ms`, and drops expired sessions.
    async fn open_session(
        &self,
        hash: &str,
        token_id: &str,
        csrf: &str,
        expires_at_ms: i64,
    ) -> Result<()>;

    /// The unexpired session with this cookie hash, of a token still active.
    async fn session(&self, hash: &str) -> Result<Option<SessionRecord>>;

    /// Ends a session (logout). False if there was none.
    async fn close_session(&self, hash: &str) -> Result<bool>;
}

/// Jobs with an owner: submissions through the API under the caps, and listings by owner.
#[async_trait]
pub trait OwnedJobs: Send + Sync {
    /// [`crate::Jobs::submit`] for `admission.owner`, refusing with
    /// [`crate::QueueError::CapReached`] (queuing nothing) when a cap is reached. An idempotent
    /// repeat or the same work already queued is returned as [`Submitted::Existing`] whatever
    /// the caps.
    async fn submit_owned(&self, job: NewJob, admission: &Admission) -> Result<Submitted>;

    /// [`crate::Jobs::jobs_before`] for one owner's jobs.
    async fn owned_jobs_before(
        &self,
        owner: &str,
        states: &[JobState],
        limit: u32,
        before_seq: Option<i64>,
    ) -> Result<Vec<JobRecord>>;

    /// Unfinished (queued or running) jobs of `owner`, or of everyone with None.
    async fn active_jobs(&self, owner: Option<&str>) -> Result<u64>;
}

/// The audit trail: who did what.
#[async_trait]
pub trait AuditTrail: Send + Sync {
    /// Records an action.
    async fn audit(&self, entry: &NewAudit<'_>) -> Result<()>;

    /// Recorded actions, newest first.
    async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>>;
}

/// Tokens, sessions, owners and the audit trail: every role of the accounts together. Both
/// backends are one, and so is every [`crate::Queue`]; a caller (or a test double) that needs one
/// role names that role alone.
pub trait Accounts: Tokens + Sessions + OwnedJobs + AuditTrail {}

impl<T: Tokens + Sessions + OwnedJobs + AuditTrail + ?Sized> Accounts for T {}

/// A fresh token id (not secret).
pub(crate) fn new_token_id() -> String {
    let bytes: [u8; 8] = rand::random();
    format!("tok_{}", hex::encode(bytes))
}

/// The filter of [`OwnedJobs::owned_jobs_before`]: [`crate::rows::page_filter`] and the owner as
/// bind parameter `owner_param` (`?1` or `$1`).
pub(crate) fn owned_filter(
    states: &[JobState],
    before_seq: Option<i64>,
    owner_param: &str,
) -> String {
    let page = crate::rows::page_filter(states, before_seq);
    if page.is_empty() {
        format!("j.owner = {owner_param}")
    } else {
        format!("j.owner = {owner_param} AND {page}")
    }
}

/// The columns every token query reads, in [`TokenRow`]'s order.
pub(crate) const TOKEN_COLUMNS: &str = "id, name, role, created_at, expires_at, revoked_at, shares";

pub(crate) type TokenRow = (
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    String,
);

/// The `shares` column: one prefix per line.
pub(crate) fn shares_column(shares: &[String]) -> String {
    shares.join("\n")
}

/// What a shared prefix may be, as the API's schema states it (`shares` of `POST /v1/tokens`):
/// a relative name in the data store (`shared/team-a`) or an absolute root (`/srv/media`,
/// `file:///...`, `az://...`, `s3://...`; the server checks it against its own roots). Segments
/// are separated by single slashes and may not start with a dot (so no `.` or `..`), nor hold a
/// slash, a backslash, `%` or a control character. [`check_share`] enforces exactly this.
pub const SHARE_PATTERN: &str = r"^((file|az|azure|s3)://)?/*[^./%\\\x00-\x1f\x7f-\x9f][^/%\\\x00-\x1f\x7f-\x9f]*(/[^./%\\\x00-\x1f\x7f-\x9f][^/%\\\x00-\x1f\x7f-\x9f]*)*/*$";

/// The most characters a shared prefix may have.
pub const SHARE_MAX_CHARS: usize = 1024;

/// Checks a shared prefix against [`SHARE_PATTERN`] and [`SHARE_MAX_CHARS`].
pub fn check_share(share: &str) -> std::result::Result<(), String> {
    let refuse = |why: &str| Err(format!("shared prefix '{}': {why}", share.escape_debug()));
    if share.is_empty() || share.chars().count() > SHARE_MAX_CHARS {
        return refuse("must be 1 to 1024 characters");
    }
    if share
        .chars()
        .any(|c| c.is_control() || c == '\\' || c == '%')
    {
        return refuse("holds a control character, a backslash or '%'");
    }
    let path = match share.split_once("://") {
        Some(("file" | "az" | "azure" | "s3", rest)) => rest,
        _ => share,
    };
    let path = path.trim_start_matches('/').trim_end_matches('/');
    if path.is_empty() {
        return refuse("names a whole store or file system; grant a prefix in it");
    }
    if path
        .split('/')
        .any(|segment| segment.is_empty() || segment.starts_with('.'))
    {
        return refuse("has an empty segment or one that starts with '.' (as '.' and '..' do)");
    }
    Ok(())
}

pub(crate) fn token_record(
    (id, name, role, created_at, expires_at, revoked_at, shares): TokenRow,
) -> Result<TokenRecord> {
    Ok(TokenRecord {
        role: Role::parse(&role)
            .ok_or_else(|| QueueError::Corrupt(format!("token role '{role}'")))?,
        id,
        name,
        created_at_ms: created_at,
        expires_at_ms: expires_at,
        revoked_at_ms: revoked_at,
        shares: shares
            .lines()
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

pub(crate) type AuditRow = (
    i64,
    i64,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

pub(crate) fn audit_entry((id, at, actor, action, target, detail): AuditRow) -> AuditEntry {
    AuditEntry {
        id,
        at_ms: at,
        actor,
        action,
        target,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_hash_to_hex() {
        let a = new_secret(TOKEN_PREFIX);
        let b = new_secret(TOKEN_PREFIX);
        assert!(a.starts_with("fresco_") && a.len() == 7 + 43, "{a}");
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), hash_secret(&b));
        assert!(!format!("{:?}", issued(&a)).contains(&a));
    }

    fn issued(secret: &str) -> IssuedToken {
        IssuedToken {
            record: TokenRecord {
                id: "tok_1".into(),
                name: "n".into(),
                role: Role::Admin,
                created_at_ms: 0,
                expires_at_ms: None,
                revoked_at_ms: None,
                shares: Vec::new(),
            },
            secret: secret.into(),
        }
    }

    #[test]
    fn names_and_roles() {
        assert!(check_token_name("ci-bot.2").is_ok());
        assert!(check_token_name("").is_err());
        assert!(check_token_name("a b").is_err());
        assert!(check_token_name(&"x".repeat(65)).is_err());
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn shares_are_prefixes_without_traversal() {
        for good in [
            "shared/team-a",
            "/srv/media",
            "file:///srv/media",
            "az://videos/in",
            "s3://b/p/",
        ] {
            assert!(check_share(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/",
            "az://",
            "shared/../x",
            "./x",
            "a//b",
            "http://h/x",
            "a\\b",
            "a\nb",
            "x/%2e%2e",
        ] {
            assert!(check_share(bad).is_err(), "{bad:?} accepted");
        }
    }
}
