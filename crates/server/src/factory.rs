//! From a validated [`SubmitRequest`] to a [`NewJob`] for the queue, behind a trait so that the
//! binary can inject its own checks and tests can do without models and ffmpeg. The checks
//! themselves are `fresco_submit`'s, the same for every entrance (`fresco run`, `fresco jobs
//! submit`, this API, watched folders, storage events); here they run on a blocking thread and
//! their [`Rejection`]s answer as HTTP errors.

use async_trait::async_trait;
use axum::http::StatusCode;
use fresco_queue::NewJob;

use crate::api::SubmitRequest;
use crate::error::ApiError;
use crate::limits::PathRules;

pub use fresco_submit::{missing, video_options, ProbeWindow, Rejection};

/// The default [`JobFactory`]: every check of `fresco_submit`, with the server's settings.
pub type LocalJobFactory = fresco_submit::Submitter;

/// Turns a submission into a job. Called after [`SubmitRequest::validate`]; the returned job's
/// `idempotency_key` is set by the route from the request's header.
#[async_trait]
pub trait JobFactory: Send + Sync {
    async fn build(&self, request: &SubmitRequest) -> Result<NewJob, Rejection>;

    /// [`JobFactory::build`] for a submitter whose files are confined to `within` (its
    /// namespace and shares, [`crate::tenancy::Tenancy::rules`]): the files the checks find on
    /// their own (the card beside a model, the labels a card names) must be inside too.
    async fn build_within(
        &self,
        request: &SubmitRequest,
        within: Option<PathRules>,
    ) -> Result<NewJob, Rejection> {
        let _ = within;
        self.build(request).await
    }

    /// A dataset job over a manifest the server wrote itself (the dataset trigger's batches,
    /// [`crate::dataset_watch`]): `request.input` is the manifest's absolute path or object URL
    /// and `request.dataset` is given. Submitters never reach this: their manifests could
    /// name anything. A factory that makes no such jobs refuses with an internal error.
    async fn build_manifest(&self, request: &SubmitRequest) -> Result<NewJob, Rejection> {
        Err(Rejection::Internal(format!(
            "{}: this server's job factory makes no manifest jobs",
            request.input
        )))
    }
}

#[async_trait]
impl JobFactory for fresco_submit::Submitter {
    async fn build(&self, request: &SubmitRequest) -> Result<NewJob, Rejection> {
        let factory = self.clone();
        let request = request.clone();
        // ffprobe and reading the model block for up to seconds.
        tokio::task::spawn_blocking(move || factory.build_request(&request))
            .await
            .map_err(|e| Rejection::Internal(format!("job checks panicked: {e}")))?
            .map(|built| built.job)
    }

    async fn build_manifest(&self, request: &SubmitRequest) -> Result<NewJob, Rejection> {
        let factory = self.clone();
        let request = request.clone();
        tokio::task::spawn_blocking(move || factory.build_manifest_request(&request))
            .await
            .map_err(|e| Rejection::Internal(format!("job checks panicked: {e}")))?
            .map(|built| built.job)
    }

    async fn build_within(
        &self,
        request: &SubmitRequest,
        within: Option<PathRules>,
    ) -> Result<NewJob, Rejection> {
        match within {
            Some(rules) => JobFactory::build(&self.clone().within(rules), request).await,
            None => JobFactory::build(self, request).await,
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::BadField { code, message } => ApiError::bad_request(code, message),
            Rejection::Unusable { code, message } => ApiError::unprocessable(code, message),
            Rejection::Unavailable { code, detail } => ApiError::unavailable(code, detail),
            Rejection::Internal(detail) => ApiError::internal(detail),
        }
    }
}

/// The HTTP status a rejection answers with.
pub fn status(rejection: &Rejection) -> StatusCode {
    ApiError::from(rejection.clone()).status
}
