//! The command's start-up contract, over the real binaries (`herald-webhook` and
//! `herald-worker webhook`): no secret is exit 2 with one line naming
//! `INTERAKT_WEBHOOK_SECRET`; `--insecure-no-signature` starts, warns, and takes unsigned
//! posts; stale events are logged once per POST, without a secret in the line.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use herald_tests::scenario::http_status;
use herald_tests::{RedisServer, WorkerProcess, cargo_bin, free_port, wait_until};

use crate::support::{NAMESPACE, array, fixture, restamp, send_time, user_event};

/// How long a command that should refuse to start gets to exit.
const EXIT_WITHIN: Duration = Duration::from_secs(20);

/// Runs `program args` with no secret in its environment (nor a `.env` to read one from);
/// its exit code and stderr, or `None` for the code when it was still running after
/// [`EXIT_WITHIN`] (it is killed).
fn run_without_secret(program: PathBuf, args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let stderr_path = dir.path().join("stderr");
    let mut child = Command::new(&program)
        .args(args)
        .current_dir(dir.path())
        .env_remove("INTERAKT_WEBHOOK_SECRET")
        .env_remove("HERALD_WEBHOOK_INSECURE_NO_SIGNATURE")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let deadline = Instant::now() + EXIT_WITHIN;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, std::fs::read_to_string(&stderr_path).unwrap())
}

#[test]
fn without_a_secret_both_commands_exit_2_with_one_line_naming_interakt_webhook_secret() {
    let herald_webhook = PathBuf::from(env!("CARGO_BIN_EXE_herald-webhook"));
    for (program, args) in [
        (herald_webhook, vec!["--listen", "127.0.0.1:0"]),
        (
            cargo_bin("herald-worker"),
            vec!["webhook", "--listen", "127.0.0.1:0"],
        ),
    ] {
        let (code, stderr) = run_without_secret(program.clone(), &args);
        let what = format!("{} {args:?}", program.display());
        assert_eq!(code, Some(2), "{what}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{what}: one line, got {stderr}");
        for needed in [
            "INTERAKT_WEBHOOK_SECRET (--secret)",
            "is required",
            "--insecure-no-signature",
        ] {
            assert!(lines[0].contains(needed), "{what}: {needed:?} in {stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_no_signature_starts_warns_and_records_unsigned_posts() {
    let redis = RedisServer::start();
    let listen = format!("127.0.0.1:{}", free_port());
    let receiver = WorkerProcess::webhook_insecure(&redis.url(), NAMESPACE, &listen, "insecure");
    wait_until("the receiver up", Duration::from_secs(20), || async {
        http_status(&format!("http://{listen}/readyz")).await == Some(200)
    })
    .await;
    let log = receiver.log();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("--insecure-no-signature")),
        "a warning at start: {log}"
    );

    let answer = reqwest::Client::new()
        .post(format!("http://{listen}/webhooks/interakt"))
        .header("content-type", "application/json")
        .body(fixture("webhook-user-message-text.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["recorded"], 1, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_events_are_logged_once_per_post_naming_no_secret() {
    let redis = RedisServer::start();
    let listen = format!("127.0.0.1:{}", free_port());
    let secret = "whsec-stale-test";
    let receiver = WorkerProcess::webhook(&redis.url(), NAMESPACE, &listen, secret, "stale");
    wait_until("the receiver up", Duration::from_secs(20), || async {
        http_status(&format!("http://{listen}/readyz")).await == Some(200)
    })
    .await;
    let four_days_ago = send_time(time::OffsetDateTime::now_utc() - time::Duration::days(4));
    let body = array((0..3).map(|i| {
        restamp(
            &user_event("READ", &format!("m-stale-{i}"), &format!("evt-stale-{i}")),
            &four_days_ago,
        )
    }));
    let answer = reqwest::Client::new()
        .post(format!("http://{listen}/webhooks/interakt"))
        .header("content-type", "application/json")
        .header(
            "interakt-signature",
            herald_shared::signature::sign(secret, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(answer["stale"], 3, "{answer}");
    let stale_lines = || {
        receiver
            .log()
            .lines()
            .filter(|l| l.contains("refused stale webhook events"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    wait_until("the stale events logged", Duration::from_secs(10), || {
        let logged = !stale_lines().is_empty();
        async move { logged }
    })
    .await;
    let lines = stale_lines();
    assert_eq!(lines.len(), 1, "once for the POST: {lines:?}");
    assert!(
        lines[0].contains("stale=3") && lines[0].contains("WARN"),
        "{lines:?}"
    );
    for never in [secret, "evt-stale", "m-stale", "+9198000"] {
        assert!(!lines[0].contains(never), "{never} in {lines:?}");
    }
}
