//! Posting webhooks back, as Interakt does, so Herald's whole loop runs locally.
//!
//! With `--webhook-url`, a poster task subscribes to accepted messages
//! ([`crate::RunningSandbox::subscribe`]) and, for each one, posts in order:
//!
//! | phone's script | events posted |
//! |---|---|
//! | none, or a fault script | USER_EVENT `DELIVERED`, then `READ` |
//! | `revoke` | SERVER_EVENT `TTL_EXPIRATION_REVOKED` |
//! | `tap:DATA` | `DELIVERED`, `READ`, then a USER_MESSAGE suggestion tap with postBack DATA |
//!
//! Bodies are shaped exactly like the samples of Interakt's guide (phones masked the way
//! Interakt masks them, unique `eventId`s, `messageId` = the id the send was answered with,
//! `sendTime` in RFC 3339), and signed with `--webhook-secret` ([`herald_shared::signature`]).
//! Each post is retried a few times with backoff; a message's events go out one after the
//! other, messages concurrently (at most [`CONCURRENT_MESSAGES`]). The poster never blocks
//! the send path: it only reads the broadcast channel.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use herald_shared::Redacted;

use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::{SandboxConfig, Script};
use crate::messages::AcceptedMessage;
use crate::state::Sandbox;
pub use crate::stats::WebhookStats;

/// The `botId` the sandbox's events carry.
pub const BOT_ID: &str = "herald-sandbox";
/// Messages whose events are being posted at once.
pub const CONCURRENT_MESSAGES: usize = 32;
/// Tries per event, and the first wait between them (doubling).
const TRIES: u32 = 5;
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// Timeout of one post: Interakt gives a receiver 3 seconds.
const POST_TIMEOUT: Duration = Duration::from_secs(3);

/// One event to post.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Outgoing {
    /// `delivered`, `read`, `revoked` or `tap`, for the stats.
    pub(crate) kind: &'static str,
    pub(crate) body: Value,
}

/// The events for one accepted message, in the order they are posted. `script` is the
/// phone's script, if any; `now` stamps `sendTime`.
pub(crate) fn events_for(
    message: &AcceptedMessage,
    script: Option<&Script>,
    now: OffsetDateTime,
) -> Vec<Outgoing> {
    let phone = interakt_mask(&message.e164());
    let id = message.id.to_string();
    let send_time = rfc3339_millis(now);
    let user_event = |event_type: &str| {
        json!({
            "userPhoneNumber": phone,
            "botId": BOT_ID,
            "entityType": "USER_EVENT",
            "entity": {
                "eventType": event_type,
                "messageId": id,
                "sendTime": send_time,
                "senderPhoneNumber": phone,
                "eventId": Uuid::new_v4().to_string()
            }
        })
    };
    let delivered_and_read = [
        Outgoing {
            kind: "delivered",
            body: user_event("DELIVERED"),
        },
        Outgoing {
            kind: "read",
            body: user_event("READ"),
        },
    ];
    match script {
        Some(Script::Revoke) => vec![Outgoing {
            kind: "revoked",
            body: json!({
                "userPhoneNumber": phone,
                "botId": BOT_ID,
                "entityType": "SERVER_EVENT",
                "entity": {
                    "eventType": "TTL_EXPIRATION_REVOKED",
                    "messageId": id,
                    "sendTime": send_time,
                    "phoneNumber": phone,
                    "eventId": Uuid::new_v4().to_string()
                }
            }),
        }],
        Some(Script::Tap(data)) => {
            let mut events = delivered_and_read.to_vec();
            events.push(Outgoing {
                kind: "tap",
                body: json!({
                    "userPhoneNumber": phone,
                    "botId": BOT_ID,
                    "entityType": "USER_MESSAGE",
                    "entity": {
                        "messageId": id,
                        "sendTime": send_time,
                        "text": "",
                        "userFile": null,
                        "location": null,
                        "suggestionResponse": {
                            "postBack": {"data": data},
                            "plainText": suggestion_text(&message.request, data).unwrap_or_default(),
                            "type": "REPLY"
                        }
                    }
                }),
            });
            events
        }
        _ => delivered_and_read.to_vec(),
    }
}

/// Masks a phone as Interakt does in its webhooks: the last five digits become `*`
/// (`+919889812345` -> `+9198898*****`).
pub(crate) fn interakt_mask(e164: &str) -> String {
    let keep = e164.len().saturating_sub(5);
    format!("{}{}", &e164[..keep], "*".repeat(e164.len() - keep))
}

fn rfc3339_millis(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(format)
        .expect("a UTC timestamp formats")
}

/// The `plainText` of the suggestion whose postBack data is `data`, anywhere in the request.
fn suggestion_text(request: &Value, data: &str) -> Option<String> {
    match request {
        Value::Object(map) => {
            let matches = map
                .get("postBack")
                .and_then(|p| p.get("data"))
                .and_then(Value::as_str)
                == Some(data);
            if matches && let Some(text) = map.get("plainText").and_then(Value::as_str) {
                return Some(text.to_string());
            }
            map.values().find_map(|v| suggestion_text(v, data))
        }
        Value::Array(items) => items.iter().find_map(|v| suggestion_text(v, data)),
        _ => None,
    }
}

/// Where and how to post; built once by [`crate::start`] when `webhook_url` is set.
pub(crate) struct Poster {
    url: String,
    secret: Option<Redacted<String>>,
    /// E.164 phone -> its script, for `revoke` and `tap:DATA`.
    script: HashMap<String, Script>,
    client: reqwest::Client,
}

impl Poster {
    /// `None` when the configuration posts no webhooks.
    pub(crate) fn new(config: &SandboxConfig) -> Option<Poster> {
        let url = config.webhook_url.clone()?;
        let client = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            .build()
            .expect("an HTTP client with a timeout builds");
        Some(Poster {
            url,
            secret: config.webhook_secret.clone(),
            script: config
                .script
                .iter()
                .map(|rule| (rule.phone.e164(), rule.script.clone()))
                .collect(),
            client,
        })
    }

    /// Posts events for every message accepted from now on, until `shutdown`.
    pub(crate) async fn run(
        self,
        mut accepted: broadcast::Receiver<AcceptedMessage>,
        sandbox: Arc<Sandbox>,
        shutdown: CancellationToken,
    ) {
        let poster = Arc::new(self);
        let slots = Arc::new(Semaphore::new(CONCURRENT_MESSAGES));
        loop {
            let message = tokio::select! {
                message = accepted.recv() => message,
                () = shutdown.cancelled() => return,
            };
            let message = match message {
                Ok(message) => message,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "webhook poster fell behind; some messages get no webhooks"
                    );
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => permit.expect("never closed"),
                () = shutdown.cancelled() => return,
            };
            let (poster, sandbox, shutdown) = (poster.clone(), sandbox.clone(), shutdown.clone());
            tokio::spawn(async move {
                let script = poster.script.get(&message.e164());
                for event in events_for(&message, script, OffsetDateTime::now_utc()) {
                    let posted = tokio::select! {
                        posted = poster.post(&event.body) => posted,
                        () = shutdown.cancelled() => return,
                    };
                    sandbox.record_webhook(event.kind, posted);
                }
                drop(permit);
            });
        }
    }

    /// Posts one event, retrying with backoff; true once the receiver answered 2xx.
    async fn post(&self, body: &Value) -> bool {
        let bytes = serde_json::to_vec(body).expect("an event serializes");
        let mut wait = FIRST_RETRY;
        for attempt in 1..=TRIES {
            let mut request = self
                .client
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes.clone());
            if let Some(secret) = &self.secret {
                request = request.header(
                    herald_shared::signature::HEADER,
                    herald_shared::signature::sign(secret.expose(), &bytes),
                );
            }
            let outcome = match request.send().await {
                Ok(response) if response.status().is_success() => return true,
                Ok(response) => format!("HTTP {}", response.status().as_u16()),
                Err(err) => err.to_string(),
            };
            tracing::debug!(attempt, error = %outcome, url = %self.url, "webhook post failed");
            if attempt < TRIES {
                tokio::time::sleep(wait).await;
                wait *= 2;
            } else {
                tracing::warn!(error = %outcome, url = %self.url, "gave up posting a webhook after {TRIES} tries");
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn message() -> AcceptedMessage {
        AcceptedMessage {
            id: Uuid::nil(),
            received_at: datetime!(2026-01-01 10:00:00 UTC),
            received_ms: 0,
            country_code: "+91".into(),
            phone_number: "9889812345".into(),
            request: json!({"message": {"richCardDetails": {"standalone": {"content": {
                "suggestions": [{"reply": {"plainText": "Cancel booking",
                                           "postBack": {"data": "cancel_B123"}}}]
            }}}}}),
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-01-01 10:00:01.5 UTC);

    fn kinds(events: &[Outgoing]) -> Vec<&str> {
        events.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn delivered_then_read_shaped_like_the_guide() {
        let events = events_for(&message(), None, NOW);
        assert_eq!(kinds(&events), ["delivered", "read"]);
        let read = &events[1].body;
        assert_eq!(read["userPhoneNumber"], "+9198898*****");
        assert_eq!(read["entityType"], "USER_EVENT");
        assert_eq!(read["entity"]["eventType"], "READ");
        assert_eq!(read["entity"]["messageId"], Uuid::nil().to_string());
        assert_eq!(read["entity"]["sendTime"], "2026-01-01T10:00:01.500Z");
        assert_eq!(read["entity"]["senderPhoneNumber"], "+9198898*****");
        assert_ne!(
            events[0].body["entity"]["eventId"],
            read["entity"]["eventId"]
        );
        // Herald's wire model reads them as what they are.
        let event: herald_shared::wire::WebhookEvent =
            serde_json::from_value(read.clone()).unwrap();
        assert_eq!(
            event.event_kind(),
            herald_shared::wire::WebhookEventType::Read
        );
    }

    #[test]
    fn scripts_choose_revocation_or_a_tap() {
        let events = events_for(&message(), Some(&Script::Revoke), NOW);
        assert_eq!(kinds(&events), ["revoked"]);
        assert_eq!(events[0].body["entityType"], "SERVER_EVENT");
        assert_eq!(
            events[0].body["entity"]["eventType"],
            "TTL_EXPIRATION_REVOKED"
        );
        assert_eq!(events[0].body["entity"]["phoneNumber"], "+9198898*****");

        let tap = Script::Tap("cancel_B123".into());
        let events = events_for(&message(), Some(&tap), NOW);
        assert_eq!(kinds(&events), ["delivered", "read", "tap"]);
        let body = &events[2].body;
        let event: herald_shared::wire::WebhookEvent =
            serde_json::from_value(body.clone()).unwrap();
        assert_eq!(event.postback_data(), Some("cancel_B123"));
        assert_eq!(
            body["entity"]["suggestionResponse"]["plainText"],
            "Cancel booking"
        );
        assert!(body["entity"]["userFile"].is_null());

        // Fault scripts only change the send's answer.
        let events = events_for(&message(), Some(&Script::FailFirst(1)), NOW);
        assert_eq!(kinds(&events), ["delivered", "read"]);
    }

    #[test]
    fn phones_are_masked_as_interakt_masks_them() {
        assert_eq!(interakt_mask("+919321812345"), "+9193218*****");
        assert_eq!(interakt_mask("+1234"), "*****");
    }
}
