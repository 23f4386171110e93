//! Guarantee 6: Redis stops mid-run and comes back (AOF on): workers neither exit nor spin,
//! reconnect with backoff, and finish; nothing is lost. Readiness follows Redis.

use std::time::Duration;

use herald_tests::wait_until;

use herald_tests::scenario::{SandboxSetup, Scenario, free_port, http_status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_6_workers_ride_out_a_redis_restart() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let total = 150;
    s.enqueue_bookings(0..total).await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = ["--rate", "50/1s", "--http-listen", &listen];
    let mut a = s.worker("outage-a", &args);
    let mut b = s.worker("outage-b", &["--rate", "50/1s"]);
    let ready = format!("http://{listen}/readyz");

    wait_until("the run under way", Duration::from_secs(20), || async {
        s.accepted().len() >= 30
    })
    .await;
    assert_eq!(http_status(&ready).await, Some(200));

    s.redis.stop();
    wait_until(
        "readiness to follow Redis down",
        Duration::from_secs(10),
        || async { http_status(&ready).await == Some(503) },
    )
    .await;
    assert_eq!(
        http_status(&format!("http://{listen}/healthz")).await,
        Some(200)
    );
    let during = s.accepted().len();
    tokio::time::sleep(Duration::from_secs(2)).await; // the outage itself
    assert!(
        a.try_exit().is_none() && b.try_exit().is_none(),
        "a worker exited during the outage"
    );
    s.redis.start_again();

    wait_until("every booking sent", Duration::from_secs(60), || async {
        s.accepted_phones().len() == total
    })
    .await;
    s.wait_drained(Duration::from_secs(20)).await;
    assert_eq!(s.status().await.total.dead, 0);
    assert!(during < total, "the outage must happen mid-run");
    for w in [&a, &b] {
        let log = w.log();
        assert!(log.contains("Redis reachable again"), "{log}");
        // Backing off, not spinning: a handful of warnings per task, not thousands of lines.
        let warnings = log.matches("Redis unavailable").count();
        assert!((1..=20).contains(&warnings), "{warnings} outage warnings");
        assert!(log.lines().count() < 2_000, "the log suggests a tight loop");
    }
    let metrics = format!("http://{listen}/metrics");
    assert_eq!(http_status(&metrics).await, Some(200));
}
