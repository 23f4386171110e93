//! The receiver's HTTP contract: who gets 200, 400, 401, 413 and 503, and what is recorded.

use std::time::Duration;

use herald_shared::signature;
use herald_tests::wait_until;

use crate::support::{Harness, array, fixture, restamp, send_time, user_event, user_message};

const SECRET: &str = "whsec-test";

/// Nothing of a refused POST reached Redis: no event, no de-dup marker, nothing processed.
async fn nothing_recorded(h: &mut Harness) {
    let events = h.keys.webhook_events();
    assert_eq!(h.xlen(&events).await, 0);
    assert_eq!(h.keys_like("*webhook:seen*").await, Vec::<String>::new());
    for stream in [h.keys.inbound(), h.keys.webhook_unhandled()] {
        assert_eq!(h.xlen(&stream).await, 0, "{stream}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_valid_are_recorded_invalid_and_missing_get_401_and_leave_no_trace() {
    let mut h = Harness::start(Some(SECRET)).await;
    let (_, metrics) = h.get("/metrics").await;
    for series in [
        "herald_webhook_signature_failures_total",
        "herald_webhook_duplicates_total",
    ] {
        assert!(
            metrics.contains(series),
            "{series} is exposed from the start"
        );
    }
    let body = fixture("webhook-user-message-text.json");
    let failures_before = h.metric("herald_webhook_signature_failures_total").await;

    let wrong = signature::sign("another-secret", &body);
    let tampered = signature::sign(SECRET, b"{}");
    for header in [
        None,
        Some(wrong.as_str()),
        Some(tampered.as_str()),
        Some("sha256="),
    ] {
        let answer = h.post_with(&body, header).await;
        assert_eq!(answer.status, 401, "{header:?}: {answer:?}");
        assert!(
            answer.body["error"]
                .as_str()
                .unwrap()
                .contains("Interakt-Signature")
        );
    }
    nothing_recorded(&mut h).await;
    assert!(h.metric("herald_webhook_signature_failures_total").await >= failures_before + 4.0);

    // The header name is case-insensitive and the right signature is recorded.
    let answer = h.post(&body).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["recorded"], 1);
    h.wait_len("the reply on the inbound stream", &h.keys.inbound(), 1)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_array_body_records_each_event_and_answers_200() {
    let mut h = Harness::start(None).await;
    let mut array = b"[".to_vec();
    array.extend(fixture("webhook-user-message-text.json"));
    array.extend(b",");
    array.extend(fixture("webhook-user-message-suggestion.json"));
    array.extend(b"]");
    let answer = h.post(&array).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.body,
        serde_json::json!({"received": 2, "recorded": 2, "duplicates": 0, "stale": 0})
    );
    let inbound = h.keys.inbound();
    h.wait_len("both on the inbound stream", &inbound, 2).await;
    let entries = h.entries(&inbound).await;
    let kinds: Vec<&str> = entries.iter().map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, ["reply", "suggestion"]);
    assert_eq!(
        h.xlen(&h.keys.webhook_events()).await,
        0,
        "processed events are deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_delivery_is_answered_200_recorded_once_and_counted() {
    let h = Harness::start(Some(SECRET)).await;
    let before = h.metric("herald_webhook_duplicates_total").await;
    let tap = fixture("webhook-user-message-suggestion.json");
    // The same event by eventId, and a user message (no eventId) by messageId + type.
    let read = user_event("READ", "m-unknown", "evt-1");
    for body in [&tap, &read] {
        assert_eq!(h.post(body).await.body["recorded"], 1);
        let again = h.post(body).await;
        assert_eq!(again.status, 200, "{again:?}");
        assert_eq!(
            again.body,
            serde_json::json!({"received": 1, "recorded": 0, "duplicates": 1, "stale": 0})
        );
    }
    // Within one array too.
    let mut twice = b"[".to_vec();
    twice.extend(user_event("DELIVERED", "m-2", "evt-2"));
    twice.extend(b",");
    twice.extend(user_event("DELIVERED", "m-2", "evt-2"));
    twice.extend(b"]");
    assert_eq!(h.post(&twice).await.body["duplicates"], 1);
    assert!(h.metric("herald_webhook_duplicates_total").await >= before + 3.0);

    h.wait_len("the tap passed on once", &h.keys.inbound(), 1)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_and_malformed_ones_400_recorded_nowhere() {
    let mut h = Harness::start(Some(SECRET)).await;
    let mut big = br#"{"entityType":"USER_MESSAGE","entity":{"text":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 64 * 1024));
    big.extend(br#""}}"#);
    let answer = h.post(&big).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert!(
        answer.body["error"].as_str().unwrap().contains("65536"),
        "{answer:?}"
    );

    for (body, says) in [
        (&b"{\"entityType\": "[..], "not JSON"),
        (b"not json at all", "not JSON"),
        (b"42", "got a number"),
        (
            b"[{\"entityType\":\"USER_EVENT\",\"entity\":{}}, \"x\"]",
            "item 1 is a string",
        ),
    ] {
        let answer = h.post(body).await;
        assert_eq!(answer.status, 400, "{body:?}: {answer:?}");
        assert!(
            answer.body["error"].as_str().unwrap().contains(says),
            "{body:?}: {answer:?}"
        );
    }
    nothing_recorded(&mut h).await;
    // A body just under the limit is fine.
    let mut fits = br#"{"entityType":"USER_MESSAGE","entity":{"messageId":"m","text":""#.to_vec();
    fits.extend(std::iter::repeat_n(b'x', 60 * 1024));
    fits.extend(br#""}}"#);
    assert_eq!(h.post(&fits).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_answers_503_so_interakt_redelivers_then_recovers() {
    let mut h = Harness::start(None).await;
    let body = user_event("READ", "m-1", "evt-outage");
    h.redis.stop();
    let started = std::time::Instant::now();
    let answer = h.post(&body).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered within Interakt's 3 s"
    );
    let (ready, _) = h.get("/readyz").await;
    assert_eq!(ready, 503);
    let (health, _) = h.get("/healthz").await;
    assert_eq!(health, 200);

    h.redis.start_again();
    // Interakt's redelivery is recorded once Redis is back, and only once.
    wait_until("a redelivery accepted", Duration::from_secs(15), || async {
        h.post(&body).await.status == 200
    })
    .await;
    assert_eq!(h.post(&body).await.body["duplicates"], 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_interakt_signature_is_accepted_as_well_as_interakt_signature() {
    let mut h = Harness::start(Some(SECRET)).await;
    let body = fixture("webhook-user-message-text.json");
    let wrong = signature::sign("another-secret", &body);
    let answer = h
        .post_with_header(&body, "X-Interakt-Signature", Some(&wrong))
        .await;
    assert_eq!(answer.status, 401, "{answer:?}");
    nothing_recorded(&mut h).await;

    let good = signature::sign(SECRET, &body);
    let answer = h
        .post_with_header(&body, "X-Interakt-Signature", Some(&good))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["recorded"], 1);
    h.wait_len("the reply on the inbound stream", &h.keys.inbound(), 1)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_more_than_100_events_gets_413_and_records_nothing_100_are_recorded() {
    let mut h = Harness::start(Some(SECRET)).await;
    let events = |n: usize| {
        array((0..n).map(|i| user_event("DELIVERED", &format!("m-{i}"), &format!("e-{i}"))))
    };
    let answer = h.post(&events(101)).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    let error = answer.body["error"].as_str().unwrap_or_default();
    assert!(error.contains("100") && error.contains("101"), "{answer:?}");
    nothing_recorded(&mut h).await;

    let answer = h.post(&events(100)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.body,
        serde_json::json!({"received": 100, "recorded": 100, "duplicates": 0, "stale": 0})
    );
}

/// Issue: customers' taps were lost. User messages carry no `eventId`; keyed on message id
/// and type, a second tap (or a reply) on the same card was taken for a redelivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_taps_and_a_reply_on_one_card_all_reach_inbound_and_a_redelivery_is_dropped() {
    let mut h = Harness::start(Some(SECRET)).await;
    let card = "MxCard-B123";
    let view = user_message(card, Some("view_B123"), "View details");
    let cancel = user_message(card, Some("cancel_B123"), "Cancel booking");
    let reply = user_message(card, None, "Can I come at 6 instead?");
    for body in [&view, &cancel, &reply] {
        let answer = h.post(body).await;
        assert_eq!(
            answer.body,
            serde_json::json!({"received": 1, "recorded": 1, "duplicates": 0, "stale": 0}),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let again = h.post(&cancel).await;
    assert_eq!(
        again.body,
        serde_json::json!({"received": 1, "recorded": 0, "duplicates": 1, "stale": 0})
    );
    // Processing is in stream order: once a later event is through, a recorded redelivery
    // would be there too.
    let later = user_message("MxOther", None, "thanks");
    assert_eq!(h.post(&later).await.body["recorded"], 1);
    let inbound = h.keys.inbound();
    h.wait_len("three actions and the later reply", &inbound, 4)
        .await;
    let entries = h.entries(&inbound).await;
    let seen: Vec<(&str, Option<&str>, Option<&str>)> = entries
        .iter()
        .map(|e| {
            (
                e["type"].as_str(),
                e.get("postback").map(String::as_str),
                e.get("text").map(String::as_str),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("suggestion", Some("view_B123"), None),
            ("suggestion", Some("cancel_B123"), None),
            ("reply", None, Some("Can I come at 6 instead?")),
            ("reply", None, Some("thanks")),
        ]
    );
}

/// Issue 27: a signed event captured once was recorded again by whoever replayed it after its
/// de-duplication marker expired (three days). An event is now judged by its own time: one
/// sent that long ago or longer is answered 200 (Interakt stops) and recorded nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_signed_event_older_than_the_dedup_window_is_answered_200_and_not_recorded() {
    let mut h = Harness::start(Some(SECRET)).await;
    let stale_before = h.metric("herald_webhook_stale_total").await;
    let now = time::OffsetDateTime::now_utc();
    // A DELIVERED report captured four days ago, signed by Interakt: its marker is gone.
    let captured = restamp(
        &user_event("DELIVERED", "m-old", "evt-old"),
        &send_time(now - time::Duration::days(4)),
    );
    let answer = h.post(&captured).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.body,
        serde_json::json!({"received": 1, "recorded": 0, "duplicates": 0, "stale": 1})
    );
    nothing_recorded(&mut h).await;
    assert_eq!(
        h.metric("herald_webhook_stale_total").await,
        stale_before + 1.0
    );

    // Beside it in one array, an event a minute inside the window is recorded; it alone.
    let inside = restamp(
        &user_event("DELIVERED", "m-new", "evt-new"),
        &send_time(now - time::Duration::days(3) + time::Duration::MINUTE),
    );
    let answer = h.post(&array([captured, inside])).await;
    assert_eq!(
        answer.body,
        serde_json::json!({"received": 2, "recorded": 1, "duplicates": 0, "stale": 1})
    );
    assert_eq!(
        h.keys_like("*webhook:seen*").await,
        [h.keys.webhook_seen("event:evt-new")]
    );
    assert_eq!(
        h.metric("herald_webhook_stale_total").await,
        stale_before + 2.0
    );
}

/// Issue 27: every value of both signature headers was checked with its own HMAC of the
/// body (100 header lines of a 64 KiB body: 6 MiB of hashing per unauthenticated POST). Now
/// the first value of each header is the one read, against one HMAC (the unit test in
/// `verify.rs` counts them); and 10,000 values do not even reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_signature_values_are_refused_and_only_the_first_of_each_header_is_read() {
    let mut h = Harness::start(Some(SECRET)).await;
    let body = fixture("webhook-user-message-text.json");
    let good = signature::sign(SECRET, &body);
    let wrong = signature::sign("another-secret", &body);

    // 10,000 values, the good one last: refused before the handler (the server reads at
    // most 100 header lines), or the connection is closed; never recorded.
    let mut values = vec![wrong.clone(); 9_999];
    values.push(good.clone());
    let answer = h
        .post_with_values(&body, "interakt-signature", &values)
        .await;
    assert!(
        answer.as_ref().is_none_or(|a| a.status == 431),
        "{answer:?}"
    );
    nothing_recorded(&mut h).await;

    // Within the server's limit, the first value is the one read: a good one after a
    // wrong one is refused, ...
    let mut values = vec![wrong.clone(); 50];
    values[1] = good.clone();
    for name in ["interakt-signature", "x-interakt-signature"] {
        let answer = h.post_with_values(&body, name, &values).await.unwrap();
        assert_eq!(answer.status, 401, "{name}: {answer:?}");
    }
    nothing_recorded(&mut h).await;
    // ... and a good first one is accepted whatever follows.
    values.swap(0, 1);
    let answer = h
        .post_with_values(&body, "interakt-signature", &values)
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["recorded"], 1);
}
