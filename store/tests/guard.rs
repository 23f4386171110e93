//! The OTP guard's rules against a real redis-server, on explicit times (the guard reads
//! the caller's clock: each call here says when it happens, so a window or a twelve-hour
//! block passes at once).
//!
//! Every rule refuses what it should and frees when it should; a refused OTP writes no job,
//! no record, no claim and no per-number state; every key the guard writes expires; the
//! conversion rule stays off until a verification is reported; an operator's unblock frees a
//! prefix and its counts start afresh.

use std::time::Duration;

use herald_shared::Job;
use herald_shared::config::RateLimit;
use herald_store::Keys;
use herald_store::calls::enqueue::{self, EnqueueReply};
use herald_store::calls::guard::{self as guard_calls, UnblockReply};
use herald_store::guard::{self, Guard, Rule};
use herald_tests::RedisServer;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use time::OffsetDateTime;

const HOUR: Duration = Duration::from_secs(3600);

fn keys() -> Keys {
    Keys::new("gd").unwrap()
}

/// A number of the prefix `+91987654` (`i` below 10,000) or of `+91987655` (10,000 up).
fn number(i: usize) -> String {
    format!("+9198765{:05}", 40_000 + i)
}

fn otp(phone: &str) -> Job {
    Job::otp(phone, "123456", Duration::from_secs(600)).unwrap()
}

struct Bench {
    _redis: RedisServer,
    conn: MultiplexedConnection,
    keys: Keys,
    guard: Guard,
    /// The start of the test's time: a whole hour, so windows line up with it.
    t0: OffsetDateTime,
}

impl Bench {
    async fn start(guard: Guard) -> Bench {
        let redis = RedisServer::start();
        let conn = herald_tests::connect(&redis.url()).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let t0 = now - Duration::from_secs(now.unix_timestamp() as u64 % 3600)
            + Duration::from_secs(4 * 3600)
            - Duration::from_nanos(u64::from(now.nanosecond()));
        Bench {
            _redis: redis,
            conn,
            keys: keys(),
            guard,
            t0,
        }
    }

    /// Enqueues `job` at `t0 + at`, the guard on.
    async fn enqueue_at(&mut self, job: &Job, at: Duration) -> EnqueueReply {
        let reply: redis::Value =
            enqueue::enqueue(&self.keys, job, 86_400_000, self.t0 + at, Some(&self.guard))
                .invoke(&mut self.conn)
                .await
                .unwrap();
        EnqueueReply::decode(&reply).unwrap()
    }

    async fn otp_at(&mut self, phone: &str, at: Duration) -> EnqueueReply {
        self.enqueue_at(&otp(phone), at).await
    }

    async fn verified_at(&mut self, phone: &str, at: Duration) {
        let prefix = herald_shared::phone::guard_parts(phone).unwrap().prefix;
        let _: redis::Value = guard_calls::verified(&self.keys, prefix, self.t0 + at)
            .invoke(&mut self.conn)
            .await
            .unwrap();
    }

    async fn status_at(&mut self, at: Duration) -> guard::GuardStatus {
        guard::collect(&mut self.conn, &self.keys, self.t0 + at)
            .await
            .unwrap()
    }

    async fn unblock_at(&mut self, prefix: &str, at: Duration) -> UnblockReply {
        let reply: redis::Value = guard_calls::unblock(&self.keys, prefix, self.t0 + at)
            .invoke(&mut self.conn)
            .await
            .unwrap();
        UnblockReply::decode(&reply).unwrap()
    }

    async fn keys_like(&mut self, pattern: &str) -> Vec<String> {
        let mut found: Vec<String> = self.conn.keys(pattern).await.unwrap();
        found.sort();
        found
    }
}

fn added(reply: &EnqueueReply) -> bool {
    matches!(reply, EnqueueReply::Added { .. })
}

/// The rule and the wait (whole seconds) of a refusal; panics on anything else.
fn refused(reply: &EnqueueReply) -> (Rule, Option<u64>) {
    match reply {
        EnqueueReply::Refused(refusal) => (refusal.rule, refusal.retry_after_secs()),
        other => panic!("not refused: {other:?}"),
    }
}

fn limits(per_number: &str, per_prefix: &str) -> Guard {
    Guard {
        per_number: per_number.parse::<RateLimit>().unwrap(),
        per_prefix: per_prefix.parse::<RateLimit>().unwrap(),
        ..Guard::default()
    }
}

/// Five OTPs to one number in an hour, then refused until the first of them is an hour
/// old; a refused OTP leaves no job, record, claim or count of its own behind.
#[tokio::test]
async fn a_number_gets_its_limit_per_window_and_a_refusal_writes_nothing() {
    let mut b = Bench::start(Guard::default()).await;
    let phone = number(1);
    for minute in 0..5 {
        let reply = b
            .otp_at(&phone, Duration::from_secs(60 * (10 + minute)))
            .await;
        assert!(added(&reply), "{reply:?}");
    }
    let before: Vec<(String, String)> = b
        .conn
        .hgetall(b.keys.guard_prefix("+91987654"))
        .await
        .unwrap();
    let job = otp(&phone)
        .with_idempotency_key(Some("login:1".into()))
        .unwrap();
    let reply = b.enqueue_at(&job, Duration::from_secs(60 * 30)).await;
    // The first OTP (minute 10) leaves the window at minute 70: 40 minutes on.
    assert_eq!(refused(&reply), (Rule::PerNumber, Some(40 * 60)));
    let record: bool = b
        .conn
        .exists(b.keys.job_status(&job.id.to_string()))
        .await
        .unwrap();
    let claim: bool = b.conn.exists(b.keys.idempotency("login:1")).await.unwrap();
    assert!(
        !record && !claim,
        "a refused OTP writes no record, no claim"
    );
    let after: Vec<(String, String)> = b
        .conn
        .hgetall(b.keys.guard_prefix("+91987654"))
        .await
        .unwrap();
    assert_eq!(before, after, "nor any count of the prefix or the number");
    let queued: u64 = b
        .conn
        .xlen(b.keys.lane(herald_shared::Lane::Otp))
        .await
        .unwrap();
    assert_eq!(queued, 5);

    // Another number of the same prefix is not held back.
    assert!(added(
        &b.otp_at(&number(2), Duration::from_secs(60 * 31)).await
    ));
    // The first OTP leaves the window: one more passes, then the second must leave too.
    assert!(added(
        &b.otp_at(&phone, Duration::from_secs(60 * 70 + 1)).await
    ));
    assert_eq!(
        refused(&b.otp_at(&phone, Duration::from_secs(60 * 70 + 2)).await),
        (Rule::PerNumber, Some(60 - 2))
    );
    let status = b.status_at(Duration::from_secs(60 * 71)).await;
    assert_eq!(status.refused_last_hour[&Rule::PerNumber], 2);
}

/// Thirty OTPs to numbers of one prefix, then the 31st blocks it for twelve hours: it and
/// every later one refused (`per_prefix`, then `prefix_blocked`), other prefixes untouched,
/// the block listed; twelve hours on, the prefix is free again.
#[tokio::test]
async fn a_prefix_past_its_limit_is_blocked_for_twelve_hours() {
    let mut b = Bench::start(Guard::default()).await;
    for i in 0..30 {
        let reply = b.otp_at(&number(i), Duration::from_secs(i as u64)).await;
        assert!(added(&reply), "{i}: {reply:?}");
    }
    let at = Duration::from_secs(100);
    assert_eq!(
        refused(&b.otp_at(&number(30), at).await),
        (Rule::PerPrefix, Some(12 * 3600))
    );
    assert_eq!(
        refused(&b.otp_at(&number(31), at + Duration::from_secs(3600)).await),
        (Rule::PrefixBlocked, Some(11 * 3600))
    );
    assert!(
        added(&b.otp_at(&number(10_000), at).await),
        "another prefix is not blocked"
    );
    let status = b.status_at(at + HOUR).await;
    assert_eq!(status.blocked_total, 1);
    assert_eq!(status.blocked[0].prefix, "+91987654");
    assert_eq!(status.blocked[0].rule, Some(Rule::PerPrefix));
    assert_eq!(status.blocked[0].frees_in_s, 11 * 3600);
    assert_eq!(status.refused_last_hour[&Rule::PrefixBlocked], 1);

    let freed = at + 12 * HOUR;
    assert_eq!(
        refused(&b.otp_at(&number(32), freed - Duration::from_secs(1)).await).0,
        Rule::PrefixBlocked
    );
    assert!(added(&b.otp_at(&number(32), freed).await));
    let status = b.status_at(freed).await;
    assert_eq!((status.blocked_total, status.blocked.len()), (0, 0));
}

/// The refusal that blocks a prefix cancels its OTPs still queued, so a flood's admitted
/// OTPs never wait ahead of other prefixes' (issue 29's goal): they leave the lane and their
/// records say `cancelled`; one already sent, or being sent, is left as it is (its attempt
/// goes on), and another prefix's OTP is untouched.
#[tokio::test]
async fn a_prefix_blocked_takes_its_queued_otps_off_the_lane() {
    let mut b = Bench::start(Guard::default()).await;
    let other = otp(&number(10_000));
    assert!(added(&b.enqueue_at(&other, Duration::ZERO).await));
    let mut flood = Vec::new();
    for i in 0..30 {
        let job = otp(&number(i));
        let reply = b.enqueue_at(&job, Duration::from_secs(i as u64)).await;
        assert!(added(&reply), "{i}: {reply:?}");
        flood.push(job);
    }
    let lane = b.keys.lane(herald_shared::Lane::Otp);
    let len: usize = b.conn.xlen(&lane).await.unwrap();
    assert_eq!(len, 31);
    // One of them sent already, one being sent.
    let sent = b.keys.job_status(&flood[0].id.to_string());
    let sending = b.keys.job_status(&flood[1].id.to_string());
    let _: () = b
        .conn
        .hset_multiple(
            &sent,
            &[("state", "sent"), ("sent_at", "2026-12-06T00:00:00Z")],
        )
        .await
        .unwrap();
    let _: () = b.conn.hset(&sending, "state", "sending").await.unwrap();

    assert_eq!(
        refused(&b.otp_at(&number(30), Duration::from_secs(100)).await).0,
        Rule::PerPrefix
    );
    let state = |record: String| {
        let mut conn = b.conn.clone();
        async move {
            let state: Option<String> = conn.hget(record, "state").await.unwrap();
            state
        }
    };
    assert_eq!(state(sent.clone()).await.as_deref(), Some("sent"));
    assert_eq!(state(sending.clone()).await.as_deref(), Some("sending"));
    for job in &flood[2..] {
        let record = b.keys.job_status(&job.id.to_string());
        assert_eq!(
            state(record).await.as_deref(),
            Some("cancelled"),
            "{}",
            job.id
        );
    }
    let other_record = b.keys.job_status(&other.id.to_string());
    assert_eq!(state(other_record).await.as_deref(), Some("queued"));
    // On the lane: the other prefix's OTP and the two the cancel left.
    let len: usize = b.conn.xlen(&lane).await.unwrap();
    assert_eq!(len, 3, "the blocked prefix's queued OTPs left the lane");
    // The ids are forgotten with the block: nothing to cancel twice.
    let ids: Option<String> = b
        .conn
        .hget(b.keys.guard_prefix("+91987654"), "j")
        .await
        .unwrap();
    assert_eq!(ids, None);
}

/// The per-prefix count is a sliding window estimated from two fixed ones: twenty OTPs at
/// the end of one window still count for half of them halfway through the next.
#[tokio::test]
async fn a_prefix_count_slides_across_windows() {
    let mut b = Bench::start(Guard::default()).await;
    for i in 0..20 {
        let at = Duration::from_secs(3600 - 60 + i as u64);
        assert!(added(&b.otp_at(&number(i), at).await), "{i}");
    }
    // Halfway through the next window: 20 x 0.5 = 10 count, so 20 more pass.
    let half = Duration::from_secs(3600 + 1800);
    for i in 20..40 {
        assert!(added(&b.otp_at(&number(i), half).await), "{i}");
    }
    assert_eq!(
        refused(&b.otp_at(&number(40), half).await).0,
        Rule::PerPrefix
    );
}

/// With an allow-list, a number of another country is refused for good (no wait to give).
#[tokio::test]
async fn a_country_not_allowed_is_refused_without_a_wait() {
    let mut b = Bench::start(Guard {
        countries: vec!["+91".into(), "+44".into()],
        ..Guard::default()
    })
    .await;
    assert_eq!(
        refused(&b.otp_at("+971501234567", Duration::ZERO).await),
        (Rule::Country, None)
    );
    assert!(added(&b.otp_at("+919876540001", Duration::ZERO).await));
    assert!(added(&b.otp_at("+447911123456", Duration::ZERO).await));
    assert_eq!(
        b.keys_like("{gd}:guard:p:+971*").await,
        Vec::<String>::new(),
        "a refused country leaves nothing for its prefix"
    );
}

/// Without any verification reported, a prefix's conversion is not judged (the backend may
/// not report at all); once reports come, a prefix with 20 sends and fewer than a fifth of
/// them verified is blocked, one with enough verified is not.
#[tokio::test]
async fn conversion_applies_only_once_reports_are_seen() {
    let mut b = Bench::start(limits("5/1h", "1000/1h")).await;
    for i in 0..25 {
        let reply = b.otp_at(&number(i), Duration::from_secs(i as u64)).await;
        assert!(added(&reply), "no reports yet: {i}: {reply:?}");
    }
    // A well-converting prefix: 25 sends, 6 verified.
    for i in 10_000..10_025 {
        assert!(added(&b.otp_at(&number(i), Duration::from_secs(30)).await));
    }
    for i in 10_000..10_006 {
        b.verified_at(&number(i), Duration::from_secs(40)).await;
    }
    let at = Duration::from_secs(60);
    assert!(added(&b.otp_at(&number(10_030), at).await), "6/25 >= 0.2");
    // Reports are seen now: 0 of the first prefix's 25 verified.
    assert_eq!(
        refused(&b.otp_at(&number(30), at).await),
        (Rule::Conversion, Some(12 * 3600))
    );
    assert_eq!(
        refused(&b.otp_at(&number(31), at).await).0,
        Rule::PrefixBlocked
    );
    let status = b.status_at(at).await;
    assert_eq!(status.blocked[0].rule, Some(Rule::Conversion));
}

/// An operator's unblock frees the prefix at once and starts its counts afresh (its numbers'
/// own counts stay); a prefix not blocked is said to be so, and nothing changes.
#[tokio::test]
async fn an_unblocked_prefix_takes_otps_again() {
    let mut b = Bench::start(limits("2/1h", "3/1h")).await;
    for i in 0..3 {
        assert!(added(&b.otp_at(&number(i), Duration::ZERO).await));
    }
    assert_eq!(
        refused(&b.otp_at(&number(3), Duration::ZERO).await).0,
        Rule::PerPrefix
    );
    let later = Duration::from_secs(5);
    assert_eq!(
        b.unblock_at("+91987654", later).await,
        UnblockReply::Unblocked
    );
    assert_eq!(
        b.unblock_at("+91987654", later).await,
        UnblockReply::NotBlocked
    );
    assert_eq!(
        b.unblock_at("+91123456", later).await,
        UnblockReply::NotBlocked
    );
    assert_eq!(b.status_at(later).await.blocked_total, 0);
    // Three more for the prefix: its count started afresh.
    assert!(
        added(&b.otp_at(&number(0), later).await),
        "number 0's second"
    );
    assert_eq!(
        refused(&b.otp_at(&number(0), later).await).0,
        Rule::PerNumber,
        "number 0's own count stayed"
    );
    for i in 4..6 {
        assert!(added(&b.otp_at(&number(i), later).await), "{i}");
    }
    assert_eq!(
        refused(&b.otp_at(&number(6), later).await).0,
        Rule::PerPrefix
    );
}

/// A retried enqueue under the same idempotency key is a duplicate, never counted again: a
/// client that retries does not use up its customer's OTPs.
#[tokio::test]
async fn a_duplicate_is_not_counted() {
    let mut b = Bench::start(limits("2/1h", "30/1h")).await;
    let job = otp(&number(1))
        .with_idempotency_key(Some("login:7".into()))
        .unwrap();
    for _ in 0..5 {
        let reply = b.enqueue_at(&job, Duration::ZERO).await;
        assert!(
            matches!(
                reply,
                EnqueueReply::Added { .. } | EnqueueReply::Duplicate { .. }
            ),
            "{reply:?}"
        );
    }
    assert!(
        added(&b.otp_at(&number(1), Duration::ZERO).await),
        "the second"
    );
    assert_eq!(
        refused(&b.otp_at(&number(1), Duration::ZERO).await).0,
        Rule::PerNumber
    );
}

/// Every key the guard writes expires: counts, blocks, refusal counts, whatever the rule.
#[tokio::test]
async fn every_key_the_guard_writes_expires() {
    let mut b = Bench::start(Guard {
        countries: vec!["+91".into()],
        ..limits("1/1h", "2/1h")
    })
    .await;
    let at = Duration::ZERO;
    for phone in [number(0), number(0), number(1), number(2), number(3)] {
        let _ = b.otp_at(&phone, at).await;
    }
    let _ = b.otp_at("+447911123456", at).await;
    b.verified_at(&number(10_000), at).await;
    let written = b.keys_like("{gd}:guard:*").await;
    assert!(written.len() >= 3, "{written:?}");
    for key in written {
        let ttl: i64 = b.conn.pttl(&key).await.unwrap();
        if key == b.keys.guard_reports() {
            continue; // one key, for good: reports were seen
        }
        assert!(ttl > 0, "{key} has no expiry ({ttl})");
        assert!(ttl <= 3 * 24 * 3600 * 1000, "{key}: {ttl} ms");
    }
}

/// Without a guard (the producer's `HERALD_OTP_GUARD=off`, or a job not on the OTP lane)
/// nothing of the guard is read or written.
#[tokio::test]
async fn without_the_guard_nothing_is_counted() {
    let mut b = Bench::start(limits("1/1h", "1/1h")).await;
    for _ in 0..3 {
        let reply: redis::Value =
            enqueue::enqueue(&b.keys, &otp(&number(1)), 86_400_000, b.t0, None)
                .invoke(&mut b.conn)
                .await
                .unwrap();
        assert!(added(&EnqueueReply::decode(&reply).unwrap()));
    }
    let booking = herald_tests::scenario::booking(1);
    for _ in 0..3 {
        assert!(added(&b.enqueue_at(&booking, Duration::ZERO).await));
    }
    assert_eq!(b.keys_like("{gd}:guard:*").await, Vec::<String>::new());
}

/// A prefix's OTPs go five at once, then one a second: the sixth of a burst is held back to
/// its turn (scheduled, its record says so with the time), and the block a flood then
/// triggers cancels the held ones with the queued ones, so a flood spends at most five
/// tokens at once whatever it sends before its block (issue 29's goal: the legitimate OTPs
/// and bookings after it find the budget's pace as it was).
#[tokio::test]
async fn a_burst_to_one_prefix_goes_five_at_once_then_one_a_second() {
    let mut b = Bench::start(Guard::default()).await;
    let at = Duration::from_secs(10);
    let mut flood = Vec::new();
    for i in 0..8 {
        let job = otp(&number(i));
        let reply = b.enqueue_at(&job, at).await;
        let EnqueueReply::Added {
            entry,
            held_until_ms,
            ..
        } = &reply
        else {
            panic!("{i}: {reply:?}");
        };
        let expected = (i >= 5).then(|| guard::unix_ms(b.t0 + at) + (i as u64 - 4) * 1000);
        assert_eq!(*held_until_ms, expected, "{i}");
        assert_eq!(entry.is_none(), i >= 5, "{i}: {reply:?}");
        flood.push(job);
    }
    let record = b.keys.job_status(&flood[5].id.to_string());
    let (state, send_at): (String, String) = redis::cmd("HMGET")
        .arg(&record)
        .arg("state")
        .arg("send_at")
        .query_async(&mut b.conn)
        .await
        .unwrap();
    assert_eq!(state, "scheduled");
    let due = b.t0 + at + Duration::from_secs(1);
    assert_eq!(
        OffsetDateTime::parse(&send_at, &time::format_description::well_known::Rfc3339).unwrap(),
        due,
        "{send_at}"
    );
    let scheduled: Vec<String> = b
        .conn
        .zrange(b.keys.scheduled(herald_shared::Lane::Otp), 0, -1)
        .await
        .unwrap();
    assert_eq!(scheduled.len(), 3);
    // A steady prefix, one a second, is never held back.
    for i in 0..10u64 {
        let reply = b
            .otp_at(&number(10_000 + i as usize), at + Duration::from_secs(i))
            .await;
        assert!(
            matches!(
                reply,
                EnqueueReply::Added {
                    held_until_ms: None,
                    ..
                }
            ),
            "{i}: {reply:?}"
        );
    }
    // The flood goes on to its block: the held ones are cancelled with the queued ones.
    for i in 8..30 {
        assert!(added(&b.otp_at(&number(i), at).await), "{i}");
    }
    assert_eq!(refused(&b.otp_at(&number(30), at).await).0, Rule::PerPrefix);
    let scheduled: Vec<String> = b
        .conn
        .zrange(b.keys.scheduled(herald_shared::Lane::Otp), 0, -1)
        .await
        .unwrap();
    assert_eq!(
        scheduled,
        Vec::<String>::new(),
        "the held OTPs were cancelled"
    );
    let state: String = b.conn.hget(&record, "state").await.unwrap();
    assert_eq!(state, "cancelled");
}

/// The records' times as the guard writes them (`guard_rfc3339` in guard.lua) are the
/// ones Rust writes, across leap days, year ends and the epoch's first day.
#[tokio::test]
async fn a_held_otps_send_at_is_rfc3339_on_any_date() {
    let mut b = Bench::start(Guard::default()).await;
    for (n, date) in [
        (0, "1970-01-01T00:00:05.000Z"),
        (1, "2024-02-29T23:59:59.999Z"),
        (2, "2026-12-31T23:59:59.001Z"),
        (3, "2100-03-01T12:00:00.500Z"),
    ] {
        let held =
            OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339).unwrap();
        // Six OTPs of one prefix at `held - 1 s`: the sixth is held back to `held`.
        let start = held - Duration::from_secs(1);
        let mut last = None;
        for i in 0..6 {
            let job = otp(&number(n * 100 + i + 20_000));
            let reply: redis::Value =
                enqueue::enqueue(&b.keys, &job, 86_400_000, start, Some(&b.guard))
                    .invoke(&mut b.conn)
                    .await
                    .unwrap();
            last = Some((job, EnqueueReply::decode(&reply).unwrap()));
        }
        let (job, reply) = last.unwrap();
        assert!(
            matches!(
                reply,
                EnqueueReply::Added {
                    held_until_ms: Some(_),
                    ..
                }
            ),
            "{reply:?}"
        );
        let send_at: String = b
            .conn
            .hget(b.keys.job_status(&job.id.to_string()), "send_at")
            .await
            .unwrap();
        assert_eq!(send_at, date);
    }
}
