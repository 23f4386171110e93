//! The values each duration and count flag of `herald-worker run` may take, and the check
//! that refuses any other at start-up, naming the variable and the flag and saying the
//! range (exit 2).
//!
//! Each range ends where a value stops being unusual and starts to hurt: a worker that
//! spins, panics on arithmetic, spends shared tokens without sending, or holds jobs or a
//! shutdown longer than any orchestrator waits. It never parses (clap does) and never
//! relates two flags (`--claim-idle` and `--request-timeout`, the margin and the window:
//! [`super`] does, with these ranges).

use std::time::Duration;

use herald_shared::config::ConfigError;

/// The values one flag may take: `min` to `max`, both included.
#[derive(Clone, Copy, Debug)]
pub struct Range<T> {
    /// The variable and the flag, as errors name them: `HERALD_CONCURRENCY (--concurrency)`.
    pub name: &'static str,
    pub min: T,
    pub max: T,
    /// What the flag does, and what a value outside the range would do: the error's end.
    pub why: &'static str,
}

/// A value as an error quotes it: a duration as `1m 30s`, a count as digits.
pub trait Quoted: Copy + PartialOrd {
    fn quoted(self) -> String;
}

impl Quoted for Duration {
    fn quoted(self) -> String {
        humantime::format_duration(self).to_string()
    }
}

impl Quoted for u64 {
    fn quoted(self) -> String {
        self.to_string()
    }
}

impl<T: Quoted> Range<T> {
    /// `value` if it is in the range; else an error naming the flag, the value, the range
    /// and why.
    pub fn check(&self, value: T) -> Result<T, ConfigError> {
        if self.min <= value && value <= self.max {
            return Ok(value);
        }
        Err(ConfigError::new(
            self.name,
            format!(
                "is {}; it must be from {} to {}: {}",
                value.quoted(),
                self.min.quoted(),
                self.max.quoted(),
                self.why
            ),
        ))
    }
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

pub const CONCURRENCY: Range<u64> = Range {
    name: "HERALD_CONCURRENCY (--concurrency)",
    min: 1,
    max: 1024,
    why: "requests in flight at once in this replica, each holding a Redis connection",
};

pub const MAX_ATTEMPTS: Range<u64> = Range {
    name: "HERALD_MAX_ATTEMPTS (--max-attempts)",
    min: 1,
    max: 100,
    why: "failed attempts before a job is dead-lettered; each one spends a token",
};

pub const MAX_DELIVERIES: Range<u64> = Range {
    name: "HERALD_MAX_DELIVERIES (--max-deliveries)",
    min: 1,
    max: 100,
    why: "deliveries before a job is dead-lettered as poison; with more, a job that crashes its consumer keeps crashing replicas",
};

pub const MIN_REPLICAS: Range<u64> = Range {
    name: "HERALD_MIN_REPLICAS (--min-replicas)",
    min: 0,
    max: 100,
    why: "Redis replicas that must have each sending mark before its send goes on; more than the master has makes every send wait and fail",
};

pub const BACKOFF_BASE: Range<Duration> = Range {
    name: "HERALD_BACKOFF_BASE (--backoff-base)",
    min: ms(10),
    max: secs(HOUR),
    why: "the first retry's delay ceiling, doubled per attempt",
};

pub const BACKOFF_MAX: Range<Duration> = Range {
    name: "HERALD_BACKOFF_MAX (--backoff-max)",
    min: ms(10),
    max: secs(DAY),
    why: "the longest retry delay",
};

pub const CLAIM_IDLE: Range<Duration> = Range {
    name: "HERALD_CLAIM_IDLE (--claim-idle)",
    min: secs(2),
    max: secs(DAY),
    why: "how long a silent replica's job waits before another takes it over",
};

pub const SHUTDOWN_GRACE: Range<Duration> = Range {
    name: "HERALD_SHUTDOWN_GRACE (--shutdown-grace)",
    min: secs(1),
    max: secs(HOUR),
    why: "how long in-flight sends may finish on SIGTERM; with less, requests already granted are cut off",
};

pub const REQUEST_TIMEOUT: Range<Duration> = Range {
    name: "HERALD_REQUEST_TIMEOUT (--request-timeout)",
    min: secs(1),
    max: secs(5 * MINUTE),
    why: "one request to Interakt; with less, answers on their way are given up and their tokens spent for nothing",
};

pub const MAX_COOLDOWN: Range<Duration> = Range {
    name: "HERALD_MAX_COOLDOWN (--max-cooldown)",
    min: secs(1),
    max: secs(HOUR),
    why: "the longest every replica pauses after a 429; with less, replicas keep spending tokens on 429s",
};

/// A probe every second at most: with less, a long cool-down turns into a stream of
/// requests Interakt refuses.
pub const PROBE_INTERVAL: Range<Duration> = Range {
    name: "HERALD_PROBE_INTERVAL (--probe-interval)",
    min: secs(1),
    max: secs(HOUR),
    why: "how often one request probes the key during a cool-down; with less, a long cool-down becomes a stream of 429s",
};

/// The window of `--rate` (`N/PERIOD`): Interakt counts per minute; a window of a second
/// is the finest the shared log and its margin can keep, a day the longest its keys live.
pub const RATE_WINDOW: Range<Duration> = Range {
    name: "INTERAKT_RATE_LIMIT (--rate)",
    min: secs(1),
    max: secs(DAY),
    why: "the window N requests are counted in, e.g. 300/1m",
};

/// The least `--rate-margin`: a grant is used only within half the margin, which must
/// cover the round trip to Redis of the check before the send (see
/// [`crate::limiter::default_margin`]). Below it every grant goes stale before its request
/// can start, and sends ask for fresh ones that are stale too, spending shared tokens.
pub const MIN_RATE_MARGIN: Duration = ms(50);

/// The name `--rate-margin` is refused under.
pub const RATE_MARGIN: &str = "HERALD_RATE_MARGIN (--rate-margin)";

/// `margin` if it is at least [`MIN_RATE_MARGIN`] and below `window`.
pub fn check_margin(margin: Duration, window: Duration) -> Result<Duration, ConfigError> {
    if margin >= MIN_RATE_MARGIN && margin < window {
        return Ok(margin);
    }
    Err(ConfigError::new(
        RATE_MARGIN,
        format!(
            "is {}; it must be at least {} and below the window of --rate ({}): a grant is usable for half the margin, which must cover a round trip to Redis, and a request counts from its grant plus the margin within its window",
            margin.quoted(),
            MIN_RATE_MARGIN.quoted(),
            window.quoted()
        ),
    ))
}

/// The request timeout to use: `asked`, or the window less the margin when the window is
/// shorter than `asked` plus the margin, and then `Some(asked)` beside it (the worker warns).
///
/// A request in flight holds its place in the shared log until its grant plus the timeout
/// plus the margin; in a window shorter than that, one slow request would hold a token for
/// windows after its own, and the window's N could never be spent as configured. Lowered,
/// every request is answered or given up within the window it was granted in. The lowered
/// value may be below [`REQUEST_TIMEOUT`]'s least (a `10/1s` window with its default margin
/// of 250 ms gets 750 ms): a short window is a test's or a stand-in's, whose answers are fast.
pub fn fit_timeout(
    asked: Duration,
    margin: Duration,
    window: Duration,
) -> (Duration, Option<Duration>) {
    // The margin is below the window (check_margin, default_margin's clamp for windows of
    // at least 1 s): what is left is positive.
    let room = window.saturating_sub(margin);
    if asked.saturating_add(margin) <= window || room.is_zero() {
        return (asked, None);
    }
    (room, Some(asked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_in_range_passes_and_one_outside_is_refused_naming_the_flag_and_the_range() {
        assert_eq!(CONCURRENCY.check(1), Ok(1));
        assert_eq!(CONCURRENCY.check(1024), Ok(1024));
        for bad in [0, 1025, 10_000_000_000_000_000_000] {
            let err = CONCURRENCY.check(bad).unwrap_err();
            assert_eq!(err.name, "HERALD_CONCURRENCY (--concurrency)");
            assert!(
                err.reason
                    .starts_with(&format!("is {bad}; it must be from 1 to 1024: ")),
                "{err}"
            );
        }
        assert_eq!(REQUEST_TIMEOUT.check(secs(1)), Ok(secs(1)));
        assert_eq!(REQUEST_TIMEOUT.check(secs(300)), Ok(secs(300)));
        let err = REQUEST_TIMEOUT.check(ms(999)).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "HERALD_REQUEST_TIMEOUT (--request-timeout): is 999ms; it must be from 1s to 5m: "
            ),
            "{err}"
        );
        // The largest durations print, and are refused like any other.
        let err = REQUEST_TIMEOUT.check(Duration::MAX).unwrap_err();
        assert!(err.reason.contains("years"), "{err}");
    }

    #[test]
    fn the_margin_is_at_least_50_ms_and_below_the_window() {
        let minute = secs(60);
        assert_eq!(check_margin(ms(50), minute), Ok(ms(50)));
        assert_eq!(check_margin(ms(59_999), minute), Ok(ms(59_999)));
        for bad in [Duration::ZERO, ms(49), minute, secs(3_600), Duration::MAX] {
            let err = check_margin(bad, minute).unwrap_err().to_string();
            assert!(
                err.starts_with("HERALD_RATE_MARGIN (--rate-margin): is "),
                "{err}"
            );
            assert!(
                err.contains("at least 50ms and below the window of --rate (1m)"),
                "{err}"
            );
        }
    }

    /// Every range can be met: its ends are in order, and the defaults are inside.
    #[test]
    fn every_range_holds_its_default() {
        let counts = [
            (CONCURRENCY, 16),
            (MAX_ATTEMPTS, 8),
            (MAX_DELIVERIES, 5),
            (MIN_REPLICAS, 0),
        ];
        for (range, default) in counts {
            assert!(range.min <= range.max, "{}", range.name);
            assert_eq!(range.check(default), Ok(default), "{}", range.name);
        }
        let durations = [
            (BACKOFF_BASE, secs(1)),
            (BACKOFF_MAX, secs(300)),
            (CLAIM_IDLE, secs(60)),
            (SHUTDOWN_GRACE, secs(30)),
            (REQUEST_TIMEOUT, secs(10)),
            (MAX_COOLDOWN, secs(30)),
            (PROBE_INTERVAL, secs(2)),
            (RATE_WINDOW, secs(60)),
        ];
        for (range, default) in durations {
            assert!(range.min <= range.max, "{}", range.name);
            assert_eq!(range.check(default), Ok(default), "{}", range.name);
        }
    }
}
