//! The router: every route with its authentication rule, the body size limit, and JSON answers
//! for unknown paths and methods.
//!
//! The router is built from [`ROUTES`] alone, so a route cannot exist without its rule: to add
//! one, add one line to [`ROUTES`] (`route!(METHOD, "/path", KIND, roles::SET, handler)`), list
//! the handler in [`crate::openapi::ApiDoc`] and the route in `docs/security.md`'s table; the
//! tests compare all three.

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::routing::{MethodFilter, MethodRouter};
use axum::Router;

use crate::auth::{roles, session, AuthKind, Role};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::hygiene;
use crate::AppState;

pub mod audit;
pub mod events;
pub mod health;
pub mod jobs;
pub mod logs;
pub mod tokens;
pub mod uploads;
pub mod workers;

/// The largest JSON body accepted: a submission is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// One route: what it answers, who may call it, and its handler.
pub struct Route {
    pub method: Method,
    /// axum's path syntax (`/v1/jobs/{id}`), as the OpenAPI document writes it.
    pub path: &'static str,
    pub auth: AuthKind,
    /// Roles allowed (empty for kinds without a token: public, signature, event secret).
    pub roles: &'static [Role],
    /// Makes the handler's method router.
    pub handler: fn() -> MethodRouter<AppState>,
}

impl Route {
    /// The path as OpenAPI writes it: `{*key}` (axum's catch-all) is `{key}` there.
    pub fn openapi_path(&self) -> String {
        self.path.replace("{*", "{")
    }
}

/// `route!(POST, "/v1/jobs", Api, roles::SUBMITTERS, jobs::submit_job)`.
macro_rules! route {
    ($method:ident, $path:literal, $auth:ident, $roles:expr, $handler:path) => {
        Route {
            method: Method::$method,
            path: $path,
            auth: AuthKind::$auth,
            roles: $roles,
            handler: || axum::routing::on(MethodFilter::$method, $handler),
        }
    };
}

/// Every route of the API, with its authentication kind and the roles allowed.
pub static ROUTES: &[Route] = &[
    route!(POST, "/v1/jobs", Api, roles::SUBMITTERS, jobs::submit_job),
    route!(GET, "/v1/jobs", Api, roles::ALL, jobs::list_jobs),
    route!(GET, "/v1/jobs/{id}", Api, roles::ALL, jobs::get_job),
    route!(
        POST,
        "/v1/jobs/{id}/cancel",
        Api,
        roles::SUBMITTERS,
        jobs::cancel_job
    ),
    route!(
        POST,
        "/v1/jobs/{id}/retry",
        Api,
        roles::OPERATORS,
        jobs::retry_job
    ),
    route!(GET, "/v1/jobs/{id}/logs", Api, roles::ALL, logs::job_logs),
    route!(
        GET,
        "/v1/workers",
        Api,
        roles::OBSERVERS,
        workers::list_workers
    ),
    route!(
        POST,
        "/v1/uploads",
        Api,
        roles::SUBMITTERS,
        uploads::create_upload
    ),
    route!(
        PUT,
        "/v1/objects/{*key}",
        Signature,
        roles::NONE,
        uploads::put_object
    ),
    route!(
        GET,
        "/v1/objects/{*key}",
        Signature,
        roles::NONE,
        uploads::get_object
    ),
    route!(
        POST,
        "/v1/events/azure",
        EventSecret,
        roles::NONE,
        events::azure_events
    ),
    route!(
        POST,
        "/v1/events/s3",
        EventSecret,
        roles::NONE,
        events::s3_events
    ),
    route!(
        POST,
        "/v1/session",
        Bearer,
        roles::ALL,
        session::open_session
    ),
    route!(
        GET,
        "/v1/session",
        Api,
        roles::ALL,
        session::current_session
    ),
    route!(
        DELETE,
        "/v1/session",
        Session,
        roles::ALL,
        session::close_session
    ),
    route!(GET, "/v1/tokens", Api, roles::ADMINS, tokens::list_tokens),
    route!(POST, "/v1/tokens", Api, roles::ADMINS, tokens::create_token),
    route!(
        DELETE,
        "/v1/tokens/{id}",
        Api,
        roles::ADMINS,
        tokens::revoke_token
    ),
    route!(GET, "/v1/audit", Api, roles::OPERATORS, audit::audit_log),
    route!(GET, "/healthz", Public, roles::NONE, health::healthz),
    route!(GET, "/readyz", Public, roles::NONE, health::readyz),
    route!(
        GET,
        "/openapi.json",
        Api,
        roles::ALL,
        crate::openapi::openapi_json
    ),
];

/// Every route the router serves: [`ROUTES`] (the JSON API) and the dashboard's.
pub fn all_routes() -> impl Iterator<Item = &'static Route> {
    ROUTES.iter().chain(crate::dashboard::ROUTES)
}

/// Every route of [`all_routes`], each behind [`crate::auth::guard`] with its rule.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for route in all_routes() {
        let guard = crate::auth::Guard {
            state: state.clone(),
            kind: route.auth,
            roles: route.roles,
        };
        // `route_layer`: the guard runs for this method only, not for the 405 fallback.
        let mut handler = (route.handler)().route_layer(axum::middleware::from_fn_with_state(
            guard,
            crate::auth::guard,
        ));
        if hygiene::has_timeout(route) {
            handler = handler
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    state.request_timeout,
                ))
                .layer(axum::middleware::map_response(hygiene::timeout_as_json));
        }
        // Routes of one path with different methods merge into one.
        router = router.route(route.path, handler);
    }
    crate::metrics::install();
    crate::metrics::zero_server_families();
    let mut router = router
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(axum::middleware::from_fn(crate::metrics::track_http))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    for (name, value) in hygiene::SECURITY_HEADERS {
        router = router.layer(SetResponseHeaderLayer::overriding(
            name.clone(),
            HeaderValue::from_static(value),
        ));
    }
    // The last layer added runs first: the id is made sound, set, put on the response, and
    // carried by the request's span (see `hygiene`).
    router
        .layer(TraceLayer::new_for_http().make_span_with(hygiene::request_span))
        .layer(PropagateRequestIdLayer::new(hygiene::REQUEST_ID))
        .layer(SetRequestIdLayer::new(hygiene::REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::map_request(
            hygiene::keep_sound_request_id,
        ))
        .with_state(state)
}

async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route-not-found",
        "no such route; see /openapi.json",
    )
}

async fn no_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this route does not take that method; see /openapi.json",
    )
}
