//! `/v1/session`: browser sessions for the dashboard, whose pages, event streams and images
//! cannot send an Authorization header.
//!
//! A login page sends the token once, `POST /v1/session` with `Authorization: Bearer TOKEN`;
//! the answer sets the `fresco_session` cookie (HttpOnly, SameSite=Strict, Path=/, Secure under
//! TLS) and returns the session's CSRF token, which the page keeps and sends as `X-CSRF-Token`
//! with every request that changes state. `GET /v1/session` says who the caller is (and gives
//! the CSRF token again to a page holding the cookie); `DELETE /v1/session` logs out. A session
//! ends after the session lifetime (`--session-hours`), when its token expires, or when its
//! token is revoked.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fresco_queue::{hash_secret, new_secret, now_ms};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{session_cookie, Principal, Role, Via, SESSION_COOKIE};
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// Who the caller is.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    /// The token's name.
    pub name: String,
    /// `viewer`, `submitter`, `operator` or `admin`.
    #[schema(value_type = String, example = "operator")]
    pub role: Role,
    /// Send it as `X-CSRF-Token` with requests made with the cookie that change state (only
    /// when the session cookie is in use).
    pub csrf_token: Option<String>,
    /// When the session (or, for a bearer token, the token) expires; null: never.
    pub expires_at_ms: Option<i64>,
}

/// Opens a browser session with the token in the Authorization header.
#[utoipa::path(
    post,
    path = "/v1/session",
    tag = "session",
    responses(
        (status = 201, description = "The session is open; the cookie is set", body = SessionView,
            headers(("Set-Cookie" = String, description = "fresco_session=...; HttpOnly; SameSite=Strict; Path=/"))),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
pub async fn open_session(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    let secret = new_secret("fresco_s_");
    let csrf = super::csrf_of(&secret);
    let ttl_ms = i64::try_from(state.auth.session_ttl.as_millis()).unwrap_or(i64::MAX / 4);
    let mut expires = now_ms().saturating_add(ttl_ms);
    if let Some(token_expiry) = principal.token_expires_at_ms {
        expires = expires.min(token_expiry);
    }
    state
        .queue
        .open_session(
            &hash_secret(&secret),
            &principal.token_id,
            &hash_secret(&csrf),
            expires,
        )
        .await?;
    let max_age = (expires - now_ms()).max(0) / 1000;
    let secure = if state.tls || state.auth.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    let cookie = HeaderValue::from_str(&cookie).map_err(ApiError::internal)?;
    let view = SessionView {
        name: principal.name,
        role: principal.role,
        csrf_token: Some(csrf),
        expires_at_ms: Some(expires),
    };
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, cookie)],
        Json(view),
    )
        .into_response())
}

/// Who the caller is (token or session).
#[utoipa::path(
    get,
    path = "/v1/session",
    tag = "session",
    responses(
        (status = 200, description = "The caller's name and role; the CSRF token when called with the session cookie", body = SessionView),
    )
)]
pub async fn current_session(principal: Principal) -> Json<SessionView> {
    let (csrf_token, expires_at_ms) = match principal.via {
        Via::Bearer => (None, principal.token_expires_at_ms),
        Via::Session {
            csrf,
            expires_at_ms,
        } => (Some(csrf), Some(expires_at_ms)),
    };
    Json(SessionView {
        name: principal.name,
        role: principal.role,
        csrf_token,
        expires_at_ms,
    })
}

/// Logs out: ends the session of the cookie and clears the cookie.
#[utoipa::path(
    delete,
    path = "/v1/session",
    tag = "session",
    params(("X-CSRF-Token" = String, Header, description = "The session's CSRF token")),
    responses(
        (status = 204, description = "The session is over; the cookie is cleared"),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn close_session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(cookie) = session_cookie(&headers) {
        state.queue.close_session(&hash_secret(cookie)).await?;
    }
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    let clear = HeaderValue::from_str(&clear).map_err(ApiError::internal)?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}
