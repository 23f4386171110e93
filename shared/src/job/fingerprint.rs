//! A job's content, named: what an idempotency key compares.

use std::fmt;

use super::payload::Payload;

/// The SHA-256 of a job's content, in lowercase hex: what an idempotency key holds besides
/// the first job's id, so the same key with other content is told apart from a retry.
///
/// The content is the payload (kind, recipient and what is sent), serialized canonically
/// (object keys sorted at every level, so unknown fields kept from a raw request count
/// whatever their order). The id, creation time, deadline, idempotency key and attempts
/// are not content: a retried enqueue with another `valid_for` is the same message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Prefixed to the hashed text, so a change of the canonical form can never match an
    /// old fingerprint by accident.
    const VERSION: &'static [u8] = b"herald-job-content-v1\n";

    pub fn of(payload: &Payload) -> Fingerprint {
        let mut value = serde_json::to_value(payload).expect("a payload always serializes");
        value.sort_all_objects();
        let mut text = Fingerprint::VERSION.to_vec();
        serde_json::to_writer(&mut text, &value).expect("a JSON value always serializes");
        Fingerprint(crate::signature::sha256_hex(&text))
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
