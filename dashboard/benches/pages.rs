//! Page times of the dashboard under a big backlog: a million queued jobs, 100,000 dead
//! letters, a full 24 hours of chart history; and the memory that history takes.
//!
//! `cargo bench -p herald-dashboard --bench pages` (about two minutes, most of it seeding;
//! `BENCH_QUEUED`, `BENCH_DEAD`, `BENCH_ROUNDS` change the sizes). It starts its own
//! redis-server (no persistence), seeds it through pipelines, serves the dashboard's router
//! on loopback in this process, logs in, and times each page over HTTP: p50, p99 and max of
//! `BENCH_ROUNDS` requests, one at a time. Prints figures; asserts only that pages answer 200.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use herald_dashboard::{DashboardArgs, Settings};
use herald_shared::config::{RateArgs, RedisArgs};
use herald_shared::job::{Attempt, Outcome};
use herald_shared::{Job, Lane, Redacted};
use herald_store::Keys;
use herald_store::dead_letter::{DeadLetter, DeadReason};
use herald_store::history::Series;
use herald_store::keys::WORKER_GROUP;
use herald_tests::scenario::{booking, otp};
use herald_tests::{NO_PERSISTENCE, RedisServer};
use time::OffsetDateTime;

const TOKEN: &str = "bench-dashboard-token";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let queued = env_usize("BENCH_QUEUED", 1_000_000);
    let dead = env_usize("BENCH_DEAD", 100_000);
    let rounds = env_usize("BENCH_ROUNDS", 50);
    let redis = RedisServer::start_with(&NO_PERSISTENCE);
    let keys = Keys::new("herald").unwrap();
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();

    let started = Instant::now();
    let producer = producer::Producer::new(
        herald_shared::redis_pool::create_pool(&redis.url(), 4).unwrap(),
        keys.clone(),
    );
    let (queued_id, booking_id) = seed_lanes(&mut conn, &producer, &keys, queued).await;
    let dead_id = seed_dead(&mut conn, &keys, dead).await;
    let history_bytes = seed_history(&mut conn, &keys, &redis.url()).await;
    println!(
        "seeded {queued} queued jobs, {dead} dead letters and 24 h of history in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "chart history in Redis, every bucket and series full: {:.0} KiB (MEMORY USAGE of its keys)",
        history_bytes as f64 / 1024.0
    );

    let settings = Settings::from_args(
        &RedisArgs::single(Redacted::new(redis.url()), "herald"),
        &DashboardArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            tokens: Some(Redacted::new(TOKEN.to_string())),
            secret: None,
            read_only: false,
            secure_cookie: false,
            rate: RateArgs::default(),
        },
    )
    .unwrap();
    let pool = settings.redis.open(8).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(herald_dashboard::serve(
        listener,
        settings,
        pool,
        stop.clone(),
    ));

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();

    println!(
        "\n{:<48} {:>9} {:>9} {:>9} {:>9}",
        "page", "p50 ms", "p99 ms", "max ms", "KiB"
    );
    let deep = dead / 2;
    for (name, path) in [
        ("overview", "/".to_string()),
        ("overview, live fragment", "/live/overview".to_string()),
        ("dead letters, first page", "/dead".to_string()),
        (
            "dead letters, one lane, middle page",
            format!("/dead?lane=booking&otp=0&booking={}", deep / 2),
        ),
        (
            "dead letters, both lanes, deep page",
            format!("/dead?otp={}&booking={}", deep / 2, deep / 2),
        ),
        (
            "dead letters, reason filter (rare)",
            "/dead?reason=HTTP%20418".to_string(),
        ),
        (
            "dead letters, reason filter (common)",
            "/dead?reason=HTTP%20500".to_string(),
        ),
        (
            "dead letters, older than 1m",
            "/dead?older_than=1m".to_string(),
        ),
        ("one dead letter", format!("/dead/{dead_id}")),
        (
            "find by booking id",
            format!("/jobs?q={booking_id}&by=booking_id"),
        ),
        ("find a dead job by id", format!("/jobs?q={dead_id}")),
        (
            "find a queued job by id (its record)",
            format!("/jobs?q={queued_id}"),
        ),
    ] {
        let mut times = Vec::with_capacity(rounds);
        let mut size = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let response = http
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
            size = response.bytes().await.unwrap().len();
            times.push(t.elapsed());
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let p = |q: f64| times[((q * rounds as f64).ceil() as usize).clamp(1, rounds) - 1];
        println!(
            "{name:<48} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            ms(p(0.5)),
            ms(p(0.99)),
            ms(*times.last().unwrap()),
            size as f64 / 1024.0
        );
    }
    stop.cancel();
}

/// `n` jobs on the lanes (one in ten an OTP), enqueued as producers do (each with its record,
/// bookings indexed by their id), some delivered to a consumer (in hand); returns the id of a
/// job in the middle of the booking lane and a booking id with three jobs.
async fn seed_lanes(
    conn: &mut redis::aio::MultiplexedConnection,
    producer: &producer::Producer,
    keys: &Keys,
    n: usize,
) -> (String, String) {
    let mut middle = String::new();
    for start in (0..n).step_by(20_000) {
        let jobs: Vec<Job> = (start..(start + 20_000).min(n))
            .map(|i| {
                if i % 10 == 0 {
                    otp(&herald_tests::scenario::phone(i), Duration::from_secs(600))
                } else {
                    booking(i)
                }
            })
            .collect();
        if start <= n / 2 && n / 2 < start + 20_000 {
            middle = jobs[(n / 2 - start).min(jobs.len() - 1)].id.to_string();
        }
        enqueue(producer, jobs).await;
    }
    for lane in Lane::ALL {
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(keys.lane(lane))
            .arg(WORKER_GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await
            .unwrap();
        let _: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(WORKER_GROUP)
            .arg("bench-replica")
            .arg("COUNT")
            .arg(16)
            .arg("STREAMS")
            .arg(keys.lane(lane))
            .arg(">")
            .query_async(conn)
            .await
            .unwrap();
    }
    // The producer's booking index, for one booking with three jobs.
    let booking_id = "B-BENCH";
    for _ in 0..3 {
        let mut job = booking(7);
        if let herald_shared::job::Payload::Booking(b) = &mut job.payload {
            b.booking_id = booking_id.into();
        }
        enqueue(producer, vec![job]).await;
    }
    (middle, booking_id.to_string())
}

async fn enqueue(producer: &producer::Producer, jobs: Vec<Job>) {
    for result in producer.enqueue_batch(jobs).await.expect("enqueue") {
        result.expect("enqueued");
    }
}

/// `n` dead letters over both lanes and the last day, each with three attempts (one in a
/// thousand with a rare reason); returns one id.
async fn seed_dead(conn: &mut redis::aio::MultiplexedConnection, keys: &Keys, n: usize) -> String {
    let now = OffsetDateTime::now_utc();
    let mut one = String::new();
    for start in (0..n).step_by(5_000) {
        let mut pipe = redis::pipe();
        for i in start..(start + 5_000).min(n) {
            let mut job = if i % 2 == 0 {
                booking(i)
            } else {
                otp(&herald_tests::scenario::phone(i), Duration::from_secs(600))
            };
            let status = if i % 1000 == 0 { 418 } else { 500 };
            for a in 0..3 {
                job.attempts.push(Attempt {
                    at: now - Duration::from_secs(60 + a),
                    outcome: Outcome::Transient,
                    status: Some(status),
                    error: Some(format!("HTTP {status}")),
                    body: None,
                    consumer: Some("bench-replica".into()),
                });
            }
            let reason = DeadReason::Exhausted {
                attempts: 3,
                last: format!("HTTP {status}"),
            };
            let dead_at = now - Duration::from_secs((i % 86_400) as u64);
            let id = job.id.to_string();
            let letter = DeadLetter {
                job: Some(job.clone()),
                ..DeadLetter::new(id.clone(), job.lane(), &reason, "bench".into(), dead_at)
            };
            let ms = dead_at.unix_timestamp_nanos() / 1_000_000;
            pipe.hset(keys.dead(), &id, serde_json::to_string(&letter).unwrap())
                .ignore()
                .zadd(keys.dead_index(job.lane()), &id, ms as i64)
                .ignore();
            one = id;
        }
        let _: () = pipe.query_async(conn).await.unwrap();
    }
    one
}

/// Every bucket of the last 24 hours and every latency bin of the last hour written, as
/// the workers write them; returns the bytes the keys of this hour and day and the previous
/// ones take (`MEMORY USAGE`): what a steady state holds, give or take the keys expiring.
async fn seed_history(conn: &mut redis::aio::MultiplexedConnection, keys: &Keys, url: &str) -> u64 {
    let recorder = herald_store::history::Recorder::default();
    let now = SystemTime::now();
    for back in (0..86_400u64).step_by(10) {
        let at = now - Duration::from_secs(back);
        for series in Series::ALL {
            recorder.count(series, at);
        }
    }
    for back in (0..3600u64).step_by(60) {
        for bin in 0..=herald_store::history::MAX_BIN {
            let latency =
                Duration::from_secs_f64(herald_store::history::bin_upper_ms(bin) / 1000.0 * 0.99);
            recorder.otp_latency(latency, now - Duration::from_secs(back));
        }
    }
    let pool = herald_shared::redis_pool::create_pool(url, 1).unwrap();
    let mut pooled = pool.get().await.unwrap();
    recorder.flush(&mut pooled, keys).await.unwrap();
    let secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut total = 0;
    let mut all_keys = Vec::new();
    for hour in [secs / 3600 - 1, secs / 3600] {
        all_keys.push(keys.history_fine(hour));
        all_keys.push(keys.history_latency(hour));
    }
    for day in [secs / 86_400 - 1, secs / 86_400] {
        all_keys.push(keys.history_coarse(day));
    }
    for key in all_keys {
        let bytes: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .query_async(conn)
            .await
            .unwrap();
        total += bytes.unwrap_or(0);
    }
    total
}
