//! The job routes: decode, validate, enqueue, answer.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_shared::Job;
use herald_store::timeline::{self, JobState, JobTimeline};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody, ErrorCode, Violation, with_retry_after};
use super::{ApiState, BATCH_BODY_LIMIT, MAX_BATCH, SINGLE_BODY_LIMIT};
use crate::enqueue::NotEnqueued;
use crate::spec::{BookingSpec, JobSpec, OtpSpec, RawSpec, ReminderSpec};
use crate::{BatchResult, CancelOutcome, Enqueued};
use herald_shared::episodes::Episodes;
use herald_shared::redis_pool::RedisErrorKind;
use herald_shared::traces::TraceContext;

/// The header that carries an idempotency key (the body field `idempotency_key` also does).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// 202: the job is on its lane or scheduled (or was already, under this idempotency key).
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub job_id: Uuid,
    /// True when the idempotency key was already used: `job_id` is the first job's.
    pub duplicate: bool,
    /// The older unsent job of the same `replace_key` that this one cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded: Option<Uuid>,
    /// When the job is due, when it was scheduled for later (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub send_at: Option<String>,
}

impl From<Enqueued> for Accepted {
    fn from(e: Enqueued) -> Self {
        Accepted {
            job_id: e.job_id,
            duplicate: e.duplicate,
            superseded: e.superseded,
            send_at: e.send_at.map(herald_store::record::format_time),
        }
    }
}

/// 200: the job was cancelled (now or earlier) and will never be sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cancelled {
    pub job_id: Uuid,
    /// Always `cancelled`.
    pub state: JobState,
}

/// One item of a batch answer: accepted, or why not.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    /// Position of the item in the request array.
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    /// The older unsent job of the same `replace_key` that this item cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// The answer to a batch: counts and one item per job, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAccepted {
    pub enqueued: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub items: Vec<BatchItem>,
}

/// The answer to a batch that enqueued nothing (400, 409, 503): what went wrong with the
/// whole request, or, when every item was rejected, each item's reason.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchRejected {
    /// `invalid` (400), `idempotency_conflict` (409) when every item was refused for that
    /// reason alone, or `unavailable` (503) when Redis refused or failed and no item was
    /// enqueued (an item whose `error` is `unknown_outcome` may have been: look it up).
    pub error: ErrorCode,
    pub message: String,
    /// What is wrong with the request as a whole (not an array, no item, too many).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
    /// Every item was rejected: one answer per item, in order, each with its `error`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<BatchItem>,
}

impl BatchRejected {
    fn whole(err: ApiError) -> Response {
        let body = BatchRejected {
            error: err.body.error,
            message: err.body.message,
            violations: err.body.violations,
            items: Vec::new(),
        };
        (err.status, Json(body)).into_response()
    }
}

/// How the single-job routes answer (for the OpenAPI document; handlers build the bodies).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum EnqueueAnswers {
    /// Enqueued (or a duplicate of the key's first job)
    #[response(status = 202)]
    Accepted(Accepted),
    /// Invalid: every bad field named (the body, a field, the Idempotency-Key header)
    #[response(status = 400)]
    Invalid(ErrorBody),
    /// Missing or unknown bearer token
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The idempotency key already holds a job with other content (`idempotency_conflict`;
    /// `job_id` is that job); nothing enqueued. A new message needs a new key
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// Body too large (over 256 KiB)
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The OTP guard refused the OTP (`otp_refused`, OTPs only): `rule` names the rule,
    /// `retry_after_s` (and the Retry-After header) when it frees, absent for `country`;
    /// nothing enqueued
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds until the same OTP would pass (absent when it never will)")))]
    OtpRefused(ErrorBody),
    /// Redis unreachable, or the enqueue not yet on --min-replicas replicas; retry (with the
    /// same idempotency key) after the Retry-After seconds
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// A spec a single-job route takes: its idempotency key may also come as a header.
trait SingleSpec: serde::de::DeserializeOwned {
    fn idempotency_key(&mut self) -> &mut Option<String>;
    fn into_job_spec(self) -> JobSpec;
}

macro_rules! single_spec {
    ($($spec:ident => $kind:ident),*) => {$(
        impl SingleSpec for $spec {
            fn idempotency_key(&mut self) -> &mut Option<String> {
                &mut self.idempotency_key
            }

            fn into_job_spec(self) -> JobSpec {
                JobSpec::$kind(self)
            }
        }
    )*};
}

single_spec!(OtpSpec => Otp, BookingSpec => Booking, ReminderSpec => Reminder, RawSpec => Raw);

/// The one handler of the single-job routes (each route below only names its spec, for the
/// OpenAPI document): decode the body as `S`, take the idempotency key from the body or the
/// `Idempotency-Key` header (equal when both), enqueue.
async fn enqueue_spec<S: SingleSpec>(
    state: &ApiState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut spec: S = decode(body).await?;
    let key = spec.idempotency_key().take();
    *spec.idempotency_key() = idempotency_key(headers, key)?;
    enqueue_one(state, spec.into_job_spec(), caller_trace(headers)).await
}

/// The `Idempotency-Key` header of the single-job enqueues, as the OpenAPI document shows it
/// (read by [`idempotency_key`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Describes the header; the handlers read it from the HeaderMap.
pub struct IdempotencyHeader {
    /// Enqueue once per key within the idempotency window: 1 to 200 visible ASCII characters
    /// (no spaces at either end). When the body's idempotency_key is also sent, the two must
    /// be equal (400 otherwise)
    #[param(
        rename = "Idempotency-Key",
        pattern = r"^[!-~]([\t -~]*[!-~])?$",
        max_length = 200
    )]
    idempotency_key: Option<String>,
}

/// The caller's W3C trace context headers, as the OpenAPI document shows them (read by
/// [`caller_trace`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Describes the headers; the handlers read them from the HeaderMap.
pub struct TraceHeaders {
    /// W3C Trace Context (`00-<trace id>-<parent id>-<flags>`): the jobs enqueued are created
    /// in the caller's trace (docs/tracing.md). One that does not parse is ignored, as W3C
    /// Trace Context asks, never refused
    #[param(example = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
    traceparent: Option<String>,
    /// W3C Trace Context vendor data, carried with `traceparent`
    tracestate: Option<String>,
}

/// Enqueue a one-time password.
#[utoipa::path(
    post, path = "/v1/jobs/otp", tag = "jobs", request_body = OtpSpec,
    params(IdempotencyHeader, TraceHeaders),
    responses(EnqueueAnswers)
)]
pub async fn enqueue_otp(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    enqueue_spec::<OtpSpec>(&state, &headers, body).await
}

/// Enqueue a booking confirmation card.
#[utoipa::path(
    post, path = "/v1/jobs/booking", tag = "jobs", request_body = BookingSpec,
    params(IdempotencyHeader, TraceHeaders),
    responses(EnqueueAnswers)
)]
pub async fn enqueue_booking(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    enqueue_spec::<BookingSpec>(&state, &headers, body).await
}

/// Enqueue a reminder of a booking (its own card and SMS template), usually scheduled:
/// `before` the appointment, or at `send_at` / in `send_in`.
#[utoipa::path(
    post, path = "/v1/jobs/reminder", tag = "jobs", request_body = ReminderSpec,
    params(IdempotencyHeader, TraceHeaders),
    responses(EnqueueAnswers)
)]
pub async fn enqueue_reminder(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    enqueue_spec::<ReminderSpec>(&state, &headers, body).await
}

/// Enqueue a complete Interakt request body (standalone rich card, carousel or Template).
#[utoipa::path(
    post, path = "/v1/jobs/raw", tag = "jobs", request_body = RawSpec,
    params(IdempotencyHeader, TraceHeaders),
    responses(EnqueueAnswers)
)]
pub async fn enqueue_raw(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    enqueue_spec::<RawSpec>(&state, &headers, body).await
}

/// Enqueue up to 1,000 jobs (each with its `kind`), answered item by item. Valid items are
/// enqueued even when others are rejected: an invalid item (`invalid`) or one whose
/// idempotency key already holds other content (`idempotency_conflict`, with the first
/// job's `job_id` in its `error`), or an OTP the OTP guard refused (`otp_refused`, with its
/// `rule` and `retry_after_s`).
#[utoipa::path(
    post, path = "/v1/jobs/batch", tag = "jobs", request_body = BatchRequest,
    params(TraceHeaders),
    responses(
        (status = 202, description = "At least one item enqueued (or a duplicate); see each item", body = BatchAccepted),
        (status = 400, description = "Not an array of 1 to 1,000 jobs, or no item enqueued and at least one invalid; `items` holds each item's answer", body = BatchRejected),
        (status = 401, description = "Missing or unknown bearer token", body = ErrorBody),
        (status = 409, description = "No item enqueued: every item's idempotency key already holds a job with other content; `items` holds each item's answer", body = BatchRejected),
        (status = 413, description = "Body too large (over 8 MiB)", body = ErrorBody),
        (status = 429, description = "No item enqueued: the OTP guard refused every item, or some and the others' idempotency keys hold other content (each item's `error`: `otp_refused` with its `rule` and `retry_after_s`, or `idempotency_conflict`); Retry-After is the soonest any frees", body = BatchRejected, headers(("Retry-After" = u64, description = "Seconds until the soonest refused item would pass (absent when none ever will)"))),
        (status = 503, description = "No item enqueued: Redis unreachable, or it refused or failed every valid item (out of memory, say); `items` holds each item's answer: `unavailable` items were not written and are safe to send again, `unknown_outcome` items may have been enqueued (look them up by their `job_id`); retry after the Retry-After seconds", body = BatchRejected),
    )
)]
pub async fn enqueue_batch(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = caller_trace(&headers);
    let bytes = read_body(body, BATCH_BODY_LIMIT).await?;
    let items: Vec<serde_json::Value> = match serde_json::from_slice(&bytes) {
        Ok(items) => items,
        Err(err) => {
            return Ok(BatchRejected::whole(ApiError::invalid_field(
                ".",
                format!("must be a JSON array of jobs ({err})"),
            )));
        }
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Ok(BatchRejected::whole(ApiError::invalid_field(
            ".",
            format!("has {} items; a batch has 1 to {MAX_BATCH}", items.len()),
        )));
    }
    let mut answers: Vec<BatchItem> = Vec::with_capacity(items.len());
    let mut jobs: Vec<Job> = Vec::new();
    let mut job_items: Vec<usize> = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let parsed = JobSpec::from_value(item)
            .map_err(ApiError::from)
            .and_then(|spec| Ok(spec.into_job_in(&state.zone)?));
        match parsed {
            Ok(mut job) => {
                if let Some(caller) = &caller {
                    caller.write_to(&mut job);
                }
                job_items.push(index);
                jobs.push(job);
                answers.push(BatchItem {
                    index,
                    job_id: None,
                    duplicate: None,
                    superseded: None,
                    error: None,
                });
            }
            Err(err) => answers.push(BatchItem {
                index,
                job_id: None,
                duplicate: None,
                superseded: None,
                error: Some(err.body),
            }),
        }
    }
    let results: Vec<BatchResult> = if jobs.is_empty() {
        Vec::new()
    } else {
        let count = jobs.len();
        state
            .producer
            .enqueue_batch(jobs)
            .await
            .unwrap_or_else(|err| {
                // Nothing attempted (no connection): every item's answer says so.
                let reason = err.to_string();
                let kind = err.redis_kind().unwrap_or(RedisErrorKind::Other);
                (0..count)
                    .map(|_| {
                        Err(NotEnqueued::Refused {
                            reason: reason.clone(),
                            kind,
                        })
                    })
                    .collect()
            })
    };
    let failed = results.iter().find_map(|result| {
        let not = result.as_ref().err()?;
        Some((not.redis_kind()?, not))
    });
    match failed {
        Some((kind, not)) => Episodes::process().request_failed("enqueue", kind, &not.to_string()),
        None if !results.is_empty() => Episodes::process().request_succeeded(),
        None => {}
    }
    let mut enqueued = Vec::with_capacity(results.len());
    for (index, result) in job_items.into_iter().zip(results) {
        match result {
            Ok(result) => {
                answers[index].job_id = Some(result.job_id);
                answers[index].duplicate = Some(result.duplicate);
                answers[index].superseded = result.superseded;
                enqueued.push(result);
            }
            Err(not) => {
                if let NotEnqueued::Unknown { job_id, .. } = &not {
                    answers[index].job_id = Some(*job_id);
                }
                answers[index].error = Some(ApiError::from(not).body)
            }
        }
    }
    let rejected = answers.len() - enqueued.len();
    record_enqueued(&enqueued);
    if enqueued.is_empty() {
        // Nothing enqueued: an error status, and a body that is an error.
        let errors = || answers.iter().filter_map(|item| item.error.as_ref());
        let redis_failed =
            errors().any(|e| matches!(e.error, ErrorCode::Unavailable | ErrorCode::UnknownOutcome));
        let all_conflicts = errors().all(|e| e.error == ErrorCode::IdempotencyConflict);
        // Refused by the guard, or conflicts and some refused: nothing invalid.
        let refused = errors().all(|e| {
            matches!(
                e.error,
                ErrorCode::OtpRefused | ErrorCode::IdempotencyConflict
            )
        });
        let (status, error) = if redis_failed {
            (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable)
        } else if all_conflicts {
            (StatusCode::CONFLICT, ErrorCode::IdempotencyConflict)
        } else if refused {
            (StatusCode::TOO_MANY_REQUESTS, ErrorCode::OtpRefused)
        } else {
            (StatusCode::BAD_REQUEST, ErrorCode::Invalid)
        };
        let body = BatchRejected {
            error,
            message: format!("all {rejected} items were rejected; see each item"),
            violations: Vec::new(),
            items: answers,
        };
        let soonest = (error == ErrorCode::OtpRefused)
            .then(|| errors_min_wait(&body.items))
            .flatten();
        let mut response = with_retry_after((status, Json(body)).into_response());
        if let Some(secs) = soonest {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        return Ok(response);
    }
    let duplicates = enqueued.iter().filter(|e| e.duplicate).count();
    let body = BatchAccepted {
        enqueued: enqueued.len() - duplicates,
        duplicates,
        rejected,
        items: answers,
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The soonest `retry_after_s` of the items' errors.
fn errors_min_wait(items: &[BatchItem]) -> Option<u64> {
    items
        .iter()
        .filter_map(|item| item.error.as_ref()?.retry_after_s)
        .min()
}

/// `POST /v1/otp/verified`'s body.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifiedSpec {
    /// The number whose OTP the customer verified, in E.164 form.
    #[schema(format = "e164", example = "+919812345678")]
    pub phone: String,
}

/// Report that a customer verified the OTP sent to `phone`: counted for its prefix's
/// conversion, which the OTP guard's conversion rule judges (once any verification was
/// reported) with `HERALD_OTP_MIN_CONVERSION`.
#[utoipa::path(
    post, path = "/v1/otp/verified", tag = "jobs", request_body = VerifiedSpec,
    responses(
        (status = 204, description = "Counted"),
        (status = 400, description = "Invalid: the body or `phone`", body = ErrorBody),
        (status = 401, description = "Missing or unknown bearer token", body = ErrorBody),
        (status = 413, description = "Body too large (over 256 KiB)", body = ErrorBody),
        (status = 503, description = "Redis unreachable; retry after the Retry-After seconds", body = ErrorBody),
    )
)]
pub async fn otp_verified(
    State(state): State<ApiState>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let spec: VerifiedSpec = decode(body).await?;
    state.producer.verified(&spec.phone).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A batch request, for the OpenAPI document: 1 to [`MAX_BATCH`] jobs, each with its `kind`.
#[derive(ToSchema)]
#[schema(min_items = 1, max_items = 1000)]
#[allow(dead_code)]
pub struct BatchRequest(Vec<JobSpec>);

/// A job's state and timeline: queued, sending, retrying, sent (with Interakt's message id),
/// delivered / read / revoked (with webhooks on), or dead (with the reason). The same data as
/// `herald-worker track --json`.
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = Uuid, Path, description = "The job id an enqueue answered with")),
    responses(
        (status = 200, description = "The job's state and timeline", body = JobTimeline),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 401, description = "Missing or unknown bearer token", body = ErrorBody),
        (status = 404, description = "No such job (or its timeline expired after 7 days)", body = ErrorBody),
        (status = 503, description = "Redis unreachable, or the enqueue not yet on --min-replicas replicas; retry (with the same idempotency key) after the Retry-After seconds", body = ErrorBody),
    )
)]
pub async fn job_state(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<JobTimeline>, ApiError> {
    let id = parse_job_id(&id)?;
    let producer = &state.producer;
    match timeline::find(producer.pool(), producer.keys(), &id.to_string()).await {
        Ok(Some(found)) => Ok(Json(found)),
        Ok(None) => Err(ApiError::not_found(format!("no job {id}"))),
        Err(err) => Err(ApiError::unavailable(err.to_string())),
    }
}

/// How the cancel routes answer (for the OpenAPI document; handlers build the bodies).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum CancelAnswers {
    /// Cancelled (now, or already before): it will never be sent
    #[response(status = 200)]
    Cancelled(Cancelled),
    /// Not a job id, or no idempotency key given
    #[response(status = 400)]
    Invalid(ErrorBody),
    /// Missing or unknown bearer token
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// No such job (never enqueued, an unknown idempotency key, or its record expired)
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// Too late (`too_late`): the job is already `sending`, `sent` or `dead`; `state` says
    /// which and `job_id` names it
    #[response(status = 409)]
    TooLate(ErrorBody),
    /// Redis unreachable; retry after the Retry-After seconds
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// Cancel a job before its send begins, wherever it waits (scheduled, on its lane, in a
/// worker's hand waiting for budget, parked for a retry).
#[utoipa::path(
    delete, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = Uuid, Path, description = "The job id an enqueue answered with")),
    responses(CancelAnswers)
)]
pub async fn cancel_job(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_job_id(&id)?;
    cancelled(state.producer.cancel(id).await?)
}

/// The query of `DELETE /v1/jobs`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CancelQuery {
    /// The idempotency key the job was enqueued under (within the idempotency window).
    #[param(min_length = 1, max_length = 200, example = "booking:B123:reminder")]
    pub idempotency_key: String,
}

/// Cancel the job enqueued under an idempotency key, before its send begins.
#[utoipa::path(
    delete,
    path = "/v1/jobs",
    tag = "jobs",
    params(CancelQuery),
    responses(CancelAnswers)
)]
pub async fn cancel_by_key(
    State(state): State<ApiState>,
    query: Result<
        Query<std::collections::HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|err| ApiError::invalid_field("idempotency_key", err.body_text()))?;
    let key = query.get("idempotency_key").ok_or_else(|| {
        ApiError::invalid_field(
            "idempotency_key",
            "is missing: DELETE /v1/jobs?idempotency_key=KEY",
        )
    })?;
    herald_shared::job::check_key("idempotency_key", Some(key))?;
    cancelled(state.producer.cancel_by_idempotency_key(key).await?)
}

fn cancelled(outcome: CancelOutcome) -> Result<Response, ApiError> {
    match outcome {
        CancelOutcome::Cancelled { job_id } => Ok((
            StatusCode::OK,
            Json(Cancelled {
                job_id,
                state: JobState::Cancelled,
            }),
        )
            .into_response()),
        CancelOutcome::TooLate { job_id, state } => Err(ApiError::too_late(job_id, state)),
        CancelOutcome::Unknown => Err(ApiError::not_found("no such job to cancel")),
    }
}

/// The caller's W3C trace context (`traceparent`, `tracestate`): the jobs it enqueues are
/// created in its trace. One that does not parse is ignored, as W3C Trace Context asks.
fn caller_trace(headers: &HeaderMap) -> Option<TraceContext> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    TraceContext::parse(header("traceparent")?, header("tracestate"))
}

fn parse_job_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::invalid_field("id", format!("{id:?} is not a job id (a UUID)")))
}

async fn enqueue_one(
    state: &ApiState,
    spec: JobSpec,
    caller: Option<TraceContext>,
) -> Result<Response, ApiError> {
    let mut job = spec.into_job_in(&state.zone)?;
    if let Some(caller) = &caller {
        caller.write_to(&mut job);
    }
    let enqueued = state.producer.enqueue(job).await;
    match &enqueued {
        Err(err) => {
            if let Some(kind) = err.redis_kind() {
                Episodes::process().request_failed("enqueue", kind, &err.to_string());
            }
        }
        Ok(_) => Episodes::process().request_succeeded(),
    }
    let enqueued = enqueued?;
    record_enqueued(std::slice::from_ref(&enqueued));
    Ok((StatusCode::ACCEPTED, Json(Accepted::from(enqueued))).into_response())
}

/// Gives the API's metrics their help text, so `/metrics` passes `promtool check metrics`.
/// Called by [`super::router`] once the process's recorder is installed.
pub fn describe_metrics() {
    crate::guard::describe_metrics();
    metrics::describe_counter!(
        "herald_api_jobs_enqueued_total",
        "Jobs the API enqueued (duplicates of an idempotency key excluded)."
    );
    metrics::describe_counter!(
        "herald_api_jobs_duplicate_total",
        "Jobs the API did not enqueue again: their idempotency key was already used."
    );
    metrics::describe_counter!(
        "herald_api_requests_total",
        "HTTP requests answered, by route and status."
    );
    metrics::describe_histogram!(
        "herald_api_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer one HTTP request, by route."
    );
}

fn record_enqueued(results: &[Enqueued]) {
    let duplicates = results.iter().filter(|e| e.duplicate).count() as u64;
    metrics::counter!("herald_api_jobs_enqueued_total")
        .increment(results.len() as u64 - duplicates);
    metrics::counter!("herald_api_jobs_duplicate_total").increment(duplicates);
}

/// The key from the header, or from the body; both must agree when both are given.
fn idempotency_key(
    headers: &HeaderMap,
    from_body: Option<String>,
) -> Result<Option<String>, ApiError> {
    let from_header = match headers.get(IDEMPOTENCY_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::invalid_field(IDEMPOTENCY_HEADER, "must be visible ASCII"))?
                .to_string(),
        ),
    };
    match (from_header, from_body) {
        (Some(h), Some(b)) if h != b => Err(key_mismatch()),
        (h, b) => Ok(h.or(b)),
    }
}

/// 400 for an `Idempotency-Key` header and a body `idempotency_key` that differ: both named,
/// neither quoted (a key may carry a customer's data), the message saying what to send.
fn key_mismatch() -> ApiError {
    let reason = "the Idempotency-Key header and the body's idempotency_key differ: send the key in one of them, or the same key in both";
    let mut err = ApiError::from(herald_shared::validate::ValidationError {
        violations: [IDEMPOTENCY_HEADER, "idempotency_key"]
            .into_iter()
            .map(|path| herald_shared::validate::Violation {
                path: path.to_string(),
                reason: reason.to_string(),
            })
            .collect(),
    });
    err.body.message = reason.to_string();
    err
}

/// Reads a body of at most `limit` bytes (413 past it).
async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            ErrorCode::TooLarge,
            format!("the body is over {limit} bytes"),
        )
    })
}

async fn decode<T: serde::de::DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let bytes = read_body(body, SINGLE_BODY_LIMIT).await?;
    Ok(herald_shared::wire::decode(&bytes)?)
}

/// Middleware: counts requests by route and status, and times them.
pub async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("herald_api_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("herald_api_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
