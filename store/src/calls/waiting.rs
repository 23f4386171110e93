//! Waiting jobs moved onto their lanes when due: retries (`promote.lua`) and scheduled jobs
//! (`schedule.lua`), a batch per call.

use std::time::Duration;

use herald_shared::Lane;
use redis::{FromRedisValue, RedisError, Value};

use super::unexpected;
use crate::Keys;
use crate::keys::{JOB_FIELD, WORKER_GROUP};
use crate::script::ScriptCall;
use crate::scripts::{PROMOTE, SCHEDULE};

/// Moves at most `batch` due retries of `lane` back onto it.
pub fn promote(keys: &Keys, lane: Lane, batch: usize) -> ScriptCall<'static> {
    let mut call = ScriptCall::new(&PROMOTE, [&*keys.delayed(lane)]);
    call.arg(batch)
        .arg(JOB_FIELD)
        .arg(keys.prefix())
        .arg(lane.as_str())
        .arg(WORKER_GROUP);
    call
}

/// Moves at most `batch` due scheduled jobs of `lane` onto it.
pub fn schedule(keys: &Keys, lane: Lane, batch: usize) -> ScriptCall<'static> {
    let mut call = ScriptCall::new(&SCHEDULE, [&*keys.scheduled(lane), &keys.scheduled_jobs()]);
    call.arg(batch)
        .arg(JOB_FIELD)
        .arg(keys.prefix())
        .arg(lane.as_str())
        .arg(WORKER_GROUP);
    call
}

/// What one move of due jobs did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moved {
    pub moved: usize,
    /// Due entries dropped instead: their record says the job is no longer waiting
    /// (cancelled or superseded under an older release).
    pub dropped: usize,
    /// How long until the next one is due, when one is waiting.
    pub next: Option<Duration>,
}

impl Moved {
    pub fn decode(script: &str, reply: &Value) -> Result<Moved, RedisError> {
        let items =
            Vec::<i64>::from_redis_value(reply.clone()).map_err(|_| unexpected(script, reply))?;
        let [moved, next_ms, rest @ ..] = items.as_slice() else {
            return Err(unexpected(script, reply));
        };
        Ok(Moved {
            moved: usize::try_from(*moved).unwrap_or(0),
            dropped: rest.first().map_or(0, |d| usize::try_from(*d).unwrap_or(0)),
            next: u64::try_from(*next_ms).ok().map(Duration::from_millis),
        })
    }
}
