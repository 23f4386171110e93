//! The job envelope: what a producer puts on a lane and a worker takes off it.
//!
//! A job is self-describing JSON in one stream field. It carries what to send (an OTP, a
//! booking confirmation, a reminder, or a complete raw Interakt request), when it is due
//! (`send_at`, for a job scheduled to go out later), when it stops being worth sending
//! (`not_after`: an OTP's validity, a booking's or reminder's appointment), the idempotency
//! key it was enqueued under, the replace key that lets a newer job supersede it, and every
//! attempt made so far, which dead letters keep.
//!
//! OTP and booking jobs hold facts, not a rendered request: the worker renders them
//! ([`crate::compose`], [`Job::render`]) with its SMS fallback configuration, so a DLT change needs no
//! re-enqueue.
//!
//! A job's [`Fingerprint`] names its content (kind, recipient, payload) and nothing else, so
//! an idempotency key can tell a retry of the same message from a new message under the
//! same key. Deadlines are computed with checked arithmetic ([`deadline_after`]): no
//! duration, however large, panics.

mod attempt;
mod fingerprint;
mod lane;
pub mod payload;

pub use crate::schedule::{deadline_after, human};
pub use attempt::{Attempt, Outcome};
pub use fingerprint::Fingerprint;
pub use lane::{Lane, Tenant};
pub use payload::{
    Booking, DEFAULT_OTP_VALIDITY, ERASED_CODE, JobKind, MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_OTP_VALIDITY, MAX_OTP_VALIDITY_TEXT, Otp, Payload, Reminder,
};

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::compose::{self, SmsSettings};
use crate::phone::Phone;
use crate::schedule::{self, Zone};
use crate::secret::Redacted;
use crate::validate::{self, PhoneCheck, ValidationError, limits};
use crate::wire::SendRequest;

/// Now, to the millisecond (as precise as the job's UUIDv7 id): every copy of a job's times
/// (its stream entry, its record, its timeline) is stored 6 bytes shorter than to the
/// nanosecond.
fn now_to_the_millisecond() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_millisecond(now.millisecond())
        .expect("a millisecond of a valid time is valid")
}

/// One unit of work.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// UUID v7: time-ordered, so ids sort by enqueue time.
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Past this instant the job is dead-lettered as `expired` instead of sent.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_after: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// When a job scheduled to go out later is due; it waits in the scheduled set until
    /// then. `None`: due at once.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub send_at: Option<OffsetDateTime>,
    /// At most one unsent job per replace key: enqueuing this job cancelled the older unsent
    /// one under the same key (`otp:+919812345678`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_key: Option<String>,
    /// The business it is sent for; within a lane, tenants with a backlog are served in
    /// turn. `None`: [`Tenant::DEFAULT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Tenant>,
    /// The lane a raw job asked for (`--lane`); `None`: its kind's lane ([`Job::lane`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<Lane>,
    pub payload: Payload,
    /// The W3C trace context the job was created in (`traceparent`, and `tracestate` when
    /// there is one), carried as given so the worker and the webhook can link their spans to
    /// it ([`crate::traces`]). Never checked at enqueue: one that does not parse is ignored.
    /// Jobs of earlier releases have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    /// Every send attempt so far, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
}

impl Job {
    /// The request this job sends, as of `now` (a reminder says "today" or "tomorrow" where
    /// its customer is). `sms` is `None` when no DLT fallback is configured.
    pub fn render_at(&self, sms: Option<&SmsSettings>, now: OffsetDateTime) -> SendRequest {
        match &self.payload {
            Payload::Otp(otp) => {
                let valid_for = self.not_after.map(|deadline| deadline - self.created_at);
                compose::otp_request(otp, valid_for.and_then(|d| d.try_into().ok()), sms)
            }
            Payload::Booking(booking) => compose::booking_request(booking, sms),
            Payload::Reminder(reminder) => {
                let today = Zone::named(&reminder.tz)
                    .ok()
                    .and_then(|zone| zone.local_date(now));
                compose::reminder_request(reminder, today, sms)
            }
            Payload::Raw { request } => (**request).clone(),
        }
    }

    /// The request this job sends now: [`Job::render_at`] with the clock.
    pub fn render(&self, sms: Option<&SmsSettings>) -> SendRequest {
        self.render_at(sms, OffsetDateTime::now_utc())
    }

    fn new(payload: Payload) -> Job {
        Job {
            id: Uuid::now_v7(),
            created_at: now_to_the_millisecond(),
            not_after: None,
            idempotency_key: None,
            send_at: None,
            replace_key: None,
            tenant: None,
            lane: None,
            payload,
            traceparent: None,
            tracestate: None,
            attempts: Vec::new(),
        }
    }

    /// An OTP job; `valid_for` becomes its deadline.
    pub fn otp(phone: &str, code: &str, valid_for: Duration) -> Result<Job, ValidationError> {
        let phone = parse_phone("phone", phone)?;
        let code = code.trim_matches(is_json_whitespace);
        if code.is_empty()
            || code.chars().count() > limits::DLT_VARIABLE_CHARS
            || !code.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(ValidationError::single(
                "code",
                format!(
                    "must be 1 to {} letters or digits",
                    limits::DLT_VARIABLE_CHARS
                ),
            ));
        }
        if valid_for.is_zero() {
            return Err(ValidationError::single(
                "valid_for",
                "must be longer than zero",
            ));
        }
        if valid_for > MAX_OTP_VALIDITY {
            return Err(ValidationError::single(
                "valid_for",
                format!(
                    "is {}; the most is {MAX_OTP_VALIDITY_TEXT} (e.g. 10m)",
                    human(valid_for)
                ),
            ));
        }
        let mut job = Job::new(Payload::Otp(Otp {
            phone: phone.e164(),
            code: code.to_string().into(),
        }));
        job.not_after = Some(deadline_after(job.created_at, valid_for).ok_or_else(|| {
            ValidationError::single("valid_for", "ends past the year 9999; is the clock right?")
        })?);
        Ok(job)
    }

    /// A booking confirmation job, its appointment in the default time zone
    /// ([`schedule::DEFAULT_TIMEZONE`]): see [`Job::booking_in`].
    pub fn booking(booking: Booking) -> Result<Job, ValidationError> {
        Job::booking_in(booking, &Zone::default())
    }

    /// A booking confirmation job whose appointment is in `zone`; it is not sent after the
    /// appointment has started (`not_after`, which [`Job::with_not_after`] may change).
    pub fn booking_in(booking: Booking, zone: &Zone) -> Result<Job, ValidationError> {
        let booking = checked_booking(booking)?;
        // Rendering the card checks what the fields alone cannot: title length, media URL.
        // (The number was checked for its country above; the card's is only split again.)
        validate::validate_request_with(
            &compose::booking_request(&booking, None),
            PhoneCheck::Split,
        )?;
        let not_after = schedule::appointment(zone, &booking.date, &booking.time);
        let mut job = Job::new(Payload::Booking(booking));
        job.not_after = not_after;
        Ok(job)
    }

    /// A reminder of a booking whose appointment is in `zone`; not sent after the
    /// appointment has started. [`Job::scheduled`] says when it goes out (e.g. two hours
    /// before: [`Job::appointment`] minus the lead time).
    pub fn reminder(booking: Booking, zone: &Zone) -> Result<Job, ValidationError> {
        let reminder = Reminder {
            booking: checked_booking(booking)?,
            tz: zone.name().to_string(),
        };
        validate::validate_request_with(
            &compose::reminder_request(&reminder, None, None),
            PhoneCheck::Split,
        )?;
        let not_after = schedule::appointment(zone, &reminder.booking.date, &reminder.booking.time);
        let mut job = Job::new(Payload::Reminder(reminder));
        job.not_after = not_after;
        Ok(job)
    }

    /// The start of the appointment a booking or reminder is about, in its time zone
    /// (`zone` for a booking, which does not keep one); `None` for OTPs and raw requests.
    pub fn appointment(&self, zone: &Zone) -> Option<OffsetDateTime> {
        match &self.payload {
            Payload::Booking(b) => schedule::appointment(zone, &b.date, &b.time),
            Payload::Reminder(r) => {
                let zone = Zone::named(&r.tz).ok()?;
                schedule::appointment(&zone, &r.booking.date, &r.booking.time)
            }
            Payload::Otp(_) | Payload::Raw { .. } => None,
        }
    }
}

/// A booking's or reminder's fields, checked (each fills a card and a DLT SMS variable, so
/// each respects the SMS variable limit) and the phone normalized.
fn checked_booking(booking: Booking) -> Result<Booking, ValidationError> {
    let phone = parse_phone("phone", &booking.phone)?;
    let mut violations = Vec::new();
    let mut check = |field: &str, value: &str| {
        let len = value.chars().count();
        if value.chars().all(is_json_whitespace) {
            violations.push(validate::Violation {
                path: field.into(),
                reason: "must not be empty".into(),
            });
        } else if len > limits::DLT_VARIABLE_CHARS {
            violations.push(validate::Violation {
                path: field.into(),
                reason: format!(
                    "is {len} characters; the limit is {} (a DLT SMS variable)",
                    limits::DLT_VARIABLE_CHARS
                ),
            });
        }
    };
    check("booking_id", &booking.booking_id);
    check("service", &booking.service);
    check("date", &booking.date);
    check("time", &booking.time);
    if time::Date::parse(
        &booking.date,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .is_err()
    {
        violations.push(validate::Violation {
            path: "date".into(),
            reason: format!("is {:?}; expected YYYY-MM-DD", booking.date),
        });
    }
    if time::Time::parse(
        &booking.time,
        time::macros::format_description!("[hour]:[minute]"),
    )
    .is_err()
    {
        violations.push(validate::Violation {
            path: "time".into(),
            reason: format!("is {:?}; expected HH:MM (24-hour)", booking.time),
        });
    }
    if !violations.is_empty() {
        return Err(ValidationError { violations });
    }
    Ok(Booking {
        phone: phone.e164(),
        ..booking
    })
}

impl Job {
    /// A complete Interakt request, validated as it is.
    pub fn raw(request: SendRequest) -> Result<Job, ValidationError> {
        validate::validate_request(&request)?;
        Ok(Job::new(Payload::Raw {
            request: Box::new(request),
        }))
    }

    pub fn with_idempotency_key(mut self, key: Option<String>) -> Result<Job, ValidationError> {
        check_key("idempotency_key", key.as_deref())?;
        self.idempotency_key = key;
        Ok(self)
    }

    /// The job is sent for `tenant` (`None`: the default tenant); `field` names it in the
    /// error.
    pub fn with_tenant(
        mut self,
        field: &str,
        tenant: Option<&str>,
    ) -> Result<Job, ValidationError> {
        self.tenant = tenant.map(|t| Tenant::parse(field, t)).transpose()?;
        Ok(self)
    }

    /// The job waits in `lane` rather than its kind's (`None`: its kind's). Only a raw
    /// request chooses: `booking` (its default), `reminder` or `bulk`, or `otp` when it is
    /// shaped like an OTP: it must not be sent after a deadline at most
    /// [`MAX_OTP_VALIDITY_TEXT`] away (`not_after`), as every OTP. Call it after the deadline
    /// is set.
    pub fn with_lane(mut self, field: &str, lane: Option<Lane>) -> Result<Job, ValidationError> {
        let Some(lane) = lane else {
            self.lane = None;
            return Ok(self);
        };
        if lane == self.lane() {
            return Ok(self);
        }
        if self.kind() != JobKind::Raw {
            return Err(ValidationError::single(
                field,
                format!(
                    "is {lane}; a {} always waits in the {} lane (only raw requests choose theirs)",
                    self.kind(),
                    self.lane()
                ),
            ));
        }
        if lane == Lane::Otp {
            let bounded = self.not_after.is_some_and(|deadline| {
                deadline_after(self.created_at, MAX_OTP_VALIDITY)
                    .is_some_and(|most| deadline <= most)
            });
            if !bounded {
                return Err(ValidationError::single(
                    field,
                    format!(
                        "is otp, but the request has no not_after within {MAX_OTP_VALIDITY_TEXT}: the OTP lane is for codes, which expire; give it not_after, or use booking, reminder or bulk"
                    ),
                ));
            }
        }
        self.lane = Some(lane);
        Ok(self)
    }

    /// The job cancels the older unsent job enqueued under `key` (and a newer one cancels
    /// it): at most one unsent job per replace key.
    pub fn with_replace_key(mut self, key: Option<String>) -> Result<Job, ValidationError> {
        check_key("replace_key", key.as_deref())?;
        self.replace_key = key;
        Ok(self)
    }

    /// Schedules the job for `due` (`None`: send now). `field` is what the caller gave
    /// (`send_at`, `send_in`, `before`), for the error: an OTP cannot be scheduled (a code
    /// is wanted now, and is only valid for minutes), and a job is not scheduled past its
    /// `not_after`.
    pub fn scheduled(
        mut self,
        field: &str,
        due: Option<OffsetDateTime>,
    ) -> Result<Job, ValidationError> {
        let Some(due) = due else {
            self.send_at = None;
            return Ok(self);
        };
        if self.kind() == JobKind::Otp {
            return Err(ValidationError::single(
                field,
                "an OTP cannot be scheduled: a code is wanted the moment it is asked for; enqueue it then",
            ));
        }
        self.send_at = Some(due);
        Ok(self)
    }

    /// Sets the deadline past which the job is dead-lettered as `expired` instead of sent.
    /// An OTP's deadline is its `valid_for`.
    pub fn with_not_after(
        mut self,
        not_after: Option<OffsetDateTime>,
    ) -> Result<Job, ValidationError> {
        let Some(not_after) = not_after else {
            return Ok(self);
        };
        if self.kind() == JobKind::Otp {
            return Err(ValidationError::single(
                "not_after",
                "an OTP's deadline is its valid_for; give that instead",
            ));
        }
        self.not_after = Some(not_after);
        Ok(self)
    }

    /// True while the job is scheduled for later than `now`.
    pub fn is_scheduled(&self, now: OffsetDateTime) -> bool {
        self.send_at.is_some_and(|due| due > now)
    }

    pub fn kind(&self) -> JobKind {
        match self.payload {
            Payload::Otp(_) => JobKind::Otp,
            Payload::Booking(_) => JobKind::Booking,
            Payload::Reminder(_) => JobKind::Reminder,
            Payload::Raw { .. } => JobKind::Raw,
        }
    }

    pub fn lane(&self) -> Lane {
        if let Some(lane) = self.lane {
            return lane;
        }
        match self.kind() {
            JobKind::Otp => Lane::Otp,
            JobKind::Reminder => Lane::Reminder,
            JobKind::Booking | JobKind::Raw => Lane::Booking,
        }
    }

    /// The tenant it is sent for ([`Tenant::DEFAULT`] when it names none).
    pub fn tenant(&self) -> &str {
        self.tenant.as_ref().map_or(Tenant::DEFAULT, Tenant::as_str)
    }

    /// The recipient in E.164, for masking in logs and dead-letter listings.
    pub fn phone(&self) -> String {
        match &self.payload {
            Payload::Otp(otp) => otp.phone.clone(),
            Payload::Booking(booking) => booking.phone.clone(),
            Payload::Reminder(reminder) => reminder.booking.phone.clone(),
            Payload::Raw { request } => format!("{}{}", request.country_code, request.phone_number),
        }
    }

    /// The booking's id, for a booking confirmation (what the booking index is keyed by).
    pub fn booking_id(&self) -> Option<&str> {
        match &self.payload {
            Payload::Booking(booking) => Some(&booking.booking_id),
            Payload::Reminder(reminder) => Some(&reminder.booking.booking_id),
            Payload::Otp(_) | Payload::Raw { .. } => None,
        }
    }

    /// The attempts since the job was last replayed from the dead letters (all of them if it
    /// never was): the ones that count against its retry budget.
    pub fn attempts_since_replay(&self) -> &[Attempt] {
        let start = self
            .attempts
            .iter()
            .rposition(|a| a.outcome == Outcome::Replayed)
            .map_or(0, |marker| marker + 1);
        &self.attempts[start..]
    }

    /// What this job sends, as a [`Fingerprint`]: equal for two jobs made from the same
    /// message, whatever their ids, creation times, deadlines or attempts.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.payload)
    }

    /// True once the deadline has passed.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.not_after.is_some_and(|deadline| now > deadline)
    }

    /// The envelope as stored in a stream entry.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a job always serializes")
    }

    pub fn from_json(json: &[u8]) -> Result<Job, crate::wire::DecodeError> {
        crate::wire::decode(json)
    }

    /// Erases an OTP's code (a secret nobody needs once the OTP can no longer be used):
    /// true when there was one to erase.
    pub fn erase_code(&mut self) -> bool {
        match &mut self.payload {
            Payload::Otp(otp) if otp.code.expose() != ERASED_CODE => {
                otp.code = Redacted::new(ERASED_CODE.to_string());
                true
            }
            _ => false,
        }
    }

    /// True for an OTP whose code was erased: it can never be sent again.
    pub fn code_erased(&self) -> bool {
        matches!(&self.payload, Payload::Otp(otp) if otp.code.expose() == ERASED_CODE)
    }
}

/// Whitespace as JSON defines it (space, tab, LF, CR): what is trimmed from an OTP code and
/// what a blank booking field is made of. Narrower than `str::trim` on purpose, so the HTTP
/// API's OpenAPI document can state the rule as a pattern.
pub fn is_json_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// An idempotency or replace key: 1 to [`MAX_IDEMPOTENCY_KEY_CHARS`] characters; the error
/// names `field`.
pub fn check_key(field: &str, key: Option<&str>) -> Result<(), ValidationError> {
    match key {
        Some(key) if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS => {
            Err(ValidationError::single(
                field,
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters"),
            ))
        }
        _ => Ok(()),
    }
}

fn parse_phone(field: &str, phone: &str) -> Result<Phone, ValidationError> {
    Phone::parse_e164(phone).map_err(|err| ValidationError::single(field, err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otp_job_has_a_v7_id_a_deadline_and_a_hidden_code() {
        let job = Job::otp("+91 99999 99999", "123456", Duration::from_secs(600)).unwrap();
        assert_eq!(job.id.get_version_num(), 7);
        assert_eq!(job.kind(), JobKind::Otp);
        assert_eq!(job.lane(), Lane::Otp);
        assert_eq!(
            job.not_after,
            Some(job.created_at + Duration::from_secs(600))
        );
        assert!(!format!("{job:?}").contains("123456"));
        let back = Job::from_json(job.to_json().as_bytes()).unwrap();
        assert_eq!(back, job);
    }

    /// Stored to the millisecond: 6 bytes less for each time in the entry and the record.
    #[test]
    fn a_new_jobs_times_are_to_the_millisecond() {
        let job = Job::otp("+919999999999", "123456", Duration::from_secs(600)).unwrap();
        for at in [job.created_at, job.not_after.unwrap()] {
            assert_eq!(at.nanosecond() % 1_000_000, 0, "{at}");
        }
        let json = job.to_json();
        let created = json.split("\"created_at\":\"").nth(1).unwrap();
        let fraction = created
            .split('.')
            .nth(1)
            .map_or("", |f| f.split('Z').next().unwrap());
        assert!(fraction.len() <= 3, "{json}");
    }

    #[test]
    fn otp_errors_name_the_field() {
        let err = Job::otp("12345", "123456", DEFAULT_OTP_VALIDITY).unwrap_err();
        assert_eq!(err.violations[0].path, "phone");
        let err = Job::otp("+919999999999", "12 34", DEFAULT_OTP_VALIDITY).unwrap_err();
        assert_eq!(err.violations[0].path, "code");
        let err = Job::otp("+919999999999", "1234", Duration::ZERO).unwrap_err();
        assert_eq!(err.violations[0].path, "valid_for");
    }

    fn booking() -> Booking {
        Booking {
            phone: "+919999999999".into(),
            booking_id: "B123".into(),
            service: "Haircut".into(),
            date: "2026-11-24".into(),
            time: "10:30".into(),
            image_url: None,
        }
    }

    #[test]
    fn booking_goes_to_the_booking_lane() {
        let job = Job::booking(booking()).unwrap();
        assert_eq!(job.lane(), Lane::Booking);
        assert_eq!(
            job.not_after,
            Some(time::macros::datetime!(2026-11-24 05:00 UTC)),
            "the appointment's start, in India"
        );
        let london = Zone::named("Europe/London").unwrap();
        let job = Job::booking_in(booking(), &london).unwrap();
        assert_eq!(
            job.not_after,
            Some(time::macros::datetime!(2026-11-24 10:30 UTC))
        );
    }

    #[test]
    fn reminders_keep_their_zone_and_otps_cannot_be_scheduled() {
        let zone = Zone::default();
        let job = Job::reminder(booking(), &zone).unwrap();
        assert_eq!(job.kind(), JobKind::Reminder);
        assert_eq!(job.lane(), Lane::Reminder);
        assert_eq!(job.appointment(&zone), job.not_after);
        let due = time::macros::datetime!(2026-11-24 03:00 UTC);
        let job = job.scheduled("before", Some(due)).unwrap();
        assert_eq!(job.send_at, Some(due));
        let back = Job::from_json(job.to_json().as_bytes()).unwrap();
        assert_eq!(back, job);
        assert!(job.to_json().contains(r#""kind":"reminder""#));
        assert!(job.to_json().contains(r#""tz":"Asia/Kolkata""#));

        let otp = Job::otp("+919999999999", "1234", DEFAULT_OTP_VALIDITY).unwrap();
        let err = otp.clone().scheduled("send_in", Some(due)).unwrap_err();
        assert_eq!(err.violations[0].path, "send_in");
        assert!(
            err.to_string().contains("an OTP cannot be scheduled"),
            "{err}"
        );
        let err = otp.clone().with_not_after(Some(due)).unwrap_err();
        assert_eq!(err.violations[0].path, "not_after");
        assert!(otp.with_replace_key(Some(String::new())).is_err());
    }

    #[test]
    fn booking_errors_name_every_bad_field() {
        let bad = Booking {
            service: "x".repeat(31),
            date: "24/11/2026".into(),
            time: "".into(),
            ..booking()
        };
        let err = Job::booking(bad).unwrap_err();
        let paths: Vec<_> = err.violations.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["service", "time", "date", "time"]);
        let bad_url = Booking {
            image_url: Some("ftp://x/y.png".into()),
            ..booking()
        };
        let err = Job::booking(bad_url).unwrap_err();
        assert!(
            err.to_string().contains("cardMedia.contentInfo.fileUrl"),
            "{err}"
        );
    }

    #[test]
    fn only_attempts_after_the_last_replay_count() {
        let mut job = Job::otp("+919999999999", "1", DEFAULT_OTP_VALIDITY).unwrap();
        assert!(job.attempts_since_replay().is_empty());
        let at = job.created_at;
        let failed = |outcome: Outcome| Attempt {
            at,
            outcome,
            status: Some(503),
            error: Some("HTTP 503".into()),
            body: None,
            consumer: Some("w1".into()),
        };
        job.attempts = vec![failed(Outcome::Transient), failed(Outcome::Transient)];
        assert_eq!(
            job.attempts_since_replay().len(),
            2,
            "never replayed: all count"
        );
        job.attempts
            .push(Attempt::replayed(at, "exhausted: 2 attempts failed"));
        assert!(job.attempts_since_replay().is_empty(), "a fresh budget");
        job.attempts.push(failed(Outcome::RateLimited));
        job.attempts.push(Attempt::replayed(at, "expired"));
        job.attempts.push(failed(Outcome::Transient));
        let current = job.attempts_since_replay();
        assert_eq!(current.len(), 1, "only after the last marker");
        assert_eq!(current[0].outcome, Outcome::Transient);
        assert_eq!(job.attempts.len(), 6, "the history is kept");
        assert_eq!(job.attempts.iter().filter(|a| a.is_send()).count(), 4);
        let back = Job::from_json(job.to_json().as_bytes()).unwrap();
        assert_eq!(back, job);
    }

    #[test]
    fn otp_validity_is_bounded_and_never_panics() {
        let day = Duration::from_secs(24 * 60 * 60);
        let century = Duration::from_secs(100_000_000 * 31_557_600);
        for too_long in [
            day + Duration::from_secs(1),
            Duration::from_secs(25 * 60 * 60),
            century,
            Duration::MAX,
        ] {
            let err = Job::otp("+919999999999", "1234", too_long).unwrap_err();
            assert_eq!(err.violations[0].path, "valid_for");
            assert!(
                err.violations[0].reason.contains("the most is 24h"),
                "{err}"
            );
        }
        let job = Job::otp("+919999999999", "1234", day).unwrap();
        assert_eq!(job.not_after, Some(job.created_at + day));
    }

    #[test]
    fn the_bound_reads_as_it_is() {
        assert_eq!(
            crate::config::parse_duration(MAX_OTP_VALIDITY_TEXT),
            Ok(MAX_OTP_VALIDITY)
        );
    }

    #[test]
    fn deadlines_are_checked() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(
            deadline_after(now, Duration::from_secs(60)),
            Some(now + Duration::from_secs(60))
        );
        assert_eq!(
            deadline_after(now, Duration::from_secs(100_000_000 * 31_557_600)),
            None
        );
        assert_eq!(deadline_after(now, Duration::MAX), None);
    }

    #[test]
    fn the_fingerprint_is_the_content_only() {
        let otp = |phone: &str, code: &str, valid_for: u64| {
            Job::otp(phone, code, Duration::from_secs(valid_for)).unwrap()
        };
        let first = otp("+919999999999", "731904", 600);
        let mut retry = otp("+91 99999 99999", "731904", 60)
            .with_idempotency_key(Some("login:42".into()))
            .unwrap();
        retry
            .attempts
            .push(Attempt::replayed(retry.created_at, "expired"));
        assert_ne!(first.id, retry.id);
        assert_eq!(first.fingerprint(), retry.fingerprint(), "same message");
        assert_eq!(first.fingerprint().as_str().len(), 64);
        assert_ne!(
            first.fingerprint(),
            otp("+919999999999", "555111", 600).fingerprint(),
            "another code"
        );
        assert_ne!(
            first.fingerprint(),
            otp("+919999999998", "731904", 600).fingerprint(),
            "another phone"
        );
        let booking_job = Job::booking(booking()).unwrap();
        assert_eq!(
            booking_job.fingerprint(),
            Job::booking(booking()).unwrap().fingerprint()
        );
        assert_ne!(
            booking_job.fingerprint(),
            Job::booking(Booking {
                time: "11:30".into(),
                ..booking()
            })
            .unwrap()
            .fingerprint()
        );
        assert!(
            !first.fingerprint().to_string().contains("731904"),
            "a digest, not the content"
        );
    }

    #[test]
    fn a_raw_fingerprint_ignores_the_order_of_unknown_fields() {
        let request = |json: &str| -> SendRequest { crate::wire::decode(json.as_bytes()).unwrap() };
        let a = request(
            r#"{"countryCode":"+91","phoneNumber":"9999999999","type":"STANDALONE_CAROUSEL","zeta":1,"alpha":{"y":2,"x":1},"message":{"richCardDetails":{"standalone":{"content":{"cardTitle":"Hi"}}}}}"#,
        );
        let b = request(
            r#"{"alpha":{"x":1,"y":2},"zeta":1,"countryCode":"+91","phoneNumber":"9999999999","type":"STANDALONE_CAROUSEL","message":{"richCardDetails":{"standalone":{"content":{"cardTitle":"Hi"}}}}}"#,
        );
        let c = request(
            r#"{"alpha":{"x":1,"y":3},"zeta":1,"countryCode":"+91","phoneNumber":"9999999999","type":"STANDALONE_CAROUSEL","message":{"richCardDetails":{"standalone":{"content":{"cardTitle":"Hi"}}}}}"#,
        );
        let fp = |r: SendRequest| {
            Fingerprint::of(&Payload::Raw {
                request: Box::new(r),
            })
        };
        assert_eq!(fp(a.clone()), fp(b));
        assert_ne!(fp(a), fp(c));
    }

    #[test]
    fn idempotency_key_is_bounded() {
        let job = Job::otp("+919999999999", "1", DEFAULT_OTP_VALIDITY).unwrap();
        assert!(
            job.clone()
                .with_idempotency_key(Some(String::new()))
                .is_err()
        );
        assert!(
            job.with_idempotency_key(Some("booking:B1:confirmation".into()))
                .is_ok()
        );
    }

    /// The outcome names are a storage format: a job written before they were an enum (or by
    /// an older replica) decodes, and every name is written back unchanged.
    #[test]
    fn outcome_names_are_stored_as_they_always_were() {
        let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(
            names,
            ["sent", "rate_limited", "transient", "permanent", "replayed"]
        );
        for outcome in Outcome::ALL {
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.as_str()));
            assert_eq!(serde_json::from_str::<Outcome>(&json).unwrap(), outcome);
        }
        let stored = r#"{"at":"2026-11-24T10:30:00Z","outcome":"rate_limited","status":429,"error":"rate limited","consumer":"w1"}"#;
        let attempt: Attempt = serde_json::from_str(stored).unwrap();
        assert_eq!(attempt.outcome, Outcome::RateLimited);
        assert_eq!(serde_json::to_string(&attempt).unwrap(), stored);
    }
}
