use std::time::Duration;

use herald_sandbox::SandboxConfig;
use serde_json::json;

use crate::support::*;

const UNAVAILABLE: &str = "Service temporarily unavailable";

fn scripted(rules: &[&str]) -> SandboxConfig {
    SandboxConfig {
        script: rules.iter().map(|r| r.parse().unwrap()).collect(),
        ..config()
    }
}

#[tokio::test]
async fn fail_rate_one_fails_everything_before_validation() {
    let h = harness(SandboxConfig {
        fail_rate: 1.0,
        ..config()
    })
    .await;
    for _ in 0..10 {
        h.send(&card_for(PHONE))
            .await
            .assert_refused(503, UNAVAILABLE);
    }
    // Faults come before validation: even an invalid body meets the 503.
    h.send(&json!({"countryCode": "+91"}))
        .await
        .assert_refused(503, UNAVAILABLE);
    let stats = h.stats().await;
    assert_eq!(
        (stats.requests, stats.count(503), stats.accepted),
        (11, 11, 0)
    );
}

#[tokio::test]
async fn fail_rate_zero_fails_nothing() {
    let h = harness(SandboxConfig {
        fail_rate: 0.0,
        ..config()
    })
    .await;
    for _ in 0..30 {
        h.send(&card_for(PHONE)).await.assert_accepted();
    }
    assert_eq!(h.stats().await.count(503), 0);
}

#[tokio::test]
async fn script_400_always_refuses_the_template() {
    let h = harness(scripted(&["+919000000001=400"])).await;
    for _ in 0..3 {
        h.send(&card_for("+919000000001"))
            .await
            .assert_refused(400, "Invalid template");
    }
    h.send(&card_for(PHONE)).await.assert_accepted();
}

#[tokio::test]
async fn script_500_always_fails() {
    let h = harness(scripted(&["+919000000002=500"])).await;
    for _ in 0..3 {
        h.send(&card_for("+919000000002"))
            .await
            .assert_refused(500, "Internal server error");
    }
}

#[tokio::test]
async fn script_fail_n_fails_the_first_n_then_recovers() {
    let h = harness(scripted(&["+919000000003=fail:2"])).await;
    let body = card_for("+919000000003");
    h.send(&body).await.assert_refused(503, UNAVAILABLE);
    h.send(&body).await.assert_refused(503, UNAVAILABLE);
    let id = h.send(&body).await.assert_accepted();
    h.send(&body).await.assert_accepted();
    assert_eq!(h.sandbox.messages()[0].id.to_string(), id);
}

#[tokio::test]
async fn script_429_n_limits_the_first_n_with_retry_after() {
    let h = harness(scripted(&["+919000000004=429:1"])).await;
    let body = card_for("+919000000004");
    let limited = h.send(&body).await;
    limited.assert_refused(429, RATE_LIMITED);
    assert_eq!(limited.headers["retry-after"], "1");
    h.send(&body).await.assert_accepted();
}

#[tokio::test]
async fn script_false_answers_200_with_result_false() {
    let h = harness(scripted(&["+919000000005=false"])).await;
    for _ in 0..2 {
        h.send(&card_for("+919000000005"))
            .await
            .assert_refused(200, "Rejected by provider");
    }
    let stats = h.stats().await;
    assert_eq!((stats.count(200), stats.accepted), (2, 0));
    assert!(h.messages().await.is_empty(), "a refusal is not a message");
}

#[tokio::test]
async fn script_slow_delays_only_that_phone() {
    let h = harness(scripted(&["+919000000006=slow:300ms"])).await;
    let slow = h.send(&card_for("+919000000006")).await;
    slow.assert_accepted();
    assert!(slow.elapsed >= Duration::from_millis(300), "{slow:?}");
}

#[tokio::test]
async fn a_client_that_times_out_on_a_slow_answer_still_had_its_message_queued() {
    let h = harness(scripted(&["+919000000007=slow:30s"])).await;
    let err = h
        .client
        .post(h.sandbox.send_url())
        .header("Authorization", format!("Basic {KEY}"))
        .json(&card_for("+919000000007"))
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .expect_err("the answer comes too late");
    assert!(err.is_timeout(), "{err}");
    // Accepted on arrival, like Interakt queueing a request whose answer never arrives.
    let messages = h.messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].e164(), "+919000000007");
}

#[tokio::test]
async fn latency_delays_every_answer_of_the_send_route() {
    let h = harness(SandboxConfig {
        latency: Duration::from_millis(150),
        ..config()
    })
    .await;
    let accepted = h.send(&card_for(PHONE)).await;
    accepted.assert_accepted();
    assert!(
        accepted.elapsed >= Duration::from_millis(150),
        "{accepted:?}"
    );
    let unauthorized = h
        .post(
            "/v1/public/rcs/message/",
            None,
            serde_json::to_vec(&card_for(PHONE)).unwrap(),
        )
        .await;
    assert_eq!(unauthorized.status, 401);
    assert!(unauthorized.elapsed >= Duration::from_millis(150));
}

#[tokio::test]
async fn scripted_phones_are_matched_however_the_body_splits_them() {
    let h = harness(scripted(&["+91 90000 00008=400"])).await;
    let mut body = card_for("+919000000008");
    body["phoneNumber"] = json!("90000 00008");
    h.send(&body).await.assert_refused(400, "Invalid template");
}
