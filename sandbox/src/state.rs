//! The sandbox's one mutable state, and the order a send is judged in:
//!
//! 1. authentication (a 401 is counted apart and goes no further);
//! 2. arrival: counted, and pushed into the busiest-window measure;
//! 3. the rate limiter (429);
//! 4. fault injection: the phone's script, else the random fail rate;
//! 5. decoding and validation with Herald's wire model (400 naming each field);
//! 6. acceptance: a fresh id, the message recorded and published.
//!
//! The delay (`--latency` plus any `slow:` script) is decided here but waited out by the
//! caller, after the lock is released. This module never touches HTTP beyond the [`Reply`]
//! it returns.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use herald_shared::Redacted;
use herald_shared::validate::validate_request;
use herald_shared::wire::{self, SendRequest};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::SandboxConfig;
use crate::faults::Faults;
use crate::limiter::Limiter;
use crate::messages::{AcceptedMessage, unix_ms};
use crate::reply::Reply;
use crate::stats::WebhookStats;
use crate::stats::{Recorder, Stats};

/// How many accepted messages a slow subscriber may fall behind before it misses some.
const SUBSCRIBER_BACKLOG: usize = 4096;

/// Everything the routes share. Created once by [`crate::start`]; the router holds it in an
/// `Arc`, cloned into each request, and [`crate::RunningSandbox`] holds one more to read
/// messages and stats in-process. It lives until the last of those is dropped.
pub(crate) struct Sandbox {
    /// `Basic <key>`: the whole `Authorization` header value a client must send.
    expected_authorization: Redacted<String>,
    latency: Duration,
    /// What limiter refusals say in `Retry-After`.
    retry_after: RetryAfter,
    /// Cancelled when the server shuts down; cuts any delay short so shutdown is prompt.
    pub(crate) shutdown: CancellationToken,
    /// Every accepted message is sent here; [`crate::RunningSandbox::subscribe`] hands out
    /// receivers. Sending with no receiver is fine (the message is dropped). This is where a
    /// webhook poster will listen.
    accepted: broadcast::Sender<AcceptedMessage>,
    /// A std Mutex, not tokio's: every critical section is a few pushes and lookups and
    /// none holds the lock across an `.await` (delays are waited out after unlocking), so an
    /// async mutex would only add overhead. One lock for everything keeps a request's
    /// counting, limiting and recording atomic and the message list in arrival order.
    state: Mutex<State>,
}

/// What a rate-limited answer says in `Retry-After`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RetryAfter {
    /// Nothing, as Interakt documents.
    Omitted,
    /// The time until a slot of the window frees.
    UntilSlot,
    /// This, always.
    Fixed(Duration),
}

struct State {
    limiter: Option<Limiter>,
    faults: Faults,
    recorder: Recorder,
    messages: Vec<AcceptedMessage>,
    webhooks: WebhookStats,
}

impl Sandbox {
    pub(crate) fn new(config: &SandboxConfig, shutdown: CancellationToken) -> Self {
        Sandbox {
            expected_authorization: Redacted::new(format!("Basic {}", config.api_key.expose())),
            latency: config.latency,
            retry_after: match (config.retry_after_secs, config.retry_after) {
                (Some(secs), _) => RetryAfter::Fixed(Duration::from_secs(secs)),
                (None, true) => RetryAfter::UntilSlot,
                (None, false) => RetryAfter::Omitted,
            },
            shutdown,
            accepted: broadcast::channel(SUBSCRIBER_BACKLOG).0,
            state: Mutex::new(State {
                limiter: config.rate.map(Limiter::new),
                faults: Faults::new(config),
                recorder: Recorder::new(config.peak_window(), config.rate.map(|r| r.to_string())),
                messages: Vec::new(),
                webhooks: WebhookStats::default(),
            }),
        }
    }

    /// A poisoned lock only means a handler panicked mid-update; the counters are still
    /// worth serving, so the poison is ignored.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Judges one send: the answer, and how long to wait before giving it.
    pub(crate) fn judge(&self, authorization: Option<&[u8]>, body: &[u8]) -> (Reply, Duration) {
        if authorization != Some(self.expected_authorization.expose().as_bytes()) {
            self.lock().recorder.unauthorized();
            tracing::debug!("refused a send without the right Authorization header");
            return (Reply::unauthorized(), self.latency);
        }
        // Parsing and validation (phone metadata lookups) happen before taking the lock.
        let body = Body::inspect(body);
        let (reply, delay, accepted) = {
            let mut state = self.lock();
            // Read the clocks under the lock, so instants are recorded in order. The wall
            // clock is cut to milliseconds, so `received_at` and `received_ms` agree exactly.
            let (now, wall) = (Instant::now(), OffsetDateTime::now_utc());
            let wall = wall.replace_millisecond(wall.millisecond()).unwrap_or(wall);
            state.judge(now, wall, body, self.retry_after)
        };
        if let Some(message) = accepted {
            let _ = self.accepted.send(message);
        }
        (reply, self.latency + delay)
    }

    pub(crate) fn messages(&self) -> Vec<AcceptedMessage> {
        self.lock().messages.clone()
    }

    pub(crate) fn stats(&self) -> Stats {
        self.lock().recorder.snapshot()
    }

    pub(crate) fn webhook_stats(&self) -> WebhookStats {
        self.lock().webhooks.clone()
    }

    /// The webhook poster posted an event of `kind`, or gave up on it.
    pub(crate) fn record_webhook(&self, kind: &str, posted: bool) {
        let mut state = self.lock();
        if posted {
            *state.webhooks.posted.entry(kind.to_string()).or_default() += 1;
        } else {
            state.webhooks.failed += 1;
        }
    }

    /// Back to how it started: no messages, zeroed stats, an empty rate window, script
    /// counters at zero.
    pub(crate) fn reset(&self) {
        let mut state = self.lock();
        state.messages.clear();
        state.webhooks = WebhookStats::default();
        state.recorder.reset();
        state.faults.reset();
        if let Some(limiter) = &mut state.limiter {
            limiter.clear();
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<AcceptedMessage> {
        self.accepted.subscribe()
    }
}

impl State {
    /// Steps 2 to 6 for an authenticated request arriving at `now` (`wall` on the clock).
    fn judge(
        &mut self,
        now: Instant,
        wall: OffsetDateTime,
        body: Body,
        retry_after: RetryAfter,
    ) -> (Reply, Duration, Option<AcceptedMessage>) {
        self.recorder.arrived(now);
        let (reply, delay, accepted) = self.decide(now, wall, &body, retry_after);
        self.recorder
            .answered(reply.status.as_u16(), accepted.is_some());
        if let Some(message) = &accepted {
            self.messages.push(message.clone());
        }
        let phone = body.phone.as_deref().map(herald_shared::phone::mask);
        tracing::debug!(status = reply.status.as_u16(), phone, "answered a send");
        (reply, delay, accepted)
    }

    fn decide(
        &mut self,
        now: Instant,
        wall: OffsetDateTime,
        body: &Body,
        retry_after: RetryAfter,
    ) -> (Reply, Duration, Option<AcceptedMessage>) {
        if let Some(limiter) = &mut self.limiter
            && let Err(refused) = limiter.try_admit(now)
        {
            let after = match retry_after {
                RetryAfter::Omitted => None,
                RetryAfter::UntilSlot => Some(refused.retry_after),
                RetryAfter::Fixed(after) => Some(after),
            };
            return (Reply::rate_limited(after), Duration::ZERO, None);
        }
        let verdict = self.faults.decide(body.phone.as_deref());
        if let Some(fault) = verdict.fault {
            return (fault.into(), verdict.delay, None);
        }
        match &body.checked {
            Err(reason) => (Reply::invalid(reason.clone()), verdict.delay, None),
            Ok(valid) => {
                let message = AcceptedMessage {
                    id: Uuid::new_v4(),
                    received_at: wall,
                    received_ms: unix_ms(wall),
                    country_code: valid.country_code.clone(),
                    phone_number: valid.phone_number.clone(),
                    request: valid.json.clone(),
                };
                let reply = Reply::accepted(message.id);
                debug_assert!(reply.is_accepted());
                (reply, verdict.delay, Some(message))
            }
        }
    }
}

/// What a body says, worked out before the lock is taken.
struct Body {
    /// `countryCode` + `phoneNumber` as `+digits`, for matching scripts, whenever the body is
    /// JSON with those two strings, valid or not.
    phone: Option<String>,
    /// The request, or every reason it is not acceptable (`path: reason; ...`).
    checked: Result<Valid, String>,
}

#[derive(Debug)]
struct Valid {
    country_code: String,
    phone_number: String,
    json: Value,
}

impl Body {
    fn inspect(bytes: &[u8]) -> Body {
        let json: Option<Value> = serde_json::from_slice(bytes).ok();
        let phone = json.as_ref().and_then(|json| {
            let part = |name| json.get(name).and_then(Value::as_str);
            let digits: String = format!("{}{}", part("countryCode")?, part("phoneNumber")?)
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            Some(format!("+{digits}"))
        });
        let checked = wire::decode::<SendRequest>(bytes)
            .map_err(|err| err.to_string())
            .and_then(|request| {
                validate_request(&request)
                    .map_err(|err| err.to_string())
                    .map(|()| request)
            })
            .map(|request| Valid {
                country_code: request.country_code,
                phone_number: request.phone_number,
                json: json.unwrap_or(Value::Null),
            });
        Body { phone, checked }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::json;

    use super::*;

    fn body(phone: &str) -> Vec<u8> {
        let (cc, national) = phone.split_at(3);
        serde_json::to_vec(&json!({
            "countryCode": cc,
            "phoneNumber": national,
            "message": {"richCardDetails": {"standalone": {"content": {"cardTitle": "Hi"}}}},
            "type": "STANDALONE_CAROUSEL"
        }))
        .unwrap()
    }

    fn state(config: SandboxConfig) -> State {
        let sandbox = Sandbox::new(&config, CancellationToken::new());
        sandbox.state.into_inner().unwrap()
    }

    fn status(state: &mut State, now: Instant, body: &[u8]) -> StatusCode {
        let wall = OffsetDateTime::now_utc();
        state
            .judge(now, wall, Body::inspect(body), RetryAfter::Omitted)
            .0
            .status
    }

    #[test]
    fn the_limiter_comes_before_faults_and_faults_before_validation() {
        let mut s = state(SandboxConfig {
            rate: Some("2/1s".parse().unwrap()),
            script: vec!["+919000000001=fail:1".parse().unwrap()],
            ..SandboxConfig::new("k")
        });
        let t0 = Instant::now();
        // An invalid body for a scripted phone meets the script first.
        let mut invalid = serde_json::from_slice::<Value>(&body("+919000000001")).unwrap();
        invalid["type"] = json!("Template");
        let invalid = serde_json::to_vec(&invalid).unwrap();
        assert_eq!(
            status(&mut s, t0, &invalid),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(&mut s, t0, &invalid), StatusCode::BAD_REQUEST);
        // The window is full: the limiter answers before the script is even consulted.
        assert_eq!(
            status(&mut s, t0, &body("+919000000001")),
            StatusCode::TOO_MANY_REQUESTS
        );
        let stats = s.recorder.snapshot();
        assert_eq!(
            (stats.requests, stats.accepted, stats.max_in_window),
            (3, 0, 3)
        );
        assert!(s.messages.is_empty());
    }

    #[test]
    fn accepted_messages_keep_the_body_and_phone() {
        let mut s = state(SandboxConfig::new("k"));
        let (reply, delay, message) = s.judge(
            Instant::now(),
            OffsetDateTime::now_utc(),
            Body::inspect(&body("+919999999999")),
            RetryAfter::Omitted,
        );
        let message = message.unwrap();
        assert_eq!(reply.id, Some(message.id));
        assert_eq!(delay, Duration::ZERO);
        assert_eq!(message.e164(), "+919999999999");
        assert_eq!(message.request["type"], "STANDALONE_CAROUSEL");
        assert_eq!(s.messages, [message]);
    }

    #[test]
    fn bodies_that_do_not_decode_still_name_their_phone() {
        let body = Body::inspect(br#"{"countryCode": "+91", "phoneNumber": "90000 00001"}"#);
        assert_eq!(body.phone.as_deref(), Some("+919000000001"));
        assert!(body.checked.unwrap_err().contains("type"));
        let body = Body::inspect(b"not json");
        assert_eq!(body.phone, None);
        assert!(body.checked.unwrap_err().starts_with(".: "));
    }
}
