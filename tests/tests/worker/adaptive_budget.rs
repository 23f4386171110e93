//! Hardening: the budget adapts to an API key that others spend too. Interakt's real limit
//! is half the configured rate (another service spends the rest): every job is still sent,
//! none is dead-lettered for 429s, an OTP enqueued behind the backlog reaches Interakt
//! within 2 s, and fewer than 10% of requests get 429.

use std::time::Duration;

use herald_tests::scenario::{SandboxSetup, Scenario, otp};
use herald_tests::wait_until;

/// Observed before the fix: every 429 of a burst lengthened the shared pause (eleven 429s of
/// one burst gave a 5-minute pause), and the configured rate was tried again and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_budget_a_key_with_half_the_configured_limit_still_sends_everything() {
    let mut s = Scenario::start_exclusive(SandboxSetup {
        rate: Some("10/2s"),
        ..Default::default()
    })
    .await;
    let bookings = 50;
    s.enqueue_bookings(0..bookings).await;
    let args = ["--rate", "20/2s", "--backoff-base", "200ms"];
    let _a = s.worker("adaptive-a", &args);
    let _b = s.worker("adaptive-b", &args);

    wait_until("the first 429", Duration::from_secs(20), || async {
        s.sandbox.stats().count(429) > 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut otps = Vec::new();
    for i in 0..3 {
        let job = otp(&format!("+9195{i:08}"), Duration::from_secs(600));
        s.enqueue(std::slice::from_ref(&job)).await;
        otps.push(job);
        tokio::time::sleep(Duration::from_millis(1_700)).await;
    }
    let total = bookings + otps.len();
    wait_until("every job sent", Duration::from_secs(60), || async {
        s.accepted_phones().len() >= total
    })
    .await;
    s.wait_drained(Duration::from_secs(10)).await;

    assert_eq!(
        s.status().await.total.dead,
        0,
        "{:?}",
        s.dead_letters().await
    );
    let accepted = s.accepted();
    for job in &otps {
        let sent = accepted.iter().find(|m| m.e164() == job.phone()).unwrap();
        let enqueued_ms = (job.created_at.unix_timestamp_nanos() / 1_000_000) as u64;
        let wait = sent.received_ms.saturating_sub(enqueued_ms);
        eprintln!("OTP {} waited {wait} ms", job.phone());
        assert!(wait < 2_000, "an OTP waited {wait} ms behind the backlog");
    }
    let stats = s.sandbox.stats();
    let limited = stats.count(429);
    eprintln!("{limited} of {} requests got 429", stats.requests);
    assert!(
        (limited as f64) < 0.10 * stats.requests as f64,
        "{limited} of {} requests got 429",
        stats.requests
    );
}
