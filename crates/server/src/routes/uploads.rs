//! Uploads into the data store through short-lived, scoped URLs.
//!
//! ```text
//! POST /v1/uploads {"name": "clip.mp4"}          (an API client)
//!   -> 201 {"upload_url": ".../v1/objects/uploads/ID/clip.mp4?expires=..&perm=w&kid=..&sig=..",
//!           "input": "uploads/ID/clip.mp4", ...}
//! PUT upload_url  <the file's bytes>              (anyone holding the URL, until it expires)
//!   -> 201: the object exists in the data store; nothing is at its key before the upload ends
//! POST /v1/jobs {"input": "uploads/ID/clip.mp4", "output": "styled/clip.mp4", ...}
//! GET /v1/objects/KEY?expires=..&perm=r&...       (a signed download URL, e.g. of an output)
//! ```
//!
//! The URL is signed by [`crate::signing::UrlSigner`] over the method, the exact path and the
//! expiry: it writes one key, once, before its deadline, and nothing else. The data store may be
//! a local folder or an object store; the server streams the body into it as a multipart upload
//! ([`fresco_store::Store::upload_reader`]), so a large upload is never held in memory, and it
//! stops at `max_upload_bytes`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::signing::Permission;
use crate::AppState;

/// How long an upload URL stays valid when the request does not say.
pub const DEFAULT_URL_SECONDS: u64 = 900;
/// The longest validity a client may ask for.
pub const MAX_URL_SECONDS: u64 = 24 * 3600;
/// The longest file name accepted.
const MAX_NAME_BYTES: usize = 200;

/// A request for an upload URL.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The file's name, e.g. `clip.mp4`: no folders; its extension must be a video's.
    pub name: String,
    /// Seconds the URL stays valid (default 900, at most 86400).
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// Where and how to upload.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UploadGrant {
    /// `PUT` the file's bytes here (no other header needed).
    pub upload_url: String,
    /// Always `PUT`.
    pub method: String,
    /// The name to give as `input` in `POST /v1/jobs` once uploaded.
    pub input: String,
    /// Unix seconds after which the URL is refused.
    pub expires_at: u64,
    /// The largest upload accepted, in bytes.
    pub max_bytes: u64,
}

/// What an upload stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UploadedObject {
    /// The name to give as `input` of a job (in the uploader's namespace for a submitter).
    pub input: String,
    pub size: u64,
    pub etag: Option<String>,
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn no_data_store() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "no-data-store",
        "this server has no data store for uploads; start it with --data URL",
    )
}

/// Checks an uploaded file's name: one path segment, a video extension.
fn check_name(name: &str) -> Result<(), ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad-name", message);
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(bad(format!(
            "name: must be 1 to {MAX_NAME_BYTES} bytes long"
        )));
    }
    if name.contains(['/', '\\', '\0'])
        || name.starts_with('.')
        || name.chars().any(char::is_control)
    {
        return Err(bad(format!(
            "name: '{}' must be a plain file name (no folders, not hidden, no control characters)",
            name.escape_default()
        )));
    }
    let extension = std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension {
        Some(ext) if crate::watch::VIDEO_EXTENSIONS.contains(&ext.as_str()) => Ok(()),
        _ => Err(bad(format!(
            "name: '{}' does not have a video file extension ({})",
            name.escape_default(),
            crate::watch::VIDEO_EXTENSIONS.join(", ")
        ))),
    }
}

/// The path of an object's signed URL: `/v1/objects/` and the key, each segment
/// percent-encoded as a client sends it.
pub fn object_path(key: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let encoded: Vec<String> = key
        .split('/')
        .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
        .collect();
    format!("/v1/objects/{}", encoded.join("/"))
}

/// The server's own base URL, for the URLs it hands out: `--public-url`, or the request's
/// `Host` header.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(public) = &state.public_url {
        return public.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.len() < 256 && !h.contains(['/', ' ', '@']))
        .unwrap_or("localhost");
    let scheme = if state.tls { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// A signed URL to read `key` of the data store until `expires_at`.
pub fn download_url(state: &AppState, headers: &HeaderMap, key: &str, expires_at: u64) -> String {
    let path = object_path(key);
    let query = state.signer.sign(&path, expires_at, Permission::Read);
    format!("{}{path}?{query}", base_url(state, headers))
}

/// A short-lived URL to upload one file into the data store.
#[utoipa::path(
    post,
    path = "/v1/uploads",
    tag = "uploads",
    request_body = UploadRequest,
    responses(
        (status = 201, description = "Upload with PUT to `upload_url`, then submit `input`", body = UploadGrant),
        (status = 400, description = "Bad name or validity", body = ErrorBody),
        (status = 409, description = "The server has no data store", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn create_upload(
    State(state): State<AppState>,
    principal: crate::auth::Principal,
    headers: HeaderMap,
    ApiJson(request): ApiJson<UploadRequest>,
) -> Result<(StatusCode, Json<UploadGrant>), ApiError> {
    if state.data.is_none() {
        return Err(no_data_store());
    }
    check_name(&request.name)?;
    let seconds = request.expires_in.unwrap_or(DEFAULT_URL_SECONDS);
    if seconds == 0 || seconds > MAX_URL_SECONDS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-expiry",
            format!("expires_in: must be 1 to {MAX_URL_SECONDS} seconds"),
        ));
    }
    // A submitter's upload lands in its namespace; `input` is its name there.
    let key = crate::tenancy::upload_key(
        state.tenancy.as_ref(),
        &principal,
        &format!("uploads/{}/{}", uuid::Uuid::new_v4(), request.name),
    );
    let path = object_path(&key);
    let expires_at = now_seconds() + seconds;
    let query = state.signer.sign(&path, expires_at, Permission::Write);
    Ok((
        StatusCode::CREATED,
        Json(UploadGrant {
            upload_url: format!("{}{path}?{query}", base_url(&state, &headers)),
            method: "PUT".into(),
            input: crate::tenancy::client_name(&key).to_string(),
            expires_at,
            max_bytes: state.max_upload_bytes,
        }),
    ))
}

/// Checks the signature of a request to `/v1/objects/...` and returns the object's key.
fn signed_key(
    state: &AppState,
    method: &Method,
    uri: &axum::http::Uri,
) -> Result<String, ApiError> {
    let path = uri.path();
    state
        .signer
        .verify(method.as_str(), path, uri.query(), now_seconds())
        .map_err(|e| ApiError::new(StatusCode::FORBIDDEN, e.code(), e.to_string()))?;
    let encoded = path.strip_prefix("/v1/objects/").unwrap_or_default();
    let key = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad-key",
                "the object key is not UTF-8",
            )
        })?
        .into_owned();
    Ok(key)
}

/// Receives an upload at a URL from `POST /v1/uploads`.
#[utoipa::path(
    put,
    path = "/v1/objects/{key}",
    tag = "uploads",
    params(
        ("key" = String, Path, description = "The object's key, as in the signed URL"),
        ("expires" = u64, Query, description = "Unix seconds"),
        ("perm" = String, Query, description = "r, w or rw"),
        ("kid" = String, Query, description = "The signing key's id"),
        ("sig" = String, Query, description = "The signature"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored", body = UploadedObject),
        (status = 403, description = "Missing, bad, expired or wrong-method signature", body = ErrorBody),
        (status = 409, description = "Already uploaded, or no data store", body = ErrorBody),
        (status = 413, description = "Larger than the server accepts", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn put_object(
    State(state): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<UploadedObject>), ApiError> {
    let key = signed_key(&state, &method, &uri)?;
    let data = state.data.as_ref().ok_or_else(no_data_store)?;
    let limit = state.max_upload_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload-too-large",
            format!("the upload is larger than {limit} bytes (--max-upload-mb)"),
        )
    };
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if length > limit {
            return Err(too_large());
        }
    }
    if data.head(&key).await.map_err(store_error)?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already-uploaded",
            format!("{key}: already uploaded; ask for a new upload URL"),
        ));
    }
    // Count while streaming: a body without a length (chunked) stops at the limit too, and the
    // aborted upload leaves nothing at the key.
    let mut seen: u64 = 0;
    let stream = body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        seen += chunk.len() as u64;
        if seen > limit {
            Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "upload-too-large",
            ))
        } else {
            Ok(chunk)
        }
    });
    let reader = tokio_util::io::StreamReader::new(stream);
    let info = match data.upload_reader(&key, reader).await {
        Ok(info) => info,
        Err(e) if e.to_string().contains("upload-too-large") => return Err(too_large()),
        Err(e) => return Err(store_error(e)),
    };
    if info.size == 0 {
        let _ = data.delete(&key).await;
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty-upload",
            "the upload is empty (0 bytes)",
        ));
    }
    tracing::info!("upload: stored {key} ({} bytes)", info.size);
    Ok((
        StatusCode::CREATED,
        Json(UploadedObject {
            input: crate::tenancy::client_name(&key).to_string(),
            size: info.size,
            etag: info.etag,
        }),
    ))
}

/// Serves an object of the data store at a signed download URL.
#[utoipa::path(
    get,
    path = "/v1/objects/{key}",
    tag = "uploads",
    params(
        ("key" = String, Path, description = "The object's key, as in the signed URL"),
        ("expires" = u64, Query, description = "Unix seconds"),
        ("perm" = String, Query, description = "r, w or rw"),
        ("kid" = String, Query, description = "The signing key's id"),
        ("sig" = String, Query, description = "The signature"),
    ),
    responses(
        (status = 200, description = "The object's bytes", content_type = "application/octet-stream"),
        (status = 403, description = "Missing, bad, expired or wrong-method signature", body = ErrorBody),
        (status = 404, description = "No such object", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn get_object(
    State(state): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let key = signed_key(&state, &method, &uri)?;
    let data = state.data.as_ref().ok_or_else(no_data_store)?;
    let (info, stream) = data.get_stream(&key).await.map_err(store_error)?;
    let body = Body::from_stream(stream.map_err(std::io::Error::other));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, info.size.to_string()),
        ],
        body,
    )
        .into_response())
}

fn store_error(e: fresco_store::StoreError) -> ApiError {
    match e {
        fresco_store::StoreError::NotFound { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "object-not-found", "no such object")
        }
        fresco_store::StoreError::BadKey { .. } => {
            ApiError::new(StatusCode::BAD_REQUEST, "bad-key", e.to_string())
        }
        other => {
            tracing::warn!("data store: {other}");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "the data store is unavailable; try again",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_video_file_names() {
        assert!(check_name("clip.mp4").is_ok());
        assert!(check_name("My Clip (1).MOV").is_ok());
        for bad in [
            "",
            "a/b.mp4",
            "..",
            ".hidden.mp4",
            "x.txt",
            "noext",
            "a\\b.mp4",
            "a\nb.mp4",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_name(&format!("{}.mp4", "a".repeat(300))).is_err());
    }

    #[test]
    fn object_paths_encode_each_segment() {
        assert_eq!(
            object_path("uploads/1/My Clip.mp4"),
            "/v1/objects/uploads/1/My%20Clip.mp4"
        );
    }
}
