//! fresco's HTTP API: submit, list, follow, cancel and retry jobs over JSON.
//!
//! A request flows: [`routes`] (axum handlers; bodies and queries through [`extract`], whose
//! rejections become [`error::ApiError`]s) → validation of the body ([`api::SubmitRequest`]) →
//! a [`JobFactory`] that checks the input, output and model and builds the queue's job → the
//! [`fresco_queue::Queue`] → a view of the queue's records ([`api`]) as JSON. Every error is
//! `{ "error": { "code", "message" } }`. The OpenAPI document ([`openapi`]) is generated from the
//! same handlers and types, so it says what the server does.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let queue = fresco_queue::open("sqlite:///tmp/q.db").await.unwrap();
//! let state = fresco_server::AppState::new(queue, std::sync::Arc::new(fresco_server::LocalJobFactory::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! fresco_server::serve(listener, state, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use fresco_queue::Queue;

pub mod api;
pub mod auth;
pub mod callback;
pub mod dashboard;
pub mod dataset_watch;
pub mod error;
pub mod extract;
pub mod factory;
pub mod hygiene;
pub mod metrics;
pub mod openapi;
pub mod outbound;
pub mod routes;
pub mod tenancy;
pub mod tls;
pub mod watch;
pub mod webhook;
mod wire_glue;

// The parsers of outside input live in fresco-wire (light, so that the fuzz targets build
// quickly); their modules keep their paths here.
pub use fresco_wire::{events, limits, signing};

pub use api::SubmitRequest;
pub use callback::CallbackSettings;
pub use error::{ApiError, ErrorBody};
pub use factory::{JobFactory, LocalJobFactory, Rejection};
pub use routes::router;

/// The default largest upload: 4 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 4 << 30;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Where jobs are stored.
    pub queue: Arc<dyn Queue>,
    /// Turns submissions into jobs (model loading and file checks).
    pub jobs: Arc<dyn JobFactory>,
    /// The workers' shared work folder, when this machine sees it: a canceled job's chunk files
    /// are removed at once (workers sweep them otherwise).
    pub work_dir: Option<PathBuf>,
    /// The system store when it is an object store: a canceled job's chunks are removed
    /// from it at once.
    pub system: Option<fresco_store::Store>,
    /// How completion callbacks are checked, signed and sent (sent by
    /// [`callback::spawn_delivery_loop`], which the embedding program starts, as `fresco serve`
    /// does).
    pub callbacks: CallbackSettings,
    /// What storage events for videos become (None, with no `dataset_watch` either: the event
    /// routes answer 409).
    pub events: Option<routes::events::EventTrigger>,
    /// The dataset trigger, which storage events for images under its prefix feed too.
    pub dataset_watch: Option<Arc<dataset_watch::DatasetWatch>>,
    /// The data store (inputs and outputs) that uploads go to and relative names resolve in;
    /// `None`: no uploads.
    pub data: Option<fresco_store::Store>,
    /// Signs and checks the scoped, expiring URLs of uploads and downloads.
    pub signer: Arc<signing::UrlSigner>,
    /// The largest upload accepted, in bytes.
    pub max_upload_bytes: u64,
    /// The server's URL as clients reach it (`--public-url`), for the URLs it hands out;
    /// `None`: from each request's Host header.
    pub public_url: Option<String>,
    /// Whether the server speaks HTTPS (for the URLs it hands out).
    pub tls: bool,
    /// Sessions, the event secret, rate limits and caps (see [`auth`]).
    pub auth: auth::AuthSettings,
    /// Submitters' namespaces in the data store (see [`tenancy`]); `None`: submitters' names
    /// are not scoped (a server without a data store; `fresco serve` always has one).
    pub tenancy: Option<tenancy::Tenancy>,
    /// The longest a handler may take, streaming routes aside (see [`hygiene`]).
    pub request_timeout: std::time::Duration,
}

impl AppState {
    pub fn new(queue: Arc<dyn Queue>, jobs: Arc<dyn JobFactory>) -> Self {
        AppState {
            queue,
            jobs,
            work_dir: None,
            system: None,
            callbacks: CallbackSettings::default(),
            events: None,
            dataset_watch: None,
            data: None,
            signer: Arc::new(signing::UrlSigner::random()),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            public_url: None,
            tls: false,
            auth: auth::AuthSettings::default(),
            tenancy: None,
            request_timeout: hygiene::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// Serves the API on `listener` until `shutdown` completes, then stops accepting connections and
/// waits for the requests in flight to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "fresco API listening"),
        Err(e) => tracing::warn!(error = %e, "fresco API listening (address unknown)"),
    }
    // Open dashboard streams would hold the graceful shutdown up forever: end them first.
    let shutdown = async move {
        shutdown.await;
        dashboard::end_streams();
    };
    // With each connection's peer address, for the per-address limits (see `auth`).
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
