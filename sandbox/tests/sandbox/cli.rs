use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_herald-sandbox");

/// The binary with none of its variables inherited from the test's environment.
fn sandbox() -> Command {
    let mut command = Command::new(BIN);
    for var in [
        "INTERAKT_API_KEY",
        "SANDBOX_LISTEN",
        "SANDBOX_RATE",
        "SANDBOX_RETRY_AFTER",
        "SANDBOX_FAIL_RATE",
        "SANDBOX_LATENCY",
        "SANDBOX_SCRIPT",
        "SANDBOX_SEED",
    ] {
        command.env_remove(var);
    }
    command
}

#[test]
fn bad_flags_exit_2_with_one_line_naming_the_flag() {
    for (args, names) in [
        (&["--api-key", "k", "--rate", "nope"][..], "--rate"),
        (&["--api-key", "k", "--rate", "0/1m"], "--rate"),
        (&["--api-key", "k", "--fail-rate", "1.5"], "--fail-rate"),
        (&["--api-key", "k", "--latency", "soon"], "--latency"),
        (
            &["--api-key", "k", "--script", "+919000000001=404"],
            "--script",
        ),
        (&["--api-key", "k", "--script", "+9112345=400"], "--script"),
        (&["--api-key", "k", "--listen", "localhost"], "--listen"),
        (&["--api-key", "k", "--bogus"], "--bogus"),
        (&["--api-key", ""], "--api-key"),
        (&[], "--api-key"),
    ] {
        let output = sandbox().args(args).output().expect("run herald-sandbox");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(names), "{args:?} names {names}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn the_variables_are_read_too() {
    let output = sandbox()
        .env("INTERAKT_API_KEY", "k")
        .env("SANDBOX_FAIL_RATE", "7")
        .output()
        .expect("run herald-sandbox");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--fail-rate"), "{stderr}");
}

#[test]
fn help_documents_exit_codes() {
    let output = sandbox()
        .arg("--help")
        .output()
        .expect("run herald-sandbox");
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--listen",
        "--api-key",
        "--rate",
        "--fail-rate",
        "--latency",
        "--script",
    ] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
    assert!(help.contains("Exit codes"), "{help}");
}

#[cfg(unix)]
#[tokio::test]
async fn logs_its_url_serves_and_exits_0_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::time::Duration;

    let mut child = sandbox()
        .args(["--listen", "127.0.0.1:0", "--rate", "300/1m"])
        .env("INTERAKT_API_KEY", "secret-key-42")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start herald-sandbox");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let next_line = || lines_rx.recv_timeout(Duration::from_secs(60)).ok();
    let first = next_line().expect("a start-up line");
    assert!(first.contains("listening on http://127.0.0.1:"), "{first}");
    assert!(
        !first.contains("secret-key-42"),
        "the key stays out of logs: {first}"
    );
    let start = first.find("http://").unwrap();
    let url = first[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    assert!(
        first.contains(&format!("INTERAKT_BASE_URL={url}/v1/public")),
        "{first}"
    );

    let client = reqwest::Client::new();
    let answer = client
        .post(format!("{url}/v1/public/rcs/message/"))
        .header("Authorization", "Basic secret-key-42")
        .json(&crate::support::card_for(crate::support::PHONE))
        .send()
        .await
        .expect("the binary serves");
    assert_eq!(answer.status(), 200);

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .expect("wait for herald-sandbox");
    assert_eq!(status.code(), Some(0), "a clean stop on SIGTERM");
    let rest: Vec<String> = std::iter::from_fn(next_line).collect();
    assert!(
        rest.iter().all(|line| !line.contains("secret-key-42")),
        "{rest:?}"
    );
}
