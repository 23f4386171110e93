//! Interakt misbehaving. Which phones meet which fault is drawn from the seed (per-phone
//! scripts of the sandbox, so what each job meets does not depend on request order):
//!
//! - `chaos_interakt_misbehaves`: 503s (a few per phone, fewer than `--max-attempts`),
//!   slow answers (within `--request-timeout`), 429s with a `Retry-After` of 1 to 3 s, and
//!   a real limit below the configured one (the stand-in admits 6 per second, the workers
//!   are told 10: its 429s carry no `Retry-After`). OTPs have deadlines of a few seconds:
//!   they may expire (dead-lettered as such) but never be sent late.
//! - `chaos_a_huge_retry_after`: one or two phones get a 429 with `Retry-After: 100000000`
//!   (three years). Taken at its word it would freeze every replica; the workers run with
//!   `--max-cooldown 2s`, the longest pause they accept (a larger Retry-After is clamped
//!   to it), so the backlog must still drain and the OTPs must still end (sent in time, or
//!   expired).
//! - `chaos_a_long_retry_after_is_probed`: the real limit is half the configured rate and
//!   every 429 says `Retry-After: 100000000`; the workers keep the default `--max-cooldown`
//!   (30 s), so each pause would stop them 30 s, but it is probed every 2 s
//!   (`--probe-interval`): the backlog drains, and every OTP, early or enqueued right
//!   after a 429, is sent within its deadline (none may expire).

use std::time::Duration;

use herald_sandbox::SandboxConfig;
use herald_shared::Job;
use herald_tests::scenario::Scenario;
use herald_tests::{TEST_API_KEY, wait_until};
use rand::RngExt;
use rand::rngs::StdRng;

use crate::fleet::Fleet;
use crate::invariants::Run;
use crate::seed::Seed;
use crate::{bookings, otps, stand_in_scripted};

const RATE: &str = "10/1s";

/// A script for each job's phone, or none, drawn from the seed.
fn misbehaviour(rng: &mut StdRng, job: &Job) -> Option<String> {
    let rule = match rng.random_range(0..100) {
        0..15 => format!("fail:{}", rng.random_range(1..=3)),
        15..25 => format!(
            "429:{}:{}",
            rng.random_range(1..=2),
            rng.random_range(1..=3)
        ),
        // Well within the request timeout (750 ms: the 1 s window lowers --request-timeout to
        // fit it): a timed-out send that Interakt accepted would be a second send nothing
        // excuses.
        25..40 => format!("slow:{}ms", rng.random_range(200..500)),
        _ => return None,
    };
    Some(format!("{}={rule}", job.phone()))
}

fn worker_args(claim_idle: &'static str) -> Vec<&'static str> {
    vec![
        "--rate",
        RATE,
        "--concurrency",
        "4",
        "--request-timeout",
        "2s",
        "--claim-idle",
        claim_idle,
        "--backoff-base",
        "200ms",
        "--backoff-max",
        "2s",
        "--max-cooldown",
        "2s",
        "--max-attempts",
        "6",
        "--shutdown-grace",
        "5s",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_interakt_misbehaves() {
    let seed = Seed::for_test("chaos_interakt_misbehaves");
    let mut rng = seed.rng();
    let booked = bookings(0..20);
    // Phones of the OTPs enqueued later are scripted now, from placeholders of the same
    // phones: the OTP jobs themselves are created when they are enqueued (their deadline
    // runs from then).
    let early = otps(1000..1006, &mut rng, 3_000..10_000);
    let late_phones = otps(1006..1012, &mut rng, 3_000..10_000);
    let scripts: Vec<String> = booked
        .iter()
        .chain(&early)
        .chain(&late_phones)
        .filter_map(|job| misbehaviour(&mut rng, job))
        .collect();
    eprintln!("scripts: {scripts:?}");

    // The real limit: below the workers' 10/1s, over the same window.
    let mut s = stand_in_scripted("6/1s", Duration::from_millis(20), &scripts).await;
    let mut run = Run::new(&seed, RATE);
    s.enqueue(&early).await;
    s.enqueue(&booked).await;
    run.expect_sent(&booked);
    run.expect(&early, &["expired"]);

    // A claim-idle well above any pause here: these replicas never stop, so nothing of
    // theirs should be taken over.
    let mut fleet = Fleet::new(s.sandbox.base_url(), &worker_args("6s"));
    let redis_url = s.redis.url();
    fleet.spawn("faced-a", &redis_url);
    fleet.spawn("faced-b", &redis_url);

    // The second wave of OTPs arrives while the workers are being told 429.
    wait_until("a first 429", Duration::from_secs(30), || async {
        s.sandbox.stats().count(429) > 0
    })
    .await;
    let late = otps(1006..1012, &mut rng, 3_000..10_000);
    s.enqueue(&late).await;
    run.expect(&late, &["expired"]);

    run.wait_settled(&s, Duration::from_secs(40)).await;
    run.finish(&s, &mut fleet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_a_huge_retry_after() {
    let seed = Seed::for_test("chaos_a_huge_retry_after");
    let mut rng = seed.rng();
    let booked = bookings(0..20);
    // One or two bookings meet the huge Retry-After, once each.
    let mut scripts = Vec::new();
    for _ in 0..rng.random_range(1..=2) {
        let job = &booked[rng.random_range(0..booked.len())];
        let rule = format!("{}=429:1:100000000", job.phone());
        if !scripts.contains(&rule) {
            scripts.push(rule);
        }
    }
    eprintln!("scripts: {scripts:?}");

    let mut s = stand_in_scripted(RATE, Duration::from_millis(20), &scripts).await;
    let mut run = Run::new(&seed, RATE);
    s.enqueue(&booked).await;
    run.expect_sent(&booked);

    let mut fleet = Fleet::new(s.sandbox.base_url(), &worker_args("6s"));
    let redis_url = s.redis.url();
    fleet.spawn("told-to-wait-a", &redis_url);
    fleet.spawn("told-to-wait-b", &redis_url);

    // OTPs arrive right after the huge Retry-After was given: they must still be sent in
    // time, or dead-lettered as expired; never left waiting.
    wait_until(
        "the huge Retry-After given",
        Duration::from_secs(30),
        || async { s.sandbox.stats().count(429) > 0 },
    )
    .await;
    let codes = otps(1000..1006, &mut rng, 4_000..12_000);
    s.enqueue(&codes).await;
    run.expect(&codes, &["expired"]);

    run.wait_settled(&s, Duration::from_secs(25)).await;
    run.finish(&s, &mut fleet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_a_long_retry_after_is_probed() {
    let seed = Seed::for_test("chaos_a_long_retry_after_is_probed");
    let mut rng = seed.rng();
    let booked = bookings(0..40);
    let mut s = Scenario::start_exclusive_with(SandboxConfig {
        // The real limit: half the workers' 10/1s, and a 429 that says to wait 3 years.
        rate: Some("5/1s".parse().unwrap()),
        retry_after_secs: Some(100_000_000),
        latency: Duration::from_millis(20),
        ..SandboxConfig::new(TEST_API_KEY)
    })
    .await;
    let mut run = Run::new(&seed, RATE);
    s.enqueue(&booked).await;
    run.expect_sent(&booked);

    // The default --max-cooldown (30 s) and --probe-interval (2 s).
    let flags = worker_args("6s");
    let args: Vec<&str> = flags
        .chunks(2)
        .filter(|flag| flag[0] != "--max-cooldown")
        .flatten()
        .copied()
        .collect();
    let mut fleet = Fleet::new(s.sandbox.base_url(), &args);
    let redis_url = s.redis.url();
    fleet.spawn("probing-a", &redis_url);
    fleet.spawn("probing-b", &redis_url);
    // Made once the replicas run (their deadline runs from now).
    let early = otps(1000..1004, &mut rng, 20_000..40_000);
    s.enqueue(&early).await;
    run.expect_sent(&early);

    // More OTPs right after a 429 began a 30 s pause: the probes let them through.
    wait_until("a first 429", Duration::from_secs(30), || async {
        s.sandbox.stats().count(429) > 0
    })
    .await;
    let late = otps(1004..1008, &mut rng, 20_000..40_000);
    s.enqueue(&late).await;
    run.expect_sent(&late);

    run.wait_settled(&s, Duration::from_secs(60)).await;
    run.finish(&s, &mut fleet).await;
}
