//! Live replicas holding jobs longer than `--claim-idle`: at a low rate (2 requests per 2 s)
//! a backlog of bookings waits in the replicas' hands for tokens far longer than the 2 s
//! claim-idle, while both replicas are alive and well. Nothing is crashing, so nothing may
//! be taken over as abandoned, let alone dead-lettered as poison: every booking must be
//! sent exactly once.

use std::time::Duration;

use rand::RngExt;

use crate::fleet::Fleet;
use crate::invariants::Run;
use crate::seed::Seed;
use crate::{bookings, stand_in};

const RATE: &str = "2/2s";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_live_replicas_hold_jobs_past_claim_idle() {
    let seed = Seed::for_test("chaos_live_replicas_hold_jobs_past_claim_idle");
    let mut rng = seed.rng();
    let total = rng.random_range(8..=12);
    let second_after = Duration::from_millis(rng.random_range(0..1_500));

    let mut s = stand_in(RATE, Duration::from_millis(20)).await;
    let mut run = Run::new(&seed, RATE);
    let jobs = bookings(0..total);
    s.enqueue(&jobs).await;
    run.expect_sent(&jobs);

    let args = [
        "--rate",
        RATE,
        "--claim-idle",
        "2s",
        "--request-timeout",
        "1s",
        "--shutdown-grace",
        "5s",
    ];
    let mut fleet = Fleet::new(s.sandbox.base_url(), &args);
    let redis_url = s.redis.url();
    fleet.spawn("holder-a", &redis_url);
    // The second replica joins a little later (the seed says when), like a scale-out.
    tokio::time::sleep(second_after).await;
    fleet.spawn("holder-b", &redis_url);

    // At 2 per 2 s the backlog needs about one second per booking.
    run.wait_settled(&s, Duration::from_secs(total as u64 + 15))
        .await;
    run.finish(&s, &mut fleet).await;
}
