//! The command line's contract: bad configuration is one line on stderr and exit 2;
//! `status --json` has the documented integer fields.

use std::process::Command;

use herald_tests::cargo_bin;

use herald_tests::scenario::{SandboxSetup, Scenario};

fn worker(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(cargo_bin("herald-worker"));
    cmd.args(args)
        .env_remove("INTERAKT_API_KEY")
        .env("REDIS_URL", "redis://127.0.0.1:1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run herald-worker")
}

/// Arguments, environment, and what stderr must name.
type Case = (
    Vec<&'static str>,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

#[test]
fn missing_api_key_and_bad_flags_exit_2_with_one_line() {
    let cases: Vec<Case> = vec![
        (vec!["run"], vec![], "INTERAKT_API_KEY"),
        (
            vec!["run", "--rate", "lots"],
            vec![("INTERAKT_API_KEY", "k")],
            "--rate",
        ),
        (
            vec!["run", "--plan", "enterprise"],
            vec![("INTERAKT_API_KEY", "k")],
            "INTERAKT_RATE_LIMIT",
        ),
        (
            vec!["run", "--concurrency", "0"],
            vec![("INTERAKT_API_KEY", "k")],
            "--concurrency",
        ),
        (
            vec!["run", "--claim-idle", "1s"],
            vec![("INTERAKT_API_KEY", "k")],
            "HERALD_CLAIM_IDLE",
        ),
        (
            vec!["run", "--backoff-base", "soon"],
            vec![("INTERAKT_API_KEY", "k")],
            "--backoff-base",
        ),
        (
            vec!["run"],
            vec![("INTERAKT_API_KEY", "k"), ("DLT_SENDER_ID", "HERALD")],
            "DLT_PE_ID",
        ),
        (
            vec!["run", "--namespace", "a{b"],
            vec![("INTERAKT_API_KEY", "k")],
            "HERALD_NAMESPACE",
        ),
        (vec!["status"], vec![], "cannot reach Redis"),
        (vec!["track", "some-job"], vec![], "cannot reach Redis"),
        (vec!["track"], vec![], "JOB_ID"),
        (
            vec!["track", "j", "--interakt-id", "m"],
            vec![],
            "--interakt-id",
        ),
        (vec!["webhook"], vec![], "--listen"),
        (
            vec!["webhook", "--listen", "127.0.0.1:0"],
            vec![("INTERAKT_WEBHOOK_SECRET", " ")],
            "INTERAKT_WEBHOOK_SECRET",
        ),
    ];
    for (args, env, expected) in cases {
        let out = worker(&args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
        assert!(!stderr.contains("secret-key"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_has_integer_counts() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    s.enqueue_bookings(0..3).await;
    let out = s.run_worker_command(&["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in ["ready", "pending", "delayed", "dead", "sent"] {
        assert!(status[field].is_u64(), "{field} in {status}");
    }
    assert_eq!(status["ready"], 3);
    assert_eq!(status["lanes"]["booking"]["ready"], 3);
}
