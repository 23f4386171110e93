//! Moving jobs onto their lanes when they are due: retries back from their lane's delayed
//! set, and scheduled jobs (`send_at`) from their lane's scheduled set.
//!
//! A waiting job never blocks anything: it sits in a sorted set scored by when it is due and
//! this task moves due ones to the lane with one atomic script per batch
//! (`store/src/lua/promote.lua`, `store/src/lua/schedule.lua`). Every replica runs it; a job is taken off its
//! set in the same script that adds it to the lane, so whichever replica gets there first
//! moves it and no other moves it again. A scheduled job's body is stored once (a hash by
//! id); its set holds ids only, so a move is O(log n) whatever the backlog.

use std::time::Duration;

use herald_shared::Lane;
use herald_shared::redis_pool::Pool;
use herald_store::Keys;
use tokio_util::sync::CancellationToken;

use crate::lanes::RedisFailure;
use herald_shared::backoff::{Next, ReconnectBackoff};

use herald_store::calls::waiting::{self, Moved};

/// The longest the task sleeps between looks, so retries added by other replicas (which may
/// be due sooner than anything it saw) are not missed for long.
const MAX_NAP: Duration = Duration::from_millis(250);
/// Jobs moved per script run, at most: a short script, so Redis stays responsive.
pub const BATCH: usize = 500;

/// Moves due jobs of `lane` back to the lane; returns how many moved and how long until the
/// next one is due. Entries whose record says the job was stopped meanwhile are dropped.
pub async fn promote_due(
    pool: &Pool,
    keys: &Keys,
    lane: Lane,
) -> Result<(usize, Option<Duration>), RedisFailure> {
    let call = waiting::promote(keys, lane, BATCH);
    let moved = Moved::decode("promote.lua", &call.invoke(&mut pool.get().await?).await?)?;
    if moved.dropped > 0 {
        tracing::info!(lane = %lane, dropped = moved.dropped, "due retries of jobs stopped meanwhile dropped, not sent");
    }
    Ok((moved.moved, moved.next))
}

/// Moves due scheduled jobs of `lane` onto the lane; returns how many moved and how long
/// until the next one is due.
pub async fn promote_scheduled(
    pool: &Pool,
    keys: &Keys,
    lane: Lane,
) -> Result<(usize, Option<Duration>), RedisFailure> {
    let call = waiting::schedule(keys, lane, BATCH);
    let moved = Moved::decode("schedule.lua", &call.invoke(&mut pool.get().await?).await?)?;
    Ok((moved.moved, moved.next))
}

/// Runs until `shutdown`: moves due retries and due scheduled jobs on both lanes, naps
/// until the next is due (at most [`MAX_NAP`], so a due job waits well under a second).
/// Redis failures back off and retry; one no retry can help ([`RedisFailure::is_fatal`]: a
/// waiting set or a lane holds another type of value, the ACL user may not run a script)
/// ends it, and the replica with it.
pub async fn run_promoter(pool: Pool, keys: Keys, shutdown: CancellationToken) {
    let mut backoff = ReconnectBackoff::new("retry promoter");
    while !shutdown.is_cancelled() {
        let mut nap = MAX_NAP;
        let mut failed = false;
        let moves = Lane::ALL
            .into_iter()
            .flat_map(|lane| [(lane, Waiting::Retry), (lane, Waiting::Scheduled)]);
        for (lane, waiting) in moves {
            let moved = match waiting {
                Waiting::Retry => promote_due(&pool, &keys, lane).await,
                Waiting::Scheduled => promote_scheduled(&pool, &keys, lane).await,
            };
            match moved {
                Ok((moved, next)) => {
                    if moved > 0 {
                        tracing::debug!(lane = %lane, moved, what = waiting.as_str(), "due, onto the lane");
                    }
                    if moved >= BATCH {
                        nap = Duration::ZERO;
                    } else if let Some(next) = next {
                        nap = nap.min(next);
                    }
                }
                Err(err) => {
                    failed = true;
                    if backoff.failed(&err) == Next::Stop {
                        return;
                    }
                }
            }
        }
        if failed {
            if backoff.wait(&shutdown).await.is_err() {
                return;
            }
            continue;
        }
        backoff.succeeded();
        tokio::select! {
            _ = tokio::time::sleep(nap) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The two sets jobs wait in before their lane.
#[derive(Clone, Copy, Debug)]
enum Waiting {
    Retry,
    Scheduled,
}

impl Waiting {
    fn as_str(self) -> &'static str {
        match self {
            Waiting::Retry => "retries",
            Waiting::Scheduled => "scheduled jobs",
        }
    }
}
