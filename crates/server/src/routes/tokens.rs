//! `/v1/tokens`: admins list, make and revoke API tokens. A new token's secret is in the answer
//! to its creation only; the database keeps its SHA-256. `fresco tokens` does the same on the
//! database directly (and makes the first admin token).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fresco_queue::{
    check_share, check_token_name, now_ms, NewToken, QueueError, Role, TokenRecord,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::AppState;

/// A token as listed (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// Not secret: what revoking takes.
    pub id: String,
    pub name: String,
    #[schema(value_type = String, example = "submitter")]
    pub role: Role,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    /// Neither revoked nor expired.
    pub active: bool,
    /// Prefixes of the data store (or absolute roots) shared with the token beyond its own
    /// namespace `tenants/NAME/` (see docs/security.md, "Tenants").
    pub shares: Vec<String>,
}

impl From<&TokenRecord> for TokenView {
    fn from(t: &TokenRecord) -> Self {
        TokenView {
            id: t.id.clone(),
            name: t.name.clone(),
            role: t.role,
            created_at_ms: t.created_at_ms,
            expires_at_ms: t.expires_at_ms,
            revoked_at_ms: t.revoked_at_ms,
            active: t.is_active(now_ms()),
            shares: t.shares.clone(),
        }
    }
}

/// Every token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
}

/// A token to make.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Unique, never reused: jobs and the audit trail name the token by it.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z0-9._-]+$",
        example = "ci"
    )]
    pub name: String,
    /// `viewer`, `submitter`, `operator` or `admin`.
    #[schema(
        pattern = r"^(viewer|submitter|operator|admin)$",
        example = "submitter"
    )]
    pub role: String,
    /// Days until it expires (default: never).
    #[schema(minimum = 1, maximum = 3650)]
    #[serde(default, deserialize_with = "fresco_wire::submit::integer::optional")]
    pub expires_in_days: Option<u32>,
    /// Prefixes shared with a submitter beyond its own namespace: names in the data store
    /// (`shared/team-a`) or absolute roots among the server's `--allow-prefix` roots
    /// (`/srv/media`, `az://container/in`). Default: none.
    #[serde(default)]
    #[schema(schema_with = shares_schema)]
    pub shares: Vec<String>,
}

/// `shares`: at most 32 prefixes, each as `fresco_queue::check_share` accepts it.
fn shares_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(fresco_queue::SHARE_MAX_CHARS))
                .pattern(Some(fresco_queue::SHARE_PATTERN)),
        )
        .max_items(Some(32))
        .description(Some(
            "Prefixes shared with a submitter beyond its own namespace: names in the data \
             store (`shared/team-a`) or absolute roots among the server's `--allow-prefix` \
             roots (`/srv/media`, `az://container/in`). Default: none.",
        ))
        .build()
}

/// A token just made, with its secret: shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: TokenView,
    /// Send as `Authorization: Bearer SECRET`. Not stored; it cannot be shown again.
    pub secret: String,
}

/// Lists every token (revoked and expired ones too), newest first.
#[utoipa::path(
    get,
    path = "/v1/tokens",
    tag = "tokens",
    responses(
        (status = 200, description = "The tokens", body = TokenList),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn list_tokens(State(state): State<AppState>) -> Result<Json<TokenList>, ApiError> {
    let tokens = state.queue.tokens().await?;
    Ok(Json(TokenList {
        tokens: tokens.iter().map(TokenView::from).collect(),
    }))
}

/// Makes a token; the answer holds its secret, shown this once.
#[utoipa::path(
    post,
    path = "/v1/tokens",
    tag = "tokens",
    request_body = CreateToken,
    responses(
        (status = 201, description = "The token and its secret", body = CreatedToken),
        (status = 400, description = "A bad name, role or lifetime", body = ErrorBody),
        (status = 409, description = "A token has this name already (code `token-name-taken`)", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn create_token(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(request): ApiJson<CreateToken>,
) -> Result<Response, ApiError> {
    check_token_name(&request.name)
        .map_err(|m| ApiError::bad_request("invalid-field", format!("name: {m}")))?;
    let role = Role::parse(&request.role).ok_or_else(|| {
        ApiError::bad_request(
            "invalid-field",
            "role: must be viewer, submitter, operator or admin",
        )
    })?;
    let expires_at_ms = match request.expires_in_days {
        None => None,
        Some(days @ 1..=3650) => Some(now_ms() + i64::from(days) * 86_400_000),
        Some(days) => {
            return Err(ApiError::bad_request(
                "invalid-field",
                format!("expires_in_days: must be between 1 and 3650, got {days}"),
            ))
        }
    };
    if request.shares.len() > 32 {
        return Err(ApiError::bad_request(
            "invalid-field",
            "shares: at most 32 prefixes",
        ));
    }
    for share in &request.shares {
        check_share(share)
            .map_err(|m| ApiError::bad_request("invalid-field", format!("shares: {m}")))?;
    }
    let token = NewToken {
        name: request.name,
        role,
        expires_at_ms,
    };
    let issued = match state
        .queue
        .create_token(&token, Some(&principal.name))
        .await
    {
        Ok(issued) => issued,
        Err(QueueError::NameTaken(name)) => {
            return Err(ApiError::conflict(
                "token-name-taken",
                format!("a token named '{name}' exists already (names are never reused)"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let mut issued = issued;
    if !request.shares.is_empty() {
        // Made without shares first: until this runs, the token reaches less, never more.
        if let Some(record) = state
            .queue
            .set_token_shares(&issued.record.id, &request.shares, Some(&principal.name))
            .await?
        {
            issued.record = record;
        }
    }
    tracing::info!(actor = %principal.name, token = %issued.record.name, role = %issued.record.role, shares = ?issued.record.shares, "token created");
    let body = CreatedToken {
        token: TokenView::from(&issued.record),
        secret: issued.secret,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Revokes a token (by id or name) and ends its sessions, at once on every server.
#[utoipa::path(
    delete,
    path = "/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path, description = "The token's id or name")),
    responses(
        (status = 200, description = "The token, revoked", body = TokenView),
        (status = 404, description = "No such token (code `token-not-found`)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TokenView>, ApiError> {
    match state.queue.revoke_token(&id, Some(&principal.name)).await? {
        Some(record) => {
            tracing::info!(actor = %principal.name, token = %record.name, "token revoked");
            Ok(Json(TokenView::from(&record)))
        }
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "token-not-found",
            format!("no token with id or name '{id}'"),
        )),
    }
}
