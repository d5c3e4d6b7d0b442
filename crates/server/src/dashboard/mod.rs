//! The web dashboard, served by the binary itself: plain HTML pages with a small vanilla-JS
//! script and a style sheet, all embedded (`include_str!`), with no link outside the server.
//!
//! ```text
//! GET /                          overview page      GET /ui/login        sign-in page
//! GET /ui/jobs/{id}              a job's page       GET /ui/assets/...   script, style sheet
//! GET /ui/events[?state=S]       overview, as server-sent events (one whole view per event)
//! GET /ui/jobs/{id}/events       a job's page, as server-sent events
//! GET /ui/overview, /ui/jobs/{id}/detail          the same views as JSON, once
//! GET /ui/jobs/{id}/preview/{before|after}        the job's preview images (JPEG; a records
//!                                                 job's "after" is an SVG overlay)
//! ```
//!
//! The views ([`view`]) are read from the queue, so one server shows every worker of a
//! deployment. A stream looks again every [`REFRESH`] and sends only what changed; streams end
//! when the server shuts down ([`end_streams`]), so an open page never holds up a shutdown.

use std::convert::Infallible;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::Method;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use fresco_core::JobState;
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast;

use crate::api::JobStateView;
use crate::auth::{roles, AuthKind, Principal};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::routes::Route;
use crate::AppState;

pub mod view;

/// How often an open page's stream reads the queue again.
pub const REFRESH: Duration = Duration::from_secs(1);
/// A stream ends after this long; the browser reconnects at once (and signs in again if its
/// session ended meanwhile).
const STREAM_LIFETIME: Duration = Duration::from_secs(15 * 60);

const INDEX_HTML: &str = include_str!("assets/index.html");
const JOB_HTML: &str = include_str!("assets/job.html");
const LOGIN_HTML: &str = include_str!("assets/login.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// Told when the server shuts down: every open stream ends.
static SHUTDOWN: LazyLock<broadcast::Sender<()>> = LazyLock::new(|| broadcast::channel(1).0);

/// Ends every open event stream of this process (the server is shutting down).
pub fn end_streams() {
    let _ = SHUTDOWN.send(());
}

/// `GET` routes outside the JSON API (so not in the OpenAPI document), each with its rule:
/// the pages take the session cookie and send a browser without one to the sign-in page
/// (`Page`); the sign-in page and the script and style sheet it needs take no credentials
/// (`SignIn`: static, they hold no data); the views, streams and images take the session
/// cookie; `/metrics` takes a bearer token of any role (a Prometheus scraper's).
macro_rules! get_route {
    ($path:literal, $auth:ident, $roles:expr, $handler:path) => {
        Route {
            method: Method::GET,
            path: $path,
            auth: AuthKind::$auth,
            roles: $roles,
            handler: || get($handler),
        }
    };
}

/// The dashboard's routes and `/metrics`; the router adds them to [`crate::routes::ROUTES`].
pub static ROUTES: &[Route] = &[
    get_route!("/", Page, roles::ALL, index_page),
    get_route!("/ui/login", SignIn, roles::NONE, login_page),
    get_route!("/ui/jobs/{id}", Page, roles::ALL, job_page),
    get_route!("/ui/assets/app.js", SignIn, roles::NONE, app_js),
    get_route!("/ui/assets/style.css", SignIn, roles::NONE, style_css),
    get_route!("/ui/overview", Session, roles::ALL, overview_json),
    get_route!("/ui/events", Session, roles::ALL, overview_events),
    get_route!("/ui/jobs/{id}/detail", Session, roles::ALL, job_json),
    get_route!("/ui/jobs/{id}/events", Session, roles::ALL, job_events),
    get_route!(
        "/ui/jobs/{id}/preview/{which}",
        Session,
        roles::ALL,
        preview_image
    ),
    get_route!("/metrics", Bearer, roles::ALL, crate::metrics::metrics),
];

fn page(html: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

pub async fn index_page() -> Response {
    page(INDEX_HTML)
}

pub async fn login_page() -> Response {
    page(LOGIN_HTML)
}

pub async fn job_page(ApiPath(_id): ApiPath<String>) -> Response {
    page(JOB_HTML)
}

pub async fn app_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
        .into_response()
}

pub async fn style_css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLE_CSS,
    )
        .into_response()
}

/// The overview's filter.
#[derive(Debug, Deserialize)]
pub struct OverviewParams {
    /// Only jobs in this state.
    pub state: Option<JobStateView>,
}

/// The overview, once, as JSON.
pub async fn overview_json(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<OverviewParams>,
) -> Result<Json<view::Overview>, ApiError> {
    let filter = params.state.map(JobState::from);
    let owner = principal.only_owner();
    Ok(Json(view::overview(&*state.queue, filter, owner).await?))
}

/// A job's page, once, as JSON.
pub async fn job_json(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<view::JobPage>, ApiError> {
    match view::job_page(&*state.queue, &id, principal.only_owner()).await? {
        Some(page) => Ok(Json(page)),
        None => Err(ApiError::job_not_found(&id)),
    }
}

/// The overview as server-sent `overview` events: one now, then one whenever it changes.
pub async fn overview_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<OverviewParams>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let filter = params.state.map(JobState::from);
    let owner = principal.only_owner().map(str::to_string);
    let queue = state.queue.clone();
    stream_views("overview", move || {
        let (queue, owner) = (queue.clone(), owner.clone());
        async move {
            view::overview(&*queue, filter, owner.as_deref())
                .await
                .map(|v| Some(serde_json::to_string(&v)))
        }
    })
}

/// A job's page as server-sent `job` events: one now, then one whenever it changes. 404 for an
/// unknown job.
pub async fn job_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    crate::routes::jobs::visible_job(&state, &principal, &id).await?;
    let owner = principal.only_owner().map(str::to_string);
    let queue = state.queue.clone();
    Ok(stream_views("job", move || {
        let (queue, id, owner) = (queue.clone(), id.clone(), owner.clone());
        async move {
            view::job_page(&*queue, &id, owner.as_deref())
                .await
                .map(|page| page.map(|p| serde_json::to_string(&p)))
        }
    }))
}

/// Reads a view every [`REFRESH`] and sends it as an `event` when it differs from the last one
/// sent. A queue error is sent as a `failure` event (the detail is logged) and retried; a view
/// that is gone (a deleted job) ends the stream.
fn stream_views<F, Fut>(
    event: &'static str,
    read: F,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<
            Output = Result<Option<Result<String, serde_json::Error>>, fresco_queue::QueueError>,
        > + Send,
{
    struct Stepper<F> {
        read: F,
        last: Option<String>,
        shutdown: broadcast::Receiver<()>,
        started: Instant,
        first: bool,
    }
    let stepper = Stepper {
        read,
        last: None,
        shutdown: SHUTDOWN.subscribe(),
        started: Instant::now(),
        first: true,
    };
    let stream = futures_util::stream::unfold(stepper, move |mut s| async move {
        loop {
            if !s.first {
                tokio::select! {
                    _ = tokio::time::sleep(REFRESH) => {}
                    _ = s.shutdown.recv() => return None,
                }
            }
            s.first = false;
            if s.started.elapsed() > STREAM_LIFETIME {
                return None;
            }
            match (s.read)().await {
                Ok(Some(Ok(json))) => {
                    if s.last.as_deref() != Some(json.as_str()) {
                        s.last = Some(json.clone());
                        return Some((Ok(Event::default().event(event).data(json)), s));
                    }
                }
                Ok(Some(Err(e))) => {
                    tracing::error!("dashboard: a view does not serialise: {e}");
                    return None;
                }
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!("dashboard: could not read the queue: {e}");
                    s.last = None;
                    let failure = Event::default()
                        .event("failure")
                        .data("the job queue is unavailable; retrying");
                    return Some((Ok(failure), s));
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Which image of a preview.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PreviewSide {
    Before,
    After,
}

/// The media type of every preview's "before" image.
const BEFORE_MIME: &str = "image/jpeg";

/// The image types a preview's "after" is served as; any other stored type is served as bytes
/// to download, never as something a browser would run. An SVG is served as itself: under the
/// dashboard's content security policy (no inline script, no style attribute) and `nosniff`
/// (see [`crate::hygiene`]), and the worker escapes every label it draws.
const AFTER_MIMES: &[&str] = &["image/jpeg", "image/png", "image/svg+xml"];

fn served_type(stored: &str) -> &str {
    AFTER_MIMES
        .iter()
        .find(|m| **m == stored)
        .copied()
        .unwrap_or("application/octet-stream")
}

/// One image of a job's before/after preview. 404 until the job has one.
pub async fn preview_image(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((id, side)): ApiPath<(String, PreviewSide)>,
) -> Result<Response, ApiError> {
    crate::routes::jobs::visible_job(&state, &principal, &id).await?;
    let Some(preview) = state.queue.preview(&id).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "preview-not-ready",
            format!("job {id} has no preview yet: it appears once a chunk is done"),
        ));
    };
    let (bytes, mime) = match side {
        PreviewSide::Before => (preview.before, BEFORE_MIME),
        PreviewSide::After => (preview.after, served_type(&preview.mime)),
    };
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_string()),
            // A job's preview never changes once saved.
            (header::CACHE_CONTROL, "private, max-age=86400".to_string()),
        ],
        bytes,
    )
        .into_response())
}
