//! What a replay or a purge comes to, decided without I/O: the plan for one dead letter
//! and the reports that count what was done. Pure; the store applies it, render prints it.

use std::collections::HashSet;
use std::time::Duration;

use herald_shared::Lane;
use herald_shared::dead_letter::DeadLetter;
use herald_shared::job::Attempt;
use serde::Serialize;
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotReplayed {
    /// No dead letter has this id: never dead, or already replayed or purged.
    NotFound,
    /// The entry never decoded into a job: there is nothing to put back.
    NoJob,
    /// Its deadline has passed; `--extend` would give it a new one.
    Expired { deadline: OffsetDateTime },
    /// The stored dead letter is not readable JSON.
    Unreadable(String),
    /// It was dead-lettered anew each time it was read (a worker keeps failing it right now).
    Changing,
}

/// Per-lane counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LaneCounts {
    pub otp: usize,
    pub booking: usize,
}

impl LaneCounts {
    pub(crate) fn add(&mut self, lane: Lane) {
        match lane {
            Lane::Otp => self.otp += 1,
            Lane::Booking => self.booking += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.otp + self.booking
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
    /// Put `job_json` on `lane`; `extended` when `--extend` moved its deadline.
    Move {
        lane: Lane,
        job_json: String,
        extended: bool,
    },
}

/// Decides what replaying `letter` at `now` comes to: the job with a replay marker appended
/// (a fresh budget, the history kept) and, with `extend`, a deadline at least that far off;
/// or why it cannot be replayed.
pub fn plan(letter: &DeadLetter, extend: Option<Duration>, now: OffsetDateTime) -> Plan {
    let Some(job) = &letter.job else {
        return Plan::Skip(NotReplayed::NoJob);
    };
    let mut job = job.clone();
    let mut extended = false;
    if let Some(deadline) = job.not_after {
        match extend {
            Some(extra) if now + extra > deadline => {
                job.not_after = Some(now + extra);
                extended = true;
            }
            Some(_) => {}
            None if job.is_expired(now) => return Plan::Skip(NotReplayed::Expired { deadline }),
            None => {}
        }
    }
    job.attempts.push(Attempt::replayed(now, &letter.reason));
    Plan::Move {
        lane: letter.lane,
        job_json: job.to_json(),
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

    fn moved(plan: Plan) -> (Job, bool) {
        match plan {
            Plan::Move {
                job_json, extended, ..
            } => (Job::from_json(job_json.as_bytes()).unwrap(), extended),
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
            Plan::Skip(NotReplayed::Expired { deadline })
        );
        let (replayed, extended) = moved(plan(
            &letter(Some(job.clone())),
            Some(Duration::from_secs(600)),
            later,
        ));
        assert!(extended);
        assert_eq!(replayed.not_after, Some(later + Duration::from_secs(600)));
        // --extend never shortens a deadline further off than it would set.
        let (kept, extended) = moved(plan(
            &letter(Some(job.clone())),
            Some(Duration::from_secs(1)),
            job.created_at,
        ));
        assert!(!extended);
        assert_eq!(kept.not_after, job.not_after);
    }

    #[test]
    fn a_booking_has_no_deadline_to_extend() {
        let job = Job::booking(herald_shared::job::Booking {
            phone: "+919000000001".into(),
            booking_id: "B1".into(),
            service: "Haircut".into(),
            date: "2026-11-24".into(),
            time: "10:30".into(),
            image_url: None,
        })
        .unwrap();
        let far = job.created_at + Duration::from_secs(86_400 * 30);
        let (replayed, extended) =
            moved(plan(&letter(Some(job)), Some(Duration::from_secs(60)), far));
        assert!(!extended);
        assert_eq!(replayed.not_after, None);
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
