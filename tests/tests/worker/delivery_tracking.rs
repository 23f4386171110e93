//! Delivery tracking end to end: a real `herald-worker run` sends to the sandbox, the sandbox
//! posts signed webhooks to a real `herald-worker webhook`, and `herald-worker track` shows
//! each job's timeline: sent, delivered, read; revoked for a `revoke`-scripted phone; a
//! suggestion tap lands on the inbound stream linked to its job; queued and dead jobs too.

use std::process::Command;
use std::time::Duration;

use herald_shared::Job;
use herald_shared::job::Booking;
use herald_tests::{WorkerProcess, cargo_bin, wait_until};
use redis::AsyncCommands;
use serde_json::Value;

use herald_tests::scenario::{NAMESPACE, SandboxSetup, Scenario, booking, free_port, http_status};

const SECRET: &str = "e2e-webhook-secret";
const REVOKED_PHONE: &str = "+919000000009";
const TAPPING_PHONE: &str = "+919000000008";
const REFUSED_PHONE: &str = "+919000000007";

fn booking_for(phone: &str, id: &str) -> Job {
    Job::booking(Booking {
        phone: phone.into(),
        booking_id: id.into(),
        service: "Haircut".into(),
        date: "2030-11-24".into(),
        time: "10:30".into(),
        image_url: None,
    })
    .expect("valid booking")
}

/// `herald-worker track ARGS --json`: the timeline (exit 0), `None` (exit 1), or a panic.
fn track(s: &Scenario, args: &[&str]) -> Option<Value> {
    let out = Command::new(cargo_bin("herald-worker"))
        .arg("track")
        .args(args)
        .arg("--json")
        .env("REDIS_URL", s.redis.url())
        .env("HERALD_NAMESPACE", NAMESPACE)
        .output()
        .expect("run herald-worker track");
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Some(serde_json::from_slice(&out.stdout).expect("track --json prints JSON")),
        Some(1) => {
            assert!(
                stderr.contains("unknown") || stderr.contains("no job"),
                "{stderr}"
            );
            None
        }
        other => panic!("track {args:?} exited {other:?}: {stderr}"),
    }
}

fn state(timeline: &Option<Value>) -> Option<&str> {
    timeline.as_ref()?.get("state")?.as_str()
}

async fn wait_state(s: &Scenario, job: &Job, want: &str) -> Value {
    wait_timeline(s, job, want, &[]).await
}

/// Waits until the job's timeline shows state `want` and has every event in `events`: a
/// status event that arrives before the worker recorded the send is linked on a retry
/// (`RETRY_IDLE` later), so `delivered` may be stamped after `read`.
async fn wait_timeline(s: &Scenario, job: &Job, want: &str, events_wanted: &[&str]) -> Value {
    let id = job.id.to_string();
    wait_until(
        &format!("track {id} to show {want} with {events_wanted:?}"),
        Duration::from_secs(30),
        || async {
            let timeline = track(s, &[&id]);
            state(&timeline) == Some(want)
                && timeline.as_ref().is_some_and(|t| {
                    let seen = events(t);
                    events_wanted.iter().all(|e| seen.contains(e))
                })
        },
    )
    .await;
    track(s, &[&id]).unwrap()
}

fn events(timeline: &Value) -> Vec<&str> {
    timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_track_jobs_through_sent_delivered_read_revoked_tapped_and_dead() {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut s = Scenario::start(SandboxSetup {
        script: vec![
            "+919000000009=revoke",
            "+919000000008=tap:cancel_B8",
            "+919000000007=400",
        ],
        webhook_url: Some(format!("http://{listen}/webhooks/interakt")),
        webhook_secret: Some(SECRET),
        ..Default::default()
    })
    .await;
    let _receiver = WorkerProcess::webhook(&s.redis.url(), NAMESPACE, &listen, SECRET, "hooks-1");
    wait_until("the receiver up", Duration::from_secs(20), || async {
        http_status(&format!("http://{listen}/readyz")).await == Some(200)
    })
    .await;

    let read = booking(1);
    let revoked = booking_for(REVOKED_PHONE, "B9");
    let tapped = booking_for(TAPPING_PHONE, "B8");
    let refused = booking_for(REFUSED_PHONE, "B7");
    s.enqueue(&[
        read.clone(),
        revoked.clone(),
        tapped.clone(),
        refused.clone(),
    ])
    .await;
    // Before any worker runs: queued, found on its lane.
    let queued = track(&s, &[&read.id.to_string()]);
    assert_eq!(state(&queued), Some("queued"), "{queued:?}");
    assert_eq!(track(&s, &["01890a5d-ac96-774b-bcce-b302099a8057"]), None);

    let _worker = s.worker("tracked", &[]);
    let timeline = wait_timeline(&s, &read, "read", &["delivered"]).await;
    assert_eq!(
        events(&timeline),
        ["enqueued", "attempt", "sent", "delivered", "read"]
    );
    let accepted = s.accepted();
    let message = accepted
        .iter()
        .find(|m| m.e164() == read.phone())
        .expect("the sandbox accepted it");
    assert_eq!(timeline["message_id"], message.id.to_string());
    assert_eq!(timeline["events"][2]["message_id"], message.id.to_string());
    assert_eq!(timeline["lane"], "booking");
    // The same timeline, found by Interakt's message id.
    let by_id = track(&s, &["--interakt-id", &message.id.to_string()]).unwrap();
    assert_eq!(by_id, timeline);

    let timeline = wait_state(&s, &revoked, "revoked").await;
    assert_eq!(
        events(&timeline),
        ["enqueued", "attempt", "sent", "revoked"]
    );
    let timeline = wait_state(&s, &refused, "dead").await;
    assert_eq!(events(&timeline), ["enqueued", "attempt", "dead"]);
    assert!(
        timeline["events"][2]["reason"]
            .as_str()
            .unwrap()
            .contains("400"),
        "{timeline}"
    );

    // The tap reaches backend services with the job it answers.
    wait_state(&s, &tapped, "read").await;
    let inbound = s.keys.inbound();
    wait_until(
        "the tap on the inbound stream",
        Duration::from_secs(20),
        || {
            let mut conn = s.conn.clone();
            let inbound = inbound.clone();
            async move { conn.xlen::<_, u64>(inbound).await.unwrap() == 1 }
        },
    )
    .await;
    let entries: redis::streams::StreamRangeReply = s.conn.xrange_all(&inbound).await.unwrap();
    let entry = &entries.ids[0];
    assert_eq!(entry.get::<String>("type").as_deref(), Some("suggestion"));
    assert_eq!(
        entry.get::<String>("postback").as_deref(),
        Some("cancel_B8")
    );
    assert_eq!(
        entry.get::<String>("job_id"),
        Some(tapped.id.to_string()),
        "linked to its job"
    );
    assert_eq!(
        entry.get::<String>("phone").as_deref(),
        Some("+9190000*****")
    );

    // A delivery report that reached the processor before the worker's record of the send
    // is processed again a little later (the processor's retry): wait for the counts.
    wait_until("every report counted", Duration::from_secs(20), || async {
        s.status().await.lanes["booking"].delivered == 2
    })
    .await;
    let status = s.status().await;
    let lane = &status.lanes["booking"];
    assert_eq!(
        (
            lane.sent,
            lane.delivered,
            lane.read,
            lane.revoked,
            lane.dead
        ),
        (3, 2, 2, 1, 1)
    );
    let posted = s.sandbox.webhook_stats();
    assert_eq!(
        (
            posted.posted("delivered"),
            posted.posted("read"),
            posted.posted("revoked"),
            posted.posted("tap"),
            posted.failed
        ),
        (2, 2, 1, 1, 0)
    );
}
