//! Send later: a scheduled job waits in its lane's scheduled set and goes out within a
//! second of its time; moved once by whichever replica gets there first; reminders go out
//! `--before` their appointment with their own card; OTPs cannot be scheduled; a job past
//! its `not_after` is never sent.

use std::io::Write;
use std::time::Duration;

use herald_shared::Lane;
use herald_tests::scenario::{SandboxSetup, Scenario, phone};
use herald_tests::wait_until;
use redis::AsyncCommands;
use serde_json::json;

use super::{FUTURE_DATE, booking, enqueue, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_later_a_scheduled_booking_waits_then_goes_out_within_a_second_of_its_time() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let _w = s.worker("sched", &["--rate", "50/1s"]);
    let p = phone(1);
    let job = enqueue(&s, &booking(&p, "B1", &["--in", "3s"]));
    assert_eq!(s.recorded_state(&job).await.as_deref(), Some("scheduled"));
    let waiting: u64 = s.conn.zcard(s.keys.scheduled(Lane::Booking)).await.unwrap();
    assert_eq!(waiting, 1, "in the scheduled set");
    assert_eq!(s.status().await.total.scheduled, 1);
    assert!(
        s.lane_jobs(Lane::Booking).await.is_empty(),
        "not on the lane yet"
    );
    let due: String = s
        .conn
        .hget(s.keys.job_status(&job), "send_at")
        .await
        .unwrap();
    let due =
        time::OffsetDateTime::parse(&due, &time::format_description::well_known::Rfc3339).unwrap();
    let due_ms = (due.unix_timestamp_nanos() / 1_000_000) as u64;

    wait_until(
        "the scheduled booking sent",
        Duration::from_secs(20),
        || async { !s.accepted().is_empty() },
    )
    .await;
    let sent = &s.accepted()[0];
    assert_eq!(sent.e164(), p);
    let late = sent.received_ms as i64 - due_ms as i64;
    eprintln!("sent {late} ms after its time");
    assert!(late >= -50, "not before its time: {late} ms");
    assert!(late < 1_000, "within 1 s of its time: {late} ms late");
    let waiting: u64 = s.conn.zcard(s.keys.scheduled(Lane::Booking)).await.unwrap();
    assert_eq!(waiting, 0);
    let bodies: u64 = s.conn.hlen(s.keys.scheduled_jobs()).await.unwrap();
    assert_eq!(bodies, 0, "the body is gone with it");
}

/// 300 bookings due at the same instant, two replicas promoting them at once: each sent
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_once_a_due_scheduled_job_is_moved_by_one_of_two_replicas_racing() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    const N: usize = 300;
    let at = time::OffsetDateTime::now_utc() + Duration::from_secs(4);
    let at = herald_store::record::format_time(at);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for i in 0..N {
        let line = json!({"kind": "booking", "phone": phone(i), "booking_id": format!("B{i}"),
            "service": "Haircut", "date": FUTURE_DATE, "time": "10:30", "send_at": at});
        writeln!(file, "{line}").unwrap();
    }
    let out = s.run_producer(&["bulk", "--json", file.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let waiting: u64 = s.conn.zcard(s.keys.scheduled(Lane::Booking)).await.unwrap();
    assert_eq!(waiting, N as u64);
    let args = ["--rate", "1000/1s", "--concurrency", "32"];
    let _a = s.worker("race-a", &args);
    let _b = s.worker("race-b", &args);
    wait_until("every booking sent", Duration::from_secs(60), || async {
        s.status().await.total.sent >= N as u64
    })
    .await;
    s.wait_drained(Duration::from_secs(20)).await;
    assert_eq!(s.accepted().len(), N, "each sent once, none twice");
    assert_eq!(s.accepted_phones().len(), N);
    assert!(s.dead_letters().await.is_empty());
    let status = s.status().await;
    assert_eq!(status.total.scheduled, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_go_out_before_their_appointment_with_their_own_card() {
    let s = Scenario::start(SandboxSetup::default()).await;
    let _w = s.worker("remind", &["--rate", "50/1s"]);
    // An appointment 2 h 3 s from now in Asia/Kolkata (minute precision: up to a minute less).
    let zone = herald_shared::schedule::Zone::default();
    let start = time::OffsetDateTime::now_utc() + Duration::from_secs(2 * 3600 + 63);
    let local = start.to_offset(time::UtcOffset::from_hms(5, 30, 0).unwrap());
    let date = format!(
        "{:04}-{:02}-{:02}",
        local.year(),
        u8::from(local.month()),
        local.day()
    );
    let at = format!("{:02}:{:02}", local.hour(), local.minute());
    assert_eq!(zone.name(), "Asia/Kolkata");
    let p = phone(7);
    let args = [
        "reminder",
        "--phone",
        &p,
        "--booking-id",
        "B7",
        "--service",
        "Haircut",
        "--date",
        &date,
        "--time",
        &at,
        "--before",
        "2h",
        "--tz",
        "Asia/Kolkata",
    ];
    let out = s.run_producer(&args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("scheduled for"),
        "{}",
        text(&out)
    );
    wait_until("the reminder sent", Duration::from_secs(90), || async {
        !s.accepted().is_empty()
    })
    .await;
    let card = &s.accepted()[0].request["message"]["richCardDetails"]["standalone"]["content"];
    let title = card["cardTitle"].as_str().unwrap();
    assert!(title.starts_with("Reminder: your Haircut "), "{title}");
    assert!(title.ends_with(&format!("at {at}")), "{title}");
    assert_eq!(card["suggestions"][0]["reply"]["plainText"], "View booking");
    assert_eq!(
        card["suggestions"][1]["reply"]["postBack"]["data"],
        "cancel_B7"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otps_cannot_be_scheduled_and_stale_jobs_are_never_sent() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let out = s.run_producer(&[
        "otp",
        "--phone",
        "+919999999999",
        "--code",
        "1234",
        "--in",
        "5m",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("send_in: an OTP cannot be scheduled"), "{err}");

    // A booking whose appointment has started, and one whose not_after has passed.
    let p1 = phone(1);
    let mut past = booking(&p1, "B1", &[]);
    past[8] = "2026-01-05";
    let stale = enqueue(&s, &past);
    let p2 = phone(2);
    let deadline = herald_store::record::format_time(time::OffsetDateTime::now_utc());
    let stale_too = enqueue(&s, &booking(&p2, "B2", &["--not-after", &deadline]));
    let p3 = phone(3);
    enqueue(&s, &booking(&p3, "B3", &[]));
    let _w = s.worker("stale", &["--rate", "50/1s"]);
    wait_until(
        "the fresh booking sent and two dead letters",
        Duration::from_secs(20),
        || async {
            let st = s.status().await;
            st.total.sent >= 1 && st.total.dead >= 2
        },
    )
    .await;
    assert_eq!(s.accepted_phones().into_iter().collect::<Vec<_>>(), [p3]);
    let dead = s.dead_letters().await;
    for id in [&stale, &stale_too] {
        let letter = dead
            .iter()
            .find(|l| &l.job_id == id)
            .expect("dead-lettered");
        assert!(letter.reason.starts_with("expired"), "{}", letter.reason);
    }
}
