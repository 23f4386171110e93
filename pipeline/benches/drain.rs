//! Worker benchmarks: figures for the README, not assertions.
//!
//! `cargo bench -p herald-pipeline --bench drain` runs, against a real redis-server and the
//! in-process sandbox, with a real `herald-worker` release binary:
//! 1. **throughput**: jobs/s one replica drains with no effective rate limit, and its peak RSS;
//! 2. **OTP latency**: enqueue-to-Interakt time of OTPs behind a 10,000-booking backlog at
//!    300/1m (Growth) and 6000/1m (an Enterprise key);
//! 3. **budget use** (`BENCH_BUDGET=1`, several minutes): the share of N used per window at
//!    300/1m and 600/1m with a backlog, and the peak requests seen in any sliding window.

use std::time::{Duration, Instant};

use herald_shared::Job;
use herald_store::Keys;
use herald_tests::scenario::booking;

#[path = "support/mod.rs"]
mod support;

use support::{NAMESPACE, setup, wait_for, worker};

async fn enqueue(conn: &mut redis::aio::MultiplexedConnection, jobs: &[Job]) {
    herald_tests::scenario::enqueue_jobs(conn, &Keys::new(NAMESPACE).unwrap(), jobs).await;
}

async fn throughput() {
    let mut s = setup(None).await;
    let total = std::env::var("JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(50_000);
    let jobs: Vec<Job> = (0..total).map(booking).collect();
    enqueue(&mut s.conn, &jobs).await;
    let w = worker(
        &s,
        "bench-throughput",
        &["--rate", "10000000/1s", "--concurrency", "128"],
    );
    // Time from the first accepted request, so process start-up is not counted.
    wait_for(&s, 1, Duration::from_secs(30)).await;
    let start = Instant::now();
    wait_for(&s, total, Duration::from_secs(300)).await;
    let took = start.elapsed();
    println!(
        "throughput: one replica drained {total} jobs in {:.2} s = {:.0} jobs/s (sandbox, Redis and worker on the same {} cores); peak RSS {:.1} MiB",
        took.as_secs_f64(),
        (total - 1) as f64 / took.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        w.peak_rss()
            .map_or(f64::NAN, |bytes| bytes as f64 / 1048576.0),
    );
}

/// OTPs enqueued one at a time (300 ms apart) while one replica drains 10,000 bookings at
/// `rate`: enqueue to the sandbox's receipt, p50 and p99 (nearest rank: of 50, the largest).
async fn otp_latency(rate: &str) {
    const OTPS: usize = 50;
    let mut s = setup(Some(rate)).await;
    enqueue(&mut s.conn, &(0..10_000).map(booking).collect::<Vec<_>>()).await;
    let _w = worker(&s, "bench-otp", &["--rate", rate]);
    wait_for(&s, 5, Duration::from_secs(30)).await;
    let mut latencies = Vec::new();
    for i in 0..OTPS {
        let phone = format!("+9190000000{i:02}");
        let job = Job::otp(&phone, "123456", Duration::from_secs(600)).unwrap();
        let sent_at = Instant::now();
        enqueue(&mut s.conn, &[job]).await;
        while !s
            .sandbox
            .messages()
            .iter()
            .rev()
            .take(200)
            .any(|m| m.e164() == phone)
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(sent_at.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    latencies.sort_by(f64::total_cmp);
    let rank = |p: f64| latencies[((p / 100.0 * OTPS as f64).ceil() as usize).clamp(1, OTPS) - 1];
    let left = 10_000 - s.sandbox.messages().len().saturating_sub(OTPS);
    println!(
        "OTP latency behind 10,000 bookings at {rate}: p50 {:.0} ms, p99 {:.0} ms ({OTPS} OTPs; {left} bookings still queued at the end)",
        rank(50.0),
        rank(99.0),
    );
}

async fn budget(rate: &str, n: usize, window: Duration, windows: usize) {
    let mut s = setup(Some(rate)).await;
    let total = n * (windows + 1);
    enqueue(&mut s.conn, &(0..total).map(booking).collect::<Vec<_>>()).await;
    let _replicas: Vec<_> = (0..3)
        .map(|i| worker(&s, &format!("bench-budget-{i}"), &["--rate", rate]))
        .collect();
    wait_for(&s, 1, Duration::from_secs(30)).await;
    tokio::time::sleep(window * windows as u32 + Duration::from_secs(1)).await;
    let times: Vec<u64> = s.sandbox.messages().iter().map(|m| m.received_ms).collect();
    let t0 = times[0];
    let w = window.as_millis() as u64;
    let per_window: Vec<usize> = (0..windows as u64)
        .map(|k| {
            times
                .iter()
                .filter(|&&t| t >= t0 + k * w && t < t0 + (k + 1) * w)
                .count()
        })
        .collect();
    let stats = s.sandbox.stats();
    let used = per_window.iter().sum::<usize>() as f64 / (windows * n) as f64;
    println!(
        "budget {rate} with 3 replicas: per window {per_window:?} = {:.1}% of N; most in any sliding window {} (limit {n}); 429s {}",
        used * 100.0,
        stats.max_in_window,
        stats.count(429)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    herald_shared::phone::warm_up();
    throughput().await;
    otp_latency("300/1m").await;
    otp_latency("6000/1m").await;
    if std::env::var_os("BENCH_BUDGET").is_some() {
        budget("300/1m", 300, Duration::from_secs(60), 2).await;
        budget("600/1m", 600, Duration::from_secs(60), 2).await;
    }
}
