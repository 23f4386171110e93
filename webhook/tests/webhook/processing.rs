//! What processing makes of each event: job timelines and status counts for delivery
//! events, the inbound stream for replies and taps, the unhandled stream for the rest.

use std::time::Duration;

use herald_shared::Job;
use herald_shared::job::Attempt;
use herald_store::timeline::{EventKind, JobState};
use herald_tests::wait_until;
use serde_json::json;
use time::OffsetDateTime;

use crate::support::{
    Harness, booking, fixture, fixture_as_printed, recent, restamp, send_time, user_event,
};

/// A booking with one successful attempt, as the worker holds it when it settles "sent".
fn sent_booking(i: usize) -> Job {
    let mut job = booking(i);
    job.attempts.push(Attempt {
        at: OffsetDateTime::now_utc(),
        outcome: herald_shared::job::Outcome::Sent,
        status: Some(200),
        error: None,
        body: None,
        consumer: Some("w1".into()),
    });
    job
}

async fn wait_state(h: &Harness, job: &Job, state: JobState) {
    let id = job.id.to_string();
    wait_until(
        &format!("job {id} to be {}", state.as_str()),
        Duration::from_secs(15),
        || async { h.timeline(&id).await.is_some_and(|t| t.state == state) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_body_of_the_guide_is_accepted_and_processed() {
    let mut h = Harness::start(None).await;
    let read = sent_booking(1);
    let revoked = sent_booking(2);
    h.sent(&read, "ec ca1e-3293-49f9-896e-bbfaa3b13782").await;
    h.sent(&revoked, "77573603-2d32-481b-9442-c1ae5eace4a9")
        .await;
    // Each sample as the guide prints it, but sent a few minutes ago (not years).
    let read_at = OffsetDateTime::now_utc() - time::Duration::minutes(3);
    let read_at = read_at.replace_millisecond(read_at.millisecond()).unwrap();
    for name in [
        "webhook-user-message-suggestion.json",
        "webhook-user-message-text.json",
        "webhook-server-event-ttl-revoked.json",
        "webhook-user-event-read.json",
        "webhook-curl-test-1.json",
    ] {
        let body = match name {
            "webhook-user-event-read.json" => {
                restamp(&fixture_as_printed(name), &send_time(read_at))
            }
            _ => fixture(name),
        };
        let answer = h.post(&body).await;
        assert_eq!(answer.status, 200, "{name}: {answer:?}");
        assert_eq!(answer.body["recorded"], 1, "{name}: {answer:?}");
    }
    wait_state(&h, &read, JobState::Read).await;
    wait_state(&h, &revoked, JobState::Revoked).await;
    let timeline = h.timeline(&read.id.to_string()).await.unwrap();
    let read_event = timeline.events.last().unwrap();
    assert_eq!(read_event.event, EventKind::Read);
    assert_eq!(read_event.at, read_at, "stamped with Interakt's sendTime");

    let inbound = h.keys.inbound();
    h.wait_len("three user messages inbound", &inbound, 3).await;
    let entries = h.entries(&inbound).await;
    let tap = entries.iter().find(|e| e["type"] == "suggestion").unwrap();
    assert_eq!(tap["postback"], "SR1L1C1");
    assert_eq!(tap["phone"], "+9193218*****");
    assert_eq!(tap["message_id"], "MxTcYxYyXrTKS=o46jMjDJPQ");
    assert!(!tap.contains_key("job_id"), "no job sent that message");
    let texts: Vec<_> = entries.iter().filter_map(|e| e.get("text")).collect();
    assert_eq!(texts, ["Hi", "Test message"]);
    for entry in &entries {
        assert!(entry.contains_key("received_at") && entry.contains_key("event"));
    }

    let status = herald_operator::status::collect(&h.pool, &h.keys)
        .await
        .unwrap();
    let lane = &status.lanes["booking"];
    assert_eq!((lane.sent, lane.read, lane.revoked), (2, 1, 1));
    assert_eq!(h.xlen(&h.keys.webhook_unhandled()).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_events_build_the_timeline_in_order_first_report_wins() {
    let h = Harness::start(None).await;
    let job = sent_booking(3);
    h.sent(&job, "m-3").await;
    h.post(&user_event("DELIVERED", "m-3", "d-1")).await;
    wait_state(&h, &job, JobState::Delivered).await;
    h.post(&user_event("MESSAGE_READ", "m-3", "r-1")).await;
    wait_state(&h, &job, JobState::Read).await;
    // Interakt reporting delivery again under a new event id changes nothing.
    h.post(&user_event("DELIVERED", "m-3", "d-2")).await;
    h.post(&user_event("READ", "m-3", "r-2")).await;
    h.wait_len("both processed", &h.keys.webhook_events(), 0)
        .await;

    let timeline = h.timeline(&job.id.to_string()).await.unwrap();
    let kinds: Vec<EventKind> = timeline.events.iter().map(|e| e.event).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Enqueued,
            EventKind::Attempt,
            EventKind::Sent,
            EventKind::Delivered,
            EventKind::Read
        ]
    );
    assert_eq!(timeline.message_id.as_deref(), Some("m-3"));
    let status = herald_operator::status::collect(&h.pool, &h.keys)
        .await
        .unwrap();
    assert_eq!(
        (status.total.delivered, status.total.read),
        (1, 1),
        "each milestone counted once"
    );
    let by_interakt_id = herald_store::timeline::find_by_message_id(&h.pool, &h.keys, "m-3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_interakt_id, timeline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_reported_before_the_send_is_recorded_waits_for_it() {
    let mut h = Harness::start(None).await;
    let job = sent_booking(4);
    h.post(&user_event("DELIVERED", "m-early", "e-early")).await;
    // The event is read and left pending: its message is not indexed yet.
    let events = h.keys.webhook_events();
    wait_until(
        "the event read and waiting",
        Duration::from_secs(10),
        || {
            let mut conn = h.conn.clone();
            let events = events.clone();
            async move {
                let pending: redis::streams::StreamPendingReply =
                    redis::AsyncCommands::xpending(&mut conn, events, "webhook-processors")
                        .await
                        .unwrap();
                pending.count() == 1
            }
        },
    )
    .await;
    assert_eq!(h.xlen(&events).await, 1);
    h.sent(&job, "m-early").await;
    wait_state(&h, &job, JobState::Delivered).await;
    h.wait_len("the event settled", &events, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suggestion_tap_lands_on_inbound_linked_to_its_job() {
    let mut h = Harness::start(None).await;
    let job = sent_booking(5);
    h.sent(&job, "m-tap").await;
    let tap = json!({
        "userPhoneNumber": "+9198000*****",
        "botId": "bot",
        "entityType": "USER_MESSAGE",
        "entity": {
            "messageId": "m-tap",
            "sendTime": recent(),
            "text": "",
            "userFile": null,
            "location": null,
            "suggestionResponse": {"postBack": {"data": "cancel_B5"}, "plainText": "Cancel booking", "type": "REPLY"}
        }
    });
    assert_eq!(h.post(tap.to_string().as_bytes()).await.status, 200);
    let inbound = h.keys.inbound();
    h.wait_len("the tap inbound", &inbound, 1).await;
    let entry = &h.entries(&inbound).await[0];
    assert_eq!(entry["type"], "suggestion");
    assert_eq!(entry["postback"], "cancel_B5");
    assert_eq!(entry["job_id"], job.id.to_string());
    assert_eq!(entry["message_id"], "m-tap");
    assert_eq!(entry["phone"], "+9198000*****");
    let event: serde_json::Value = serde_json::from_str(&entry["event"]).unwrap();
    assert_eq!(event, tap);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_types_are_accepted_kept_and_counted() {
    let mut h = Harness::start(None).await;
    let series = r#"herald_webhook_events_total{entity_type="unknown",event_type="other"}"#;
    let before = h.metric(series).await;
    let novel =
        json!({"entityType": "BRAND_NEW", "entity": {"eventType": "SPARKLE", "eventId": "n-1"}});
    let not_an_event = json!({"hello": "world"});
    let typing = user_event("IS_TYPING", "m-x", "t-1");
    for body in [
        novel.to_string().into_bytes(),
        not_an_event.to_string().into_bytes(),
        typing,
    ] {
        let answer = h.post(&body).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.body["recorded"], 1);
    }
    let unhandled = h.keys.webhook_unhandled();
    h.wait_len("all three kept", &unhandled, 3).await;
    let kept: Vec<serde_json::Value> = h
        .entries(&unhandled)
        .await
        .iter()
        .map(|e| serde_json::from_str(&e["event"]).unwrap())
        .collect();
    assert_eq!(kept[0], novel);
    assert_eq!(kept[1], not_an_event);
    assert!(h.metric(series).await >= before + 1.0);
    assert!(
        h.metric(r#"herald_webhook_events_total{entity_type="invalid",event_type="none"}"#)
            .await
            >= 1.0
    );
    assert!(
        h.metric(r#"herald_webhook_events_total{entity_type="USER_EVENT",event_type="IS_TYPING"}"#)
            .await
            >= 1.0
    );
}
