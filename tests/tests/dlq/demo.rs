//! `herald-demo` (and `herald-worker demo`, which hands over to it) with no configuration:
//! it starts its own Redis, runs to completion
//! in under a minute, its summary matches what the sandbox recorded, and the sandbox's
//! webhooks come back through the receiver: every sent message delivered (and read) or
//! revoked, and the scripted tap on the inbound stream.

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use herald_tests::cargo_bin;

use crate::support::{assert_exit, json, stderr};

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
