//! Every Lua script Herald runs, assembled once: each file of `src/lua/` with the preludes
//! it calls in front. No other crate holds a script or a `.lua` file: the stages call these
//! through the typed calls of [`crate::calls`].
//!
//! The preludes:
//!
//! - the lifecycle (`lifecycle.lua`, after `may(step, state)`, generated from
//!   [`crate::lifecycle::TABLE`]): `may`, `become`, the idempotency claim that follows its
//!   job, a stop taking effect;
//! - ownership (`owned.lua`): who holds a stream entry, and `finish` (XACK + XDEL);
//!   `holders.lua`, after it, asks who holds each of many entries with one `XPENDING` per
//!   stream (the scripts that check a batch);
//! - the budget token (`token.lua`): `charge()` after an answer, `refund_all()` when no request
//!   was made;
//! - the record write (`record.lua`): a job's fields from the script's arguments;
//! - stopping a job (`stop.lua`): cancel and supersede;
//! - the tenants of a lane (`tenant.lua`): a tenant's stream, its turn, the bell;
//! - the clock (`clock.lua`): Redis's `TIME` in microseconds, for the budget;
//! - the OTP guard (`guard.lua`): its rules for one OTP, its windows, blocks and refusals.
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
    /// Writes nothing: runs on a replica, and under any memory.
    NoWrites,
}

/// One of Herald's scripts: its text as assembled (which the tests check: every prelude
/// function it calls is in front of it) and the script Redis runs, which it derefs to.
pub struct Lua {
    name: &'static str,
    text: String,
    script: Script,
}

impl Lua {
    /// The file the script's body is, e.g. `enqueue.lua`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The whole text Redis is given: flags, preludes, body.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl std::ops::Deref for Lua {
    type Target = Script;

    fn deref(&self) -> &Script {
        &self.script
    }
}

impl std::fmt::Debug for Lua {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lua")
            .field("name", &self.name)
            .field("hash", &self.script.get_hash())
            .finish()
    }
}

/// A script with its preludes in front, in the order given.
fn assemble(name: &'static str, flags: Flags, preludes: &[&str], body: &str) -> Lua {
    let mut text = String::new();
    match flags {
        Flags::Plain => {}
        Flags::AllowOom => text.push_str("#!lua flags=allow-oom\n"),
        Flags::NoWrites => text.push_str("#!lua flags=no-writes\n"),
    }
    for prelude in preludes {
        text.push_str(prelude);
        text.push('\n');
    }
    text.push_str(body);
    Lua {
        name,
        script: Script::new(&text),
        text,
    }
}

/// Declares a script: `name: flags, [preludes], "file.lua"`.
macro_rules! lua {
    ($(#[$doc:meta])* $name:ident: $flags:expr, [$($prelude:expr),*], $file:literal) => {
        $(#[$doc])*
        pub static $name: LazyLock<Lua> = LazyLock::new(|| {
            assemble(
                $file,
                $flags,
                &[$(&$prelude),*],
                include_str!(concat!("lua/", $file)),
            )
        });
    };
}

/// The lifecycle prelude: the generated `may`, then the functions that write states.
static LIFECYCLE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}{}",
        lifecycle::lua_prelude(),
        include_str!("lua/lifecycle.lua")
    )
});
const CLOCK: &str = include_str!("lua/clock.lua");
const OWNED: &str = include_str!("lua/owned.lua");
const HOLDERS: &str = include_str!("lua/holders.lua");
const RECORD: &str = include_str!("lua/record.lua");
const TOKEN: &str = include_str!("lua/token.lua");
const STOP: &str = include_str!("lua/stop.lua");
const TENANT: &str = include_str!("lua/tenant.lua");
const GUARD: &str = include_str!("lua/guard.lua");

use Flags::{AllowOom, NoWrites, Plain};

// ----- enqueue and cancel (the producer) -----

lua! {
    /// Claims an idempotency key, checks an OTP against the guard, supersedes, records and
    /// adds one job (`lua/enqueue.lua`).
    ENQUEUE: Plain, [LIFECYCLE, TENANT, RECORD, STOP, GUARD], "enqueue.lua"
}

// ----- the OTP guard (the producer; the operator's unblock) -----

lua! {
    /// A verified OTP counted for its prefix's conversion (`lua/verified.lua`).
    VERIFIED: Plain, [GUARD], "verified.lua"
}

lua! {
    /// A blocked prefix freed, its counts started afresh (`lua/unblock.lua`).
    UNBLOCK: Plain, [], "unblock.lua"
}

lua! {
    /// Cancels one job by id (`lua/cancel_job.lua`).
    CANCEL: AllowOom, [LIFECYCLE, TENANT, STOP], "cancel_job.lua"
}

// ----- the shared budget (the worker's limiter) -----

lua! {
    /// Tokens of the shared budget (`lua/acquire.lua`).
    ACQUIRE: AllowOom, [CLOCK], "acquire.lua"
}

lua! {
    /// The shared cool-down after a 429 (`lua/cooldown.lua`).
    COOLDOWN: AllowOom, [CLOCK], "cooldown.lua"
}

lua! {
    /// The cool-down's probe answered: a 2xx ends the pause (`lua/probe.lua`).
    PROBE: AllowOom, [CLOCK], "probe.lua"
}

lua! {
    /// A token no request went out under, given back with its pacing (`lua/refund.lua`).
    REFUND: AllowOom, [TOKEN], "refund.lua"
}

// ----- settling a delivery (the worker) -----

lua! {
    /// The last check before a send (`lua/begin_send.lua`).
    BEGIN_SEND: AllowOom, [LIFECYCLE, OWNED, HOLDERS, TOKEN], "begin_send.lua"
}

lua! {
    /// A job that waits for an older one of its replace key (`lua/defer.lua`).
    DEFER: AllowOom, [LIFECYCLE, OWNED], "defer.lua"
}

lua! {
    /// Sent: record, acknowledge, delete (`lua/complete.lua`).
    COMPLETE: AllowOom, [LIFECYCLE, OWNED, HOLDERS, TOKEN, RECORD], "complete.lua"
}

lua! {
    /// Parked for a retry (`lua/retry.lua`).
    RETRY: AllowOom, [LIFECYCLE, OWNED, TOKEN, RECORD], "retry.lua"
}

lua! {
    /// Dead-lettered (`lua/dead.lua`).
    DEAD: AllowOom, [LIFECYCLE, OWNED, TOKEN, RECORD], "dead.lua"
}

lua! {
    /// An unstarted job given back to its lane (`lua/hand_back.lua`).
    HAND_BACK: AllowOom, [LIFECYCLE, TENANT, OWNED], "hand_back.lua"
}

lua! {
    /// A copy that must not be sent from here acknowledged (`lua/drop_duplicate.lua`).
    DROP_DUPLICATE: AllowOom, [OWNED], "drop_duplicate.lua"
}

lua! {
    /// The holds of a replica kept alive (`lua/touch.lua`).
    TOUCH: AllowOom, [OWNED], "touch.lua"
}

// ----- reading the lanes (the worker) -----

lua! {
    /// New jobs of one lane, tenants served in turn (`lua/read_turns.lua`).
    READ_TURNS: AllowOom, [TENANT], "read_turns.lua"
}

lua! {
    /// Stale entries of one lane taken over, stream by stream (`lua/claim_turns.lua`).
    CLAIM_TURNS: AllowOom, [TENANT], "claim_turns.lua"
}

// ----- waiting jobs moved onto their lanes (the worker) -----

lua! {
    /// Due retries back onto their lane (`lua/promote.lua`).
    PROMOTE: AllowOom, [LIFECYCLE, TENANT], "promote.lua"
}

lua! {
    /// Due scheduled jobs onto their lane (`lua/schedule.lua`).
    SCHEDULE: AllowOom, [LIFECYCLE, TENANT], "schedule.lua"
}

// ----- dead letters (the worker's eraser, the operator's replay) -----

lua! {
    /// An OTP's code erased from its dead letter (`lua/erase.lua`).
    ERASE: AllowOom, [], "erase.lua"
}

lua! {
    /// A dead letter back onto its lane (`lua/replay.lua`).
    REPLAY: Plain, [LIFECYCLE, TENANT, RECORD], "replay.lua"
}

// ----- webhooks -----

lua! {
    /// Webhook events recorded once each (`lua/record_events.lua`).
    RECORD_EVENTS: Plain, [], "record_events.lua"
}

lua! {
    /// A delivery milestone on a job's record (`lua/mark.lua`).
    MARK: AllowOom, [], "mark.lua"
}

lua! {
    /// A processed event moved to its stream (`lua/append.lua`).
    APPEND: Plain, [], "append.lua"
}

// ----- inspection -----

lua! {
    /// Where a job is, read atomically (`lua/locate.lua`); writes nothing.
    LOCATE: NoWrites, [], "locate.lua"
}

lua! {
    /// A lane's length, pending count and lag at one instant (`lua/lane_snapshot.lua`);
    /// writes nothing.
    LANE_SNAPSHOT: NoWrites, [], "lane_snapshot.lua"
}

lua! {
    /// Every lane's backlog, tenant by tenant, at one instant (`lua/backlog.lua`); writes
    /// nothing.
    BACKLOG: NoWrites, [TENANT], "backlog.lua"
}

// ----- the dashboard -----

lua! {
    /// A dashboard session checked and marked used (`lua/touch_session.lua`).
    TOUCH_SESSION: AllowOom, [], "touch_session.lua"
}

/// Every script, for the checks that must see them all.
pub fn all() -> [&'static Lua; 29] {
    [
        &ENQUEUE,
        &CANCEL,
        &VERIFIED,
        &UNBLOCK,
        &ACQUIRE,
        &COOLDOWN,
        &PROBE,
        &REFUND,
        &BEGIN_SEND,
        &DEFER,
        &COMPLETE,
        &RETRY,
        &DEAD,
        &HAND_BACK,
        &DROP_DUPLICATE,
        &TOUCH,
        &READ_TURNS,
        &CLAIM_TURNS,
        &PROMOTE,
        &SCHEDULE,
        &ERASE,
        &REPLAY,
        &RECORD_EVENTS,
        &MARK,
        &APPEND,
        &LOCATE,
        &LANE_SNAPSHOT,
        &BACKLOG,
        &TOUCH_SESSION,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The preludes, by file name.
    fn preludes() -> [(&'static str, &'static str); 9] {
        [
            ("lifecycle.lua", &LIFECYCLE),
            ("clock.lua", CLOCK),
            ("owned.lua", OWNED),
            ("holders.lua", HOLDERS),
            ("record.lua", RECORD),
            ("token.lua", TOKEN),
            ("stop.lua", STOP),
            ("tenant.lua", TENANT),
            ("guard.lua", GUARD),
        ]
    }

    /// The functions a prelude defines (`local function name(`).
    fn defined(prelude: &str) -> Vec<&str> {
        prelude
            .match_indices("local function ")
            .filter_map(|(at, marker)| {
                let rest = &prelude[at + marker.len()..];
                rest.split_once('(').map(|(name, _)| name.trim())
            })
            .collect()
    }

    /// `text` with its comments (`--` to the end of the line) blanked, positions kept.
    fn code(text: &str) -> String {
        text.lines()
            .map(|line| match line.find("--") {
                Some(at) => format!("{}{}", &line[..at], " ".repeat(line.len() - at)),
                None => line.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Where `name` is called in `text` (not where it is defined, not as the end of a
    /// longer name).
    fn calls(text: &str, name: &str) -> Vec<usize> {
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == ':';
        text.match_indices(&format!("{name}("))
            .map(|(at, _)| at)
            .filter(|&at| {
                let before = &text[..at];
                !before.ends_with("local function ")
                    && !before.chars().next_back().is_some_and(ident)
            })
            .collect()
    }

    /// A prelude function a script calls is defined in front of every call: a preludes
    /// list that leaves one out (or puts it after its caller) fails here, not at the first
    /// run in Redis with "attempted to access nonexistent global variable".
    #[test]
    fn every_prelude_function_a_script_calls_is_in_front_of_it() {
        let functions: Vec<&str> = preludes().iter().flat_map(|(_, p)| defined(p)).collect();
        assert!(functions.contains(&"stream_for"), "{functions:?}");
        let mut missing = Vec::new();
        for script in all() {
            let text = code(script.text());
            let text = text.as_str();
            for name in &functions {
                let Some(&first_call) = calls(text, name).first() else {
                    continue;
                };
                match text.find(&format!("local function {name}(")) {
                    Some(at) if at < first_call => {}
                    Some(_) => missing.push(format!(
                        "{}: {name} is defined after its first call",
                        script.name()
                    )),
                    None => missing.push(format!(
                        "{}: calls {name} but no prelude in front of it defines it",
                        script.name()
                    )),
                }
            }
        }
        assert!(missing.is_empty(), "{missing:#?}");
    }

    /// Every file of `src/lua/` is a script or a prelude.
    #[test]
    fn every_lua_file_is_used() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/lua");
        let known: Vec<&str> = all()
            .iter()
            .map(|s| s.name())
            .chain(preludes().iter().map(|(name, _)| *name))
            .collect();
        for entry in std::fs::read_dir(dir).unwrap() {
            let file = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                known.contains(&file.as_str()),
                "src/lua/{file} is neither a script of scripts::all() nor a prelude"
            );
        }
    }
}
