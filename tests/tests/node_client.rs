//! A real client in another language: `examples/node/enqueue.mjs` (Node 20's fetch, no
//! dependencies) enqueues an OTP and a booking through a real `herald-producer serve`,
//! a real `herald-worker run` sends them to the sandbox, and the script polls each job's
//! state until Interakt has it. Where `node` is not installed the test is skipped, saying
//! so; with `CI=true` a missing `node` is a failure (`.ci/run` installs `nodejs`).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use herald_sandbox::SandboxConfig;
use herald_tests::scenario::{free_port, http_status};
use herald_tests::{RedisServer, TEST_API_KEY, WorkerProcess, cargo_bin, require_tool, wait_until};

const NAMESPACE: &str = "node";
const TOKEN: &str = "node-test-token";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
    let listen = format!("127.0.0.1:{}", free_port());
    let _api = Killed(
        Command::new(cargo_bin("herald-producer"))
            .args(["serve", "--listen", &listen])
            .env("REDIS_URL", redis.url())
            .env("HERALD_NAMESPACE", NAMESPACE)
            .env("HERALD_API_TOKENS", TOKEN)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the API to be ready", Duration::from_secs(20), || async {
        http_status(&format!("http://{listen}/readyz")).await == Some(200)
    })
    .await;
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
            .env("HERALD_API_URL", format!("http://{listen}"))
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
