//! A real client in another language: `examples/node/enqueue.mjs` (Node 20's fetch, no
//! dependencies) enqueues an OTP and a booking through a real `herald-producer serve`,
//! a real `herald-worker run` sends them to the sandbox, and the script polls each job's
//! state until Interakt has it. Where `node` is not installed the test is skipped, saying
//! so; with `CI=true` a missing `node` is a failure (`.ci/run` installs `nodejs`).

use std::net::SocketAddr;
use std::process::Command;

use herald_sandbox::SandboxConfig;
use herald_tests::{ApiProcess, RedisServer, TEST_API_KEY, WorkerProcess, require_tool};

const NAMESPACE: &str = "node";
const TOKEN: &str = "node-test-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_example_enqueues_and_sees_its_jobs_sent() {
    if !require_tool("node", "nodejs", "the Node client test (Node.js 20+)") {
        return;
    }
    let redis = RedisServer::start();
    let sandbox = herald_sandbox::start(
        SandboxConfig::new(TEST_API_KEY),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let api = ApiProcess::start(&redis.url(), NAMESPACE, TOKEN, &[]).await;
    let _worker = WorkerProcess::spawn(
        &redis.url(),
        NAMESPACE,
        &sandbox.base_url(),
        "node-worker",
        &["--rate", "100/1s"],
    );

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/node/enqueue.mjs");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg("+919876543210")
            .env("HERALD_API_URL", api.base_url())
            .env("HERALD_API_TOKEN", TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node exited {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let states: Vec<serde_json::Value> = stdout
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(states.len(), 2, "{stdout}");
    for state in &states {
        assert_eq!(state["state"], "sent", "{stdout}");
        assert!(state["message_id"].is_string(), "{stdout}");
    }
    assert_eq!(
        sandbox.messages().len(),
        2,
        "the OTP and the booking reached Interakt once each"
    );
}

/// `examples/node/salon.mjs`: a confirmation now, a reminder two hours before tomorrow's
/// appointment (scheduled), the reminder cancelled by idempotency key, and a resent OTP
/// superseding the unsent one, each answered as the README says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_salon_example_schedules_cancels_and_supersedes() {
    if !require_tool("node", "nodejs", "the Node client test (Node.js 20+)") {
        return;
    }
    let redis = RedisServer::start();
    let api = ApiProcess::start(&redis.url(), NAMESPACE, TOKEN, &[]).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/node/salon.mjs");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg("+919876543210")
            .env("HERALD_API_URL", api.base_url())
            .env("HERALD_API_TOKEN", TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let steps: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(steps.len(), 4, "{stdout}");
    assert_eq!(steps[0]["status"], 202, "{stdout}");
    assert_eq!(steps[1]["status"], 202, "{stdout}");
    assert!(
        steps[1]["send_at"].is_string(),
        "the reminder is scheduled: {stdout}"
    );
    assert_eq!(steps[2]["status"], 200, "{stdout}");
    assert_eq!(steps[2]["state"], "cancelled", "{stdout}");
    assert_eq!(steps[2]["job_id"], steps[1]["job_id"], "{stdout}");
    assert_eq!(steps[3]["superseded"], steps[3]["first"], "{stdout}");
}
