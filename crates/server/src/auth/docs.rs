//! Writes each route's rule from [`crate::routes::ROUTES`] into the OpenAPI document, so that
//! the document says what [`super::guard`] does: the security schemes (bearer token, session
//! cookie, event secret), each operation's `security`, and its 401, 403 and 429 answers.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi as OpenApiDoc, Ref, RefOr};
use utoipa::Modify;

use super::{AuthKind, SESSION_COOKIE};
use crate::routes::all_routes;

/// The scheme names the document uses.
const BEARER: &str = "bearer";
const SESSION: &str = "session";
const EVENT_SECRET: &str = "eventSecret";

/// The [`Modify`] that documents authentication.
pub struct SecurityDocs;

impl Modify for SecurityDocs {
    fn modify(&self, doc: &mut OpenApiDoc) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "Set by POST /v1/session; requests that change state also send X-CSRF-Token",
            ))),
        );
        components.add_security_scheme(
            EVENT_SECRET,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                super::EVENT_SECRET_HEADER,
                "The shared secret of --event-secret (HTTP Basic's password works too)",
            ))),
        );
        for route in all_routes() {
            let Some(item) = doc.paths.paths.get_mut(&route.openapi_path()) else {
                continue;
            };
            let Some(operation) = operation(item, &route.method) else {
                continue;
            };
            let any = |names: &[&str]| -> Vec<SecurityRequirement> {
                names
                    .iter()
                    .map(|n| SecurityRequirement::new(*n, Vec::<String>::new()))
                    .collect()
            };
            let security = match route.auth {
                AuthKind::Public | AuthKind::SignIn | AuthKind::Signature => None,
                AuthKind::Bearer => Some(any(&[BEARER])),
                AuthKind::Api => Some(any(&[BEARER, SESSION])),
                AuthKind::Session | AuthKind::Page => Some(any(&[SESSION])),
                // Optional: a server without --event-secret takes events without it.
                AuthKind::EventSecret => {
                    let mut requirements = any(&[EVENT_SECRET]);
                    requirements.push(SecurityRequirement::default());
                    Some(requirements)
                }
            };
            if security.is_none() {
                // Limited per client address (requests without credentials).
                if matches!(route.auth, AuthKind::Public | AuthKind::SignIn) {
                    add_error(
                        operation,
                        "429",
                        "Too many requests without credentials from this address; see Retry-After",
                        Some(("Retry-After", Type::Integer)),
                    );
                }
                continue;
            }
            operation.security = security;
            let roles: Vec<&str> = route.roles.iter().map(|r| r.as_str()).collect();
            if !roles.is_empty() {
                let note = format!("\n\nRoles: {}.", roles.join(", "));
                let description = operation.description.get_or_insert_with(String::new);
                description.push_str(&note);
            }
            add_error(
                operation,
                "401",
                "No credentials, or unknown, expired or revoked ones",
                Some(("WWW-Authenticate", Type::String)),
            );
            if route.auth.has_roles() {
                add_error(
                    operation,
                    "403",
                    "The token's role may not use this route, or a session request lacks X-CSRF-Token",
                    None,
                );
            }
            add_error(
                operation,
                "429",
                "Too many requests from this token, or with wrong or no credentials from this address; see Retry-After",
                Some(("Retry-After", Type::Integer)),
            );
        }
    }
}

fn operation<'a>(item: &'a mut PathItem, method: &axum::http::Method) -> Option<&'a mut Operation> {
    use axum::http::Method;
    match *method {
        Method::GET => item.get.as_mut(),
        Method::POST => item.post.as_mut(),
        Method::PUT => item.put.as_mut(),
        Method::DELETE => item.delete.as_mut(),
        Method::PATCH => item.patch.as_mut(),
        Method::HEAD => item.head.as_mut(),
        Method::OPTIONS => item.options.as_mut(),
        _ => None,
    }
}

fn add_error(
    operation: &mut Operation,
    status: &str,
    description: &str,
    header: Option<(&str, Type)>,
) {
    if operation.responses.responses.contains_key(status) {
        return;
    }
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    );
    if let Some((name, kind)) = header {
        response = response.header(
            name,
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(kind))
                .build(),
        );
    }
    operation
        .responses
        .responses
        .insert(status.to_string(), RefOr::T(response.build()));
}
