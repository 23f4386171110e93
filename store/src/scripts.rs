//! Every Lua script Herald runs, assembled once: each file of `src/lua/` with the preludes
//! it calls in front. No other crate holds a script or a `.lua` file: the stages call these
//! through the typed calls of [`crate::calls`].
//!
//! The preludes:
//!
//! - the lifecycle (`lifecycle.lua`, after the table generated from
//!   [`crate::lifecycle::TABLE`]): `may(step, state)`, `become`, the idempotency claim that
//!   follows its job, a stop taking effect;
//! - ownership (`owned.lua`): who holds a stream entry, and `finish` (XACK + XDEL);
//! - the budget token (`token.lua`): `charge()` after an answer, `refund()` when no request
//!   was made;
//! - the record write (`record.lua`): a job's fields from the script's arguments;
//! - stopping a job (`stop.lua`): cancel and supersede;
//! - the clock (`clock.lua`): Redis's `TIME` in microseconds, for the budget.
//!
//! Scripts on the send path, and those that free memory, run even when Redis has reached its
//! `maxmemory` (`allow-oom`, Redis 7's script flags): a send Interakt accepted must be recorded
//! whatever Redis's memory (else another replica sends it again once memory frees), and
//! draining the lanes is what frees it. The enqueue is refused under memory pressure, as it
//! should be (the caller is told and retries).

use std::sync::LazyLock;

use redis::Script;

use crate::lifecycle;

/// What a script may do beyond a plain script's rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flags {
    /// A plain script: refused as a whole when Redis is out of memory and it writes.
    Plain,
    /// Runs its writes even when Redis is over `maxmemory`.
    AllowOom,
}

/// A script with its preludes in front, in the order given.
fn assemble(flags: Flags, preludes: &[&str], body: &str) -> Script {
    let mut text = String::new();
    if flags == Flags::AllowOom {
        text.push_str("#!lua flags=allow-oom\n");
    }
    for prelude in preludes {
        text.push_str(prelude);
        text.push('\n');
    }
    text.push_str(body);
    Script::new(&text)
}

/// The lifecycle prelude: the generated table, then the functions that read it.
static LIFECYCLE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}{}",
        lifecycle::lua_prelude(),
        include_str!("lua/lifecycle.lua")
    )
});
const CLOCK: &str = include_str!("lua/clock.lua");
const OWNED: &str = include_str!("lua/owned.lua");
const RECORD: &str = include_str!("lua/record.lua");
const TOKEN: &str = include_str!("lua/token.lua");
const STOP: &str = include_str!("lua/stop.lua");

use Flags::{AllowOom, Plain};

// ----- enqueue and cancel (the producer) -----

/// Claims an idempotency key, supersedes, records and adds one job (`lua/enqueue.lua`).
pub static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    assemble(
        Plain,
        &[&LIFECYCLE, RECORD, STOP],
        include_str!("lua/enqueue.lua"),
    )
});

/// Cancels one job by id (`lua/cancel_job.lua`).
pub static CANCEL: LazyLock<Script> = LazyLock::new(|| {
    assemble(
        AllowOom,
        &[&LIFECYCLE, STOP],
        include_str!("lua/cancel_job.lua"),
    )
});

// ----- the shared budget (the worker's limiter) -----

/// Tokens of the shared budget (`lua/acquire.lua`).
pub static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| assemble(AllowOom, &[CLOCK], include_str!("lua/acquire.lua")));

/// The shared cool-down after a 429 (`lua/cooldown.lua`).
pub static COOLDOWN: LazyLock<Script> =
    LazyLock::new(|| assemble(AllowOom, &[CLOCK], include_str!("lua/cooldown.lua")));

/// The cool-down's probe answered: a 2xx ends the pause (`lua/probe.lua`).
pub static PROBE: LazyLock<Script> =
    LazyLock::new(|| assemble(AllowOom, &[CLOCK], include_str!("lua/probe.lua")));

// ----- settling a delivery (the worker) -----

/// The last check before a send (`lua/begin_send.lua`).
pub static BEGIN_SEND: LazyLock<Script> = LazyLock::new(|| {
    assemble(
        AllowOom,
        &[&LIFECYCLE, OWNED, TOKEN],
        include_str!("lua/begin_send.lua"),
    )
});

/// A job that waits for an older one of its replace key (`lua/defer.lua`).
pub static DEFER: LazyLock<Script> = LazyLock::new(|| {
    assemble(
        AllowOom,
        &[&LIFECYCLE, OWNED],
        include_str!("lua/defer.lua"),
    )
});

/// Sent: record, acknowledge, delete (`lua/complete.lua`).
pub static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    assemble(
        AllowOom,
        &[&LIFECYCLE, OWNED, TOKEN, RECORD],
        include_str!("lua/complete.lua"),
    )
});

/// Parked for a retry (`lua/retry.lua`).
pub static RETRY: LazyLock<Script> = LazyLock::new(|| {
    assemble(
        AllowOom,
        &[&LIFECYCLE, OWNED, TOKEN, RECORD],
        include_str!("lua/retry.lua"),
    )
});

/// Dead-lettered (`lua/dead.lua`).
pub static DEAD: LazyLock<Script> = LazyLock::new(|| {
    assemble(
        AllowOom,
        &[&LIFECYCLE, OWNED, TOKEN, RECORD],
        include_str!("lua/dead.lua"),
    )
});

/// An unstarted job given back to its lane (`lua/hand_back.lua`).
pub static HAND_BACK: LazyLock<Script> = LazyLock::new(|| {
    assemble(
        AllowOom,
        &[&LIFECYCLE, OWNED],
        include_str!("lua/hand_back.lua"),
    )
});

/// A copy that must not be sent from here acknowledged (`lua/drop_duplicate.lua`).
pub static DROP_DUPLICATE: LazyLock<Script> =
    LazyLock::new(|| assemble(AllowOom, &[OWNED], include_str!("lua/drop_duplicate.lua")));

/// The holds of a replica kept alive (`lua/touch.lua`).
pub static TOUCH: LazyLock<Script> =
    LazyLock::new(|| assemble(AllowOom, &[OWNED], include_str!("lua/touch.lua")));

// ----- waiting jobs moved onto their lanes (the worker) -----

/// Due retries back onto their lane (`lua/promote.lua`).
pub static PROMOTE: LazyLock<Script> =
    LazyLock::new(|| assemble(AllowOom, &[&LIFECYCLE], include_str!("lua/promote.lua")));

/// Due scheduled jobs onto their lane (`lua/schedule.lua`).
pub static SCHEDULE: LazyLock<Script> =
    LazyLock::new(|| assemble(AllowOom, &[&LIFECYCLE], include_str!("lua/schedule.lua")));

// ----- dead letters (the worker's eraser, the operator's replay) -----

/// An OTP's code erased from its dead letter (`lua/erase.lua`).
pub static ERASE: LazyLock<Script> =
    LazyLock::new(|| assemble(AllowOom, &[], include_str!("lua/erase.lua")));

/// A dead letter back onto its lane (`lua/replay.lua`).
pub static REPLAY: LazyLock<Script> =
    LazyLock::new(|| assemble(Plain, &[&LIFECYCLE, RECORD], include_str!("lua/replay.lua")));

// ----- webhooks -----

/// Webhook events recorded once each (`lua/record_events.lua`).
pub static RECORD_EVENTS: LazyLock<Script> =
    LazyLock::new(|| assemble(Plain, &[], include_str!("lua/record_events.lua")));

/// A delivery milestone on a job's record (`lua/mark.lua`).
pub static MARK: LazyLock<Script> =
    LazyLock::new(|| assemble(AllowOom, &[], include_str!("lua/mark.lua")));

/// A processed event moved to its stream (`lua/append.lua`).
pub static APPEND: LazyLock<Script> =
    LazyLock::new(|| assemble(Plain, &[], include_str!("lua/append.lua")));

// ----- inspection -----

/// Where a job is, read atomically (`lua/locate.lua`); writes nothing.
pub static LOCATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "#!lua flags=no-writes\n{}",
        include_str!("lua/locate.lua")
    ))
});

// ----- the dashboard -----

/// A dashboard session checked and marked used (`lua/touch_session.lua`).
pub static TOUCH_SESSION: LazyLock<Script> =
    LazyLock::new(|| assemble(AllowOom, &[], include_str!("lua/touch_session.lua")));
