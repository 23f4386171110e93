//! Hardening: a job held by a live replica is never taken over, however long it waits in
//! hand for budget; and an entry that is not a job, met by the OTP-first peek while a
//! booking waits, is dead-lettered, never a panic.

use std::time::Duration;

use herald_shared::Lane;
use herald_store::keys::JOB_FIELD;
use herald_tests::scenario::{SandboxSetup, Scenario};
use herald_tests::wait_until;
use redis::AsyncCommands;

/// Observed before the fix: two replicas at `--rate 1/2s --claim-idle 2s --request-timeout
/// 1s` dead-lettered 12 of 14 bookings as poison with zero attempts: recovery claimed the
/// entries live replicas held in hand while they waited for budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardening_jobs_held_past_claim_idle_by_live_replicas_are_never_taken_over() {
    let mut s = Scenario::start(SandboxSetup {
        rate: Some("4/2s"),
        ..Default::default()
    })
    .await;
    let jobs = s.enqueue_bookings(0..12).await;
    let args = [
        "--rate",
        "4/2s",
        "--claim-idle",
        "2s",
        "--request-timeout",
        "1s",
        "--concurrency",
        "8",
    ];
    let a = s.worker("hold-a", &args);
    let b = s.worker("hold-b", &args);

    wait_until("every booking sent", Duration::from_secs(60), || async {
        s.status().await.total.sent >= jobs.len() as u64
    })
    .await;
    let dead = s.dead_letters().await;
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:?}");
    assert_eq!(s.accepted().len(), jobs.len(), "each booking sent once");
    assert_eq!(s.accepted_phones().len(), jobs.len());
    for worker in [&a, &b] {
        let log = worker.log();
        assert!(
            !log.contains("took over jobs left pending"),
            "a live replica's jobs were taken over:\n{log}"
        );
    }
}

/// Observed before the fix: an undecodable entry on the OTP lane, read by the OTP-first
/// peek while a booking waited for a token, hit `unreachable!` in the send task; the entry
/// stayed pending until recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardening_an_undecodable_otp_met_while_a_booking_waits_is_dead_lettered() {
    let mut s = Scenario::start(SandboxSetup {
        rate: Some("4/2s"),
        ..Default::default()
    })
    .await;
    s.enqueue_bookings(0..8).await;
    let w = s.worker("peek", &["--rate", "4/2s"]);
    wait_until("a booking sent", Duration::from_secs(20), || async {
        !s.accepted().is_empty()
    })
    .await;
    let entry: String = s
        .conn
        .xadd(
            s.keys.lane(Lane::Otp),
            "*",
            &[(JOB_FIELD, "{\"code\": 731904")],
        )
        .await
        .unwrap();
    wait_until(
        "the bad OTP entry dead-lettered",
        Duration::from_secs(10),
        || async { s.status().await.total.dead >= 1 },
    )
    .await;
    let letters = s.dead_letters().await;
    let letter = letters
        .iter()
        .find(|l| l.job_id == format!("entry:{entry}"))
        .unwrap();
    assert!(
        letter.reason.starts_with("undecodable"),
        "{}",
        letter.reason
    );
    let log = w.log();
    assert!(!log.contains("panicked"), "{log}");
}
