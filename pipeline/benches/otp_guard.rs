//! What the OTP guard costs and what it saves: figures for `docs/otp-guard.md`, not
//! assertions.
//!
//! `cargo bench -p herald-pipeline --bench otp_guard` runs, against a real redis-server,
//! the producer library (as `herald-producer` enqueues) and, for part 3, the in-process
//! sandbox and a real `herald-worker` release binary:
//! 1. **throughput**: `BENCH_JOBS` (50,000) OTPs to random numbers (all accepted), then as
//!    many jobs of which one in four is an OTP and the others booking confirmations,
//!    enqueued in pipelined batches of 1,000, with the guard off and on, three rounds each,
//!    alternating: jobs/s (the best round of each) and the guard's cost;
//! 2. **memory**: 100 prefixes blocked, then `BENCH_REFUSED` (1,000,000) OTPs to random
//!    numbers of those prefixes, every one refused: Redis `used_memory` and keys before
//!    and after;
//! 3. **flood at 300/min**: one worker at Growth's `300/1m`; for 40 s, every 400 ms a
//!    legitimate OTP (each to its own prefix) and 100 requests of a flood to random numbers
//!    of one prefix (10,000 in all), and a booking every 2 s (3 sends a second of the
//!    budget's 5 without the flood); the same schedule without
//!    the flood: how much of the flood reached Interakt, and the legitimate OTPs' and the
//!    bookings' enqueue-to-Interakt waits (p50, p99, max), with and without the flood.
//!
//! Knobs: `BENCH_JOBS`, `BENCH_REFUSED`, `BENCH_FLOOD=0` skips part 3.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use herald_sandbox::SandboxConfig;
use herald_shared::Job;
use herald_store::Keys;
use herald_store::guard::Guard;
use herald_tests::scenario::booking_to;
use herald_tests::{RedisServer, TEST_API_KEY, WorkerProcess};
use producer::{BatchResult, Producer};
use rand::{RngExt, SeedableRng};

const NAMESPACE: &str = "bench";

fn producer(redis: &RedisServer, guard: Option<Guard>) -> Producer {
    let pool = herald_shared::redis_pool::create_pool(&redis.url(), 4).unwrap();
    Producer::new(pool, Keys::new(NAMESPACE).unwrap()).with_guard(guard)
}

fn otp(phone: &str) -> Job {
    Job::otp(phone, "123456", Duration::from_secs(600)).unwrap()
}

/// A random Indian mobile number (`+919` and nine digits): a million prefixes.
fn random_number(rng: &mut impl RngExt) -> String {
    format!("+919{:09}", rng.random_range(0..1_000_000_000u64))
}

async fn info_field(redis: &RedisServer, section: &str, name: &str) -> u64 {
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn dbsize(redis: &RedisServer) -> u64 {
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap()
}

async fn flush(redis: &RedisServer) {
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
}

/// Enqueues `jobs` in batches of 1,000; counts what was enqueued and what refused.
async fn enqueue_all(producer: &Producer, jobs: Vec<Job>) -> (usize, usize) {
    let (mut enqueued, mut refused) = (0, 0);
    let mut jobs = jobs.into_iter().peekable();
    while jobs.peek().is_some() {
        let batch: Vec<Job> = jobs.by_ref().take(1_000).collect();
        let results: Vec<BatchResult> = producer.enqueue_batch(batch).await.unwrap();
        for result in results {
            match result {
                Ok(_) => enqueued += 1,
                Err(producer::enqueue::NotEnqueued::Guard(_)) => refused += 1,
                Err(other) => panic!("{other}"),
            }
        }
    }
    (enqueued, refused)
}

/// Part 1, for each workload: OTPs only (one OTP in `1`), and a mix where one job in four
/// is an OTP and the others booking confirmations (one in `4`).
async fn throughput(total: usize) {
    for (what, one_in) in [("OTPs to random numbers", 1), ("jobs, one OTP in four", 4)] {
        throughput_of(total, what, one_in).await;
    }
}

async fn throughput_of(total: usize, what: &str, one_in: usize) {
    let redis = RedisServer::start();
    let mut rng = rand::rngs::StdRng::seed_from_u64(29);
    let mut best: BTreeMap<&str, f64> = BTreeMap::new();
    for round in 0..3 {
        for (name, guard) in [("off", None), ("on", Some(Guard::default()))] {
            flush(&redis).await;
            let p = producer(&redis, guard);
            let jobs: Vec<Job> = (0..total)
                .map(|i| {
                    let phone = random_number(&mut rng);
                    if i % one_in == 0 {
                        otp(&phone)
                    } else {
                        booking_to(&phone, i)
                    }
                })
                .collect();
            let start = Instant::now();
            let (enqueued, refused) = enqueue_all(&p, jobs).await;
            let rate = total as f64 / start.elapsed().as_secs_f64();
            println!(
                "throughput ({what}) round {round}: guard {name:>3}: {rate:.0} jobs/s ({enqueued} enqueued, {refused} refused)"
            );
            let slot = best.entry(name).or_default();
            *slot = slot.max(rate);
        }
    }
    let (off, on) = (best["off"], best["on"]);
    println!(
        "throughput: {total} {what}, batches of 1,000, best of 3: guard off {off:.0}/s, on {on:.0}/s: the guard costs {:.1}% of the enqueue's throughput",
        (1.0 - on / off) * 100.0
    );
}

async fn memory(refused_total: usize) {
    let redis = RedisServer::start();
    let p = producer(&redis, Some(Guard::default()));
    let mut rng = rand::rngs::StdRng::seed_from_u64(2929);
    // 100 prefixes, each blocked by its 31st OTP.
    let prefixes: Vec<String> = (0..100).map(|i| format!("+9199{i:04}")).collect();
    let blocking: Vec<Job> = prefixes
        .iter()
        .flat_map(|prefix| (0..31).map(move |i| otp(&format!("{prefix}{i:04}"))))
        .collect();
    let (enqueued, refused) = enqueue_all(&p, blocking).await;
    assert_eq!((enqueued, refused), (3_000, 100));
    let before = info_field(&redis, "memory", "used_memory").await;
    let keys_before = dbsize(&redis).await;
    let start = Instant::now();
    let mut refused_count = 0;
    while refused_count < refused_total {
        let n = 100_000.min(refused_total - refused_count);
        let jobs: Vec<Job> = (0..n)
            .map(|_| {
                let prefix = &prefixes[rng.random_range(0..prefixes.len())];
                otp(&format!("{prefix}{:04}", rng.random_range(0..10_000)))
            })
            .collect();
        let (enqueued, refused) = enqueue_all(&p, jobs).await;
        assert_eq!(enqueued, 0);
        refused_count += refused;
    }
    let took = start.elapsed();
    let after = info_field(&redis, "memory", "used_memory").await;
    let keys_after = dbsize(&redis).await;
    println!(
        "memory: {refused_count} OTPs to random numbers of 100 blocked prefixes, every one refused, in {:.1} s ({:.0}/s): Redis used_memory {:.2} MiB before, {:.2} MiB after ({:+.1} KiB); keys {keys_before} before, {keys_after} after",
        took.as_secs_f64(),
        refused_count as f64 / took.as_secs_f64(),
        before as f64 / 1_048_576.0,
        after as f64 / 1_048_576.0,
        (after as f64 - before as f64) / 1024.0,
    );
}

/// When job `id` was enqueued, Unix ms (a UUID v7's time).
fn enqueued_ms(id: uuid::Uuid) -> u64 {
    let (secs, nanos) = id.get_timestamp().expect("a UUID v7").to_unix();
    secs * 1000 + u64::from(nanos) / 1_000_000
}

fn percentiles(mut waits: Vec<u64>) -> String {
    waits.sort_unstable();
    let at = |q: f64| waits[((waits.len() as f64 * q).ceil() as usize).clamp(1, waits.len()) - 1];
    format!(
        "p50 {} ms, p99 {} ms, max {} ms",
        at(0.5),
        at(0.99),
        waits.last().copied().unwrap_or(0)
    )
}

/// One run of part 3; returns the legitimate OTPs' waits, the bookings' waits, and how many
/// of the flood were sent.
async fn flood_run(with_flood: bool) -> (Vec<u64>, Vec<u64>, usize) {
    let redis = RedisServer::start();
    let mut config = SandboxConfig::new(TEST_API_KEY);
    config.rate = Some("300/1m".parse().unwrap());
    let sandbox = herald_sandbox::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let p = producer(&redis, Some(Guard::default()));
    let _worker = WorkerProcess::spawn(
        &redis.url(),
        NAMESPACE,
        &sandbox.base_url(),
        "bench-guard",
        &["--rate", "300/1m"],
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(300);
    let mut legit = BTreeMap::new();
    let mut bookings = BTreeMap::new();
    // Every 400 ms: the legitimate OTPs and the bookings ask 3 sends a second of the
    // budget's 5, so what the flood costs them is not hidden behind a backlog of their own.
    let mut tick = tokio::time::interval(Duration::from_millis(400));
    for i in 0..100 {
        tick.tick().await;
        if with_flood {
            for _ in 0..100 {
                let phone = format!("+91990000{:04}", rng.random_range(0..10_000));
                let _ = p.enqueue(otp(&phone)).await;
            }
        }
        let phone = format!("+9198{i:04}{:04}", 1000 + i);
        let id = p.enqueue(otp(&phone)).await.unwrap().job_id;
        legit.insert(phone, id);
        if i % 5 == 0 {
            let phone = format!("+9197{i:08}");
            let job = booking_to(&phone, i);
            bookings.insert(phone, p.enqueue(job).await.unwrap().job_id);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let sent: std::collections::BTreeSet<String> =
            sandbox.messages().iter().map(|m| m.e164()).collect();
        if legit
            .keys()
            .chain(bookings.keys())
            .all(|p| sent.contains(p))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not everything legitimate was sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Whatever of the flood is still queued gets its time to go.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let messages = sandbox.messages();
    let received: BTreeMap<String, u64> =
        messages.iter().map(|m| (m.e164(), m.received_ms)).collect();
    let waits = |jobs: &BTreeMap<String, uuid::Uuid>| {
        jobs.iter()
            .map(|(phone, id)| received[phone].saturating_sub(enqueued_ms(*id)))
            .collect::<Vec<u64>>()
    };
    let flood_sent = messages
        .iter()
        .filter(|m| m.e164().starts_with("+91990000"))
        .count();
    (waits(&legit), waits(&bookings), flood_sent)
}

async fn flood() {
    let (legit_alone, bookings_alone, _) = flood_run(false).await;
    let (legit_flood, bookings_flood, flood_sent) = flood_run(true).await;
    println!(
        "flood at 300/min: {flood_sent} of 10,000 flood OTPs reached Interakt (per-prefix limit 30); all 100 legitimate OTPs and 20 bookings sent"
    );
    println!(
        "flood at 300/min: legitimate OTPs' wait without the flood {}; with it {}",
        percentiles(legit_alone),
        percentiles(legit_flood)
    );
    println!(
        "flood at 300/min: bookings' wait without the flood {}; with it {}",
        percentiles(bookings_alone),
        percentiles(bookings_flood)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    herald_shared::phone::warm_up();
    let number = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    throughput(number("BENCH_JOBS", 50_000)).await;
    memory(number("BENCH_REFUSED", 1_000_000)).await;
    if std::env::var("BENCH_FLOOD").as_deref() != Ok("0") {
        flood().await;
    }
}
