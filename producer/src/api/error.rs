//! How the API says no: a status code and a JSON body naming every bad field.
//!
//! ```json
//! {"error":"invalid","message":"2 problems","violations":[{"path":"phone","reason":"must be in E.164 form ..."}]}
//! {"error":"idempotency_conflict","message":"idempotency_key: \"login:42\" already holds job 01a2..., ...","job_id":"01a2..."}
//! {"error":"otp_refused","message":"OTP refused (per_number): ...","rule":"per_number","retry_after_s":2400}
//! ```

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_shared::validate::ValidationError;
use herald_shared::wire::DecodeError;
use serde::Serialize;
use utoipa::ToSchema;

use uuid::Uuid;

use crate::enqueue::{self, IdempotencyConflict, NotEnqueued};
use crate::guard::OtpRefused;
use crate::spec::SpecError;

/// What went wrong, as the `error` field names it: what clients branch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body or a field is invalid; `violations` names each.
    Invalid,
    /// 401: no valid bearer token.
    Unauthorized,
    /// 404: no such job.
    NotFound,
    /// 409: the idempotency key already holds a job with other content; `job_id` is that job.
    IdempotencyConflict,
    /// 409: too late to cancel: the job is already `sending`, `sent` or `dead` (`state`).
    TooLate,
    /// 413: the body is too large.
    TooLarge,
    /// 429: the OTP guard refused the OTP (`rule` says which rule; `retry_after_s` when it
    /// frees, absent for `country`, which never does): nothing was enqueued.
    OtpRefused,
    /// 500: Redis answered something Herald never writes.
    Internal,
    /// 503: Redis is unreachable or refused the job (out of memory, say): nothing of it was
    /// written; retry after `Retry-After` seconds.
    Unavailable,
    /// 503 (or one item of a batch): Redis failed while the job was being enqueued and could
    /// not be asked afterwards whether it was; `job_id` is the id it has if it was: look it
    /// up (`GET /v1/jobs/{id}`), or send it again with an idempotency key.
    UnknownOutcome,
}

/// One bad field.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Violation {
    /// JSON path of the field (`phone`, `request.message.richCardDetails...`), or `.` for the
    /// whole body.
    pub path: String,
    pub reason: String,
}

/// The body of every error answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
    /// `idempotency_conflict`: the job first enqueued under the key; `too_late`: the job;
    /// `unknown_outcome`: the id the job has if it was enqueued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
    /// `too_late` only: where the job is (`sending`, `sent` or `dead`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<herald_store::timeline::JobState>,
    /// `otp_refused` only: the OTP guard's rule that refused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<herald_store::guard::Rule>,
    /// `otp_refused` only: seconds until the same OTP would pass (also the `Retry-After`
    /// header); absent when it never will (`country`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub retry_after_s: Option<u64>,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    /// An answer with `error`'s status code.
    pub fn new(error: ErrorCode, message: impl Into<String>) -> ApiError {
        let status = match error {
            ErrorCode::Invalid => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::IdempotencyConflict | ErrorCode::TooLate => StatusCode::CONFLICT,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::OtpRefused => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable | ErrorCode::UnknownOutcome => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError {
            status,
            body: ErrorBody {
                error,
                message: message.into(),
                violations: Vec::new(),
                job_id: None,
                state: None,
                rule: None,
                retry_after_s: None,
            },
        }
    }

    pub fn unauthorized(message: &str) -> ApiError {
        ApiError::new(ErrorCode::Unauthorized, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }

    /// 409: too late to cancel job `job_id`, which is `state`.
    pub fn too_late(job_id: Uuid, state: herald_store::timeline::JobState) -> ApiError {
        let mut err = ApiError::new(
            ErrorCode::TooLate,
            format!("job {job_id} is {}: too late to cancel", state.as_str()),
        );
        err.body.job_id = Some(job_id);
        err.body.state = Some(state);
        err
    }

    /// 503: Redis is unreachable; the caller should retry.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unavailable, message)
    }

    /// 400 naming one field.
    pub fn invalid_field(path: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ValidationError::single(path, reason).into()
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        let violations: Vec<Violation> = err
            .violations
            .into_iter()
            .map(|v| Violation {
                path: v.path,
                reason: v.reason,
            })
            .collect();
        let message = match violations.as_slice() {
            [one] => format!("{}: {}", one.path, one.reason),
            many => format!("{} problems", many.len()),
        };
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: ErrorBody {
                error: ErrorCode::Invalid,
                message,
                violations,
                job_id: None,
                state: None,
                rule: None,
                retry_after_s: None,
            },
        }
    }
}

impl From<DecodeError> for ApiError {
    fn from(err: DecodeError) -> Self {
        ApiError::invalid_field(err.path, err.reason)
    }
}

impl From<SpecError> for ApiError {
    fn from(err: SpecError) -> Self {
        match err {
            SpecError::Malformed(err) => err.into(),
            SpecError::Invalid(err) => err.into(),
        }
    }
}

impl From<IdempotencyConflict> for ApiError {
    fn from(conflict: IdempotencyConflict) -> Self {
        let mut err = ApiError::new(ErrorCode::IdempotencyConflict, conflict.to_string());
        err.body.job_id = Some(conflict.job_id);
        err
    }
}

impl From<OtpRefused> for ApiError {
    fn from(refused: OtpRefused) -> Self {
        let mut err = ApiError::new(ErrorCode::OtpRefused, refused.line());
        err.body.rule = Some(refused.rule);
        err.body.retry_after_s = refused.retry_after_secs();
        err
    }
}

impl From<NotEnqueued> for ApiError {
    fn from(err: NotEnqueued) -> Self {
        match err {
            NotEnqueued::Conflict(conflict) => conflict.into(),
            NotEnqueued::Guard(refused) => refused.into(),
            NotEnqueued::Refused { .. } => ApiError::new(ErrorCode::Unavailable, err.to_string()),
            NotEnqueued::Unknown { job_id, .. } => {
                let mut api = ApiError::new(ErrorCode::UnknownOutcome, err.to_string());
                api.body.job_id = Some(job_id);
                api
            }
        }
    }
}

impl From<enqueue::Error> for ApiError {
    fn from(err: enqueue::Error) -> Self {
        match err {
            enqueue::Error::Invalid(err) => err.into(),
            enqueue::Error::IdempotencyConflict(conflict) => conflict.into(),
            enqueue::Error::OtpRefused(refused) => refused.into(),
            // Redis is down or failing: nothing was written; the caller should retry.
            enqueue::Error::Redis(_) | enqueue::Error::Pool(_) => {
                ApiError::new(ErrorCode::Unavailable, err.to_string())
            }
            // On the primary, not yet on enough replicas: retry with the same key.
            enqueue::Error::NotReplicated(_) => {
                ApiError::new(ErrorCode::Unavailable, err.to_string())
            }
            enqueue::Error::UnexpectedReply(_) => {
                ApiError::new(ErrorCode::Internal, err.to_string())
            }
            enqueue::Error::NotEnqueued(err) => err.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let wait = self.body.retry_after_s;
        let mut response = with_retry_after((self.status, Json(self.body)).into_response());
        if let Some(secs) = wait {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// A 503 says when to try again: `Retry-After: 1`.
pub fn with_retry_after(mut response: Response) -> Response {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
