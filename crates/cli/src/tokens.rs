//! `fresco tokens create|list|revoke|audit`: the API tokens of `fresco serve`, on the queue's
//! database directly (`--db`, like `fresco jobs`). This is how the first admin token is made;
//! afterwards admins may also use `POST /v1/tokens`. A token is printed once, when it is made:
//! only its SHA-256 is stored.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use fresco_queue::{
    check_share, check_token_name, now_ms, AuditFilter, NewToken, QueueError, Role, TokenRecord,
};

use crate::exit::{self, Failure};
use crate::queue_args::{runtime, QueueArgs};
use fresco_queue::redact_url;

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Make a token and print it (once; it cannot be shown again).
    Create(CreateArgs),
    /// List the tokens (never their secrets).
    List(ListArgs),
    /// Revoke a token by id or name; its sessions end at once.
    Revoke(RevokeArgs),
    /// Replace the prefixes shared with a token beyond its own namespace (none: withdraw all).
    Share(ShareArgs),
    /// Who submitted, canceled or retried which job, and who made or revoked which token.
    Audit(AuditArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// viewer (read jobs, logs, workers), submitter (submit, read and cancel its own jobs),
    /// operator (all jobs, cancel, retry, workers) or admin (also tokens).
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// A unique name (letters, digits, '.', '_', '-'); jobs and the audit trail show it.
    /// Default: ROLE- and 8 random characters.
    #[arg(long)]
    pub name: Option<String>,
    /// Lifetime, e.g. 30d, 12h, 90min (default: until revoked).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub expires: Option<Duration>,
    /// A prefix a submitter may reach beyond its own namespace (tenants/NAME/ in the data
    /// store): a name in the data store (shared/team-a) or one of the server's --allow-prefix
    /// roots or a folder in one (/srv/media, az://container/in). Repeat for several.
    #[arg(long = "share", value_name = "PREFIX", value_parser = parse_share)]
    pub shares: Vec<String>,
    /// Print the token and its record as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub queue: QueueArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub queue: QueueArgs,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The token's id (tok_...) or name.
    pub token: String,
    #[command(flatten)]
    pub queue: QueueArgs,
}

#[derive(Debug, Args)]
pub struct ShareArgs {
    /// The token's id (tok_...) or name.
    pub token: String,
    /// The prefixes, as `create --share` takes them; none withdraws every grant.
    #[arg(value_parser = parse_share)]
    pub shares: Vec<String>,
    #[command(flatten)]
    pub queue: QueueArgs,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only what this token (by name) did.
    #[arg(long)]
    pub actor: Option<String>,
    /// Only what was done to this job (id) or token (name).
    #[arg(long)]
    pub target: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub queue: QueueArgs,
}

fn parse_share(text: &str) -> Result<String, String> {
    check_share(text).map(|()| text.to_string())
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text)
        .ok_or_else(|| format!("'{text}' is not a role: use viewer, submitter, operator or admin"))
}

pub fn tokens(command: TokensCommand) -> Result<ExitCode, Failure> {
    runtime().block_on(async move {
        match command {
            TokensCommand::Create(args) => create(args).await,
            TokensCommand::List(args) => list(args).await,
            TokensCommand::Revoke(args) => revoke(args).await,
            TokensCommand::Share(args) => share(args).await,
            TokensCommand::Audit(args) => audit(args).await,
        }
    })
}

fn queue_failure(url: &str, e: QueueError) -> Failure {
    Failure::new(
        exit::MISSING_DEPENDENCY,
        format!("{}: {e}", redact_url(url)),
    )
}

async fn create(args: CreateArgs) -> Result<ExitCode, Failure> {
    let name = match args.name {
        Some(name) => name,
        None => format!("{}-{}", args.role, &fresco_queue::new_secret("")[..8]),
    };
    check_token_name(&name)
        .map_err(|m| Failure::new(exit::BAD_ARGUMENTS, format!("--name: {m}")))?;
    let expires_at_ms = match args.expires {
        None => None,
        Some(d) if d.is_zero() => {
            return Err(Failure::new(
                exit::BAD_ARGUMENTS,
                "--expires: must be longer than 0",
            ))
        }
        Some(d) => {
            Some(now_ms().saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)))
        }
    };
    let queue = args.queue.open().await?;
    let url = args.queue.db_url();
    let token = NewToken {
        name,
        role: args.role,
        expires_at_ms,
    };
    let mut issued = match queue.create_token(&token, None).await {
        Ok(issued) => issued,
        Err(QueueError::NameTaken(name)) => {
            return Err(Failure::new(
                exit::BAD_ARGUMENTS,
                format!(
                    "--name {name}: a token with this name exists already (names are never reused)"
                ),
            ))
        }
        Err(e) => return Err(queue_failure(&url, e)),
    };
    if !args.shares.is_empty() {
        if let Some(record) = queue
            .set_token_shares(&issued.record.id, &args.shares, None)
            .await
            .map_err(|e| queue_failure(&url, e))?
        {
            issued.record = record;
        }
    }
    if args.json {
        let mut value = serde_json::to_value(&issued.record).expect("serialises");
        value["secret"] = serde_json::Value::String(issued.secret);
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("serialises")
        );
    } else {
        // The token alone on stdout (for `> token-file`); what it is on stderr.
        println!("{}", issued.secret);
        eprintln!(
            "made token {} ({}, role {}{}); it is shown only now: keep it in a secret store or a file readable only by you",
            issued.record.name,
            issued.record.id,
            issued.record.role,
            expiry_text(issued.record.expires_at_ms)
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn share(args: ShareArgs) -> Result<ExitCode, Failure> {
    let queue = args.queue.open().await?;
    let url = args.queue.db_url();
    match queue
        .set_token_shares(&args.token, &args.shares, None)
        .await
        .map_err(|e| queue_failure(&url, e))?
    {
        Some(record) if record.shares.is_empty() => {
            eprintln!("token {} reaches its own namespace only", record.name);
            Ok(ExitCode::SUCCESS)
        }
        Some(record) => {
            eprintln!(
                "token {} may also reach: {}",
                record.name,
                record.shares.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        None => Err(Failure::new(
            exit::INPUT_MISSING,
            format!("no token with id or name '{}'", args.token),
        )),
    }
}

fn expiry_text(expires_at_ms: Option<i64>) -> String {
    match expires_at_ms {
        None => String::new(),
        Some(at) => format!(
            ", expires {}",
            humantime::format_rfc3339_seconds(time_of(at))
        ),
    }
}

fn time_of(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn state_of(token: &TokenRecord) -> String {
    let now = now_ms();
    match (token.revoked_at_ms, token.expires_at_ms) {
        (Some(at), _) => format!("revoked {}", humantime::format_rfc3339_seconds(time_of(at))),
        (None, Some(at)) if at <= now => {
            format!("expired {}", humantime::format_rfc3339_seconds(time_of(at)))
        }
        (None, Some(at)) => format!(
            "active until {}",
            humantime::format_rfc3339_seconds(time_of(at))
        ),
        (None, None) => "active".into(),
    }
}

async fn list(args: ListArgs) -> Result<ExitCode, Failure> {
    let queue = args.queue.open().await?;
    let tokens = queue
        .tokens()
        .await
        .map_err(|e| queue_failure(&args.queue.db_url(), e))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&tokens).expect("serialises")
        );
        return Ok(ExitCode::SUCCESS);
    }
    if tokens.is_empty() {
        eprintln!("no tokens: make one with `fresco tokens create --role admin`");
    }
    for token in &tokens {
        println!(
            "{}  {:<24}  {:<9}  {}{}",
            token.id,
            token.name,
            token.role,
            state_of(token),
            if token.shares.is_empty() {
                String::new()
            } else {
                format!("  shares {}", token.shares.join(","))
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke(args: RevokeArgs) -> Result<ExitCode, Failure> {
    let queue = args.queue.open().await?;
    match queue
        .revoke_token(&args.token, None)
        .await
        .map_err(|e| queue_failure(&args.queue.db_url(), e))?
    {
        Some(token) => {
            println!("{}  {}  {}", token.id, token.name, state_of(&token));
            Ok(ExitCode::SUCCESS)
        }
        None => Err(Failure::new(
            exit::INPUT_MISSING,
            format!(
                "no token with id or name '{}' (see fresco tokens list)",
                args.token
            ),
        )),
    }
}

async fn audit(args: AuditArgs) -> Result<ExitCode, Failure> {
    if !(1..=10_000).contains(&args.limit) {
        return Err(Failure::new(
            exit::BAD_ARGUMENTS,
            "--limit: between 1 and 10000",
        ));
    }
    let queue = args.queue.open().await?;
    let filter = AuditFilter {
        actor: args.actor,
        target: args.target,
        before: None,
        limit: args.limit,
    };
    let entries = queue
        .audit_log(&filter)
        .await
        .map_err(|e| queue_failure(&args.queue.db_url(), e))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&entries).expect("serialises")
        );
        return Ok(ExitCode::SUCCESS);
    }
    for entry in &entries {
        println!(
            "{}  {:<20}  {:<12}  {}{}",
            humantime::format_rfc3339_seconds(time_of(entry.at_ms)),
            entry.actor.as_deref().unwrap_or("(database)"),
            entry.action,
            entry.target.as_deref().unwrap_or("-"),
            entry
                .detail
                .as_deref()
                .map(|d| format!("  {d}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
