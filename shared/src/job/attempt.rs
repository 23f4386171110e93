//! One send attempt and what it came to: the history a job carries, which dead letters keep
//! and `track` shows.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What one attempt came to. Stored by name in the job's history (`"outcome":
/// "rate_limited"`): the names are a storage format, so renaming a variant must keep its
/// `serde` name, or jobs already queued would no longer decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// 200 with `result: true`.
    Sent,
    /// 429: over the plan's limit; never counts against the retry budget.
    RateLimited,
    /// 5xx, 408, a timeout or a connection error; counts against the retry budget.
    Transient,
    /// A refusal that would repeat (4xx, `result: false`).
    Permanent,
    /// Not a send: the marker `dlq replay` appends. Attempts before the last marker belong to
    /// an earlier life of the job and no longer count against its retry budget.
    Replayed,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Sent,
        Outcome::RateLimited,
        Outcome::Transient,
        Outcome::Permanent,
        Outcome::Replayed,
    ];

    /// The stored name, also the metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::RateLimited => "rate_limited",
            Outcome::Transient => "transient",
            Outcome::Permanent => "permanent",
            Outcome::Replayed => "replayed",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One send attempt, as dead letters and `track` show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The response body, trimmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
}

impl Attempt {
    /// The replay marker, made at `at`; `reason` is why the job had been dead-lettered, kept
    /// in `error` so the history still says it once the dead letter is gone.
    pub fn replayed(at: OffsetDateTime, reason: &str) -> Attempt {
        Attempt {
            at,
            outcome: Outcome::Replayed,
            status: None,
            error: Some(format!("dead-lettered: {reason}")),
            body: None,
            consumer: None,
        }
    }

    /// True for a real send, false for a replay marker.
    pub fn is_send(&self) -> bool {
        self.outcome != Outcome::Replayed
    }
}
