//! Hardening: an OTP's code is a secret. It never reaches a log, a dead letter's reason or
//! `raw`, or any `dlq` output, even when the entry does not decode; and a dead letter keeps
//! it no longer than the OTP's deadline.

use std::time::Duration;

use herald_shared::Lane;
use herald_store::keys::JOB_FIELD;
use herald_tests::scenario::{SandboxSetup, Scenario, otp};
use herald_tests::wait_until;
use redis::AsyncCommands;

/// Observed before the fix: an OTP job whose code is a JSON integer put the code into the
/// WARN log, `dlq list` and the timeline; `dlq show` printed `raw` with the code and the
/// full phone number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_a_code_in_an_undecodable_entry_never_reaches_logs_letters_or_dlq_output() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let job = otp("+919000000001", Duration::from_secs(600)).to_json();
    let raw = job.replace(r#""123456""#, "731904");
    assert_ne!(raw, job);
    let entry: String = s
        .conn
        .xadd(s.keys.lane(Lane::Otp), "*", &[(JOB_FIELD, raw)])
        .await
        .unwrap();
    let w = s.worker("secrets", &[]);
    wait_until(
        "the entry dead-lettered",
        Duration::from_secs(15),
        || async { s.status().await.total.dead == 1 },
    )
    .await;
    let id = format!("entry:{entry}");
    let stored: String = s.conn.hget(s.keys.dead(), &id).await.unwrap();
    let mut outputs = vec![("the stored dead letter", stored), ("the log", w.log())];
    for args in [
        vec!["dlq", "list"],
        vec!["dlq", "list", "--json"],
        vec!["dlq", "show", id.as_str()],
        vec!["track", id.as_str()],
    ] {
        let out = s.run_worker_command(&args);
        outputs.push((
            "a dlq or track output",
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ));
    }
    for (what, text) in outputs {
        assert!(!text.contains("731904"), "the code in {what}:\n{text}");
        assert!(
            !text.contains("9000000001"),
            "the whole phone in {what}:\n{text}"
        );
    }
}

/// Observed before the fix: dead letters kept OTP codes in plain text forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_a_dead_otp_keeps_its_code_only_until_its_deadline_and_is_then_not_replayed() {
    let mut s = Scenario::start(SandboxSetup {
        script: vec!["+919000000002=400"],
        ..Default::default()
    })
    .await;
    let job = otp("+919000000002", Duration::from_secs(3));
    s.enqueue(std::slice::from_ref(&job)).await;
    let _w = s.worker("erase", &[]);
    let id = job.id.to_string();
    wait_until("the OTP dead-lettered", Duration::from_secs(15), || async {
        s.status().await.total.dead == 1
    })
    .await;
    let before: String = s.conn.hget(s.keys.dead(), &id).await.unwrap();
    if !job.is_expired(time::OffsetDateTime::now_utc()) {
        assert!(
            before.contains("123456"),
            "kept until the deadline, for a replay: {before}"
        );
    }
    let conn = s.conn.clone();
    wait_until(
        "the code erased after the deadline",
        Duration::from_secs(20),
        || {
            let mut conn = conn.clone();
            let key = s.keys.dead();
            let id = id.clone();
            async move {
                let json: String = conn.hget(key, id).await.unwrap();
                !json.contains("123456") && json.contains("[erased]")
            }
        },
    )
    .await;
    let out = s.run_worker_command(&["dlq", "replay", &id, "--extend", "10m"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("erased"), "{text}");
}
