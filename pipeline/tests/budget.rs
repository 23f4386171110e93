//! The shared budget against a real redis-server: the scripts' rules (sliding log, global
//! pacing, OTP reserve, bookings' share, 429 episodes, the cool-down cap, distinct log
//! members, a request charged from its answer), each with its own server. Times are Redis's, so windows are short and real.

use std::time::Duration;

use herald_pipeline::lanes::Delivery;
use herald_pipeline::limiter::{Budget, SharedLimiter, Token};
use herald_pipeline::settle::Settler;
use herald_shared::config::RateLimit;
use herald_shared::redis_pool::{Pool, connect};
use herald_shared::{Job, Lane};
use herald_store::Keys;
use herald_store::keys::Stat;
use herald_tests::RedisServer;
use redis::AsyncCommands;
use tokio::time::advance;

mod paused;

struct Harness {
    _redis: RedisServer,
    pool: Pool,
    keys: Keys,
}

async fn harness() -> Harness {
    let redis = RedisServer::start();
    let pool = connect(&redis.url(), 8).await.unwrap();
    Harness {
        _redis: redis,
        pool,
        keys: Keys::new("budget").unwrap(),
    }
}

fn budget(rate: &str) -> Budget {
    let rate: RateLimit = rate.parse().unwrap();
    Budget {
        margin: Duration::ZERO,
        ..Budget::new(rate)
    }
}

impl Harness {
    fn limiter(&self, budget: Budget, consumer: &str) -> SharedLimiter {
        SharedLimiter::new(self.pool.clone(), &self.keys, budget, consumer)
    }

    async fn log_len(&self) -> u64 {
        let mut conn = self.pool.get().await.unwrap();
        conn.zcard(self.keys.rate_window()).await.unwrap()
    }

    /// `n` entries in the log now, as earlier grants would have left them (`otp`: OTPs'
    /// grants, in their own log too).
    async fn prefill(&self, n: usize, otp: bool) {
        let now = redis_now(&mut self.pool.get().await.unwrap()).await;
        for i in 0..n {
            self.log_entry(&format!("earlier:{i}"), now, otp).await;
        }
    }

    /// An earlier grant's entry `member`, scored `at` (us, Redis clock) in the log, and in
    /// the OTPs' own too when `otp`.
    async fn log_entry(&self, member: &str, at: f64, otp: bool) {
        let mut conn = self.pool.get().await.unwrap();
        let _: () = conn
            .zadd(self.keys.rate_window(), member, at)
            .await
            .unwrap();
        if otp {
            let _: () = conn
                .zadd(self.keys.rate_window_otp(), member, at)
                .await
                .unwrap();
        }
    }

    async fn effective(&self) -> Option<u32> {
        let mut conn = self.pool.get().await.unwrap();
        conn.hget(self.keys.rate_state(), "effective")
            .await
            .unwrap()
    }
}

/// OTPs granted in the previous window (aligned on W, as the script counts them), whose
/// entries have left the shared log: only the OTPs' log, which keeps two windows, has them.
///
/// The test that follows must run inside the current aligned window (once it ends, these
/// OTPs are two windows old and hold no reserve), so when too little of it is left, this
/// waits for the next one to start first.
async fn otps_seen_last_window(h: &Harness, n: usize, window: Duration) {
    let mut conn = h.pool.get().await.unwrap();
    let w = window.as_micros() as u64;
    let needed = (w / 2).min(1_500_000);
    let mut now = redis_now(&mut conn).await as u64;
    let left = w - now % w;
    if left < needed {
        tokio::time::sleep(Duration::from_micros(left + 10_000)).await;
        now = redis_now(&mut conn).await as u64;
    }
    let last_window = now / w * w - w;
    for i in 0..n {
        let _: () = conn
            .zadd(
                h.keys.rate_window_otp(),
                format!("seen:{i}"),
                last_window + 1,
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn bookings_leave_the_otps_of_the_last_window_their_tokens_and_an_otp_finds_one() {
    let h = harness().await;
    // 100 per 10 s (one token every 100 ms), the reserve 5, and 5 OTPs in the last window:
    // bookings stop at 95.
    let b = Budget {
        otp_reserve: 5,
        ..budget("100/10s")
    };
    let limiter = h.limiter(b, "w1");
    otps_seen_last_window(&h, 5, Duration::from_secs(10)).await;
    h.prefill(94, false).await;
    assert_eq!(granted(&limiter, Lane::Booking, 1).await, 1);
    assert_eq!(h.log_len().await, 95);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (granted, wait_us) = limiter.try_acquire(Lane::Booking, 1).await.unwrap();
    let granted = granted.count();
    assert_eq!(
        granted, 0,
        "the pacing would allow one; the reserve the OTPs of the last window left does not"
    );
    assert!(
        wait_us > 1_000_000,
        "it waits for the window to slide: {wait_us} us"
    );
    let (otp, _) = limiter.try_acquire(Lane::Otp, 1).await.unwrap();
    let otp = otp.count();
    assert_eq!(otp, 1, "an OTP finds a reserved token at once");
}

#[tokio::test]
async fn requests_from_all_replicas_together_are_paced_at_the_plans_rate() {
    let h = harness().await;
    // 20 per 2 s: one token every 100 ms for everyone together, burst 1.
    let b = budget("20/2s");
    let replicas: Vec<SharedLimiter> = (0..3).map(|i| h.limiter(b, &format!("w{i}"))).collect();
    let started = tokio::time::Instant::now();
    let mut total = 0;
    while started.elapsed() < Duration::from_millis(1_000) {
        for limiter in &replicas {
            total += granted(limiter, Lane::Booking, 64).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Three replicas asking flat out for 1 s get about 10 tokens, not a window's 19.
    assert!(
        (9..=12).contains(&total),
        "{total} tokens in 1 s at 20/2s for three replicas together"
    );
}

#[tokio::test]
async fn a_burst_of_429s_is_one_episode_halves_the_budget_once_and_never_escalates() {
    let h = harness().await;
    let b = budget("100/1m");
    let limiter = h.limiter(b, "w1");
    limiter.try_acquire(Lane::Booking, 1).await.unwrap();
    let base = Duration::from_millis(100);
    let mut pauses = Vec::new();
    let mut began = 0;
    for _ in 0..11 {
        let c = limiter.cool_down(None, base).await.unwrap();
        pauses.push(c.pause);
        began += u32::from(c.began_episode);
        assert_eq!(c.effective, 50, "halved once, not eleven times");
    }
    assert_eq!(began, 1, "eleven 429s of one burst are one episode");
    assert!(
        pauses.iter().all(|p| *p <= base),
        "no escalation within one episode: {pauses:?}"
    );
    assert_eq!(h.effective().await, Some(50));
}

#[tokio::test]
async fn a_huge_retry_after_pauses_every_replica_for_at_most_max_cooldown() {
    let h = harness().await;
    let b = Budget {
        max_cooldown: Duration::from_millis(300),
        ..budget("100/1s")
    };
    let limiter = h.limiter(b, "w1");
    let other = h.limiter(b, "w2");
    for huge in [3_600, 100_000_000, u64::MAX / 1_000_000] {
        let c = limiter
            .cool_down(Some(Duration::from_secs(huge)), Duration::from_millis(100))
            .await
            .unwrap();
        assert!(
            c.pause <= Duration::from_millis(300),
            "{huge} s: {:?}",
            c.pause
        );
    }
    let (granted, wait_us) = other.try_acquire(Lane::Otp, 1).await.unwrap();
    let granted = granted.count();
    assert_eq!(granted, 0, "every replica pauses");
    assert!(wait_us <= 300_000, "for at most the cap: {wait_us} us");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (granted, _) = other.try_acquire(Lane::Otp, 1).await.unwrap();
    let granted = granted.count();
    assert_eq!(granted, 1, "and then goes on");
}

#[tokio::test]
async fn clean_windows_grow_the_budget_back_to_the_configured_rate() {
    let h = harness().await;
    // 40 per 200 ms: a step of 4 per clean window.
    let b = budget("40/200ms");
    let limiter = h.limiter(b, "w1");
    limiter.try_acquire(Lane::Booking, 1).await.unwrap();
    let c = limiter
        .cool_down(Some(Duration::from_millis(1)), Duration::from_millis(1))
        .await
        .unwrap();
    assert_eq!(c.effective, 20);
    let mut seen = vec![20];
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(210)).await;
        limiter.try_acquire(Lane::Booking, 1).await.unwrap();
        seen.push(h.effective().await.unwrap());
    }
    assert!(
        seen.windows(2).all(|w| w[1] >= w[0]),
        "grows, never shrinks without a 429: {seen:?}"
    );
    assert_eq!(*seen.last().unwrap(), 40, "back to N: {seen:?}");
}

#[tokio::test]
async fn a_restarted_replica_with_the_same_name_never_overwrites_live_log_entries() {
    let h = harness().await;
    let b = budget("1000/1m");
    // Two processes named the same (a fixed HERALD_CONSUMER, before and after a restart).
    let before = h.limiter(b, "fixed");
    let after = h.limiter(b, "fixed");
    let mut total = 0;
    for _ in 0..5 {
        total += granted(&before, Lane::Booking, 1).await;
        total += granted(&after, Lane::Booking, 1).await;
        tokio::time::sleep(Duration::from_millis(70)).await;
    }
    assert_eq!(
        h.log_len().await,
        u64::from(total),
        "every grant is its own entry in the log"
    );
}

#[tokio::test]
async fn while_bookings_wait_otps_leave_them_their_share() {
    let h = harness().await;
    // 400 per 10 s: bookings' share 40, so OTPs stop at 360 while bookings wait.
    let b = Budget {
        booking_share: 40,
        otp_reserve: 20,
        ..budget("400/10s")
    };
    let limiter = h.limiter(b, "w1");
    h.prefill(358, true).await;
    assert_eq!(
        granted(&limiter, Lane::Booking, 1).await,
        1,
        "a booking asks: bookings are waiting from now on"
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    let mut otps = 0;
    for _ in 0..10 {
        otps += granted(&limiter, Lane::Otp, 64).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(otps, 2, "OTPs stop at 400 - 40 = 360 of their own");
    assert_eq!(
        granted(&limiter, Lane::Booking, 1).await,
        1,
        "the booking gets its token"
    );
}

/// How many of `want` tokens `limiter` grants `lane` right now.
async fn granted(limiter: &SharedLimiter, lane: Lane, want: u32) -> u32 {
    limiter.try_acquire(lane, want).await.unwrap().0.count()
}

/// The Redis clock now, in microseconds.
async fn redis_now(conn: &mut herald_shared::redis_pool::Connection) -> f64 {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(conn).await.unwrap();
    (secs * 1_000_000 + micros) as f64
}

/// A request in flight counts from its grant plus the request timeout plus the margin (the
/// latest it may reach Interakt, however long its connection takes to come up); answered,
/// from its answer. An entry that left the log before its answer was charged (Redis lost
/// it, or the settle came late) is put back by the charge, and its log lives a window more.
/// Observed before the fix: in flight, an entry counted from its grant plus the margin only,
/// and a charge did not bring back an entry that had left (`ZADD XX`).
#[tokio::test]
async fn a_request_counts_from_its_grant_until_answered_then_from_its_answer() {
    let h = harness().await;
    let margin = Duration::from_secs(5);
    let request_timeout = Duration::from_secs(7);
    let limiter = h.limiter(
        Budget {
            margin,
            request_timeout,
            ..budget("100/10s")
        },
        "w1",
    );
    let in_flight = (margin + request_timeout).as_micros() as f64;
    let (booking, _) = limiter.try_acquire(Lane::Booking, 1).await.unwrap();
    let booking = booking.iter().next().expect("a booking's token");
    let settler = Settler::new(h.pool.clone(), h.keys.clone(), "w1".into());
    let mut conn = h.pool.get().await.unwrap();
    let job = Job::otp("+919812345678", "123456", Duration::from_secs(60)).unwrap();

    let before = redis_now(&mut conn).await;
    let (tokens, _) = limiter.try_acquire(Lane::Otp, 2).await.unwrap();
    let tokens: Vec<Token> = tokens.iter().collect();
    assert_eq!(tokens.len(), 2);
    for log in [h.keys.rate_window(), h.keys.rate_window_otp()] {
        let score: f64 = conn.zscore(&log, tokens[0].member()).await.unwrap();
        assert!(
            score >= before + in_flight,
            "in flight, {log} counts it from its grant plus the request timeout and the margin"
        );
        let ttl: i64 = conn.pttl(&log).await.unwrap();
        assert!(
            ttl > (in_flight / 1000.0) as i64 + 10_000,
            "{log} outlives its entry in flight by a window: {ttl} ms"
        );
    }

    // Answered: the settle that follows the send re-scores both entries to its own time,
    // whoever owns the stream entry (here nobody: the charge does not depend on it).
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(h.keys.lane(Lane::Otp))
        .arg(herald_store::keys::WORKER_GROUP)
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut delivery = Delivery::of_job(&h.keys, &job, "1-1");
    delivery.token = Some(tokens[0].clone());
    settler.sent(&delivery, &job, "msg-1").await.unwrap();
    let after = redis_now(&mut conn).await;
    for log in [h.keys.rate_window(), h.keys.rate_window_otp()] {
        let score: f64 = conn.zscore(&log, tokens[0].member()).await.unwrap();
        assert!(
            (before..=after).contains(&score),
            "answered, {log} counts it from the answer: {score} not in {before}..={after}"
        );
        let other: f64 = conn.zscore(&log, tokens[1].member()).await.unwrap();
        assert!(
            other >= before + in_flight,
            "the other token, still in flight, is untouched"
        );
    }

    // An entry gone from both logs (the logs themselves gone: Redis lost them) is put back
    // by the settle of its answer, counted from then, and its logs live a window at least.
    for log in [h.keys.rate_window(), h.keys.rate_window_otp()] {
        let _: () = conn.del(&log).await.unwrap();
    }
    delivery.token = Some(tokens[1].clone());
    settler
        .retry(&delivery, &job, Duration::from_secs(1), Stat::Retried)
        .await
        .unwrap();
    let after = redis_now(&mut conn).await;
    for (log, lives_ms) in [
        (h.keys.rate_window(), 10_000),
        (h.keys.rate_window_otp(), 20_000),
    ] {
        let back: Option<f64> = conn.zscore(&log, tokens[1].member()).await.unwrap();
        let back = back.unwrap_or_else(|| panic!("{log}: the entry is back"));
        assert!(back <= after, "{log}: counted from its answer");
        let ttl: i64 = conn.pttl(&log).await.unwrap();
        assert!(ttl >= lives_ms, "{log} lives {ttl} ms, at least {lives_ms}");
    }

    // A booking's token is put back in the shared log only.
    let _: () = conn
        .zrem(h.keys.rate_window(), booking.member())
        .await
        .unwrap();
    delivery.token = Some(booking.clone());
    settler
        .retry(&delivery, &job, Duration::from_secs(1), Stat::Retried)
        .await
        .unwrap();
    let main: Option<f64> = conn
        .zscore(h.keys.rate_window(), booking.member())
        .await
        .unwrap();
    let otps: Option<f64> = conn
        .zscore(h.keys.rate_window_otp(), booking.member())
        .await
        .unwrap();
    assert!(main.is_some() && otps.is_none(), "{main:?} {otps:?}");
}

#[tokio::test]
async fn otps_spend_the_reserve_on_top_of_a_backlog_and_one_that_finds_the_window_full_goes_first()
{
    let h = harness().await;
    // 20 per 2 s (a token every 100 ms), the reserve 1 and an OTP in the last window:
    // bookings' own requests stop at 19.
    let b = Budget {
        otp_reserve: 1,
        ..budget("20/2s")
    };
    let limiter = h.limiter(b, "w1");
    otps_seen_last_window(&h, 1, Duration::from_secs(2)).await;
    let mut conn = h.pool.get().await.unwrap();
    let now = redis_now(&mut conn).await;
    // A backlog's 19 requests: the oldest leaves the window in 300 ms, the others in 2 s.
    for i in 0..19 {
        let at = if i == 0 { now - 1_700_000.0 } else { now };
        h.log_entry(&format!("booking:{i}"), at, false).await;
    }
    assert_eq!(
        granted(&limiter, Lane::Booking, 1).await,
        0,
        "bookings never take the reserve the OTPs seen hold"
    );
    assert_eq!(
        granted(&limiter, Lane::Otp, 1).await,
        1,
        "an OTP spends it on top of the backlog"
    );
    assert_eq!(h.log_len().await, 20, "the whole window is used");

    // The window is full: the next OTP waits for the oldest request to leave, and goes first.
    let (otp, wait_us) = limiter.try_acquire(Lane::Otp, 1).await.unwrap();
    assert_eq!(otp.count(), 0);
    assert!(
        (100_000..=400_000).contains(&wait_us),
        "it waits for the oldest request to leave: {wait_us} us"
    );
    let first: u64 = conn.zcard(h.keys.otp_first()).await.unwrap();
    assert_eq!(first, 1, "it said it goes first");
    tokio::time::sleep(Duration::from_micros(wait_us)).await;
    assert_eq!(
        granted(&limiter, Lane::Booking, 1).await,
        0,
        "a token freed and bookings are under their cap, but the waiting OTP goes first"
    );
    assert_eq!(
        granted(&limiter, Lane::Otp, 1).await,
        1,
        "the OTP takes the freed token"
    );
    let first: u64 = conn.zcard(h.keys.otp_first()).await.unwrap();
    assert_eq!(first, 0, "and no OTP waits any more");
}

#[tokio::test]
async fn once_otps_have_spent_the_reserve_bookings_leave_a_spare_token_for_the_next_otp() {
    let h = harness().await;
    // 200 per 2 s: the reserve 10, the spare 2 (1% of N).
    let limiter = h.limiter(budget("200/2s"), "w1");
    assert_eq!(limiter.budget().spare(), 2);
    let now = redis_now(&mut h.pool.get().await.unwrap()).await;
    // 12 OTPs (more than the reserve) and 186 bookings in the window: 198 of 200.
    for i in 0..198 {
        h.log_entry(&format!("earlier:{i}"), now, i < 12).await;
    }
    assert_eq!(
        granted(&limiter, Lane::Booking, 1).await,
        0,
        "bookings hold back what OTPs use plus the spare, though 2 tokens are free"
    );
    assert_eq!(
        granted(&limiter, Lane::Otp, 2).await,
        2,
        "the next OTPs find the spare at once"
    );
}

/// Requests answered at once: each counts from its grant (no request timeout, no margin).
fn answered_at_once(rate: &str) -> Budget {
    Budget {
        request_timeout: Duration::ZERO,
        ..budget(rate)
    }
}

/// Asks `limiter` for one token of `lane` `times` times, the test's clock moving on `every`
/// before each ask: how many it granted.
async fn ask_every(limiter: &SharedLimiter, lane: Lane, every: Duration, times: u32) -> u32 {
    let mut granted = 0;
    for _ in 0..times {
        advance(every).await;
        granted += limiter.try_acquire(lane, 1).await.unwrap().0.count();
    }
    granted
}

/// The OTP reserve bookings leave follows the OTPs seen (issue 26, part 5), on a paused
/// clock through four one-minute windows at 300/1m (a token every 200 ms, reserve 15, spare
/// 3), asked for a token every 200 ms: with no OTP seen, bookings use 299 of 300 (99.7%;
/// 285 before, 95%) and the first OTP finds the one token left at once; a window with 11
/// OTPs makes bookings hold 11 through the next window, though no OTP comes then; a window
/// later they use 299 again.
#[tokio::test(start_paused = true)]
async fn the_otp_reserve_follows_the_otps_seen_and_a_booking_backlog_uses_99_percent() {
    let h = paused::harness();
    let started = tokio::time::Instant::now();
    let limiter = h.limiter_with(answered_at_once("300/1m"), "w1");
    let token = Duration::from_millis(200);
    // Requests in the sliding window that ends now, and the OTPs among them.
    let in_window = async || {
        let now_us = paused::ORIGIN_US + started.elapsed().as_micros() as u64;
        h.in_window(now_us - 60_000_000).await
    };

    // The first window: bookings only.
    let bookings = ask_every(&limiter, Lane::Booking, token, 300).await;
    assert_eq!(bookings, 299, "no OTP seen: bookings leave one token");
    let otp = limiter.try_acquire(Lane::Otp, 1).await.unwrap().0;
    assert_eq!(
        otp.count(),
        1,
        "the first OTP after a quiet stretch finds it at once"
    );

    // The second: 10 more OTPs among the bookings, each finding a token at once.
    let mut otps = 0;
    for i in 1..=300 {
        advance(token).await;
        limiter.try_acquire(Lane::Booking, 1).await.unwrap();
        if i % 30 == 15 {
            otps += limiter.try_acquire(Lane::Otp, 1).await.unwrap().0.count();
        }
    }
    assert_eq!(otps, 10, "every OTP found a token at once");

    // The third: no OTP, but bookings hold what the 11 of the last window took.
    ask_every(&limiter, Lane::Booking, token, 299).await;
    assert_eq!(
        in_window().await,
        (289, 0),
        "bookings left the 11 tokens the OTPs took in the window before"
    );

    // The fourth: two windows without an OTP, bookings leave one token again.
    ask_every(&limiter, Lane::Booking, token, 300).await;
    assert_eq!(
        in_window().await,
        (299, 0),
        "a quiet window later, bookings use 299 of 300 again"
    );
}

/// Below N = 100 one token is more than 1% of the budget: with no OTP seen, bookings use the
/// whole window (30 of 30 at 30/6s), and the first OTP waits for the next token that frees
/// (one interval, 200 ms at most), which it takes before any booking.
#[tokio::test(start_paused = true)]
async fn below_n_100_bookings_use_the_whole_window_and_the_first_otp_takes_the_next_token() {
    let h = paused::harness();
    let limiter = h.limiter_with(answered_at_once("30/6s"), "w1");
    let token = Duration::from_millis(200);
    assert_eq!(ask_every(&limiter, Lane::Booking, token, 30).await, 30);
    let (otp, wait_us) = limiter.try_acquire(Lane::Otp, 1).await.unwrap();
    assert_eq!(otp.count(), 0, "the window is full");
    assert!(
        wait_us <= 200_001,
        "until the next token frees: {wait_us} us"
    );
    advance(Duration::from_micros(wait_us)).await;
    let (booking, _) = limiter.try_acquire(Lane::Booking, 1).await.unwrap();
    assert_eq!(booking.count(), 0, "the OTP goes first");
    let (otp, _) = limiter.try_acquire(Lane::Otp, 1).await.unwrap();
    assert_eq!(otp.count(), 1, "and takes it");
}

/// A burst of OTPs spends the reserve's pacing, not the bookings' (issue 29: a flood's
/// admitted OTPs delayed every booking and legitimate OTP of the next seconds), and a refund
/// gives its pacing back. On a paused clock at 300/1m (a token every 200 ms, burst 3,
/// reserve 15): 16 OTPs at once take the pace's token due now and the reserve's 15; a
/// booking asking at once finds the pace within its burst (before, the 16 had pushed the one
/// pace 3.2 s ahead and the booking waited for it); the 16 given back, their pacing is too,
/// and 16 more OTPs find their tokens at once.
#[tokio::test(start_paused = true)]
async fn a_burst_of_otps_spends_the_reserve_not_the_bookings_pace_and_a_refund_gives_it_back() {
    let h = paused::harness();
    let limiter = h.limiter_with(answered_at_once("300/1m"), "w1");
    let token = Duration::from_millis(200);
    advance(token).await;
    let (otps, _) = limiter.try_acquire(Lane::Otp, 16).await.unwrap();
    assert_eq!(otps.count(), 16, "the pace's token and the reserve's 15");
    let now_us = || paused::ORIGIN_US + 200_000;
    assert_eq!(h.state_field("tat").await, Some(now_us() + 200_000));
    assert_eq!(
        h.state_field("rtat").await,
        Some(now_us() + 15 * 4_000_000),
        "the reserve's pace: one token every 4 s"
    );
    let (booking, wait_us) = limiter.try_acquire(Lane::Booking, 1).await.unwrap();
    assert_eq!(booking.count(), 1, "the booking waited {wait_us} us");

    // No request went out under the 16 (their jobs were cancelled): given back, with the
    // pace they took.
    for otp in otps.iter() {
        limiter.refund(&otp).await;
    }
    assert_eq!(h.in_window(0).await, (1, 0), "the booking's entry is left");
    assert_eq!(h.state_field("tat").await, Some(now_us() + 200_000));
    assert!(h.state_field("rtat").await <= Some(now_us()));
    let (again, wait_us) = limiter.try_acquire(Lane::Otp, 16).await.unwrap();
    assert_eq!(again.count(), 16, "waited {wait_us} us");
    // Given back twice, a token moves the pace once.
    let first = again.iter().next().unwrap();
    limiter.refund(&first).await;
    let tat = h.state_field("tat").await;
    limiter.refund(&first).await;
    assert_eq!(h.state_field("tat").await, tat);
}
