//! The one error shape every route answers with:
//! `{ "error": { "code": "kebab-case-stable-code", "message": "human text" } }`.
//!
//! Client errors (4xx) say what is wrong and name the field or file. Server errors (5xx) carry a
//! stable code but a generic message: the detail may name internal paths or database hosts, so it
//! goes to the log (`tracing`) and never to the client. Rejections of axum's own extractors (bad
//! JSON, wrong content type, oversized bodies, bad query strings) are mapped here too, so that no
//! route ever answers in plain text.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fresco_queue::QueueError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, kebab-case: programs match on this, never on the message.
    #[schema(example = "job-not-found")]
    pub code: String,
    /// For people: names the field or file at fault (generic for server errors).
    #[schema(example = "no job with id 'e3b0c442'")]
    pub message: String,
}

/// An error on its way to becoming a response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// What 5xx bodies say instead of the detail.
const INTERNAL_MESSAGE: &str = "internal error";

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: a field of the request is wrong in itself.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404: no such job.
    pub fn job_not_found(id: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "job-not-found",
            format!("no job with id '{id}'"),
        )
    }

    /// 409: the job is not in a state that allows this.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// 422: the request is well formed but its input, output or model cannot be used.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 500: logs `detail` and answers generically.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error answering a request");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            INTERNAL_MESSAGE,
        )
    }

    /// 503: something the server needs (the queue, ffprobe, ONNX Runtime) is not there now;
    /// logs `detail` and answers generically under `code`.
    pub fn unavailable(code: &'static str, detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, code, "a dependency of the server is unavailable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            "the service cannot do this right now; try again later",
        )
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::NoSuchJob(id) => ApiError::job_not_found(&id),
            other => ApiError::internal(format!("job queue: {other}")),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "the body must be JSON, sent with 'Content-Type: application/json'",
            ),
            // serde's message names the field and what it expected ("unknown field `x`, expected
            // one of ...", "invalid type: string \"a\", expected u8 at line 1 column 9").
            JsonRejection::JsonDataError(e) => {
                ApiError::bad_request("invalid-field", e.body_text())
            }
            JsonRejection::JsonSyntaxError(e) => ApiError::bad_request("bad-json", e.body_text()),
            JsonRejection::BytesRejection(e) => body_error(e.status(), e.body_text()),
            other => body_error(other.status(), other.body_text()),
        }
    }
}

/// A body that could not be read: too large (413) or cut short (400).
fn body_error(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            "body-too-large",
            format!(
                "the body is larger than {} bytes",
                crate::routes::MAX_BODY_BYTES
            ),
        )
    } else if status.is_client_error() {
        ApiError::new(status, "bad-body", text)
    } else {
        ApiError::internal(text)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        // "Failed to deserialize query string: limit: invalid digit found in string".
        ApiError::bad_request("invalid-query", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        if rejection.status().is_server_error() {
            ApiError::internal(rejection.body_text())
        } else {
            ApiError::bad_request("invalid-path", rejection.body_text())
        }
    }
}
