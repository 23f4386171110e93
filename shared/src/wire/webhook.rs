//! Webhook bodies Interakt posts back: user messages (replies, suggestion taps), user events
//! (delivered, read) and server events (TTL revocations).
//!
//! Entity and event types are kept as the strings Interakt sent, so an event of a type this
//! version has never heard of still decodes, is stored, and can be counted.

use serde::{Deserialize, Serialize};
use serde_with::rust::double_option;

use super::Extra;

/// One webhook event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    /// Masked by Interakt in production (`+9193218*****`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_id: Option<String>,
    pub entity_type: String,
    pub entity: EventEntity,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The union of the fields the three entity types carry; each is optional.
///
/// Fields the guide shows as explicit `null` (`userFile`, `location`,
/// `suggestionResponse`) tell "absent" from "null" apart so the body round-trips.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEntity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub user_file: Option<Option<serde_json::Value>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub location: Option<Option<serde_json::Value>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub suggestion_response: Option<Option<SuggestionResponse>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_phone_number: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A tap on a suggestion chip: the `postBack.data` Herald put on the card comes back here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuggestionResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_back: Option<super::PostBack>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain_text: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub response_type: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The three entity types of RBM, and everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntityType {
    UserMessage,
    UserEvent,
    ServerEvent,
    Unknown,
}

/// The event types Herald acts on, and everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WebhookEventType {
    Delivered,
    Read,
    TtlExpirationRevoked,
    TtlExpirationRevokeFailed,
    Other,
}

impl WebhookEvent {
    pub fn kind(&self) -> EntityType {
        match self.entity_type.as_str() {
            "USER_MESSAGE" => EntityType::UserMessage,
            "USER_EVENT" => EntityType::UserEvent,
            "SERVER_EVENT" => EntityType::ServerEvent,
            _ => EntityType::Unknown,
        }
    }

    /// The event type, read with both spellings in use: RBM's `READ` and the guide's
    /// `MESSAGE_READ`.
    pub fn event_kind(&self) -> WebhookEventType {
        match self.entity.event_type.as_deref() {
            Some("DELIVERED" | "MESSAGE_DELIVERED") => WebhookEventType::Delivered,
            Some("READ" | "MESSAGE_READ") => WebhookEventType::Read,
            Some("TTL_EXPIRATION_REVOKED") => WebhookEventType::TtlExpirationRevoked,
            Some("TTL_EXPIRATION_REVOKE_FAILED") => WebhookEventType::TtlExpirationRevokeFailed,
            _ => WebhookEventType::Other,
        }
    }

    /// `eventId`, or `messageId` + entity and event type when there is no event id. Right
    /// for status events (one DELIVERED per message); not for user messages, which carry
    /// no event id and share the card's message id: Herald's receiver keys those by a
    /// digest of the whole event instead (`herald_webhook::action::dedup_key`).
    pub fn dedup_key(&self) -> String {
        match &self.entity.event_id {
            Some(id) => format!("event:{id}"),
            None => format!(
                "message:{}:{}:{}",
                self.entity.message_id.as_deref().unwrap_or(""),
                self.entity_type,
                self.entity.event_type.as_deref().unwrap_or("")
            ),
        }
    }

    /// The postBack data of a suggestion tap, if this is one.
    pub fn postback_data(&self) -> Option<&str> {
        self.entity
            .suggestion_response
            .as_ref()?
            .as_ref()?
            .post_back
            .as_ref()
            .map(|p| p.data.as_str())
    }
}
