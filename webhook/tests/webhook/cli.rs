//! The command's start-up contract, over the real binaries (`herald-webhook` and
//! `herald-worker webhook`): no secret is exit 2 with one line naming
//! `INTERAKT_WEBHOOK_SECRET`; `--insecure-no-signature` starts, warns, and takes unsigned
//! posts.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use herald_tests::scenario::http_status;
use herald_tests::{RedisServer, WorkerProcess, cargo_bin, free_port, wait_until};

use crate::support::{NAMESPACE, fixture};

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
