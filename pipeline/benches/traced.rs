//! The worker's throughput with tracing off and on (docs/tracing.md): figures, not
//! assertions.
//!
//! `cargo bench -p herald-pipeline --bench traced` drains `JOBS` bookings (default 20,000)
//! with one real `herald-worker` release replica into the in-process sandbox, `ROUNDS` times
//! (default 3) in each of three modes, taken in turn so a slow minute of the machine falls
//! on all of them: tracing off (no endpoint), on at 1% (`parentbased_traceidratio`, 0.01),
//! and on at 100%, exporting to a real OTLP/HTTP receiver in this process. Prints each
//! run's jobs/s, and per mode the median and its difference from off.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use herald_sandbox::SandboxConfig;
use herald_shared::Job;
use herald_store::Keys;
use herald_tests::otlp::{Behaviour, OtlpReceiver};
use herald_tests::scenario::booking;
use herald_tests::{RedisEnv, RedisServer, TEST_API_KEY, WorkerProcess};

const NAMESPACE: &str = "bench";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Off,
    OnePercent,
    All,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Off => "tracing off",
            Mode::OnePercent => "tracing on, 1% sampled",
            Mode::All => "tracing on, every job sampled",
        }
    }

    fn env(self, redis_url: &str, endpoint: &str) -> RedisEnv {
        let env = RedisEnv::url(redis_url);
        let on = |env: RedisEnv| env.with("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
        match self {
            Mode::Off => env,
            Mode::OnePercent => on(env)
                .with("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
                .with("OTEL_TRACES_SAMPLER_ARG", "0.01"),
            Mode::All => on(env),
        }
    }
}

/// One drain of `total` bookings in `mode`: jobs/s from the first accepted request on, and
/// the spans the receiver got.
async fn drain(mode: Mode, total: usize, receiver: &OtlpReceiver) -> (f64, usize) {
    let redis = RedisServer::start();
    let sandbox = herald_sandbox::start(
        SandboxConfig::new(TEST_API_KEY),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let jobs: Vec<Job> = (0..total).map(booking).collect();
    herald_tests::scenario::enqueue_jobs(&mut conn, &Keys::new(NAMESPACE).unwrap(), &jobs).await;
    let spans_before = receiver.spans().len();
    let _worker = WorkerProcess::spawn_in(
        &mode.env(&redis.url(), &receiver.endpoint()),
        NAMESPACE,
        &sandbox.base_url(),
        "bench-traced",
        &["--rate", "10000000/1s", "--concurrency", "128"],
    );
    let wait_for = |count: u64| {
        let sandbox = &sandbox;
        async move {
            let deadline = Instant::now() + Duration::from_secs(300);
            while sandbox.stats().accepted < count {
                assert!(
                    Instant::now() < deadline,
                    "timed out at {}",
                    sandbox.stats().accepted
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_for(1).await;
    let start = Instant::now();
    wait_for(total as u64).await;
    let rate = (total - 1) as f64 / start.elapsed().as_secs_f64();
    // The last batch is posted within the schedule delay (5 s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    (rate, receiver.spans().len() - spans_before)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::var("JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(20_000);
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let receiver = OtlpReceiver::start(Behaviour::Accept).await;
    let modes = [Mode::Off, Mode::OnePercent, Mode::All];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for round in 1..=rounds {
        for (i, mode) in modes.iter().enumerate() {
            let (rate, spans) = drain(*mode, total, &receiver).await;
            println!(
                "round {round}: {}: {rate:.0} jobs/s ({total} bookings, {spans} spans exported)",
                mode.label()
            );
            rates[i].push(rate);
        }
    }
    let off = median(&mut rates[0].clone());
    for (i, mode) in modes.iter().enumerate() {
        let m = median(&mut rates[i]);
        println!(
            "{}: median {m:.0} jobs/s of {rounds} runs ({:+.1}% against off)",
            mode.label(),
            (m / off - 1.0) * 100.0
        );
    }
}
