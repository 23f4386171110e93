//! `herald-producer serve`: the HTTP API, so services in any language enqueue with the same
//! validation, idempotency and lanes as the Rust library.
//!
//! - `POST /v1/jobs/otp`, `/v1/jobs/booking`, `/v1/jobs/raw`: one job, the bulk line's fields
//!   without `kind`; `POST /v1/jobs/batch`: up to [`MAX_BATCH`] jobs with `kind`, answered
//!   per item. `Idempotency-Key` header or body field.
//! - `POST /v1/jobs/reminder`: a booking's reminder, usually scheduled (`before`).
//! - `GET /v1/jobs/{id}`: the job's state and timeline, as `herald-worker track` shows it.
//! - `DELETE /v1/jobs/{id}`, `DELETE /v1/jobs?idempotency_key=K`: cancel a job before its
//!   send begins (200 cancelled, 409 too late with its state, 404 unknown).
//! - `POST /v1/otp/verified`: the backend reports a verified OTP (the OTP guard's
//!   conversion); 204. An OTP the guard refuses is 429 `otp_refused` with `Retry-After`.
//! - `GET /openapi.json`: this API's OpenAPI document, generated from the handlers' types.
//! - `/metrics`, `/healthz`, `/readyz`: as every Herald server ([`herald_shared::ops`]).
//!
//! The API is a thin shell over [`crate::Producer`]: it authenticates ([`auth`]), decodes
//! with errors naming every bad field ([`error`]), and maps a Redis outage to 503 with
//! `Retry-After`. Nothing is half-written: an enqueue is one atomic Redis script or command.
//!
//! The document is exact: every rule the validation enforces and every answer each route
//! gives are in it, from the types' attributes, the handlers' `responses` and
//! [`contract`] (what derives cannot say). An error status always carries an error body.

pub mod auth;
pub mod contract;
pub mod error;
pub mod handlers;

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Producer;
use auth::{BearerSecurity, Tokens};

/// The most jobs one batch request may carry.
pub const MAX_BATCH: usize = 1_000;
/// Body limit of a single-job request: a whole RCS message is at most 250 KB.
pub const SINGLE_BODY_LIMIT: usize = 256 * 1024;
/// Body limit of a batch request.
pub const BATCH_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// What every handler shares. Cloned per request (it is a handful of `Arc`s).
#[derive(Clone)]
pub struct ApiState {
    pub producer: Producer,
    pub tokens: Arc<Tokens>,
    /// Appointments' time zone when a job names none (`HERALD_TIMEZONE`).
    pub zone: herald_shared::schedule::Zone,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Herald producer API", description = "Enqueue OTPs, booking confirmations and raw Interakt RCS requests for Herald's workers."),
    modifiers(&BearerSecurity),
    components(schemas(handlers::Accepted, handlers::Cancelled)),
    security(("bearer" = [])),
    tags((name = "jobs", description = "Enqueue jobs and read their state"))
)]
struct ApiDoc;

/// The API's router and its OpenAPI document, built from the same route declarations so the
/// two cannot disagree.
pub fn router(state: ApiState) -> (Router, utoipa::openapi::OpenApi) {
    let (jobs, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(handlers::enqueue_otp))
        .routes(routes!(handlers::enqueue_booking))
        .routes(routes!(handlers::enqueue_reminder))
        .routes(routes!(handlers::enqueue_raw))
        .routes(routes!(handlers::enqueue_batch))
        .routes(routes!(handlers::job_state, handlers::cancel_job))
        .routes(routes!(handlers::cancel_by_key))
        .routes(routes!(handlers::otp_verified))
        .route_layer(middleware::from_fn_with_state(
            state.tokens.clone(),
            auth::require_bearer,
        ))
        .with_state(state.clone())
        .split_for_parts();
    // After the routes: it rewrites schemas the routes brought in.
    contract::Contract.modify(&mut doc);
    let ops = herald_shared::ops::routes(state.producer.pool().clone());
    handlers::describe_metrics();
    let served_doc = doc.clone();
    let app = jobs
        .route(
            "/openapi.json",
            axum::routing::get(move || std::future::ready(axum::Json(served_doc.clone()))),
        )
        .merge(ops)
        .layer(middleware::from_fn(handlers::count_requests));
    (app, doc)
}

/// The OpenAPI document as pretty JSON: what `herald-producer openapi` prints and the
/// repository keeps in `producer/openapi.json`.
pub fn openapi_json() -> String {
    let pool =
        herald_shared::redis_pool::create_pool("redis://127.0.0.1:6379", 1).expect("a static URL");
    let keys = herald_store::Keys::new("herald").expect("the default namespace");
    let state = ApiState {
        producer: Producer::new(pool, keys),
        tokens: Arc::new(Tokens::default()),
        zone: herald_shared::schedule::Zone::default(),
    };
    router(state)
        .1
        .to_pretty_json()
        .expect("the document serializes")
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(listen = %listener.local_addr()?, "producer API listening");
    let (app, _) = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
