//! How the API says no: a status code and a JSON body naming every bad field.
//!
//! ```json
//! {"error":"invalid","message":"2 problems","violations":[{"path":"phone","reason":"must be in E.164 form ..."}]}
//! ```

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_shared::validate::ValidationError;
use herald_shared::wire::DecodeError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::enqueue;
use crate::spec::SpecError;

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
    /// `invalid`, `unauthorized`, `too_large`, `unavailable`, `not_found` or `internal`.
    pub error: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error,
                message: message.into(),
                violations: Vec::new(),
            },
        }
    }

    pub fn unauthorized(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 503: Redis is unreachable; the caller should retry.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
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
                error: "invalid",
                message,
                violations,
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

impl From<enqueue::Error> for ApiError {
    fn from(err: enqueue::Error) -> Self {
        match err {
            enqueue::Error::Invalid(err) => err.into(),
            // Redis is down or failing: nothing was written; the caller should retry.
            enqueue::Error::Redis(_) | enqueue::Error::Pool(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                err.to_string(),
            ),
            enqueue::Error::UnexpectedReply(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                err.to_string(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
