//! The OTP guard as the producer answers it: its settings validated at start (exit 2 naming
//! the variable and the flag), a refusal on the command line (exit 3, one line), per line in
//! `bulk`, per item in a batch (the others enqueued) and as 429 with `Retry-After` over HTTP;
//! `verified` and `POST /v1/otp/verified`. The rules themselves: `store/tests/guard.rs`.

use std::sync::Arc;
use std::time::Duration;

use assert_cmd::Command;
use herald_shared::{Lane, Redacted};
use herald_store::guard::Guard;
use herald_tests::RedisServer;
use producer::api::ApiState;
use producer::api::auth::Tokens;
use serde_json::{Value, json};

use crate::support::{self, lane_jobs};

fn cli(url: &str) -> Command {
    let mut cmd = Command::cargo_bin("herald-producer").unwrap();
    for var in [
        "REDIS_URL",
        "HERALD_NAMESPACE",
        "HERALD_OTP_GUARD",
        "HERALD_OTP_PER_NUMBER",
        "HERALD_OTP_PER_PREFIX",
        "HERALD_OTP_BLOCK",
        "HERALD_OTP_COUNTRIES",
        "HERALD_OTP_MIN_CONVERSION",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(["--redis-url", url])
        .timeout(Duration::from_secs(30));
    cmd
}

const OTP: [&str; 5] = ["otp", "--phone", "+919876543210", "--code", "123456"];

#[test]
fn a_bad_guard_setting_exits_2_naming_the_variable_and_the_flag() {
    let server = RedisServer::start();
    for (var, value) in [
        ("HERALD_OTP_GUARD", "maybe"),
        ("HERALD_OTP_PER_NUMBER", "five"),
        ("HERALD_OTP_PER_PREFIX", "30/2d"),
        ("HERALD_OTP_BLOCK", "0s"),
        ("HERALD_OTP_COUNTRIES", "+91,+999"),
        ("HERALD_OTP_MIN_CONVERSION", "2"),
    ] {
        let flag = format!(
            "--{}",
            var["HERALD_".len()..]
                .to_ascii_lowercase()
                .replace('_', "-")
        );
        for serve in [false, true] {
            let mut cmd = cli(&server.url());
            cmd.env(var, value);
            if serve {
                cmd.args(["serve", "--listen", "127.0.0.1:0", "--tokens", "t"]);
            } else {
                cmd.args(OTP);
            }
            let out = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
            assert!(
                stderr.starts_with(&format!("herald-producer: {var} ({flag}): ")),
                "{stderr}"
            );
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
        }
    }
    assert_eq!(support::dbsize(&server), 0, "nothing written");
}

#[test]
fn a_refused_otp_exits_3_with_one_line_and_bulk_reports_it_per_line() {
    let server = RedisServer::start();
    let url = server.url();
    for _ in 0..2 {
        cli(&url)
            .args(["--otp-per-number", "2/1h"])
            .args(OTP)
            .assert()
            .code(0);
    }
    let out = cli(&url)
        .args(["--otp-per-number", "2/1h"])
        .args(OTP)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("OTP refused (per_number)"), "{stderr}");
    assert!(stderr.contains("+91********10"), "{stderr}");
    assert!(
        stderr.contains("frees in 59m") || stderr.contains("frees in 1h"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    // Off: the same OTP goes.
    cli(&url)
        .args(["--otp-guard", "off"])
        .args(OTP)
        .assert()
        .code(0);

    // Bulk: the refused lines reported by number, the others enqueued.
    let lines = [
        r#"{"kind":"otp","phone":"+447911123456","code":"1"}"#,
        r#"{"kind":"otp","phone":"+919812345678","code":"2"}"#,
        r#"{"kind":"booking","phone":"+447911123456","booking_id":"B1","service":"Cut","date":"2030-11-24","time":"10:30"}"#,
    ]
    .join("\n");
    let out = cli(&url)
        .args(["--otp-countries", "+91", "bulk", "--json"])
        .write_stdin(lines)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("line 1: OTP refused (country): +44 is not in HERALD_OTP_COUNTRIES"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary,
        json!({"enqueued": 2, "duplicates": 0, "rejected": 1, "refused": 1})
    );
}

#[test]
fn verified_counts_a_verification() {
    let server = RedisServer::start();
    cli(&server.url())
        .args(["verified", "--phone", "+919876543210"])
        .assert()
        .code(0)
        .stdout("");
    let out = cli(&server.url())
        .args(["verified", "--phone", "12345"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("phone"));
    let reports: bool = redis::cmd("EXISTS")
        .arg(support::keys().guard_reports())
        .query(&mut support::conn(&server))
        .unwrap();
    assert!(reports);
}

async fn api(server: &RedisServer, guard: Guard) -> String {
    let state = ApiState {
        producer: support::producer(server).await.with_guard(Some(guard)),
        tokens: Arc::new(Tokens::parse(&Redacted::new("t".to_string())).unwrap()),
        zone: herald_shared::schedule::Zone::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(producer::api::serve(
        listener,
        state,
        std::future::pending(),
    ));
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_429_with_the_rule_and_retry_after_and_a_batch_per_item() {
    let server = RedisServer::start();
    let guard = Guard {
        per_number: "1/1h".parse().unwrap(),
        countries: vec!["+91".into()],
        ..Guard::default()
    };
    let base = api(&server, guard).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth("t")
            .json(&body)
            .send()
    };
    let otp = json!({"phone": "+919876543210", "code": "123456"});
    assert_eq!(
        post("/v1/jobs/otp", otp.clone()).await.unwrap().status(),
        202
    );
    let refused = post("/v1/jobs/otp", otp.clone()).await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "otp_refused");
    assert_eq!(body["rule"], "per_number");
    assert_eq!(body["retry_after_s"], retry);
    assert!((3590..=3600).contains(&retry), "{retry}");

    // A country never frees: no wait to give.
    let abroad = post(
        "/v1/jobs/otp",
        json!({"phone": "+447911123456", "code": "1"}),
    )
    .await
    .unwrap();
    assert_eq!(abroad.status(), 429);
    assert!(abroad.headers().get("retry-after").is_none());
    let body: Value = abroad.json().await.unwrap();
    assert_eq!(body["rule"], "country");
    assert!(body.get("retry_after_s").is_none(), "{body}");

    // A batch: the refused item says so, the others are enqueued.
    let batch = post(
        "/v1/jobs/batch",
        json!([
            {"kind": "otp", "phone": "+919876543210", "code": "1"},
            {"kind": "otp", "phone": "+919812345678", "code": "2"},
        ]),
    )
    .await
    .unwrap();
    assert_eq!(batch.status(), 202);
    let body: Value = batch.json().await.unwrap();
    assert_eq!(body["enqueued"], 1, "{body}");
    assert_eq!(body["items"][0]["error"]["error"], "otp_refused", "{body}");
    assert_eq!(body["items"][0]["error"]["rule"], "per_number", "{body}");
    assert!(body["items"][1]["job_id"].is_string(), "{body}");
    // Every item refused: 429.
    let batch = post(
        "/v1/jobs/batch",
        json!([{"kind": "otp", "phone": "+447911123456", "code": "1"}]),
    )
    .await
    .unwrap();
    assert_eq!(batch.status(), 429);
    assert_eq!(lane_jobs(&server, Lane::Otp).len(), 2);

    let verified = post("/v1/otp/verified", json!({"phone": "+919876543210"}))
        .await
        .unwrap();
    assert_eq!(verified.status(), 204);
    let bad = post("/v1/otp/verified", json!({"phone": "no"}))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
