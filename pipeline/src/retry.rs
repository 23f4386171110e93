//! Whether and when to try a send again: a pure function of the send's outcome, the job's
//! history and the policy. No I/O, no clock, and the jitter is passed in, so every branch is
//! tested with a table.
//!
//! The same classification ([`SendOutcome`]) drives the retry decision, the shared cool-down
//! after a 429 and the metric labels.

use std::fmt;
use std::time::Duration;

use herald_shared::job::Outcome;
use herald_store::dead_letter::DeadReason;

/// What one HTTP send to Interakt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// 200 with `result: true`: Interakt queued it under `message_id`.
    Sent { message_id: Option<String> },
    /// 429: over the plan's limit. Never counts against the job's failure attempts.
    RateLimited {
        retry_after: Option<Duration>,
        body: String,
    },
    /// 5xx, 408, a timeout or a connection error: worth retrying.
    Transient {
        status: Option<u16>,
        error: String,
        body: String,
    },
    /// 4xx other than 408/429, or `result: false`: sending it again would fail again.
    Permanent {
        status: u16,
        refusal: Refusal,
        body: String,
    },
}

/// How Interakt refused a send for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A 4xx status: the body says why.
    Status,
    /// 2xx with `result: false` and Interakt's message.
    ResultFalse { message: String },
    /// 2xx whose body does not read as Interakt's answer. It may still have queued the
    /// message, so it is not retried (that could send it twice).
    UnreadableBody { error: String },
    /// 2xx whose body was lost on the way; for the same reason, not retried.
    BodyLost { error: String },
    /// 2xx whose body is longer than `limit` bytes, the most read of an answer
    /// ([`crate::sender::MAX_ANSWER`]): not Interakt's answer, and for the same reason,
    /// not retried.
    TooLarge { limit: usize },
}

impl Refusal {
    /// The dead letter's detail: the status and body for a 4xx, Interakt's words otherwise.
    fn detail(&self, status: u16, body: &str) -> String {
        match self {
            Refusal::Status => format!("HTTP {status}: {body}"),
            other => other.describe(status).to_string(),
        }
    }

    fn describe(&self, status: u16) -> Described<'_> {
        Described(self, status)
    }
}

/// A refusal as one phrase (`HTTP 400`, `result false: Invalid template`).
struct Described<'a>(&'a Refusal, u16);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Refusal::Status => write!(f, "HTTP {}", self.1),
            Refusal::ResultFalse { message } => write!(f, "result false: {message}"),
            Refusal::UnreadableBody { error } => write!(f, "unreadable success body: {error}"),
            Refusal::BodyLost { error } => write!(f, "success body lost: {error}"),
            Refusal::TooLarge { limit } => write!(
                f,
                "success body longer than {limit} bytes, the most read of an answer"
            ),
        }
    }
}

impl SendOutcome {
    /// Classifies an HTTP answer. `body` is the response body as text.
    pub fn from_response(status: u16, retry_after: Option<Duration>, body: &str) -> SendOutcome {
        let body_trimmed = trim_body(body);
        match status {
            200..=299 => match serde_json::from_str::<herald_shared::wire::SendResponse>(body) {
                Ok(response) if response.result => SendOutcome::Sent {
                    message_id: response.id,
                },
                Ok(response) => SendOutcome::Permanent {
                    status,
                    refusal: Refusal::ResultFalse {
                        message: response.message.unwrap_or_else(|| "no message".into()),
                    },
                    body: body_trimmed,
                },
                // A 2xx we cannot read may still have queued the message; retrying could
                // send it twice, dead-lettering loses nothing an operator cannot replay.
                Err(err) => SendOutcome::Permanent {
                    status,
                    refusal: Refusal::UnreadableBody {
                        error: err.to_string(),
                    },
                    body: body_trimmed,
                },
            },
            429 => SendOutcome::RateLimited {
                retry_after,
                body: body_trimmed,
            },
            408 | 500..=599 => SendOutcome::Transient {
                status: Some(status),
                error: format!("HTTP {status}"),
                body: body_trimmed,
            },
            _ => SendOutcome::Permanent {
                status,
                refusal: Refusal::Status,
                body: body_trimmed,
            },
        }
    }

    /// What the attempt is recorded as, and its metric label.
    pub fn kind(&self) -> Outcome {
        match self {
            SendOutcome::Sent { .. } => Outcome::Sent,
            SendOutcome::RateLimited { .. } => Outcome::RateLimited,
            SendOutcome::Transient { .. } => Outcome::Transient,
            SendOutcome::Permanent { .. } => Outcome::Permanent,
        }
    }

    /// A short, low-cardinality label for metrics and logs ([`Outcome::as_str`]).
    pub fn label(&self) -> &'static str {
        self.kind().as_str()
    }

    /// What went wrong, in a phrase (`HTTP 503`, `rate limited`); `None` for a send.
    pub fn error(&self) -> Option<String> {
        match self {
            SendOutcome::Sent { .. } => None,
            SendOutcome::RateLimited { .. } => Some("rate limited".into()),
            SendOutcome::Transient { error, .. } => Some(error.clone()),
            SendOutcome::Permanent {
                status, refusal, ..
            } => Some(refusal.describe(*status).to_string()),
        }
    }

    /// The response body kept with the attempt, if there was one.
    pub fn body(&self) -> Option<&str> {
        match self {
            SendOutcome::Sent { .. } => None,
            SendOutcome::RateLimited { body, .. }
            | SendOutcome::Transient { body, .. }
            | SendOutcome::Permanent { body, .. } => (!body.is_empty()).then_some(body.as_str()),
        }
    }

    /// Whether Interakt answered with a 2xx (whatever the body said): its rate limit let
    /// the request through.
    pub fn is_2xx(&self) -> bool {
        self.status()
            .is_some_and(|status| (200..300).contains(&status))
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            SendOutcome::Sent { .. } => Some(200),
            SendOutcome::RateLimited { .. } => Some(429),
            SendOutcome::Transient { status, .. } => *status,
            SendOutcome::Permanent { status, .. } => Some(*status),
        }
    }
}

/// The most of a response body kept in attempts and dead letters.
pub const BODY_LIMIT: usize = 512;

/// Trims a body to [`BODY_LIMIT`] characters for storage.
pub fn trim_body(body: &str) -> String {
    let mut out: String = body.chars().take(BODY_LIMIT).collect();
    if body.chars().count() > BODY_LIMIT {
        out.push('…');
    }
    out
}

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Failed (transient) attempts after which a job is dead-lettered.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The longest a rate-limited job waits before it is read again (Retry-After is
    /// clamped to it): `--max-cooldown`, or `--probe-interval` when shorter, since a longer
    /// pause is probed and may end at the next probe (the job then waits in hand for its
    /// token, not in the delayed set).
    pub max_cooldown: Duration,
}

/// What to do with a job after a send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Record it as sent and acknowledge it.
    Done { message_id: Option<String> },
    /// Put it in the delayed set for `delay`.
    RetryAfter { delay: Duration },
    /// Dead-letter it with this reason.
    Dead { reason: DeadReason },
}

/// Decides a job's fate. `failures` counts transient failures including this one;
/// `rate_limits` counts 429s including this one. `jitter` is uniform in `[0, 1)`.
pub fn decide(
    outcome: &SendOutcome,
    failures: u32,
    rate_limits: u32,
    policy: &RetryPolicy,
    jitter: f64,
) -> Verdict {
    match outcome {
        SendOutcome::Sent { message_id } => Verdict::Done {
            message_id: message_id.clone(),
        },
        SendOutcome::RateLimited { retry_after, .. } => {
            let delay = match retry_after {
                // Honour the server, up to the cap; a little jitter keeps replicas from
                // returning in step.
                Some(after) => {
                    (*after).min(policy.max_cooldown)
                        + backoff(1, policy, jitter).min(Duration::from_secs(1))
                }
                None => backoff(rate_limits, policy, jitter).min(policy.max_cooldown),
            };
            Verdict::RetryAfter { delay }
        }
        SendOutcome::Transient { error, .. } if failures >= policy.max_attempts => Verdict::Dead {
            reason: DeadReason::Exhausted {
                attempts: failures,
                last: error.clone(),
            },
        },
        SendOutcome::Transient { .. } => Verdict::RetryAfter {
            delay: backoff(failures, policy, jitter),
        },
        SendOutcome::Permanent {
            status,
            refusal,
            body,
        } => Verdict::Dead {
            reason: DeadReason::Permanent {
                detail: refusal.detail(*status, body),
            },
        },
    }
}

/// Exponential backoff with full jitter: uniform in `[0, min(max, base * 2^(attempt-1)))`,
/// never below a millisecond.
pub fn backoff(attempt: u32, policy: &RetryPolicy, jitter: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let ceiling = policy
        .backoff_base
        .saturating_mul(1u32 << exp)
        .min(policy.backoff_max);
    ceiling
        .mul_f64(jitter.clamp(0.0, 1.0))
        .max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        backoff_base: Duration::from_secs(1),
        backoff_max: Duration::from_secs(10),
        max_cooldown: Duration::from_secs(30),
    };

    #[test]
    fn responses_are_classified() {
        let ok = r#"{"result":true,"message":"queued","id":"abc"}"#;
        let cases: Vec<(u16, &str, &str)> = vec![
            (200, ok, "sent"),
            (
                200,
                r#"{"result":false,"message":"Invalid template"}"#,
                "permanent",
            ),
            (200, "not json", "permanent"),
            (429, "{}", "rate_limited"),
            (500, "", "transient"),
            (502, "", "transient"),
            (503, "", "transient"),
            (408, "", "transient"),
            (400, "bad", "permanent"),
            (401, "", "permanent"),
            (403, "", "permanent"),
            (404, "", "permanent"),
            (422, "", "permanent"),
        ];
        for (status, body, label) in cases {
            assert_eq!(
                SendOutcome::from_response(status, None, body).label(),
                label,
                "{status} {body}"
            );
        }
        assert_eq!(
            SendOutcome::from_response(200, None, ok),
            SendOutcome::Sent {
                message_id: Some("abc".into())
            }
        );
    }

    #[test]
    fn verdicts_follow_the_outcome() {
        let transient = SendOutcome::Transient {
            status: Some(503),
            error: "HTTP 503".into(),
            body: String::new(),
        };
        let limited = |after| SendOutcome::RateLimited {
            retry_after: after,
            body: String::new(),
        };
        let permanent = SendOutcome::Permanent {
            status: 400,
            refusal: Refusal::Status,
            body: "Invalid template".into(),
        };
        let rejected = SendOutcome::Permanent {
            status: 200,
            refusal: Refusal::ResultFalse {
                message: "nope".into(),
            },
            body: String::new(),
        };
        let dead = |verdict: Verdict| match verdict {
            Verdict::Dead { reason } => reason.to_string(),
            other => panic!("not dead: {other:?}"),
        };

        assert_eq!(
            decide(&transient, 1, 0, &POLICY, 0.5),
            Verdict::RetryAfter {
                delay: Duration::from_millis(500)
            }
        );
        assert_eq!(
            decide(&transient, 2, 0, &POLICY, 0.5),
            Verdict::RetryAfter {
                delay: Duration::from_secs(1)
            }
        );
        assert_eq!(
            dead(decide(&transient, 3, 0, &POLICY, 0.5)),
            "exhausted: 3 attempts failed, last: HTTP 503"
        );
        // 429s never exhaust the failure budget, however many.
        assert!(matches!(
            decide(&limited(None), 0, 50, &POLICY, 0.5),
            Verdict::RetryAfter { .. }
        ));
        assert_eq!(
            decide(&limited(Some(Duration::from_secs(7))), 0, 1, &POLICY, 0.0),
            Verdict::RetryAfter {
                delay: Duration::from_millis(7001)
            }
        );
        // A huge Retry-After (a proxy's hour, a hostile 10^8 s) is clamped to --max-cooldown.
        for huge in [3_600, 100_000_000, u64::MAX / 4] {
            assert_eq!(
                decide(
                    &limited(Some(Duration::from_secs(huge))),
                    0,
                    1,
                    &POLICY,
                    0.0
                ),
                Verdict::RetryAfter {
                    delay: Duration::from_millis(30_001)
                },
                "Retry-After: {huge}"
            );
        }
        // Without Retry-After, however many 429s: at most the cap too.
        assert!(matches!(
            decide(&limited(None), 0, 30, &POLICY, 0.999),
            Verdict::RetryAfter { delay } if delay <= Duration::from_secs(30)
        ));
        assert_eq!(
            dead(decide(&permanent, 1, 0, &POLICY, 0.5)),
            "permanent: HTTP 400: Invalid template"
        );
        assert_eq!(
            dead(decide(&rejected, 1, 0, &POLICY, 0.5)),
            "permanent: result false: nope"
        );
        assert_eq!(rejected.error().as_deref(), Some("result false: nope"));
        assert_eq!(permanent.error().as_deref(), Some("HTTP 400"));
    }

    #[test]
    fn backoff_is_exponential_capped_and_fully_jittered() {
        let ceilings: Vec<_> = (1..=6)
            .map(|a| backoff(a, &POLICY, 0.999_999_9).as_millis())
            .collect();
        assert_eq!(ceilings, [999, 1999, 3999, 7999, 9999, 9999]);
        assert_eq!(backoff(4, &POLICY, 0.0), Duration::from_millis(1));
        assert_eq!(backoff(4, &POLICY, 0.25), Duration::from_secs(2));
        assert_eq!(backoff(u32::MAX, &POLICY, 0.5), Duration::from_secs(5));
    }

    #[test]
    fn bodies_are_trimmed() {
        assert_eq!(trim_body("short"), "short");
        let long = "é".repeat(BODY_LIMIT + 10);
        assert_eq!(trim_body(&long).chars().count(), BODY_LIMIT + 1);
    }
}
