//! Who may call which route. Every route of [`crate::routes::ROUTES`] declares one
//! [`AuthKind`] and the [`Role`]s allowed; [`guard`] runs before its handler and either refuses
//! the request (401 without valid credentials, 403 for a role not allowed or a missing CSRF
//! token, 429 over the token's rate or the client address's) or passes it on with a
//! [`Principal`] in its extensions, which handlers take as an extractor to scope submitters to
//! their own jobs and to name the owner of what they do. A dashboard page asked for without a
//! session is answered with a redirect to the sign-in page instead of a 401.
//!
//! Requests without valid credentials are limited per client address (the peer address of the
//! connection, from axum's `ConnectInfo`, or what trusted proxies say it is: see [`client`] and
//! [`ratelimit`]): requests to the routes that take
//! none, requests refused for lack of credentials, and failed authentications, which also
//! block the address for a while. A router served without `ConnectInfo` (the in-process tests)
//! has no client address, and so no per-address limit; the server-wide failure rate still holds.
//!
//! Credentials: `Authorization: Bearer fresco_...` (the API), or the `fresco_session` cookie
//! that `POST /v1/session` sets for a browser after it presented a token once (the dashboard,
//! whose pages, event streams and images cannot send a header). Requests made with the cookie
//! that change state must repeat the session's CSRF token in `X-CSRF-Token`. Tokens are never
//! read from a query string. Tokens and sessions are looked up by their SHA-256 in the queue's
//! database ([`fresco_queue::Accounts`]), so revoking a token ends it on every server at once.

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fresco_queue::{hash_secret, JobRecord, TokenRecord};
use subtle::ConstantTimeEq as _;

use crate::error::ApiError;
use crate::AppState;

pub mod client;
pub mod docs;
pub mod ratelimit;
pub mod session;

pub use client::TrustedProxies;
pub use fresco_queue::Role;
pub use ratelimit::{RateLimitConfig, RateLimits};

/// How a route authenticates its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// No credentials at all: the health probes only.
    Public,
    /// `Authorization: Bearer TOKEN` only (e.g. opening a session).
    Bearer,
    /// A bearer token, or the session cookie (with `X-CSRF-Token` on methods that change
    /// state): the JSON API, which the dashboard's scripts call with the cookie.
    Api,
    /// The session cookie only (with `X-CSRF-Token` on methods that change state): the
    /// dashboard's views, event streams and images.
    Session,
    /// The session cookie only, for a dashboard page: a browser without a valid session is sent
    /// to the sign-in page (303 to `/ui/login?next=...`) instead of answered 401.
    Page,
    /// The sign-in form and the static script and style sheet it needs: no credentials (it is
    /// where a token is presented once), and it holds no data.
    SignIn,
    /// A signed URL, which the handler checks itself.
    Signature,
    /// Storage events: the shared secret of `--event-secret` (header `X-Fresco-Event-Secret`,
    /// or the password of HTTP Basic authentication) when one is configured, and the body's
    /// own validation.
    EventSecret,
}

impl AuthKind {
    /// As `docs/security.md`'s table writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Public => "public",
            AuthKind::Bearer => "bearer",
            AuthKind::Api => "bearer or session",
            AuthKind::Session => "session",
            AuthKind::Page => "session (page)",
            AuthKind::SignIn => "sign-in",
            AuthKind::Signature => "signature",
            AuthKind::EventSecret => "event secret",
        }
    }

    /// Whether the request names a token (and so a role): the kinds whose routes list roles.
    pub fn has_roles(self) -> bool {
        match self {
            AuthKind::Bearer | AuthKind::Api | AuthKind::Session | AuthKind::Page => true,
            AuthKind::Public | AuthKind::SignIn | AuthKind::Signature | AuthKind::EventSecret => {
                false
            }
        }
    }
}

/// The role sets routes allow.
pub mod roles {
    use super::Role;

    /// Routes without a token.
    pub const NONE: &[Role] = &[];
    /// Every role (submitters see their own jobs only).
    pub const ALL: &[Role] = &[Role::Viewer, Role::Submitter, Role::Operator, Role::Admin];
    /// Who submits and cancels (submitters their own jobs only).
    pub const SUBMITTERS: &[Role] = &[Role::Submitter, Role::Operator, Role::Admin];
    /// Who sees the whole deployment: workers, metrics.
    pub const OBSERVERS: &[Role] = &[Role::Viewer, Role::Operator, Role::Admin];
    /// Who acts on every job: retries, the audit trail.
    pub const OPERATORS: &[Role] = &[Role::Operator, Role::Admin];
    /// Who manages tokens.
    pub const ADMINS: &[Role] = &[Role::Admin];
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "fresco_session";
/// The header that repeats a session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The header that carries the storage events' shared secret.
pub const EVENT_SECRET_HEADER: &str = "x-fresco-event-secret";
/// The code of the 404 that event routes answer on a server without an event secret.
pub const EVENTS_DISABLED: &str = "events-disabled";

/// A secret from the configuration (the event secret): compared in constant time, never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// Whether `given` is this secret, in time independent of where they differ.
    pub fn matches(&self, given: &str) -> bool {
        hash_secret(&self.0)
            .as_bytes()
            .ct_eq(hash_secret(given).as_bytes())
            .into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The authentication settings of a server.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// How long a browser session lasts (at most until its token expires).
    pub session_ttl: Duration,
    /// Mark the session cookie `Secure` (the server speaks HTTPS, itself or behind a proxy).
    pub secure_cookies: bool,
    /// The storage events' shared secret; None: the event routes are off (404
    /// `events-disabled`).
    pub event_secret: Option<Secret>,
    /// Unfinished (queued or running) jobs one token may have.
    pub max_active_per_token: Option<u64>,
    /// Unfinished jobs the queue may hold, over all tokens.
    pub max_active: Option<u64>,
    /// Per-token request and submission rates (shared by every clone of the state).
    pub limits: std::sync::Arc<RateLimits>,
    /// Proxies whose `X-Forwarded-For` names the client (none: the header is not read).
    pub trusted_proxies: TrustedProxies,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            event_secret: None,
            max_active_per_token: Some(DEFAULT_MAX_ACTIVE_PER_TOKEN),
            max_active: Some(DEFAULT_MAX_ACTIVE),
            limits: std::sync::Arc::new(RateLimits::new(&RateLimitConfig::default())),
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// Default of `--max-queued-per-token`.
pub const DEFAULT_MAX_ACTIVE_PER_TOKEN: u64 = 1000;
/// Default of `--max-queued`.
pub const DEFAULT_MAX_ACTIVE: u64 = 100_000;

/// How a principal presented itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Bearer,
    /// The session cookie; `csrf` is what state-changing requests must repeat.
    Session {
        csrf: String,
        expires_at_ms: i64,
    },
}

/// The token behind a request that passed [`guard`]. Take it as an extractor (401 when the
/// route has no token, which a route of kind public, signature or event secret never has).
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: String,
    /// The token's name: the owner of what it submits, the actor in the audit trail.
    pub name: String,
    pub role: Role,
    pub token_expires_at_ms: Option<i64>,
    pub via: Via,
    /// Prefixes of the data store granted beyond a submitter's own namespace (see
    /// [`crate::tenancy`]).
    pub shares: Vec<String>,
}

impl Principal {
    fn new(token: TokenRecord, via: Via) -> Principal {
        Principal {
            token_id: token.id,
            name: token.name,
            role: token.role,
            token_expires_at_ms: token.expires_at_ms,
            via,
            shares: token.shares,
        }
    }

    /// Whether this principal may see `job` (submitters: their own jobs only).
    pub fn may_see(&self, job: &JobRecord) -> bool {
        match self.role {
            Role::Submitter => job.owner.as_deref() == Some(self.name.as_str()),
            Role::Viewer | Role::Operator | Role::Admin => true,
        }
    }

    /// The owner whose jobs alone this principal sees; None: every job.
    pub fn only_owner(&self) -> Option<&str> {
        match self.role {
            Role::Submitter => Some(&self.name),
            Role::Viewer | Role::Operator | Role::Admin => None,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "this route needs a token: send 'Authorization: Bearer TOKEN'",
            )
        })
    }
}

/// A route's rule, as [`guard`] applies it.
#[derive(Clone)]
pub struct Guard {
    pub state: AppState,
    pub kind: AuthKind,
    pub roles: &'static [Role],
}

/// The middleware in front of every route: see the module's documentation.
pub async fn guard(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let client = guard.state.auth.trusted_proxies.client(&request);
    match authorize(&guard, client, &mut request).await {
        Ok(()) => {
            if let Some(principal) = request.extensions().get::<Principal>() {
                tracing::debug!(token = %principal.name, role = %principal.role, method = %request.method(), path = request.uri().path(), "authenticated");
            }
            next.run(request).await
        }
        Err(refusal) => {
            // Names the route and the reason, never what was presented; debug, because a
            // flood of these is bounded but still a flood.
            let code = match &refusal {
                Refusal::Unauthenticated(e) | Refusal::Limited(e, _) | Refusal::Other(e) => e.code,
            };
            tracing::debug!(method = %request.method(), path = request.uri().path(), code, "request refused");
            match refusal {
                // A browser opening a page without a session signs in first; a token in the
                // query gets its 401 (revoke it), never a redirect that copies it into `next`.
                Refusal::Unauthenticated(e)
                    if guard.kind == AuthKind::Page && e.code != "token-in-query" =>
                {
                    sign_in_redirect(&request)
                }
                refusal => refusal.into_response(),
            }
        }
    }
}

/// Why a request was refused.
#[derive(Debug)]
pub enum Refusal {
    /// 401, with `WWW-Authenticate`.
    Unauthenticated(ApiError),
    /// 429, with `Retry-After`.
    Limited(ApiError, Duration),
    Other(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Other(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Unauthenticated(e) => {
                let mut response = e.into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"fresco\""),
                );
                response
            }
            Refusal::Limited(e, wait) => too_many(e, wait),
            Refusal::Other(e) => e.into_response(),
        }
    }
}

/// A 429 with `Retry-After` in whole seconds (at least 1).
pub fn too_many(error: ApiError, wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

fn unauthenticated(code: &'static str, message: &str) -> Refusal {
    Refusal::Unauthenticated(ApiError::new(StatusCode::UNAUTHORIZED, code, message))
}

/// 303 to the sign-in page, which returns to this page after signing in. `next` is this
/// request's own path and query, so it is always a same-origin relative reference; anything
/// that a browser could read as another host (`//host`, `/\host`) is replaced by `/`.
fn sign_in_redirect(request: &Request) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let next = if safe_next(target) { target } else { "/" };
    const VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let location = format!(
        "/ui/login?next={}",
        percent_encoding::utf8_percent_encode(next, VALUE)
    );
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, value);
    } else {
        headers.insert(header::LOCATION, HeaderValue::from_static("/ui/login"));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Whether `next` is a path on this server: one leading `/`, and no `//`, `/\` or control
/// characters that a browser could turn into another origin.
pub fn safe_next(next: &str) -> bool {
    let path = next.split(['?', '#']).next().unwrap_or_default();
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\')
        // No dot-segments, plain or escaped: "/..//host" resolves to "//host", another site.
        && !path.split('/').any(|segment| {
            let segment = segment.to_ascii_lowercase().replace("%2e", ".");
            segment == "." || segment == ".."
        })
}

/// One request without valid credentials from `client` (no limit without an address).
fn count_anonymous(settings: &AuthSettings, client: Option<IpAddr>) -> Result<(), Refusal> {
    let Some(address) = client else { return Ok(()) };
    settings.limits.check_anonymous(address).map_err(|wait| {
        Refusal::Limited(
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "address-rate-limited",
                "too many requests without valid credentials from this address; retry after the Retry-After seconds",
            ),
            wait,
        )
    })
}

/// Refuses every request with credentials from an address blocked for failed
/// authentications, before the credentials are looked up.
fn refuse_blocked(settings: &AuthSettings, client: Option<IpAddr>) -> Result<(), Refusal> {
    match client.and_then(|address| settings.limits.blocked(address)) {
        Some(wait) => Err(too_many_failures(wait)),
        None => Ok(()),
    }
}

fn too_many_failures(wait: Duration) -> Refusal {
    Refusal::Limited(
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-failures",
            "too many requests with wrong credentials; retry after the Retry-After seconds",
        ),
        wait,
    )
}

async fn authorize(
    guard: &Guard,
    client: Option<IpAddr>,
    request: &mut Request,
) -> Result<(), Refusal> {
    let settings = &guard.state.auth;
    match guard.kind {
        AuthKind::Public | AuthKind::SignIn => count_anonymous(settings, client),
        // The handler checks the signature (an HMAC: cheap, and not guessable).
        AuthKind::Signature => Ok(()),
        AuthKind::EventSecret => match &settings.event_secret {
            // Off without a secret: an event route fetches URLs (the SNS handshake) and makes
            // jobs, neither of which an anonymous client may ask for. The server says at start.
            None => {
                count_anonymous(settings, client)?;
                Err(Refusal::Other(ApiError::new(
                    StatusCode::NOT_FOUND,
                    EVENTS_DISABLED,
                    "storage event routes are off on this server: it has no event secret (--event-secret-file or FRESCO_EVENT_SECRET)",
                )))
            }
            Some(secret) => {
                refuse_blocked(settings, client)?;
                match event_secret(request.headers()) {
                    Some(given) if secret.matches(&given) => Ok(()),
                    Some(_) => Err(failed(
                        settings,
                        client,
                        "invalid-event-secret",
                        "the event secret is wrong",
                    )),
                    None => {
                        count_anonymous(settings, client)?;
                        Err(unauthenticated(
                            "unauthenticated",
                            "this route needs the event secret: send it in 'X-Fresco-Event-Secret' or as the password of HTTP Basic authentication",
                        ))
                    }
                }
            }
        },
        AuthKind::Bearer | AuthKind::Api | AuthKind::Session | AuthKind::Page => {
            refuse_blocked(settings, client)?;
            if let Err(refusal) = refuse_query_token(request.uri().query()) {
                return Err(failed_with(settings, client, refusal));
            }
            let principal = identify(guard, client, request.headers()).await?;
            if let Err(wait) = settings.limits.check_request(&principal.token_id) {
                return Err(Refusal::Limited(
                    ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate-limited",
                        format!(
                            "token '{}' sends requests faster than this server allows; retry after the Retry-After seconds",
                            principal.name
                        ),
                    ),
                    wait,
                ));
            }
            if !guard.roles.contains(&principal.role) {
                let allowed: Vec<&str> = guard.roles.iter().map(|r| r.as_str()).collect();
                return Err(Refusal::Other(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!(
                        "token '{}' has role {}; this route needs one of: {}",
                        principal.name,
                        principal.role,
                        allowed.join(", ")
                    ),
                )));
            }
            if let Via::Session { csrf, .. } = &principal.via {
                if changes_state(request.method()) && !csrf_matches(request.headers(), csrf) {
                    return Err(Refusal::Other(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "csrf-token-required",
                        "requests made with the session cookie that change state must send the session's CSRF token in 'X-CSRF-Token'",
                    )));
                }
            }
            request.extensions_mut().insert(principal);
            Ok(())
        }
    }
}

/// Counts a failed authentication: a flood of bad credentials is answered 429 (bounded work and
/// logging), anything else 401. Over its own rate, the client's address is blocked.
fn failed(
    settings: &AuthSettings,
    client: Option<IpAddr>,
    code: &'static str,
    message: &str,
) -> Refusal {
    failed_with(settings, client, unauthenticated(code, message))
}

/// [`failed`] with the refusal to give when under the rates.
fn failed_with(settings: &AuthSettings, client: Option<IpAddr>, refusal: Refusal) -> Refusal {
    if let Some(address) = client {
        if let Err(wait) = settings.limits.check_address_failure(address) {
            settings.limits.block(address, wait);
            return too_many_failures(wait);
        }
    }
    match settings.limits.check_failure() {
        Ok(()) => refusal,
        Err(wait) => too_many_failures(wait),
    }
}

/// The token or session a request presents, looked up.
async fn identify(
    guard: &Guard,
    client: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<Principal, Refusal> {
    let settings = &guard.state.auth;
    let queue = &guard.state.queue;
    let accepts_bearer = matches!(guard.kind, AuthKind::Bearer | AuthKind::Api);
    let accepts_cookie = matches!(
        guard.kind,
        AuthKind::Api | AuthKind::Session | AuthKind::Page
    );
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        if !accepts_bearer {
            count_anonymous(settings, client)?;
            return Err(unauthenticated(
                "session-required",
                "this route takes the session cookie (POST /v1/session with a token opens one), not an Authorization header",
            ));
        }
        let Some(token) = bearer(value) else {
            return Err(failed(
                settings,
                client,
                "bad-authorization",
                "the Authorization header must be 'Bearer TOKEN'",
            ));
        };
        let found = queue
            .authenticate(&hash_secret(token))
            .await
            .map_err(|e| ApiError::unavailable("auth-unavailable", e))?;
        return match found {
            Some(record) => Ok(Principal::new(record, Via::Bearer)),
            None => Err(failed(
                settings,
                client,
                "invalid-token",
                "the token is unknown, expired or revoked",
            )),
        };
    }
    if accepts_cookie {
        if let Some(cookie) = session_cookie(headers) {
            let found = queue
                .session(&hash_secret(cookie))
                .await
                .map_err(|e| ApiError::unavailable("auth-unavailable", e))?;
            return match found {
                Some(session) => Ok(Principal::new(
                    session.token,
                    Via::Session {
                        csrf: csrf_of(cookie),
                        expires_at_ms: session.expires_at_ms,
                    },
                )),
                None => Err(failed(
                    settings,
                    client,
                    "invalid-session",
                    "the session expired or was ended, or its token was revoked; open a new one with POST /v1/session",
                )),
            };
        }
    }
    count_anonymous(settings, client)?;
    Err(unauthenticated(
        "unauthenticated",
        if accepts_bearer {
            "this route needs a token: send 'Authorization: Bearer TOKEN' (fresco tokens create makes one)"
        } else {
            "this route needs a session: POST /v1/session with a token opens one"
        },
    ))
}

/// Tokens are never taken from a query string (they would land in proxies' and servers' logs):
/// one sent there is refused, so the mistake shows at once.
fn refuse_query_token(query: Option<&str>) -> Result<(), Refusal> {
    let Some(query) = query else { return Ok(()) };
    let named = query.split('&').any(|pair| {
        let name = pair.split('=').next().unwrap_or("");
        ["token", "access_token", "api_key", "apikey"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    });
    if named || query.contains(fresco_queue::TOKEN_PREFIX) {
        return Err(unauthenticated(
            "token-in-query",
            "tokens are never accepted in a query string; send 'Authorization: Bearer TOKEN' (and revoke a token sent in a URL)",
        ));
    }
    Ok(())
}

fn bearer(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The value of the session cookie, if the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// A session's CSRF token: derived from the cookie's secret, so that it is stored nowhere (the
/// database keeps its hash only) and cannot be guessed without the cookie.
pub(crate) fn csrf_of(session_secret: &str) -> String {
    hash_secret(&format!("csrf:{session_secret}"))
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn csrf_matches(headers: &HeaderMap, csrf: &str) -> bool {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|given| given.as_bytes().ct_eq(csrf.as_bytes()).into())
}

/// The event secret a request presents: `X-Fresco-Event-Secret`, or the password of
/// `Authorization: Basic` (SNS puts the user info of the subscribed URL there).
fn event_secret(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(EVENT_SECRET_HEADER) {
        return value.to_str().ok().map(str::to_string);
    }
    use base64::Engine as _;
    let text = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let pair = String::from_utf8(decoded).ok()?;
    pair.split_once(':')
        .map(|(_, password)| password.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_parsed() {
        assert_eq!(bearer(&HeaderValue::from_static("Bearer abc")), Some("abc"));
        assert_eq!(
            bearer(&HeaderValue::from_static("bearer  abc ")),
            Some("abc")
        );
        assert_eq!(bearer(&HeaderValue::from_static("Basic abc")), None);
        assert_eq!(bearer(&HeaderValue::from_static("Bearer ")), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; fresco_session=s3; b=2"),
        );
        assert_eq!(session_cookie(&headers), Some("s3"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpzM2NyZXQ="),
        );
        assert_eq!(event_secret(&headers).as_deref(), Some("s3cret"));
    }

    #[test]
    fn query_tokens_are_refused() {
        assert!(refuse_query_token(Some("limit=5&state=queued")).is_ok());
        assert!(refuse_query_token(None).is_ok());
        assert!(refuse_query_token(Some("access_token=x")).is_err());
        assert!(refuse_query_token(Some("limit=1&Token=x")).is_err());
        assert!(refuse_query_token(Some("q=fresco_abc")).is_err());
    }

    #[test]
    fn only_same_origin_paths_are_returned_to() {
        for good in ["/", "/ui/jobs/abc", "/?state=failed", "/ui/jobs/a%2Fb"] {
            assert!(safe_next(good), "{good}");
        }
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "/\\/evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "",
            "evil",
            "/ui/\\x",
            "/\tx",
            "/..//evil.example",
            "/.//evil.example/x",
            "/%2e%2e//evil.example",
            "/a/../..//evil.example",
            "/a/%2E/b",
        ] {
            assert!(!safe_next(bad), "{bad}");
        }
    }

    #[test]
    fn secrets_compare_and_never_print() {
        let secret = Secret::new("hush");
        assert!(secret.matches("hush"));
        assert!(!secret.matches("hush!"));
        assert!(!format!("{secret:?}").contains("hush"));
    }
}
