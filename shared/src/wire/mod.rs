//! The wire format of Interakt's public RCS API, field for field as its integration guide
//! writes it.
//!
//! Every struct keeps the fields it does not know in an `extra` map (`#[serde(flatten)]`),
//! so a raw request that carries a field Herald has no name for is sent on unchanged rather
//! than silently stripped. Decoding goes through [`decode`], which names the JSON path of
//! whatever does not fit.
//!
//! This module only describes shapes; the limits those shapes must respect live in
//! [`crate::validate`].

mod request;
mod response;
mod webhook;

pub use request::{
    CardContent, CardMedia, CardOrientation, CardWidth, Carousel, ContentInfo, MediaHeight,
    MessageType, PostBack, RichCardDetails, RichMessage, SendRequest, SmsContent, SmsFallback,
    StandaloneCard, Suggestion, SuggestionBody, Template, TemplateCard,
};
pub use response::SendResponse;
pub use webhook::{EntityType, EventEntity, SuggestionResponse, WebhookEvent, WebhookEventType};

/// Extra, unnamed fields of a wire object, kept in their original order.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// A JSON body that does not decode into a wire type, with the path of the offending field.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct DecodeError {
    /// JSON path of the field that did not fit (`.` when the body itself is not JSON).
    pub path: String,
    /// What serde said was wrong with it.
    pub reason: String,
}

impl DecodeError {
    /// The error without any value from the input: serde quotes the offending value
    /// (``invalid type: integer `731904` ``), which for a job may be an OTP's code. What the
    /// worker records (dead letters, logs, timelines) uses this form; `path: kind of error`.
    pub fn without_values(&self) -> String {
        format!("{}: {}", self.path, strip_quoted(&self.reason))
    }
}

/// `text` with every `` `...` `` and `"..."` span replaced by `…`.
fn strip_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut closing: Option<char> = None;
    for c in text.chars() {
        match closing {
            Some(end) if c == end => closing = None,
            Some(_) => {}
            None if c == '`' || c == '"' => {
                closing = Some(c);
                out.push('…');
            }
            None => out.push(c),
        }
    }
    out
}

/// Decodes a JSON body into a wire type, naming the field path on failure
/// (`message.richCardDetails.standalone.cardOrientation: unknown variant ...`).
///
/// Valid JSON (every job a worker reads) takes serde_json's own path; only a body that
/// fails is decoded again with the path tracked, which costs about as much again.
pub fn decode<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, DecodeError> {
    if let Ok(value) = serde_json::from_slice(json) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(de).map_err(|err| DecodeError {
        path: path_or_body(err.path().to_string()),
        reason: err.inner().to_string(),
    })
}

/// serde_path_to_error says `?` where the body is not JSON at all; `.` (the body) reads better.
fn path_or_body(path: String) -> String {
    if path == "?" { ".".to_string() } else { path }
}

/// Like [`decode`], from an already parsed JSON value.
pub fn decode_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(value).map_err(|err| DecodeError {
        path: path_or_body(err.path().to_string()),
        reason: err.inner().to_string(),
    })
}
