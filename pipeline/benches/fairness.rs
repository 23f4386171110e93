//! Fairness and what it costs: figures for the README, not assertions.
//!
//! `cargo bench -p herald-pipeline --bench fairness` runs, against a real redis-server and
//! the in-process sandbox, with a real `herald-worker` release binary:
//! 1. **tenants**: 20,000 bookings spread evenly over 1, 100 and 10,000 tenants (enqueued as
//!    the producer does), drained by one replica with no effective rate limit (`--rate
//!    10000000/1s --concurrency 128`): jobs/s from the first send to the last, Redis
//!    commands per job (`INFO stats` `total_commands_processed` over the drain: the
//!    commands Lua scripts run are counted) and round trips per job
//!    (`total_reads_processed`);
//! 2. **budget use by mix** (work-conserving): one replica at `300/6s` (a token every
//!    20 ms) with backlogs on a mix of the shared lanes (bookings only; reminders and a
//!    campaign; all three; a campaign only), for two windows: requests sent over what the
//!    shared lanes may use (N less the OTP reserve, 5% of N), and the lanes' shares.
//!
//! Knobs: `BENCH_JOBS` (20000), `BENCH_TENANTS=1,100,10000`, `BENCH_MIXES=0` skips part 2.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use herald_shared::job::Booking;
use herald_shared::schedule::Zone;
use herald_shared::wire::SendRequest;
use herald_shared::{Job, Lane};
use herald_store::Keys;
use herald_tests::scenario::enqueue_stored;

#[path = "support/mod.rs"]
mod support;

use support::{NAMESPACE, setup, wait_for, worker};

fn booking_for(i: usize) -> Booking {
    Booking {
        phone: format!("+9198{i:08}"),
        booking_id: format!("B{i}"),
        service: "Haircut".into(),
        date: "2030-11-24".into(),
        time: "10:30".into(),
        image_url: None,
    }
}

/// A job of `lane` for the i-th phone.
fn job(lane: Lane, i: usize) -> Job {
    match lane {
        Lane::Booking => Job::booking(booking_for(i)).unwrap(),
        Lane::Reminder => Job::reminder(booking_for(i), &Zone::default()).unwrap(),
        Lane::Bulk => {
            let request: SendRequest = serde_json::from_value(serde_json::json!({
                "countryCode": "+91",
                "phoneNumber": format!("98{i:08}"),
                "type": "Template",
                "template": {"name": "offer", "languageCode": "en"},
            }))
            .unwrap();
            Job::raw(request)
                .and_then(|j| j.with_lane("lane", Some(Lane::Bulk)))
                .unwrap()
        }
        Lane::Otp => unreachable!("the shared lanes only"),
    }
}

/// `INFO stats` counters: commands processed, reads processed.
async fn counters(conn: &mut redis::aio::MultiplexedConnection) -> (u64, u64) {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(conn)
        .await
        .unwrap();
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        field("total_commands_processed"),
        field("total_reads_processed"),
    )
}

async fn tenants(total: usize, tenants: usize) {
    let mut s = setup(None).await;
    let keys = Keys::new(NAMESPACE).unwrap();
    let jobs: Vec<Job> = (0..total)
        .map(|i| {
            job(Lane::Booking, i)
                .with_tenant("tenant", Some(&format!("t{}", i % tenants)))
                .unwrap()
        })
        .collect();
    enqueue_stored(&mut s.conn, &keys, &jobs).await;
    let w = worker(
        &s,
        "bench-tenants",
        &["--rate", "10000000/1s", "--concurrency", "128"],
    );
    wait_for(&s, 1, Duration::from_secs(60)).await;
    let (commands, reads) = counters(&mut s.conn).await;
    let start = Instant::now();
    wait_for(&s, total, Duration::from_secs(600)).await;
    let took = start.elapsed();
    let (commands_after, reads_after) = counters(&mut s.conn).await;
    let jobs = (total - 1) as f64;
    println!(
        "tenants: {tenants:>6} tenants, {total} bookings: {:.0} jobs/s; {:.1} Redis commands per job, {:.2} round trips per job; peak RSS {:.1} MiB",
        jobs / took.as_secs_f64(),
        (commands_after - commands) as f64 / jobs,
        (reads_after - reads) as f64 / jobs,
        w.peak_rss()
            .map_or(f64::NAN, |bytes| bytes as f64 / 1048576.0),
    );
}

/// One replica at 300/6s with backlogs on `mix`'s lanes, two windows.
async fn budget_mix(name: &str, mix: &[Lane]) {
    const N: usize = 300;
    const WINDOW: Duration = Duration::from_secs(6);
    const WINDOWS: usize = 2;
    let mut s = setup(Some("300/6s")).await;
    let keys = Keys::new(NAMESPACE).unwrap();
    let per_lane = N * (WINDOWS + 1);
    let mut jobs = Vec::new();
    for (k, lane) in mix.iter().enumerate() {
        jobs.extend((0..per_lane).map(|i| job(*lane, k * 100_000 + i)));
    }
    enqueue_stored(&mut s.conn, &keys, &jobs).await;
    let lane_of: BTreeMap<String, Lane> = jobs.iter().map(|j| (j.phone(), j.lane())).collect();
    let _w = worker(&s, "bench-mix", &["--rate", "300/6s"]);
    wait_for(&s, 1, Duration::from_secs(30)).await;
    tokio::time::sleep(WINDOW * WINDOWS as u32 + Duration::from_millis(500)).await;
    let messages = s.sandbox.messages();
    let t0 = messages[0].received_ms;
    let end = t0 + WINDOW.as_millis() as u64 * WINDOWS as u64;
    let mut shares: BTreeMap<Lane, usize> = BTreeMap::new();
    let mut sent = 0;
    for m in messages.iter().filter(|m| m.received_ms < end) {
        sent += 1;
        *shares.entry(lane_of[&m.e164()]).or_default() += 1;
    }
    let usable = (N - N * 5 / 100) * WINDOWS;
    println!(
        "budget use, {name}: {sent} sent in {WINDOWS} windows of 300/6s = {:.1}% of what the shared lanes may use ({usable}: N less the 5% OTP reserve); shares {shares:?}; 429s {}",
        sent as f64 * 100.0 / usable as f64,
        s.sandbox.stats().count(429),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    herald_shared::phone::warm_up();
    let total: usize = std::env::var("BENCH_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(20_000);
    let counts: Vec<usize> = std::env::var("BENCH_TENANTS")
        .unwrap_or_else(|_| "1,100,10000".into())
        .split(',')
        .map(|n| n.trim().parse().expect("BENCH_TENANTS: numbers"))
        .collect();
    for count in counts {
        tenants(total, count).await;
    }
    if std::env::var("BENCH_MIXES").as_deref() != Ok("0") {
        budget_mix("bookings only", &[Lane::Booking]).await;
        budget_mix("reminders and a campaign", &[Lane::Reminder, Lane::Bulk]).await;
        budget_mix("all three", &[Lane::Booking, Lane::Reminder, Lane::Bulk]).await;
        budget_mix("a campaign only", &[Lane::Bulk]).await;
    }
}
