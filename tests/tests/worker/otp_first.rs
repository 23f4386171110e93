//! Guarantee 8: with 10,000 bookings queued, a new OTP is sent ahead of them; an OTP past
//! its deadline is never sent, it is dead-lettered as `expired`.

use std::time::Duration;

use herald_tests::wait_until;
use time::OffsetDateTime;

use herald_tests::scenario::{SandboxSetup, Scenario, otp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_8_an_otp_jumps_a_backlog_of_10000_bookings() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    s.enqueue_bookings(0..10_000).await;
    let _w = s.worker("otp-first", &["--rate", "50/1s", "--concurrency", "8"]);
    wait_until("bookings flowing", Duration::from_secs(20), || async {
        s.accepted().len() >= 25
    })
    .await;

    let enqueued_at = OffsetDateTime::now_utc();
    s.enqueue(&[otp("+919000000001", Duration::from_secs(600))])
        .await;
    wait_until("the OTP sent", Duration::from_secs(10), || async {
        s.accepted().iter().any(|m| m.e164() == "+919000000001")
    })
    .await;

    let accepted = s.accepted();
    let otp_message = accepted
        .iter()
        .find(|m| m.e164() == "+919000000001")
        .unwrap();
    let latency = otp_message.received_at - enqueued_at;
    let overtaken_by = accepted
        .iter()
        .filter(|m| m.received_at > enqueued_at && m.received_at < otp_message.received_at)
        .count();
    eprintln!(
        "OTP sent {:.0} ms after enqueue, {overtaken_by} bookings in between",
        latency.as_seconds_f64() * 1000.0
    );
    // At 50/s a booking leaves every 20 ms: only the bookings already granted a token (at most
    // the concurrency) may go first.
    assert!(
        overtaken_by <= 8,
        "{overtaken_by} bookings went before the OTP"
    );
    assert!(
        s.status().await.total.ready > 9_000,
        "the OTP did not wait for the backlog"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_8_an_expired_otp_is_never_sent() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let job = otp("+919000000001", Duration::from_millis(300));
    let deadline = job.not_after.unwrap();
    s.enqueue(std::slice::from_ref(&job)).await;
    wait_until("the deadline passed", Duration::from_secs(5), || async {
        OffsetDateTime::now_utc() > deadline
    })
    .await;

    let _w = s.worker("expiry", &[]);
    wait_until("the OTP dead-lettered", Duration::from_secs(20), || async {
        s.status().await.total.dead == 1
    })
    .await;
    let dead = s.dead_letters().await;
    assert!(dead[0].reason.starts_with("expired"), "{}", dead[0].reason);
    assert!(s.accepted().is_empty(), "an expired OTP reached Interakt");
    assert_eq!(s.sandbox.stats().requests, 0);
}
