//! The command line's contract: bad usage or configuration, and Redis unreachable, are one
//! line on stderr and exit 2, and no secret (the API key, the webhook secret, the Redis
//! password) is ever printed; `status --json` has the documented integer fields.

use std::process::Command;

use herald_tests::cargo_bin;

use herald_tests::scenario::{SandboxSetup, Scenario};

/// What every secret is set to in these cases; it must never be printed.
const SECRET: &str = "secret-key";

/// `herald-worker ARGS` with `env` added, and a Redis URL whose password is [`SECRET`] on a
/// port where nothing listens.
fn worker(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    binary("herald-worker", args, env)
}

/// [`worker`] for any of the project's binaries.
fn binary(name: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(cargo_bin(name));
    cmd.args(args)
        .env_remove("INTERAKT_API_KEY")
        .env_remove("INTERAKT_WEBHOOK_SECRET")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("REDIS_URL", format!("redis://:{SECRET}@127.0.0.1:1"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap_or_else(|e| panic!("run {name}: {e}"))
}

/// Arguments, environment, and what stderr must name.
type Case = (
    Vec<&'static str>,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

#[test]
fn missing_api_key_and_bad_flags_exit_2_with_one_line() {
    let key = ("INTERAKT_API_KEY", SECRET);
    let webhook_secret = ("INTERAKT_WEBHOOK_SECRET", SECRET);
    let cases: Vec<Case> = vec![
        (vec!["run"], vec![], "INTERAKT_API_KEY"),
        (vec!["run", "--rate", "lots"], vec![key], "--rate"),
        (
            vec!["run", "--api-key", SECRET, "--rate", "lots"],
            vec![],
            "--rate",
        ),
        (
            vec!["run", "--plan", "enterprise"],
            vec![key],
            "INTERAKT_RATE_LIMIT",
        ),
        (
            vec!["run", "--concurrency", "0"],
            vec![key],
            "--concurrency",
        ),
        (
            vec!["run", "--claim-idle", "1s"],
            vec![key],
            "HERALD_CLAIM_IDLE",
        ),
        (
            vec!["run", "--backoff-base", "soon"],
            vec![key],
            "--backoff-base",
        ),
        (
            vec!["run"],
            vec![key, ("DLT_SENDER_ID", "HERALD")],
            "DLT_PE_ID",
        ),
        (
            vec!["run", "--namespace", "a{b"],
            vec![key],
            "HERALD_NAMESPACE",
        ),
        (vec!["status"], vec![key], "cannot reach Redis"),
        (vec!["track", "some-job"], vec![key], "cannot reach Redis"),
        (vec!["dlq", "list"], vec![key], "cannot reach Redis"),
        (vec!["track"], vec![key], "JOB_ID"),
        (
            vec!["track", "j", "--interakt-id", "m"],
            vec![key],
            "--interakt-id",
        ),
        (vec!["webhook"], vec![webhook_secret], "--listen"),
        (vec!["webhook", "--secret", SECRET], vec![], "--listen"),
        (
            vec!["webhook", "--listen", "127.0.0.1:0"],
            vec![("INTERAKT_WEBHOOK_SECRET", " ")],
            "INTERAKT_WEBHOOK_SECRET",
        ),
        (vec!["no-such-command"], vec![key], "no-such-command"),
        (
            vec!["run"],
            vec![key, ("TOKIO_WORKER_THREADS", "0")],
            "TOKIO_WORKER_THREADS",
        ),
        (
            vec!["status"],
            vec![key, ("TOKIO_WORKER_THREADS", "two")],
            "TOKIO_WORKER_THREADS",
        ),
    ];
    for (args, env, expected) in cases {
        let out = worker(&args, &env);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: the error must be exactly one line:\n{stderr}"
        );
        assert!(
            stderr.starts_with("herald-worker: ") && stderr.ends_with('\n'),
            "{args:?}: one line, `herald-worker: ...`: {stderr:?}"
        );
        assert!(stdout.is_empty(), "{args:?}: nothing on stdout: {stdout}");
        assert!(
            !stderr.contains(SECRET),
            "{args:?}: a secret reached stderr: {stderr}"
        );
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

/// A worker started without `MALLOC_ARENA_MAX` runs with one malloc arena (it runs itself
/// again with the variable set: its peak memory, docs/performance.md), under its own pid,
/// and still sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_runs_with_one_malloc_arena_under_its_own_pid() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    s.enqueue_bookings(0..3).await;
    let worker = s.worker("w1", &[]);
    s.wait_drained(std::time::Duration::from_secs(30)).await;
    let environ = std::fs::read(format!("/proc/{}/environ", worker.pid())).unwrap();
    let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
    assert!(
        vars.contains(&&b"MALLOC_ARENA_MAX=1"[..]),
        "the worker's environment: {}",
        String::from_utf8_lossy(&environ)
    );
    assert_eq!(s.accepted().len(), 3);
}

/// The other binaries refuse a runtime size that is not a number of threads with one line
/// naming the variable, exit 2 (tokio, reading the variable itself, panicked: exit 101).
#[test]
fn every_binary_refuses_a_bad_runtime_size_naming_it() {
    let cases = [
        ("herald-producer", vec!["status"], vec![]),
        (
            "herald-webhook",
            vec!["--listen", "127.0.0.1:0"],
            vec![("INTERAKT_WEBHOOK_SECRET", SECRET)],
        ),
        ("herald-dashboard", vec![], vec![]),
    ];
    for (bin, args, mut env) in cases {
        env.push(("TOKIO_WORKER_THREADS", "0"));
        let out = binary(bin, &args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bin}: {stderr}");
        assert!(stderr.contains("TOKIO_WORKER_THREADS"), "{bin}: {stderr}");
        assert!(!stderr.contains(SECRET), "{bin}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{bin}: {stderr}");
    }
}
