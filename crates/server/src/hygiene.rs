//! What every response gets, from `tower-http` rather than by hand: a request id, a time limit
//! (on the routes that answer from one bounded piece of work), and security headers.
//!
//! A request flows, outermost first: [`keep_sound_request_id`] drops a caller's `x-request-id`
//! that is not a short token → `SetRequestId` gives it one (a UUID) when it has none →
//! `PropagateRequestId` copies it onto the response → `Trace` opens the `request` span that
//! every log line of the request carries (`request_id`, method, route pattern) → the route,
//! whose handler runs under `Timeout` unless it streams ([`STREAMING`]); a timeout becomes the
//! JSON error `request-timeout` ([`timeout_as_json`]). The security headers
//! ([`SECURITY_HEADERS`]) are set on every response, the dashboard's pages first of all.

use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::routes::Route;

/// The header that carries the request id, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id a caller may choose; longer ones are replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The default time a handler may take (`fresco serve --request-timeout`): a submission probes
/// its input and inspects its model within it.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Routes without a time limit: their answers are streams (server-sent events) or their
/// bodies are as large as an upload (up to `--max-upload-mb`), so a fixed limit would cut
/// honest transfers. Their own limits apply instead (a stream's lifetime, the upload's size).
pub const STREAMING: &[(Method, &str)] = &[
    (Method::PUT, "/v1/objects/{*key}"),
    (Method::GET, "/v1/objects/{*key}"),
    (Method::GET, "/ui/events"),
    (Method::GET, "/ui/jobs/{id}/events"),
];

/// Whether a route runs under the request timeout.
pub fn has_timeout(route: &Route) -> bool {
    !STREAMING
        .iter()
        .any(|(method, path)| *method == route.method && *path == route.path)
}

/// The dashboard's pages load only their own script, style sheet, images and streams: no
/// inline script or style, nothing from elsewhere, no framing, no forms posted elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Set on every response (overriding any a handler set).
pub const SECURITY_HEADERS: &[(HeaderName, &str)] = &[
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    // Signed URLs carry their signature in the query: never hand them on as a Referer.
    (header::REFERRER_POLICY, "no-referrer"),
];

/// Whether a caller's request id is kept: 1 to [`MAX_REQUEST_ID_LEN`] characters of letters,
/// digits and `-_.:` (a UUID, a trace id), so that it is safe to write in logs and job logs.
pub fn is_sound_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Drops a request id the caller sent that is not sound (see [`is_sound_request_id`]);
/// `SetRequestId` then makes one.
pub async fn keep_sound_request_id(mut request: Request) -> Request {
    let sound = request
        .headers()
        .get_all(&REQUEST_ID)
        .iter()
        .all(is_sound_request_id);
    let count = request.headers().get_all(&REQUEST_ID).iter().count();
    if !sound || count > 1 {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// The request's id, as `SetRequestId` left it ("-" before that layer ran).
pub fn request_id(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
}

/// The span of one request: its id, method and route pattern (never the path itself, whose
/// object names belong to tenants, nor the query, which carries signatures).
pub fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str())
        .unwrap_or("unmatched");
    tracing::info_span!(
        "request",
        request_id = %request_id(request.headers()),
        method = %request.method(),
        route = %route,
    )
}

/// `Timeout` answers an empty 408; the API answers JSON errors.
pub async fn timeout_as_json(response: Response) -> Response {
    if response.status() == StatusCode::REQUEST_TIMEOUT
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        return ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            "the server did not answer within its request timeout; retry later",
        )
        .into_response();
    }
    response
}
