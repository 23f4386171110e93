//! Enqueue throughput into a local `redis-server` from one process.
//!
//! `cargo bench -p herald-producer` starts its own server (AOF on, as the tests run it) and
//! measures, for each fsync policy:
//! - `enqueue_batch` of pre-built OTP jobs, without and with idempotency keys;
//! - `bulk::enqueue_lines` over JSON Lines: decoding and validating every line included,
//!   which is what `herald-producer bulk` does.
//!
//! The target is at least 50,000 jobs/s. `JOBS=20000 cargo bench -p herald-producer` runs a
//! smaller round.

use std::io::Cursor;
use std::time::{Duration, Instant};

use deadpool_redis::redis;
use herald_shared::job::DEFAULT_OTP_VALIDITY;
use herald_shared::{Job, Lane};
use herald_store::Keys;
use herald_tests::RedisServer;
use producer::Producer;
use producer::bulk::{self, Observer, Rejected};

const DEFAULT_JOBS: usize = 200_000;

fn main() {
    let jobs = std::env::var("JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_JOBS);
    let server = RedisServer::start();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(run(&server, jobs));
}

async fn run(server: &RedisServer, n: usize) {
    let pool = herald_shared::redis_pool::connect(
        &server.url(),
        herald_shared::redis_pool::DEFAULT_POOL_SIZE,
    )
    .await
    .expect("the bench's redis-server");
    let producer = Producer::new(pool, Keys::new("bench").unwrap());
    // phonenumber loads its metadata on first use; keep that out of the figures.
    otp(0, false);

    println!("enqueue throughput, {n} jobs per round, one process, local redis-server");
    for fsync in ["always", "everysec"] {
        config_set(server, "appendfsync", fsync);
        println!("appendfsync {fsync}:");
        for keyed in [false, true] {
            flush(server);
            let started = Instant::now();
            let batch: Vec<Job> = (0..n).map(|i| otp(i, keyed)).collect();
            let built = started.elapsed();
            let started = Instant::now();
            let results = producer.enqueue_batch(batch).await.expect("enqueue");
            let enqueued = started.elapsed();
            assert!(
                results
                    .iter()
                    .all(|r| r.as_ref().is_ok_and(|r| !r.duplicate))
            );
            assert_eq!(stream_len(server, &producer), n);
            report(
                &format!(
                    "enqueue_batch, {}",
                    if keyed { "idempotency keys" } else { "no keys" }
                ),
                n,
                enqueued,
            );
            report("  (building and validating the jobs)", n, built);
        }

        flush(server);
        let lines: String = (0..n)
            .map(|i| {
                format!(
                    "{{\"kind\":\"otp\",\"phone\":\"+919999999999\",\"code\":\"{}\",\"idempotency_key\":\"bulk:{i}\"}}\n",
                    100_000 + i
                )
            })
            .collect();
        let started = Instant::now();
        let summary = bulk::enqueue_lines(&producer, Cursor::new(lines), &mut NoReport)
            .await
            .expect("bulk");
        let elapsed = started.elapsed();
        assert_eq!(summary.enqueued as usize, n);
        report(
            "bulk JSON Lines, idempotency keys (decode + validate + enqueue)",
            n,
            elapsed,
        );
    }
}

fn otp(i: usize, keyed: bool) -> Job {
    Job::otp(
        "+919999999999",
        &(100_000 + i).to_string(),
        DEFAULT_OTP_VALIDITY,
    )
    .expect("a valid OTP")
    .with_idempotency_key(keyed.then(|| format!("login:{i}")))
    .expect("a valid key")
}

fn report(label: &str, n: usize, elapsed: Duration) {
    println!(
        "  {label:<66} {:>9.0} jobs/s ({elapsed:.2?})",
        n as f64 / elapsed.as_secs_f64()
    );
}

struct NoReport;

impl Observer for NoReport {
    fn rejected(&mut self, rejected: &Rejected) {
        panic!("{rejected}");
    }
}

fn conn(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("a connection to the bench's redis-server")
}

fn config_set(server: &RedisServer, name: &str, value: &str) {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .exec(&mut conn(server))
        .expect("CONFIG SET");
}

fn flush(server: &RedisServer) {
    redis::cmd("FLUSHALL")
        .exec(&mut conn(server))
        .expect("FLUSHALL");
}

fn stream_len(server: &RedisServer, producer: &Producer) -> usize {
    redis::cmd("XLEN")
        .arg(producer.keys().lane(Lane::Otp))
        .query(&mut conn(server))
        .expect("XLEN")
}
