//! A job's timeline: enqueued (and scheduled), each attempt, sent (with Interakt's message
//! id), delivered, read, revoked, dead-lettered, cancelled (or superseded). This module owns
//! the layout of the job's record ([`Keys::job_status`]) and of the message index
//! ([`Keys::message`]), on both sides:
//!
//! - **write**: the fields the enqueue script stores with the job ([`enqueued_fields`]),
//!   the field sets the settle scripts store atomically with each settle ([`sent_fields`],
//!   [`retry_fields`], [`dead_fields`], [`message_fields`]), and the [`Milestone`]s the
//!   webhook processor adds. The record's `state` field ([`Recorded`]) is where a cancel and
//!   the send path's last check meet: the scripts that write it are the only ones that
//!   decide whether a job may still be sent;
//! - **read**: [`find`] and [`find_by_message_id`] return a [`JobTimeline`], a serde struct
//!   for `herald-worker track --json` and any later HTTP API. A job with no timeline yet is
//!   looked up in the dead letters, then on its lane (queued or being sent).
//!
//! [`build`] turns the hash into a timeline and is pure. Events are ordered by lifecycle
//! first and time second (enqueued, attempts and dead letters, sent, delivery events, read),
//! because the clocks involved differ: Interakt stamps a delivery with its own time, which
//! can precede the worker's record of the send by a few milliseconds.

use std::collections::HashMap;

use crate::Keys;
use crate::keys::{JOB_FIELD, WORKER_GROUP};
use deadpool_redis::redis::AsyncCommands;
use deadpool_redis::redis::streams::StreamRangeReply;
use herald_shared::redis_pool::Pool;
use herald_shared::{Job, Lane};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use herald_shared::schedule::format_time;

use crate::dead_letter::DeadLetter;
use herald_shared::redis_pool::RedisFailure;

/// What the message id is recorded as when Interakt's answer carried none.
pub const UNKNOWN_MESSAGE_ID: &str = "unknown";

/// Field names of the timeline hash.
pub mod field {
    pub const KIND: &str = "kind";
    pub const LANE: &str = "lane";
    /// Masked (`+91********99`).
    pub const PHONE: &str = "phone";
    pub const ENQUEUED_AT: &str = "enqueued_at";
    /// JSON array of [`herald_shared::job::Attempt`].
    pub const ATTEMPTS: &str = "attempts";
    pub const RETRY_AT: &str = "retry_at";
    pub const SENT_AT: &str = "sent_at";
    pub const MESSAGE_ID: &str = "message_id";
    pub const DEAD_AT: &str = "dead_at";
    pub const DEAD_REASON: &str = "dead_reason";
    /// Where the job is, as the scripts record it ([`super::Recorded`]).
    pub const STATE: &str = "state";
    /// When a scheduled job is due.
    pub const SEND_AT: &str = "send_at";
    /// The stream entry id of the job on its lane (while it is queued there).
    pub const ENTRY: &str = "entry";
    pub const CANCELLED_AT: &str = "cancelled_at";
    /// The job whose enqueue cancelled this one (same replace key).
    pub const SUPERSEDED_BY: &str = "superseded_by";
    /// Of the message index hash: the job it was sent for.
    pub const JOB_ID: &str = "job_id";
}

/// What a webhook can tell about a sent message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    Delivered,
    Read,
    /// Not delivered before its TTL: withdrawn, the moment SMS fallback matters.
    Revoked,
    /// Interakt tried to withdraw it and could not (it was probably just delivered).
    RevokeFailed,
}

impl Milestone {
    pub const ALL: [Milestone; 4] = [
        Milestone::Delivered,
        Milestone::Read,
        Milestone::Revoked,
        Milestone::RevokeFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Milestone::Delivered => "delivered",
            Milestone::Read => "read",
            Milestone::Revoked => "revoked",
            Milestone::RevokeFailed => "revoke_failed",
        }
    }

    /// The counter it bumps in the stats hash.
    pub fn stat(self) -> crate::keys::Stat {
        use crate::keys::Stat;
        match self {
            Milestone::Delivered => Stat::Delivered,
            Milestone::Read => Stat::Read,
            Milestone::Revoked => Stat::Revoked,
            Milestone::RevokeFailed => Stat::RevokeFailed,
        }
    }

    /// Its timestamp's field in the timeline hash (`delivered_at`).
    pub fn field(self) -> String {
        format!("{}_at", self.as_str())
    }

    fn event(self) -> EventKind {
        match self {
            Milestone::Delivered => EventKind::Delivered,
            Milestone::Read => EventKind::Read,
            Milestone::Revoked => EventKind::Revoked,
            Milestone::RevokeFailed => EventKind::RevokeFailed,
        }
    }
}

/// The `state` field of a job's record: what the scripts record, and what decides whether
/// the job may still be sent or cancelled. The stored names are read by Lua
/// (`store/src/lua/cancel.lua`, `store/src/lua/begin_send.lua`): a rename here must be
/// made there too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Recorded {
    /// Waiting in the scheduled set for its `send_at`.
    Scheduled,
    /// On its lane (or in a replica's hand, before its send began).
    Queued,
    /// Its send began (the begin-send script): too late to cancel.
    Sending,
    /// Parked for a retry.
    Retrying,
    Sent,
    Dead,
    /// Cancelled (or superseded) before its send began: never sent.
    Cancelled,
}

impl Recorded {
    pub const fn as_str(self) -> &'static str {
        match self {
            Recorded::Scheduled => "scheduled",
            Recorded::Queued => "queued",
            Recorded::Sending => "sending",
            Recorded::Retrying => "retrying",
            Recorded::Sent => "sent",
            Recorded::Dead => "dead",
            Recorded::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Recorded> {
        [
            Recorded::Scheduled,
            Recorded::Queued,
            Recorded::Sending,
            Recorded::Retrying,
            Recorded::Sent,
            Recorded::Dead,
            Recorded::Cancelled,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// Where a job is, as `track` and a status API report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its `send_at`.
    Scheduled,
    /// On its lane, not yet taken by a worker.
    Queued,
    /// Taken by a worker, first attempt under way.
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
    /// Cancelled (or superseded by a newer job with its replace key) before its send began:
    /// never sent.
    Cancelled,
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

// ---------------------------------------------------------------------------------------
// Write side: the field sets the settle scripts store.

/// `2026-11-23 10:00:00.123 UTC`: what a person reads in `track`'s text output.
fn display_time(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3] UTC"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(format)
        .expect("a UTC timestamp formats")
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// The fields a settle stores on a job's timeline (or a message index entry): names and
/// string values, in order. The settle scripts take them as arguments (their count, then
/// each name and value: `record` in `store/src/lua/timeline.lua`), so Lua decodes no JSON
/// on the send path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields(Vec<(&'static str, String)>);

impl Fields {
    fn set(&mut self, name: &'static str, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(field) => field.1 = value,
            None => self.0.push((name, value)),
        }
    }

    fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| *n != name);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As one JSON object of strings.
    pub fn to_json(&self) -> String {
        let map: Map<String, Value> = self
            .0
            .iter()
            .map(|(name, value)| (name.to_string(), Value::from(value.as_str())))
            .collect();
        Value::Object(map).to_string()
    }

    /// As the hash the scripts write.
    pub fn to_map(&self) -> HashMap<String, String> {
        self.0
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect()
    }
}

impl redis::ToRedisArgs for Fields {
    /// Their count, then each name and value.
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + redis::RedisWrite,
    {
        out.write_arg_fmt(self.0.len());
        for (name, value) in &self.0 {
            out.write_arg(name.as_bytes());
            out.write_arg(value.as_bytes());
        }
    }
}

/// What the job is and every attempt so far: written by every settle.
fn job_fields(job: &Job) -> Fields {
    let mut fields = Fields::default();
    fields.set(field::KIND, job.kind().as_str());
    fields.set(field::LANE, job.lane().as_str());
    fields.set(field::PHONE, herald_shared::phone::mask(&job.phone()));
    fields.set(field::ENQUEUED_AT, format_time(job.created_at));
    fields.set(
        field::ATTEMPTS,
        serde_json::to_string(&job.attempts).expect("attempts serialize"),
    );
    fields
}

/// The record the enqueue script writes with the job: what it is, when it was enqueued,
/// and `state` ([`Recorded::Scheduled`] with its `send_at`, or [`Recorded::Queued`]).
pub fn enqueued_fields(job: &Job, state: Recorded) -> Fields {
    let mut fields = job_fields(job);
    fields.remove(field::ATTEMPTS);
    fields.set(field::STATE, state.as_str());
    if let Some(due) = job.send_at.filter(|_| state == Recorded::Scheduled) {
        fields.set(field::SEND_AT, format_time(due));
    }
    fields
}

/// The timeline fields of a send Interakt accepted (`message_id` may be `unknown`).
pub fn sent_fields(job: &Job, message_id: &str, at: OffsetDateTime) -> Fields {
    let mut fields = job_fields(job);
    fields.set(field::STATE, Recorded::Sent.as_str());
    fields.set(field::SENT_AT, format_time(at));
    fields.set(field::MESSAGE_ID, message_id);
    fields
}

/// The message index entry of a send: none when Interakt gave no id to index by.
pub fn message_fields(job: &Job, message_id: &str, at: OffsetDateTime) -> Fields {
    let mut fields = Fields::default();
    if message_id.is_empty() || message_id == UNKNOWN_MESSAGE_ID {
        return fields;
    }
    fields.set(field::JOB_ID, job.id.to_string());
    fields.set(field::LANE, job.lane().as_str());
    fields.set(field::PHONE, herald_shared::phone::mask(&job.phone()));
    fields.set(field::SENT_AT, format_time(at));
    fields
}

/// The timeline fields of a job parked for a retry due at `due`.
pub fn retry_fields(job: &Job, due: OffsetDateTime) -> Fields {
    let mut fields = job_fields(job);
    fields.set(field::STATE, Recorded::Retrying.as_str());
    fields.set(field::RETRY_AT, format_time(due));
    fields
}

/// The timeline fields of a dead letter.
pub fn dead_fields(letter: &DeadLetter) -> Fields {
    let mut fields = match &letter.job {
        Some(job) => job_fields(job),
        None => {
            let mut fields = Fields::default();
            fields.set(field::LANE, letter.lane.as_str());
            fields
        }
    };
    fields.set(field::STATE, Recorded::Dead.as_str());
    fields.set(field::DEAD_AT, format_time(letter.dead_at));
    fields.set(field::DEAD_REASON, letter.reason.clone());
    fields
}

// ---------------------------------------------------------------------------------------
// Read side.

/// Builds a timeline from the hash's fields. Pure; a field that does not parse is skipped,
/// never fatal (a timeline is for people).
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
    if let Some(at) = sent_at {
        events.push(TimelineEvent {
            message_id: message_id.clone(),
            ..TimelineEvent::new(EventKind::Sent, at)
        });
    }
    let dead_at = time_of(field::DEAD_AT);
    if let Some(at) = dead_at {
        events.push(TimelineEvent {
            reason: get(field::DEAD_REASON),
            ..TimelineEvent::new(EventKind::Dead, at)
        });
    }
    let recorded = get(field::STATE).as_deref().and_then(Recorded::parse);
    if let Some(at) = time_of(field::CANCELLED_AT) {
        let reason = match get(field::SUPERSEDED_BY) {
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
            events.push(TimelineEvent::new(milestone.event(), at));
            reached.push(milestone);
        }
    }
    events.sort_by_key(|e| (e.event.rank(), e.at, e.event));

    let retry_at = time_of(field::RETRY_AT);
    let state = if reached.contains(&Milestone::Read) {
        JobState::Read
    } else if reached.contains(&Milestone::Delivered) {
        JobState::Delivered
    } else if reached.contains(&Milestone::Revoked) {
        JobState::Revoked
    } else {
        // The latest of sent and dead wins: a dead letter replayed and sent is sent.
        match (sent_at, dead_at) {
            (Some(sent), Some(dead)) if dead > sent => JobState::Dead,
            (Some(_), _) => JobState::Sent,
            (None, _) if recorded == Some(Recorded::Cancelled) => JobState::Cancelled,
            (None, Some(_)) => JobState::Dead,
            (None, None) if retry_at.is_some() => JobState::Retrying,
            (None, None) => match recorded {
                Some(Recorded::Scheduled) => JobState::Scheduled,
                Some(Recorded::Sending) => JobState::Sending,
                _ => JobState::Queued,
            },
        }
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

/// The timeline of a dead letter written before timelines existed (or whose timeline
/// expired): the same fields the dead-letter script writes.
pub fn from_dead_letter(letter: &DeadLetter) -> JobTimeline {
    build(&letter.job_id, &dead_fields(letter).to_map())
}

/// A job found on its lane: queued, or being sent when a worker holds it.
pub fn from_lane(job: &Job, being_sent: bool) -> JobTimeline {
    let mut timeline = build(&job.id.to_string(), &job_fields(job).to_map());
    if being_sent && timeline.state == JobState::Queued {
        timeline.state = JobState::Sending;
    }
    timeline
}

/// The timeline of `job_id`: its timeline hash, else its dead letter, else its lane entry.
/// `None` when Herald knows nothing of it (never enqueued, expired, or enqueued so long ago
/// that the bounded lane search does not reach it).
///
/// A job settled between those reads (its record written and its entry deleted in one
/// script) would be in none of them: the record and the dead letter are read once more
/// after a lane search that found nothing.
pub async fn find(
    pool: &Pool,
    keys: &Keys,
    job_id: &str,
) -> Result<Option<JobTimeline>, RedisFailure> {
    if let Some(found) = find_settled(pool, keys, job_id).await? {
        return Ok(Some(found));
    }
    if let Some(found) = find_on_lanes(pool, keys, job_id).await? {
        return Ok(Some(found));
    }
    find_settled(pool, keys, job_id).await
}

/// The timeline of a job that has a record (sent, retrying, tracked) or a dead letter.
async fn find_settled(
    pool: &Pool,
    keys: &Keys,
    job_id: &str,
) -> Result<Option<JobTimeline>, RedisFailure> {
    let mut conn = pool.get().await?;
    let fields: HashMap<String, String> = conn.hgetall(keys.job_status(job_id)).await?;
    if !fields.is_empty() {
        return Ok(Some(build(job_id, &fields)));
    }
    let letter: Option<String> = conn.hget(keys.dead(), job_id).await?;
    Ok(letter
        .and_then(|json| serde_json::from_str::<DeadLetter>(&json).ok())
        .map(|letter| from_dead_letter(&letter)))
}

/// The timeline of the job Interakt's message `message_id` was sent for.
pub async fn find_by_message_id(
    pool: &Pool,
    keys: &Keys,
    message_id: &str,
) -> Result<Option<JobTimeline>, RedisFailure> {
    let job_id: Option<String> = {
        let mut conn = pool.get().await?;
        conn.hget(keys.message(message_id), field::JOB_ID).await?
    };
    match job_id {
        Some(job_id) => find(pool, keys, &job_id).await,
        None => Ok(None),
    }
}

/// Lane entries read per page, and pages read at most, per lane.
const LANE_PAGE: usize = 500;
const LANE_PAGES: usize = 20;
/// How far before a job's creation its entry may sit (clocks of producer and Redis differ).
const LANE_SKEW_MS: u64 = 5_000;

/// Looks for a job that has not been settled yet on its lane. Job ids are UUID v7, stamped
/// when the job was created, and stream ids are stamped when it was enqueued, so the search
/// starts just before the job's creation and reads a bounded number of entries.
async fn find_on_lanes(
    pool: &Pool,
    keys: &Keys,
    job_id: &str,
) -> Result<Option<JobTimeline>, RedisFailure> {
    let Some(created_ms) = uuid_v7_millis(job_id) else {
        return Ok(None);
    };
    let needle = format!("\"id\":\"{job_id}\"");
    let mut conn = pool.get().await?;
    for lane in Lane::ALL {
        let stream = keys.lane(lane);
        let mut start = format!("{}-0", created_ms.saturating_sub(LANE_SKEW_MS));
        for _ in 0..LANE_PAGES {
            let page: StreamRangeReply = conn.xrange_count(&stream, &start, "+", LANE_PAGE).await?;
            for entry in &page.ids {
                let Some(raw) = entry.get::<String>(JOB_FIELD) else {
                    continue;
                };
                if !raw.contains(&needle) {
                    continue;
                }
                let Ok(job) = Job::from_json(raw.as_bytes()) else {
                    continue;
                };
                let pending: deadpool_redis::redis::Value = deadpool_redis::redis::cmd("XPENDING")
                    .arg(&stream)
                    .arg(WORKER_GROUP)
                    .arg(&entry.id)
                    .arg(&entry.id)
                    .arg(1)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or(deadpool_redis::redis::Value::Nil);
                let being_sent =
                    matches!(pending, deadpool_redis::redis::Value::Array(ref v) if !v.is_empty());
                return Ok(Some(from_lane(&job, being_sent)));
            }
            match page.ids.last() {
                Some(last) if page.ids.len() == LANE_PAGE => start = format!("({}", last.id),
                _ => break,
            }
        }
    }
    Ok(None)
}

/// The creation time (Unix ms) of a UUID v7, `None` for anything else.
fn uuid_v7_millis(id: &str) -> Option<u64> {
    let uuid = uuid::Uuid::parse_str(id).ok()?;
    let (secs, nanos) = uuid.get_timestamp()?.to_unix();
    (uuid.get_version_num() == 7).then(|| secs * 1000 + u64::from(nanos) / 1_000_000)
}

// ---------------------------------------------------------------------------------------
// Rendering.

/// The human-readable timeline `herald-worker track` prints.
pub fn render(timeline: &JobTimeline) -> String {
    let mut out = format!("job {}\n", timeline.job_id);
    let mut about = vec![format!("state: {}", timeline.state.as_str())];
    about.extend(timeline.kind.as_ref().map(|k| format!("kind: {k}")));
    about.extend(timeline.lane.as_ref().map(|l| format!("lane: {l}")));
    about.extend(timeline.phone.as_ref().map(|p| format!("phone: {p}")));
    about.extend(
        timeline
            .message_id
            .as_ref()
            .map(|m| format!("interakt id: {m}")),
    );
    about.extend(
        timeline
            .retry_at
            .map(|at| format!("next attempt: {}", display_time(at))),
    );
    about.extend(
        timeline
            .send_at
            .map(|at| format!("due: {}", display_time(at))),
    );
    out.push_str(&format!("  {}\n", about.join(", ")));
    let mut attempt = 0;
    for event in &timeline.events {
        let what = match event.event {
            EventKind::Attempt => {
                attempt += 1;
                let mut text = format!(
                    "attempt {attempt}: {}",
                    event.outcome.as_deref().unwrap_or("?")
                );
                if let Some(status) = event.status {
                    text.push_str(&format!(" (HTTP {status})"));
                }
                if let Some(error) = &event.error {
                    text.push_str(&format!(": {error}"));
                }
                text
            }
            EventKind::Sent => format!(
                "sent, interakt id {}",
                event.message_id.as_deref().unwrap_or("unknown")
            ),
            EventKind::Dead => format!(
                "dead-lettered: {}",
                event.reason.as_deref().unwrap_or("no reason recorded")
            ),
            EventKind::Cancelled => event.reason.clone().unwrap_or_else(|| "cancelled".into()),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
                .replace('_', " "),
        };
        out.push_str(&format!("  {}  {what}\n", display_time(event.at)));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use herald_shared::job::{Attempt, Booking};
    use time::macros::datetime;

    use super::*;

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
        let scheduled = enqueued_fields(&job, Recorded::Scheduled).to_map();
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
        assert_eq!(json["state"], "cancelled");
        assert_eq!(json["events"][1]["event"], "cancelled");
        let sending = with(
            enqueued_fields(&job, Recorded::Queued).to_map(),
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
            assert_eq!(Recorded::parse(recorded).unwrap().as_str(), recorded);
        }
    }

    #[test]
    fn a_job_on_its_lane_is_queued_or_being_sent() {
        let job = job();
        assert_eq!(from_lane(&job, false).state, JobState::Queued);
        assert_eq!(from_lane(&job, true).state, JobState::Sending);
        assert_eq!(kinds(&from_lane(&job, true)), [EventKind::Enqueued]);
    }

    #[test]
    fn unknown_message_ids_are_not_indexed_and_bad_fields_are_skipped() {
        let job = job();
        assert!(message_fields(&job, "unknown", job.created_at).is_empty());
        let index: Value =
            serde_json::from_str(&message_fields(&job, "m", job.created_at).to_json()).unwrap();
        assert_eq!(index["job_id"], job.id.to_string());
        assert_eq!(index["lane"], "booking");
        let fields = with(
            HashMap::new(),
            &[("sent_at", "yesterday"), ("attempts", "[")],
        );
        let timeline = build("j", &fields);
        assert!(timeline.events.is_empty());
        assert_eq!(timeline.state, JobState::Queued);
    }

    #[test]
    fn uuid_v7_ids_give_their_creation_time() {
        let job = job();
        let ms = uuid_v7_millis(&job.id.to_string()).unwrap();
        let now = OffsetDateTime::now_utc().unix_timestamp() as u64 * 1000;
        assert!(now.abs_diff(ms) < 60_000, "{ms} vs {now}");
        assert_eq!(uuid_v7_millis(&uuid::Uuid::new_v4().to_string()), None);
        assert_eq!(uuid_v7_millis("entry:1-0"), None);
    }
}
