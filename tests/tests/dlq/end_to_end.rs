//! A replayed job is sent by a worker: it gets a fresh attempt budget each time it is
//! replayed, and its whole history travels with it.

use std::time::Duration;

use herald_tests::scenario::{SandboxSetup, Scenario, otp};
use herald_tests::wait_until;

use crate::support::assert_exit;

const PHONE: &str = "+919000000001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_job_is_sent_with_a_fresh_budget_and_its_history_kept() {
    // Interakt fails the first five requests for this phone; the worker gives up after two.
    let mut s = Scenario::start(SandboxSetup {
        script: vec!["+919000000001=fail:5"],
        ..Default::default()
    })
    .await;
    let job = otp(PHONE, Duration::from_secs(600));
    let id = job.id.to_string();
    s.enqueue(std::slice::from_ref(&job)).await;
    let _worker = s.worker(
        "replayer",
        &[
            "--rate",
            "100/1s",
            "--max-attempts",
            "2",
            "--backoff-base",
            "50ms",
            "--backoff-max",
            "100ms",
        ],
    );
    let dead_with_attempts = |n: usize| {
        let mut conn = s.conn.clone();
        let key = s.keys.dead();
        let id = id.clone();
        async move {
            let json: Option<String> = redis::AsyncCommands::hget(&mut conn, key, &id)
                .await
                .unwrap();
            json.is_some_and(|json| {
                let letter: herald_store::dead_letter::DeadLetter =
                    serde_json::from_str(&json).unwrap();
                letter.job.unwrap().attempts.len() == n
            })
        }
    };

    wait_until("dead after two attempts", Duration::from_secs(20), || {
        dead_with_attempts(2)
    })
    .await;
    assert_exit(&s.run_worker_command(&["dlq", "replay", &id]), 0);

    // Had the two old failures still counted, the first new one would have exhausted it.
    wait_until(
        "dead again after two more attempts",
        Duration::from_secs(20),
        || dead_with_attempts(5),
    )
    .await;
    let letter = s.dead_letters().await.remove(0);
    assert_eq!(
        letter.reason,
        "exhausted: 2 attempts failed, last: HTTP 503"
    );
    let outcomes: Vec<&str> = letter
        .job
        .as_ref()
        .unwrap()
        .attempts
        .iter()
        .map(|a| a.outcome.as_str())
        .collect();
    assert_eq!(
        outcomes,
        [
            "transient",
            "transient",
            "replayed",
            "transient",
            "transient"
        ],
        "the whole history is kept"
    );

    // The fifth request fails, the sixth is accepted.
    assert_exit(&s.run_worker_command(&["dlq", "replay", &id]), 0);
    wait_until("the replayed OTP sent", Duration::from_secs(20), || async {
        s.accepted_phones().contains(PHONE)
    })
    .await;
    s.wait_drained(Duration::from_secs(10)).await;
    let status = s.status().await;
    assert_eq!((status.total.sent, status.total.dead), (1, 0));
    assert_eq!(s.accepted().len(), 1, "sent once");
    assert_eq!(s.sandbox.stats().count(503), 5);
}
