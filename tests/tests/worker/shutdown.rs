//! Guarantee 7: SIGTERM/SIGINT stop taking jobs, finish or hand back in-flight ones within
//! --shutdown-grace, and exit 0.

use std::time::Duration;

use herald_tests::wait_until;

use herald_tests::scenario::{SandboxSetup, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_7_sigterm_finishes_in_flight_and_hands_back_the_rest() {
    let mut s = Scenario::start(SandboxSetup {
        latency: Duration::from_millis(700),
        ..Default::default()
    })
    .await;
    let total = 40;
    s.enqueue_bookings(0..total).await;
    let mut w = s.worker(
        "graceful",
        &[
            // 20 a second over a minute: the 700 ms answers stay well inside the request
            // timeout (a 1 s window would lower it to 750 ms).
            "--rate",
            "1200/1m",
            "--concurrency",
            "4",
            "--shutdown-grace",
            "10s",
        ],
    );

    wait_until("sends in flight", Duration::from_secs(20), || async {
        s.sandbox.stats().requests >= 2
    })
    .await;
    w.signal("TERM");
    let status = w
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("the worker exits within its grace");
    assert!(status.success(), "exit status {status:?}\n{}", w.log());

    let st = s.status().await;
    assert_eq!(
        st.total.pending, 0,
        "nothing left pending with the stopped consumer"
    );
    assert_eq!(
        st.total.sent as usize,
        s.accepted().len(),
        "every request that reached Interakt was recorded"
    );
    assert_eq!(
        st.total.sent + st.total.ready,
        total as u64,
        "every job is sent or back on its lane"
    );
    assert!(st.total.ready > 0, "the test must stop the worker mid-run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_7_sigint_on_an_idle_worker_exits_0() {
    let s = Scenario::start(SandboxSetup::default()).await;
    let mut w = s.worker("idle", &[]);
    wait_until("the worker registered", Duration::from_secs(20), || async {
        !s.status().await.consumers.is_empty()
    })
    .await;
    w.signal("INT");
    let status = w.wait_exit(Duration::from_secs(10)).await.expect("exits");
    assert!(status.success(), "{status:?}");
    assert!(
        s.status().await.consumers.is_empty(),
        "a stopped worker leaves the live consumers"
    );
}
