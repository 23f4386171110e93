//! [`Redacted`]: a value that must reach the wire or Redis but never a log line.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Wraps a secret (API key, webhook secret, OTP code). Debug and Display print
/// `[redacted]`; serde sees the inner value unchanged, because the job in Redis and the
/// request to Interakt do need it.
///
/// `secrecy` would hide it from serde too, which is the one place it must go; this is the
/// twenty lines Herald needs instead.
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    pub fn new(value: T) -> Self {
        Redacted(value)
    }

    /// The secret itself. Call it where the value is used, never to format it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Redacted<T> {
    fn from(value: T) -> Self {
        Redacted(value)
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Redacted<String> {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Redacted(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_secret_but_serializes_it() {
        let key = Redacted::new("sk_live_123".to_string());
        assert_eq!(format!("{key:?} {key}"), "[redacted] [redacted]");
        assert_eq!(serde_json::to_string(&key).unwrap(), "\"sk_live_123\"");
    }
}
