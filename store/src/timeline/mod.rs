//! A job's timeline, as `track`, the API (`GET /v1/jobs/{id}`) and the dashboard show it:
//! enqueued (and scheduled), each attempt, sent (with Interakt's message id), delivered,
//! read, revoked, dead-lettered, cancelled or superseded, and where the job is now
//! ([`JobState`]). This module reads what [`crate::record`] writes:
//!
//! - [`build`] turns a record into a timeline and is pure;
//! - [`find`] and [`find_by_message_id`] look a job up: its record, else its dead letter,
//!   else its lane (a job enqueued before records existed);
//! - [`render`] is the text `herald-worker track` prints.
//!
//! Events are ordered by lifecycle first and time second (enqueued, attempts and dead
//! letters, sent, delivery events, read), because the clocks involved differ: Interakt
//! stamps a delivery with its own time, which can precede the worker's record of the send by
//! a few milliseconds.

mod find;
mod render;

use std::collections::HashMap;

use herald_shared::Job;
use herald_shared::job::Outcome;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use find::{find, find_by_message_id};
pub use render::render;

use crate::dead_letter::{DeadKind, DeadLetter};
use crate::lifecycle::State;
use crate::record::{Milestone, dead_fields, field, job_fields, parse_time};

/// Where a job is, as `track` and a status API report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its `send_at`.
    Scheduled,
    /// On its lane, not yet taken by a worker.
    Queued,
    /// Read by a worker replica, waiting there for a token or a slot; not begun.
    InHand,
    /// Its send began: an attempt is under way.
    Sending,
    /// An attempt failed; another is scheduled.
    Retrying,
    /// Interakt accepted it.
    Sent,
    Delivered,
    Read,
    /// Withdrawn by Interakt after its TTL: not delivered.
    Revoked,
    Dead,
    /// Past its deadline before it could be sent: a dead letter.
    Expired,
    /// Cancelled before its send began (or while a failed attempt was under way): never
    /// sent.
    Cancelled,
    /// Replaced by a newer job with its replace key before it was sent: never sent.
    Superseded,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Cancelled => "cancelled",
            JobState::Queued => "queued",
            JobState::Sending => "sending",
            JobState::Retrying => "retrying",
            JobState::Sent => "sent",
            JobState::Delivered => "delivered",
            JobState::Read => "read",
            JobState::Revoked => "revoked",
            JobState::Dead => "dead",
            JobState::InHand => "in_hand",
            JobState::Expired => "expired",
            JobState::Superseded => "superseded",
        }
    }
}

/// The kinds of timeline event.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Enqueued,
    Attempt,
    Dead,
    /// Cancelled, or superseded (`reason`: `superseded by <id>`).
    Cancelled,
    Sent,
    Revoked,
    RevokeFailed,
    Delivered,
    Read,
}

impl EventKind {
    /// Lifecycle position; events of one rank are ordered by time.
    fn rank(self) -> u8 {
        match self {
            EventKind::Enqueued => 0,
            EventKind::Attempt | EventKind::Dead | EventKind::Cancelled => 1,
            EventKind::Sent => 2,
            EventKind::Revoked | EventKind::RevokeFailed | EventKind::Delivered => 3,
            EventKind::Read => 4,
        }
    }
}

/// One event of a timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineEvent {
    pub event: EventKind,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// Attempts: `sent`, `transient`, `rate_limited`, `permanent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Attempts: the HTTP status Interakt answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Attempts: what went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Sent: Interakt's message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Dead: why. Cancelled: `cancelled`, or `superseded by <id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl TimelineEvent {
    fn new(event: EventKind, at: OffsetDateTime) -> Self {
        TimelineEvent {
            event,
            at,
            outcome: None,
            status: None,
            error: None,
            message_id: None,
            reason: None,
        }
    }
}

/// Everything Herald knows of one job, oldest event first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobTimeline {
    pub job_id: String,
    pub state: JobState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<String>,
    /// Masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Interakt's message id, once sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// When the next attempt is due, while retrying.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub retry_at: Option<OffsetDateTime>,
    /// When a scheduled job is due.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub send_at: Option<OffsetDateTime>,
    pub events: Vec<TimelineEvent>,
}

/// Builds a timeline from the record's fields. Pure; a field that does not parse is skipped,
/// never fatal (a timeline is for people). The record's `state` says where the job is
/// ([`State`]); a sent job's milestones say how far its message got. Records written before
/// every step wrote its state are read as they always were (the latest of sent and dead).
pub fn build(job_id: &str, fields: &HashMap<String, String>) -> JobTimeline {
    let get = |name: &str| fields.get(name).filter(|v| !v.is_empty()).cloned();
    let time_of = |name: &str| get(name).as_deref().and_then(parse_time);
    let mut events = Vec::new();
    if let Some(at) = time_of(field::ENQUEUED_AT) {
        events.push(TimelineEvent::new(EventKind::Enqueued, at));
    }
    let attempts: Vec<herald_shared::job::Attempt> = get(field::ATTEMPTS)
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    for attempt in attempts {
        events.push(TimelineEvent {
            outcome: Some(attempt.outcome.as_str().to_string()),
            status: attempt.status,
            error: attempt.error,
            ..TimelineEvent::new(EventKind::Attempt, attempt.at)
        });
    }
    let message_id = get(field::MESSAGE_ID);
    let sent_at = time_of(field::SENT_AT);
    // The send's own attempt, when its settle kept it apart from `attempts`
    // (`record::sent_update_fields`): at the send's time.
    if let (Some(at), Some(status)) = (
        sent_at,
        get(field::SENT_STATUS).and_then(|s| s.parse::<u16>().ok()),
    ) {
        events.push(TimelineEvent {
            outcome: Some(Outcome::Sent.as_str().to_string()),
            status: Some(status),
            ..TimelineEvent::new(EventKind::Attempt, at)
        });
    }
    if let Some(at) = sent_at {
        events.push(TimelineEvent {
            message_id: message_id.clone(),
            ..TimelineEvent::new(EventKind::Sent, at)
        });
    }
    let dead_at = time_of(field::DEAD_AT);
    let dead_reason = get(field::DEAD_REASON);
    if let Some(at) = dead_at {
        events.push(TimelineEvent {
            reason: dead_reason.clone(),
            ..TimelineEvent::new(EventKind::Dead, at)
        });
    }
    let superseded_by = get(field::SUPERSEDED_BY);
    let mut recorded = get(field::STATE).as_deref().and_then(State::parse);
    // Releases before `superseded` wrote `cancelled` with the newer job's id.
    if recorded == Some(State::Cancelled) && superseded_by.is_some() {
        recorded = Some(State::Superseded);
    }
    // ... and `dead` for a job that expired.
    if recorded == Some(State::Dead)
        && dead_reason
            .as_deref()
            .is_some_and(|r| DeadKind::from_legacy_reason(r) == DeadKind::Expired)
    {
        recorded = Some(State::Expired);
    }
    let stopped = matches!(recorded, Some(State::Cancelled | State::Superseded));
    if let Some(at) = time_of(field::CANCELLED_AT).filter(|_| stopped) {
        let reason = match &superseded_by {
            Some(by) => format!("superseded by {by}"),
            None => "cancelled".to_string(),
        };
        events.push(TimelineEvent {
            reason: Some(reason),
            ..TimelineEvent::new(EventKind::Cancelled, at)
        });
    }
    let mut reached = Vec::new();
    for milestone in Milestone::ALL {
        if let Some(at) = time_of(&milestone.field()) {
            events.push(TimelineEvent::new(milestone_event(milestone), at));
            reached.push(milestone);
        }
    }
    events.sort_by_key(|e| (e.event.rank(), e.at, e.event));

    let retry_at = time_of(field::RETRY_AT);
    let delivered = || {
        if reached.contains(&Milestone::Read) {
            JobState::Read
        } else if reached.contains(&Milestone::Delivered) {
            JobState::Delivered
        } else if reached.contains(&Milestone::Revoked) {
            JobState::Revoked
        } else {
            JobState::Sent
        }
    };
    let state = match recorded {
        Some(State::Sent) => delivered(),
        _ if sent_at.is_some() && !reached.is_empty() => delivered(),
        Some(State::Scheduled) => JobState::Scheduled,
        Some(State::Queued) => JobState::Queued,
        Some(State::Sending) => JobState::Sending,
        Some(State::Retrying) => JobState::Retrying,
        Some(State::Dead) => JobState::Dead,
        Some(State::Expired) => JobState::Expired,
        Some(State::Cancelled) => JobState::Cancelled,
        Some(State::Superseded) => JobState::Superseded,
        // No state recorded: the latest of sent and dead wins.
        None => match (sent_at, dead_at) {
            (Some(sent), Some(dead)) if dead > sent => JobState::Dead,
            (Some(_), _) => delivered(),
            (None, Some(_)) => JobState::Dead,
            (None, None) if retry_at.is_some() => JobState::Retrying,
            (None, None) => JobState::Queued,
        },
    };
    JobTimeline {
        job_id: job_id.to_string(),
        state,
        kind: get(field::KIND),
        lane: get(field::LANE),
        phone: get(field::PHONE),
        message_id,
        retry_at: (state == JobState::Retrying).then_some(retry_at).flatten(),
        send_at: (state == JobState::Scheduled)
            .then(|| time_of(field::SEND_AT))
            .flatten(),
        events,
    }
}

fn milestone_event(milestone: Milestone) -> EventKind {
    match milestone {
        Milestone::Delivered => EventKind::Delivered,
        Milestone::Read => EventKind::Read,
        Milestone::Revoked => EventKind::Revoked,
        Milestone::RevokeFailed => EventKind::RevokeFailed,
    }
}

/// The timeline of a dead letter written before timelines existed (or whose timeline
/// expired): the same fields the dead-letter script writes.
pub fn from_dead_letter(letter: &DeadLetter) -> JobTimeline {
    build(&letter.job_id, &dead_fields(letter).to_map())
}

/// A job found on its lane without a record: queued, or in a replica's hand.
pub fn from_lane(job: &Job, in_hand: bool) -> JobTimeline {
    let mut timeline = build(&job.id.to_string(), &job_fields(job).to_map());
    if in_hand && timeline.state == JobState::Queued {
        timeline.state = JobState::InHand;
    }
    timeline
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use herald_shared::job::{Attempt, Booking};
    use time::macros::datetime;

    use super::*;
    use crate::record::{enqueued_fields, retry_fields, sent_fields, sent_update_fields};
    use herald_shared::Lane;

    fn job() -> Job {
        let mut job = Job::booking(Booking {
            phone: "+919999999912".into(),
            booking_id: "B123".into(),
            service: "Haircut".into(),
            date: "2026-11-24".into(),
            time: "10:30".into(),
            image_url: None,
        })
        .unwrap();
        job.created_at = datetime!(2026-11-23 10:00:00 UTC);
        job
    }

    fn attempt(at: OffsetDateTime, outcome: &str, status: u16) -> Attempt {
        Attempt {
            at,
            outcome: serde_json::from_value(serde_json::Value::from(outcome)).unwrap(),
            status: Some(status),
            error: (outcome != "sent").then(|| format!("HTTP {status}")),
            body: None,
            consumer: Some("w1".into()),
        }
    }

    fn with(
        mut fields: HashMap<String, String>,
        extra: &[(&str, &str)],
    ) -> HashMap<String, String> {
        for (k, v) in extra {
            fields.insert(k.to_string(), v.to_string());
        }
        fields
    }

    fn kinds(timeline: &JobTimeline) -> Vec<EventKind> {
        timeline.events.iter().map(|e| e.event).collect()
    }

    #[test]
    fn a_sent_then_delivered_then_read_job_in_lifecycle_order() {
        let mut job = job();
        let t0 = job.created_at;
        job.attempts = vec![
            attempt(t0 + Duration::from_secs(1), "transient", 503),
            attempt(t0 + Duration::from_secs(3), "sent", 200),
        ];
        let sent_at = t0 + Duration::from_millis(3010);
        let fields = sent_fields(&job, "m-1", sent_at).to_map();
        // Interakt's clock says delivered a few ms before the worker recorded the send.
        let fields = with(
            fields,
            &[
                ("read_at", "2026-11-23T10:00:05.000Z"),
                ("delivered_at", "2026-11-23T10:00:03.005Z"),
            ],
        );
        let timeline = build(&job.id.to_string(), &fields);
        assert_eq!(timeline.state, JobState::Read);
        assert_eq!(
            kinds(&timeline),
            [
                EventKind::Enqueued,
                EventKind::Attempt,
                EventKind::Attempt,
                EventKind::Sent,
                EventKind::Delivered,
                EventKind::Read
            ]
        );
        assert_eq!(timeline.message_id.as_deref(), Some("m-1"));
        assert_eq!(timeline.phone.as_deref(), Some("+91********12"));
        assert_eq!(timeline.events[1].status, Some(503));
        assert_eq!(timeline.events[3].message_id.as_deref(), Some("m-1"));
        let json = serde_json::to_value(&timeline).unwrap();
        assert_eq!(json["state"], "read");
        assert_eq!(json["events"][0]["event"], "enqueued");
        assert_eq!(json["events"][0]["at"], "2026-11-23T10:00:00Z");
        let text = render(&timeline);
        assert!(
            text.contains("attempt 1: transient (HTTP 503): HTTP 503"),
            "{text}"
        );
        assert!(text.contains("sent, interakt id m-1"), "{text}");
        assert!(text.contains("state: read"), "{text}");
        assert!(
            text.contains("  2026-11-23 10:00:00.000 UTC  enqueued\n"),
            "{text}"
        );
    }

    #[test]
    fn states_follow_the_furthest_milestone() {
        let job = job();
        let sent = sent_fields(&job, "m", job.created_at).to_map();
        let state = |extra: &[(&str, &str)]| build("j", &with(sent.clone(), extra)).state;
        assert_eq!(state(&[]), JobState::Sent);
        assert_eq!(
            state(&[("revoked_at", "2026-11-23T11:00:00Z")]),
            JobState::Revoked
        );
        assert_eq!(
            state(&[("revoke_failed_at", "2026-11-23T11:00:00Z")]),
            JobState::Sent
        );
        assert_eq!(
            state(&[("delivered_at", "2026-11-23T10:00:01Z")]),
            JobState::Delivered
        );
        assert_eq!(
            state(&[
                ("delivered_at", "2026-11-23T10:00:01Z"),
                ("read_at", "2026-11-23T10:00:02Z")
            ]),
            JobState::Read
        );
        // A read without a delivered event (events can be lost) is still read.
        assert_eq!(
            state(&[("read_at", "2026-11-23T10:00:02Z")]),
            JobState::Read
        );
    }

    #[test]
    fn retrying_and_dead_jobs() {
        let mut job = job();
        job.attempts = vec![attempt(job.created_at, "transient", 503)];
        let due = job.created_at + Duration::from_secs(2);
        let timeline = build("j", &retry_fields(&job, due).to_map());
        assert_eq!(timeline.state, JobState::Retrying);
        assert_eq!(timeline.retry_at, Some(due));

        let letter = DeadLetter {
            job_id: job.id.to_string(),
            lane: Lane::Booking,
            reason: "permanent: HTTP 400: Invalid template".into(),
            kind: None,
            consumer: "w1".into(),
            dead_at: job.created_at + Duration::from_secs(1),
            job: Some(job.clone()),
            raw: None,
        };
        let timeline = from_dead_letter(&letter);
        assert_eq!(timeline.state, JobState::Dead);
        assert_eq!(timeline.retry_at, None);
        assert_eq!(
            kinds(&timeline),
            [EventKind::Enqueued, EventKind::Attempt, EventKind::Dead]
        );
        assert!(render(&timeline).contains("dead-lettered: permanent: HTTP 400"));
    }

    #[test]
    fn scheduled_cancelled_and_superseded_jobs() {
        let mut job = job();
        job.send_at = Some(job.created_at + Duration::from_secs(3600));
        let scheduled = enqueued_fields(&job, State::Scheduled, None).to_map();
        let timeline = build("j", &scheduled);
        assert_eq!(timeline.state, JobState::Scheduled);
        assert_eq!(timeline.send_at, job.send_at);
        assert!(render(&timeline).contains("state: scheduled"));
        assert!(render(&timeline).contains("due: 2026-11-23 11:00:00.000 UTC"));
        let cancelled = with(
            scheduled.clone(),
            &[
                ("state", "cancelled"),
                ("cancelled_at", "2026-11-23T10:05:00Z"),
            ],
        );
        let timeline = build("j", &cancelled);
        assert_eq!(timeline.state, JobState::Cancelled);
        assert_eq!(timeline.send_at, None);
        assert_eq!(
            kinds(&timeline),
            [EventKind::Enqueued, EventKind::Cancelled]
        );
        assert!(
            render(&timeline).contains("  cancelled\n"),
            "{}",
            render(&timeline)
        );
        let superseded = with(cancelled, &[("superseded_by", "0193-new")]);
        let timeline = build("j", &superseded);
        assert_eq!(
            timeline.events[1].reason.as_deref(),
            Some("superseded by 0193-new")
        );
        assert!(render(&timeline).contains("superseded by 0193-new"));
        let json = serde_json::to_value(&timeline).unwrap();
        // Written by releases before `superseded` existed: `cancelled` with the newer id.
        assert_eq!(json["state"], "superseded");
        assert_eq!(json["events"][1]["event"], "cancelled");
        let superseded = with(
            scheduled.clone(),
            &[
                ("state", "superseded"),
                ("cancelled_at", "2026-11-23T10:05:00Z"),
                ("superseded_by", "0193-new"),
            ],
        );
        assert_eq!(build("j", &superseded).state, JobState::Superseded);
        let sending = with(
            enqueued_fields(&job, State::Queued, None).to_map(),
            &[("state", "sending")],
        );
        assert_eq!(build("j", &sending).state, JobState::Sending);
        for recorded in [
            "scheduled",
            "queued",
            "sending",
            "retrying",
            "sent",
            "dead",
            "cancelled",
        ] {
            assert_eq!(State::parse(recorded).unwrap().as_str(), recorded);
        }
    }

    #[test]
    fn a_job_on_its_lane_is_queued_or_being_sent() {
        let job = job();
        assert_eq!(from_lane(&job, false).state, JobState::Queued);
        assert_eq!(from_lane(&job, true).state, JobState::InHand);
        assert_eq!(kinds(&from_lane(&job, true)), [EventKind::Enqueued]);
    }

    #[test]
    fn bad_fields_are_skipped() {
        let fields = with(
            HashMap::new(),
            &[("sent_at", "yesterday"), ("attempts", "[")],
        );
        let timeline = build("j", &fields);
        assert!(timeline.events.is_empty());
        assert_eq!(timeline.state, JobState::Queued);
    }

    /// A send's settle writes only what the send changed on a record that is there
    /// (`RecordWrite::Update`): the record it leaves reads as the whole write would, after
    /// an enqueue and after a retry.
    #[test]
    fn a_sent_record_updated_in_place_reads_as_one_written_whole() {
        let mut job = job();
        let t0 = job.created_at;
        let sent_at = t0 + Duration::from_secs(9);
        let enqueued = enqueued_fields(&job, State::Queued, None).to_map();
        job.attempts = vec![attempt(t0 + Duration::from_secs(1), "transient", 503)];
        let retried = with(
            enqueued.clone(),
            &retry_fields(&job, t0 + Duration::from_secs(5))
                .to_map()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        );
        // The send's attempt is answered at the send's time (in a worker, microseconds
        // apart): kept apart from `attempts`, it is read back at `sent_at`.
        job.attempts.push(attempt(sent_at, "sent", 200));
        // A first send's record keeps every value short: a listpack in Redis.
        let first = sent_update_fields(&job_sent_first(&job, sent_at), "m-1", sent_at).to_map();
        assert!(!first.contains_key("attempts"), "{first:?}");
        assert_eq!(first["sent_status"], "200");
        assert!(first.values().all(|v| v.len() <= 64), "{first:?}");
        for before in [enqueued, retried] {
            let updated = sent_update_fields(&job, "m-1", sent_at).to_map();
            let mut in_place = before.clone();
            in_place.extend(updated);
            // The settle deletes what a queued or retrying job had and a sent one has not.
            in_place.remove("retry_at");
            let whole = sent_fields(&job, "m-1", sent_at).to_map();
            // Everything but the attempts, which keep the send's own apart.
            for (name, value) in whole.iter().filter(|(name, _)| *name != "attempts") {
                assert_eq!(in_place.get(name), Some(value), "{name}");
            }
            let read = build(&job.id.to_string(), &in_place);
            assert_eq!(read, build(&job.id.to_string(), &whole));
            assert_eq!(read.state, JobState::Sent);
            assert_eq!(read.phone.as_deref(), Some("+91********12"));
        }
    }

    /// `job` as sent at its first attempt, at `at`.
    fn job_sent_first(job: &Job, at: OffsetDateTime) -> Job {
        let mut job = job.clone();
        job.attempts = vec![attempt(at, "sent", 200)];
        job
    }
}
