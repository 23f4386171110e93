//! Moving retries back onto their lanes when they are due.
//!
//! A waiting retry never blocks anything: it sits in its lane's delayed set (scored by when
//! it is due, Redis clock) and this task moves due ones back to the lane with one atomic
//! script per batch. Every replica runs it; the script makes concurrent runs harmless.

use std::sync::LazyLock;
use std::time::Duration;

use deadpool_redis::redis::Script;
use herald_shared::keys::JOB_FIELD;
use herald_shared::redis_pool::Pool;
use herald_shared::{Keys, Lane};
use tokio_util::sync::CancellationToken;

use crate::lanes::RedisFailure;
use herald_shared::backoff::ReconnectBackoff;

static PROMOTE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/promote.lua")));

/// The longest the task sleeps between looks, so retries added by other replicas (which may
/// be due sooner than anything it saw) are not missed for long.
const MAX_NAP: Duration = Duration::from_millis(250);
const BATCH: usize = 500;

/// Moves due jobs of `lane` back to the lane; returns how many moved and how long until the
/// next one is due.
pub async fn promote_due(
    pool: &Pool,
    keys: &Keys,
    lane: Lane,
) -> Result<(usize, Option<Duration>), RedisFailure> {
    let mut conn = pool.get().await?;
    let (moved, next_ms): (usize, i64) = PROMOTE
        .key(keys.delayed(lane))
        .key(keys.lane(lane))
        .arg(BATCH)
        .arg(JOB_FIELD)
        .invoke_async(&mut conn)
        .await?;
    Ok((
        moved,
        (next_ms >= 0).then(|| Duration::from_millis(next_ms as u64)),
    ))
}

/// Runs until `shutdown`: promotes due retries on both lanes, naps until the next is due.
/// Redis failures back off and retry; one no retry can help ([`RedisFailure::is_fatal`]: a
/// delayed set or a lane holds another type of value) ends it, and the replica with it.
pub async fn run_promoter(pool: Pool, keys: Keys, shutdown: CancellationToken) {
    let mut backoff = ReconnectBackoff::new("retry promoter");
    while !shutdown.is_cancelled() {
        let mut nap = MAX_NAP;
        let mut failed = false;
        for lane in Lane::ALL {
            match promote_due(&pool, &keys, lane).await {
                Ok((moved, next)) => {
                    if moved > 0 {
                        tracing::debug!(lane = %lane, moved, "retries due, back on the lane");
                    }
                    if moved >= BATCH {
                        nap = Duration::ZERO;
                    } else if let Some(next) = next {
                        nap = nap.min(next);
                    }
                }
                Err(err) if err.is_fatal() => return backoff.give_up(&err),
                Err(err) => {
                    failed = true;
                    backoff.failed(&err);
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
