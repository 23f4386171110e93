//! What one webhook event means to Herald, decided without I/O: its de-duplication key, its
//! metric labels, and the [`Action`] the processor takes.
//!
//! | event | action |
//! |---|---|
//! | USER_EVENT `DELIVERED` / `READ` (either spelling) | [`Action::Milestone`] on the message's job |
//! | SERVER_EVENT `TTL_EXPIRATION_REVOKED` / `TTL_EXPIRATION_REVOKE_FAILED` | [`Action::Milestone`] |
//! | USER_MESSAGE (reply text, file, location, suggestion tap) | [`Action::Inbound`] |
//! | anything else, or a JSON object that is not an event | [`Action::Unhandled`]: kept |
//!
//! And whether an event is too old to record at all ([`is_stale`]): older than the
//! de-duplication window, it could be recorded twice.
//!
//! This module never talks to Redis and never reads the clock (the time is passed in).

use herald_shared::wire::{self, EntityType, WebhookEvent, WebhookEventType};
use herald_store::keys::WEBHOOK_DEDUP_TTL_SECS;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use herald_store::record::{Milestone, format_time};

/// What to do with one event.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Record `milestone` at `at` on the job Interakt's `message_id` was sent for.
    Milestone {
        message_id: String,
        milestone: Milestone,
        at: OffsetDateTime,
    },
    /// Append to the inbound stream for backend services.
    Inbound(InboundMessage),
    /// Keep it for people to look at; Herald does not act on it.
    Unhandled,
}

/// `type` of an inbound entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboundKind {
    /// Free text, a file or a location the user sent.
    Reply,
    /// A tap on a suggestion chip: `postback` is the data Herald put on it.
    Suggestion,
}

impl InboundKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InboundKind::Reply => "reply",
            InboundKind::Suggestion => "suggestion",
        }
    }
}

/// A user message, as the inbound stream carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundMessage {
    pub kind: InboundKind,
    /// As Interakt sent it (masked by Interakt in production).
    pub phone: Option<String>,
    pub text: Option<String>,
    pub postback: Option<String>,
    /// The message id the event names; the job is looked up by it.
    pub message_id: Option<String>,
}

impl InboundMessage {
    /// The stream entry's fields, absent ones left out: `type`, `phone`, `text`, `postback`,
    /// `message_id`, `job_id`, `received_at`, and `event` (the event's JSON as received, for
    /// anything else: files, locations).
    pub fn fields(
        &self,
        job_id: Option<&str>,
        received_at: OffsetDateTime,
        raw: &str,
    ) -> Vec<(&'static str, String)> {
        let mut fields = vec![("type", self.kind.as_str().to_string())];
        let optional = [
            ("phone", self.phone.as_deref()),
            ("text", self.text.as_deref()),
            ("postback", self.postback.as_deref()),
            ("message_id", self.message_id.as_deref()),
            ("job_id", job_id),
        ];
        fields.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| Some((name, value?.to_string()))),
        );
        fields.push(("received_at", format_time(received_at)));
        fields.push(("event", raw.to_string()));
        fields
    }
}

/// Decodes one event's JSON; `None` for an object that is not shaped like an event.
pub fn decode(raw: &str) -> Option<WebhookEvent> {
    wire::decode(raw.as_bytes()).ok()
}

/// The oldest an event may be (by its own `sendTime`) and still be recorded: the
/// de-duplication window. The marker an event leaves when it is recorded lasts that long
/// from its arrival, so an older event may be one whose marker has expired: a captured body
/// replayed, or a redelivery too late to tell from one. Either would be recorded twice.
pub const MAX_EVENT_AGE: time::Duration = time::Duration::seconds(WEBHOOK_DEDUP_TTL_SECS as i64);

/// When Interakt says the event happened (`entity.sendTime`, RFC 3339), if it says so
/// readably.
pub fn sent_at(event: &WebhookEvent) -> Option<OffsetDateTime> {
    event
        .entity
        .send_time
        .as_deref()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
}

/// Whether an event sent at `sent_at` is too old to record at `now` ([`MAX_EVENT_AGE`] or
/// more). One without a readable `sendTime` is not: there is nothing to judge it by (every
/// event Interakt documents carries one, and its body is signed).
pub fn is_stale(sent_at: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    sent_at.is_some_and(|at| now - at >= MAX_EVENT_AGE)
}

/// What the processor does with `event` (`None`: an object that is not an event).
/// `received_at` stands in for Interakt's `sendTime` when that is missing or unreadable.
pub fn plan(event: Option<&WebhookEvent>, received_at: OffsetDateTime) -> Action {
    let Some(event) = event else {
        return Action::Unhandled;
    };
    let milestone = match (event.kind(), event.event_kind()) {
        (EntityType::UserMessage, _) => return Action::Inbound(inbound(event)),
        (EntityType::UserEvent, WebhookEventType::Delivered) => Milestone::Delivered,
        (EntityType::UserEvent, WebhookEventType::Read) => Milestone::Read,
        (EntityType::ServerEvent, WebhookEventType::TtlExpirationRevoked) => Milestone::Revoked,
        (EntityType::ServerEvent, WebhookEventType::TtlExpirationRevokeFailed) => {
            Milestone::RevokeFailed
        }
        _ => return Action::Unhandled,
    };
    let Some(message_id) = event.entity.message_id.clone().filter(|m| !m.is_empty()) else {
        return Action::Unhandled;
    };
    let at = sent_at(event).unwrap_or(received_at);
    Action::Milestone {
        message_id,
        milestone,
        at,
    }
}

fn inbound(event: &WebhookEvent) -> InboundMessage {
    let postback = event.postback_data().map(str::to_string);
    InboundMessage {
        kind: if postback.is_some() {
            InboundKind::Suggestion
        } else {
            InboundKind::Reply
        },
        phone: event
            .user_phone_number
            .clone()
            .or_else(|| event.entity.phone_number.clone()),
        text: event.entity.text.clone().filter(|t| !t.is_empty()),
        postback,
        message_id: event.entity.message_id.clone().filter(|m| !m.is_empty()),
    }
}

/// The key an event is de-duplicated on (`raw`: the event's JSON, as the receiver records
/// it):
///
/// - its `eventId` when it has one (`event:ID`);
/// - a USER_MESSAGE without one (replies and taps carry none) by the SHA-256 of its whole
///   JSON (`user-message:HEX`): two taps, or a tap and a reply, on one card share the
///   message id and types, so keying them on those would drop a customer's action, while a
///   redelivery of the same event has the same JSON;
/// - any other event by its message id and types (`message:ID:ENTITY:EVENT`: one DELIVERED
///   per message);
/// - an object with neither (or that is not an event) by a digest of its JSON (`body:HEX`).
pub fn dedup_key(event: Option<&WebhookEvent>, raw: &str) -> String {
    let digest = || herald_shared::signature::sha256_hex(raw.as_bytes());
    match event {
        Some(event) if event.entity.event_id.is_some() => event.dedup_key(),
        Some(event) if event.kind() == EntityType::UserMessage => {
            format!("user-message:{}", digest())
        }
        Some(event) if event.entity.message_id.is_some() => event.dedup_key(),
        _ => format!("body:{}", digest()),
    }
}

/// Metric labels `(entity_type, event_type)` from a fixed list, so a sender cannot grow the
/// number of series.
pub fn labels(event: Option<&WebhookEvent>) -> (&'static str, &'static str) {
    let Some(event) = event else {
        return ("invalid", "none");
    };
    match event.kind() {
        EntityType::UserMessage => (
            "USER_MESSAGE",
            match inbound(event).kind {
                InboundKind::Suggestion => "suggestion",
                InboundKind::Reply => "reply",
            },
        ),
        EntityType::UserEvent => ("USER_EVENT", event_label(event)),
        EntityType::ServerEvent => ("SERVER_EVENT", event_label(event)),
        EntityType::Unknown => ("unknown", event_label(event)),
    }
}

fn event_label(event: &WebhookEvent) -> &'static str {
    match event.event_kind() {
        WebhookEventType::Delivered => "DELIVERED",
        WebhookEventType::Read => "READ",
        WebhookEventType::TtlExpirationRevoked => "TTL_EXPIRATION_REVOKED",
        WebhookEventType::TtlExpirationRevokeFailed => "TTL_EXPIRATION_REVOKE_FAILED",
        WebhookEventType::Other => match event.entity.event_type.as_deref() {
            Some("IS_TYPING") => "IS_TYPING",
            Some("SUBSCRIBE") => "SUBSCRIBE",
            Some("UNSUBSCRIBE") => "UNSUBSCRIBE",
            Some(_) => "other",
            None => "none",
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-23 10:00:00 UTC);

    fn event(value: serde_json::Value) -> WebhookEvent {
        serde_json::from_value(value).unwrap()
    }

    fn user_event(event_type: &str) -> WebhookEvent {
        event(json!({
            "userPhoneNumber": "+9198898*****",
            "entityType": "USER_EVENT",
            "entity": {"eventType": event_type, "messageId": "m-1",
                       "sendTime": "2026-11-23T09:59:59.5Z", "eventId": "e-1"}
        }))
    }

    #[test]
    fn delivery_events_become_milestones_at_interakts_time() {
        for (event_type, milestone) in [
            ("DELIVERED", Milestone::Delivered),
            ("READ", Milestone::Read),
            ("MESSAGE_READ", Milestone::Read),
        ] {
            assert_eq!(
                plan(Some(&user_event(event_type)), NOW),
                Action::Milestone {
                    message_id: "m-1".into(),
                    milestone,
                    at: datetime!(2026-11-23 09:59:59.5 UTC)
                },
                "{event_type}"
            );
        }
        let revoked = event(json!({
            "entityType": "SERVER_EVENT",
            "entity": {"eventType": "TTL_EXPIRATION_REVOKED", "messageId": "m-2", "sendTime": "soon"}
        }));
        assert_eq!(
            plan(Some(&revoked), NOW),
            Action::Milestone {
                message_id: "m-2".into(),
                milestone: Milestone::Revoked,
                at: NOW
            }
        );
    }

    #[test]
    fn what_herald_does_not_act_on_is_kept() {
        let typing = user_event("IS_TYPING");
        assert_eq!(plan(Some(&typing), NOW), Action::Unhandled);
        assert_eq!(labels(Some(&typing)), ("USER_EVENT", "IS_TYPING"));
        let novel = event(json!({"entityType": "NEW_KIND", "entity": {"eventType": "WOW"}}));
        assert_eq!(plan(Some(&novel), NOW), Action::Unhandled);
        assert_eq!(labels(Some(&novel)), ("unknown", "other"));
        // A delivery event with no message id cannot be linked to anything.
        let anonymous = event(json!({"entityType": "USER_EVENT", "entity": {"eventType": "READ"}}));
        assert_eq!(plan(Some(&anonymous), NOW), Action::Unhandled);
        assert_eq!(plan(None, NOW), Action::Unhandled);
        assert_eq!(labels(None), ("invalid", "none"));
    }

    #[test]
    fn taps_and_replies_become_inbound_entries() {
        let raw = include_str!("../../shared/tests/fixtures/webhook-user-message-suggestion.json");
        let tap = decode(raw).unwrap();
        let Action::Inbound(message) = plan(Some(&tap), NOW) else {
            panic!("a tap is inbound")
        };
        assert_eq!(message.kind, InboundKind::Suggestion);
        assert_eq!(message.postback.as_deref(), Some("SR1L1C1"));
        assert_eq!(message.text, None, "empty text is left out");
        assert_eq!(labels(Some(&tap)), ("USER_MESSAGE", "suggestion"));
        let fields = message.fields(Some("job-1"), NOW, raw);
        let names: Vec<_> = fields.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "type",
                "phone",
                "postback",
                "message_id",
                "job_id",
                "received_at",
                "event"
            ]
        );
        assert_eq!(fields[0].1, "suggestion");
        assert_eq!(fields[1].1, "+9193218*****");

        let raw = include_str!("../../shared/tests/fixtures/webhook-user-message-text.json");
        let reply = decode(raw).unwrap();
        let Action::Inbound(message) = plan(Some(&reply), NOW) else {
            panic!("a reply is inbound")
        };
        assert_eq!(message.kind, InboundKind::Reply);
        assert_eq!(message.text.as_deref(), Some("Hi"));
        let fields = message.fields(None, NOW, raw);
        assert!(
            fields
                .iter()
                .all(|(n, _)| *n != "job_id" && *n != "postback")
        );
    }

    #[test]
    fn dedup_keys_prefer_ids_and_fall_back_to_a_digest() {
        let read = user_event("READ");
        assert_eq!(dedup_key(Some(&read), "{}"), "event:e-1");
        let text = decode(include_str!(
            "../../shared/tests/fixtures/webhook-user-message-text.json"
        ))
        .unwrap();
        let delivered = event(json!({
            "entityType": "USER_EVENT",
            "entity": {"eventType": "DELIVERED", "messageId": "m-1"}
        }));
        assert_eq!(
            dedup_key(Some(&delivered), "{}"),
            "message:m-1:USER_EVENT:DELIVERED"
        );
        let reply = dedup_key(Some(&text), r#"{"a":1}"#);
        assert!(
            reply.starts_with("user-message:") && reply.len() == 13 + 64,
            "{reply}"
        );
        let bare = event(json!({"entityType": "USER_MESSAGE", "entity": {"text": "hi"}}));
        assert!(dedup_key(Some(&bare), r#"{"a":1}"#).starts_with("user-message:"));
        let a = dedup_key(None, r#"{"a":1}"#);
        assert!(a.starts_with("body:") && a.len() == 5 + 64, "{a}");
        assert_ne!(a, dedup_key(None, r#"{"a":2}"#));
    }

    /// Issue: customers' taps were lost. User messages carry no `eventId` and share the
    /// card's message id: each distinct one is kept, the same one again is not.
    #[test]
    fn user_messages_on_one_card_are_told_apart_by_their_content() {
        let on_card = |suggestion: serde_json::Value, text: &str| {
            json!({
                "entityType": "USER_MESSAGE",
                "entity": {"messageId": "card-1", "sendTime": "2026-11-23T10:00:00Z",
                           "text": text, "suggestionResponse": suggestion}
            })
            .to_string()
        };
        let view = on_card(json!({"postBack": {"data": "view_B1"}}), "");
        let cancel = on_card(json!({"postBack": {"data": "cancel_B1"}}), "");
        let reply = on_card(serde_json::Value::Null, "6 pm instead?");
        let keys: Vec<String> = [&view, &cancel, &reply]
            .into_iter()
            .map(|raw| dedup_key(decode(raw).as_ref(), raw))
            .collect();
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[0], keys[2]);
        assert_ne!(keys[1], keys[2]);
        assert_eq!(keys[1], dedup_key(decode(&cancel).as_ref(), &cancel));
        // With an eventId, the id decides, as for every other event.
        let with_id = json!({"entityType": "USER_MESSAGE",
                             "entity": {"messageId": "card-1", "eventId": "u-1", "text": "x"}})
        .to_string();
        assert_eq!(dedup_key(decode(&with_id).as_ref(), &with_id), "event:u-1");
    }

    #[test]
    fn an_event_as_old_as_the_dedup_window_is_stale() {
        use time::macros::datetime;
        let now = datetime!(2026-12-06 12:00 UTC);
        let day = time::Duration::days(1);
        assert_eq!(MAX_EVENT_AGE, time::Duration::days(3), "the window");
        for (sent_at, stale) in [
            (Some(now), false),
            (Some(now + day), false),
            (Some(now - day), false),
            (Some(now - MAX_EVENT_AGE + time::Duration::SECOND), false),
            (Some(now - MAX_EVENT_AGE), true),
            (Some(now - 4 * day), true),
            (Some(datetime!(2023-10-09 10:20:20.849997 UTC)), true),
            (None, false),
        ] {
            assert_eq!(is_stale(sent_at, now), stale, "{sent_at:?}");
        }
        let event = |time: &str| {
            decode(&format!(
                r#"{{"entityType":"USER_EVENT","entity":{{"eventType":"READ","sendTime":"{time}"}}}}"#
            ))
            .unwrap()
        };
        assert_eq!(
            sent_at(&event("2026-12-02T10:20:20.5Z")),
            Some(datetime!(2026-12-02 10:20:20.5 UTC))
        );
        assert_eq!(sent_at(&event("soon")), None);
    }
}
