//! Moves of dead letters: a replay back onto its lane (`replay.lua`) and an OTP's code erased
//! once its deadline passed (`erase.lua`).

use herald_shared::{Job, Lane};
use redis::{RedisError, Value};
use uuid::Uuid;

use super::{code_and_text, state_of, unexpected};
use crate::Keys;
use crate::keys::{JOB_FIELD, TIMELINE_TTL_SECS, WORKER_GROUP};
use crate::lifecycle::State;
use crate::record;
use crate::script::ScriptCall;
use crate::scripts::{ERASE, REPLAY};

/// Replays the letter of `job_id` on `lane`, read as `letter_json`, as `job` (its budget
/// fresh, its history kept): its idempotency key (held for the window its record keeps, or
/// `window_ms`, once it finishes) and replace key are checked, so a letter a newer job
/// replaced is skipped.
pub fn replay(
    keys: &Keys,
    lane: Lane,
    job_id: &str,
    letter_json: &str,
    job: &Job,
    window_ms: u64,
) -> ScriptCall<'static> {
    let record_key = keys.job_status(job_id);
    let replace = job.replace_key.as_deref().map(|key| keys.replace(key));
    let claim = job
        .idempotency_key
        .as_deref()
        .map(|key| keys.idempotency(key));
    let mut call = ScriptCall::new(
        &REPLAY,
        [
            &*keys.dead(),
            &keys.dead_index(lane),
            &keys.lane_of(lane, job.tenant()),
            &record_key,
            &keys.dead_codes(),
            replace.as_deref().unwrap_or(&record_key),
            claim.as_deref().unwrap_or(&record_key),
        ],
    );
    call.arg(job_id)
        .arg(letter_json)
        .arg(job.to_json())
        .arg(JOB_FIELD)
        .arg(if replace.is_some() { "1" } else { "" })
        .arg(claim.as_ref().map_or(String::new(), |_| {
            format!("{}:{}", job.id, job.fingerprint().as_str())
        }))
        .arg(window_ms)
        .arg(TIMELINE_TTL_SECS)
        .arg(keys.prefix())
        .arg(lane.as_str())
        .arg(job.tenant())
        .arg(WORKER_GROUP)
        .arg(record::replayed_fields(job, claim.as_deref()));
    call
}

/// What a replay came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replayed {
    /// Back on its lane as stream entry `entry`; its record says `queued`.
    Moved { entry: String },
    /// Not a dead letter (any more): replayed or purged meanwhile, or never dead.
    NotDead,
    /// The letter changed since it was read: nothing done (read it again).
    Changed,
    /// Skipped: its replace key names a newer job.
    Superseded { by: Uuid },
    /// Skipped: its idempotency key holds another job now.
    KeyTaken { by: String },
    /// Refused: its record says it is not dead (`None`: an unknown state).
    Refused(Option<State>),
}

impl Replayed {
    pub fn decode(reply: &Value) -> Result<Replayed, RedisError> {
        let (code, text) = code_and_text("replay.lua", reply)?;
        Ok(match code {
            1 => Replayed::Moved { entry: text },
            0 => Replayed::NotDead,
            -1 => Replayed::Changed,
            2 => Replayed::Superseded {
                by: text.parse().map_err(|_| unexpected("replay.lua", reply))?,
            },
            3 => Replayed::KeyTaken { by: text },
            4 => Replayed::Refused(state_of(&text)),
            _ => return Err(unexpected("replay.lua", reply)),
        })
    }
}

/// Replaces the letter of `job_id`, read as `read`, with `erased` (its code erased; empty
/// when there is nothing to erase), and takes it off the index of letters with a code.
/// Answers 1 when erased.
pub fn erase(keys: &Keys, job_id: &str, read: &str, erased: &str) -> ScriptCall<'static> {
    let mut call = ScriptCall::new(&ERASE, [&*keys.dead(), &keys.dead_codes()]);
    call.arg(job_id).arg(read).arg(erased);
    call
}
