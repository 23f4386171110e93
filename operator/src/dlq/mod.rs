//! Dead letters for operators: list, show, replay and purge them (`herald-worker dlq`).
//!
//! Owns reading the dead-letter hash ([`Keys::dead`]) and its per-lane time indexes
//! ([`Keys::dead_index`]), and the two ways a dead letter leaves them:
//!
//! - **replay** ([`DeadLetters::replay`]): back onto its lane with a fresh retry budget and
//!   its history kept: an [`Outcome::Replayed`](herald_shared::job::Outcome::Replayed) marker is appended, and the worker counts
//!   only the attempts after it. Each move is one atomic script (`store/src/lua/replay.lua`), so a
//!   replay killed at any point leaves every job either still dead or back on its lane, never
//!   both, never neither; the script re-checks the letter is still there (and unchanged), so
//!   replaying the same id twice enqueues it once. Deciding (is it expired? does `--extend`
//!   give it a new deadline?) is a pure function, [`plan()`].
//! - **purge** ([`DeadLetters::purge`]): deleted from the hash and its index together.
//!
//! It never sends anything and never dead-letters (that is the worker's, `herald_pipeline::settle`).
//! The text people read is rendered here too ([`render_list`], [`render_replay`],
//! [`render_purge`]), as [`crate::status`] does, so the binary only picks what to print.
//!
//! One concern per file:
//!
//! - [`store`]: Redis: reading the hash and its indexes, the replay and purge moves.
//! - [`plan`](mod@plan): what replaying one letter comes to, and the reports: pure.
//! - [`render`]: the tables and summaries people read, and `dlq show`'s redacted JSON.

mod plan;
mod render;
mod store;

use std::time::Duration;

use deadpool_redis::PoolError;
use deadpool_redis::redis::RedisError;
use herald_shared::Lane;
use herald_shared::redis_pool::{error_reason, pool_error_reason};
use herald_store::dead_letter;

pub use plan::{
    Extension, ExtensionError, LaneCounts, NotReplayed, Plan, PurgeReport, ReplayReport, plan,
    reason_matches,
};
pub use render::{Row, render_list, render_purge, render_reason, render_replay, to_pretty_json};
pub use store::DeadLetters;

/// A Redis failure; the caller reports it and exits (there is nothing to retry by hand).
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("Redis: {}", error_reason(.0))]
    Redis(#[from] RedisError),
    #[error("Redis: {}", pool_error_reason(.0))]
    Pool(PoolError),
    /// A stored dead letter that is not a dead letter's JSON (written by something else?).
    #[error(
        "dead letter {id:?} is not a dead letter's JSON ({reason}); was it written by another program?"
    )]
    Unreadable { id: String, reason: String },
}

impl From<PoolError> for DlqError {
    fn from(err: PoolError) -> Self {
        match err {
            PoolError::Backend(err) => DlqError::Redis(err),
            other => DlqError::Pool(other),
        }
    }
}

/// What `dlq list` shows.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub lane: Option<Lane>,
    /// A case-insensitive substring of the reason.
    pub reason: Option<String>,
    pub limit: Option<usize>,
}

/// One page of dead letters, newest first, for a browser: bounded work per request however
/// many letters there are ([`DeadLetters::page`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageQuery {
    pub lane: Option<Lane>,
    /// A case-insensitive substring of the reason; pages then scan at most
    /// [`PAGE_SCAN_LIMIT`] letters each.
    pub reason: Option<String>,
    /// Only letters dead for at least this long.
    pub older_than: Option<Duration>,
    /// Only letters dead for at most this long.
    pub newer_than: Option<Duration>,
    /// Where the page starts (the previous page's [`Page::next`]).
    pub cursor: PageCursor,
    /// Letters per page (at least 1).
    pub size: usize,
}

/// How far into each lane's index (newest first, within the age range) a listing is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageCursor {
    pub otp: usize,
    pub booking: usize,
    pub reminder: usize,
    pub bulk: usize,
}

impl PageCursor {
    pub fn get(&self, lane: Lane) -> usize {
        match lane {
            Lane::Otp => self.otp,
            Lane::Booking => self.booking,
            Lane::Reminder => self.reminder,
            Lane::Bulk => self.bulk,
        }
    }

    fn set(&mut self, lane: Lane, offset: usize) {
        let slot = match lane {
            Lane::Otp => &mut self.otp,
            Lane::Booking => &mut self.booking,
            Lane::Reminder => &mut self.reminder,
            Lane::Bulk => &mut self.bulk,
        };
        *slot = offset;
    }
}

/// The most letters one page with a reason filter reads; past it the page ends early and
/// says where to go on.
pub const PAGE_SCAN_LIMIT: usize = 2_000;

/// A page of dead letters.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub letters: Vec<dead_letter::DeadLetter>,
    /// Where the next page starts; `None` at the end.
    pub next: Option<PageCursor>,
    /// Letters read to make it (more than shown with a reason filter).
    pub scanned: usize,
    /// Letters in the selected lanes and age range, whatever their reason.
    pub in_range: u64,
}

/// Which dead letters a replay takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    All,
    /// Named ones; an id that is not dead is reported.
    Ids(Vec<String>),
    /// Those whose reason holds this text, case-insensitive.
    Reason(String),
}

/// Which dead letters a purge deletes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PurgeSelection {
    All,
    Ids(Vec<String>),
    /// Dead for longer than this (by the index's Redis-clock timestamps).
    OlderThan(Duration),
}

#[derive(Clone, Copy, Debug, Default)]
pub struct ReplayOptions {
    /// Gives every replayed job with a deadline at least this long from now (at most 24h).
    pub extend: Option<Extension>,
    /// Decide and report, change nothing.
    pub dry_run: bool,
}

#[cfg(test)]
pub(crate) mod tests {
    //! Fixtures for the plan and render tests.
    use std::time::Duration;

    use herald_shared::{Job, Lane};
    use herald_store::dead_letter::DeadLetter;
    use time::OffsetDateTime;

    pub(crate) fn letter(job: Option<Job>) -> DeadLetter {
        DeadLetter {
            job_id: job
                .as_ref()
                .map_or("entry:1-0".into(), |j| j.id.to_string()),
            lane: Lane::Otp,
            reason: "exhausted: 3 attempts failed, last: HTTP 500".into(),
            kind: None,
            consumer: "w1".into(),
            dead_at: OffsetDateTime::now_utc(),
            job,
            raw: None,
        }
    }

    pub(crate) fn otp(valid_for: Duration) -> Job {
        Job::otp("+919000000001", "123456", valid_for).unwrap()
    }
}
