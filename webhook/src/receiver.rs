//! The HTTP side of `herald-worker webhook`: `POST /webhooks/interakt`.
//!
//! Interakt wants a 200 within 3 seconds and disables an integration that keeps failing, so
//! the receiver does the least that makes an event safe, then answers:
//!
//! 1. the body is read raw, at most [`MAX_BODY_BYTES`] (413 past it);
//! 2. `Interakt-Signature` (or `X-Interakt-Signature`) must sign the raw body (401
//!    otherwise, and nothing is recorded or parsed), unless the process runs with
//!    `--insecure-no-signature` ([`crate::verify`]);
//! 3. the body is one JSON object or an array of at most [`MAX_EVENTS_PER_BODY`] of them
//!    (400 for anything else; 413 past the count, and nothing of it is recorded);
//! 4. an event whose own time (`sendTime`) is as old as the de-duplication window or older
//!    ([`action::is_stale`]) is refused: not recorded, counted, logged once per POST, and
//!    still answered 200 (`stale` in the answer) so Interakt stops sending it; its marker
//!    may have expired, so recording it could record it twice (a captured body replayed);
//! 5. every other event is de-duplicated and appended to the events stream in one Lua
//!    script ([`Keys::webhook_events`]), bounded by [`REDIS_BUDGET`]; Redis unreachable is
//!    503 so Interakt redelivers.
//!
//! An object that is JSON but not shaped like an event (no `entityType` or `entity`) is still
//! accepted and kept: answering 400 would count against the integration for a body Interakt
//! will keep sending, and a person can look at it in the unhandled stream. Only bodies that
//! cannot be events at all (not JSON, a bare string or number, an array of non-objects) get 400.
//!
//! Each event costs Redis a de-duplication marker (kept three days) and a stream entry, in a
//! `noeviction` Redis: the count limit bounds what one POST can add, whatever its size.
//!
//! Processing (timelines, the inbound stream) happens behind, in [`crate::processor`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use herald_shared::redis_pool::Pool;
use herald_store::Keys;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::time::Instant;

use herald_shared::episodes::Episodes;
use herald_shared::redis_pool::RedisFailure;

use crate::action;
use crate::telemetry;
use crate::verify::Signatures;

/// Where Interakt posts.
pub const PATH: &str = "/webhooks/interakt";

/// The largest body accepted: Interakt's events are well under 2 KiB each.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The most events one body may hold: Interakt posts one event, or a few in an array.
pub const MAX_EVENTS_PER_BODY: usize = 100;

/// The most time Redis gets to record a body before the receiver answers 503: well under
/// Interakt's 3 seconds.
pub const REDIS_BUDGET: Duration = Duration::from_millis(1500);

use herald_store::calls::webhooks::{self, NewEvent};
use herald_store::keys::WEBHOOK_DEDUP_TTL_SECS;

/// The receiver's shared state. Built once by [`crate::run`] (or a test); the router clones
/// it into every request. Dropping the last clone drops nothing but handles.
#[derive(Clone)]
pub struct Receiver {
    /// Connections are multiplexed: a few serve every concurrent request.
    pool: Pool,
    keys: Keys,
    /// The secret, or none checked (`--insecure-no-signature`, warned about at start-up).
    signatures: Arc<Signatures>,
}

/// One event of a body, ready to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub dedup_key: String,
    /// The event's JSON, as received (fields in their original order).
    pub json: String,
    /// Metric labels, from [`action::labels`].
    pub labels: (&'static str, &'static str),
    /// When Interakt says it happened ([`action::sent_at`]).
    pub sent_at: Option<OffsetDateTime>,
}

/// A body that is refused whole: answered [`BodyError::status`] with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("expected an event object or an array of event objects; {0}")]
    NotEvents(String),
    #[error(
        "the body holds {count} events; at most {MAX_EVENTS_PER_BODY} per POST are accepted: split it"
    )]
    TooManyEvents { count: usize },
}

impl BodyError {
    /// 400 for what cannot be events, 413 for too many of them.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::NotJson(_) | BodyError::NotEvents(_) => StatusCode::BAD_REQUEST,
            BodyError::TooManyEvents { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

impl Receiver {
    pub fn new(pool: Pool, keys: Keys, signatures: Signatures) -> Self {
        Receiver {
            pool,
            keys,
            signatures: Arc::new(signatures),
        }
    }

    /// `POST /webhooks/interakt`, with the body limit.
    pub fn router(self) -> Router {
        Router::new()
            .route(PATH, post(receive))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self)
    }

    async fn handle(&self, headers: &HeaderMap, body: &[u8]) -> (StatusCode, Value) {
        if let Err(refusal) = self.signatures.check(headers, body) {
            telemetry::record_webhook_signature_failure();
            tracing::warn!(why = refusal.as_str(), "refused a webhook POST: {refusal}");
            return error(StatusCode::UNAUTHORIZED, refusal.to_string());
        }
        let events = match parse_body(body) {
            Ok(events) => events,
            Err(err) => {
                tracing::info!(error = %err, "refused a webhook POST");
                return error(err.status(), err.to_string());
            }
        };
        let received = events.len();
        let now = OffsetDateTime::now_utc();
        let (events, stale): (Vec<Incoming>, Vec<Incoming>) = events
            .into_iter()
            .partition(|event| !action::is_stale(event.sent_at, now));
        refuse_stale(&stale);
        let recorded = match tokio::time::timeout(REDIS_BUDGET, self.record(&events)).await {
            Ok(Ok(recorded)) => {
                Episodes::process().request_succeeded();
                recorded
            }
            Ok(Err(err)) => return unavailable(&err),
            Err(_) => {
                let timed_out = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {REDIS_BUDGET:?}"),
                );
                return unavailable(&RedisFailure::from(redis::RedisError::from(timed_out)));
            }
        };
        let mut duplicates = 0;
        for (event, new) in events.iter().zip(&recorded) {
            if *new {
                telemetry::record_webhook_event(event.labels.0, event.labels.1);
            } else {
                duplicates += 1;
                telemetry::record_webhook_duplicate();
                tracing::debug!(key = %event.dedup_key, "duplicate webhook event");
            }
        }
        let body = json!({
            "received": received,
            "recorded": events.len() - duplicates,
            "duplicates": duplicates,
            "stale": stale.len(),
        });
        (StatusCode::OK, body)
    }

    /// De-duplicates and appends `events` in one script; true for each one recorded.
    async fn record(&self, events: &[Incoming]) -> Result<Vec<bool>, RedisFailure> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let new: Vec<NewEvent> = events
            .iter()
            .map(|event| NewEvent {
                dedup_key: &event.dedup_key,
                json: &event.json,
            })
            .collect();
        let call = webhooks::record_events(&self.keys, &new);
        let mut conn = self.pool.get().await?;
        let flags: Vec<i64> = call.invoke(&mut conn).await?;
        Ok(flags.into_iter().map(|f| f == 1).collect())
    }
}

/// Splits a body into events: one object, or an array of at most [`MAX_EVENTS_PER_BODY`]
/// objects.
pub fn parse_body(body: &[u8]) -> Result<Vec<Incoming>, BodyError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| BodyError::NotJson(err.to_string()))?;
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        other => {
            return Err(BodyError::NotEvents(format!("got {}", json_kind(&other))));
        }
    };
    if items.len() > MAX_EVENTS_PER_BODY {
        return Err(BodyError::TooManyEvents { count: items.len() });
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            if !item.is_object() {
                return Err(BodyError::NotEvents(format!(
                    "item {i} is {}",
                    json_kind(&item)
                )));
            }
            let json = item.to_string();
            let event = action::decode(&json);
            Ok(Incoming {
                dedup_key: action::dedup_key(event.as_ref(), &json),
                labels: action::labels(event.as_ref()),
                sent_at: event.as_ref().and_then(action::sent_at),
                json,
            })
        })
        .collect()
}

/// Counts the stale events of one POST and says so in one log line: how many, and the
/// oldest's time (never a body, a phone or a key).
fn refuse_stale(stale: &[Incoming]) {
    if stale.is_empty() {
        return;
    }
    telemetry::record_webhook_stale(stale.len());
    let oldest = stale.iter().filter_map(|event| event.sent_at).min();
    tracing::warn!(
        stale = stale.len(),
        oldest_sent_at = %oldest.map(herald_store::record::format_time).unwrap_or_default(),
        "refused stale webhook events: sent before the de-duplication window ({} days), so possibly replayed; answered 200, not recorded",
        WEBHOOK_DEDUP_TTL_SECS / 86_400
    );
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let (status, body) = match body {
        Ok(body) => receiver.handle(&headers, &body).await,
        Err(rejection) => {
            let status = rejection.status();
            let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("the body is over {MAX_BODY_BYTES} bytes")
            } else {
                rejection.body_text()
            };
            tracing::info!(status = status.as_u16(), "refused a webhook POST: {reason}");
            error(status, reason)
        }
    };
    telemetry::record_webhook_answer(status.as_u16(), started.elapsed());
    (status, axum::Json(body)).into_response()
}

fn error(status: StatusCode, reason: impl Into<String>) -> (StatusCode, Value) {
    (status, json!({ "error": reason.into() }))
}

/// 503, so Interakt delivers the POST again later. Said once per episode of Redis failures
/// ([`Episodes`]), not once per POST; each at DEBUG.
fn unavailable(err: &RedisFailure) -> (StatusCode, Value) {
    tracing::debug!(error = %err, "cannot record a webhook POST; answering 503 so Interakt redelivers");
    Episodes::process().request_failed("webhook receiver", err.kind(), &err.words());
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Redis unavailable; retry later",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_an_object_or_an_array_of_objects() {
        let one = parse_body(br#"{"entityType":"USER_EVENT","entity":{"eventId":"e1"}}"#).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].dedup_key, "event:e1");
        assert_eq!(one[0].labels, ("USER_EVENT", "none"));
        let two =
            parse_body(br#"[{"entityType":"X","entity":{"eventId":"a"}}, {"b": 1}]"#).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].labels, ("invalid", "none"));
        assert!(two[1].dedup_key.starts_with("body:"));
        assert_eq!(parse_body(b"[]").unwrap(), []);
    }

    #[test]
    fn the_json_is_kept_in_its_original_order() {
        let body = br#"{"entity":{"messageId":"m","eventType":"READ"},"entityType":"USER_EVENT"}"#;
        assert_eq!(
            parse_body(body).unwrap()[0].json,
            std::str::from_utf8(body).unwrap()
        );
    }

    #[test]
    fn what_cannot_be_events_is_refused_with_a_reason() {
        for (body, says) in [
            (&b"{"[..], "not JSON"),
            (b"", "not JSON"),
            (b"42", "got a number"),
            (b"\"hi\"", "got a string"),
            (b"[{}, 1]", "item 1 is a number"),
        ] {
            let err = parse_body(body).unwrap_err();
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{body:?}");
            assert!(err.to_string().contains(says), "{body:?}: {err}");
        }
    }

    #[test]
    fn at_most_100_events_per_body() {
        let events = |n: usize| {
            let items: Vec<_> = (0..n)
                .map(
                    |i| json!({"entityType": "USER_EVENT", "entity": {"eventId": format!("e{i}")}}),
                )
                .collect();
            Value::Array(items).to_string().into_bytes()
        };
        assert_eq!(parse_body(&events(MAX_EVENTS_PER_BODY)).unwrap().len(), 100);
        let err = parse_body(&events(MAX_EVENTS_PER_BODY + 1)).unwrap_err();
        assert_eq!(err, BodyError::TooManyEvents { count: 101 });
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            err.to_string(),
            "the body holds 101 events; at most 100 per POST are accepted: split it"
        );
    }
}
