//! Whether and when to try a send again: a pure function of the send's outcome, the job's
//! history and the policy. No I/O, no clock, and the jitter is passed in, so every branch is
//! tested with a table.
//!
//! The same classification ([`SendOutcome`]) drives the retry decision, the shared cool-down
//! after a 429 and the metric labels.

use std::time::Duration;

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
        error: String,
        body: String,
    },
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
                    error: format!(
                        "result false: {}",
                        response.message.as_deref().unwrap_or("no message")
                    ),
                    body: body_trimmed,
                },
                // A 2xx we cannot read may still have queued the message; retrying could
                // send it twice, dead-lettering loses nothing an operator cannot replay.
                Err(err) => SendOutcome::Permanent {
                    status,
                    error: format!("unreadable success body: {err}"),
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
                error: format!("HTTP {status}"),
                body: body_trimmed,
            },
        }
    }

    /// A short, low-cardinality label for metrics and attempt records.
    pub fn label(&self) -> &'static str {
        match self {
            SendOutcome::Sent { .. } => "sent",
            SendOutcome::RateLimited { .. } => "rate_limited",
            SendOutcome::Transient { .. } => "transient",
            SendOutcome::Permanent { .. } => "permanent",
        }
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
}

/// What to do with a job after a send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Record it as sent and acknowledge it.
    Done { message_id: Option<String> },
    /// Put it in the delayed set for `delay`.
    RetryAfter { delay: Duration },
    /// Dead-letter it with this reason.
    Dead { reason: String },
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
                // Honour the server; a little jitter keeps replicas from returning in step.
                Some(after) => *after + backoff(1, policy, jitter).min(Duration::from_secs(1)),
                None => backoff(rate_limits, policy, jitter),
            };
            Verdict::RetryAfter { delay }
        }
        SendOutcome::Transient { error, .. } if failures >= policy.max_attempts => Verdict::Dead {
            reason: format!("exhausted: {failures} attempts failed, last: {error}"),
        },
        SendOutcome::Transient { .. } => Verdict::RetryAfter {
            delay: backoff(failures, policy, jitter),
        },
        SendOutcome::Permanent {
            status,
            error,
            body,
        } => Verdict::Dead {
            reason: if error.starts_with("HTTP") {
                format!("permanent: HTTP {status}: {body}")
            } else {
                format!("permanent: {error}")
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
            error: "HTTP 400".into(),
            body: "Invalid template".into(),
        };
        let rejected = SendOutcome::Permanent {
            status: 200,
            error: "result false: nope".into(),
            body: String::new(),
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
            decide(&transient, 3, 0, &POLICY, 0.5),
            Verdict::Dead {
                reason: "exhausted: 3 attempts failed, last: HTTP 503".into()
            }
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
        assert_eq!(
            decide(&permanent, 1, 0, &POLICY, 0.5),
            Verdict::Dead {
                reason: "permanent: HTTP 400: Invalid template".into()
            }
        );
        assert_eq!(
            decide(&rejected, 1, 0, &POLICY, 0.5),
            Verdict::Dead {
                reason: "permanent: result false: nope".into()
            }
        );
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
