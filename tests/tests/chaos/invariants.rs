//! The one check every chaos scenario ends with: Herald's promises, read from what the
//! stand-in accepted and what Redis holds once the run is over.
//!
//! - **No job lost; every job ends in exactly one place**: each job was accepted by the
//!   stand-in (its phone is its own, so a message maps to its job) or dead-lettered with a
//!   reason the scenario allows for it; never both, never neither.
//! - **None sent twice**, beyond the one unavoidable window: a 200 from Interakt whose
//!   settlement did not commit because its replica was killed or frozen, or Redis was out of
//!   reach. Every acceptance of a job but its last must fall in such a window (the
//!   scenario's [`Disruption`]s, from [`SETTLE_SLACK`] before to [`ARRIVAL_SLACK`] after).
//! - **Nothing left behind**: no entry on a lane (ready or pending), nothing delayed.
//! - **Never more than N requests in any window** at the stand-in (its busiest window).
//! - **No OTP past its deadline**: no OTP accepted after its `not_after` (beyond
//!   [`IN_FLIGHT_ALLOWANCE`], a request that left before the deadline).
//! - **Every worker exits 0 on SIGTERM** (collected by [`crate::fleet::Fleet`]).
//!
//! A failure lists every broken promise with the job (kind, id, masked phone) and where it
//! ended, and the seed that replays the run.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use herald_shared::config::RateLimit;
use herald_shared::phone::mask;
use herald_shared::{Job, Lane};
use herald_store::dead_letter::DeadLetter;
use herald_store::keys::{JOB_FIELD, WORKER_GROUP};
use herald_tests::scenario::Scenario;
use herald_tests::scenario::lane_streams;
use redis::AsyncCommands;
use time::OffsetDateTime;

use crate::GRACE;
use crate::fleet::Fleet;
use crate::seed::Seed;

/// How long before a disruption a 200 may have come and still miss its settlement: the
/// time between Interakt's answer and the settle script's commit, on a loaded machine.
pub const SETTLE_SLACK: Duration = Duration::from_secs(1);
/// How long after a disruption a request written before it may still arrive.
pub const ARRIVAL_SLACK: Duration = Duration::from_millis(100);
/// How long after its deadline an OTP may still arrive: a request that left the worker
/// before the deadline, still on its way.
pub const IN_FLIGHT_ALLOWANCE: Duration = Duration::from_millis(250);

/// One of Herald's promises, as the README words it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Promise {
    NoJobLost,
    OnePlace,
    NoneSentTwice,
    NothingLeftBehind,
    Budget,
    OtpDeadline,
    ExitsOnSigterm,
}

impl fmt::Display for Promise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Promise::NoJobLost => {
                "no job lost (each is sent or dead-lettered for a reason it allows)"
            }
            Promise::OnePlace => "every job ends in exactly one place",
            Promise::NoneSentTwice => {
                "none sent twice (beyond a 200 whose settlement a disruption cut off)"
            }
            Promise::NothingLeftBehind => "nothing left on the lanes, pending or delayed",
            Promise::Budget => "never more than N requests in any window at Interakt",
            Promise::OtpDeadline => "no OTP sent past its deadline",
            Promise::ExitsOnSigterm => "every worker exits 0 on SIGTERM",
        })
    }
}

/// One broken promise: which, and who broke it how.
#[derive(Clone, Debug)]
pub struct Violation {
    pub promise: Promise,
    pub detail: String,
}

/// Something the scenario did during which a 200 may not have been settled (a replica
/// killed or frozen, Redis stopped or out of reach), in Unix milliseconds.
#[derive(Clone, Debug)]
pub struct Disruption {
    pub what: String,
    pub from_ms: u64,
    pub to_ms: u64,
}

struct Expected {
    job: Job,
    /// Reason prefixes it may be dead-lettered with; empty: it must be sent.
    may_die_of: &'static [&'static str],
}

/// What one scenario expects, and what it did.
pub struct Run {
    seed: Seed,
    limit: RateLimit,
    jobs: Vec<Expected>,
    disruptions: Vec<Disruption>,
    /// Whether the run settled, and when waiting for it stopped (Unix ms).
    settled: Option<(bool, u64)>,
}

impl Run {
    /// A run under `limit` (`N/W`, the workers' `--rate`), the most the stand-in may see in
    /// any window of W.
    pub fn new(seed: &Seed, limit: &str) -> Run {
        Run {
            seed: seed.clone(),
            limit: limit.parse().expect("a rate such as 10/1s"),
            jobs: Vec::new(),
            disruptions: Vec::new(),
            settled: None,
        }
    }

    /// Jobs that must be sent exactly once.
    pub fn expect_sent(&mut self, jobs: &[Job]) {
        self.expect(jobs, &[]);
    }

    /// Jobs that must be sent exactly once or dead-lettered with a reason starting with one
    /// of `reasons` (e.g. `expired` for an OTP whose deadline may pass in the run).
    pub fn expect(&mut self, jobs: &[Job], may_die_of: &'static [&'static str]) {
        for job in jobs {
            assert!(
                self.jobs.iter().all(|e| e.job.phone() != job.phone()),
                "test bug: two jobs for {}; every job needs its own phone to be told apart",
                job.phone()
            );
            self.jobs.push(Expected {
                job: job.clone(),
                may_die_of,
            });
        }
    }

    /// Records a disruption that lasted from `from_ms` to `to_ms` (Unix ms).
    pub fn disrupted(&mut self, what: impl Into<String>, from_ms: u64, to_ms: u64) {
        self.disruptions.push(Disruption {
            what: what.into(),
            from_ms,
            to_ms,
        });
    }

    /// Records a disruption of an instant (a kill, a freeze), now.
    pub fn disrupted_now(&mut self, what: impl Into<String>) {
        let now = now_ms();
        self.disrupted(what, now, now);
    }

    /// Waits until every job was accepted or dead-lettered and nothing is left on the lanes
    /// or delayed; gives up after `timeout` (the check then says what is stuck where).
    pub async fn wait_settled(&mut self, s: &Scenario, timeout: Duration) -> bool {
        let started = Instant::now();
        let mut conn = None;
        loop {
            if self.is_settled(s, &mut conn).await {
                self.settled = Some((true, now_ms()));
                eprintln!(
                    "chaos {}: settled after {:?}",
                    self.seed.test,
                    started.elapsed()
                );
                return true;
            }
            if started.elapsed() >= timeout {
                self.settled = Some((false, now_ms()));
                eprintln!("chaos {}: not settled within {timeout:?}", self.seed.test);
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn is_settled(
        &self,
        s: &Scenario,
        conn: &mut Option<redis::aio::MultiplexedConnection>,
    ) -> bool {
        if conn.is_none() {
            *conn = connect(&s.redis.url()).await.ok();
        }
        let Some(c) = conn.as_mut() else {
            return false;
        };
        let mut pipe = redis::pipe();
        for lane in Lane::ALL {
            let Ok(streams) = lane_streams(c, &s.keys, lane).await else {
                *conn = None;
                return false;
            };
            for stream in streams {
                pipe.xlen(stream);
            }
            pipe.zcard(s.keys.delayed(lane));
        }
        let reply: redis::RedisResult<Vec<usize>> = pipe.query_async(c).await;
        let dead: redis::RedisResult<Vec<String>> = c.hkeys(s.keys.dead()).await;
        let (Ok(left), Ok(dead)) = (reply, dead) else {
            *conn = None;
            return false;
        };
        if left.iter().sum::<usize>() > 0 {
            return false;
        }
        let phones = s.accepted_phones();
        self.jobs.iter().all(|e| {
            phones.contains(&e.job.phone()) || dead.iter().any(|id| *id == e.job.id.to_string())
        })
    }

    /// Ends the run and checks every promise: notes where every job is, stops every replica
    /// still alive with SIGTERM (each must exit 0), looks again (a shutdown must leave
    /// nothing behind either), and panics listing each broken promise, the seed and how to
    /// replay it.
    pub async fn finish(&self, s: &Scenario, fleet: &mut Fleet) {
        let mut conn = connect(&s.redis.url())
            .await
            .expect("Redis is up for the final check");
        let before = Ended::read(s, &mut conn).await;
        let exits = fleet.terminate_all(GRACE).await;
        let after = Ended::read(s, &mut conn).await;
        let mut violations = self.check(s, &before, &after);
        violations.extend(exits);
        let stats = s.sandbox.stats();
        if violations.is_empty() {
            eprintln!(
                "chaos {}: every promise held ({} jobs: {} accepted, {} dead-lettered; requests by status {:?}; busiest window {} of {}; {} disruptions)",
                self.seed.test,
                self.jobs.len(),
                stats.accepted,
                before.dead.len(),
                stats.by_status,
                stats.max_in_window,
                self.limit,
                self.disruptions.len()
            );
            return;
        }
        panic!("{}", self.report(s, &violations));
    }

    /// The promises, from where jobs were when the run ended (`before` the final SIGTERM)
    /// and `after` it.
    fn check(&self, s: &Scenario, before: &Ended, after: &Ended) -> Vec<Violation> {
        let mut out = Vec::new();
        let ended = after;
        let mut accepted: HashMap<String, Vec<u64>> = HashMap::new();
        for message in s.accepted() {
            accepted
                .entry(message.e164())
                .or_default()
                .push(message.received_ms);
        }

        for expected in &self.jobs {
            let job = &expected.job;
            let id = job.id.to_string();
            let who = label(job);
            let mut times = accepted.remove(&job.phone()).unwrap_or_default();
            times.sort_unstable();
            let dead = ended.dead.get(&id);
            let places = ended.places.get(&id).cloned().unwrap_or_default();
            let places_before = before.places.get(&id).cloned().unwrap_or_default();
            let mut violation = |promise, detail: String| {
                out.push(Violation {
                    promise,
                    detail: format!("{who}: {detail}"),
                })
            };

            match (times.first(), dead) {
                (None, None) => {
                    let marker = match ended.sent_markers.get(&id) {
                        Some(m) => format!(
                            "; Herald recorded it as sent (message {m}) though Interakt never accepted it"
                        ),
                        None => String::new(),
                    };
                    let at = if places_before.is_empty() {
                        "nowhere: never accepted, not dead-lettered, not on a lane or delayed"
                            .to_string()
                    } else {
                        places_before.join("; ")
                    };
                    let expiry = match job.not_after.map(unix_ms) {
                        Some(deadline) if deadline < self.ended_ms() => format!(
                            "; its deadline {} passed {:.1} s before the run ended, and it was not dead-lettered as expired",
                            when(deadline),
                            (self.ended_ms() - deadline) as f64 / 1000.0
                        ),
                        _ => String::new(),
                    };
                    violation(
                        Promise::NoJobLost,
                        format!("never ended: when the run ended it was {at}{expiry}{marker}"),
                    );
                }
                (Some(first), Some(letter)) => violation(
                    Promise::OnePlace,
                    format!(
                        "sent (accepted at {}) and also dead-lettered: {}",
                        hms(*first),
                        describe_death(letter)
                    ),
                ),
                (None, Some(letter))
                    if !expected
                        .may_die_of
                        .iter()
                        .any(|r| letter.reason.starts_with(r)) =>
                {
                    let allowed = if expected.may_die_of.is_empty() {
                        "nothing in this scenario makes it unsendable".to_string()
                    } else {
                        format!("only {:?} may end it", expected.may_die_of)
                    };
                    violation(
                        Promise::NoJobLost,
                        format!("dead-lettered, but {allowed}: {}", describe_death(letter)),
                    );
                }
                _ => {}
            }

            if times.len() > 1 {
                let unexcused: Vec<u64> = times[..times.len() - 1]
                    .iter()
                    .copied()
                    .filter(|t| self.excusing(*t).is_none())
                    .collect();
                if !unexcused.is_empty() {
                    violation(
                        Promise::NoneSentTwice,
                        format!(
                            "accepted {} times, at {}; the send{} at {} fell in no disruption window (a kill, freeze or Redis outage, from {:?} before it to {:?} after), so nothing excuses sending it again",
                            times.len(),
                            times.iter().map(|t| hms(*t)).collect::<Vec<_>>().join(", "),
                            if unexcused.len() > 1 { "s" } else { "" },
                            unexcused
                                .iter()
                                .map(|t| hms(*t))
                                .collect::<Vec<_>>()
                                .join(", "),
                            SETTLE_SLACK,
                            ARRIVAL_SLACK,
                        ),
                    );
                }
            }

            if (!times.is_empty() || dead.is_some()) && !places.is_empty() {
                violation(
                    Promise::NothingLeftBehind,
                    format!(
                        "{} but {} {}",
                        if dead.is_some() {
                            "dead-lettered"
                        } else {
                            "sent"
                        },
                        if places_before.is_empty() {
                            "after the final SIGTERM (a replica's hand-back put it there) it is"
                        } else {
                            "still"
                        },
                        places.join("; ")
                    ),
                );
            }

            if let Some(deadline) = job.not_after {
                let deadline_ms = unix_ms(deadline);
                let allowance = IN_FLIGHT_ALLOWANCE.as_millis() as u64;
                for t in times.iter().filter(|t| **t > deadline_ms + allowance) {
                    violation(
                        Promise::OtpDeadline,
                        format!(
                            "accepted at {}, {} ms after its deadline {}",
                            hms(*t),
                            t - deadline_ms,
                            hms(deadline_ms)
                        ),
                    );
                }
            }
        }

        for (phone, times) in accepted {
            out.push(Violation {
                promise: Promise::OnePlace,
                detail: format!(
                    "the stand-in accepted {} message(s) for {} that no job of this run was for",
                    times.len(),
                    mask(&phone)
                ),
            });
        }
        let known: std::collections::HashSet<String> =
            self.jobs.iter().map(|e| e.job.id.to_string()).collect();
        for (id, places) in ended.places.iter().filter(|(id, _)| !known.contains(*id)) {
            out.push(Violation {
                promise: Promise::NothingLeftBehind,
                detail: format!("an entry nobody enqueued ({id}) is {}", places.join("; ")),
            });
        }
        for (id, letter) in ended.dead.iter().filter(|(id, _)| !known.contains(*id)) {
            out.push(Violation {
                promise: Promise::OnePlace,
                detail: format!(
                    "a dead letter for no job of this run ({id}): {}",
                    letter.reason
                ),
            });
        }

        let stats = s.sandbox.stats();
        let window_ms = self.limit.period.as_millis() as u64;
        assert_eq!(
            stats.window_ms, window_ms,
            "test bug: the stand-in measures windows of {} ms, the workers' limit is {}",
            stats.window_ms, self.limit
        );
        if stats.max_in_window > u64::from(self.limit.requests.get()) {
            out.push(Violation {
                promise: Promise::Budget,
                detail: format!(
                    "the stand-in saw {} requests in one window of {:?}; the limit is {} (answers by status: {:?})",
                    stats.max_in_window, self.limit.period, self.limit, stats.by_status
                ),
            });
        }
        out
    }

    /// When the run was over: when waiting for it to settle stopped.
    fn ended_ms(&self) -> u64 {
        self.settled.map_or_else(now_ms, |(_, at)| at)
    }

    /// The disruption whose window holds `t`, if any.
    fn excusing(&self, t: u64) -> Option<&Disruption> {
        let before = SETTLE_SLACK.as_millis() as u64;
        let after = ARRIVAL_SLACK.as_millis() as u64;
        self.disruptions
            .iter()
            .find(|d| d.from_ms.saturating_sub(before) <= t && t <= d.to_ms + after)
    }

    fn report(&self, s: &Scenario, violations: &[Violation]) -> String {
        const SHOWN: usize = 30;
        let mut by_promise: BTreeMap<Promise, Vec<&Violation>> = BTreeMap::new();
        for v in violations {
            by_promise.entry(v.promise).or_default().push(v);
        }
        let mut text = format!(
            "chaos {} (seed {}) broke {} promise(s) in {} violation(s); replay: {}\n",
            self.seed.test,
            self.seed.value,
            by_promise.len(),
            violations.len(),
            self.seed.replay()
        );
        for (promise, list) in &by_promise {
            text.push_str(&format!("\n[{promise}]: {} violation(s)\n", list.len()));
            for v in list.iter().take(SHOWN) {
                text.push_str(&format!("  - {}\n", v.detail));
            }
            if list.len() > SHOWN {
                text.push_str(&format!("  ... and {} more\n", list.len() - SHOWN));
            }
        }
        let stats = s.sandbox.stats();
        text.push_str(&format!(
            "\nthe run: {} jobs; {}; stand-in: {} requests, by status {:?}, {} accepted, busiest window {} (limit {})\n",
            self.jobs.len(),
            match self.settled {
                Some((true, _)) => "it settled (every job ended, lanes and delayed sets empty) before the final SIGTERM",
                Some((false, _)) => "it did NOT settle in time",
                None => "not waited on",
            },
            stats.requests,
            stats.by_status,
            stats.accepted,
            stats.max_in_window,
            self.limit
        ));
        if !self.disruptions.is_empty() {
            text.push_str("disruptions:\n");
            for d in &self.disruptions {
                if d.from_ms == d.to_ms {
                    text.push_str(&format!("  {} {}\n", hms(d.from_ms), d.what));
                } else {
                    text.push_str(&format!(
                        "  {} to {} {}\n",
                        hms(d.from_ms),
                        hms(d.to_ms),
                        d.what
                    ));
                }
            }
        }
        text
    }
}

/// Where jobs are in Redis once the run is over.
struct Ended {
    /// Job id -> where it still is ("pending with w-1 on the booking lane (delivered 3 times)").
    places: HashMap<String, Vec<String>>,
    dead: HashMap<String, DeadLetter>,
    /// Job id -> the message id Herald recorded it as sent with.
    sent_markers: HashMap<String, String>,
}

impl Ended {
    async fn read(s: &Scenario, conn: &mut redis::aio::MultiplexedConnection) -> Ended {
        let mut places: HashMap<String, Vec<String>> = HashMap::new();
        for lane in Lane::ALL {
            let streams = lane_streams(conn, &s.keys, lane)
                .await
                .expect("the lane's streams");
            for key in streams {
                let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
                    .arg(&key)
                    .arg(WORKER_GROUP)
                    .arg("-")
                    .arg("+")
                    .arg(100_000)
                    .query_async(conn)
                    .await
                    .unwrap_or_default();
                let pending: HashMap<String, (String, u64)> = pending
                    .into_iter()
                    .map(|(entry, consumer, _, times)| (entry, (consumer, times)))
                    .collect();
                let entries: redis::streams::StreamRangeReply =
                    conn.xrange_all(&key).await.expect("read a lane");
                for entry in entries.ids {
                    let id = entry
                        .get::<String>(JOB_FIELD)
                        .and_then(|json| Job::from_json(json.as_bytes()).ok())
                        .map_or_else(|| format!("entry {}", entry.id), |job| job.id.to_string());
                    let place = match pending.get(&entry.id) {
                        Some((consumer, times)) => format!(
                            "pending with {consumer} on the {lane} lane (delivered {})",
                            if *times == 1 {
                                "once".to_string()
                            } else {
                                format!("{times} times")
                            }
                        ),
                        None => {
                            format!("ready on the {lane} lane, never delivered since it was added")
                        }
                    };
                    places.entry(id).or_default().push(place);
                }
            }
            let delayed: Vec<(String, f64)> = conn
                .zrange_withscores(s.keys.delayed(lane), 0, -1)
                .await
                .expect("read a delayed set");
            for (json, due) in delayed {
                let id = Job::from_json(json.as_bytes()).map_or_else(
                    |_| "a member that is not a job".into(),
                    |j| j.id.to_string(),
                );
                places.entry(id).or_default().push(format!(
                    "delayed on the {lane} lane, due at {}",
                    when(due as u64)
                ));
            }
        }
        let dead: HashMap<String, String> =
            conn.hgetall(s.keys.dead()).await.expect("dead letters");
        let dead = dead
            .into_iter()
            .map(|(id, json)| {
                let letter: DeadLetter = serde_json::from_str(&json).expect("a dead letter");
                (id, letter)
            })
            .collect();
        let sent_keys: Vec<String> = conn
            .keys(format!("{}*", s.keys.sent("")))
            .await
            .unwrap_or_default();
        let mut sent_markers = HashMap::new();
        for key in sent_keys {
            let message: Option<String> = conn.get(&key).await.unwrap_or_default();
            let id = key.trim_start_matches(&s.keys.sent("")).to_string();
            sent_markers.insert(id, message.unwrap_or_default());
        }
        Ended {
            places,
            dead,
            sent_markers,
        }
    }
}

/// `booking 0193… (+91******12)`
fn label(job: &Job) -> String {
    format!(
        "{} {} ({})",
        job.kind().as_str(),
        job.id,
        mask(&job.phone())
    )
}

fn describe_death(letter: &DeadLetter) -> String {
    let attempts = letter.job.as_ref().map_or(Vec::new(), |job| {
        job.attempts
            .iter()
            .filter(|a| a.is_send())
            .map(|a| match a.status {
                Some(status) => format!("{} {status}", a.outcome),
                None => a.outcome.to_string(),
            })
            .collect()
    });
    format!(
        "{:?} (by {}, after {} send attempt(s){})",
        letter.reason,
        letter.consumer,
        attempts.len(),
        if attempts.is_empty() {
            String::new()
        } else {
            format!(": {}", attempts.join(", "))
        }
    )
}

pub async fn connect(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    tokio::time::timeout(Duration::from_secs(2), herald_tests::connect(url))
        .await
        .unwrap_or_else(|_| {
            Err(redis::RedisError::from(std::io::Error::from(
                std::io::ErrorKind::TimedOut,
            )))
        })
}

/// The wall clock in Unix milliseconds, as the stand-in stamps `received_ms`.
pub fn now_ms() -> u64 {
    unix_ms(OffsetDateTime::now_utc())
}

fn unix_ms(at: OffsetDateTime) -> u64 {
    (at.unix_timestamp_nanos() / 1_000_000) as u64
}

/// [`hms`] for times within the hour around now, else the full date and time.
fn when(ms: u64) -> String {
    if ms.abs_diff(now_ms()) < 3_600_000 {
        return hms(ms);
    }
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{} {}", at.date(), hms(ms))
}

/// `12:00:01.234` (UTC) of Unix milliseconds.
pub fn hms(ms: u64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(disruptions: &[(u64, u64)]) -> Run {
        let mut run = Run::new(
            &Seed {
                value: 1,
                test: "unit",
            },
            "10/1s",
        );
        for (from, to) in disruptions {
            run.disrupted("x", *from, *to);
        }
        run
    }

    #[test]
    fn a_second_send_is_excused_only_around_a_disruption() {
        let run = run_with(&[(10_000, 10_000), (20_000, 22_000)]);
        // A kill at 10 s: a 200 up to SETTLE_SLACK before it, or arriving just after it.
        assert!(run.excusing(9_000).is_some());
        assert!(run.excusing(10_100).is_some());
        assert!(run.excusing(8_999).is_none());
        assert!(run.excusing(10_101).is_none());
        // An outage from 20 s to 22 s: anything accepted during it, too.
        assert!(run.excusing(21_000).is_some());
        assert!(run.excusing(22_100).is_some());
        assert!(run.excusing(22_101).is_none());
        assert!(run_with(&[]).excusing(10_000).is_none());
    }

    #[test]
    fn times_read_as_utc_clock_times() {
        assert_eq!(hms(1_767_261_600_123), "10:00:00.123");
        assert!(when(1_767_261_600_123).starts_with("2026-01-01 10:00:00.123"));
    }
}
