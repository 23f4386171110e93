//! OTPs wait at most one token, whatever the number of replicas: requests from every
//! replica are paced together at the plan's rate, bookings leave OTPs the reserve they use,
//! and a flood of OTPs never stops bookings.

use std::time::Duration;

use herald_tests::scenario::{SandboxSetup, Scenario, booking, otp};
use herald_tests::wait_until;
use rand::{RngExt, SeedableRng};

/// Observed before the fix: three replicas at `--rate 30/6s` draining a booking backlog
/// spent each window in about W/3 and then all waited; OTPs enqueued meanwhile reached
/// Interakt after 2.2 to 3.2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otp_latency_three_replicas_behind_a_backlog_send_each_otp_within_half_a_second() {
    let mut s = Scenario::start_exclusive(SandboxSetup {
        rate: Some("30/6s"),
        ..Default::default()
    })
    .await;
    s.enqueue_bookings(0..200).await;
    let args = ["--rate", "30/6s", "--concurrency", "8"];
    let workers: Vec<_> = (0..3)
        .map(|i| s.worker(&format!("latency-{i}"), &args))
        .collect();
    let seed: u64 = std::env::var("HERALD_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("seed {seed} (HERALD_TEST_SEED replays it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    wait_until("the backlog started", Duration::from_secs(20), || async {
        s.accepted().len() >= 10
    })
    .await;
    let mut otps = Vec::new();
    for i in 0..4 {
        // At random moments, so some land right after a window was spent.
        tokio::time::sleep(Duration::from_millis(rng.random_range(500..3_000))).await;
        let job = otp(&format!("+9197{i:08}"), Duration::from_secs(600));
        s.enqueue(std::slice::from_ref(&job)).await;
        otps.push(job);
    }
    wait_until("every OTP sent", Duration::from_secs(20), || async {
        let phones = s.accepted_phones();
        otps.iter().all(|j| phones.contains(&j.phone()))
    })
    .await;

    let accepted = s.accepted();
    for job in &otps {
        let sent = accepted.iter().find(|m| m.e164() == job.phone()).unwrap();
        let enqueued_ms = (job.created_at.unix_timestamp_nanos() / 1_000_000) as u64;
        let wait = sent.received_ms.saturating_sub(enqueued_ms);
        eprintln!("OTP {} waited {wait} ms", job.phone());
        if wait >= 500 {
            for w in &workers {
                eprintln!("{}", w.log());
            }
        }
        assert!(wait < 500, "an OTP waited {wait} ms behind the backlog");
    }
    let stats = s.sandbox.stats();
    assert_eq!(stats.count(429), 0, "{stats:?}");
    assert!(stats.max_in_window <= 30, "{stats:?}");
}

/// Observed before the fix: OTPs always went first, so a flood of them (a mass login, an
/// OTP-pumping attack) held every booking back until the flood was over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otp_latency_a_flood_of_otps_never_stops_bookings() {
    let mut s = Scenario::start(SandboxSetup {
        rate: Some("20/2s"),
        ..Default::default()
    })
    .await;
    let flood: Vec<_> = (0..60)
        .map(|i| otp(&format!("+9196{i:08}"), Duration::from_secs(600)))
        .collect();
    s.enqueue(&flood).await;
    let bookings: Vec<_> = (0..4).map(booking).collect();
    s.enqueue(&bookings).await;
    let _w = s.worker("flood", &["--rate", "20/2s"]);

    wait_until("every booking sent", Duration::from_secs(40), || async {
        let phones = s.accepted_phones();
        bookings.iter().all(|j| phones.contains(&j.phone()))
    })
    .await;
    let accepted = s.accepted();
    let flood_phones: std::collections::HashSet<String> = flood.iter().map(|j| j.phone()).collect();
    let otps_before = accepted
        .iter()
        .take_while(|m| flood_phones.contains(&m.e164()))
        .count();
    let otps_sent = accepted
        .iter()
        .filter(|m| flood_phones.contains(&m.e164()))
        .count();
    eprintln!(
        "{otps_sent} of 60 OTPs sent by the time every booking was; {otps_before} before the first booking"
    );
    assert!(
        otps_sent < flood.len(),
        "the bookings waited for the whole flood of OTPs"
    );
}
