//! The security flags of `fresco serve`: HTTPS, sessions, the storage events' shared secret,
//! per-token and per-client-address rate limits and the caps on unfinished jobs (see
//! `docs/security.md`).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use fresco_server::auth::{AuthSettings, RateLimitConfig, RateLimits, Secret, TrustedProxies};

use crate::exit::{self, Failure};

/// A secret given as a flag or variable: never printed (not by `--help`, not by `Debug`).
#[derive(Clone)]
pub struct SecretArg(pub String);

impl FromStr for SecretArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() < 16 {
            return Err("must be at least 16 characters (e.g. `openssl rand -base64 32`)".into());
        }
        Ok(SecretArg(text.to_string()))
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Args)]
pub struct AuthArgs {
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(
        long,
        env = "FRESCO_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(
        long,
        env = "FRESCO_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Mark the session cookie Secure although this server speaks plain HTTP (it is behind an
    /// HTTPS proxy).
    #[arg(long, env = "FRESCO_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Hours a dashboard session lasts (at most until its token expires).
    #[arg(
        long,
        env = "FRESCO_SESSION_HOURS",
        default_value_t = 12,
        value_name = "HOURS"
    )]
    pub session_hours: u64,
    /// The shared secret storage events must present (header X-Fresco-Event-Secret, or the
    /// password of HTTP Basic authentication). Prefer the variable or --event-secret-file to
    /// keep it out of the process list.
    #[arg(
        long,
        env = "FRESCO_EVENT_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        conflicts_with = "event_secret_file"
    )]
    pub event_secret: Option<SecretArg>,
    /// A file holding the event secret.
    #[arg(long, env = "FRESCO_EVENT_SECRET_FILE", value_name = "FILE")]
    pub event_secret_file: Option<PathBuf>,
    /// Requests per minute one token may send (all routes).
    #[arg(
        long,
        env = "FRESCO_RATE_LIMIT",
        default_value_t = 1200,
        value_name = "N"
    )]
    pub rate_limit: u32,
    /// Requests one token may send at once before --rate-limit applies.
    #[arg(
        long,
        env = "FRESCO_RATE_BURST",
        default_value_t = 200,
        value_name = "N"
    )]
    pub rate_burst: u32,
    /// Job submissions per minute one token may make.
    #[arg(
        long,
        env = "FRESCO_SUBMIT_RATE_LIMIT",
        default_value_t = 120,
        value_name = "N"
    )]
    pub submit_rate_limit: u32,
    /// Submissions one token may make at once before --submit-rate-limit applies.
    #[arg(
        long,
        env = "FRESCO_SUBMIT_BURST",
        default_value_t = 60,
        value_name = "N"
    )]
    pub submit_burst: u32,
    /// Requests per minute one client address may send without valid credentials (the health
    /// probes, the sign-in page, requests refused 401 for lack of credentials).
    #[arg(
        long,
        env = "FRESCO_ANONYMOUS_RATE_LIMIT",
        default_value_t = 600,
        value_name = "N"
    )]
    pub anonymous_rate_limit: u32,
    /// Such requests one client address may send at once before --anonymous-rate-limit applies.
    #[arg(
        long,
        env = "FRESCO_ANONYMOUS_BURST",
        default_value_t = 120,
        value_name = "N"
    )]
    pub anonymous_burst: u32,
    /// Failed authentications (wrong, expired or revoked tokens and sessions, a wrong event
    /// secret) per minute from one client address; past it the address is refused 429 until
    /// its budget refills, valid tokens included.
    #[arg(
        long,
        env = "FRESCO_FAILURE_RATE_LIMIT",
        default_value_t = 60,
        value_name = "N"
    )]
    pub failure_rate_limit: u32,
    /// Failed authentications one client address may make at once before
    /// --failure-rate-limit applies.
    #[arg(
        long,
        env = "FRESCO_FAILURE_BURST",
        default_value_t = 20,
        value_name = "N"
    )]
    pub failure_burst: u32,
    /// Proxies (addresses or networks, comma separated: `10.0.0.0/8,192.0.2.1`) whose
    /// X-Forwarded-For header names the client for the per-address limits. Default: none, the
    /// header is not read (anyone could write it).
    #[arg(
        long,
        env = "FRESCO_TRUSTED_PROXIES",
        value_name = "NET,...",
        value_delimiter = ',',
        value_parser = fresco_server::auth::client::parse_trusted_proxy
    )]
    pub trusted_proxies: Vec<fresco_server::auth::client::IpNet>,
    /// Unfinished (queued or running) jobs one token may have (0: no cap).
    #[arg(
        long,
        env = "FRESCO_MAX_QUEUED_PER_TOKEN",
        default_value_t = fresco_server::auth::DEFAULT_MAX_ACTIVE_PER_TOKEN,
        value_name = "N"
    )]
    pub max_queued_per_token: u64,
    /// Unfinished jobs the queue may hold over all tokens (0: no cap).
    #[arg(
        long,
        env = "FRESCO_MAX_QUEUED",
        default_value_t = fresco_server::auth::DEFAULT_MAX_ACTIVE,
        value_name = "N"
    )]
    pub max_queued: u64,
}

impl AuthArgs {
    /// The server's authentication settings from these flags.
    pub fn settings(&self) -> Result<AuthSettings, Failure> {
        for (flag, value) in [
            ("--rate-limit", self.rate_limit),
            ("--rate-burst", self.rate_burst),
            ("--submit-rate-limit", self.submit_rate_limit),
            ("--submit-burst", self.submit_burst),
            ("--anonymous-rate-limit", self.anonymous_rate_limit),
            ("--anonymous-burst", self.anonymous_burst),
            ("--failure-rate-limit", self.failure_rate_limit),
            ("--failure-burst", self.failure_burst),
        ] {
            if value == 0 {
                return Err(Failure::new(
                    exit::BAD_ARGUMENTS,
                    format!("{flag}: must be at least 1"),
                ));
            }
        }
        if !(1..=24 * 365).contains(&self.session_hours) {
            return Err(Failure::new(
                exit::BAD_ARGUMENTS,
                "--session-hours: between 1 and 8760",
            ));
        }
        let event_secret = match (&self.event_secret, &self.event_secret_file) {
            (Some(secret), _) => Some(Secret::new(secret.0.clone())),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Failure::new(
                        exit::BAD_ARGUMENTS,
                        format!(
                            "--event-secret-file {}: cannot read it: {e}",
                            path.display()
                        ),
                    )
                })?;
                let secret = SecretArg::from_str(text.trim()).map_err(|m| {
                    Failure::new(
                        exit::BAD_ARGUMENTS,
                        format!("--event-secret-file {}: the secret {m}", path.display()),
                    )
                })?;
                Some(Secret::new(secret.0))
            }
            (None, None) => None,
        };
        let limits = RateLimitConfig {
            requests_per_minute: self.rate_limit,
            request_burst: self.rate_burst,
            submissions_per_minute: self.submit_rate_limit,
            submission_burst: self.submit_burst,
            anonymous_per_minute: self.anonymous_rate_limit,
            anonymous_burst: self.anonymous_burst,
            address_failures_per_minute: self.failure_rate_limit,
            address_failure_burst: self.failure_burst,
            ..RateLimitConfig::default()
        };
        Ok(AuthSettings {
            session_ttl: Duration::from_secs(self.session_hours * 3600),
            secure_cookies: self.secure_cookies || self.tls_cert.is_some(),
            event_secret,
            max_active_per_token: Some(self.max_queued_per_token).filter(|n| *n > 0),
            max_active: Some(self.max_queued).filter(|n| *n > 0),
            limits: Arc::new(RateLimits::new(&limits)),
            trusted_proxies: TrustedProxies::new(self.trusted_proxies.clone()),
        })
    }

    /// The TLS configuration, when --tls-cert and --tls-key are given.
    pub fn tls(&self) -> Result<Option<Arc<rustls::ServerConfig>>, Failure> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => fresco_server::tls::server_config(cert, key)
                .map(Some)
                .map_err(|e| Failure::new(exit::BAD_ARGUMENTS, e.to_string())),
            _ => Ok(None),
        }
    }
}

/// Logs how to make the first token when the queue has none, so a new deployment is not a
/// server that answers 401 to everything without saying why.
pub async fn hint_when_no_tokens(queue: &dyn fresco_queue::Queue, db: &str) {
    match queue.tokens().await {
        Ok(tokens) if tokens.iter().all(|t| !t.is_active(fresco_queue::now_ms())) => {
            tracing::warn!(
                "no active API tokens: every request but /healthz and /readyz is refused; make one with `fresco tokens create --role admin --db {db}`"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot list the API tokens"),
    }
}
