//! Several tenants on all four lanes while replicas are SIGKILLed, SIGTERMed, SIGSTOPped
//! and SIGCONTed at random (the plan of [`crate::replicas`]): every job of every tenant's
//! stream is sent exactly once or dead-lettered for a reason, nothing is left on any
//! tenant's stream, and the budget holds, as for the default tenant's.

use std::time::Duration;

use herald_shared::Job;
use herald_shared::job::{Booking, Lane};
use herald_shared::schedule::Zone;
use herald_shared::wire::SendRequest;
use herald_tests::scenario::{enqueue_stored, otp, phone};
use rand::RngExt;
use rand::rngs::StdRng;

use crate::invariants::Run;
use crate::replicas::{plan, play};
use crate::seed::Seed;
use crate::stand_in;

const RATE: &str = "10/1s";
const TENANTS: [&str; 4] = ["default", "salon-a", "salon-b", "city:blr"];

fn booking_of(i: usize) -> Booking {
    Booking {
        phone: phone(i),
        booking_id: format!("T{i}"),
        service: "Haircut".into(),
        date: "2030-11-24".into(),
        time: "10:30".into(),
        image_url: None,
    }
}

/// A job of lane `lane` for `phone(i)`, of a tenant drawn from the seed.
fn job(lane: Lane, i: usize, rng: &mut StdRng) -> Job {
    let job = match lane {
        Lane::Otp => otp(
            &phone(i),
            Duration::from_millis(rng.random_range(60_000..90_000)),
        ),
        Lane::Booking => Job::booking(booking_of(i)).expect("a booking"),
        Lane::Reminder => Job::reminder(booking_of(i), &Zone::default()).expect("a reminder"),
        Lane::Bulk => {
            let national = &phone(i)[3..];
            let request: SendRequest = serde_json::from_value(serde_json::json!({
                "countryCode": "+91",
                "phoneNumber": national,
                "type": "Template",
                "template": {"name": "offer", "languageCode": "en"},
            }))
            .expect("a template request");
            Job::raw(request)
                .and_then(|j| j.with_lane("lane", Some(Lane::Bulk)))
                .expect("a campaign message")
        }
    };
    let tenant = TENANTS[rng.random_range(0..TENANTS.len())];
    job.with_tenant("tenant", Some(tenant)).expect("a tenant")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_tenants_on_four_lanes_with_replicas_killed_and_frozen() {
    let seed = Seed::for_test("chaos_tenants_on_four_lanes_with_replicas_killed_and_frozen");
    let mut rng = seed.rng();
    let steps = plan(&mut rng);
    eprintln!("plan: {steps:?}");
    let mut s = stand_in(RATE, Duration::from_millis(50)).await;
    let mut run = Run::new(&seed, RATE);
    let mix = [
        (Lane::Otp, 10),
        (Lane::Booking, 30),
        (Lane::Reminder, 15),
        (Lane::Bulk, 15),
    ];
    let mut jobs = Vec::new();
    for (lane, count) in mix {
        for _ in 0..count {
            let i = 2_000 + jobs.len();
            jobs.push(job(lane, i, &mut rng));
        }
    }
    enqueue_stored(&mut s.conn, &s.keys, &jobs).await;
    run.expect_sent(&jobs);

    let mut fleet = play(&s, &mut run, RATE, steps, "tenants").await;
    run.wait_settled(&s, Duration::from_secs(40)).await;
    run.finish(&s, &mut fleet).await;
}
