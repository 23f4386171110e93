//! Checks a [`SendRequest`] against RCS Business Messaging's limits and India's DLT rules
//! before it is queued, so a job that Interakt would refuse is refused at enqueue time with a
//! reason a person can act on.
//!
//! Every violation names the JSON path of the field (`message.richCardDetails.standalone.
//! content.suggestions[4]`) and the limit it broke. All violations are collected, not just
//! the first. Lengths are counted in characters (Unicode scalar values), as RBM counts them.

use std::fmt;

use crate::phone::Phone;
use crate::wire::{CardContent, MessageType, SendRequest, SmsFallback, Suggestion};

/// The limits, with where they come from (Google RBM and India's DLT rules).
pub mod limits {
    pub const CARD_TITLE_CHARS: usize = 200;
    pub const CARD_DESCRIPTION_CHARS: usize = 2_000;
    pub const SUGGESTIONS_PER_CARD: usize = 4;
    pub const SUGGESTIONS_PER_MESSAGE: usize = 11;
    pub const SUGGESTION_TEXT_CHARS: usize = 25;
    pub const POSTBACK_DATA_CHARS: usize = 2_048;
    pub const CAROUSEL_MIN_CARDS: usize = 2;
    pub const CAROUSEL_MAX_CARDS: usize = 10;
    pub const MEDIA_URL_CHARS: usize = 2_000;
    /// The whole message, as sent.
    pub const MESSAGE_BYTES: usize = 250 * 1024;
    pub const DLT_ID_MIN_DIGITS: usize = 12;
    pub const DLT_ID_MAX_DIGITS: usize = 19;
    pub const DLT_VARIABLE_CHARS: usize = 30;
    pub const SENDER_ID_CHARS: usize = 6;
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// JSON path of the field, in the wire's own names.
    pub path: String,
    /// What is wrong, with the limit: `is 31 characters; the limit is 25`.
    pub reason: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Everything wrong with one request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub violations: Vec<Violation>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

impl ValidationError {
    pub fn single(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ValidationError {
            violations: vec![Violation {
                path: path.into(),
                reason: reason.into(),
            }],
        }
    }
}

/// Collects violations while walking a request.
#[derive(Default)]
struct Checker {
    violations: Vec<Violation>,
}

impl Checker {
    fn fail(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.violations.push(Violation {
            path: path.into(),
            reason: reason.into(),
        });
    }

    fn max_chars(&mut self, path: &str, value: &str, limit: usize) {
        let len = value.chars().count();
        if len > limit {
            self.fail(path, format!("is {len} characters; the limit is {limit}"));
        }
    }

    fn non_empty(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            self.fail(path, "must not be empty");
        }
    }

    fn finish(self) -> Result<(), ValidationError> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(ValidationError {
                violations: self.violations,
            })
        }
    }
}

/// How deep the phone number of a request is checked (see [`crate::phone`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhoneCheck {
    /// Valid for its country's numbering plan (libphonenumber): at enqueue.
    Valid,
    /// E.164 shape and a known calling code: at send, for numbers checked at enqueue.
    Split,
}

/// Validates a whole send request, its phone number for its country's numbering plan.
pub fn validate_request(request: &SendRequest) -> Result<(), ValidationError> {
    validate_request_with(request, PhoneCheck::Valid)
}

/// Validates a whole send request, its phone number as deep as `phone` says.
pub fn validate_request_with(
    request: &SendRequest,
    phone: PhoneCheck,
) -> Result<(), ValidationError> {
    let size = serde_json::to_vec(request).map_or(0, |body| body.len());
    validate_sized(request, size, phone)
}

/// Validates a whole send request already serialized as `body` (what a worker sends), so
/// it is serialized once.
pub fn validate_serialized(
    request: &SendRequest,
    body: &[u8],
    phone: PhoneCheck,
) -> Result<(), ValidationError> {
    validate_sized(request, body.len(), phone)
}

/// Validates a send request whose JSON is `size` bytes.
fn validate_sized(
    request: &SendRequest,
    size: usize,
    phone: PhoneCheck,
) -> Result<(), ValidationError> {
    let mut c = Checker::default();
    let split = match phone {
        PhoneCheck::Valid => Phone::parse_split,
        PhoneCheck::Split => Phone::split_parts,
    };
    if let Err(err) = split(&request.country_code, &request.phone_number) {
        c.fail("countryCode+phoneNumber", err.to_string());
    }
    match request.message_type {
        MessageType::StandaloneCarousel => check_rich_message(&mut c, request),
        MessageType::Template => check_template(&mut c, request),
    }
    if let Some(fallbacks) = &request.fallback {
        for (i, fallback) in fallbacks.iter().enumerate() {
            check_fallback(&mut c, &format!("fallback[{i}]"), fallback);
        }
    }
    if size > limits::MESSAGE_BYTES {
        c.fail(
            ".",
            format!(
                "is {size} bytes; the limit is {} bytes",
                limits::MESSAGE_BYTES
            ),
        );
    }
    c.finish()
}

fn check_rich_message(c: &mut Checker, request: &SendRequest) {
    if request.template.is_some() {
        c.fail("template", "is only allowed with type \"Template\"");
    }
    let Some(message) = &request.message else {
        c.fail(
            "message",
            "is required when type is \"STANDALONE_CAROUSEL\"",
        );
        return;
    };
    let details = &message.rich_card_details;
    let base = "message.richCardDetails";
    let mut suggestions = 0;
    match (&details.standalone, &details.carousel) {
        (Some(card), None) => {
            suggestions += check_card(c, &format!("{base}.standalone.content"), &card.content);
        }
        (None, Some(carousel)) => {
            let n = carousel.contents.len();
            if !(limits::CAROUSEL_MIN_CARDS..=limits::CAROUSEL_MAX_CARDS).contains(&n) {
                c.fail(
                    format!("{base}.carousel.contents"),
                    format!(
                        "has {n} cards; a carousel has {} to {}",
                        limits::CAROUSEL_MIN_CARDS,
                        limits::CAROUSEL_MAX_CARDS
                    ),
                );
            }
            for (i, card) in carousel.contents.iter().enumerate() {
                suggestions += check_card(c, &format!("{base}.carousel.contents[{i}]"), card);
            }
        }
        (Some(_), Some(_)) => c.fail(base, "must hold either standalone or carousel, not both"),
        (None, None) => c.fail(base, "must hold a standalone card or a carousel"),
    }
    if suggestions > limits::SUGGESTIONS_PER_MESSAGE {
        c.fail(
            base,
            format!(
                "has {suggestions} suggestions in all; the limit is {} per message",
                limits::SUGGESTIONS_PER_MESSAGE
            ),
        );
    }
}

/// Checks one card and returns how many suggestions it has.
fn check_card(c: &mut Checker, path: &str, card: &CardContent) -> usize {
    if card.card_title.is_none() && card.card_description.is_none() && card.card_media.is_none() {
        c.fail(
            path,
            "needs at least one of cardTitle, cardDescription, cardMedia",
        );
    }
    if let Some(title) = &card.card_title {
        c.max_chars(
            &format!("{path}.cardTitle"),
            title,
            limits::CARD_TITLE_CHARS,
        );
    }
    if let Some(description) = &card.card_description {
        c.max_chars(
            &format!("{path}.cardDescription"),
            description,
            limits::CARD_DESCRIPTION_CHARS,
        );
    }
    if let Some(media) = &card.card_media {
        let media_path = format!("{path}.cardMedia.contentInfo");
        check_media_url(
            c,
            &format!("{media_path}.fileUrl"),
            &media.content_info.file_url,
        );
        if let Some(thumb) = &media.content_info.thumbnail_url {
            check_media_url(c, &format!("{media_path}.thumbnailUrl"), thumb);
        }
    }
    let suggestions = card.suggestions.as_deref().unwrap_or_default();
    if suggestions.len() > limits::SUGGESTIONS_PER_CARD {
        c.fail(
            format!("{path}.suggestions"),
            format!(
                "has {} suggestions; the limit is {} per card",
                suggestions.len(),
                limits::SUGGESTIONS_PER_CARD
            ),
        );
    }
    for (i, suggestion) in suggestions.iter().enumerate() {
        check_suggestion(c, &format!("{path}.suggestions[{i}]"), suggestion);
    }
    suggestions.len()
}

fn check_suggestion(c: &mut Checker, path: &str, suggestion: &Suggestion) {
    let bodies = [("reply", &suggestion.reply), ("action", &suggestion.action)];
    if bodies.iter().all(|(_, body)| body.is_none()) {
        c.fail(path, "needs a reply or an action");
    }
    for (name, body) in bodies {
        let Some(body) = body else { continue };
        let text_path = format!("{path}.{name}.plainText");
        c.non_empty(&text_path, &body.plain_text);
        c.max_chars(&text_path, &body.plain_text, limits::SUGGESTION_TEXT_CHARS);
        c.max_chars(
            &format!("{path}.{name}.postBack.data"),
            &body.post_back.data,
            limits::POSTBACK_DATA_CHARS,
        );
    }
}

fn check_media_url(c: &mut Checker, path: &str, url: &str) {
    let lower = url.to_ascii_lowercase();
    let host_starts = if lower.starts_with("https://") {
        8
    } else if lower.starts_with("http://") {
        7
    } else {
        c.fail(path, "must be an http:// or https:// URL");
        return;
    };
    if url.len() <= host_starts || url[host_starts..].starts_with('/') {
        c.fail(path, "has no host");
    }
    if url.chars().any(char::is_whitespace) {
        c.fail(path, "must not contain whitespace");
    }
    c.max_chars(path, url, limits::MEDIA_URL_CHARS);
}

fn check_template(c: &mut Checker, request: &SendRequest) {
    if request.message.is_some() {
        c.fail(
            "message",
            "is only allowed with type \"STANDALONE_CAROUSEL\"",
        );
    }
    let Some(template) = &request.template else {
        c.fail("template", "is required when type is \"Template\"");
        return;
    };
    c.non_empty("template.name", &template.name);
    c.non_empty("template.languageCode", &template.language_code);
    if let Some(cards) = &template.carousel_cards
        && cards.len() > limits::CAROUSEL_MAX_CARDS
    {
        c.fail(
            "template.carouselCards",
            format!(
                "has {} cards; the limit is {}",
                cards.len(),
                limits::CAROUSEL_MAX_CARDS
            ),
        );
    }
}

fn check_fallback(c: &mut Checker, path: &str, fallback: &SmsFallback) {
    if fallback.channel != "sms" {
        c.fail(
            format!("{path}.channel"),
            format!(
                "is {:?}; the only fallback channel is \"sms\"",
                fallback.channel
            ),
        );
    }
    let sender = &fallback.sender_id;
    if sender.chars().count() != limits::SENDER_ID_CHARS
        || !sender.chars().all(|ch| ch.is_ascii_alphanumeric())
    {
        c.fail(
            format!("{path}.sender_id"),
            format!(
                "is {sender:?}; a DLT header is {} letters or digits",
                limits::SENDER_ID_CHARS
            ),
        );
    }
    c.non_empty(&format!("{path}.provider_name"), &fallback.provider_name);
    check_dlt_id(c, &format!("{path}.pe_id"), &fallback.pe_id);
    check_dlt_id(
        c,
        &format!("{path}.content.dlt_te_id"),
        &fallback.content.dlt_te_id,
    );
    check_sms_text(
        c,
        &format!("{path}.content"),
        &fallback.content.message,
        &fallback.content.variables,
    );
}

/// DLT ids (`pe_id`, `dlt_te_id`) are numeric, 19 digits in practice; 12 to 19 accepted.
fn check_dlt_id(c: &mut Checker, path: &str, id: &str) {
    let digits = id.len();
    if !id.bytes().all(|b| b.is_ascii_digit())
        || !(limits::DLT_ID_MIN_DIGITS..=limits::DLT_ID_MAX_DIGITS).contains(&digits)
    {
        c.fail(
            path,
            format!(
                "is {id:?}; a DLT id is {} to {} digits",
                limits::DLT_ID_MIN_DIGITS,
                limits::DLT_ID_MAX_DIGITS
            ),
        );
    }
}

/// The SMS text's `{{n}}` placeholders must be exactly `{{1}}..{{k}}` for `k` variables.
fn check_sms_text(c: &mut Checker, path: &str, message: &str, variables: &[String]) {
    c.non_empty(&format!("{path}.message"), message);
    let placeholders = placeholders(message);
    let expected: Vec<usize> = (1..=variables.len()).collect();
    if placeholders != expected {
        let found = if placeholders.is_empty() {
            "no placeholders".to_string()
        } else {
            placeholders
                .iter()
                .map(|n| format!("{{{{{n}}}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        c.fail(
            format!("{path}.variables"),
            format!(
                "has {} values but the message has {found}; they must match {{{{1}}}}..{{{{n}}}} in order",
                variables.len()
            ),
        );
    }
    for (i, variable) in variables.iter().enumerate() {
        c.max_chars(
            &format!("{path}.variables[{i}]"),
            variable,
            limits::DLT_VARIABLE_CHARS,
        );
    }
}

/// The distinct placeholder numbers in a DLT text, sorted: `"{{2}} {{1}} {{1}}"` -> `[1, 2]`.
pub fn placeholders(text: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find("}}") else { break };
        if let Ok(n) = rest[..end].trim().parse::<usize>() {
            found.push(n);
        }
        rest = &rest[end + 2..];
    }
    found.sort_unstable();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_sorted_and_distinct() {
        assert_eq!(placeholders("a {{2}} b {{1}} c {{1}}"), vec![1, 2]);
        assert_eq!(placeholders("none"), Vec::<usize>::new());
        assert_eq!(placeholders("{{x}} {{3"), Vec::<usize>::new());
    }
}
