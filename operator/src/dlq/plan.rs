//! What a replay or a purge comes to, decided without I/O: the plan for one dead letter
//! and the reports that count what was done. Pure; the store applies it, render prints it.
//!
//! `--extend` is an [`Extension`]: at most [`MAX_OTP_VALIDITY`] (24h), checked when it is
//! made, and added to the clock with checked arithmetic, so no duration panics a replay.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use herald_shared::job::{Attempt, MAX_OTP_VALIDITY, MAX_OTP_VALIDITY_TEXT, deadline_after, human};
use herald_shared::{Job, Lane};
use herald_store::dead_letter::DeadLetter;
use serde::Serialize;
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotReplayed {
    /// No dead letter has this id: never dead, or already replayed or purged.
    NotFound,
    /// The entry never decoded into a job: there is nothing to put back.
    NoJob,
    /// Its deadline has passed; `extendable` (an OTP): `--extend` would give it a new one.
    /// A booking's or reminder's deadline is its appointment, which no replay moves.
    Expired {
        deadline: OffsetDateTime,
        extendable: bool,
    },
    /// The stored dead letter is not readable JSON.
    Unreadable(String),
    /// It was dead-lettered anew each time it was read (a worker keeps failing it right now).
    Changing,
    /// An OTP whose code was erased when its deadline passed: there is nothing to send.
    CodeErased,
    /// Its replace key names a newer job: replaying it would put a stale message (an old
    /// code) after the newer one.
    Superseded { by: uuid::Uuid },
    /// Its idempotency key holds another job now (the same message enqueued again): it
    /// would be sent twice.
    KeyTaken { by: String },
    /// Its record says it is not dead (it was replayed and is pending or sent).
    NotDead { state: String },
}

/// How far `--extend` moves a replayed job's deadline: longer than zero and at most
/// [`MAX_OTP_VALIDITY`] (24h), the longest an OTP may be valid in the first place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extension(Duration);

/// Why a duration is not an [`Extension`]. The message says the bound and an example.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    /// Names the text and gives an example.
    #[error("{0}")]
    NotADuration(String),
    #[error("must be longer than zero, e.g. 10m")]
    Zero,
    #[error("{} is too long: a new deadline is at most {MAX_OTP_VALIDITY_TEXT} from now, e.g. 10m", human(*.0))]
    TooLong(Duration),
}

impl Extension {
    pub fn new(duration: Duration) -> Result<Extension, ExtensionError> {
        if duration.is_zero() {
            Err(ExtensionError::Zero)
        } else if duration > MAX_OTP_VALIDITY {
            Err(ExtensionError::TooLong(duration))
        } else {
            Ok(Extension(duration))
        }
    }

    pub fn duration(self) -> Duration {
        self.0
    }
}

/// `10m`, `1h 30m`: a human duration, then [`Extension::new`]. What `--extend` parses.
impl FromStr for Extension {
    type Err = ExtensionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let duration =
            herald_shared::config::parse_duration(s).map_err(ExtensionError::NotADuration)?;
        Extension::new(duration)
    }
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&human(self.0))
    }
}

/// Per-lane counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LaneCounts {
    pub otp: usize,
    pub booking: usize,
    pub reminder: usize,
    pub bulk: usize,
}

impl LaneCounts {
    pub(crate) fn add(&mut self, lane: Lane) {
        *self.of(lane) += 1;
    }

    fn of(&mut self, lane: Lane) -> &mut usize {
        match lane {
            Lane::Otp => &mut self.otp,
            Lane::Booking => &mut self.booking,
            Lane::Reminder => &mut self.reminder,
            Lane::Bulk => &mut self.bulk,
        }
    }

    pub fn get(&self, lane: Lane) -> usize {
        match lane {
            Lane::Otp => self.otp,
            Lane::Booking => self.booking,
            Lane::Reminder => self.reminder,
            Lane::Bulk => self.bulk,
        }
    }

    pub fn total(&self) -> usize {
        self.otp + self.booking + self.reminder + self.bulk
    }
}

/// What a replay did (or, in a dry run, would do).
#[derive(Clone, Debug, Default)]
pub struct ReplayReport {
    pub dry_run: bool,
    /// Dead letters selected: named ids (found or not), or those the query matched.
    pub matched: usize,
    /// Put back on their lanes.
    pub replayed: LaneCounts,
    /// Of those, given a new deadline by `--extend`.
    pub extended: usize,
    /// Selected but left dead, with why, in the order met.
    pub not_replayed: Vec<(String, NotReplayed)>,
}

impl ReplayReport {
    /// True when everything selected was replayed: exit 0.
    pub fn complete(&self) -> bool {
        self.not_replayed.is_empty()
    }
}

/// What a purge deleted (or, without `confirmed`, would delete).
#[derive(Clone, Debug, Default)]
pub struct PurgeReport {
    /// False: nothing was deleted; `ids` is what would be.
    pub confirmed: bool,
    pub ids: Vec<String>,
    /// Named ids that are not dead letters.
    pub not_found: Vec<String>,
}

impl PurgeReport {
    /// True when every named dead letter was found: exit 0.
    pub fn complete(&self) -> bool {
        self.not_found.is_empty()
    }
}

/// What replaying one dead letter comes to, decided without I/O.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    Skip(NotReplayed),
    /// Put `job` on `lane`; `extended` when `--extend` moved its deadline.
    Move {
        lane: Lane,
        job: Box<Job>,
        extended: bool,
    },
}

/// Decides what replaying `letter` at `now` comes to: the job with a replay marker appended
/// (a fresh budget, the history kept) and, with `extend`, a deadline at least that far off;
/// or why it cannot be replayed.
///
/// The new deadline is computed with checked arithmetic: were `now + extend` past what a
/// timestamp holds (a clock at the year 9999), the job is treated as not extended.
pub fn plan(letter: &DeadLetter, extend: Option<Extension>, now: OffsetDateTime) -> Plan {
    let Some(job) = &letter.job else {
        return Plan::Skip(NotReplayed::NoJob);
    };
    if job.code_erased() {
        return Plan::Skip(NotReplayed::CodeErased);
    }
    let mut job = job.clone();
    let mut extended = false;
    if let Some(deadline) = job.not_after {
        // Only an OTP's deadline is a validity to extend; a booking's or reminder's is its
        // appointment, which a replay cannot move.
        let new_deadline = extend
            .filter(|_| job.kind() == herald_shared::JobKind::Otp)
            .and_then(|extra| deadline_after(now, extra.duration()));
        match new_deadline {
            Some(new_deadline) if new_deadline > deadline => {
                job.not_after = Some(new_deadline);
                extended = true;
            }
            _ if job.is_expired(now) => {
                return Plan::Skip(NotReplayed::Expired {
                    deadline,
                    extendable: job.kind() == herald_shared::JobKind::Otp,
                });
            }
            _ => {}
        }
    }
    job.attempts.push(Attempt::replayed(now, &letter.reason));
    Plan::Move {
        lane: letter.lane,
        job: Box::new(job),
        extended,
    }
}

/// Case-insensitive substring match of `--reason`.
pub fn reason_matches(reason: &str, text: &str) -> bool {
    reason.to_lowercase().contains(&text.to_lowercase())
}

/// `ids` without repeats, first occurrence kept.
pub(crate) fn dedup(ids: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    ids.iter().filter(|id| seen.insert(*id)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlq::tests::{letter, otp};
    use herald_shared::Job;

    fn extend(secs: u64) -> Option<Extension> {
        Some(Extension::new(Duration::from_secs(secs)).unwrap())
    }

    fn moved(plan: Plan) -> (Job, bool) {
        match plan {
            Plan::Move { job, extended, .. } => (*job, extended),
            Plan::Skip(why) => panic!("not replayed: {why:?}"),
        }
    }

    #[test]
    fn a_replayed_job_keeps_its_history_and_gets_a_marker() {
        let mut job = otp(Duration::from_secs(600));
        job.attempts.push(Attempt {
            at: job.created_at,
            outcome: herald_shared::job::Outcome::Transient,
            status: Some(500),
            error: Some("HTTP 500".into()),
            body: None,
            consumer: Some("w1".into()),
        });
        let now = job.created_at + Duration::from_secs(1);
        let (replayed, extended) = moved(plan(&letter(Some(job.clone())), None, now));
        assert!(!extended);
        assert_eq!(replayed.not_after, job.not_after);
        assert_eq!(replayed.attempts.len(), 2);
        assert_eq!(replayed.attempts[0], job.attempts[0]);
        assert_eq!(
            replayed.attempts[1].outcome,
            herald_shared::job::Outcome::Replayed
        );
        assert_eq!(replayed.attempts[1].at, now);
        assert!(
            replayed.attempts[1]
                .error
                .as_deref()
                .unwrap()
                .contains("HTTP 500")
        );
        assert!(replayed.attempts_since_replay().is_empty());
    }

    #[test]
    fn an_expired_otp_needs_extend() {
        let job = otp(Duration::from_secs(60));
        let deadline = job.not_after.unwrap();
        let later = deadline + Duration::from_secs(5);
        assert_eq!(
            plan(&letter(Some(job.clone())), None, later),
            Plan::Skip(NotReplayed::Expired {
                deadline,
                extendable: true
            })
        );
        let (replayed, extended) = moved(plan(&letter(Some(job.clone())), extend(600), later));
        assert!(extended);
        assert_eq!(replayed.not_after, Some(later + Duration::from_secs(600)));
        // --extend never shortens a deadline further off than it would set.
        let (kept, extended) = moved(plan(&letter(Some(job.clone())), extend(1), job.created_at));
        assert!(!extended);
        assert_eq!(kept.not_after, job.not_after);
    }

    #[test]
    fn a_booking_has_no_deadline_to_extend() {
        let job = Job::booking(herald_shared::job::Booking {
            phone: "+919000000001".into(),
            booking_id: "B1".into(),
            service: "Haircut".into(),
            date: "2030-11-24".into(),
            time: "10:30".into(),
            image_url: None,
        })
        .unwrap();
        let appointment = job.not_after;
        let far = job.created_at + Duration::from_secs(86_400 * 30);
        let (replayed, extended) = moved(plan(&letter(Some(job.clone())), extend(60), far));
        assert!(!extended, "an appointment is not a validity to extend");
        assert_eq!(replayed.not_after, appointment);
        let after = appointment.unwrap() + Duration::from_secs(60);
        assert!(
            matches!(
                plan(&letter(Some(job)), extend(60), after),
                Plan::Skip(NotReplayed::Expired { .. })
            ),
            "a booking whose appointment has started is not replayed"
        );
    }

    #[test]
    fn an_extension_is_at_most_24h_and_never_panics() {
        assert_eq!(
            "24h".parse::<Extension>().map(Extension::duration),
            Ok(MAX_OTP_VALIDITY)
        );
        for (text, expected) in [
            ("100000000y", "too long: a new deadline is at most 24h"),
            ("25h", "too long"),
            ("24h 1s", "too long"),
            ("0s", "longer than zero"),
            ("later", "is not a duration"),
        ] {
            let err = text.parse::<Extension>().unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
        assert!(Extension::new(Duration::MAX).is_err());
        // At the end of time, the deadline cannot move: the job is treated as not extended.
        let job = otp(Duration::from_secs(60));
        let deadline = job.not_after.unwrap();
        let end = time::macros::datetime!(9999-12-31 23:59 UTC);
        assert_eq!(
            plan(&letter(Some(job)), extend(86_400), end),
            Plan::Skip(NotReplayed::Expired {
                deadline,
                extendable: true
            })
        );
    }

    #[test]
    fn an_entry_that_never_decoded_cannot_be_replayed() {
        assert_eq!(
            plan(&letter(None), None, OffsetDateTime::now_utc()),
            Plan::Skip(NotReplayed::NoJob)
        );
    }

    #[test]
    fn ids_are_deduplicated_in_order() {
        let ids: Vec<String> = ["b", "a", "b", "c", "a"].map(String::from).to_vec();
        assert_eq!(dedup(&ids), ["b", "a", "c"]);
    }
}
