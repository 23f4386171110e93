//! Guarantee 3: a 429 is retried with backoff, honours Retry-After, never uses up the job's
//! failure attempts, and pauses every replica at once.

use std::time::Duration;

use herald_tests::wait_until;

use herald_tests::scenario::{SandboxSetup, Scenario, otp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_3_a_429_pauses_every_replica_and_costs_no_attempt() {
    // The OTP's phone gets 429 with `Retry-After: 1` three times, then succeeds.
    let mut s = Scenario::start_exclusive(SandboxSetup {
        script: vec!["+919000000001=429:3"],
        ..Default::default()
    })
    .await;
    s.enqueue(&[otp("+919000000001", Duration::from_secs(600))])
        .await;
    let bookings = 60;
    s.enqueue_bookings(0..bookings).await;
    // --max-attempts 1: were a 429 counted as a failure, the OTP would be dead at once.
    let args = [
        "--rate",
        "40/1s",
        "--max-attempts",
        "1",
        "--backoff-base",
        "100ms",
    ];
    let _a = s.worker("limited-a", &args);
    let _b = s.worker("limited-b", &args);

    wait_until(
        "the OTP and every booking sent",
        Duration::from_secs(30),
        || async { s.accepted().len() > bookings },
    )
    .await;
    s.wait_drained(Duration::from_secs(10)).await;

    let status = s.status().await;
    assert_eq!(
        status.total.dead,
        0,
        "a 429 must not dead-letter: {:?}",
        s.dead_letters().await
    );
    assert_eq!(s.sandbox.stats().count(429), 3);
    assert!(s.accepted_phones().contains("+919000000001"));

    // Both replicas had bookings to send; a pause of about Retry-After between two accepted
    // messages while bookings remained shows both of them waited, not only the one told.
    let times: Vec<u64> = s.accepted().iter().map(|m| m.received_ms).collect();
    let longest_gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(
        longest_gap >= 900,
        "no replica-wide pause after a 429 (longest gap {longest_gap} ms)"
    );
}
