//! Supervision of the webhook processor, over the real binaries (`herald-webhook` and
//! `herald-worker webhook`): a processor that stops takes `/readyz` away from 200 and the
//! process exits 1 within seconds, for its orchestrator to restart it. The cause here is a
//! real one: the events stream's key holds another type of value (another application
//! writing into Herald's namespace), which no retry can fix.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use herald_tests::scenario::http_status;
use herald_tests::{RedisServer, WorkerProcess, cargo_bin, free_port, wait_until};

use crate::support::NAMESPACE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_that_stops_fails_readiness_and_the_process_exits_1() {
    let herald_webhook = PathBuf::from(env!("CARGO_BIN_EXE_herald-webhook"));
    for (program, args, consumer) in [
        (herald_webhook, vec![], "herald-webhook"),
        (
            cargo_bin("herald-worker"),
            vec!["webhook"],
            "herald-worker-webhook",
        ),
    ] {
        let what = format!("{} {args:?}", program.display());
        let redis = RedisServer::start();
        let listen = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(&program);
        command
            .args(args)
            .args(["--listen", &listen, "--insecure-no-signature"])
            .env_remove("INTERAKT_WEBHOOK_SECRET");
        let mut process = WorkerProcess::spawn_command(command, &redis.url(), NAMESPACE, consumer);
        let ready = format!("http://{listen}/readyz");
        wait_until(
            &format!("{what} ready"),
            Duration::from_secs(20),
            || async { http_status(&ready).await == Some(200) },
        )
        .await;

        let keys = herald_store::Keys::new(NAMESPACE).unwrap();
        let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
        let _: () = redis::pipe()
            .atomic()
            .del(keys.webhook_events())
            .set(keys.webhook_events(), "another application's value")
            .query_async(&mut conn)
            .await
            .unwrap();
        process
            .assert_stops_unready(
                &ready,
                &[
                    "WRONGTYPE",
                    "HERALD_NAMESPACE",
                    "webhook processor stopped unexpectedly",
                ],
            )
            .await;
    }
}
