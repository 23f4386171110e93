//! A job's lifecycle, written down once: the states a job's record can say ([`State`]), the
//! steps that move it ([`Step`], one script each), and the one table of which step may start
//! from which state ([`TABLE`]). `docs/lifecycle.md` shows the same table (a test renders it
//! from here and compares), and every script reads it: [`lua_prelude`] turns it into the Lua
//! check (`may`) the scripts make before they write, so a step the table does not allow is
//! refused by the script, which changes nothing of the job and says what it found.
//!
//! Where a job *is* follows from its state, one key each: `scheduled` in its lane's scheduled
//! set, `queued` and `sending` on its lane's stream (`sending` once the last check before a
//! send passed; a queued entry a replica has read but not begun is *in hand*, which the
//! stream's pending list says, not the record), `retrying` in its lane's delayed set, `dead`
//! and `expired` in the dead letters; `sent`, `cancelled` and `superseded` nowhere (`sent`
//! leaves its sent marker). Delivered and read are what Interakt reports of a sent message
//! (milestones on the record), not steps of the queue.
//!
//! A job with no record (enqueued by a release before records existed, or kept so long that
//! its record expired) has nothing to check: every step may run on it.

use std::fmt;

/// What a job's record says of it: the `state` field. The stored names are a storage format
/// (scripts and older releases read them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Waiting in its lane's scheduled set for its `send_at`.
    Scheduled,
    /// On its lane (or in a replica's hand, before its send began).
    Queued,
    /// Its send began (the last check passed): a cancel now is too late for this attempt.
    Sending,
    /// Parked in its lane's delayed set until its next attempt.
    Retrying,
    /// Interakt accepted it.
    Sent,
    /// Given up: a dead letter.
    Dead,
    /// Past its deadline before it could be sent: a dead letter (`expired`).
    Expired,
    /// Cancelled by its id or idempotency key before its send began, or while a failed
    /// attempt was under way: never sent (again).
    Cancelled,
    /// Replaced by a newer job with its replace key: never sent (again).
    Superseded,
}

impl State {
    pub const ALL: [State; 9] = [
        State::Scheduled,
        State::Queued,
        State::Sending,
        State::Retrying,
        State::Sent,
        State::Dead,
        State::Expired,
        State::Cancelled,
        State::Superseded,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            State::Scheduled => "scheduled",
            State::Queued => "queued",
            State::Sending => "sending",
            State::Retrying => "retrying",
            State::Sent => "sent",
            State::Dead => "dead",
            State::Expired => "expired",
            State::Cancelled => "cancelled",
            State::Superseded => "superseded",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Still to be sent (or being sent): the idempotency key holds it, a cancel may stop it.
    pub const fn is_pending(self) -> bool {
        matches!(
            self,
            State::Scheduled | State::Queued | State::Sending | State::Retrying
        )
    }

    /// Never sent again, whatever happens next (a replay can still bring back a dead or
    /// expired one).
    pub const fn is_final(self) -> bool {
        !self.is_pending()
    }

    /// Where a job in this state waits, as `docs/lifecycle.md` says it.
    pub const fn place(self) -> &'static str {
        match self {
            State::Scheduled => "`scheduled:<lane>` (its body in `scheduled:jobs`)",
            State::Queued => "`lane:<lane>` (in a replica's hand once read)",
            State::Sending => "`lane:<lane>`, pending with the replica sending it",
            State::Retrying => "`delayed:<lane>`",
            State::Sent => "nowhere (`sent:<id>` marks it)",
            State::Dead | State::Expired => "`dead` and `dead:index:<lane>`",
            State::Cancelled | State::Superseded => "nowhere",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step of the lifecycle: the one script (or branch of one) that makes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// `enqueue.lua`: a new job onto its lane, or into its scheduled set.
    Enqueue,
    /// `schedule.lua`: a scheduled job that is due, onto its lane.
    Schedule,
    /// `begin_send.lua`: the last check before a send; the record says `sending`.
    BeginSend,
    /// `begin_send.lua`'s answer when an older job of the same replace key is still being
    /// sent: the newer one waits in the delayed set (`defer.lua`) so it cannot overtake it.
    Defer,
    /// `hand_back.lua`: an unstarted job back onto its lane (shutdown, a grant that kept
    /// going stale).
    HandBack,
    /// `complete.lua`: Interakt accepted it.
    Complete,
    /// `retry.lua`: a failed attempt parked for the next.
    Retry,
    /// `dead.lua`: given up (or past its deadline).
    DeadLetter,
    /// `promote.lua`: a retry that is due, back onto its lane.
    Promote,
    /// `replay.lua`: a dead letter back onto its lane.
    Replay,
    /// `cancel_job.lua`: stopped by its id or idempotency key.
    Cancel,
    /// `enqueue.lua` with a replace key: the older job of the key stopped.
    Supersede,
}

impl Step {
    pub const ALL: [Step; 12] = [
        Step::Enqueue,
        Step::Schedule,
        Step::BeginSend,
        Step::Defer,
        Step::HandBack,
        Step::Complete,
        Step::Retry,
        Step::DeadLetter,
        Step::Promote,
        Step::Replay,
        Step::Cancel,
        Step::Supersede,
    ];

    /// Its name in the Lua table (and in metric labels).
    pub const fn as_str(self) -> &'static str {
        match self {
            Step::Enqueue => "enqueue",
            Step::Schedule => "schedule",
            Step::BeginSend => "begin_send",
            Step::Defer => "defer",
            Step::HandBack => "hand_back",
            Step::Complete => "complete",
            Step::Retry => "retry",
            Step::DeadLetter => "dead_letter",
            Step::Promote => "promote",
            Step::Replay => "replay",
            Step::Cancel => "cancel",
            Step::Supersede => "supersede",
        }
    }

    /// The script that makes it.
    pub const fn script(self) -> &'static str {
        match self {
            Step::Enqueue | Step::Supersede => "enqueue.lua",
            Step::Schedule => "schedule.lua",
            Step::BeginSend => "begin_send.lua",
            Step::Defer => "defer.lua",
            Step::HandBack => "hand_back.lua",
            Step::Complete => "complete.lua",
            Step::Retry => "retry.lua",
            Step::DeadLetter => "dead.lua",
            Step::Promote => "promote.lua",
            Step::Replay => "replay.lua",
            Step::Cancel => "cancel_job.lua",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the table: a step, the states it may start from, the states it may end in.
#[derive(Clone, Copy, Debug)]
pub struct Transition {
    pub step: Step,
    /// Empty for [`Step::Enqueue`]: a new job has no state yet.
    pub from: &'static [State],
    pub to: &'static [State],
    /// What it means, for `docs/lifecycle.md`.
    pub note: &'static str,
}

use State::*;

/// Every transition a job can make. A script refuses a step from any other state.
pub const TABLE: &[Transition] = &[
    Transition {
        step: Step::Enqueue,
        from: &[],
        to: &[Queued, Scheduled],
        note: "a new job; a pending job under the same idempotency key is a duplicate instead",
    },
    Transition {
        step: Step::Schedule,
        from: &[Scheduled],
        to: &[Queued],
        note: "its `send_at` came",
    },
    Transition {
        step: Step::BeginSend,
        from: &[Queued, Retrying, Sending],
        to: &[Sending, Cancelled, Superseded],
        note: "the last check before the request: still this replica's, not sent, not past its \
               deadline; `sending` again when another replica took it over; a stop noted while \
               it was sending ends it here",
    },
    Transition {
        step: Step::Defer,
        from: &[Queued, Retrying, Sending],
        to: &[Retrying],
        note: "an older job of its replace key is still being sent: it waits, so it cannot \
               overtake it",
    },
    Transition {
        step: Step::HandBack,
        from: &[Queued, Sending],
        to: &[Queued, Cancelled, Superseded],
        note: "not started after all (shutdown; a grant that kept going stale): back onto its \
               lane for any replica",
    },
    Transition {
        step: Step::Complete,
        from: &[Sending, Queued, Retrying, Sent],
        to: &[Sent],
        note: "Interakt accepted it; recorded whatever else happened meanwhile (a send cannot \
               be undone), counted once",
    },
    Transition {
        step: Step::Retry,
        from: &[Sending],
        to: &[Retrying, Cancelled, Superseded],
        note: "a transient failure or a 429; cancelled or superseded instead when a stop was \
               noted while it was sending",
    },
    Transition {
        step: Step::DeadLetter,
        from: &[Queued, Sending, Retrying],
        to: &[Dead, Expired, Cancelled, Superseded],
        note: "a permanent failure, retries spent, poison, undecodable, or past its deadline \
               (`expired`); cancelled or superseded instead when a stop was noted",
    },
    Transition {
        step: Step::Promote,
        from: &[Retrying],
        to: &[Queued],
        note: "its retry is due",
    },
    Transition {
        step: Step::Replay,
        from: &[Dead, Expired],
        to: &[Queued],
        note: "an operator replayed its dead letter; skipped when its replace key or \
               idempotency key now names a newer job",
    },
    Transition {
        step: Step::Cancel,
        from: &[Scheduled, Queued, Retrying, Sending],
        to: &[Cancelled, Sending],
        note: "taken out of wherever it waits; while `sending`, too late for the attempt under \
               way, which is not retried if it fails",
    },
    Transition {
        step: Step::Supersede,
        from: &[Scheduled, Queued, Retrying, Sending],
        to: &[Superseded, Sending],
        note: "a newer job with its replace key was enqueued; while `sending`, as a cancel, and \
               the newer job waits for the attempt under way",
    },
];

/// Whether `step` may start from `from` (`None`: a job without a record, which has nothing
/// to check).
pub fn allowed(step: Step, from: Option<State>) -> bool {
    match from {
        None => true,
        Some(from) => TABLE
            .iter()
            .any(|t| t.step == step && t.from.contains(&from)),
    }
}

/// The Lua every lifecycle script starts with: `may(step, state)`, whether `step` may start
/// from `state` (a state of `nil` or `false`: a job without a record, which may take any
/// step). Made from [`TABLE`], so the scripts and the table cannot disagree.
///
/// A chain of comparisons rather than a table: every script runs its preludes on every
/// call, and building a table of tables each time cost more than the check it serves
/// (Lua compares strings by pointer). A step it does not know raises, as indexing a table
/// with it did: a script that names one is wrong, not the job.
pub fn lua_prelude() -> String {
    let mut lua = String::from(
        "-- Generated from store/src/lifecycle.rs (TABLE): do not edit here.\n\
         local function may(step, state)\n  if not state then\n    return true\n  end\n",
    );
    for (i, step) in Step::ALL.into_iter().enumerate() {
        let mut from: Vec<&str> = TABLE
            .iter()
            .filter(|t| t.step == step)
            .flat_map(|t| t.from.iter().map(|s| s.as_str()))
            .collect();
        from.sort_unstable();
        from.dedup();
        let allowed = if from.is_empty() {
            "false".to_string()
        } else {
            from.iter()
                .map(|s| format!("state == '{s}'"))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        let branch = if i == 0 { "if" } else { "elseif" };
        lua.push_str(&format!(
            "  {branch} step == '{}' then\n    return {allowed}\n",
            step.as_str()
        ));
    }
    lua.push_str("  end\n  error('no lifecycle step ' .. tostring(step))\nend\n");
    lua
}

/// The table as `docs/lifecycle.md` shows it (Markdown).
pub fn markdown_table() -> String {
    let names = |states: &[State]| {
        if states.is_empty() {
            "(new)".to_string()
        } else {
            states
                .iter()
                .map(|s| format!("`{}`", s.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut out = String::from("| step | script | from | to | when |\n|---|---|---|---|---|\n");
    for t in TABLE {
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} |\n",
            t.step.as_str(),
            t.step.script(),
            names(t.from),
            names(t.to),
            t.note.split_whitespace().collect::<Vec<_>>().join(" ")
        ));
    }
    out
}

/// Each state and where a job in it waits (Markdown).
pub fn markdown_places() -> String {
    let mut out = String::from("| state | where the job is |\n|---|---|\n");
    for state in State::ALL {
        out.push_str(&format!("| `{}` | {} |\n", state.as_str(), state.place()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_is_reached_and_every_step_has_a_row() {
        for state in State::ALL {
            assert!(
                TABLE.iter().any(|t| t.to.contains(&state)),
                "{state} is never reached"
            );
            assert_eq!(State::parse(state.as_str()), Some(state));
        }
        for step in Step::ALL {
            assert!(TABLE.iter().any(|t| t.step == step), "{step} has no row");
        }
    }

    #[test]
    fn final_states_are_left_only_by_a_replay_or_a_duplicate_settle() {
        for t in TABLE {
            for from in t.from {
                if from.is_final() {
                    assert!(
                        matches!(
                            (t.step, from),
                            (Step::Replay, Dead | Expired) | (Step::Complete, Sent)
                        ),
                        "{} may start from final state {from}",
                        t.step
                    );
                }
            }
        }
    }

    #[test]
    fn nothing_stopped_is_ever_sent_again() {
        for step in [Step::BeginSend, Step::Retry, Step::Promote, Step::Schedule] {
            assert!(!allowed(step, Some(Cancelled)), "{step} from cancelled");
            assert!(!allowed(step, Some(Superseded)), "{step} from superseded");
        }
        assert!(!allowed(Step::DeadLetter, Some(Cancelled)));
        assert!(!allowed(Step::Replay, Some(Cancelled)));
        assert!(
            allowed(Step::BeginSend, None),
            "no record: nothing to check"
        );
    }

    /// `docs/lifecycle.md` shows the tables rendered from [`TABLE`] between its markers.
    /// `HERALD_BLESS=1 cargo test -p herald-store the_lifecycle_doc` writes them there.
    #[test]
    fn the_lifecycle_doc_is_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/lifecycle.md");
        let doc = std::fs::read_to_string(path).expect("docs/lifecycle.md");
        let mut blessed = doc.clone();
        for (name, table) in [("states", markdown_places()), ("steps", markdown_table())] {
            let open = format!(
                "<!-- {name}: generated from store/src/lifecycle.rs, do not edit by hand -->\n"
            );
            let close = format!("<!-- end {name} -->");
            let start = blessed.find(&open).expect("the opening marker") + open.len();
            let end = blessed[start..].find(&close).expect("the closing marker") + start;
            blessed.replace_range(start..end, &table);
        }
        if std::env::var_os("HERALD_BLESS").is_some() {
            std::fs::write(path, &blessed).unwrap();
            return;
        }
        assert!(
            doc == blessed,
            "docs/lifecycle.md differs from store/src/lifecycle.rs's TABLE: run \
             `HERALD_BLESS=1 cargo test -p herald-store the_lifecycle_doc`"
        );
    }

    #[test]
    fn the_lua_table_is_the_rust_table() {
        let lua = lua_prelude();
        assert!(
            lua.contains(
                "  elseif step == 'begin_send' then\n    \
                 return state == 'queued' or state == 'retrying' or state == 'sending'\n"
            ),
            "{lua}"
        );
        assert!(
            lua.contains("  if step == 'enqueue' then\n    return false\n"),
            "{lua}"
        );
        assert!(
            lua.contains(
                "  elseif step == 'replay' then\n    return state == 'dead' or state == 'expired'\n"
            ),
            "{lua}"
        );
        for step in Step::ALL {
            assert!(
                lua.contains(&format!("step == '{step}' then")),
                "{step}: {lua}"
            );
        }
    }
}
