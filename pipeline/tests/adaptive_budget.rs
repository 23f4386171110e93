//! The adaptive budget and the cool-down's escalation on a paused tokio clock. The budget's
//! scripts run on a real redis-server but read `now` from the test's clock
//! ([`Clock::Tokio`]), so the real plans' one-minute window is crossed exactly and at once:
//! a 429 episode halves the budget once, clean windows grow it back by a tenth of N, repeated
//! episodes double the pause up to `--max-cooldown`, a huge Retry-After is clamped, and a
//! pause longer than `--probe-interval` is probed: one request every interval, whose 2xx
//! ends it. The harness, and how paused time meets Redis, are in `paused/mod.rs`.

mod paused;

use std::time::Duration;

use herald_pipeline::limiter::{Budget, Cooldown, ProbeAnswer, SharedLimiter};
use herald_shared::Lane;
use tokio::time::advance;

use paused::{Harness, harness};

/// The plans' window.
const W: Duration = Duration::from_secs(60);
/// `--backoff-base`: the first pause of an episode without Retry-After.
const BASE: Duration = Duration::from_secs(1);
/// `--max-cooldown`.
const MAX_COOLDOWN: Duration = Duration::from_secs(8);
/// The limiters of these tests: 100 per minute (a step of 10 per clean window).
trait Plan {
    fn limiter(&self, consumer: &str) -> SharedLimiter;
}

impl Plan for Harness {
    fn limiter(&self, consumer: &str) -> SharedLimiter {
        let budget = Budget {
            max_cooldown: MAX_COOLDOWN,
            ..Budget::new("100/1m".parse().unwrap())
        };
        self.limiter_with(budget, consumer)
    }
}

/// A 429 without Retry-After.
async fn too_many(limiter: &SharedLimiter) -> Cooldown {
    limiter.cool_down(None, BASE).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn one_429_episode_halves_the_budget_once_however_many_429s_it_has() {
    let h = harness();
    let limiter = h.limiter("w1");
    let other = h.limiter("w2");
    // Thirty 429s, one every 2 s, from two replicas: all within the window of the first.
    let mut began = 0;
    for i in 0..30 {
        let replica = if i % 2 == 0 { &limiter } else { &other };
        let c = too_many(replica).await;
        assert_eq!(c.effective, 50, "429 {i}: halved once, never again");
        assert_eq!(c.pause, BASE, "429 {i}: no escalation within one episode");
        began += u32::from(c.began_episode);
        advance(Duration::from_secs(2)).await;
    }
    assert_eq!(began, 1, "thirty 429s of one window are one episode");
    assert_eq!(h.effective().await, Some(50));

    // A window after the first, the next 429 is a new episode.
    h.pause_over().await;
    let c = too_many(&limiter).await;
    assert!(c.began_episode, "{c:?}");
    assert_eq!(c.effective, 25);
    assert_eq!(c.pause, BASE * 2, "a second episode in a row pauses longer");
}

#[tokio::test(start_paused = true)]
async fn clean_windows_grow_the_budget_back_by_a_tenth_of_n_up_to_n() {
    let h = harness();
    let limiter = h.limiter("w1");
    // Retry-After: 0 halves the budget without a pause.
    let c = limiter.cool_down(Some(Duration::ZERO), BASE).await.unwrap();
    assert_eq!((c.effective, c.pause), (50, Duration::ZERO));
    let mut seen = Vec::new();
    for step in [W / 2, W / 2, W, W, W, W, W, 3 * W] {
        advance(step).await;
        let (granted, _) = limiter.try_acquire(Lane::Otp, 1).await.unwrap();
        let granted = granted.count();
        assert_eq!(granted, 1, "no pause is in force");
        seen.push(h.effective().await.unwrap());
    }
    assert_eq!(
        seen,
        [50, 60, 70, 80, 90, 100, 100, 100],
        "half a window gives nothing back; each clean window 10 (a tenth of N), up to N"
    );
}

#[tokio::test(start_paused = true)]
async fn repeated_episodes_double_the_pause_up_to_max_cooldown_and_a_clean_stretch_forgets_them() {
    let h = harness();
    let limiter = h.limiter("w1");
    let mut pauses = Vec::new();
    let mut budgets = Vec::new();
    // One 429 at the start of each of seven windows in a row.
    for _ in 0..7 {
        let c = too_many(&limiter).await;
        assert!(c.began_episode, "{c:?}");
        let left = h.pause_left_ms().await;
        assert!(
            left > 0 && left <= c.pause.as_millis() as i64,
            "the pause is in force for every replica: {left} ms of {:?}",
            c.pause
        );
        pauses.push(c.pause.as_secs());
        budgets.push(c.effective);
        advance(W).await;
        h.pause_over().await;
    }
    assert_eq!(
        pauses,
        [1, 2, 4, 8, 8, 8, 8],
        "doubling from --backoff-base, capped by --max-cooldown"
    );
    assert_eq!(budgets, [50, 25, 12, 6, 3, 1, 1], "halved, never below 1");

    // More than two windows without a 429: the escalation starts over.
    advance(2 * W + Duration::from_secs(1)).await;
    let c = too_many(&limiter).await;
    assert!(c.began_episode);
    assert_eq!(
        c.pause, BASE,
        "a long clean stretch forgets earlier episodes"
    );
}

#[tokio::test(start_paused = true)]
async fn a_huge_retry_after_is_clamped_to_max_cooldown() {
    let h = harness();
    let limiter = h.limiter("w1");
    let other = h.limiter("w2");
    // A proxy's hour, a hostile 10^8 s, the largest Duration: one per window, each an episode.
    for huge in [3_600, 100_000_000, u64::MAX] {
        let c = limiter
            .cool_down(Some(Duration::from_secs(huge)), BASE)
            .await
            .unwrap();
        assert!(c.began_episode, "{huge} s: {c:?}");
        assert_eq!(c.pause, MAX_COOLDOWN, "{huge} s");
        let left = h.pause_left_ms().await;
        assert!(
            left > 0 && left <= MAX_COOLDOWN.as_millis() as i64,
            "{huge} s: {left} ms"
        );
        let (granted, wait_us) = other.try_acquire(Lane::Otp, 1).await.unwrap();
        let granted = granted.count();
        assert_eq!(granted, 0, "{huge} s: every replica pauses");
        assert!(
            wait_us <= MAX_COOLDOWN.as_micros() as u64,
            "{huge} s: for at most --max-cooldown, not {wait_us} us"
        );
        advance(W).await;
        h.pause_over().await;
    }
}

/// During a pause longer than `--probe-interval` (2 s), one replica at a time sends one
/// request every interval, an OTP's first; a 429 keeps the pause and begins no episode, a
/// 2xx ends it for every replica, and sending resumes at the halved budget, growing back a
/// window later. Observed before: nothing was granted until the pause ran out (`--max-
/// cooldown`, 8 s here, 30 s by default), whatever the key said meanwhile.
#[tokio::test(start_paused = true)]
async fn a_probe_every_interval_ends_the_pause_on_a_2xx_and_a_429_keeps_it() {
    let h = harness();
    let (one, two) = (h.limiter("w1"), h.limiter("w2"));
    let probe_interval = one.budget().probe_interval;
    assert_eq!(probe_interval, Duration::from_secs(2));
    let huge = Some(Duration::from_secs(100_000_000));
    let c = one.cool_down(huge, BASE).await.unwrap();
    assert_eq!((c.pause, c.effective), (MAX_COOLDOWN, 50));

    // No probe before the interval: asked to come back then, not when the pause is over.
    let (tokens, wait_us) = two.try_acquire(Lane::Booking, 4).await.unwrap();
    assert_eq!(tokens.count(), 0);
    assert_eq!(
        wait_us,
        probe_interval.as_micros() as u64,
        "until the probe"
    );

    // Then one probe, one token, for one replica at a time.
    advance(probe_interval).await;
    let (tokens, _) = two.try_acquire(Lane::Booking, 4).await.unwrap();
    assert_eq!(tokens.count(), 1, "one request probes");
    let probe = tokens.iter().next().unwrap();
    assert!(probe.is_probe());
    let (tokens, wait_us) = one.try_acquire(Lane::Booking, 4).await.unwrap();
    assert_eq!(tokens.count(), 0, "one probe at a time");
    assert!(wait_us <= 100_000, "looks again soon: {wait_us} us");

    // Its 429 keeps the pause (extended to the cap again), without a second halving.
    let c = two.rate_limited(Some(&probe), huge, BASE).await.unwrap();
    assert!(!c.began_episode, "{c:?}");
    assert_eq!((c.pause, c.effective), (MAX_COOLDOWN, 50));
    let (tokens, wait_us) = one.try_acquire(Lane::Booking, 4).await.unwrap();
    assert_eq!(tokens.count(), 0);
    assert_eq!(
        wait_us,
        probe_interval.as_micros() as u64,
        "the next an interval later"
    );

    // An OTP waiting then takes the next probe, before any booking.
    let (tokens, _) = one.try_acquire(Lane::Otp, 1).await.unwrap();
    assert_eq!(tokens.count(), 0);
    advance(probe_interval).await;
    let (tokens, _) = two.try_acquire(Lane::Booking, 4).await.unwrap();
    assert_eq!(tokens.count(), 0, "a booking leaves the probe to the OTP");
    let (tokens, _) = one.try_acquire(Lane::Otp, 1).await.unwrap();
    let probe = tokens.iter().next().expect("the OTP probes");
    assert!(probe.is_probe());

    // Its 2xx ends the pause for every replica, at the halved budget.
    assert!(one.probe_answered(&probe, ProbeAnswer::Room).await.unwrap());
    assert!(h.pause_left_ms().await < 0, "the pause is over");
    let (tokens, _) = two.try_acquire(Lane::Otp, 1).await.unwrap();
    assert_eq!(tokens.count(), 1, "every replica sends again");
    assert!(!tokens.iter().next().unwrap().is_probe());
    assert_eq!(
        h.effective().await,
        Some(50),
        "the pause gave nothing back: sending resumes at the halved budget"
    );
    advance(W).await;
    two.try_acquire(Lane::Booking, 1).await.unwrap();
    assert_eq!(
        h.effective().await,
        Some(60),
        "a clean window after the 2xx"
    );
    assert_eq!(h.state_field("probe_at").await, None);
}

/// A probe that ends without telling anything (a 503, a timeout) lets the next go an
/// interval later; one under which no request went out (its job was stopped, its grant went
/// stale) lets the next go at once; a pause no longer than the interval has no probe.
#[tokio::test(start_paused = true)]
async fn a_probe_without_an_answer_passes_the_turn_and_a_short_pause_has_none() {
    let h = harness();
    let limiter = h.limiter("w1");
    let interval = limiter.budget().probe_interval;
    limiter
        .cool_down(Some(Duration::from_secs(60)), BASE)
        .await
        .unwrap();
    advance(interval).await;
    let probe = limiter.try_acquire(Lane::Booking, 1).await.unwrap().0;
    let probe = probe.iter().next().unwrap();
    assert!(
        !limiter
            .probe_answered(&probe, ProbeAnswer::Unknown)
            .await
            .unwrap()
    );
    let (tokens, wait_us) = limiter.try_acquire(Lane::Booking, 1).await.unwrap();
    assert_eq!((tokens.count(), wait_us), (0, interval.as_micros() as u64));

    advance(interval).await;
    let probe = limiter.try_acquire(Lane::Booking, 1).await.unwrap().0;
    let probe = probe.iter().next().unwrap();
    assert!(probe.is_probe());
    limiter.refund(&probe).await;
    // (An OTP: a booking would wait for the pacing's next token.)
    let (tokens, _) = limiter.try_acquire(Lane::Otp, 1).await.unwrap();
    assert!(
        tokens.iter().next().is_some_and(|t| t.is_probe()),
        "the next probe goes at once"
    );

    // A pause shorter than the interval: nothing goes until it is over (asked to come back
    // when it ends, on Redis's clock, not when a probe would be due).
    h.pause_over().await;
    advance(W).await;
    let c = limiter.cool_down(Some(BASE), BASE).await.unwrap();
    assert_eq!(c.pause, BASE);
    let (tokens, wait_us) = limiter.try_acquire(Lane::Otp, 1).await.unwrap();
    assert_eq!(tokens.count(), 0);
    assert!(
        wait_us <= BASE.as_micros() as u64 && wait_us > 900_000,
        "until the pause is over: {wait_us} us"
    );
}
