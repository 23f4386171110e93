//! [`JobSpec`]: a job as callers write it in JSON, one per bulk line (and, later, one per
//! HTTP request body).
//!
//! ```json
//! {"kind":"otp","phone":"+919999999999","code":"123456","valid_for":"10m","idempotency_key":"login:42"}
//! {"kind":"booking","phone":"+919999999999","booking_id":"B1","service":"Haircut","date":"2026-11-24","time":"10:30","image_url":"https://..."}
//! {"kind":"reminder","phone":"+919999999999","booking_id":"B1","service":"Haircut","date":"2026-11-24","time":"10:30","before":"2h","tz":"Asia/Kolkata"}
//! {"kind":"raw","request":{"countryCode":"+91","phoneNumber":"9999999999","type":"STANDALONE_CAROUSEL","message":{...}}}
//! ```
//!
//! Every kind may carry a `replace_key`; every kind but OTPs may carry `send_at` (RFC 3339
//! with an offset) or `send_in` (`2h`), and `not_after`; a reminder may say `before` (`2h`
//! before its appointment). Bookings and reminders name their appointment's time zone with
//! `tz` (default: `HERALD_TIMEZONE`, else Asia/Kolkata), which also gives their default
//! `not_after`: the appointment's start.
//!
//! This module owns the format and its decoding, with errors that name the field; turning a
//! spec into a [`Job`] is the shared model's validation ([`JobSpec::into_job_in`]). It never
//! talks to Redis.

mod kinds;
mod timing;

pub use kinds::{BookingSpec, OtpSpec, RawSpec, ReminderSpec};
pub use timing::Timing;

use herald_shared::job::{DEFAULT_OTP_VALIDITY, Job};
use herald_shared::schedule::Zone;
use herald_shared::validate::ValidationError;
use herald_shared::wire::{self, DecodeError};
use serde::{Deserialize, Serialize};

/// One job, as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobSpec {
    Otp(OtpSpec),
    Booking(BookingSpec),
    Reminder(ReminderSpec),
    Raw(RawSpec),
}

/// Why a spec did not become a job.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Not JSON, or not the shape above. Names the field path, or says the whole line is
    /// wrong when no field is to blame.
    #[error("{}", describe(.0))]
    Malformed(DecodeError),
    /// Well-formed, but breaks the shared model's rules.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

impl From<DecodeError> for SpecError {
    fn from(err: DecodeError) -> Self {
        SpecError::Malformed(err)
    }
}

const KINDS: &str = "expected \"otp\", \"booking\", \"reminder\" or \"raw\"";

impl JobSpec {
    /// Decodes one spec, naming the field path of whatever does not fit
    /// (`request.message.richCardDetails.standalone.cardOrientation: unknown variant ...`).
    ///
    /// serde's internally tagged enums lose the path inside the variant, so the `kind` is
    /// read first and the rest decoded as that variant's struct.
    pub fn from_json(json: &[u8]) -> Result<JobSpec, DecodeError> {
        let malformed = |path: &str, reason: String| DecodeError {
            path: path.into(),
            reason,
        };
        let value: serde_json::Value = serde_json::from_slice(json)
            .map_err(|err| malformed(".", format!("not JSON ({err})")))?;
        JobSpec::from_value(value)
    }

    /// [`JobSpec::from_json`] for a value already parsed (an item of a batch array).
    pub fn from_value(value: serde_json::Value) -> Result<JobSpec, DecodeError> {
        let malformed = |path: &str, reason: String| DecodeError {
            path: path.into(),
            reason,
        };
        let serde_json::Value::Object(mut fields) = value else {
            return Err(malformed(
                ".",
                "must be a JSON object with a \"kind\"".into(),
            ));
        };
        let kind = match fields.remove("kind") {
            Some(serde_json::Value::String(kind)) => kind,
            Some(other) => return Err(malformed("kind", format!("is {other}; {KINDS}"))),
            None => return Err(malformed("kind", format!("is missing; {KINDS}"))),
        };
        let rest = serde_json::Value::Object(fields);
        match kind.as_str() {
            "otp" => wire::decode_value(rest).map(JobSpec::Otp),
            "booking" => wire::decode_value(rest).map(JobSpec::Booking),
            "reminder" => wire::decode_value(rest).map(JobSpec::Reminder),
            "raw" => wire::decode_value(rest).map(JobSpec::Raw),
            other => Err(malformed("kind", format!("is {other:?}; {KINDS}"))),
        }
    }

    /// Decodes and validates: the job this JSON describes (appointments in the default
    /// time zone).
    pub fn parse(json: &[u8]) -> Result<Job, SpecError> {
        Ok(JobSpec::from_json(json)?.into_job()?)
    }

    /// [`JobSpec::into_job_in`] with appointments in [`schedule::DEFAULT_TIMEZONE`].
    pub fn into_job(self) -> Result<Job, ValidationError> {
        self.into_job_in(&Zone::default())
    }

    /// Validates the spec with the shared model and builds its job; a booking's or
    /// reminder's appointment is in its `tz`, else in `zone`.
    pub fn into_job_in(self, zone: &Zone) -> Result<Job, ValidationError> {
        if let JobSpec::Otp(OtpSpec { phone, .. })
        | JobSpec::Booking(BookingSpec { phone, .. })
        | JobSpec::Reminder(ReminderSpec { phone, .. }) = &self
        {
            check_e164(phone)?;
        }
        match self {
            JobSpec::Otp(otp) => {
                let job = Job::otp(
                    &otp.phone,
                    otp.code.expose(),
                    otp.valid_for.unwrap_or(DEFAULT_OTP_VALIDITY),
                )?;
                let timing = Timing {
                    send_at: otp.send_at.as_deref(),
                    send_in: otp.send_in,
                    ..Timing::default()
                };
                timing
                    .apply(job, zone)?
                    .with_idempotency_key(otp.idempotency_key)?
                    .with_replace_key(otp.replace_key)?
                    .with_tenant("tenant", otp.tenant.as_deref())
            }
            JobSpec::Booking(b) => {
                let zone = spec_zone(b.tz.as_deref(), zone)?;
                let booking = b.booking();
                let timing = Timing {
                    send_at: b.send_at.as_deref(),
                    send_in: b.send_in,
                    not_after: b.not_after.as_deref(),
                    before: None,
                };
                timing
                    .apply(Job::booking_in(booking, &zone)?, &zone)?
                    .with_idempotency_key(b.idempotency_key)?
                    .with_replace_key(b.replace_key)?
                    .with_tenant("tenant", b.tenant.as_deref())
            }
            JobSpec::Reminder(r) => {
                let zone = spec_zone(r.tz.as_deref(), zone)?;
                let booking = r.booking();
                let timing = Timing {
                    send_at: r.send_at.as_deref(),
                    send_in: r.send_in,
                    not_after: r.not_after.as_deref(),
                    before: r.before,
                };
                timing
                    .apply(Job::reminder(booking, &zone)?, &zone)?
                    .with_idempotency_key(r.idempotency_key)?
                    .with_replace_key(r.replace_key)?
                    .with_tenant("tenant", r.tenant.as_deref())
            }
            JobSpec::Raw(raw) => {
                let timing = Timing {
                    send_at: raw.send_at.as_deref(),
                    send_in: raw.send_in,
                    not_after: raw.not_after.as_deref(),
                    before: None,
                };
                timing
                    .apply(Job::raw(*raw.request)?, zone)?
                    .with_idempotency_key(raw.idempotency_key)?
                    .with_replace_key(raw.replace_key)?
                    .with_tenant("tenant", raw.tenant.as_deref())?
                    .with_lane("lane", raw.lane)
            }
        }
    }
}

/// The spec's own `tz`, else the caller's default.
fn spec_zone(tz: Option<&str>, default: &Zone) -> Result<Zone, ValidationError> {
    match tz {
        Some(name) => Zone::named(name).map_err(|reason| ValidationError::single("tz", reason)),
        None => Ok(default.clone()),
    }
}

/// A spec's phone is E.164 exactly, as the document's pattern says: a `+` and digits, no spaces
/// or separators (the CLI's `--phone` drops them before: `herald_shared::phone::typed_number`;
/// JSON is written by programs). Whether
/// the number is valid for its country is the shared model's check, after this one.
fn check_e164(phone: &str) -> Result<(), ValidationError> {
    let digits = phone.strip_prefix('+').unwrap_or("");
    if (2..=15).contains(&digits.len())
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Ok(());
    }
    Err(ValidationError::single(
        "phone",
        "must be in E.164 form with a leading '+' and country code, digits only (no spaces), e.g. +919999999999",
    ))
}

/// `path: reason`, or the reason alone when it is about the whole value.
fn describe(err: &DecodeError) -> String {
    if err.path.is_empty() || err.path == "." {
        err.reason.clone()
    } else {
        format!("{}: {}", err.path, err.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/../shared/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn error(line: &str) -> String {
        match JobSpec::parse(line.as_bytes()) {
            Ok(job) => panic!("{line} was accepted as {job:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn each_kind_decodes_and_round_trips_through_serde() {
        let raw = fixture("request-curl-example-1.json");
        for line in [
            r#"{"kind":"otp","phone":"+919999999999","code":"123456","valid_for":"5m","idempotency_key":"login:1"}"#.to_string(),
            r#"{"kind":"booking","phone":"+919999999999","booking_id":"B1","service":"Haircut","date":"2026-11-24","time":"10:30","image_url":"https://example.com/a.png"}"#.to_string(),
            format!(r#"{{"kind":"raw","request":{raw}}}"#),
        ] {
            let spec = JobSpec::from_json(line.as_bytes()).unwrap();
            let derived: JobSpec = serde_json::from_str(&line).unwrap();
            assert_eq!(spec, derived);
            let again: JobSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
            assert_eq!(again, spec);
            spec.into_job().unwrap();
        }
    }

    #[test]
    fn otp_validity_defaults_and_parses() {
        let job = JobSpec::parse(br#"{"kind":"otp","phone":"+919999999999","code":"1"}"#).unwrap();
        assert_eq!(job.not_after, Some(job.created_at + DEFAULT_OTP_VALIDITY));
        let job = JobSpec::parse(
            br#"{"kind":"otp","phone":"+919999999999","code":"1","valid_for":"90s"}"#,
        )
        .unwrap();
        assert_eq!(
            job.not_after,
            Some(job.created_at + Duration::from_secs(90))
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("[1]", "must be a JSON object"),
            ("{", "not JSON"),
            (r#"{"phone":"+919999999999"}"#, "kind: is missing"),
            (r#"{"kind":"sms"}"#, "kind: is \"sms\""),
            (r#"{"kind":7}"#, "kind: is 7"),
            (
                r#"{"kind":"otp","phone":"12345","code":"1"}"#,
                "phone: must be in E.164 form",
            ),
            (
                r#"{"kind":"otp","phone":"+91 99999 99999","code":"1"}"#,
                "phone: must be in E.164 form with a leading '+' and country code, digits only",
            ),
            (
                r#"{"kind":"otp","phone":"+919999999999","code":"\u00a0123"}"#,
                "code: must be 1 to 30 letters or digits",
            ),
            (
                r#"{"kind":"booking","phone":"+919999999999","booking_id":" \t","service":"Haircut","date":"2026-11-24","time":"10:30"}"#,
                "booking_id: must not be empty",
            ),
            (
                r#"{"kind":"otp","phone":"+919999999999","code":"1","valid_for":"soon"}"#,
                "valid_for: \"soon\" is not a duration",
            ),
            (
                r#"{"kind":"otp","phone":"+919999999999","code":"1","extra":1}"#,
                "unknown field `extra`",
            ),
            (
                r#"{"kind":"otp","phone":"+919999999999"}"#,
                "missing field `code`",
            ),
            (
                r#"{"kind":"booking","phone":"+919999999999","booking_id":"B1","service":"Haircut","date":"24/11/2026","time":"10:30"}"#,
                "date: is \"24/11/2026\"",
            ),
            (
                r#"{"kind":"raw","request":{"countryCode":"+91","phoneNumber":"9999999999","type":"NOPE"}}"#,
                "request.type: unknown variant",
            ),
        ];
        for (line, expected) in cases {
            let err = error(line);
            assert!(
                err.contains(expected),
                "{line}\n  gave: {err}\n  want: {expected}"
            );
        }
    }

    #[test]
    fn the_code_stays_out_of_debug() {
        let spec = JobSpec::from_json(br#"{"kind":"otp","phone":"+919999999999","code":"987654"}"#)
            .unwrap();
        assert!(!format!("{spec:?}").contains("987654"));
    }
}
