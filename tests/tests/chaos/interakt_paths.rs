//! The way to Interakt misbehaving: replicas reach the stand-in through a TCP proxy
//! ([`TcpProxy`]) that, at moments drawn from the seed, slows or breaks the path.
//!
//! - `chaos_slow_connections_to_interakt`: every new connection takes a seeded 0 to 700 ms
//!   to come up (the request waits in the proxy meanwhile), answers are slow for some
//!   phones, and every open connection is dropped now and then, so requests on new and on
//!   reused connections overtake each other. The stand-in enforces the workers' own rate:
//!   a request whose log entry left the window before Interakt saw it would be a 429 and a
//!   window over N.
//! - `chaos_a_bad_upstream_answers_huge_bodies`: for a seeded 1 to 3 s, Interakt's address
//!   answers every request with a 5xx or a 429 and a 200 MiB body (a misrouted load
//!   balancer's error pages: [`HugeAnswers`]), then the stand-in again. Replicas must stay
//!   small (under 40 MB), retry, and send every job once.

use std::time::Duration;

use herald_tests::proxy::http_addr;
use herald_tests::{HugeAnswers, TcpProxy, wait_until};
use rand::RngExt;
use rand::rngs::StdRng;
use tokio::time::Instant;

use crate::fleet::Fleet;
use crate::invariants::{Run, now_ms};
use crate::seed::Seed;
use crate::{bookings, otps};

/// Ten a second, over 2 s: the window lowers `--request-timeout` to 1.75 s to fit it (see
/// docs/budget.md), still above the slowest path here.
const RATE: &str = "20/2s";

/// The replicas' flags: a request timeout above the slowest path here (a 700 ms connection
/// and a 550 ms answer), so no request Interakt accepted is timed out and sent again.
const ARGS: [&str; 18] = [
    "--rate",
    RATE,
    "--concurrency",
    "4",
    "--request-timeout",
    "3s",
    "--claim-idle",
    "8s",
    "--backoff-base",
    "200ms",
    "--backoff-max",
    "2s",
    "--max-cooldown",
    "2s",
    "--max-attempts",
    "10",
    "--shutdown-grace",
    "5s",
];

/// One change to the path, at a seeded moment.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// New connections take this long to come up from now on.
    Delay(Duration),
    /// Every open connection is dropped: the next requests need new (slow) ones.
    Drop,
}

fn plan(rng: &mut StdRng) -> Vec<(Duration, Step)> {
    let mut at = 0;
    (0..rng.random_range(6..10))
        .map(|_| {
            at += rng.random_range(400..1_500);
            let step = if rng.random_bool(0.5) {
                Step::Drop
            } else {
                Step::Delay(Duration::from_millis(rng.random_range(0..700)))
            };
            (Duration::from_millis(at), step)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_slow_connections_to_interakt() {
    let seed = Seed::for_test("chaos_slow_connections_to_interakt");
    let mut rng = seed.rng();
    let booked = bookings(0..40);
    // The OTPs' phones are scripted now, from placeholders: the OTPs themselves are made
    // when they are enqueued (their deadline runs from then).
    let placeholders = otps(1000..1006, &mut rng, 1..2);
    let scripts: Vec<String> = booked
        .iter()
        .chain(&placeholders)
        .filter_map(|job| {
            let slow = rng.random_range(0..1_000);
            (slow < 300).then(|| format!("{}=slow:{}ms", job.phone(), 200 + slow))
        })
        .collect();
    let first_delay = Duration::from_millis(rng.random_range(300..700));
    let steps = plan(&mut rng);
    eprintln!("scripts: {scripts:?}; first delay {first_delay:?}; plan: {steps:?}");

    // Interakt enforces exactly the workers' rate.
    let mut s = crate::stand_in_scripted(RATE, Duration::from_millis(50), &scripts).await;
    let mut run = Run::new(&seed, RATE);
    s.enqueue(&booked).await;
    run.expect_sent(&booked);
    let proxy = TcpProxy::for_http(&s.sandbox.base_url()).await;
    proxy.delay_connects(first_delay);
    let mut fleet = Fleet::new(proxy.http_url(&s.sandbox.base_url()), &ARGS);
    let redis_url = s.redis.url();
    fleet.spawn("slow-path-a", &redis_url);
    fleet.spawn("slow-path-b", &redis_url);
    wait_until("the run under way", Duration::from_secs(30), || async {
        !s.accepted().is_empty()
    })
    .await;

    let start = Instant::now();
    for (i, &(at, step)) in steps.iter().enumerate() {
        tokio::time::sleep_until(start + at).await;
        match step {
            Step::Delay(delay) => proxy.delay_connects(delay),
            Step::Drop => {
                // A request Interakt accepted whose answer this cut off is sent again:
                // the one window the duplicate promise allows.
                proxy.drop_connections();
                let at = now_ms();
                run.disrupted("the path to Interakt dropped every connection", at, at);
            }
        }
        if i == steps.len() / 2 {
            let codes = otps(1000..1006, &mut rng, 30_000..60_000);
            s.enqueue(&codes).await;
            run.expect_sent(&codes);
        }
    }

    run.wait_settled(&s, Duration::from_secs(60)).await;
    run.finish(&s, &mut fleet).await;
}

/// The body of every answer of the bad upstream.
const HUGE: u64 = 200 << 20;
/// The most a replica may use at its peak meanwhile (as `bounded_answers.rs` requires).
const MEMORY_BOUND: u64 = 40_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_a_bad_upstream_answers_huge_bodies() {
    let seed = Seed::for_test("chaos_a_bad_upstream_answers_huge_bodies");
    let mut rng = seed.rng();
    let booked = bookings(0..30);
    let bad_for = Duration::from_millis(rng.random_range(1_000..3_000));
    eprintln!("the bad upstream answers for {bad_for:?}");

    let mut s = crate::stand_in(RATE, Duration::from_millis(20)).await;
    let mut run = Run::new(&seed, RATE);
    s.enqueue(&booked).await;
    run.expect_sent(&booked);
    let bad = HugeAnswers::start(HUGE, &[503, 502, 429, 500]).await;
    let proxy = TcpProxy::start(http_addr(&bad.base_url())).await;
    let mut fleet = Fleet::new(proxy.http_url(&s.sandbox.base_url()), &ARGS);
    let redis_url = s.redis.url();
    fleet.spawn("misrouted-a", &redis_url);
    fleet.spawn("misrouted-b", &redis_url);
    // Made once the replicas run (their deadline runs from now).
    let codes = otps(1000..1004, &mut rng, 60_000..90_000);
    s.enqueue(&codes).await;
    run.expect_sent(&codes);

    wait_until(
        "the bad upstream answering",
        Duration::from_secs(30),
        || async { bad.requests() > 0 },
    )
    .await;
    // The bad upstream's time is the scenario.
    tokio::time::sleep(bad_for).await;
    // The address serves Interakt again; what is open to the bad upstream is closed.
    proxy.redirect(http_addr(&s.sandbox.base_url()));
    proxy.drop_connections();
    eprintln!(
        "the bad upstream answered {} requests, {:.1} MiB of their bodies written",
        bad.requests(),
        bad.written() as f64 / 1_048_576.0
    );

    run.wait_settled(&s, Duration::from_secs(60)).await;
    // The high-water mark of each replica's resident memory, huge answers included.
    for replica in &fleet.replicas {
        let peak = replica.process.peak_rss().expect("the replica is running");
        assert!(
            peak < MEMORY_BOUND,
            "{}'s resident memory peaked at {peak} bytes (bound {MEMORY_BOUND})",
            replica.process.consumer
        );
    }
    run.finish(&s, &mut fleet).await;
}
