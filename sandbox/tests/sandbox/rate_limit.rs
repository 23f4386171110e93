use std::time::Duration;

use herald_sandbox::SandboxConfig;
use tokio::time::Instant;

use crate::support::*;

fn limited(rate: &str) -> SandboxConfig {
    SandboxConfig {
        rate: Some(rate.parse().unwrap()),
        ..config()
    }
}

#[tokio::test]
async fn a_burst_gets_exactly_n_through_then_the_window_slides_open() {
    let h = harness(limited("5/1s")).await;
    let body = card_for(PHONE);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let answer = h.send(&body).await;
        if answer.status == 429 {
            answer.assert_refused(429, RATE_LIMITED);
            assert!(
                !answer.headers.contains_key("retry-after"),
                "Interakt documents no Retry-After: {answer:?}"
            );
        }
        statuses.push(answer.status);
    }
    let burst_end = Instant::now();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    assert_eq!(h.sandbox.messages().len(), 5);

    // Every admitted request arrived before `burst_end`, so all have left the window one
    // period later: the condition is the clock itself, hence a sleep to that exact instant.
    tokio::time::sleep_until(burst_end + Duration::from_secs(1)).await;
    for _ in 0..5 {
        h.send(&body).await.assert_accepted();
    }
    h.send(&body).await.assert_refused(429, RATE_LIMITED);

    let stats = h.stats().await;
    assert_eq!(stats.requests, 14);
    assert_eq!(stats.count(200), 10);
    assert_eq!(stats.count(429), 4);
    assert_eq!(stats.by_status.len(), 2);
    assert_eq!(stats.accepted, 10);
    assert_eq!(
        stats.max_in_window, 8,
        "the whole first burst, 429s included"
    );
    assert_eq!(stats.window_ms, 1000);
    assert_eq!(stats.rate.as_deref(), Some("5/1s"));
}

#[tokio::test]
async fn stats_as_json_have_the_documented_shape() {
    let h = harness(limited("2/1m")).await;
    for _ in 0..3 {
        h.send(&card_for(PHONE)).await;
    }
    let json = h.get("/_sandbox/stats").await;
    assert_eq!(
        json,
        serde_json::json!({
            "requests": 3, "unauthorized": 0, "by_status": {"200": 2, "429": 1},
            "accepted": 2, "max_in_window": 3, "window_ms": 60000, "rate": "2/1m"
        })
    );
}

#[tokio::test]
async fn without_a_rate_everything_is_admitted_and_the_peak_uses_a_minute() {
    let h = harness(config()).await;
    for _ in 0..20 {
        h.send(&card_for(PHONE)).await.assert_accepted();
    }
    let stats = h.stats().await;
    assert_eq!((stats.accepted, stats.max_in_window), (20, 20));
    assert_eq!(stats.window_ms, 60_000);
    assert_eq!(stats.rate, None);
}

#[tokio::test]
async fn retry_after_is_sent_when_asked_for() {
    let h = harness(SandboxConfig {
        retry_after: true,
        ..limited("1/2s")
    })
    .await;
    h.send(&card_for(PHONE)).await.assert_accepted();
    let refused = h.send(&card_for(PHONE)).await;
    refused.assert_refused(429, RATE_LIMITED);
    // Just under 2 s until the admitted request leaves the window, rounded up.
    assert_eq!(refused.headers["retry-after"], "2");
}

#[tokio::test]
async fn a_fixed_retry_after_is_sent_with_every_rate_limited_answer() {
    let h = harness(SandboxConfig {
        retry_after: true,
        retry_after_secs: Some(100_000_000),
        ..limited("1/2s")
    })
    .await;
    h.send(&card_for(PHONE)).await.assert_accepted();
    for _ in 0..2 {
        let refused = h.send(&card_for(PHONE)).await;
        refused.assert_refused(429, RATE_LIMITED);
        assert_eq!(refused.headers["retry-after"], "100000000");
    }
}
