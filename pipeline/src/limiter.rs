//! The rate limit every replica shares: never more than N requests reach Interakt in any
//! sliding window of length W, retries included, spread at the plan's steady rate whatever
//! the number of replicas, with tokens kept for OTPs.
//!
//! Everything is decided in one atomic script (`store/src/lua/acquire.lua`) on hash-tagged keys,
//! timed by Redis `TIME` so hosts' clocks never matter:
//! - **The sliding log**: at most E requests in any sliding W. Each request counts from a
//!   time it cannot have reached Interakt after: while it is in flight, its grant plus the
//!   request timeout plus a margin (however long its connection takes to come up), then
//!   its answer (the settle re-scores its entry, or puts it back: [`Token`]), so the window
//!   is exact whatever the network's jitter and costs no more than the request's latency. A
//!   token bucket would admit its burst on top of N (see domain-facts:
//!   `Quota::per_minute(300)` admits about 600 in one sliding minute); the log counts every
//!   request inside N.
//! - **Global pacing** (GCRA): one token every W/E for all replicas together, a small
//!   burst allowed, so R replicas never spend a window in W/R and then all wait. OTPs'
//!   reserve is paced apart (the reserve at once, one more every W/reserve), so a burst of
//!   OTPs never delays the bookings' pace; a token given back ([`SharedLimiter::refund`],
//!   or by the last check before a send) gives back the pacing it took too, so a flood's
//!   cancelled OTPs leave no wait behind them.
//! - **The OTP reserve and the bookings' share**: bookings leave OTPs a reserve that
//!   follows their demand, as many tokens as OTPs took in this or the previous window, up
//!   to `--otp-reserve` (one token when none came, from N = 100: [`Budget::spare`]); OTPs
//!   spend it on top, and an OTP that finds the window full goes first for the next token
//!   that frees; while bookings wait, OTPs never take more than E minus `--booking-share`.
//! - **The adaptive budget**: the same API key is often spent by other services, so a 429
//!   *episode* (every 429 within one W) halves E (never below 1) and sets a shared
//!   **cool-down** (Retry-After, or a doubling pause; at most `--max-cooldown`) during
//!   which nothing is granted but a **probe**: one request every `--probe-interval`, from
//!   one replica at a time (an OTP's first), whose 2xx ends the pause for every replica
//!   ([`SharedLimiter::probe_answered`]) and whose 429 keeps it; each clean W gives back a
//!   tenth of N, up to N.
//!
//! The scripts' `now` is Redis's `TIME`; tests may give them a paused tokio clock instead
//! ([`Clock`]), to walk the budget through minutes of windows exactly and at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_redis::redis::RedisError;
use herald_shared::Lane;
use herald_shared::config::RateLimit;
use herald_shared::redis_pool::{Pool, RedisFailure};
use herald_store::Keys;
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

/// How late after its grant a request may start, and after its timeout reach Interakt: 2%
/// of W, at least 250 ms and at most 1 s (a W of one minute gets 1 s). A request in flight
/// counts in the log from its grant plus the request timeout plus this margin (see
/// [`Budget::in_flight`]); once answered, from its answer (see [`Token`]).
///
/// A grant that waits longer than half the margin before its request starts is not used
/// ([`SharedLimiter::is_fresh`]): the sender asks for a new one, so a stalled task (CPU
/// starvation, a pause) cannot push a request out of the window it was granted for. The
/// other half covers the network after the request's timeout (bytes already on their way
/// when the client gave up).
pub fn default_margin(window: Duration) -> Duration {
    window
        .mul_f64(0.02)
        .clamp(Duration::from_millis(250), Duration::from_secs(1))
}

/// How the shared budget is split and bounded, validated once ([`crate::settings`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The plan's N per W.
    pub rate: RateLimit,
    /// How late after its grant a request may start, and after its timeout reach Interakt
    /// (see [`default_margin`]).
    pub margin: Duration,
    /// `--request-timeout`: the longest a request is in flight once started.
    pub request_timeout: Duration,
    /// The most tokens of each window bookings leave to OTPs (`--otp-reserve`); below N.
    /// They leave as many as OTPs took in this or the previous window, up to this.
    pub otp_reserve: u32,
    /// Tokens of each window OTPs leave to waiting bookings (`--booking-share`); below N.
    pub booking_share: u32,
    /// The longest shared pause after a 429 (`--max-cooldown`); a longer Retry-After is
    /// clamped to it.
    pub max_cooldown: Duration,
    /// During a longer pause, one probe goes this often (`--probe-interval`).
    pub probe_interval: Duration,
}

impl Budget {
    /// A budget with the documented defaults for `rate`: a 5% OTP reserve (at least 1), a
    /// 10% bookings' share (at least 1), the default margin and request timeout, a 30 s
    /// cool-down cap.
    pub fn new(rate: RateLimit) -> Budget {
        let n = rate.requests.get();
        Budget {
            rate,
            margin: default_margin(rate.period),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            otp_reserve: percent_of(n, 5),
            booking_share: percent_of(n, 10),
            max_cooldown: DEFAULT_MAX_COOLDOWN,
            probe_interval: DEFAULT_PROBE_INTERVAL,
        }
    }

    /// How long after its grant a request in flight may still reach Interakt: the request
    /// timeout plus the margin (half of it to start, half for the network after the
    /// timeout). Its log entry is scored this far ahead of its grant until its answer
    /// re-scores it, so however long its connection takes to come up (DNS, TCP, TLS, a
    /// proxy), the request counts in every window it may reach Interakt in.
    pub fn in_flight(&self) -> Duration {
        self.request_timeout.saturating_add(self.margin)
    }

    /// Tokens one call may take at once ahead of the pacing: 1% of N, 1 to [`MAX_GRANT`].
    pub fn burst(&self) -> u32 {
        (self.rate.requests.get() / 100).clamp(1, MAX_GRANT)
    }

    /// Tokens bookings leave free beyond what OTPs use while OTPs use some, so the next OTP
    /// behind a full backlog finds one at once: 1% of N, rounded down (none below N = 100,
    /// where one token would cost more than 1% of the budget). With no OTP for two windows,
    /// bookings leave one token if this is at least one.
    pub fn spare(&self) -> u32 {
        self.rate.requests.get() / 100
    }

    /// Tokens the effective budget grows back by per clean window: a tenth of N, at least 1.
    pub fn growth_step(&self) -> u32 {
        percent_of(self.rate.requests.get(), 10)
    }
}

/// The default of `--max-cooldown`.
pub const DEFAULT_MAX_COOLDOWN: Duration = Duration::from_secs(30);

/// The default of `--request-timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The default of `--probe-interval`.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// `percent`% of `n`, rounded, at least 1 and below `n` (when `n` > 1).
pub fn percent_of(n: u32, percent: u32) -> u32 {
    let share = ((u64::from(n) * u64::from(percent) + 50) / 100) as u32;
    share.clamp(1, n.saturating_sub(1).max(1))
}

/// The tokens one call of the shared script granted (maybe none). Each becomes a [`Token`].
#[derive(Clone, Debug)]
pub struct Tokens {
    /// The call's unique prefix: token `i` (1-based) is the log member `{call}:{i}`.
    call: Arc<str>,
    count: u32,
    granted_at: tokio::time::Instant,
    /// Granted to an OTP: the entries are in the OTPs' log too.
    otp_log: bool,
    /// How many of them, the last ones, are the OTP reserve's (`acquire.lua`).
    reserved: u32,
    /// W in milliseconds, for the charge ([`Token::charge`]).
    window_ms: u64,
    /// The one token granted is the cool-down's probe.
    probe: bool,
}

impl Tokens {
    /// No token.
    pub fn none() -> Tokens {
        Tokens {
            call: Arc::from(""),
            count: 0,
            granted_at: tokio::time::Instant::now(),
            otp_log: false,
            reserved: 0,
            window_ms: 0,
            probe: false,
        }
    }

    /// How many were granted.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The tokens, one per request to send.
    pub fn iter(&self) -> impl Iterator<Item = Token> + '_ {
        let paced = self.count - self.reserved.min(self.count);
        (1..=self.count).map(move |i| Token {
            member: format!("{}:{i}", self.call),
            granted_at: self.granted_at,
            otp_log: self.otp_log,
            reserve: i > paced,
            window_ms: self.window_ms,
            probe: self.probe,
        })
    }
}

/// One request's place in the shared log, carried by its send to the settle. Granted, its
/// entry is scored at the grant plus [`Budget::in_flight`] (the latest the request may
/// reach Interakt); the settle after its answer re-scores it to the answer's time, putting
/// it back if it left the log meanwhile (`store/src/lua/token.lua`), so the request counts
/// exactly as long as Interakt may count it, and no longer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The entry in the log (and in the OTPs' log when granted to an OTP).
    member: String,
    granted_at: tokio::time::Instant,
    /// Granted to an OTP: the entry is in the OTPs' log too.
    otp_log: bool,
    /// Granted on the OTP reserve's pacing.
    reserve: bool,
    /// W in milliseconds: how long the charged entry counts.
    window_ms: u64,
    /// The cool-down's probe: its answer ends the pause for every replica, or keeps it.
    probe: bool,
}

impl Token {
    /// The log member.
    pub fn member(&self) -> &str {
        &self.member
    }

    /// A token granted at `granted_at` with no entry in the log (tests: a grant gone stale).
    pub fn unlogged(granted_at: tokio::time::Instant) -> Token {
        Token {
            member: String::new(),
            granted_at,
            otp_log: false,
            reserve: false,
            window_ms: 0,
            probe: false,
        }
    }

    /// Whether this token is the cool-down's probe ([`SharedLimiter::probe_answered`]).
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The token as the settle after its send charges it (or gives it back).
    pub fn charge(&self) -> Charge<'_> {
        Charge {
            member: &self.member,
            otp_log: self.otp_log,
            reserve: self.reserve,
            window_ms: self.window_ms,
        }
    }
}

/// What a 429 did to the shared budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cooldown {
    /// The pause now in force for every replica.
    pub pause: Duration,
    /// The effective budget (N after the episode's halving).
    pub effective: u32,
    /// True when this 429 began an episode (the first of its window).
    pub began_episode: bool,
}

/// Whose clock the budget's scripts read `now` from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// Redis's `TIME`: one clock for every replica, so hosts' clocks never matter. What
    /// every worker uses.
    #[default]
    Redis,
    /// For tests: tokio's clock (paused, with `start_paused`), read as `origin_us`
    /// microseconds since the Unix epoch at `since`. The scripts then never read `TIME`:
    /// a test advances its clock and the budget's windows, episodes and growth follow
    /// exactly. (The cool-down's key still expires on Redis's clock.)
    Tokio {
        origin_us: u64,
        since: tokio::time::Instant,
    },
}

impl Clock {
    /// Tokio's clock from now on, starting at `origin_us` microseconds since the epoch.
    pub fn tokio(origin_us: u64) -> Clock {
        Clock::Tokio {
            origin_us,
            since: tokio::time::Instant::now(),
        }
    }

    /// What the budget scripts take as `now` (`clock.lua`): Redis's clock, or a test's.
    fn now(&self) -> Now {
        match self {
            Clock::Redis => Now::Redis,
            Clock::Tokio { origin_us, since } => {
                let elapsed = since.elapsed().as_micros() as u64;
                Now::Given(origin_us.saturating_add(elapsed))
            }
        }
    }
}

/// The shared limiter of one replica. Built once by the dispatcher; cheap to clone, and
/// clones share the call counter. The budget itself lives in Redis, so dropping every clone
/// releases nothing: tokens already granted stay counted in the window.
#[derive(Clone)]
pub struct SharedLimiter {
    /// The replica's Redis pool (shared with the reader and the settler).
    pool: Pool,
    /// The budget's keys in Redis (the logs, the cool-down, its state).
    keys: BudgetKeys,
    budget: Budget,
    /// [`Budget::in_flight`] in microseconds: how far ahead of its grant an entry in flight
    /// is scored.
    in_flight_us: u64,
    /// How long a grant stays usable: half the margin.
    grant_ttl: Duration,
    /// Unique per process (consumer name and a random nonce), so a restarted replica with a
    /// fixed `HERALD_CONSUMER` never overwrites its predecessor's live log entries.
    member_prefix: Arc<str>,
    /// Calls so far, shared by every clone: the counter part of each log member.
    calls: Arc<AtomicU64>,
    /// Where the scripts' `now` comes from: Redis's `TIME`, but in tests.
    clock: Clock,
}

impl SharedLimiter {
    pub fn new(pool: Pool, keys: &Keys, budget: Budget, consumer: &str) -> Self {
        let nonce: u64 = rand::random();
        SharedLimiter {
            pool,
            keys: BudgetKeys::new(keys),
            budget,
            in_flight_us: u64::try_from(budget.in_flight().as_micros()).unwrap_or(u64::MAX),
            grant_ttl: budget.margin / 2,
            member_prefix: Arc::from(format!("{consumer}:{nonce:016x}")),
            calls: Arc::new(AtomicU64::new(0)),
            clock: Clock::Redis,
        }
    }

    /// This limiter with its scripts timed by `clock` (tests; see [`Clock::Tokio`]).
    pub fn with_clock(self, clock: Clock) -> Self {
        SharedLimiter { clock, ..self }
    }

    pub fn limit(&self) -> RateLimit {
        self.budget.rate
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Gives `token` back to the budget: no request went out under it (its grant went
    /// stale before the request could start). Best effort: a token Redis does not take back
    /// leaves the log W after its grant, as it would have. The cool-down's probe is given
    /// back too: the next may go at once.
    pub async fn refund(&self, token: &Token) {
        if token.member.is_empty() {
            return;
        }
        if token.probe {
            self.release_probe(token).await;
        }
        let refunded: Result<(), RedisFailure> = async {
            let mut conn = self.pool.get().await?;
            let () = self.keys.refund(token.charge()).invoke(&mut conn).await?;
            Ok(())
        }
        .await;
        if let Err(err) = refunded {
            tracing::debug!(error = %err, "could not give a stale token back");
        }
    }

    /// `token`, the cool-down's probe, went out under no request (its job was stopped before
    /// its send): the next probe may go at once. Best effort: otherwise the next goes once
    /// this one's flight is over.
    pub async fn release_probe(&self, token: &Token) {
        if let Err(err) = self.probe_answered(token, ProbeAnswer::Unsent).await {
            tracing::debug!(error = %err, "could not give the cool-down's probe back");
        }
    }

    /// Whether `token` may still be used for a request.
    pub fn is_fresh(&self, token: &Token) -> bool {
        token.granted_at.elapsed() <= self.grant_ttl
    }

    /// Waits until at least one request of `lane` may be sent and returns the tokens (1 to
    /// `want`). Every returned token must be used for a request (an OTP may use a booking's
    /// token, never the reverse), or the budget is spent for nothing.
    pub async fn acquire(
        &self,
        lane: Lane,
        want: u32,
        cancel: &CancellationToken,
    ) -> Result<Tokens, AcquireError> {
        let want = want.clamp(1, MAX_GRANT);
        loop {
            let (granted, wait_us) = self.try_acquire(lane, want).await?;
            if granted.count() > 0 {
                return Ok(granted);
            }
            let wait = Duration::from_micros(wait_us.max(1000));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.cancelled() => return Err(AcquireError::Cancelled),
            }
        }
    }

    /// One call of the shared script: the tokens granted (maybe none), and how long to wait
    /// before asking again can help.
    pub async fn try_acquire(&self, lane: Lane, want: u32) -> Result<(Tokens, u64), AcquireError> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let call: Arc<str> = Arc::from(format!("{}:{call}", self.member_prefix));
        let budget = &self.budget;
        let acquire = Acquire {
            requests: budget.rate.requests.get(),
            in_flight_us: self.in_flight_us,
            want,
            call: &call,
            lane: lane.budget_class(),
            otp_reserve: budget.otp_reserve,
            booking_share: budget.booking_share,
            period_us: budget.rate.period.as_micros() as u64,
            burst: budget.burst(),
            growth_step: budget.growth_step(),
            member: &self.member_prefix,
            spare: budget.spare(),
            now: self.clock.now(),
        }
        .call(&self.keys);
        let granted = decode_acquire(&acquire.invoke(&mut self.pool.get().await?).await?)?;
        let tokens = Tokens {
            call,
            count: granted.tokens,
            granted_at: tokio::time::Instant::now(),
            otp_log: lane == Lane::Otp,
            reserved: granted.reserved,
            window_ms: budget.rate.period.as_millis() as u64,
            probe: granted.probe,
        };
        Ok((tokens, granted.wait_us))
    }

    /// After a 429: pauses every replica (for `Retry-After`, clamped to `--max-cooldown`, or
    /// `base` doubled per recent episode) and, once per episode, halves the effective
    /// budget. The next probe goes `--probe-interval` from now.
    pub async fn cool_down(
        &self,
        retry_after: Option<Duration>,
        base: Duration,
    ) -> Result<Cooldown, AcquireError> {
        self.rate_limited(None, retry_after, base).await
    }

    /// After the 429 of a request sent under `token`: as [`SharedLimiter::cool_down`], but
    /// the 429 of the cool-down's probe keeps the pause (extended like any 429's) without
    /// beginning an episode, and ends the probe's flight.
    pub async fn rate_limited(
        &self,
        token: Option<&Token>,
        retry_after: Option<Duration>,
        base: Duration,
    ) -> Result<Cooldown, AcquireError> {
        let budget = &self.budget;
        let retry_after_ms =
            retry_after.map_or(-1, |d| d.min(budget.max_cooldown).as_millis() as i64);
        let cool_down = CoolDown {
            retry_after_ms,
            base_ms: base.as_millis() as u64,
            max_ms: budget.max_cooldown.as_millis() as u64,
            period_us: budget.rate.period.as_micros() as u64,
            requests: budget.rate.requests.get(),
            probe_interval_us: budget.probe_interval.as_micros() as u64,
            probe: token.filter(|t| t.probe).map(|t| t.member.as_str()),
            now: self.clock.now(),
        }
        .call(&self.keys);
        let (pause_ms, effective, began_episode) =
            decode_cooldown(&cool_down.invoke(&mut self.pool.get().await?).await?)?;
        Ok(Cooldown {
            pause: Duration::from_millis(pause_ms),
            effective,
            began_episode,
        })
    }

    /// The cool-down's probe (`token`) was answered, other than 429
    /// ([`SharedLimiter::rate_limited`] takes those): a 2xx ([`ProbeAnswer::Room`]) ends
    /// the pause for every replica, sending resuming at the effective budget; anything else
    /// lets the next probe go `--probe-interval` from now. True when this answer ended the
    /// pause.
    pub async fn probe_answered(
        &self,
        token: &Token,
        answer: ProbeAnswer,
    ) -> Result<bool, AcquireError> {
        let call = ProbeAnswered {
            member: &token.member,
            answer,
            probe_interval_us: self.budget.probe_interval.as_micros() as u64,
            now: self.clock.now(),
        }
        .call(&self.keys);
        Ok(decode_probe(
            &call.invoke(&mut self.pool.get().await?).await?,
        )?)
    }
}

/// How the cool-down's probe was answered, as `herald_budget_probes_total` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// A 2xx: the pause ended for every replica.
    Ok,
    /// A 429: the pause goes on.
    RateLimited,
    /// Anything else (5xx, a timeout, another 4xx): the next probe goes an interval later.
    Failed,
}

impl ProbeOutcome {
    pub const ALL: [ProbeOutcome; 3] = [
        ProbeOutcome::Ok,
        ProbeOutcome::RateLimited,
        ProbeOutcome::Failed,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeOutcome::Ok => "ok",
            ProbeOutcome::RateLimited => "rate_limited",
            ProbeOutcome::Failed => "failed",
        }
    }
}

pub use herald_store::calls::budget::ProbeAnswer;
use herald_store::calls::budget::{
    Acquire, BudgetKeys, Charge, CoolDown, Now, ProbeAnswered, decode_acquire, decode_cooldown,
    decode_probe,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_rounded_at_least_one_and_below_n() {
        assert_eq!(percent_of(300, 5), 15);
        assert_eq!(percent_of(30, 5), 2);
        assert_eq!(percent_of(20, 5), 1);
        assert_eq!(percent_of(1, 5), 1);
        assert_eq!(percent_of(2, 50), 1);
        assert_eq!(percent_of(300, 10), 30);
        let budget = Budget::new("300/1m".parse().unwrap());
        assert_eq!((budget.otp_reserve, budget.booking_share), (15, 30));
        assert_eq!(budget.burst(), 3);
        assert_eq!(budget.growth_step(), 30);
        assert_eq!(budget.spare(), 3);
        assert_eq!(Budget::new("30/6s".parse().unwrap()).spare(), 0);
        assert_eq!(budget.max_cooldown, Duration::from_secs(30));
    }

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
