//! Counts of what the send endpoint answered, and the busiest sliding window it saw: the
//! numbers a test asserts a client's behaviour on ("never more than 300 in any minute").
//!
//! The peak is computed incrementally: each arrival is pushed into a sliding log
//! (`limiter::SlidingLog`) of the window's length, and the peak is the largest length the
//! log ever reached. Every authenticated request counts, whatever it was answered, because
//! Interakt counts every request against the limit, retries and refusals included.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::limiter::SlidingLog;

/// A snapshot of the counters, as `GET /_sandbox/stats` returns it:
///
/// ```json
/// {"requests": 8, "unauthorized": 0, "by_status": {"200": 5, "429": 3}, "accepted": 5,
///  "max_in_window": 8, "window_ms": 1000, "rate": "5/1s"}
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Authenticated requests to the send endpoint, whatever their answer.
    pub requests: u64,
    /// Requests refused with 401 (missing or wrong key); counted nowhere else.
    pub unauthorized: u64,
    /// Authenticated requests by the HTTP status they were answered with.
    pub by_status: BTreeMap<u16, u64>,
    /// Messages accepted (200 with `result: true`), as listed by `GET /_sandbox/messages`.
    pub accepted: u64,
    /// The most authenticated requests that arrived within any one window of `window_ms`.
    pub max_in_window: u64,
    /// The window `max_in_window` is measured over: the rate limit's period, else 60 s.
    pub window_ms: u64,
    /// The rate limit in force (`"300/1m"`), `null` when there is none.
    pub rate: Option<String>,
}

impl Stats {
    /// How many requests were answered with `status`.
    pub fn count(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

/// What the poster did, as `GET /_sandbox/webhooks` returns it:
/// `{"posted": {"delivered": 5, "read": 5}, "failed": 0}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookStats {
    /// Events the receiver answered 2xx, by kind: `delivered`, `read`, `revoked`, `tap`.
    pub posted: BTreeMap<String, u64>,
    /// Events given up on after every try.
    pub failed: u64,
}

impl WebhookStats {
    /// How many events of `kind` were posted.
    pub fn posted(&self, kind: &str) -> u64 {
        self.posted.get(kind).copied().unwrap_or(0)
    }
}

/// Keeps [`Stats`] up to date as requests arrive and are answered.
#[derive(Debug)]
pub(crate) struct Recorder {
    stats: Stats,
    arrivals: SlidingLog,
}

impl Recorder {
    pub(crate) fn new(window: Duration, rate: Option<String>) -> Self {
        Recorder {
            stats: Stats {
                window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
                rate,
                ..Stats::default()
            },
            arrivals: SlidingLog::new(window),
        }
    }

    /// An authenticated request arrived at `now`.
    pub(crate) fn arrived(&mut self, now: Instant) {
        self.stats.requests += 1;
        let in_window = self.arrivals.record(now) as u64;
        self.stats.max_in_window = self.stats.max_in_window.max(in_window);
    }

    /// An authenticated request was answered with `status`; `accepted` when its message was.
    pub(crate) fn answered(&mut self, status: u16, accepted: bool) {
        *self.stats.by_status.entry(status).or_default() += 1;
        if accepted {
            self.stats.accepted += 1;
        }
    }

    /// A request without the right key was refused.
    pub(crate) fn unauthorized(&mut self) {
        self.stats.unauthorized += 1;
    }

    pub(crate) fn snapshot(&self) -> Stats {
        self.stats.clone()
    }

    /// Back to zero, keeping the window and rate it reports.
    pub(crate) fn reset(&mut self) {
        self.stats = Stats {
            window_ms: self.stats.window_ms,
            rate: self.stats.rate.take(),
            ..Stats::default()
        };
        self.arrivals.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn peak_is_the_busiest_window_not_the_total() {
        let t0 = Instant::now();
        let mut r = Recorder::new(ms(1000), Some("5/1s".into()));
        // 3 early, then 4 in a cluster 1.5 s later, then 2 stragglers.
        for at in [0, 10, 20, 1500, 1600, 1700, 1800, 2700, 3900] {
            r.arrived(t0 + ms(at));
            r.answered(200, true);
        }
        let stats = r.snapshot();
        assert_eq!(stats.requests, 9);
        assert_eq!(stats.max_in_window, 4);
        assert_eq!(stats.window_ms, 1000);
        assert_eq!(stats.count(200), 9);
        assert_eq!(stats.count(429), 0);
    }

    #[test]
    fn status_keys_serialize_as_strings_and_reset_keeps_the_window() {
        let t0 = Instant::now();
        let mut r = Recorder::new(ms(60_000), None);
        r.arrived(t0);
        r.answered(200, true);
        r.arrived(t0);
        r.answered(429, false);
        r.unauthorized();
        let json = serde_json::to_value(r.snapshot()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "requests": 2, "unauthorized": 1, "by_status": {"200": 1, "429": 1},
                "accepted": 1, "max_in_window": 2, "window_ms": 60000, "rate": null
            })
        );
        let back: Stats = serde_json::from_value(json).unwrap();
        assert_eq!(back, r.snapshot());
        r.reset();
        assert_eq!(
            r.snapshot(),
            Stats {
                window_ms: 60_000,
                ..Stats::default()
            }
        );
        r.arrived(t0 + ms(1));
        assert_eq!(r.snapshot().max_in_window, 1, "reset forgets the arrivals");
    }
}
