//! `dlq list`: newest first, one line per dead letter with the phone masked, filters, a JSON
//! array; `dlq show`: the whole dead letter with its history.

use std::time::Duration;

use herald_tests::scenario::{SandboxSetup, Scenario, booking, otp};

use crate::support::{EXHAUSTED, PERMANENT, assert_exit, dead, json, stderr, stdout};

const HOUR: Duration = Duration::from_secs(3600);

fn ids(rows: &serde_json::Value) -> Vec<String> {
    rows.as_array()
        .expect("a JSON array")
        .iter()
        .map(|row| row["id"].as_str().expect("an id").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_is_newest_first_masked_filtered_and_json() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let oldest = dead(booking(1), PERMANENT, 1, 3 * HOUR);
    let middle = dead(
        otp("+919000000001", Duration::from_secs(600)),
        EXHAUSTED,
        3,
        2 * HOUR,
    );
    let newest = dead(booking(2), EXHAUSTED, 3, HOUR);
    s.store_dead_letters(&[oldest.clone(), middle.clone(), newest.clone()])
        .await;

    let out = s.run_worker_command(&["dlq", "list", "--json"]);
    assert_exit(&out, 0);
    let rows = json(&out);
    assert_eq!(
        ids(&rows),
        [&*newest.job_id, &middle.job_id, &oldest.job_id],
        "newest first"
    );
    let row = &rows[1];
    assert_eq!(row["lane"], "otp");
    assert_eq!(row["reason"], EXHAUSTED);
    assert_eq!(row["attempts"], 3);
    assert!(row["dead_at"].is_string(), "{row}");
    let phone = row["phone"].as_str().unwrap();
    assert!(
        phone.ends_with("01") && !phone.contains("9000000001"),
        "masked: {phone}"
    );

    let filtered = |args: &[&str]| {
        let out = s.run_worker_command(&[&["dlq", "list", "--json"], args].concat());
        assert_exit(&out, 0);
        ids(&json(&out))
    };
    assert_eq!(filtered(&["--lane", "otp"]), [middle.job_id.as_str()]);
    assert_eq!(
        filtered(&["--reason", "http 500"]),
        [newest.job_id.as_str(), &middle.job_id],
        "a case-insensitive substring of the reason"
    );
    assert_eq!(
        filtered(&["--reason", "HTTP 500", "--limit", "1"]),
        [newest.job_id.as_str()]
    );
    assert!(filtered(&["--reason", "no such reason"]).is_empty());

    let out = s.run_worker_command(&["dlq", "list"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "a header and one line each:\n{text}");
    assert!(lines[1].starts_with(&newest.job_id), "{text}");
    assert!(
        lines[2].contains("otp") && lines[2].contains(EXHAUSTED),
        "{text}"
    );
    assert!(!text.contains("9000000001"), "phones are masked:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_prints_the_whole_dead_letter_with_its_history() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let letter = dead(
        otp("+919000000001", Duration::from_secs(600)),
        EXHAUSTED,
        3,
        HOUR,
    );
    s.store_dead_letters(std::slice::from_ref(&letter)).await;

    let out = s.run_worker_command(&["dlq", "show", &letter.job_id]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("\n  \"reason\""), "pretty JSON:\n{text}");
    let shown = json(&out);
    assert_eq!(shown["job_id"], letter.job_id.as_str());
    assert_eq!(shown["reason"], EXHAUSTED);
    let attempts = shown["job"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[0]["status"], 500);
    assert_eq!(attempts[0]["body"], "{\"result\":false}");
    assert_eq!(shown["job"]["payload"]["phone"], "+919000000001");
    assert!(
        !text.contains("123456"),
        "the OTP's code stays hidden:\n{text}"
    );

    let out = s.run_worker_command(&["dlq", "show", "no-such-id"]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("\"no-such-id\""), "{}", stderr(&out));
}
