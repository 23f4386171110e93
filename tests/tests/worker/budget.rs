//! Guarantees 1 and 2: the budget is shared by all replicas, never exceeded in any sliding
//! window, and used to the full when there is a backlog.

use std::time::Duration;

use herald_tests::wait_until;

use herald_tests::scenario::{SandboxSetup, Scenario};

const N: usize = 60;
const W_MS: u64 = 3_000;
/// The default OTP reserve at N = 60 (5%), and the default margin at W = 3 s.
const RESERVE: usize = 3;
const MARGIN_MS: u64 = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_1_and_2_three_replicas_share_the_budget_and_use_it_fully() {
    // The sandbox enforces the same limit strictly: one request too many would get a 429.
    let mut s = Scenario::start_exclusive(SandboxSetup {
        rate: Some("60/3s"),
        ..Default::default()
    })
    .await;
    let total = 4 * N + 20;
    s.enqueue_bookings(0..total).await;
    let args = ["--rate", "60/3s", "--concurrency", "8"];
    let _workers: Vec<_> = (0..3)
        .map(|i| s.worker(&format!("budget-{i}"), &args))
        .collect();

    wait_until("every booking sent", Duration::from_secs(60), || async {
        s.accepted().len() >= total
    })
    .await;

    let stats = s.sandbox.stats();
    assert_eq!(
        stats.count(429),
        0,
        "Herald alone must never be rate-limited: {stats:?}"
    );
    assert!(
        stats.max_in_window as usize <= N,
        "{} requests reached Interakt within one {W_MS} ms window; the limit is {N}",
        stats.max_in_window
    );

    // Full use: over the first three windows of the run (backlog throughout), at least 97%
    // of what bookings may use on average: N less the OTP reserve (5% of N: 3) in each log
    // window of W plus the margin (250 ms), paced evenly.
    let times: Vec<u64> = s.accepted().iter().map(|m| m.received_ms).collect();
    let t0 = times[0];
    let in_first_three = times.iter().filter(|&&t| t < t0 + 3 * W_MS).count();
    let per_window = in_first_three as f64 / 3.0;
    let allowed = (N - RESERVE) as f64 * W_MS as f64 / (W_MS + MARGIN_MS) as f64;
    eprintln!(
        "full use: {per_window:.1} requests per {W_MS} ms window of {N} ({:.1}% of N, {:.1}% of the {allowed:.1} bookings may use)",
        100.0 * per_window / N as f64,
        100.0 * per_window / allowed
    );
    assert!(
        per_window >= 0.97 * allowed,
        "only {per_window:.1} of {N} per window used (bookings may use {allowed:.1})"
    );
    assert_eq!(s.accepted_phones().len(), total, "every booking sent once");
}
