//! Guarantee 4 under a bad upstream: a replica reads at most 64 KiB of any answer's body, so
//! answers of 200 MiB (a proxy's, an error page's), 2xx or 5xx, every one of them, leave its
//! memory where it was; the 2xx ones are dead-lettered naming the limit, the 5xx ones are
//! retried as any 5xx.

use std::time::Duration;

use herald_tests::scenario::{NAMESPACE, SandboxSetup, Scenario};
use herald_tests::{HugeAnswers, WorkerProcess};

/// The body of every answer.
const HUGE: u64 = 200 << 20;
/// The most a replica may use, at its peak, while every answer is [`HUGE`].
const MEMORY_BOUND: u64 = 40_000_000;
const JOBS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_4_answers_of_200_mib_leave_a_replica_at_concurrency_50_under_40_mb() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let interakt = HugeAnswers::start(HUGE, &[200, 503]).await;
    s.enqueue_bookings(0..JOBS).await;
    let worker = WorkerProcess::spawn(
        &s.redis.url(),
        NAMESPACE,
        &interakt.base_url(),
        "huge-answers",
        &[
            "--concurrency",
            "50",
            // Unlimited in effect, over a minute: a 1 s window would lower --request-timeout
            // to 750 ms, and a slow answer's cut would be a timeout instead.
            "--rate",
            "6000000/1m",
            "--max-attempts",
            "2",
            "--backoff-base",
            "10ms",
            "--backoff-max",
            "20ms",
            "--request-timeout",
            "30s",
        ],
    );

    // Every job dead-lettered, the memory watched meanwhile: a replica that reads whole
    // bodies is stopped at the bound, not left to take the machine's memory.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut peak = 0;
    loop {
        peak = peak.max(worker.peak_rss().expect("the worker is running"));
        assert!(
            peak < MEMORY_BOUND,
            "the replica's resident memory peaked at {peak} bytes (bound {MEMORY_BOUND}) after {} answers of {HUGE} bytes ({} bytes of them written)",
            interakt.requests(),
            interakt.written()
        );
        if s.dead_ids().await.len() == JOBS {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every job dead-lettered: {} of {JOBS}",
            s.dead_ids().await.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let peak = peak.max(worker.peak_rss().expect("the worker is running"));
    println!(
        "huge answers: peak RSS {:.1} MiB at --concurrency 50 over {} answers of 200 MiB ({:.1} MiB of their bodies written before the worker closed each connection)",
        peak as f64 / 1048576.0,
        interakt.requests(),
        interakt.written() as f64 / 1048576.0
    );
    assert!(peak < MEMORY_BOUND, "peak {peak} bytes");

    let (mut too_large, mut exhausted) = (0, 0);
    for letter in s.dead_letters().await {
        match letter.reason.as_str() {
            "permanent: success body longer than 65536 bytes, the most read of an answer" => {
                too_large += 1
            }
            "exhausted: 2 attempts failed, last: HTTP 503" => exhausted += 1,
            other => panic!("unexpected dead letter: {other}"),
        }
    }
    assert!(
        too_large > 0 && exhausted > 0,
        "{too_large} too large, {exhausted} exhausted"
    );
}
