//! Dead letters made directly, and reading what `herald-worker` printed.

use std::process::Output;
use std::time::Duration;

use herald_shared::job::Attempt;
use herald_shared::{Job, Lane};
use herald_store::dead_letter::DeadLetter;
use time::OffsetDateTime;

/// `job` dead-lettered `ago` with `reason`, after `failures` transient attempts.
pub fn dead(mut job: Job, reason: &str, failures: usize, ago: Duration) -> DeadLetter {
    let dead_at = OffsetDateTime::now_utc() - ago;
    job.attempts = (0..failures)
        .map(|_| Attempt {
            at: dead_at,
            outcome: herald_shared::job::Outcome::Transient,
            status: Some(500),
            error: Some("HTTP 500".into()),
            body: Some("{\"result\":false}".into()),
            consumer: Some("w1".into()),
        })
        .collect();
    DeadLetter {
        job_id: job.id.to_string(),
        lane: job.lane(),
        reason: reason.into(),
        kind: None,
        consumer: "w1".into(),
        dead_at,
        job: Some(job),
        raw: None,
    }
}

/// An entry that never decoded into a job, as the worker dead-letters it.
pub fn undecodable(entry: &str) -> DeadLetter {
    DeadLetter {
        job_id: format!("entry:{entry}"),
        lane: Lane::Booking,
        reason: "undecodable: expected value at line 1 column 1".into(),
        kind: None,
        consumer: "w1".into(),
        dead_at: OffsetDateTime::now_utc(),
        job: None,
        raw: Some("not json".into()),
    }
}

pub const EXHAUSTED: &str = "exhausted: 3 attempts failed, last: HTTP 500";
pub const PERMANENT: &str = "permanent: HTTP 400: Invalid template";

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the exit code, showing both streams when it differs.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}", stdout(out)))
}
