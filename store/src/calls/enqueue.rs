//! A new job (`enqueue.lua`, with the OTP guard's rules for an OTP: `guard.lua`) and a
//! cancel by id (`cancel_job.lua`).

use herald_shared::Job;
use redis::{FromRedisValue, RedisError, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{code_and_text, state_of, unexpected};
use crate::Keys;
use crate::guard::{self, Guard, Refusal, Rule};
use crate::keys::{JOB_FIELD, RECORD_TTL_SLACK_SECS, TIMELINE_TTL_SECS, WORKER_GROUP};
use crate::lifecycle::State;
use crate::record::{self, Claim, format_time};
use crate::script::{Concat, ScriptCall};
use crate::scripts::{CANCEL, ENQUEUE};

/// The call that enqueues `job` at `now`, its idempotency key holding it for `window_ms`
/// after it finishes (and for as long as it is pending). With a `guard`, an OTP (a job on
/// the OTP lane) passes its rules first, in the same script. Its reply is
/// [`EnqueueReply::decode`]'s.
pub fn enqueue(
    keys: &Keys,
    job: &Job,
    window_ms: u64,
    now: OffsetDateTime,
    guard: Option<&Guard>,
) -> ScriptCall<'static> {
    enqueue_all(keys, std::slice::from_ref(job), window_ms, now, guard)
}

/// The call that enqueues `jobs`, in order, each as [`enqueue`] would (a job sees what the
/// ones before it wrote). Its reply is [`EnqueueReply::decode_all`]'s, one per job.
pub fn enqueue_all(
    keys: &Keys,
    jobs: &[Job],
    window_ms: u64,
    now: OffsetDateTime,
    guard: Option<&Guard>,
) -> ScriptCall<'static> {
    let now_ms = guard::unix_ms(now);
    let stats = keys.stats();
    let guard_keys = guard.map(|_| {
        [
            keys.guard_blocked(),
            keys.guard_refused(guard::hour_of(now_ms)),
            keys.guard_reports(),
        ]
    });
    let guard_key = |i: usize| guard_keys.as_ref().map_or(stats.as_str(), |k| &k[i]);
    let each: Vec<JobKeys> = jobs
        .iter()
        .map(|job| JobKeys::of(keys, job, guard, now))
        .collect();
    let bodies = keys.scheduled_jobs();
    let common = [
        stats.as_str(),
        &bodies,
        guard_key(0),
        guard_key(1),
        guard_key(2),
    ];
    let mut call = ScriptCall::with_capacity(
        &ENQUEUE,
        common
            .into_iter()
            .chain(each.iter().flat_map(JobKeys::keys)),
        common.len() + 16 + 30 * jobs.len(),
        512 + 640 * jobs.len(),
    );
    call.arg(jobs.len())
        .arg(window_ms)
        .arg(JOB_FIELD)
        .arg(WORKER_GROUP)
        .arg(format_time(now))
        .arg(keys.prefix())
        .arg(TIMELINE_TTL_SECS);
    guard_settings(&mut call, guard, now_ms);
    for (job, job_keys) in jobs.iter().zip(&each) {
        job_args(&mut call, job, job_keys, window_ms, now);
    }
    call
}

/// The keys `enqueue.lua` takes for one job, and what decides them.
struct JobKeys {
    claim: Option<String>,
    stream: String,
    record: String,
    replace: Option<String>,
    /// Its lane's scheduled set, when it is due later or the guard may hold it back.
    scheduled: Option<String>,
    booking: Option<String>,
    /// The guard's hash of the number's prefix, and the number's parts, when the guard
    /// applies.
    guarded: Option<(String, [String; 3])>,
}

impl JobKeys {
    fn of(keys: &Keys, job: &Job, guard: Option<&Guard>, now: OffsetDateTime) -> JobKeys {
        let due = due(job, now);
        let guarded = guard
            .filter(|_| job.lane().is_otp())
            .and_then(|_| guarded_number(job))
            .and_then(|phone| {
                let parts = herald_shared::phone::guard_parts(&phone)?;
                Some((
                    keys.guard_prefix(parts.prefix),
                    [
                        parts.country_code.to_string(),
                        parts.prefix.to_string(),
                        parts.suffix.to_string(),
                    ],
                ))
            });
        JobKeys {
            claim: job
                .idempotency_key
                .as_deref()
                .map(|key| keys.idempotency(key)),
            stream: keys.lane_of(job.lane(), job.tenant()),
            record: keys.job_status(&job.id.to_string()),
            replace: job.replace_key.as_deref().map(|key| keys.replace(key)),
            scheduled: (due.is_some() || guarded.is_some()).then(|| keys.scheduled(job.lane())),
            booking: job.booking_id().map(|id| keys.booking(id)),
            guarded,
        }
    }

    /// Its keys, in the script's order: its record and stream, then those it has.
    fn keys(&self) -> impl Iterator<Item = &str> + Clone {
        [
            Some(self.record.as_str()),
            Some(&self.stream),
            self.claim.as_deref(),
            self.replace.as_deref(),
            self.booking.as_deref(),
            self.guarded.as_ref().map(|(key, _)| key.as_str()),
            self.scheduled.as_deref(),
        ]
        .into_iter()
        .flatten()
    }

    /// Its flags argument's letters, in the script's order: one for each key it has beyond
    /// its record and stream ("" for those it has not; written as one argument by
    /// [`Concat`]).
    fn flags(&self) -> [&'static str; 5] {
        let letter = |has: bool, letter| if has { letter } else { "" };
        [
            letter(self.claim.is_some(), "k"),
            letter(self.replace.is_some(), "r"),
            letter(self.booking.is_some(), "b"),
            letter(self.guarded.is_some(), "g"),
            letter(self.scheduled.is_some(), "s"),
        ]
    }
}

/// When `job` is due, if later than `now`.
fn due(job: &Job, now: OffsetDateTime) -> Option<OffsetDateTime> {
    job.send_at.filter(|due| *due > now)
}

/// One job's arguments of `enqueue.lua`.
fn job_args(
    call: &mut ScriptCall<'_>,
    job: &Job,
    job_keys: &JobKeys,
    window_ms: u64,
    now: OffsetDateTime,
) {
    let due = due(job, now);
    let state = if due.is_some() {
        State::Scheduled
    } else {
        State::Queued
    };
    // A scheduled job's record lives until it is due, then as long as any other's, and the
    // slack that lets a send soon after leave its expiry alone.
    let ttl = TIMELINE_TTL_SECS
        + RECORD_TTL_SLACK_SECS
        + due.map_or(0, |due| {
            u64::try_from((due - now).whole_seconds()).unwrap_or(0)
        });
    let mut id = Uuid::encode_buffer();
    call.arg(&*job.id.hyphenated().encode_lower(&mut id))
        .arg(job.to_json())
        .arg(Concat(&job_keys.flags()));
    // Only a claim compares fingerprints: a job without a key needs none.
    if job_keys.claim.is_some() {
        call.arg(job.fingerprint().as_str());
    }
    call.arg(ttl)
        .arg(due.map_or(String::new(), |due| {
            herald_shared::schedule::unix_ms(due).to_string()
        }))
        .arg(job.lane().as_str())
        .arg(job.tenant());
    if let Some((_, parts)) = &job_keys.guarded {
        for part in parts {
            call.arg(part.as_str());
        }
    }
    call.arg(record::enqueued_fields(
        job,
        state,
        job_keys
            .claim
            .as_deref()
            .map(|key| Claim { key, window_ms }),
    ));
}

/// An OTP's number as the guard reads it: `+` and its digits.
pub fn guarded_number(job: &Job) -> Option<String> {
    let digits: String = job.phone().chars().filter(char::is_ascii_digit).collect();
    (!digits.is_empty()).then(|| format!("+{digits}"))
}

/// ARGV[8] to ARGV[16] of `enqueue.lua`: the guard's settings (`guard_otp` in `guard.lua`
/// reads them), or nine blanks without a guard.
fn guard_settings(call: &mut ScriptCall<'_>, guard: Option<&Guard>, now_ms: u64) {
    let Some(guard) = guard else {
        for _ in 0..9 {
            call.arg("");
        }
        return;
    };
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
    call.arg(guard.countries_arg())
        .arg(now_ms)
        .arg(guard.per_number.requests.get())
        .arg(ms(guard.per_number.period))
        .arg(guard.per_prefix.requests.get())
        .arg(ms(guard.per_prefix.period))
        .arg(ms(guard.block))
        .arg(guard.min_conversion.clamp(0.0, 1.0).to_string())
        .arg(guard::CONVERSION_MIN_SENDS);
}

/// What an enqueue came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnqueueReply {
    /// The job is new: on its lane (`entry`), or scheduled (`None`).
    Added {
        entry: Option<String>,
        /// The older job of its replace key, stopped before its send began.
        superseded: Option<Uuid>,
        /// The older job of its replace key whose send was under way: this one waits for it.
        waits_for: Option<Uuid>,
        /// The OTP guard held the OTP back to its prefix's pace: scheduled for then (ms, Unix).
        held_until_ms: Option<u64>,
    },
    /// The idempotency key holds this content: nothing added; the first job's id.
    Duplicate { first: Uuid },
    /// The idempotency key holds other content: nothing added; the first job's id.
    Conflict { first: Uuid },
    /// The OTP guard refused it: nothing added.
    Refused(Refusal),
}

impl EnqueueReply {
    /// The reply of [`enqueue`]'s call: its one job's.
    pub fn decode(reply: &Value) -> Result<EnqueueReply, RedisError> {
        let mut all = Self::decode_all(reply)?;
        match (all.pop(), all.is_empty()) {
            (Some(one), true) => Ok(one),
            _ => Err(unexpected("enqueue.lua", reply)),
        }
    }

    /// The reply of [`enqueue_all`]'s call: each job's, in order.
    pub fn decode_all(reply: &Value) -> Result<Vec<EnqueueReply>, RedisError> {
        match reply {
            Value::Array(items) => items.iter().map(Self::decode_job).collect(),
            _ => Err(unexpected("enqueue.lua", reply)),
        }
    }

    /// One job's part of the reply, read in place (a batch's reply holds a thousand).
    fn decode_job(reply: &Value) -> Result<EnqueueReply, RedisError> {
        let bad = || unexpected("enqueue.lua", reply);
        let Value::Array(items) = reply else {
            return Err(bad());
        };
        let text = |i: usize| -> Result<&str, RedisError> {
            match items.get(i) {
                Some(Value::BulkString(bytes)) => std::str::from_utf8(bytes).map_err(|_| bad()),
                Some(Value::SimpleString(text)) => Ok(text),
                Some(_) => Err(bad()),
                None => Ok(""),
            }
        };
        let id = |i: usize| -> Result<Option<Uuid>, RedisError> {
            let text = text(i)?;
            if text.is_empty() {
                return Ok(None);
            }
            text.parse().map(Some).map_err(|_| bad())
        };
        let int = |i: usize| items.get(i).and_then(|v| i64::from_redis_value_ref(v).ok());
        Ok(match int(0).ok_or_else(bad)? {
            0 => {
                let entry = text(1)?;
                EnqueueReply::Added {
                    entry: (!entry.is_empty()).then(|| entry.to_owned()),
                    superseded: id(2)?,
                    waits_for: id(3)?,
                    held_until_ms: int(4).and_then(|ms| u64::try_from(ms).ok()),
                }
            }
            1 => EnqueueReply::Duplicate {
                first: id(1)?.ok_or_else(bad)?,
            },
            2 => EnqueueReply::Conflict {
                first: id(1)?.ok_or_else(bad)?,
            },
            3 => {
                let rule = Rule::parse(text(1)?).ok_or_else(bad)?;
                EnqueueReply::Refused(Refusal::new(rule, int(2).ok_or_else(bad)?))
            }
            _ => return Err(bad()),
        })
    }
}

/// The call that cancels job `job_id` at `now`.
pub fn cancel(keys: &Keys, job_id: &str, now: OffsetDateTime) -> ScriptCall<'static> {
    let own = [
        keys.job_status(job_id),
        keys.dead(),
        keys.sent(job_id),
        keys.stats(),
        keys.scheduled_jobs(),
    ];
    let mut call = ScriptCall::new(&CANCEL, own.iter().map(String::as_str));
    call.arg(job_id)
        .arg(WORKER_GROUP)
        .arg(format_time(now))
        .arg(TIMELINE_TTL_SECS)
        .arg(keys.prefix());
    call
}

/// What a cancel came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReply {
    /// Cancelled now: it will never be sent.
    Cancelled,
    /// Already stopped before (`cancelled` or `superseded`): it will never be sent.
    AlreadyStopped(State),
    /// Too late: `sending` (the attempt under way may reach Interakt; if it fails it is not
    /// retried), `sent`, `dead` or `expired`.
    TooLate(State),
    /// No such job.
    Unknown,
}

impl CancelReply {
    pub fn decode(reply: &Value) -> Result<CancelReply, RedisError> {
        let (code, state) = code_and_text("cancel_job.lua", reply)?;
        let state = || state_of(&state).ok_or_else(|| unexpected("cancel_job.lua", reply));
        Ok(match code {
            0 => CancelReply::Cancelled,
            1 => CancelReply::AlreadyStopped(state()?),
            2 => CancelReply::TooLate(state()?),
            3 => CancelReply::Unknown,
            _ => return Err(unexpected("cancel_job.lua", reply)),
        })
    }
}
