//! Every Lua script Herald runs, assembled once: each file of `src/lua/` with the preludes
//! it calls in front (the clock, the ownership check, the record write, the charge, the
//! cancel). No other crate holds a script or a `.lua` file; the stages call these through
//! [`crate::script::ScriptCall`] or redis-rs's invocations.

use std::sync::LazyLock;

use redis::Script;

/// A script with its preludes in front, in the order given.
fn assemble(preludes: &[&str], body: &str) -> Script {
    let mut text = String::new();
    for prelude in preludes {
        text.push_str(prelude);
        text.push('\n');
    }
    text.push_str(body);
    Script::new(&text)
}

const CLOCK: &str = include_str!("lua/clock.lua");
const OWNED: &str = include_str!("lua/owned.lua");
const RECORD: &str = include_str!("lua/timeline.lua");
const CHARGE: &str = include_str!("lua/charge.lua");
const CANCEL_PRELUDE: &str = include_str!("lua/cancel.lua");

// ----- enqueue and cancel (the producer) -----

/// Claims an idempotency key, supersedes, records and adds one job (`lua/enqueue.lua`).
pub static ENQUEUE: LazyLock<Script> =
    LazyLock::new(|| assemble(&[RECORD, CANCEL_PRELUDE], include_str!("lua/enqueue.lua")));

/// Cancels one job by id (`lua/cancel_job.lua`).
pub static CANCEL: LazyLock<Script> = LazyLock::new(|| {
    assemble(
        &[RECORD, CANCEL_PRELUDE],
        include_str!("lua/cancel_job.lua"),
    )
});

// ----- the shared budget (the worker's limiter) -----

/// Tokens of the shared budget (`lua/acquire.lua`).
pub static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| assemble(&[CLOCK], include_str!("lua/acquire.lua")));

/// The shared cool-down after a 429 (`lua/cooldown.lua`).
pub static COOLDOWN: LazyLock<Script> =
    LazyLock::new(|| assemble(&[CLOCK], include_str!("lua/cooldown.lua")));

// ----- settling a delivery (the worker) -----

/// The last check before a send (`lua/begin_send.lua`).
pub static BEGIN_SEND: LazyLock<Script> =
    LazyLock::new(|| assemble(&[OWNED], include_str!("lua/begin_send.lua")));

/// Sent: record, acknowledge, delete (`lua/complete.lua`).
pub static COMPLETE: LazyLock<Script> =
    LazyLock::new(|| assemble(&[CHARGE, OWNED, RECORD], include_str!("lua/complete.lua")));

/// Parked for a retry (`lua/retry.lua`).
pub static RETRY: LazyLock<Script> =
    LazyLock::new(|| assemble(&[CHARGE, OWNED, RECORD], include_str!("lua/retry.lua")));

/// Dead-lettered (`lua/dead.lua`).
pub static DEAD: LazyLock<Script> =
    LazyLock::new(|| assemble(&[CHARGE, OWNED, RECORD], include_str!("lua/dead.lua")));

/// An unstarted job given back to its lane (`lua/hand_back.lua`).
pub static HAND_BACK: LazyLock<Script> =
    LazyLock::new(|| assemble(&[OWNED], include_str!("lua/hand_back.lua")));

/// A redelivered copy of a sent job acknowledged (`lua/drop_duplicate.lua`).
pub static DROP_DUPLICATE: LazyLock<Script> =
    LazyLock::new(|| assemble(&[OWNED], include_str!("lua/drop_duplicate.lua")));

/// The holds of a replica kept alive (`lua/touch.lua`).
pub static TOUCH: LazyLock<Script> =
    LazyLock::new(|| assemble(&[OWNED], include_str!("lua/touch.lua")));

// ----- waiting jobs moved onto their lanes (the worker) -----

/// Due retries back onto their lane (`lua/promote.lua`).
pub static PROMOTE: LazyLock<Script> =
    LazyLock::new(|| assemble(&[], include_str!("lua/promote.lua")));

/// Due scheduled jobs onto their lane (`lua/schedule.lua`).
pub static SCHEDULE: LazyLock<Script> =
    LazyLock::new(|| assemble(&[], include_str!("lua/schedule.lua")));

// ----- dead letters (the worker's eraser, the operator's replay) -----

/// An OTP's code erased from its dead letter (`lua/erase.lua`).
pub static ERASE: LazyLock<Script> = LazyLock::new(|| assemble(&[], include_str!("lua/erase.lua")));

/// A dead letter back onto its lane (`lua/replay.lua`).
pub static REPLAY: LazyLock<Script> =
    LazyLock::new(|| assemble(&[], include_str!("lua/replay.lua")));

// ----- webhooks -----

/// Webhook events recorded once each (`lua/record.lua`).
pub static RECORD_EVENTS: LazyLock<Script> =
    LazyLock::new(|| assemble(&[], include_str!("lua/record.lua")));

/// A delivery milestone on a job's timeline (`lua/mark.lua`).
pub static MARK: LazyLock<Script> = LazyLock::new(|| assemble(&[], include_str!("lua/mark.lua")));

/// A processed event moved to its stream (`lua/append.lua`).
pub static APPEND: LazyLock<Script> =
    LazyLock::new(|| assemble(&[], include_str!("lua/append.lua")));
