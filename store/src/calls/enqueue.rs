//! A new job (`enqueue.lua`, with the OTP guard's rules for an OTP: `guard.lua`) and a
//! cancel by id (`cancel_job.lua`).

use herald_shared::Job;
use redis::{FromRedisValue, RedisError, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{code_and_text, state_of, unexpected};
use crate::Keys;
use crate::guard::{self, Guard, Refusal, Rule};
use crate::keys::{JOB_FIELD, TIMELINE_TTL_SECS, WORKER_GROUP};
use crate::lifecycle::State;
use crate::record::{self, Claim, format_time};
use crate::script::ScriptCall;
use crate::scripts::{CANCEL, ENQUEUE};

/// The call that enqueues `job` at `now`, its idempotency key holding it for `window_ms`
/// after it finishes (and for as long as it is pending). With a `guard`, an OTP (a job on
/// the OTP lane) passes its rules first, in the same script.
pub fn enqueue(
    keys: &Keys,
    job: &Job,
    window_ms: u64,
    now: OffsetDateTime,
    guard: Option<&Guard>,
) -> ScriptCall<'static> {
    let job_id = job.id.to_string();
    let record = keys.job_status(&job_id);
    let due = job.send_at.filter(|due| *due > now);
    let state = if due.is_some() {
        State::Scheduled
    } else {
        State::Queued
    };
    // A scheduled job's record lives until it is due, then as long as any other's.
    let ttl = TIMELINE_TTL_SECS
        + due.map_or(0, |due| {
            u64::try_from((due - now).whole_seconds()).unwrap_or(0)
        });
    let claim = job
        .idempotency_key
        .as_deref()
        .map(|key| keys.idempotency(key));
    let replace = job.replace_key.as_deref().map(|key| keys.replace(key));
    let booking = job.booking_id().map(|id| keys.booking(id));
    let phone = job.lane().is_otp().then(|| guarded_number(job)).flatten();
    let guarded = guard.zip(phone.as_deref()).and_then(|(guard, phone)| {
        let parts = herald_shared::phone::guard_parts(phone)?;
        Some((guard, parts))
    });
    let now_ms = guard::unix_ms(now);
    let guard_keys = guarded.map(|(_, parts)| {
        [
            keys.guard_prefix(parts.prefix),
            keys.guard_blocked(),
            keys.guard_refused(guard::hour_of(now_ms)),
            keys.guard_reports(),
        ]
    });
    let guard_key = |i: usize| guard_keys.as_ref().map_or(record.as_str(), |k| &k[i]);
    let own = [
        claim.as_deref().unwrap_or(&record),
        &keys.lane_of(job.lane(), job.tenant()),
        &record,
        replace.as_deref().unwrap_or(&record),
        &keys.scheduled(job.lane()),
        &keys.scheduled_jobs(),
        &keys.stats(),
        booking.as_deref().unwrap_or(&record),
        guard_key(0),
        guard_key(1),
        guard_key(2),
        guard_key(3),
    ];
    let mut call = ScriptCall::new(&ENQUEUE, own);
    let flag = |on: bool| if on { "1" } else { "" };
    call.arg(&job_id)
        .arg(window_ms)
        .arg(job.to_json())
        .arg(JOB_FIELD)
        .arg(job.fingerprint().as_str())
        .arg(flag(claim.is_some()))
        .arg(flag(replace.is_some()))
        .arg(ttl)
        .arg(due.map_or(String::new(), |due| {
            herald_shared::schedule::unix_ms(due).to_string()
        }))
        .arg(WORKER_GROUP)
        .arg(format_time(now))
        .arg(keys.prefix())
        .arg(TIMELINE_TTL_SECS)
        .arg(flag(booking.is_some()))
        .arg(job.lane().as_str())
        .arg(job.tenant());
    guard_args(&mut call, guarded, now_ms);
    call.arg(record::enqueued_fields(
        job,
        state,
        claim.as_deref().map(|key| Claim { key, window_ms }),
    ));
    call
}

/// An OTP's number as the guard reads it: `+` and its digits.
pub fn guarded_number(job: &Job) -> Option<String> {
    let digits: String = job.phone().chars().filter(char::is_ascii_digit).collect();
    (!digits.is_empty()).then(|| format!("+{digits}"))
}

/// ARGV[17] to ARGV[29] of `enqueue.lua`: '1' and the guard's arguments (`guard_otp` in
/// `guard.lua` reads them from ARGV[18]), or thirteen blanks when the guard does not apply.
fn guard_args(
    call: &mut ScriptCall<'_>,
    guarded: Option<(&Guard, herald_shared::phone::GuardParts<'_>)>,
    now_ms: u64,
) {
    let Some((guard, parts)) = guarded else {
        for _ in 0..13 {
            call.arg("");
        }
        return;
    };
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
    call.arg("1")
        .arg(parts.country_code)
        .arg(guard.countries_arg())
        .arg(parts.prefix)
        .arg(parts.suffix)
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
    pub fn decode(reply: &Value) -> Result<EnqueueReply, RedisError> {
        let bad = || unexpected("enqueue.lua", reply);
        let items = Vec::<Value>::from_redis_value(reply.clone()).map_err(|_| bad())?;
        let text = |i: usize| -> Result<String, RedisError> {
            match items.get(i) {
                Some(v) => String::from_redis_value(v.clone()).map_err(|_| bad()),
                None => Ok(String::new()),
            }
        };
        let id = |i: usize| -> Result<Option<Uuid>, RedisError> {
            let text = text(i)?;
            if text.is_empty() {
                return Ok(None);
            }
            text.parse().map(Some).map_err(|_| bad())
        };
        let code = items
            .first()
            .and_then(|v| i64::from_redis_value(v.clone()).ok())
            .ok_or_else(bad)?;
        Ok(match code {
            0 => {
                let entry = text(1)?;
                EnqueueReply::Added {
                    entry: (!entry.is_empty()).then_some(entry),
                    superseded: id(2)?,
                    waits_for: id(3)?,
                    held_until_ms: items
                        .get(4)
                        .and_then(|v| u64::from_redis_value(v.clone()).ok()),
                }
            }
            1 => EnqueueReply::Duplicate {
                first: id(1)?.ok_or_else(bad)?,
            },
            2 => EnqueueReply::Conflict {
                first: id(1)?.ok_or_else(bad)?,
            },
            3 => {
                let rule = Rule::parse(&text(1)?).ok_or_else(bad)?;
                let retry_ms = items
                    .get(2)
                    .and_then(|v| i64::from_redis_value(v.clone()).ok())
                    .ok_or_else(bad)?;
                EnqueueReply::Refused(Refusal::new(rule, retry_ms))
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
