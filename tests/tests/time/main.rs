//! End-to-end guarantees of time and change (issue 12): jobs sent later, cancelled, or
//! superseded, never stale. Real redis-server, real `herald-producer` and `herald-worker`
//! processes, the sandbox standing in for Interakt. Each test's name says which guarantee it
//! pins.
//!
//! - `schedule`: send later (`--in`, `send_at`), moved to its lane once by whichever
//!   replica gets there first; reminders; OTPs refused; stale jobs never sent.
//! - `cancel`: wherever a job waits (scheduled, in a replica's hand waiting for a token),
//!   a cancel before its send begins means it is never sent; the answers and exit codes.
//! - `supersede`: a replace key keeps at most one unsent job; one already being sent stands;
//!   1,000 OTPs for 100 users under load.
//! - `lifecycle`: one lifecycle every path agrees on (issue 25): each failure a black-box
//!   review found, pinned.
//! - `model`: the lifecycle model-checked: seeded random operations and faults, invariants
//!   at the end.

mod cancel;
mod lifecycle;
mod model;
mod schedule;
mod supersede;

use std::process::Output;

use herald_tests::scenario::Scenario;

/// A far-off appointment date: bookings are not sent after their appointment starts.
pub const FUTURE_DATE: &str = "2030-11-24";

/// Runs `herald-producer ARGS`, asserts it succeeded, and returns the job id it printed.
pub fn enqueue(s: &Scenario, args: &[&str]) -> String {
    let out = s.run_producer(args);
    assert!(
        out.status.success(),
        "herald-producer {args:?}: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// stdout and stderr, for messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `booking` arguments for test phone `i`, with `extra` after them.
pub fn booking<'a>(phone: &'a str, id: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "booking",
        "--phone",
        phone,
        "--booking-id",
        id,
        "--service",
        "Haircut",
        "--date",
        FUTURE_DATE,
        "--time",
        "10:30",
    ];
    args.extend_from_slice(extra);
    args
}

/// The code an OTP message the sandbox accepted carried (the first word of its card).
pub fn otp_code(message: &herald_sandbox::AcceptedMessage) -> String {
    message.request["message"]["richCardDetails"]["standalone"]["content"]["cardDescription"]
        .as_str()
        .and_then(|d| d.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}
