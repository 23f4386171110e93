//! Every answer the send endpoint gives, with Interakt's texts where it documents them
//! (success, 429) and plain ones where it does not.
//!
//! All of them have the one body shape clients parse: `{"result": bool, "message": "...",
//! "id"?: "..."}`. The status of a [`Reply`] is decided here once and used for both the
//! HTTP answer and the statistics.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_shared::wire::SendResponse;
use uuid::Uuid;

use crate::faults::Fault;

/// The success text, word for word from Interakt's guide.
pub(crate) const QUEUED: &str =
    "Message queued for sending via Interakt. Check webhook for delivery status";
/// The 429 text, word for word from Interakt's guide.
pub(crate) const RATE_LIMITED: &str = "Rate limit exceeded for this resource";
pub(crate) const UNAUTHORIZED: &str = "Unauthorized";
pub(crate) const UNAVAILABLE: &str = "Service temporarily unavailable";
pub(crate) const SERVER_ERROR: &str = "Internal server error";
pub(crate) const INVALID_TEMPLATE: &str = "Invalid template";
pub(crate) const REJECTED: &str = "Rejected by provider";

/// One answer, before it becomes HTTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) result: bool,
    pub(crate) message: String,
    /// The accepted message's id.
    pub(crate) id: Option<Uuid>,
    /// Sent as `Retry-After` in whole seconds, rounded up.
    pub(crate) retry_after: Option<Duration>,
}

impl Reply {
    fn new(status: StatusCode, result: bool, message: impl Into<String>) -> Self {
        Reply {
            status,
            result,
            message: message.into(),
            id: None,
            retry_after: None,
        }
    }

    pub(crate) fn accepted(id: Uuid) -> Self {
        Reply {
            id: Some(id),
            ..Reply::new(StatusCode::OK, true, QUEUED)
        }
    }

    pub(crate) fn unauthorized() -> Self {
        Reply::new(StatusCode::UNAUTHORIZED, false, UNAUTHORIZED)
    }

    pub(crate) fn rate_limited(retry_after: Option<Duration>) -> Self {
        Reply {
            retry_after,
            ..Reply::new(StatusCode::TOO_MANY_REQUESTS, false, RATE_LIMITED)
        }
    }

    /// A body that does not decode or validate: the message lists each field path and reason.
    pub(crate) fn invalid(reason: String) -> Self {
        Reply::new(StatusCode::BAD_REQUEST, false, reason)
    }

    /// Whether this answer accepted a message.
    pub(crate) fn is_accepted(&self) -> bool {
        self.status == StatusCode::OK && self.result
    }
}

impl From<Fault> for Reply {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::InvalidTemplate => Reply::new(StatusCode::BAD_REQUEST, false, INVALID_TEMPLATE),
            Fault::ServerError => {
                Reply::new(StatusCode::INTERNAL_SERVER_ERROR, false, SERVER_ERROR)
            }
            Fault::Unavailable => Reply::new(StatusCode::SERVICE_UNAVAILABLE, false, UNAVAILABLE),
            Fault::RateLimited(secs) => Reply::rate_limited(Some(Duration::from_secs(secs))),
            Fault::Rejected => Reply::new(StatusCode::OK, false, REJECTED),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let body = SendResponse {
            result: self.result,
            message: Some(self.message),
            id: self.id.map(|id| id.to_string()),
            extra: Default::default(),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(after) = self.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_after_header(after: Duration) -> String {
        Reply::rate_limited(Some(after))
            .into_response()
            .headers()
            .get(header::RETRY_AFTER)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_header(Duration::from_millis(1)), "1");
        assert_eq!(retry_after_header(Duration::ZERO), "1");
        assert_eq!(retry_after_header(Duration::from_millis(1000)), "1");
        assert_eq!(retry_after_header(Duration::from_millis(1001)), "2");
        assert!(
            Reply::rate_limited(None)
                .into_response()
                .headers()
                .get(header::RETRY_AFTER)
                .is_none()
        );
    }
}
