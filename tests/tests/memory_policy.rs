//! Redis's `maxmemory-policy`: every binary reads it at start-up and warns loudly unless it
//! is `noeviction` (an evicting Redis drops queued jobs silently); `status` shows it; a
//! Redis that refuses `CONFIG GET` (an ACL user without it) is said once to be unchecked.

use std::process::{Command, Output};
use std::time::Duration;

use herald_tests::{RedisServer, WorkerProcess, cargo_bin, wait_until};
use serde_json::Value;

const NAMESPACE: &str = "policy";
const NOWHERE: &str = "http://127.0.0.1:1/v1/public";

fn herald(binary: &str, url: &str, args: &[&str]) -> Output {
    Command::new(cargo_bin(binary))
        .args(args)
        .env("REDIS_URL", url)
        .env("HERALD_NAMESPACE", NAMESPACE)
        .env_remove("RUST_LOG")
        .output()
        .expect("run a herald binary")
}

fn status_json(url: &str) -> Value {
    let out = herald("herald-worker", url, &["status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn redis_cli(server: &RedisServer, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &server.port().to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicting_redis_is_a_loud_warning_in_every_binary_and_in_status() {
    let server = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let url = server.url();

    let out = herald(
        "herald-producer",
        &url,
        &["otp", "--phone", "+919812345678", "--code", "123456"],
    );
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WARN") && stderr.contains("maxmemory-policy is allkeys-lru"),
        "{stderr}"
    );

    let status = status_json(&url);
    assert_eq!(status["maxmemory_policy"], "allkeys-lru", "{status}");
    let out = herald("herald-worker", &url, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("WARNING: redis maxmemory-policy: allkeys-lru"),
        "{text}"
    );
    let out = herald("herald-worker", &url, &["dlq", "list"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("maxmemory-policy is allkeys-lru"),
        "{out:?}"
    );

    let worker = WorkerProcess::spawn(&url, NAMESPACE, NOWHERE, "policy-worker", &[]);
    let mut webhook = Command::new(cargo_bin("herald-webhook"));
    webhook.args(["--listen", "127.0.0.1:0", "--insecure-no-signature"]);
    let receiver = WorkerProcess::spawn_command(webhook, &url, NAMESPACE, "policy-hooks");
    for process in [&worker, &receiver] {
        wait_until("the start-up warning", Duration::from_secs(20), || {
            std::future::ready(process.log().contains("maxmemory-policy is allkeys-lru"))
        })
        .await;
    }

    // Fixed: the warning is gone.
    redis_cli(
        &server,
        &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
    );
    assert_eq!(status_json(&url)["maxmemory_policy"], "noeviction");
    let out = herald(
        "herald-producer",
        &url,
        &["otp", "--phone", "+919812345678", "--code", "654321"],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("maxmemory"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_config_get_is_said_once_and_status_says_unchecked() {
    let server = RedisServer::start();
    assert_eq!(
        redis_cli(
            &server,
            &[
                "ACL", "SETUSER", "noconfig", "on", ">pw", "~*", "+@all", "-config"
            ]
        ),
        "OK"
    );
    let url = format!("redis://noconfig:pw@127.0.0.1:{}", server.port());
    let status = status_json(&url);
    assert_eq!(status["maxmemory_policy"], Value::Null, "{status}");
    let note = status["maxmemory_policy_note"].as_str().unwrap();
    assert!(
        note.starts_with("could not be checked") && note.contains("NOPERM"),
        "{note}"
    );

    let worker = WorkerProcess::spawn(&url, NAMESPACE, NOWHERE, "policy-worker", &[]);
    wait_until(
        "the worker says it could not check",
        Duration::from_secs(20),
        || {
            std::future::ready(
                worker
                    .log()
                    .contains("maxmemory-policy could not be checked"),
            )
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = worker.log();
    assert_eq!(log.matches("could not be checked").count(), 1, "{log}");
}
