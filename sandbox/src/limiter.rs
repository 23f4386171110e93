//! The strict sliding window: a request is admitted only if fewer than N requests were
//! admitted in the preceding window W, i.e. in `(now - W, now]`.
//!
//! It is an exact log of instants (a `VecDeque`), not a token bucket: a bucket with burst B
//! admits up to B + N in some sliding window, and a fixed window up to 2N across a boundary,
//! while this admits N in every window, the strictest reading of "N requests per minute".
//!
//! Pure: callers pass the instant, so tests drive it with explicit instants and no clock.
//! It never sleeps and never formats an answer.

use std::collections::VecDeque;
use std::time::Duration;

use herald_shared::config::RateLimit;
use tokio::time::Instant;

/// Instants inside a sliding window of fixed length, oldest first.
///
/// Used both to limit (instants of admitted requests) and to measure the busiest window
/// (instants of all requests, [`crate::stats`]).
#[derive(Debug)]
pub(crate) struct SlidingLog {
    window: Duration,
    entries: VecDeque<Instant>,
}

impl SlidingLog {
    pub(crate) fn new(window: Duration) -> Self {
        SlidingLog {
            window,
            entries: VecDeque::new(),
        }
    }

    /// Forgets entries that are no longer in the window ending at `now`: an entry made at
    /// `t` leaves it at `t + W` exactly.
    fn expire(&mut self, now: Instant) {
        while let Some(&oldest) = self.entries.front() {
            if now.saturating_duration_since(oldest) >= self.window {
                self.entries.pop_front();
            } else {
                break;
            }
        }
    }

    /// How many entries lie in the window ending at `now`.
    pub(crate) fn count_at(&mut self, now: Instant) -> usize {
        self.expire(now);
        self.entries.len()
    }

    /// Records an entry at `now` and returns how many the window ending at `now` holds.
    ///
    /// Instants must not go backwards; one that does is recorded as the latest so far, which
    /// keeps the log ordered (callers read the clock under the same lock, so it does not).
    pub(crate) fn record(&mut self, now: Instant) -> usize {
        let now = self.entries.back().map_or(now, |&last| last.max(now));
        self.expire(now);
        self.entries.push_back(now);
        self.entries.len()
    }

    /// How long after `now` the oldest entry leaves the window.
    fn until_oldest_expires(&self, now: Instant) -> Duration {
        self.entries.front().map_or(Duration::ZERO, |&oldest| {
            (oldest + self.window).saturating_duration_since(now)
        })
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

/// A refusal, with how long until the window has room again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) retry_after: Duration,
}

/// At most N admitted requests in any window of length W.
#[derive(Debug)]
pub(crate) struct Limiter {
    limit: usize,
    admitted: SlidingLog,
}

impl Limiter {
    pub(crate) fn new(rate: RateLimit) -> Self {
        Limiter {
            limit: rate.requests.get() as usize,
            admitted: SlidingLog::new(rate.period),
        }
    }

    /// Admits a request arriving at `now`, or refuses it. A refused request is not recorded:
    /// only admitted requests use up the window.
    pub(crate) fn try_admit(&mut self, now: Instant) -> Result<(), Refused> {
        if self.admitted.count_at(now) < self.limit {
            self.admitted.record(now);
            Ok(())
        } else {
            Err(Refused {
                retry_after: self.admitted.until_oldest_expires(now),
            })
        }
    }

    pub(crate) fn clear(&mut self) {
        self.admitted.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn limiter(rate: &str) -> Limiter {
        Limiter::new(rate.parse().unwrap())
    }

    #[test]
    fn admits_n_then_refuses_within_the_window() {
        let t0 = Instant::now();
        let mut limiter = limiter("5/1s");
        for i in 0..5 {
            assert_eq!(limiter.try_admit(t0 + ms(i)), Ok(()), "request {i}");
        }
        assert_eq!(
            limiter.try_admit(t0 + ms(10)),
            Err(Refused {
                retry_after: ms(990)
            })
        );
        assert!(limiter.try_admit(t0 + ms(999)).is_err());
    }

    #[test]
    fn an_admission_leaves_the_window_exactly_w_later() {
        let t0 = Instant::now();
        let mut limiter = limiter("1/1s");
        assert!(limiter.try_admit(t0).is_ok());
        assert_eq!(
            limiter.try_admit(t0 + ms(999)),
            Err(Refused { retry_after: ms(1) })
        );
        assert!(limiter.try_admit(t0 + ms(1000)).is_ok());
        assert!(limiter.try_admit(t0 + ms(1000)).is_err());
    }

    #[test]
    fn the_window_slides_rather_than_resetting() {
        // 3 at 0 ms, 2 at 300 ms. A fixed window restarting at 500 ms would admit 5 more at
        // 550 ms; a sliding one only has the 3 slots the first burst freed.
        let t0 = Instant::now();
        let mut limiter = limiter("5/500ms");
        for _ in 0..3 {
            assert!(limiter.try_admit(t0).is_ok());
        }
        for _ in 0..2 {
            assert!(limiter.try_admit(t0 + ms(300)).is_ok());
        }
        let admitted = (0..5)
            .filter(|_| limiter.try_admit(t0 + ms(550)).is_ok())
            .count();
        assert_eq!(admitted, 3);
        assert_eq!(
            limiter.try_admit(t0 + ms(550)),
            Err(Refused {
                retry_after: ms(250)
            })
        );
        assert!(limiter.try_admit(t0 + ms(800)).is_ok());
    }

    #[test]
    fn refusals_do_not_use_up_the_window() {
        let t0 = Instant::now();
        let mut limiter = limiter("2/1s");
        assert!(limiter.try_admit(t0).is_ok());
        assert!(limiter.try_admit(t0).is_ok());
        for i in 1..100 {
            assert!(limiter.try_admit(t0 + ms(i)).is_err());
        }
        assert!(limiter.try_admit(t0 + ms(1000)).is_ok());
        assert!(limiter.try_admit(t0 + ms(1000)).is_ok());
        assert!(limiter.try_admit(t0 + ms(1000)).is_err());
    }

    #[test]
    fn no_window_ever_holds_more_than_n() {
        // A request every 7 ms against 10/250ms: check every admitted instant's window.
        let t0 = Instant::now();
        let mut limiter = limiter("10/250ms");
        let admitted: Vec<Instant> = (0..200)
            .map(|i| t0 + ms(i * 7))
            .filter(|&t| limiter.try_admit(t).is_ok())
            .collect();
        for &end in &admitted {
            let in_window = admitted
                .iter()
                .filter(|&&t| t <= end && end.duration_since(t) < ms(250))
                .count();
            assert!(
                in_window <= 10,
                "{in_window} in the window ending at {end:?}"
            );
        }
        // And it is not merely starving: 1400 ms at 10 per 250 ms admits 56 or so.
        assert!(admitted.len() >= 50, "{}", admitted.len());
    }

    #[test]
    fn log_records_and_counts_the_window() {
        let t0 = Instant::now();
        let mut log = SlidingLog::new(ms(100));
        assert_eq!(log.record(t0), 1);
        assert_eq!(log.record(t0 + ms(50)), 2);
        assert_eq!(log.record(t0 + ms(99)), 3);
        assert_eq!(log.record(t0 + ms(100)), 3);
        assert_eq!(log.count_at(t0 + ms(200)), 0);
        // An instant out of order is kept as the latest, so the log stays sorted.
        log.record(t0 + ms(300));
        assert_eq!(log.record(t0 + ms(250)), 2);
        assert_eq!(log.count_at(t0 + ms(399)), 2);
        assert_eq!(log.count_at(t0 + ms(400)), 0);
    }
}
