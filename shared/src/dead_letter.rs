//! The dead letter: a job Herald gave up on, with everything an operator needs to decide
//! what to do: the original job and its attempt history, the final reason, and who gave up.

use crate::{Job, Lane};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One dead letter, stored as JSON in the dead-letter hash under its job id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The job's id, or `entry:<stream id>` for an entry that is not a job.
    pub job_id: String,
    pub lane: Lane,
    /// Why: `expired`, `permanent: HTTP 400: ...`, `exhausted: 8 attempts failed, ...`,
    /// `poison: delivered 6 times`, `undecodable: ...`, `invalid: ...`.
    pub reason: String,
    /// The consumer (replica) that gave up.
    pub consumer: String,
    #[serde(with = "time::serde::rfc3339")]
    pub dead_at: OffsetDateTime,
    /// The job, attempts included; absent when the entry did not decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<Job>,
    /// The entry as it was, when it did not decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}
