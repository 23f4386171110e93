//! The dead letter: a job Herald gave up on, with everything an operator needs to decide
//! what to do: the original job and its attempt history, the final reason, and who gave up.
//!
//! Why a job died is a [`DeadReason`] where it is decided (the worker's triage and retry
//! decision); its [`DeadKind`] is what metrics, filters and dashboards match on, and its
//! text is what people read. Both are stored, so neither is ever parsed back out of the
//! other (except for letters stored before kinds existed: [`DeadLetter::kind`]).

use std::fmt;

use herald_shared::{Job, Lane};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One dead letter, stored as JSON in the dead-letter hash under its job id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The job's id, or `entry:<stream id>` for an entry that is not a job.
    pub job_id: String,
    pub lane: Lane,
    /// Why, for people: `expired`, `permanent: HTTP 400: ...`, `exhausted: 8 attempts failed,
    /// ...`, `poison: delivered 6 times`, `undecodable: ...`, `invalid: ...`
    /// ([`DeadReason`]'s text).
    pub reason: String,
    /// Why, for programs: absent in letters stored before it existed (see [`Self::kind`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<DeadKind>,
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

impl DeadLetter {
    /// A dead letter for `reason`, text and kind together.
    pub fn new(
        job_id: String,
        lane: Lane,
        reason: &DeadReason,
        consumer: String,
        dead_at: OffsetDateTime,
    ) -> DeadLetter {
        DeadLetter {
            job_id,
            lane,
            reason: reason.to_string(),
            kind: Some(reason.kind()),
            consumer,
            dead_at,
            job: None,
            raw: None,
        }
    }

    /// Why, as a kind. Letters stored before kinds were recorded carry only the text, whose
    /// first word has always been the kind's name; anything else is [`DeadKind::Unknown`].
    pub fn kind(&self) -> DeadKind {
        self.kind
            .unwrap_or_else(|| DeadKind::from_legacy_reason(&self.reason))
    }
}

/// An entry that did not decode, as a dead letter keeps it: its shape without its values.
/// JSON keeps its keys, with every string, number and boolean replaced by its type
/// (`{"code":"<number>"}`), so an operator sees what was wrong and no secret (an OTP's code,
/// a phone number) is kept or shown; anything else is only measured.
pub fn redact_raw(raw: &str) -> String {
    const PLACEHOLDERS: [&str; 3] = ["<string>", "<number>", "<bool>"];
    fn shape(value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::Null => Value::Null,
            Value::Bool(_) => Value::from("<bool>"),
            Value::Number(_) => Value::from("<number>"),
            // Already a placeholder: redacting twice changes nothing.
            Value::String(s) if PLACEHOLDERS.contains(&s.as_str()) => Value::from(s.as_str()),
            Value::String(_) => Value::from("<string>"),
            Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, value)| (key.clone(), shape(value)))
                    .collect(),
            ),
        }
    }
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(value) => shape(&value).to_string(),
        Err(_) => format!("[{} bytes, not JSON; not kept]", raw.len()),
    }
}

/// Why a job was dead-lettered, as decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeadReason {
    /// Its deadline (`not_after`) passed before it could be sent; `before_retry` when a retry
    /// would have come after it.
    Expired {
        deadline: Option<OffsetDateTime>,
        before_retry: bool,
    },
    /// Interakt refused it in a way that would repeat (`HTTP 400: <body>`, `result false:
    /// ...`).
    Permanent { detail: String },
    /// Every failed attempt the policy allows was used; `last` is the last failure.
    Exhausted { attempts: u32, last: String },
    /// Delivered this many times without ever being settled (it keeps crashing or stalling
    /// its consumer).
    Poison { deliveries: u64 },
    /// The stream entry is not a job.
    Undecodable { detail: String },
    /// The job renders into a request Interakt would refuse.
    Invalid { detail: String },
}

impl DeadReason {
    pub fn kind(&self) -> DeadKind {
        match self {
            DeadReason::Expired { .. } => DeadKind::Expired,
            DeadReason::Permanent { .. } => DeadKind::Permanent,
            DeadReason::Exhausted { .. } => DeadKind::Exhausted,
            DeadReason::Poison { .. } => DeadKind::Poison,
            DeadReason::Undecodable { .. } => DeadKind::Undecodable,
            DeadReason::Invalid { .. } => DeadKind::Invalid,
        }
    }
}

/// The text stored and shown; it starts with the kind's name.
impl fmt::Display for DeadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeadReason::Expired {
                deadline,
                before_retry,
            } => {
                f.write_str("expired")?;
                if let Some(deadline) = deadline.and_then(|d| d.format(&Rfc3339).ok()) {
                    write!(f, ": deadline {deadline} passed before it could be sent")?;
                }
                if *before_retry {
                    f.write_str(" (a retry would come after it)")?;
                }
                Ok(())
            }
            DeadReason::Permanent { detail } => write!(f, "permanent: {detail}"),
            DeadReason::Exhausted { attempts, last } => {
                write!(f, "exhausted: {attempts} attempts failed, last: {last}")
            }
            DeadReason::Poison { deliveries } => {
                write!(
                    f,
                    "poison: delivered {deliveries} times without being settled"
                )
            }
            DeadReason::Undecodable { detail } => write!(f, "undecodable: {detail}"),
            DeadReason::Invalid { detail } => write!(f, "invalid: {detail}"),
        }
    }
}

/// The kind of a dead letter: the metric label (`herald_jobs_dead_total{reason=...}`), the
/// filter operators pick, the field dashboards group by. Stored by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadKind {
    Expired,
    Permanent,
    Exhausted,
    Poison,
    Undecodable,
    Invalid,
    /// A letter stored before kinds existed whose text names none of the above.
    Unknown,
}

impl DeadKind {
    pub const ALL: [DeadKind; 7] = [
        DeadKind::Expired,
        DeadKind::Permanent,
        DeadKind::Exhausted,
        DeadKind::Poison,
        DeadKind::Undecodable,
        DeadKind::Invalid,
        DeadKind::Unknown,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DeadKind::Expired => "expired",
            DeadKind::Permanent => "permanent",
            DeadKind::Exhausted => "exhausted",
            DeadKind::Poison => "poison",
            DeadKind::Undecodable => "undecodable",
            DeadKind::Invalid => "invalid",
            DeadKind::Unknown => "unknown",
        }
    }

    /// The kind of a letter stored before kinds were: its reason's first word.
    pub(crate) fn from_legacy_reason(reason: &str) -> DeadKind {
        let first = reason.split([':', ' ']).next().unwrap_or_default();
        DeadKind::ALL
            .into_iter()
            .find(|kind| *kind != DeadKind::Unknown && kind.as_str() == first)
            .unwrap_or(DeadKind::Unknown)
    }
}

impl fmt::Display for DeadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    /// The texts are what operators grep and what `dlq replay --reason` matches: they stay
    /// exactly as they were when reasons were strings.
    #[test]
    fn reasons_read_as_they_always_did_and_start_with_their_kind() {
        let cases = [
            (
                DeadReason::Expired {
                    deadline: None,
                    before_retry: false,
                },
                "expired",
            ),
            (
                DeadReason::Expired {
                    deadline: Some(at("2026-11-24T10:30:00Z")),
                    before_retry: true,
                },
                "expired: deadline 2026-11-24T10:30:00Z passed before it could be sent (a retry would come after it)",
            ),
            (
                DeadReason::Permanent {
                    detail: "HTTP 400: Invalid template".into(),
                },
                "permanent: HTTP 400: Invalid template",
            ),
            (
                DeadReason::Exhausted {
                    attempts: 8,
                    last: "HTTP 503".into(),
                },
                "exhausted: 8 attempts failed, last: HTTP 503",
            ),
            (
                DeadReason::Poison { deliveries: 6 },
                "poison: delivered 6 times without being settled",
            ),
            (
                DeadReason::Undecodable {
                    detail: "missing field `kind`".into(),
                },
                "undecodable: missing field `kind`",
            ),
            (
                DeadReason::Invalid {
                    detail: "phone: too short".into(),
                },
                "invalid: phone: too short",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
            let letter = DeadLetter::new(
                "j".into(),
                Lane::Otp,
                &reason,
                "w1".into(),
                OffsetDateTime::UNIX_EPOCH,
            );
            assert_eq!(letter.kind(), reason.kind());
            assert!(text.starts_with(reason.kind().as_str()), "{text}");
        }
    }

    #[test]
    fn letters_stored_before_kinds_existed_still_have_one() {
        let stored = r#"{"job_id":"entry:1-0","lane":"otp","reason":"poison: delivered 6 times","consumer":"w1","dead_at":"2026-11-24T10:30:00Z"}"#;
        let letter: DeadLetter = serde_json::from_str(stored).unwrap();
        assert_eq!(letter.kind, None);
        assert_eq!(letter.kind(), DeadKind::Poison);
        let odd: DeadLetter =
            serde_json::from_str(&stored.replace("poison: delivered", "gone away")).unwrap();
        assert_eq!(odd.kind(), DeadKind::Unknown);
        assert_eq!(
            serde_json::to_string(&letter).unwrap(),
            stored,
            "re-stored unchanged"
        );
    }

    #[test]
    fn raw_entries_keep_their_shape_and_lose_their_values() {
        let raw = r#"{"kind":"otp","payload":{"phone":"+919000000001","code":731904,"ok":true}}"#;
        let kept = redact_raw(raw);
        assert_eq!(
            kept,
            r#"{"kind":"<string>","payload":{"phone":"<string>","code":"<number>","ok":"<bool>"}}"#
        );
        assert_eq!(redact_raw(&kept), kept, "redacting twice changes nothing");
        let text = redact_raw("code 731904 for +919000000001");
        assert!(
            !text.contains("731904") && !text.contains("9000000001"),
            "{text}"
        );
    }

    #[test]
    fn decode_errors_keep_the_path_and_lose_the_value() {
        let job = herald_shared::Job::otp(
            "+919000000001",
            "731904",
            std::time::Duration::from_secs(60),
        )
        .unwrap()
        .to_json();
        let raw = job.replace(r#""731904""#, "731904");
        assert_ne!(raw, job, "the code is now a JSON integer");
        let err = herald_shared::Job::from_json(raw.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("731904"), "serde quotes it: {err}");
        let kept = err.without_values();
        assert!(!kept.contains("731904"), "{kept}");
        assert!(kept.starts_with("payload"), "the path stays: {kept}");
    }
}
