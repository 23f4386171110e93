//! The rate limit every replica shares: never more than N requests reach Interakt in any
//! sliding window of length W, retries included.
//!
//! Two layers, each doing one job:
//! - **Local pacing** (`governor`): each replica spreads its requests at the plan's steady
//!   rate (W/N apart, a small burst) instead of firing a window's worth at once.
//! - **The shared budget** (Redis): an exact sliding log of admitted requests, one atomic
//!   Lua script on one hash-tagged key, timed by Redis `TIME` so hosts' clocks never matter.
//!   The log admits at most N in any window of `W + margin`; the margin absorbs the jitter
//!   between the grant and the request's arrival at Interakt, so the N-in-W promise holds
//!   where Interakt measures it. A token bucket would admit its burst on top of N (see
//!   domain-facts: `Quota::per_minute(300)` admits about 600 in one sliding minute); the
//!   log counts every admitted request inside N, burst included.
//!
//! A 429 sets a shared **cool-down** key: while it lives, the script grants nothing, so
//! every replica slows at once, not just the one that was told.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_redis::redis::{RedisError, Script};
use governor::clock::DefaultClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use herald_shared::Keys;
use herald_shared::config::RateLimit;
use herald_shared::redis_pool::Pool;
use tokio_util::sync::CancellationToken;

/// The most tokens asked of Redis in one call.
const MAX_GRANT: u32 = 64;

/// Why [`SharedLimiter::acquire`] returned without tokens.
#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    #[error("shutting down")]
    Cancelled,
    #[error("Redis: {0}")]
    Redis(#[from] RedisError),
    #[error("Redis pool: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
}

/// The margin added to the window for the jitter between a grant and the request's arrival
/// at Interakt: 2% of W, at least 250 ms and at most 1 s (a W of one minute gets 1 s).
///
/// A grant that waits longer than half the margin before its request starts is not used
/// ([`SharedLimiter::is_fresh`]): the sender asks for a new one, so a stalled task (CPU
/// starvation, a pause) cannot push a request out of the window it was granted for.
pub fn default_margin(window: Duration) -> Duration {
    window
        .mul_f64(0.02)
        .clamp(Duration::from_millis(250), Duration::from_secs(1))
}

/// The shared limiter of one replica. Built once by the dispatcher; cheap to clone, and
/// clones share the local pacer and the call counter. The budget itself lives in Redis, so
/// dropping every clone releases nothing: tokens already granted stay counted in the window.
#[derive(Clone)]
pub struct SharedLimiter {
    /// The replica's Redis pool (shared with the reader and the settler).
    pool: Pool,
    /// The sliding log (sorted set) every replica's grants go into.
    window_key: String,
    /// The shared 429 cool-down, honoured by the acquire script.
    cooldown_key: String,
    /// The plan's N per W.
    limit: RateLimit,
    /// The log's window: the plan's W plus the jitter margin, in microseconds.
    log_window_us: u64,
    /// How long a grant stays usable: half the margin.
    grant_ttl: Duration,
    /// This replica's local pacing (governor), shared by every clone.
    pacer: Arc<RateLimiter<NotKeyed, InMemoryState, DefaultClock>>,
    /// Unique member prefix per call: consumer name + counter.
    member_prefix: Arc<str>,
    /// Calls so far, shared by every clone: the counter part of each log member.
    calls: Arc<AtomicU64>,
}

impl SharedLimiter {
    pub fn new(
        pool: Pool,
        keys: &Keys,
        limit: RateLimit,
        margin: Duration,
        consumer: &str,
    ) -> Self {
        // A small local burst (1% of N, at most MAX_GRANT) lets a replica use a grant of
        // several tokens at once at high rates, and keeps it strictly paced at low ones.
        let burst =
            NonZeroU32::new((limit.requests.get() / 100).clamp(1, MAX_GRANT)).expect("at least 1");
        let quota = Quota::with_period(limit.interval().max(Duration::from_nanos(1)))
            .expect("a non-zero period")
            .allow_burst(burst);
        SharedLimiter {
            pool,
            window_key: keys.rate_window(),
            cooldown_key: keys.cooldown(),
            limit,
            log_window_us: (limit.period + margin).as_micros() as u64,
            grant_ttl: margin / 2,
            pacer: Arc::new(RateLimiter::direct(quota)),
            member_prefix: Arc::from(consumer),
            calls: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Whether a grant received at `granted_at` may still be used for a request.
    pub fn is_fresh(&self, granted_at: tokio::time::Instant) -> bool {
        granted_at.elapsed() <= self.grant_ttl
    }

    /// Waits until at least one request may be sent and returns how many (1 to `want`).
    /// Every returned token must be used for a request, or the budget is spent for nothing.
    pub async fn acquire(
        &self,
        want: u32,
        cancel: &CancellationToken,
    ) -> Result<u32, AcquireError> {
        let want = want.clamp(1, MAX_GRANT);
        loop {
            tokio::select! {
                _ = self.pacer.until_ready() => {}
                _ = cancel.cancelled() => return Err(AcquireError::Cancelled),
            }
            // Take whatever more the local pacer allows right now, up to `want`.
            let mut local = 1;
            while local < want && self.pacer.check().is_ok() {
                local += 1;
            }
            let (granted, wait_us) = self.try_acquire(local).await?;
            if granted > 0 {
                return Ok(granted);
            }
            let wait = Duration::from_micros(wait_us.max(1000));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.cancelled() => return Err(AcquireError::Cancelled),
            }
        }
    }

    /// One call of the shared script: `(granted, wait_us)`.
    pub async fn try_acquire(&self, want: u32) -> Result<(u32, u64), AcquireError> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let mut conn = self.pool.get().await?;
        let (granted, wait_us): (u32, u64) = ACQUIRE
            .key(&self.window_key)
            .key(&self.cooldown_key)
            .arg(self.limit.requests.get())
            .arg(self.log_window_us)
            .arg(want)
            .arg(format!("{}:{call}", self.member_prefix))
            .invoke_async(&mut conn)
            .await?;
        Ok((granted, wait_us))
    }
}

static ACQUIRE: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("lua/acquire.lua")));
static COOLDOWN: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("lua/cooldown.lua")));

/// Pauses every replica after a 429: for `Retry-After` when Interakt gives one, otherwise
/// `base` doubled for each 429 seen in the last `streak_window` (capped at `max`). Returns
/// the pause now in force.
pub async fn start_cooldown(
    pool: &Pool,
    keys: &Keys,
    retry_after: Option<Duration>,
    base: Duration,
    max: Duration,
    streak_window: Duration,
) -> Result<Duration, AcquireError> {
    let mut conn = pool.get().await?;
    let retry_after_ms = retry_after.map_or(-1, |d| d.as_millis() as i64);
    let pause_ms: u64 = COOLDOWN
        .key(keys.cooldown())
        .key(keys.rate_limited_streak())
        .arg(retry_after_ms)
        .arg(base.as_millis() as u64)
        .arg(max.as_millis() as u64)
        .arg(streak_window.as_millis().max(1) as u64)
        .invoke_async(&mut conn)
        .await?;
    Ok(Duration::from_millis(pause_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_two_percent_within_bounds() {
        let cases = [(60, 1_000), (5, 250), (1, 250), (20, 400), (3_600, 1_000)];
        for (window_s, margin_ms) in cases {
            assert_eq!(
                default_margin(Duration::from_secs(window_s)),
                Duration::from_millis(margin_ms),
                "{window_s} s"
            );
        }
    }
}
