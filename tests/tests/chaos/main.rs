//! The chaos suite: real `herald-worker run` replicas, a real redis-server and the sandbox
//! as Interakt, disrupted at random moments drawn from a seed, and one check of every
//! promise at the end ([`invariants`]).
//!
//! Each test prints its seed first; `HERALD_CHAOS_SEED=N` replays its choices exactly (what
//! is disrupted, when, for how long, which phones meet which fault). The processes' timing
//! is the machine's, so a replay repeats the plan, not every interleaving. Scenarios run one
//! at a time (they measure requests per window) and each is bounded: a run that does not
//! settle in time is checked as it stands, and the check says what is stuck where.
//!
//! - `replicas`: replicas SIGKILLed, SIGSTOPped and SIGCONTed at random moments.
//! - `claim_idle`: live replicas holding jobs longer than `--claim-idle` at a low rate.
//! - `redis_faults`: Redis stopped and restarted; connections dropped, stalled and refused by
//!   a proxy ([`herald_tests::TcpProxy`]).
//! - `tenants`: several tenants on all four lanes while replicas die and freeze.
//! - `interakt_faults`: 503s, slow answers, 429s with and without `Retry-After` (one of
//!   them huge), and a real limit below the configured one, also with every 429 saying
//!   `Retry-After: 100000000` (the pause probed).
//! - `interakt_paths`: the way to Interakt through a proxy: new connections slow to come
//!   up and dropped at random, and a bad upstream answering with huge bodies.

mod claim_idle;
mod fleet;
mod interakt_faults;
mod interakt_paths;
mod invariants;
mod redis_faults;
mod replicas;
mod seed;
mod tenants;

use std::time::Duration;

use herald_sandbox::SandboxConfig;
use herald_shared::Job;
use herald_tests::TEST_API_KEY;
use herald_tests::scenario::{Scenario, booking, otp, phone};
use rand::RngExt;
use rand::rngs::StdRng;

/// Every replica's `--shutdown-grace` in the suite: short, so the final SIGTERM is quick.
pub const GRACE: Duration = Duration::from_secs(5);

/// Bookings for `phone(i)`, i in `range`.
pub fn bookings(range: std::ops::Range<usize>) -> Vec<Job> {
    range.map(booking).collect()
}

/// OTPs for `phone(i)`, i in `range` (keep it apart from the bookings'), each valid for a
/// duration drawn from `valid_ms`.
pub fn otps(
    range: std::ops::Range<usize>,
    rng: &mut StdRng,
    valid_ms: std::ops::Range<u64>,
) -> Vec<Job> {
    range
        .map(|i| {
            otp(
                &phone(i),
                Duration::from_millis(rng.random_range(valid_ms.clone())),
            )
        })
        .collect()
}

/// A scenario of its own (no other test running) whose stand-in enforces `rate` strictly
/// and answers after `latency`.
pub async fn stand_in(rate: &str, latency: Duration) -> Scenario {
    stand_in_scripted(rate, latency, &[]).await
}

/// [`stand_in`], with some phones scripted (`PHONE=RULE`, as `herald-sandbox --script`
/// takes them).
pub async fn stand_in_scripted(rate: &str, latency: Duration, scripts: &[String]) -> Scenario {
    Scenario::start_exclusive_with(SandboxConfig {
        rate: Some(rate.parse().expect("a rate")),
        latency,
        script: scripts
            .iter()
            .map(|s| s.parse().expect("a script rule"))
            .collect(),
        ..SandboxConfig::new(TEST_API_KEY)
    })
    .await
}

/// The backlog of the disruption scenarios, enqueued and expected sent: 60 bookings and 10
/// OTPs valid for 60 to 90 s.
pub async fn enqueue_backlog(s: &mut Scenario, run: &mut invariants::Run, rng: &mut StdRng) {
    let jobs = [bookings(0..60), otps(1000..1010, rng, 60_000..90_000)].concat();
    s.enqueue(&jobs).await;
    run.expect_sent(&jobs);
}

/// The replicas' flags in the disruption scenarios: `--claim-idle 3s`, so what a dead or
/// frozen replica held moves on within the run.
pub fn disrupted_replica_args(rate: &'static str) -> [&'static str; 10] {
    [
        "--rate",
        rate,
        "--concurrency",
        "4",
        "--claim-idle",
        "3s",
        "--request-timeout",
        "1s",
        "--shutdown-grace",
        "5s",
    ]
}
