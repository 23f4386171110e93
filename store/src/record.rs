//! A job's record ([`crate::Keys::job_status`]): its field names and what each step
//! writes. Scripts take the fields as arguments (their count,
//! then each name and value: `record` in `store/src/lua/record.lua`), so Lua decodes no JSON
//! on the send path; the `state` field is written by the lifecycle's scripts alone
//! ([`crate::lifecycle`]). The read side is [`crate::timeline`].

use std::collections::HashMap;

use herald_shared::Job;
use herald_shared::job::{Attempt, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use herald_shared::schedule::format_time;

use crate::dead_letter::{DeadKind, DeadLetter};
use crate::keys::Stat;
use crate::lifecycle::State;

/// What the message id is recorded as when Interakt's answer carried none.
pub const UNKNOWN_MESSAGE_ID: &str = "unknown";

/// Field names of the timeline hash.
pub mod field {
    pub const KIND: &str = "kind";
    pub const LANE: &str = "lane";
    /// The job's tenant, when not the default.
    pub const TENANT: &str = "tenant";
    /// Masked (`+91********99`).
    pub const PHONE: &str = "phone";
    pub const ENQUEUED_AT: &str = "enqueued_at";
    /// JSON array of [`herald_shared::job::Attempt`].
    pub const ATTEMPTS: &str = "attempts";
    pub const RETRY_AT: &str = "retry_at";
    pub const SENT_AT: &str = "sent_at";
    /// The send's own attempt, when the settle kept it apart from [`ATTEMPTS`] (see
    /// [`super::sent_update_fields`]): Interakt's HTTP status, and the replica that sent it.
    /// Its time is [`SENT_AT`].
    pub const SENT_STATUS: &str = "sent_status";
    pub const SENT_BY: &str = "sent_by";
    pub const MESSAGE_ID: &str = "message_id";
    pub const DEAD_AT: &str = "dead_at";
    pub const DEAD_REASON: &str = "dead_reason";
    /// Where the job is ([`crate::lifecycle::State`]).
    pub const STATE: &str = "state";
    /// When a scheduled job is due.
    pub const SEND_AT: &str = "send_at";
    /// The stream entry id of the job on its lane (while it is queued there).
    pub const ENTRY: &str = "entry";
    pub const CANCELLED_AT: &str = "cancelled_at";
    /// The job whose enqueue cancelled this one (same replace key).
    pub const SUPERSEDED_BY: &str = "superseded_by";
    /// Of a record: the idempotency claim's key while the job has one, and the key's window
    /// (ms), so the claim can follow the job (`follow_claim` in lifecycle.lua).
    pub const CLAIM: &str = "claim";
    pub const CLAIM_MS: &str = "claim_ms";
    /// A stop (`cancelled` or `superseded`) noted while the job was sending: it takes effect
    /// when that attempt is over, unless it was sent.
    pub const STOP: &str = "stop";
    /// The delayed set's member of a job waiting for a retry, so a cancel can take it out.
    pub const DELAYED: &str = "delayed";
    /// The id of an older job of the same replace key still being sent when this one was
    /// enqueued: this one waits for it.
    pub const SUPERSEDES: &str = "supersedes";
    /// Of the message index hash older releases wrote ([`crate::message_index`]): the job
    /// it was sent for.
    pub const JOB_ID: &str = "job_id";
    /// The W3C `traceparent` the job was created in, when it carries one: how the webhook
    /// links its span of a delivery report to the job's trace.
    pub const TRACEPARENT: &str = "traceparent";
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
    pub fn stat(self) -> Stat {
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
}

/// The fields a settle stores on a job's timeline (or a message index entry): names and
/// string values, in order. The settle scripts take them as arguments (their count, then
/// each name and value: `record` in `store/src/lua/timeline.lua`), so Lua decodes no JSON
/// on the send path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields(Vec<(&'static str, String)>);

impl Fields {
    pub(crate) fn set(&mut self, name: &'static str, value: impl Into<String>) {
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
pub(crate) fn job_fields(job: &Job) -> Fields {
    let mut fields = Fields::default();
    fields.set(field::KIND, job.kind().as_str());
    fields.set(field::LANE, job.lane().as_str());
    if let Some(tenant) = &job.tenant {
        fields.set(field::TENANT, tenant.as_str());
    }
    fields.set(field::PHONE, herald_shared::phone::mask(&job.phone()));
    fields.set(field::ENQUEUED_AT, format_time(job.created_at));
    if let Some(traceparent) = &job.traceparent {
        fields.set(field::TRACEPARENT, traceparent.as_str());
    }
    fields.set(field::ATTEMPTS, attempts_json(&job.attempts));
    fields
}

/// The idempotency claim of a job: its key's name and the key's window, which the record
/// keeps so that the claim follows the job through its lifecycle.
#[derive(Clone, Copy, Debug)]
pub struct Claim<'a> {
    pub key: &'a str,
    pub window_ms: u64,
}

/// The record the enqueue script writes with the job: what it is, when it was enqueued,
/// its claim, and `state` ([`State::Scheduled`] with its `send_at`, or [`State::Queued`]).
pub fn enqueued_fields(job: &Job, state: State, claim: Option<Claim>) -> Fields {
    let mut fields = job_fields(job);
    fields.remove(field::ATTEMPTS);
    fields.set(field::STATE, state.as_str());
    if let Some(due) = job.send_at.filter(|_| state == State::Scheduled) {
        fields.set(field::SEND_AT, format_time(due));
    }
    if let Some(claim) = claim {
        fields.set(field::CLAIM, claim.key);
        fields.set(field::CLAIM_MS, claim.window_ms.to_string());
    }
    fields
}

/// The record of a dead letter replayed onto its lane: `queued` again, its attempts (with
/// the replay's marker) kept, its claim named (the replay script keeps the record's window,
/// or sets one).
pub fn replayed_fields(job: &Job, claim_key: Option<&str>) -> Fields {
    let mut fields = job_fields(job);
    fields.set(field::STATE, State::Queued.as_str());
    if let Some(key) = claim_key {
        fields.set(field::CLAIM, key);
    }
    fields
}

/// The record fields of a send Interakt accepted (`message_id` may be `unknown`).
pub fn sent_fields(job: &Job, message_id: &str, at: OffsetDateTime) -> Fields {
    let mut fields = job_fields(job);
    fields.set(field::STATE, State::Sent.as_str());
    fields.set(field::SENT_AT, format_time(at));
    fields.set(field::MESSAGE_ID, message_id);
    fields
}

/// What a send changes on a record that is there (`begin_send.lua` found it and marked it
/// `sending`): the state, the send's time and message id, and the attempts with this one.
/// What the job is (kind, lane, phone, ...) is already there: every step that writes a
/// record writes it whole ([`job_fields`]), and nothing deletes a record's fields but its
/// expiry.
///
/// The send's own attempt (a plain 2xx) is kept apart, as [`field::SENT_STATUS`] and
/// [`field::SENT_BY`] at [`field::SENT_AT`]'s time, and `attempts` holds the ones before it,
/// written only when there are any (the enqueue writes none; a retry or a replay wrote them
/// already). The attempt's JSON is about 100 bytes: past Redis's 64-byte limit for a small
/// hash's values (`hash-max-listpack-value`), it made every sent record a hash table, about
/// 550 bytes more per record and the costlier write. [`crate::timeline::build`] reads both
/// forms.
pub fn sent_update_fields(job: &Job, message_id: &str, at: OffsetDateTime) -> Fields {
    let mut fields = Fields::default();
    match job.attempts.split_last() {
        Some((sent, earlier))
            if sent.outcome == Outcome::Sent && sent.error.is_none() && sent.body.is_none() =>
        {
            if !earlier.is_empty() {
                fields.set(field::ATTEMPTS, attempts_json(earlier));
            }
            if let Some(status) = sent.status {
                fields.set(field::SENT_STATUS, status.to_string());
            }
            if let Some(by) = &sent.consumer {
                fields.set(field::SENT_BY, by.as_str());
            }
        }
        _ => fields.set(field::ATTEMPTS, attempts_json(&job.attempts)),
    }
    fields.set(field::STATE, State::Sent.as_str());
    fields.set(field::SENT_AT, format_time(at));
    fields.set(field::MESSAGE_ID, message_id);
    fields
}

fn attempts_json(attempts: &[Attempt]) -> String {
    serde_json::to_string(attempts).expect("attempts serialize")
}

/// The record fields of a job parked for a retry due at `due`.
pub fn retry_fields(job: &Job, due: OffsetDateTime) -> Fields {
    let mut fields = job_fields(job);
    fields.set(field::STATE, State::Retrying.as_str());
    fields.set(field::RETRY_AT, format_time(due));
    fields
}

/// The state a dead letter leaves its job in: `expired` when it died of its deadline.
pub fn dead_state(letter: &DeadLetter) -> State {
    if letter.kind() == DeadKind::Expired {
        State::Expired
    } else {
        State::Dead
    }
}

/// The record fields of a dead letter.
pub fn dead_fields(letter: &DeadLetter) -> Fields {
    let mut fields = match &letter.job {
        Some(job) => job_fields(job),
        None => {
            let mut fields = Fields::default();
            fields.set(field::LANE, letter.lane.as_str());
            fields
        }
    };
    fields.set(field::STATE, dead_state(letter).as_str());
    fields.set(field::DEAD_AT, format_time(letter.dead_at));
    fields.set(field::DEAD_REASON, letter.reason.clone());
    fields
}

/// An RFC 3339 time as the record stores it; `None` when it does not parse.
pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}
