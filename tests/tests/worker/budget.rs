//! Guarantees 1 and 2: the budget is shared by all replicas, never exceeded in any sliding
//! window, and used to the full when there is a backlog.

use std::time::Duration;

use herald_tests::scenario::{NAMESPACE, SandboxSetup, Scenario, otp};
use herald_tests::{TcpProxy, WorkerProcess, wait_until};

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
    let _workers: Vec<_> = (0..2)
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

/// Guarantee 1 with slow new connections: each new connection to Interakt takes 600 ms to
/// come up (a slow DNS, TCP or TLS handshake; here a proxy that holds the request meanwhile)
/// and answers take 1.5 s, so a request reaches Interakt long after its grant, and requests
/// on new and on reused connections overtake each other. A request counts in the shared log
/// from its grant until its answer, so Interakt still never sees more than N in a window.
/// The window (1 s) is shorter than the request timeout plus the margin, so each replica
/// lowers its timeout to 900 ms and warns (issue 26): every request here is given up before
/// its answer, the hardest case for the log, as its entry must hold its place however the
/// request ends. The margin is 100 ms (`--rate-margin`, one tuned to a fast network): six runs of six
/// before the fix (an entry in flight counted from its grant plus the margin only, and left
/// the log before the answer) saw 6 or 7 requests in a window of 5, and 429s; with the
/// default 250 ms, four of five did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_1_slow_new_connections_never_put_more_than_n_in_a_window() {
    const N: u64 = 5;
    let mut s = Scenario::start_exclusive(SandboxSetup {
        rate: Some("5/1s"),
        latency: Duration::from_millis(1_500),
        ..Default::default()
    })
    .await;
    let total = 30;
    s.enqueue_bookings(0..total).await;
    let proxy = TcpProxy::for_http(&s.sandbox.base_url()).await;
    proxy.delay_connects(Duration::from_millis(600));
    let base_url = proxy.http_url(&s.sandbox.base_url());
    let args = [
        "--rate",
        "5/1s",
        "--concurrency",
        "8",
        "--rate-margin",
        "100ms",
    ];
    let workers: Vec<_> = (0..2)
        .map(|i| {
            WorkerProcess::spawn(
                &s.redis.url(),
                NAMESPACE,
                &base_url,
                &format!("slow-connections-{i}"),
                &args,
            )
        })
        .collect();

    // The 1 s window lowers each replica's request timeout to 900 ms (the window less the
    // margin; docs/budget.md): every request is given up before its answer, and retried.
    // What is under test is what reaches Interakt, answered or not.
    wait_until(
        "a request for every booking at Interakt",
        Duration::from_secs(60),
        || async { s.sandbox.stats().requests >= total as u64 },
    )
    .await;
    for w in &workers {
        let log = w.log();
        assert!(
            log.contains("the request timeout is lowered to fit it") && log.contains("900ms"),
            "the replica warns that the timeout was lowered:\n{log}"
        );
    }
    let stats = s.sandbox.stats();
    eprintln!(
        "{} requests, most in any 1 s window {}, {} answered 429",
        stats.requests,
        stats.max_in_window,
        stats.count(429)
    );
    assert!(
        stats.max_in_window <= N,
        "{} requests reached Interakt within one 1 s window; the limit is {N}",
        stats.max_in_window
    );
    assert_eq!(stats.count(429), 0, "{stats:?}");
}

/// Guarantee 2 with a reserve that follows demand (issue 26, part 5): three replicas drain a
/// booking-only backlog at 300/6s (Growth's N, compressed) against a stand-in enforcing the
/// same limit. With no OTP seen, bookings leave one token of each window, not the whole
/// 5% reserve: every window gets more than the N less the reserve the old rule allowed
/// (285 of 300, 95%; it saw 285, 256 and 284). The figure itself (299 of 300 on an idle
/// machine, 296 to 299 on a loaded one) is the paused-clock test's and the benchmark's to
/// show (`the_otp_reserve_follows_the_otps_seen_and_a_booking_backlog_uses_99_percent`,
/// `otp_latency`'s `BENCH_QUIET`), not a timed assert's. The first OTP after that quiet
/// stretch finds the token left and goes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_2_a_booking_backlog_takes_the_unused_reserve_and_the_first_otp_goes_at_once() {
    const N: usize = 300;
    const W_MS: u64 = 6_000;
    let mut s = Scenario::start_exclusive(SandboxSetup {
        rate: Some("300/6s"),
        ..Default::default()
    })
    .await;
    s.enqueue_bookings(0..1_500).await;
    let args = ["--rate", "300/6s", "--concurrency", "8"];
    let _workers: Vec<_> = (0..3)
        .map(|i| s.worker(&format!("full-{i}"), &args))
        .collect();

    // Three whole windows after the first request.
    wait_until(
        "four windows of sending",
        Duration::from_secs(60),
        || async {
            let times: Vec<u64> = s.accepted().iter().map(|m| m.received_ms).collect();
            times.last().is_some_and(|last| last - times[0] >= 4 * W_MS)
        },
    )
    .await;
    let times: Vec<u64> = s.accepted().iter().map(|m| m.received_ms).collect();
    let t0 = times[0];
    let per_window: Vec<usize> = (0..3)
        .map(|k| {
            let (from, to) = (t0 + k * W_MS, t0 + (k + 1) * W_MS);
            times.iter().filter(|&&t| (from..to).contains(&t)).count()
        })
        .collect();
    eprintln!("bookings per {W_MS} ms window: {per_window:?} of {N}");
    // The old rule: bookings never took the last 5% (15 tokens) of a window.
    let old_rule = N - 15;
    for (k, &used) in per_window.iter().enumerate() {
        assert!(
            used > old_rule,
            "window {k}: {used} of {N}, no more than bookings had when they left the whole reserve ({per_window:?})"
        );
    }

    let code = otp("+919400000001", Duration::from_secs(600));
    s.enqueue(std::slice::from_ref(&code)).await;
    wait_until("the OTP sent", Duration::from_secs(10), || async {
        s.accepted_phones().contains(&code.phone())
    })
    .await;
    let accepted = s.accepted();
    let sent = accepted.iter().find(|m| m.e164() == code.phone()).unwrap();
    let wait = sent
        .received_ms
        .saturating_sub((code.created_at.unix_timestamp_nanos() / 1_000_000) as u64);
    eprintln!("the first OTP waited {wait} ms");
    assert!(
        wait < 500,
        "the first OTP after a quiet stretch waited {wait} ms"
    );
    let stats = s.sandbox.stats();
    assert_eq!(stats.count(429), 0, "{stats:?}");
    assert!(stats.max_in_window as usize <= N, "{stats:?}");
}
