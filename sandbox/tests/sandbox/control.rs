use std::time::Duration;

use herald_sandbox::SandboxConfig;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::*;

#[tokio::test]
async fn messages_lists_accepted_sends_in_arrival_order() {
    let h = harness(SandboxConfig {
        script: vec!["+919000000001=fail:1".parse().unwrap()],
        ..config()
    })
    .await;
    let before_ms = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let first = card_for(PHONE);
    let second = fixture("request-template-carousel.json");
    let first_id = h.send(&first).await.assert_accepted();
    h.send(&card_for("+919000000001")).await; // 503: not listed
    let second_id = h.send(&second).await.assert_accepted();

    let json = h.get("/_sandbox/messages").await;
    let listed = json.as_array().expect("an array");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], first_id.as_str());
    assert_eq!(listed[1]["id"], second_id.as_str());
    assert_eq!(listed[0]["country_code"], "+91");
    assert_eq!(listed[0]["phone_number"], "9999999999");
    assert_eq!(listed[0]["request"], first);
    assert_eq!(listed[1]["request"], second, "the body, field for field");

    let received_at = listed[0]["received_at"].as_str().unwrap();
    let parsed = OffsetDateTime::parse(received_at, &Rfc3339).expect("RFC 3339");
    assert!(
        received_at.contains('.'),
        "fractional seconds: {received_at}"
    );
    let received_ms = listed[0]["received_ms"].as_i64().unwrap() as i128;
    assert_eq!(parsed.unix_timestamp_nanos() / 1_000_000, received_ms);
    assert!(received_ms >= before_ms, "{received_ms} < {before_ms}");
    assert!(listed[1]["received_ms"].as_i64() >= listed[0]["received_ms"].as_i64());

    // The in-process handle sees the same list.
    let in_process = h.sandbox.messages();
    assert_eq!(in_process, h.messages().await);
    assert_eq!(in_process[1].id.to_string(), second_id);
}

#[tokio::test]
async fn reset_starts_everything_over() {
    let h = harness(SandboxConfig {
        rate: Some("2/1m".parse().unwrap()),
        script: vec!["+919000000001=fail:1".parse().unwrap()],
        ..config()
    })
    .await;
    h.send(&card_for("+919000000001"))
        .await
        .assert_refused(503, "Service temporarily unavailable");
    h.send(&card_for("+919000000001")).await.assert_accepted();
    h.send(&card_for(PHONE))
        .await
        .assert_refused(429, RATE_LIMITED);

    let reset = h
        .client
        .post(format!("{}/_sandbox/reset", h.sandbox.url()))
        .send()
        .await
        .expect("reset");
    assert_eq!(reset.status(), 204);

    assert!(h.messages().await.is_empty());
    let stats = h.stats().await;
    assert_eq!(
        (stats.requests, stats.accepted, stats.max_in_window),
        (0, 0, 0)
    );
    assert!(stats.by_status.is_empty());
    assert_eq!(
        stats.rate.as_deref(),
        Some("2/1m"),
        "the configuration stays"
    );
    // The rate window and the script's counter start over too.
    h.send(&card_for("+919000000001"))
        .await
        .assert_refused(503, "Service temporarily unavailable");
    h.send(&card_for(PHONE)).await.assert_accepted();
    h.send(&card_for(PHONE))
        .await
        .assert_refused(429, RATE_LIMITED);

    h.sandbox.reset();
    assert_eq!(h.sandbox.stats().requests, 0);
}

#[tokio::test]
async fn subscribers_see_each_accepted_message() {
    let h = harness(config()).await;
    let mut accepted = h.sandbox.subscribe();
    let id = h.send(&card_for(PHONE)).await.assert_accepted();
    let message = accepted.recv().await.expect("published");
    assert_eq!(message.id.to_string(), id);
    assert_eq!(message.e164(), PHONE);
}

#[tokio::test]
async fn shutdown_answers_in_flight_requests_at_once() {
    let h = harness(SandboxConfig {
        script: vec!["+919000000009=slow:1h".parse().unwrap()],
        ..config()
    })
    .await;
    let mut accepted = h.sandbox.subscribe();
    let request = h
        .client
        .post(h.sandbox.send_url())
        .header("Authorization", format!("Basic {KEY}"))
        .json(&card_for("+919000000009"))
        .send();
    let in_flight = tokio::spawn(request);
    accepted.recv().await.expect("the slow request arrived");

    let url = h.sandbox.url();
    tokio::time::timeout(Duration::from_secs(10), h.sandbox.shutdown())
        .await
        .expect("shutdown does not wait out an hour-long delay")
        .expect("the server stopped cleanly");
    let answer = in_flight
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(answer.status(), 200);
    assert!(
        h.client
            .get(format!("{url}/_sandbox/stats"))
            .send()
            .await
            .is_err(),
        "nothing listens any more"
    );
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let h = harness(config()).await;
    let url = format!("{}/_sandbox/stats", h.sandbox.url());
    let client = h.client.clone();
    assert!(client.get(&url).send().await.is_ok());
    drop(h);
    // The server winds down on its own task; wait for the port to close.
    tokio::time::timeout(Duration::from_secs(10), async {
        while reqwest::Client::new().get(&url).send().await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the server stops after its handle is dropped");
}
