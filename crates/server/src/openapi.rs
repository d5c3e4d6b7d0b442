//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` attributes and the
//! bodies' `ToSchema` derives, and served at `/openapi.json`.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::schema::{AllOf, ObjectBuilder, OneOf, Schema, Type};
use utoipa::openapi::{OpenApi as OpenApiDoc, RefOr};
use utoipa::{Modify, OpenApi};

use crate::api::{
    JobDetail, JobPage, JobStateView, JobView, StatusBody, StreamKindView, SubmitRequest,
    TaskErrorView, TaskKindView, TaskStateView, TaskView,
};
use crate::auth::docs::SecurityDocs;
use crate::auth::session::{self, SessionView};
use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::audit::{self, AuditEntryView, AuditPage};
use crate::routes::events::{EventOutcome, EventReply, ValidationResponse};
use crate::routes::logs::{LogLineView, LogPage};
use crate::routes::tokens::{self, CreateToken, CreatedToken, TokenList, TokenView};
use crate::routes::uploads::{UploadGrant, UploadRequest, UploadedObject};
use crate::routes::workers::{WorkerList, WorkerView};
use crate::routes::{events, health, jobs, logs, uploads, workers};
use fresco_wire::{DatasetRequest, ScoringRequest};

/// The API's description; add every new handler to `paths`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "fresco",
        description = "Styles every frame of videos with ONNX models, as durable jobs.",
    ),
    paths(
        jobs::submit_job,
        jobs::list_jobs,
        jobs::get_job,
        jobs::cancel_job,
        jobs::retry_job,
        logs::job_logs,
        workers::list_workers,
        uploads::create_upload,
        uploads::put_object,
        uploads::get_object,
        events::azure_events,
        events::s3_events,
        session::open_session,
        session::current_session,
        session::close_session,
        tokens::list_tokens,
        tokens::create_token,
        tokens::revoke_token,
        audit::audit_log,
        health::healthz,
        health::readyz,
        openapi_json,
    ),
    components(schemas(
        SubmitRequest, ScoringRequest, DatasetRequest, JobView, JobDetail, JobPage, TaskView, TaskErrorView, JobStateView,
        TaskKindView, TaskStateView, StreamKindView, StatusBody, ErrorBody, ErrorDetail,
        WorkerList, WorkerView, EventReply, EventOutcome, ValidationResponse, LogPage, LogLineView,
        UploadRequest, UploadGrant, UploadedObject,
        SessionView, TokenView, TokenList, CreateToken, CreatedToken, AuditPage, AuditEntryView,
    )),
    modifiers(&ExactlyOneModel, &SecurityDocs),
    tags(
        (name = "jobs", description = "Submit and follow jobs"),
        (name = "workers", description = "The workers and what they are doing"),
        (name = "uploads", description = "Upload inputs and download outputs through short-lived signed URLs"),
        (name = "events", description = "Storage events (Azure Event Grid, S3 via SNS or EventBridge) that make jobs"),
        (name = "session", description = "Browser sessions for the dashboard, opened with a token"),
        (name = "tokens", description = "API tokens and the audit trail (docs/security.md)"),
        (name = "health", description = "Probes for load balancers and orchestrators"),
    )
)]
pub struct ApiDoc;

/// Says in the schema what [`SubmitRequest::model_ref`] enforces: exactly one of `style` and
/// `model`, as a string (a `null` counts as absent). The derive cannot express a constraint
/// across fields, so the derived object is wrapped: `allOf: [object, oneOf: [has style, has
/// model]]`.
struct ExactlyOneModel;

impl Modify for ExactlyOneModel {
    fn modify(&self, doc: &mut OpenApiDoc) {
        let Some(components) = doc.components.as_mut() else {
            return;
        };
        let Some(derived) = components.schemas.remove("SubmitRequest") else {
            return;
        };
        let has = |field: &str| {
            ObjectBuilder::new()
                .required(field)
                .property(field, ObjectBuilder::new().schema_type(Type::String))
                .build()
        };
        let mut one_of = OneOf::new();
        one_of.items = vec![has("style").into(), has("model").into()];
        let mut all_of = AllOf::new();
        all_of.items = vec![derived, RefOr::T(Schema::OneOf(one_of))];
        all_of.description = Some("A job to submit: exactly one of `style` and `model`.".into());
        components
            .schemas
            .insert("SubmitRequest".into(), RefOr::T(Schema::AllOf(all_of)));
    }
}

/// The document, built once.
pub fn document() -> &'static OpenApiDoc {
    static DOC: OnceLock<OpenApiDoc> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    responses((status = 200, description = "The OpenAPI 3 document of this API", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> impl IntoResponse {
    let body = document()
        .to_json()
        .expect("the OpenAPI document serialises");
    ([(header::CONTENT_TYPE, "application/json")], body)
}
