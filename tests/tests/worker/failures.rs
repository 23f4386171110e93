//! Guarantee 4: transient failures are retried up to --max-attempts then dead-lettered;
//! permanent ones are dead-lettered at once with status and body; a waiting retry never
//! blocks other jobs.

use std::time::Duration;

use herald_tests::wait_until;

use herald_tests::scenario::{SandboxSetup, Scenario, booking, otp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_4_transient_retry_permanent_dead_letter_and_no_blocking() {
    let mut s = Scenario::start(SandboxSetup {
        script: vec![
            "+919000000001=fail:2",
            "+919000000002=500",
            "+919000000003=400",
            "+919000000004=false",
        ],
        ..Default::default()
    })
    .await;
    let flaky = otp("+919000000001", Duration::from_secs(600));
    let broken = otp("+919000000002", Duration::from_secs(600));
    let refused = otp("+919000000003", Duration::from_secs(600));
    let rejected = otp("+919000000004", Duration::from_secs(600));
    s.enqueue(&[
        flaky.clone(),
        broken.clone(),
        refused.clone(),
        rejected.clone(),
    ])
    .await;
    s.enqueue(&[booking(1)]).await;
    let _w = s.worker(
        "failures",
        &[
            "--rate",
            "100/1s",
            "--max-attempts",
            "3",
            "--backoff-base",
            "300ms",
            "--backoff-max",
            "1s",
        ],
    );

    wait_until(
        "three dead letters and two sends",
        Duration::from_secs(30),
        || async {
            let st = s.status().await;
            st.total.dead == 3 && st.total.sent == 2
        },
    )
    .await;

    let dead = s.dead_letters().await;
    let find = |id: uuid::Uuid| {
        dead.iter()
            .find(|d| d.job_id == id.to_string())
            .expect("dead letter")
    };

    let exhausted = find(broken.id);
    assert!(
        exhausted
            .reason
            .starts_with("exhausted: 3 attempts failed, last: HTTP 500"),
        "{}",
        exhausted.reason
    );
    let attempts = &exhausted.job.as_ref().unwrap().attempts;
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts
            .iter()
            .all(|a| a.status == Some(500) && a.outcome == herald_shared::job::Outcome::Transient)
    );
    assert_eq!(exhausted.consumer, "failures");

    let permanent = find(refused.id);
    assert!(
        permanent.reason.starts_with("permanent: HTTP 400:"),
        "{}",
        permanent.reason
    );
    assert!(
        permanent.reason.contains("Invalid template"),
        "the body is kept: {}",
        permanent.reason
    );
    assert_eq!(
        permanent.job.as_ref().unwrap().attempts.len(),
        1,
        "no retry of a permanent failure"
    );

    let result_false = find(rejected.id);
    assert!(
        result_false
            .reason
            .starts_with("permanent: result false: Rejected by provider"),
        "{}",
        result_false.reason
    );

    // The flaky OTP was sent on its third attempt; the booking queued behind it did not wait.
    let order: Vec<String> = s.accepted().iter().map(|m| m.e164()).collect();
    let flaky_at = order
        .iter()
        .position(|p| p == "+919000000001")
        .expect("flaky OTP sent in the end");
    let after_at = order
        .iter()
        .position(|p| *p == herald_tests::scenario::phone(1))
        .expect("booking sent");
    assert!(
        after_at < flaky_at,
        "a waiting retry blocked the job behind it"
    );
    assert_eq!(s.sandbox.stats().count(503), 2);
}
