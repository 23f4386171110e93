//! The scheduled set at scale: figures for the README, not assertions.
//!
//! `cargo bench -p herald-pipeline --bench schedule` enqueues `BENCH_SCHEDULED` (default
//! 1,000,000) booking jobs scheduled a day ahead through the real producer (its enqueue
//! script), against a real redis-server, and prints:
//! 1. **bytes per scheduled job**: Redis's `used_memory` grown, divided by the jobs (the
//!    id in the scheduled set, the body stored once, the job's record);
//! 2. **moves per second**: every job made due at once, then moved onto its lane by the
//!    workers' own script (`promote_scheduled`, 500 a run) until none is left, timed, with
//!    the rate of the first and the last 10% of runs (O(log n) per move: the two agree).

use std::time::{Duration, Instant};

use herald_shared::job::Booking;
use herald_shared::{Job, Lane};
use herald_store::Keys;
use herald_tests::RedisServer;
use herald_tests::scenario::phone;

const NAMESPACE: &str = "bench";

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_SCHEDULED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let redis = RedisServer::start();
    let keys = Keys::new(NAMESPACE).unwrap();
    let pool = herald_shared::redis_pool::create_pool(&redis.url(), 4).unwrap();
    let producer = producer::Producer::new(pool.clone(), keys.clone());
    // No response timeout: re-scoring a million members takes a while.
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new().set_response_timeout(None),
        )
        .await
        .unwrap();
    let before = used_memory(&mut conn).await;

    let due = time::OffsetDateTime::now_utc() + Duration::from_secs(24 * 3600);
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let jobs: Vec<Job> = chunk
            .iter()
            .map(|&i| {
                Job::booking(Booking {
                    phone: phone(i),
                    booking_id: format!("B{i}"),
                    service: "Haircut".into(),
                    date: "2030-11-24".into(),
                    time: "10:30".into(),
                    image_url: None,
                })
                .unwrap()
                .scheduled("send_at", Some(due))
                .unwrap()
            })
            .collect();
        for result in producer.enqueue_batch(jobs).await.unwrap() {
            result.unwrap();
        }
    }
    let enqueue_secs = started.elapsed().as_secs_f64();
    let after = used_memory(&mut conn).await;
    let per_job = (after - before) as f64 / n as f64;
    println!(
        "scheduled {n} jobs in {enqueue_secs:.1} s ({:.0} enqueues/s); Redis used_memory grew {:.1} MB: {per_job:.0} bytes per scheduled job",
        n as f64 / enqueue_secs,
        (after - before) as f64 / 1e6,
    );

    // Every job due now: the same set, scored 0.
    let set = keys.scheduled(Lane::Booking);
    let _: () = redis::cmd("ZUNIONSTORE")
        .arg(&set)
        .arg(1)
        .arg(&set)
        .arg("WEIGHTS")
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut runs: Vec<(usize, Duration)> = Vec::new();
    let started = Instant::now();
    loop {
        let run = Instant::now();
        let (moved, _) = herald_pipeline::delayed::promote_scheduled(&pool, &keys, Lane::Booking)
            .await
            .unwrap();
        if moved == 0 {
            break;
        }
        runs.push((moved, run.elapsed()));
    }
    let total = started.elapsed().as_secs_f64();
    let moved: usize = runs.iter().map(|(m, _)| m).sum();
    let rate = |part: &[(usize, Duration)]| {
        let jobs: usize = part.iter().map(|(m, _)| m).sum();
        let secs: f64 = part.iter().map(|(_, d)| d.as_secs_f64()).sum();
        jobs as f64 / secs
    };
    let tenth = (runs.len() / 10).max(1);
    println!(
        "moved {moved} due jobs onto the lane in {total:.1} s: {:.0} moves/s ({:.0}/s over the first 10% of runs, {:.0}/s over the last 10%)",
        moved as f64 / total,
        rate(&runs[..tenth]),
        rate(&runs[runs.len() - tenth..]),
    );
    assert_eq!(moved, n, "every job moved once");
}

async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}
