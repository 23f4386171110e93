//! `herald-demo` (and `herald-worker demo`, which hands over to it) with no configuration:
//! it starts its own Redis, runs to completion
//! in under a minute, its summary matches what the sandbox recorded, and the sandbox's
//! webhooks come back through the receiver: every sent message delivered (and read) or
//! revoked, and the scripted tap on the inbound stream. Kept (`--keep`) in a Redis of its
//! own, the commands it suggests work on its data as printed.

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use herald_tests::{RedisServer, cargo_bin};

use crate::support::{assert_exit, json, stderr, stdout};

#[test]
fn the_demo_runs_to_completion_and_its_summary_matches_the_sandbox_and_the_webhooks() {
    let started = Instant::now();
    let out = Command::new(cargo_bin("herald-demo"))
        .args(["--json"])
        .env_remove("REDIS_URL")
        .env_remove("HERALD_NAMESPACE")
        .env_remove("RUST_LOG")
        .output()
        .expect("run the demo");
    let took = started.elapsed();
    assert_exit(&out, 0);
    let summary = json(&out);
    eprintln!("demo took {took:?}: {summary}");
    let n = |field: &str| {
        summary[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field} in {summary}"))
    };

    assert!(took < Duration::from_secs(60), "the demo took {took:?}");
    assert_eq!(n("sent") + n("dead"), n("enqueued"), "every job settled");
    assert_eq!(n("otp") + n("booking"), n("enqueued"));
    assert_eq!(n("accepted"), n("sent"), "Herald's count is the sandbox's");
    assert!(n("max_in_window") <= n("limit"), "{summary}");
    assert_eq!(n("dead"), 3);
    assert_eq!(n("rate_limited"), 1);
    assert!(n("retried") >= 4, "two 503s and a 500 retried: {summary}");
    assert_eq!(
        n("requests"),
        n("sent") + n("retried") + n("rate_limited") + 2,
        "each request is a send, a retry, a 429, or one of the two that died at once \
         (the 400 and the last 500): {summary}"
    );
    let reasons: Vec<&str> = summary["dead_reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    for expected in ["permanent: HTTP 400", "exhausted: 3 attempts", "expired"] {
        assert!(
            reasons.iter().any(|r| r.starts_with(expected)),
            "{expected:?} in {reasons:?}"
        );
    }

    // The delivery loop: the sandbox posted DELIVERED then READ for every accepted message
    // but one, revoked instead; the receiver and processor counted each once.
    for field in ["delivered", "read", "revoked", "inbound"] {
        assert!(summary[field].is_u64(), "{field} in {summary}");
    }
    assert_eq!(
        n("delivered") + n("revoked"),
        n("sent"),
        "every sent message reported delivered or revoked: {summary}"
    );
    assert!(n("read") <= n("delivered"), "{summary}");
    assert_eq!(n("revoked"), 1, "the one scripted revocation: {summary}");
    assert_eq!(n("inbound"), 1, "the one scripted tap: {summary}");

    for phase in ["settled", "reported by webhook"] {
        assert!(
            stderr(&out).contains(phase),
            "progress is shown ({phase}): {}",
            stderr(&out)
        );
    }

    // It cleaned up: its Redis is gone.
    assert_eq!(summary["kept"], false);
    let url = summary["redis_url"].as_str().unwrap();
    let addr = url.trim_start_matches("redis://");
    assert!(
        TcpStream::connect(addr).is_err(),
        "the demo's Redis at {addr} is still running"
    );
}

#[test]
fn herald_worker_demo_hands_over_to_the_demo_binary_with_its_arguments() {
    cargo_bin("herald-demo");
    let out = Command::new(cargo_bin("herald-worker"))
        .args(["demo", "--no-such-flag"])
        .output()
        .expect("run herald-worker demo");
    // herald-demo's own usage error: the arguments reached it.
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("--no-such-flag"), "{err}");
    assert!(err.contains("herald-demo"), "{err}");
}

/// A process the test did not start but must stop (the dashboard a kept demo leaves).
struct StopOnDrop(Option<u64>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

#[test]
fn the_commands_a_kept_demo_suggests_work_on_its_data() {
    let redis = RedisServer::start();
    let out = Command::new(cargo_bin("herald-demo"))
        .args(["--json", "--keep"])
        .env("REDIS_URL", redis.url())
        .env_remove("HERALD_NAMESPACE")
        .env_remove("RUST_LOG")
        .output()
        .expect("run the demo");
    assert_exit(&out, 0);
    let summary = json(&out);
    let _dashboard = StopOnDrop(summary["dashboard_pid"].as_u64());
    assert_eq!(summary["kept"], true, "{summary}");
    let namespace = summary["namespace"]
        .as_str()
        .expect("a namespace")
        .to_string();

    // As a person would run them: by name, from a shell, pointed at the demo's data.
    let bin_dir = cargo_bin("herald-worker")
        .parent()
        .expect("the binaries' directory")
        .to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let run = |command: &str| {
        Command::new("sh")
            .args(["-c", command])
            .env("PATH", &path)
            .env("REDIS_URL", redis.url())
            .env("HERALD_NAMESPACE", &namespace)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .output()
            .expect("run sh")
    };
    let listed = run("herald-worker dlq list --json");
    assert_exit(&listed, 0);
    let id = json(&listed)[0]["id"]
        .as_str()
        .expect("a dead letter's id")
        .to_string();
    let mut last = None;
    for command in herald_demo::TRY_NEXT {
        let command = command.replace("<ID>", &id);
        let out = run(&command);
        assert!(
            out.status.success(),
            "{command}: {:?}\n{}{}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        last = Some(stdout(&out));
    }
    // The last replays for real: the OTP that met a 500 three times goes back on its lane.
    let replayed = last.unwrap();
    assert!(
        replayed.starts_with("replayed 1 of 1 selected dead letters (otp 1, booking 0)"),
        "{replayed}"
    );
}
