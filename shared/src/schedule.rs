//! Time: when a job goes out (`send_at`, `send_in`, a reminder's `--before`) and when it
//! stops being worth sending (`not_after`, an appointment's start in its time zone).
//!
//! Callers write instants as RFC 3339 with an offset (`2026-11-24T08:30:00+05:30`) and
//! appointments as a local date and time (`2026-11-24`, `10:30`) in an IANA time zone
//! (`Asia/Kolkata`). Zones come from the tz database bundled into the binary ([`jiff`]),
//! so a bare machine without `/usr/share/zoneinfo` still knows them, and every replica
//! agrees on them. This module is pure: the clock is always passed in.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::validate::ValidationError;

/// The time zone of appointments when neither `--tz` nor `HERALD_TIMEZONE` says otherwise.
pub const DEFAULT_TIMEZONE: &str = "Asia/Kolkata";

/// The furthest ahead a job may be scheduled: a reminder for next year's appointment, not a
/// typo's year 2926.
pub const MAX_SCHEDULE_AHEAD: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// [`MAX_SCHEDULE_AHEAD`] as people write it, for messages and the OpenAPI format's name.
pub const MAX_SCHEDULE_AHEAD_TEXT: &str = "365d";

/// An IANA time zone, by name, resolved against the bundled tz database.
#[derive(Clone, PartialEq)]
pub struct Zone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl Zone {
    /// The zone named `name` (`Asia/Kolkata`, `Europe/London`, `UTC`).
    pub fn named(name: &str) -> Result<Zone, String> {
        let trimmed = name.trim();
        match jiff::tz::db().get(trimmed) {
            Ok(tz) => Ok(Zone {
                name: tz.iana_name().unwrap_or(trimmed).to_string(),
                tz,
            }),
            Err(_) => Err(format!(
                "is {name:?}, not a time zone of the tz database; use an IANA name such as {DEFAULT_TIMEZONE} or Europe/London"
            )),
        }
    }

    /// The IANA name, as the job stores it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The instant a local `date` and `time` names in this zone. In a daylight-saving gap the
    /// time is moved forward by the gap; in a fold the earlier instant is taken (jiff's
    /// "compatible" rule, as RFC 5545 calendars do). `None` past what [`OffsetDateTime`]
    /// holds.
    pub fn instant(&self, date: time::Date, at: time::Time) -> Option<OffsetDateTime> {
        let civil = jiff::civil::DateTime::new(
            i16::try_from(date.year()).ok()?,
            i8::try_from(u8::from(date.month())).ok()?,
            i8::try_from(date.day()).ok()?,
            i8::try_from(at.hour()).ok()?,
            i8::try_from(at.minute()).ok()?,
            0,
            0,
        )
        .ok()?;
        let zoned = civil.to_zoned_datetime(self.tz.clone()).ok()?;
        OffsetDateTime::from_unix_timestamp(zoned.timestamp().as_second()).ok()
    }

    /// The calendar date `at` falls on in this zone.
    pub fn local_date(&self, at: OffsetDateTime) -> Option<time::Date> {
        let stamp = jiff::Timestamp::from_second(at.unix_timestamp()).ok()?;
        let date = stamp.to_zoned_datetime(self.tz.clone()).date();
        let month = time::Month::try_from(u8::try_from(date.month()).ok()?).ok()?;
        time::Date::from_calendar_date(
            i32::from(date.year()),
            month,
            u8::try_from(date.day()).ok()?,
        )
        .ok()
    }
}

impl Default for Zone {
    fn default() -> Self {
        Zone::named(DEFAULT_TIMEZONE).expect("the bundled tz database knows Asia/Kolkata")
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl FromStr for Zone {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Zone::named(s)
    }
}

/// `2026-11-24T08:30:00+05:30` (RFC 3339, an offset required), for the field `field`.
pub fn parse_instant(field: &str, text: &str) -> Result<OffsetDateTime, ValidationError> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| {
        ValidationError::single(
            field,
            format!(
                "is {text:?}; expected an RFC 3339 time with its offset, e.g. 2026-11-24T08:30:00+05:30 or 2026-11-24T03:00:00Z"
            ),
        )
    })
}

/// The appointment a booking or reminder names: `date` (`YYYY-MM-DD`) at `time` (`HH:MM`)
/// in `zone`. `None` when either does not parse (the job's own checks name that field).
pub fn appointment(zone: &Zone, date: &str, time_of_day: &str) -> Option<OffsetDateTime> {
    let date = time::Date::parse(
        date,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    let at = time::Time::parse(
        time_of_day,
        time::macros::format_description!("[hour]:[minute]"),
    )
    .ok()?;
    zone.instant(date, at)
}

/// When a job asked to go out later is due, from `send_at` or `send_in` (at most one), as
/// of `now`. `Ok(None)`: send now (neither given, or a `send_at` already past). Each error
/// names the field given.
pub fn due_time(
    send_at: Option<OffsetDateTime>,
    send_in: Option<Duration>,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, ValidationError> {
    let horizon = now + MAX_SCHEDULE_AHEAD;
    match (send_at, send_in) {
        (Some(_), Some(_)) => Err(ValidationError::single(
            "send_in",
            "is given with send_at; give one of them",
        )),
        (None, None) => Ok(None),
        (None, Some(delay)) => {
            if delay.is_zero() {
                return Err(ValidationError::single(
                    "send_in",
                    "must be longer than zero (leave it out to send now)",
                ));
            }
            if delay > MAX_SCHEDULE_AHEAD {
                return Err(ValidationError::single(
                    "send_in",
                    format!("is {}; the most is {MAX_SCHEDULE_AHEAD_TEXT}", human(delay)),
                ));
            }
            Ok(deadline_after(now, delay))
        }
        (Some(at), None) if at > horizon => Err(ValidationError::single(
            "send_at",
            format!(
                "is {}, more than {MAX_SCHEDULE_AHEAD_TEXT} ahead; schedule it nearer the time",
                format_time(at)
            ),
        )),
        (Some(at), None) => Ok((at > now).then_some(at)),
    }
}

/// RFC 3339 in UTC, as every timestamp of the timeline is stored.
pub fn format_time(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .expect("a UTC timestamp formats as RFC 3339")
}

/// `start + duration`, or `None` when that is past what [`OffsetDateTime`] can hold (year
/// 9999) or the duration does not fit a [`time::Duration`]. Never panics.
pub fn deadline_after(start: OffsetDateTime, duration: Duration) -> Option<OffsetDateTime> {
    let duration = time::Duration::try_from(duration).ok()?;
    start.checked_add(duration)
}

/// A duration as flags and JSON spell them (`10m`, `1day 1h`), for messages.
pub fn human(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// Unix milliseconds, as the scheduled set scores jobs.
pub fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime, time};

    #[test]
    fn zones_come_from_the_bundled_database() {
        let kolkata = Zone::default();
        assert_eq!(kolkata.name(), "Asia/Kolkata");
        assert_eq!(
            kolkata.instant(date!(2026 - 11 - 24), time!(10:30)),
            Some(datetime!(2026-11-24 05:00 UTC))
        );
        let err = Zone::named("Mars/Olympus").unwrap_err();
        assert!(
            err.contains("Mars/Olympus") && err.contains("IANA"),
            "{err}"
        );
        assert_eq!(
            kolkata.local_date(datetime!(2026-11-23 19:00 UTC)),
            Some(date!(2026 - 11 - 24)),
            "00:30 the next day in India"
        );
    }

    #[test]
    fn daylight_saving_gaps_and_folds_resolve_like_calendars() {
        let london = Zone::named("Europe/London").unwrap();
        // 2026-03-29 01:30 does not exist in London: moved forward an hour (02:30 BST).
        assert_eq!(
            london.instant(date!(2026 - 03 - 29), time!(01:30)),
            Some(datetime!(2026-03-29 01:30 UTC))
        );
        // 2026-10-25 01:30 happens twice: the first (BST) is taken.
        assert_eq!(
            london.instant(date!(2026 - 10 - 25), time!(01:30)),
            Some(datetime!(2026-10-25 00:30 UTC))
        );
    }

    #[test]
    fn due_times_from_send_at_or_send_in() {
        let now = datetime!(2026-11-30 08:00 UTC);
        assert_eq!(due_time(None, None, now), Ok(None));
        assert_eq!(
            due_time(None, Some(Duration::from_secs(7200)), now),
            Ok(Some(datetime!(2026-11-30 10:00 UTC)))
        );
        let at = parse_instant("send_at", "2026-11-30T15:30:00+05:30").unwrap();
        assert_eq!(
            due_time(Some(at), None, now),
            Ok(Some(datetime!(2026-11-30 10:00 UTC)))
        );
        assert_eq!(
            due_time(Some(datetime!(2026-11-30 07:00 UTC)), None, now),
            Ok(None),
            "a past send_at means now"
        );
        let both = due_time(Some(at), Some(Duration::from_secs(1)), now).unwrap_err();
        assert_eq!(both.violations[0].path, "send_in");
        let far = due_time(Some(datetime!(2928-01-01 00:00 UTC)), None, now).unwrap_err();
        assert!(far.to_string().contains("365d"), "{far}");
        let zero = due_time(None, Some(Duration::ZERO), now).unwrap_err();
        assert_eq!(zero.violations[0].path, "send_in");
        let err = parse_instant("send_at", "2026-11-30 10:00").unwrap_err();
        assert!(err.to_string().contains("RFC 3339"), "{err}");
    }
}
