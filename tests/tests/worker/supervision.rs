//! Guarantee 8, its second half: a background task that stops unexpectedly takes `/readyz`
//! away from 200 and the replica exits 1 within seconds, for its orchestrator to restart
//! it. The cause here is a real one: a key the retry promoter needs holds another type of
//! value (another application writing into Herald's namespace), which no retry can fix: the
//! refusal stops the replica, and its last line names the task, the cause and the fix.

use std::time::Duration;

use herald_shared::Lane;
use herald_tests::scenario::{SandboxSetup, Scenario, http_status};
use herald_tests::{free_port, wait_until};
use redis::AsyncCommands;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_8_a_retry_promoter_that_stops_fails_readiness_and_exits_1() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let mut w = s.worker("supervised", &["--http-listen", &listen]);
    let ready = format!("http://{listen}/readyz");
    wait_until("the worker ready", Duration::from_secs(20), || async {
        http_status(&ready).await == Some(200)
    })
    .await;

    let _: () = s
        .conn
        .set(s.keys.delayed(Lane::Booking), "another application's value")
        .await
        .unwrap();
    w.assert_stops_unready(
        &ready,
        &[
            "WRONGTYPE",
            "HERALD_NAMESPACE",
            "task=\"retry promoter\"",
            "waiting cannot help, so the retry promoter stopped",
        ],
    )
    .await;
}
