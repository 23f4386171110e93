//! Chart history: what the workers did, counted in small time buckets in Redis, so every
//! dashboard replica draws the same picture and a restart (of a worker or a dashboard) loses
//! nothing. This module owns the layout on both sides, as [`crate::timeline`] does:
//!
//! - **write**: a [`Recorder`] per worker replica counts in memory on the hot path (a mutex
//!   and a map insert, no Redis), and its flusher sends what accumulated once a second as one
//!   pipeline ([`Recorder::flush`]);
//! - **read**: [`read`] fetches the last hour and the last 24 hours in one pipeline of six
//!   `HGETALL`s, and [`assemble`] turns them into [`Charts`] (pure).
//!
//! The layout, every key under the namespace's hash tag (so it works on Cluster):
//!
//! | key | fields | buckets | kept |
//! |---|---|---|---|
//! | `history:10s:<hour>` ([`Keys::history_fine`]) | `<slot>:<series>` | 10 s, 360 per hour | 2 h after its last write |
//! | `history:5m:<day>` ([`Keys::history_coarse`]) | `<slot>:<series>` | 5 min, 288 per day | 2 days after its last write |
//! | `history:otp:<hour>` ([`Keys::history_latency`]) | `<minute>:<bin>` | 1 min × latency bins | 2 h after its last write |
//!
//! `<hour>` and `<day>` are Unix hours and days; buckets are stamped with the replica's clock
//! when the event happened. At most three keys of each kind are alive at once, each with a
//! fixed number of fields (1,800, 1,440, and 60 minutes × at most [`MAX_BIN`] + 1 bins), so
//! the memory is bounded whatever the traffic (the README states the measured figure).
//!
//! OTP latency (the job's creation to Interakt's 200) is a histogram with four bins per
//! doubling ([`bin_of`]), so a quantile read from it is within 19% of the exact one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_redis::redis;

use crate::Keys;
use herald_shared::redis_pool::{Connection, RedisFailure};

/// The fine buckets: 10 s, one hash per hour.
pub const FINE_SECS: u64 = 10;
const FINE_SPAN: u64 = 3600;
const FINE_TTL_SECS: u64 = 2 * 3600;
/// The coarse buckets: 5 minutes, one hash per day.
pub const COARSE_SECS: u64 = 300;
const COARSE_SPAN: u64 = 86_400;
const COARSE_TTL_SECS: u64 = 2 * 86_400;
/// Latency minutes, one hash per hour.
const LATENCY_SECS: u64 = 60;
const LATENCY_TTL_SECS: u64 = 2 * 3600;
/// Latency bins per doubling.
const BINS_PER_DOUBLING: f64 = 4.0;
/// The last latency bin: about 24 hours (2^(107/4) ms), the longest an OTP may wait.
pub const MAX_BIN: u32 = 106;

/// What a chart counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Series {
    /// Requests sent to Interakt (every attempt, retries included).
    Requests,
    /// Requests Interakt answered 429.
    RateLimited,
    /// Retries scheduled after a transient failure.
    Retried,
    /// Jobs dead-lettered.
    Dead,
    /// Jobs Interakt accepted.
    Sent,
}

impl Series {
    pub const ALL: [Series; 5] = [
        Series::Requests,
        Series::RateLimited,
        Series::Retried,
        Series::Dead,
        Series::Sent,
    ];

    /// The field suffix in Redis: a storage format, never renamed.
    pub const fn as_str(self) -> &'static str {
        match self {
            Series::Requests => "req",
            Series::RateLimited => "429",
            Series::Retried => "retry",
            Series::Dead => "dead",
            Series::Sent => "sent",
        }
    }

    fn from_str(s: &str) -> Option<Series> {
        Series::ALL.into_iter().find(|series| series.as_str() == s)
    }
}

/// The latency bin of `latency`: `floor(4 × log2(ms))`, 0 below 2 ms, at most [`MAX_BIN`].
pub fn bin_of(latency: Duration) -> u32 {
    let ms = latency.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        return 0;
    }
    ((ms.log2() * BINS_PER_DOUBLING).floor() as u32).min(MAX_BIN)
}

/// The upper edge of a latency bin, in ms.
pub fn bin_upper_ms(bin: u32) -> f64 {
    2f64.powf(f64::from(bin + 1) / BINS_PER_DOUBLING)
}

fn unix_secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Counts accumulated since the last flush.
#[derive(Debug, Default, PartialEq, Eq)]
struct Pending {
    /// (10 s bucket start, series) -> count.
    counts: HashMap<(u64, Series), u64>,
    /// (minute start, bin) -> OTPs.
    latency: HashMap<(u64, u32), u64>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.latency.is_empty()
    }

    fn merge(&mut self, other: Pending) {
        for (k, n) in other.counts {
            *self.counts.entry(k).or_default() += n;
        }
        for (k, n) in other.latency {
            *self.latency.entry(k).or_default() += n;
        }
    }
}

/// One worker replica's counts on their way to Redis. Created by the replica's start-up
/// and shared (an `Arc`) by its send tasks, which count, and its flusher, which empties it
/// once a second; dropping it loses at most the last second's counts.
#[derive(Debug, Default)]
pub struct Recorder {
    pending: Mutex<Pending>,
    /// Jobs sent since the replica started (its heartbeat publishes it).
    sent: AtomicU64,
}

impl Recorder {
    /// Counts one event of `series` that happened `at`.
    pub fn count(&self, series: Series, at: SystemTime) {
        if series == Series::Sent {
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
        let bucket = unix_secs(at) / FINE_SECS * FINE_SECS;
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        *pending.counts.entry((bucket, series)).or_default() += 1;
    }

    /// Records one OTP's wait from its creation to Interakt's 200, accepted `at`.
    pub fn otp_latency(&self, latency: Duration, at: SystemTime) {
        let minute = unix_secs(at) / LATENCY_SECS * LATENCY_SECS;
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        *pending
            .latency
            .entry((minute, bin_of(latency)))
            .or_default() += 1;
    }

    /// Jobs this replica sent since it started.
    pub fn sent_total(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn take(&self) -> Pending {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn put_back(&self, pending: Pending) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .merge(pending);
    }

    /// Sends what accumulated as one pipeline (nothing when nothing happened). On failure
    /// the counts are kept for the next flush, so an outage delays them and loses none.
    pub async fn flush(&self, conn: &mut Connection, keys: &Keys) -> Result<(), RedisFailure> {
        let pending = self.take();
        if pending.is_empty() {
            return Ok(());
        }
        let pipe = pipeline(keys, &pending);
        match pipe.query_async::<()>(conn).await {
            Ok(()) => Ok(()),
            Err(err) => {
                self.put_back(pending);
                Err(err.into())
            }
        }
    }
}

/// The writes for `pending`: `HINCRBY` per bucket and series (fine and coarse), per latency
/// minute and bin, and one `EXPIRE` per key touched.
fn pipeline(keys: &Keys, pending: &Pending) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    let mut touched: HashMap<String, u64> = HashMap::new();
    for (&(bucket, series), &n) in &pending.counts {
        let fine = keys.history_fine(bucket / FINE_SPAN);
        let slot = bucket % FINE_SPAN / FINE_SECS;
        pipe.hincr(&fine, format!("{slot}:{}", series.as_str()), n)
            .ignore();
        touched.insert(fine, FINE_TTL_SECS);
        let coarse = keys.history_coarse(bucket / COARSE_SPAN);
        let slot = bucket % COARSE_SPAN / COARSE_SECS;
        pipe.hincr(&coarse, format!("{slot}:{}", series.as_str()), n)
            .ignore();
        touched.insert(coarse, COARSE_TTL_SECS);
    }
    for (&(minute, bin), &n) in &pending.latency {
        let key = keys.history_latency(minute / FINE_SPAN);
        let slot = minute % FINE_SPAN / LATENCY_SECS;
        pipe.hincr(&key, format!("{slot}:{bin}"), n).ignore();
        touched.insert(key, LATENCY_TTL_SECS);
    }
    for (key, ttl) in touched {
        pipe.expire(key, ttl as i64).ignore();
    }
    pipe
}

// ---------------------------------------------------------------------------------------
// Read side.

/// One bucket of a chart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Point {
    pub requests: u64,
    pub rate_limited: u64,
    pub retried: u64,
    pub dead: u64,
    pub sent: u64,
}

impl Point {
    fn add(&mut self, series: Series, n: u64) {
        let slot = match series {
            Series::Requests => &mut self.requests,
            Series::RateLimited => &mut self.rate_limited,
            Series::Retried => &mut self.retried,
            Series::Dead => &mut self.dead,
            Series::Sent => &mut self.sent,
        };
        *slot += n;
    }

    pub fn get(&self, series: Series) -> u64 {
        match series {
            Series::Requests => self.requests,
            Series::RateLimited => self.rate_limited,
            Series::Retried => self.retried,
            Series::Dead => self.dead,
            Series::Sent => self.sent,
        }
    }
}

/// Consecutive buckets, oldest first; the last one holds `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chart {
    pub bucket_secs: u64,
    /// Unix seconds of the first bucket's start.
    pub start: u64,
    pub points: Vec<Point>,
}

impl Chart {
    /// The sum of `series` over the chart.
    pub fn total(&self, series: Series) -> u64 {
        self.points.iter().map(|p| p.get(series)).sum()
    }
}

/// OTP latency quantiles over the last hour (each the upper edge of its bin).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// What the overview draws.
#[derive(Clone, Debug, PartialEq)]
pub struct Charts {
    /// 360 buckets of 10 s.
    pub hour: Chart,
    /// 288 buckets of 5 minutes.
    pub day: Chart,
    /// `None` when no OTP was sent in the last hour.
    pub otp_latency: Option<Latency>,
}

/// The hashes [`assemble`] needs, as `HGETALL` returned them.
#[derive(Clone, Debug, Default)]
pub struct Raw {
    /// The fine hashes of the previous hour and this one.
    pub fine: [HashMap<String, u64>; 2],
    /// The coarse hashes of yesterday and today.
    pub coarse: [HashMap<String, u64>; 2],
    /// The latency hashes of the previous hour and this one.
    pub latency: [HashMap<String, u64>; 2],
}

/// Reads the history for `now` (Unix seconds) in one round trip.
pub async fn read(conn: &mut Connection, keys: &Keys, now: u64) -> Result<Charts, RedisFailure> {
    let hour = now / FINE_SPAN;
    let day = now / COARSE_SPAN;
    let mut pipe = redis::pipe();
    for key in [
        keys.history_fine(hour.saturating_sub(1)),
        keys.history_fine(hour),
        keys.history_coarse(day.saturating_sub(1)),
        keys.history_coarse(day),
        keys.history_latency(hour.saturating_sub(1)),
        keys.history_latency(hour),
    ] {
        pipe.hgetall(key);
    }
    let (f0, f1, c0, c1, l0, l1): Hashes6 = pipe.query_async(conn).await?;
    Ok(assemble(
        &Raw {
            fine: [f0, f1],
            coarse: [c0, c1],
            latency: [l0, l1],
        },
        now,
    ))
}

type Hash = HashMap<String, u64>;
type Hashes6 = (Hash, Hash, Hash, Hash, Hash, Hash);

/// The charts for `now` from the hashes read. Pure; a field that does not parse is skipped.
pub fn assemble(raw: &Raw, now: u64) -> Charts {
    let hour = now / FINE_SPAN;
    let day = now / COARSE_SPAN;
    Charts {
        hour: chart(&raw.fine, hour, FINE_SPAN, FINE_SECS, now),
        day: chart(&raw.coarse, day, COARSE_SPAN, COARSE_SECS, now),
        otp_latency: latency(&raw.latency, hour, now),
    }
}

/// `span / bucket` buckets ending with the one holding `now`, from the hashes of the
/// previous span (`hashes[0]`) and the current one (`hashes[1]`).
fn chart(hashes: &[Hash; 2], current: u64, span: u64, bucket: u64, now: u64) -> Chart {
    let n = span / bucket;
    let last = now / bucket * bucket;
    let start = last + bucket - n * bucket;
    let mut points = vec![Point::default(); n as usize];
    for (which, hash) in hashes.iter().enumerate() {
        let Some(span_index) = (current + which as u64).checked_sub(1) else {
            continue;
        };
        for (field, &count) in hash {
            let Some((slot, series)) = field.split_once(':') else {
                continue;
            };
            let (Ok(slot), Some(series)) = (slot.parse::<u64>(), Series::from_str(series)) else {
                continue;
            };
            let at = span_index * span + slot * bucket;
            if at < start || at > last {
                continue;
            }
            points[((at - start) / bucket) as usize].add(series, count);
        }
    }
    Chart {
        bucket_secs: bucket,
        start,
        points,
    }
}

/// p50 and p99 of the OTPs sent in the 60 minutes up to `now`.
fn latency(hashes: &[Hash; 2], hour: u64, now: u64) -> Option<Latency> {
    let since = (now / LATENCY_SECS * LATENCY_SECS).saturating_sub(FINE_SPAN - LATENCY_SECS);
    let mut bins: Vec<u64> = vec![0; MAX_BIN as usize + 1];
    for (which, hash) in hashes.iter().enumerate() {
        let Some(hour_index) = (hour + which as u64).checked_sub(1) else {
            continue;
        };
        for (field, &count) in hash {
            let Some((minute, bin)) = field.split_once(':') else {
                continue;
            };
            let (Ok(minute), Ok(bin)) = (minute.parse::<u64>(), bin.parse::<u32>()) else {
                continue;
            };
            let at = hour_index * FINE_SPAN + minute * LATENCY_SECS;
            if at < since || at > now || bin > MAX_BIN {
                continue;
            }
            bins[bin as usize] += count;
        }
    }
    let count: u64 = bins.iter().sum();
    if count == 0 {
        return None;
    }
    let quantile = |q: f64| {
        let rank = ((q * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bin, n) in bins.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bin_upper_ms(bin as u32);
            }
        }
        bin_upper_ms(MAX_BIN)
    };
    Some(Latency {
        count,
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// What a flush would write, as the hashes a read returns.
    fn written(keys: &Keys, recorder: &Recorder, now: u64) -> Raw {
        let pending = recorder.take();
        let mut hashes: HashMap<String, Hash> = HashMap::new();
        let mut add = |key: String, field: String, n: u64| {
            *hashes.entry(key).or_default().entry(field).or_default() += n;
        };
        for (&(bucket, series), &n) in &pending.counts {
            let s = series.as_str();
            add(
                keys.history_fine(bucket / FINE_SPAN),
                format!("{}:{s}", bucket % FINE_SPAN / FINE_SECS),
                n,
            );
            add(
                keys.history_coarse(bucket / COARSE_SPAN),
                format!("{}:{s}", bucket % COARSE_SPAN / COARSE_SECS),
                n,
            );
        }
        for (&(minute, bin), &n) in &pending.latency {
            add(
                keys.history_latency(minute / FINE_SPAN),
                format!("{}:{bin}", minute % FINE_SPAN / LATENCY_SECS),
                n,
            );
        }
        let mut get = |key: String| hashes.remove(&key).unwrap_or_default();
        let (hour, day) = (now / FINE_SPAN, now / COARSE_SPAN);
        Raw {
            fine: [
                get(keys.history_fine(hour - 1)),
                get(keys.history_fine(hour)),
            ],
            coarse: [
                get(keys.history_coarse(day - 1)),
                get(keys.history_coarse(day)),
            ],
            latency: [
                get(keys.history_latency(hour - 1)),
                get(keys.history_latency(hour)),
            ],
        }
    }

    #[test]
    fn events_land_in_their_buckets_of_the_last_hour_and_day() {
        let keys = Keys::new("herald").unwrap();
        let now = 1_800_000_000 + 1234; // mid-hour
        let recorder = Recorder::default();
        recorder.count(Series::Requests, at(now));
        recorder.count(Series::Requests, at(now - 5));
        recorder.count(Series::RateLimited, at(now - 3590)); // the previous hour's hash
        recorder.count(Series::Dead, at(now - 3700)); // older than an hour: the day only
        recorder.count(Series::Sent, at(now - 2 * 86_400)); // older than a day: nowhere
        let charts = assemble(&written(&keys, &recorder, now), now);

        assert_eq!(charts.hour.points.len(), 360);
        assert_eq!(charts.day.points.len(), 288);
        assert_eq!(charts.hour.total(Series::Requests), 2);
        assert_eq!(charts.hour.total(Series::RateLimited), 1);
        assert_eq!(charts.hour.total(Series::Dead), 0);
        assert_eq!(charts.day.total(Series::Dead), 1);
        assert_eq!(charts.day.total(Series::Requests), 2);
        assert_eq!(charts.day.total(Series::Sent), 0);
        let last = charts.hour.points.last().unwrap();
        assert_eq!(last.requests, 1, "now - 5 s is the bucket before: {last:?}");
        assert_eq!(charts.hour.start + 359 * 10, now / 10 * 10);
        assert_eq!(charts.day.start + 287 * 300, now / 300 * 300);
    }

    #[test]
    fn otp_latency_quantiles_come_from_the_last_hour_within_a_bin() {
        let keys = Keys::new("herald").unwrap();
        let now = 1_800_000_000 + 600;
        let recorder = Recorder::default();
        for _ in 0..98 {
            recorder.otp_latency(Duration::from_millis(40), at(now - 30));
        }
        recorder.otp_latency(Duration::from_millis(900), at(now));
        recorder.otp_latency(Duration::from_millis(1000), at(now - 1800));
        recorder.otp_latency(Duration::from_secs(60), at(now - 4000)); // too old
        let latency = assemble(&written(&keys, &recorder, now), now)
            .otp_latency
            .unwrap();
        assert_eq!(latency.count, 100);
        assert!(
            (40.0..=40.0 * 1.19).contains(&latency.p50_ms),
            "{latency:?}"
        );
        assert!(
            (900.0..=1000.0 * 1.19).contains(&latency.p99_ms),
            "{latency:?}"
        );
        assert!(
            assemble(&Raw::default(), now).otp_latency.is_none(),
            "no OTPs, no figure"
        );
    }

    #[test]
    fn bins_cover_a_millisecond_to_a_day() {
        assert_eq!(bin_of(Duration::ZERO), 0);
        assert_eq!(bin_of(Duration::from_secs(86_400 * 10)), MAX_BIN);
        for ms in [1u64, 3, 17, 250, 9_999, 86_400_000] {
            let bin = bin_of(Duration::from_millis(ms));
            assert!(bin_upper_ms(bin) >= ms as f64, "{ms} in bin {bin}");
            assert!(
                bin_upper_ms(bin) <= ms as f64 * 1.19 + 1.0,
                "{ms} in bin {bin}"
            );
        }
    }

    #[test]
    fn a_failed_flush_keeps_its_counts() {
        let recorder = Recorder::default();
        recorder.count(Series::Requests, at(100));
        let pending = recorder.take();
        recorder.count(Series::Requests, at(100));
        recorder.put_back(pending);
        assert_eq!(recorder.take().counts[&(100, Series::Requests)], 2);
    }
}
