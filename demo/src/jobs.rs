//! The demo's work: the jobs it enqueues, the phones the sandbox fails on purpose, and the
//! time-and-change steps (a scheduled reminder, a cancel, a supersede).

use std::time::Duration;

use herald_shared::Job;
use herald_shared::job::Booking;

use crate::options::*;

/// Scripted phones: how the sandbox answers each (or which webhooks it posts), and what the
/// job is.
pub(crate) const SCRIPTED: [(&str, &str, ScriptedKind); 6] = [
    ("+919000000001", "400", ScriptedKind::Booking("B1")),
    ("+919000000002", "fail:2", ScriptedKind::Otp),
    ("+919000000003", "429:1", ScriptedKind::Booking("B3")),
    ("+919000000004", "500", ScriptedKind::Otp),
    ("+919000000006", "revoke", ScriptedKind::Otp),
    (
        "+919000000007",
        "tap:cancel_B7",
        ScriptedKind::Booking("B7"),
    ),
];
/// The OTP that expires before any worker can take it.
pub(crate) const EXPIRING_PHONE: &str = "+919000000005";

#[derive(Clone, Copy)]
pub(crate) enum ScriptedKind {
    Otp,
    /// A booking, with its id (its "Cancel booking" chip posts back `cancel_<ID>`).
    Booking(&'static str),
}

/// Scripted taps: each puts one entry on the inbound stream.
pub(crate) fn scripted_taps() -> u64 {
    SCRIPTED
        .iter()
        .filter(|(_, rule, _)| rule.starts_with("tap:"))
        .count() as u64
}

/// Time and change: a reminder due in two seconds, a booking scheduled for later and then
/// cancelled, and an OTP resent under its replace key (the first is superseded, never sent).
/// Returns how many of these jobs will be sent (the reminder and the newer OTP).
pub(crate) async fn time_and_change(producer: &producer::Producer) -> Result<usize, DemoError> {
    let zone = herald_shared::schedule::Zone::default();
    let appointment = |id: &str| Booking {
        phone: "+919600000001".into(),
        booking_id: id.into(),
        service: "Haircut".into(),
        date: "2030-11-24".into(),
        time: "10:30".into(),
        image_url: None,
    };
    let soon = time::OffsetDateTime::now_utc() + Duration::from_secs(2);
    let later = time::OffsetDateTime::now_utc() + Duration::from_secs(3600);
    let reminder = Job::reminder(appointment("DEMO-R1"), &zone)
        .and_then(|job| job.scheduled("send_in", Some(soon)))
        .expect("a valid reminder");
    producer.enqueue(reminder).await?;
    let cancelled = Job::booking_in(appointment("DEMO-C1"), &zone)
        .and_then(|job| job.scheduled("send_in", Some(later)))
        .expect("a valid booking");
    let cancelled = producer.enqueue(cancelled).await?;
    producer.cancel(cancelled.job_id).await?;
    let key = Some("otp:+919600000002".to_string());
    for code in ["111111", "222222"] {
        let otp = Job::otp("+919600000002", code, Duration::from_secs(600))
            .and_then(|job| job.with_replace_key(key.clone()))
            .expect("a valid OTP");
        producer.enqueue(otp).await?;
    }
    Ok(2)
}

/// The jobs: plain OTPs and bookings, the scripted ones, and an OTP valid for a millisecond
/// (the earliest deadline of all; no worker starts before it has passed).
pub(crate) fn demo_jobs() -> Vec<Job> {
    let code = || format!("{:06}", rand::random_range(0..1_000_000u32));
    let otp = |phone: &str, valid_for| Job::otp(phone, &code(), valid_for).expect("a valid OTP");
    let booking = |phone: &str, id: String, n: usize| {
        Job::booking(Booking {
            phone: phone.to_string(),
            booking_id: id,
            service: "Haircut".into(),
            date: "2030-11-24".into(),
            time: format!("{:02}:{:02}", 9 + n % 9, (n % 4) * 15),
            image_url: None,
        })
        .expect("a valid booking")
    };
    let ten_minutes = Duration::from_secs(600);
    let mut jobs: Vec<Job> = (0..OTPS)
        .map(|i| otp(&format!("+9198{i:08}"), ten_minutes))
        .collect();
    jobs.extend((0..BOOKINGS).map(|i| booking(&format!("+9197{i:08}"), format!("DEMO-{i}"), i)));
    for (n, (phone, _, kind)) in SCRIPTED.iter().enumerate() {
        jobs.push(match kind {
            ScriptedKind::Otp => otp(phone, ten_minutes),
            ScriptedKind::Booking(id) => booking(phone, id.to_string(), BOOKINGS + n),
        });
    }
    jobs.push(otp(EXPIRING_PHONE, Duration::from_millis(1)));
    jobs
}
