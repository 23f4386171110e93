//! Guarantee 9: an entry that does not decode, or fails validation, is dead-lettered with the
//! reason, and the worker keeps going.

use std::time::Duration;

use herald_shared::Lane;
use herald_shared::job::Payload;
use herald_shared::wire::Suggestion;
use herald_store::keys::JOB_FIELD;
use herald_tests::wait_until;
use redis::AsyncCommands;

use herald_tests::scenario::{SandboxSetup, Scenario, booking};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_9_bad_entries_are_dead_lettered_and_the_worker_keeps_going() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let lane = s.keys.lane(Lane::Booking);
    let _: () = s
        .conn
        .xadd(&lane, "*", &[(JOB_FIELD, "{not json")])
        .await
        .unwrap();
    let _: () = s
        .conn
        .xadd(&lane, "*", &[("something", "else")])
        .await
        .unwrap();
    // A raw job that bypassed the producer's validation: five suggestions on one card.
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/tests/fixtures/request-standalone-carousel.json"
    ))
    .unwrap();
    let mut request: herald_shared::wire::SendRequest =
        herald_shared::wire::decode(&fixture).unwrap();
    let card = &mut request
        .message
        .as_mut()
        .unwrap()
        .rich_card_details
        .standalone
        .as_mut()
        .unwrap()
        .content;
    let one: Suggestion = card.suggestions.as_ref().unwrap()[0].clone();
    card.suggestions = Some(vec![one; 5]);
    let mut invalid = booking(1);
    invalid.payload = Payload::Raw {
        request: Box::new(request),
    };
    s.enqueue(&[invalid.clone(), booking(2)]).await;

    let w = s.worker("bad-jobs", &[]);
    wait_until(
        "three dead letters and one send",
        Duration::from_secs(20),
        || async {
            let st = s.status().await;
            st.total.dead == 3 && st.total.sent == 1
        },
    )
    .await;

    let mut reasons: Vec<String> = s
        .dead_letters()
        .await
        .into_iter()
        .map(|d| d.reason)
        .collect();
    reasons.sort();
    assert!(
        reasons[0]
            .starts_with("invalid: message.richCardDetails.standalone.content.suggestions: has 5"),
        "{reasons:?}"
    );
    assert!(reasons[1].starts_with("undecodable: "), "{reasons:?}");
    assert!(
        reasons[2].starts_with("undecodable: the entry has no \"job\" field"),
        "{reasons:?}"
    );
    let letters = s.dead_letters().await;
    // The entry is kept as what it was, never its values (it may hold an OTP's code): here
    // only its size, since it is not JSON.
    let raw = letters
        .iter()
        .find(|d| d.raw.as_deref() == Some("[9 bytes, not JSON; not kept]"))
        .expect("the raw entry is kept, redacted");
    assert!(raw.job_id.starts_with("entry:"));
    assert!(
        letters
            .iter()
            .any(|d| d.job.as_ref().is_some_and(|j| j.id == invalid.id))
    );
    assert_eq!(s.accepted().len(), 1, "the good job after them was sent");
    assert!(w.log().contains("dead-lettered"));
}

/// A worker checks an OTP's number only as deep as a send needs (E.164, a known calling
/// code: `Phone::split_e164`); the check for the country's numbering plan is the producers'
/// (at enqueue) and Interakt's. Entries written by hand with numbers that passed neither:
/// one that does not split is dead-lettered as invalid without a request, one that splits
/// but its country's plan refuses is sent once and dead-lettered with Interakt's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_otp_number_that_bypassed_the_producer_is_refused_by_the_worker_or_by_interakt() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let with_phone = |phone: &str| {
        let mut job = herald_tests::scenario::otp("+919999999999", Duration::from_secs(600));
        if let Payload::Otp(otp) = &mut job.payload {
            otp.phone = phone.into();
        }
        job
    };
    let unsplittable = with_phone("+0919999999999");
    let not_in_plan = with_phone("+915555555555");
    assert!(herald_shared::phone::Phone::parse_e164("+915555555555").is_err());
    s.enqueue(&[unsplittable.clone(), not_in_plan.clone()])
        .await;

    let _w = s.worker("bad-numbers", &[]);
    wait_until("two dead letters", Duration::from_secs(20), || async {
        s.status().await.total.dead == 2
    })
    .await;

    let letters = s.dead_letters().await;
    let letter = |id: uuid::Uuid| {
        letters
            .iter()
            .find(|d| d.job_id == id.to_string())
            .unwrap_or_else(|| panic!("a letter for {id}: {letters:?}"))
    };
    let refused = letter(unsplittable.id);
    assert_eq!(
        refused.reason,
        "invalid: countryCode+phoneNumber: does not start with a known country calling code"
    );
    assert!(
        refused.job.as_ref().unwrap().attempts.is_empty(),
        "never sent"
    );
    let rejected = letter(not_in_plan.id);
    assert!(
        rejected
            .reason
            .contains("is not a valid number for its country code"),
        "Interakt's reason is kept: {}",
        rejected.reason
    );
    assert_eq!(
        rejected.job.as_ref().unwrap().attempts.len(),
        1,
        "one request, no retry"
    );
    assert!(s.accepted().is_empty());
}
