//! What a demo run did, counted from Herald's own records and the sandbox's, and the text
//! it prints.

use std::time::Duration;

use serde::Serialize;

use crate::options::*;

/// Dead letters with the same reason.
#[derive(Clone, Debug, Serialize)]
pub struct ReasonCount {
    pub reason: String,
    pub count: usize,
}

/// What the demo saw: Herald's counters next to the sandbox's record.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Jobs enqueued, and of them OTPs and bookings.
    pub enqueued: usize,
    pub otp: usize,
    pub booking: usize,
    /// Herald's counters (`herald-worker status`): sent, retries after a failure, retries
    /// after a 429, dead letters.
    pub sent: u64,
    pub retried: u64,
    pub rate_limited: u64,
    pub dead: u64,
    pub dead_reasons: Vec<ReasonCount>,
    /// Cancelled or superseded before their send began: the demo cancels one booking and
    /// resends one OTP.
    pub cancelled: u64,
    /// What Interakt's webhooks reported, as the receiver recorded it (`herald-worker
    /// status`): sent messages delivered, read, and revoked (not delivered in time; SMS
    /// fallback would take over), each counted once; and entries on the inbound stream
    /// (replies and suggestion taps).
    pub delivered: u64,
    pub read: u64,
    pub revoked: u64,
    pub inbound: u64,
    /// The sandbox's record: every request that reached it, and the messages it accepted.
    pub requests: u64,
    pub accepted: u64,
    /// The most requests the sandbox saw in any sliding window of `window_ms`, and the limit.
    pub max_in_window: u64,
    pub window_ms: u64,
    pub limit: u32,
    pub rate: String,
    pub workers: usize,
    pub elapsed_ms: u64,
    /// Where the demo's data is (credentials masked), and whether it was left there.
    pub redis_url: String,
    pub namespace: String,
    pub kept: bool,
    /// The pid of the demo's own `redis-server`, when it was left running.
    pub redis_pid: Option<u32>,
    /// The operator dashboard over the demo's data, the run's made-up login token, and its
    /// pid when `keep` left it running.
    pub dashboard_url: String,
    pub dashboard_token: String,
    pub dashboard_pid: Option<u32>,
}

/// The summary table and the commands to try next.
pub fn render(summary: &Summary) -> String {
    let s = summary;
    let mut out = format!(
        "\nHerald demo: {} jobs ({} OTPs, {} bookings), {} workers, Interakt sandbox limited to {}, {:.1}s\n\n",
        s.enqueued,
        s.otp,
        s.booking,
        s.workers,
        s.rate,
        s.elapsed_ms as f64 / 1000.0
    );
    let row = |label: &str, n: u64, note: &str| format!("  {label:<15}{n:>5}   {note}\n");
    out.push_str(&row("sent", s.sent, "accepted by Interakt (the sandbox)"));
    out.push_str(&row(
        "retried",
        s.retried,
        "failed (503/500), sent again after a backoff",
    ));
    out.push_str(&row(
        "rate-limited",
        s.rate_limited,
        "answered 429: every worker paused, then sent again",
    ));
    out.push_str(&row(
        "cancelled",
        s.cancelled,
        "cancelled or superseded (a resent OTP) before sending: never sent",
    ));
    out.push_str(&row("dead-lettered", s.dead, "given up on, with a reason:"));
    for reason in &s.dead_reasons {
        out.push_str(&format!(
            "{:>26} × {}\n",
            reason.count,
            herald_operator::dlq::render_reason(&reason.reason)
        ));
    }
    out.push_str(&row(
        "delivered",
        s.delivered,
        "reported delivered by Interakt's webhooks",
    ));
    out.push_str(&row("read", s.read, "reported read (opened by the user)"));
    out.push_str(&row(
        "revoked",
        s.revoked,
        "not delivered in time, revoked: SMS fallback would take over",
    ));
    out.push_str(&row(
        "inbound",
        s.inbound,
        "replies/taps on the inbound stream, for your services",
    ));
    let unreported = s.sent.saturating_sub(s.delivered + s.revoked);
    if unreported > 0 {
        out.push_str(&format!(
            "{:>26} sent with no report after {}s\n",
            unreported,
            DELIVERY_WAIT.as_secs()
        ));
    }
    out.push_str(&format!(
        "\n  requests to Interakt: {} (the busiest {} window held {}; the limit is {})\n",
        s.requests,
        humantime::format_duration(Duration::from_millis(s.window_ms)),
        s.max_in_window,
        s.limit
    ));
    out.push_str(&next_commands(s));
    out
}

/// The commands the summary suggests trying on the demo's data, in order (`<ID>`: a dead
/// letter's id, as `dlq list` shows it). Each works on a kept demo (a test runs them): the
/// replay takes back the OTP that met a 500 three times, `--extend` giving it a new deadline
/// if its ten minutes have passed (a kept demo runs no worker, so its code is still there).
/// An expired job is never suggested: a replay cannot bring one back (its OTP code is
/// erased, or its deadline is its appointment), as [`EXPIRED_NOTE`] says.
pub const TRY_NEXT: [&str; 5] = [
    "herald-worker status",
    "herald-worker dlq list",
    "herald-worker dlq show <ID>",
    "herald-worker dlq replay --reason \"HTTP 500\" --extend 10m --dry-run",
    "herald-worker dlq replay --reason \"HTTP 500\" --extend 10m",
];

/// Printed after [`TRY_NEXT`]: why the expired dead letters are not among the replays.
pub const EXPIRED_NOTE: &str = "The expired ones cannot come back: an OTP's code is erased at its deadline (the customer asks for a new one) and a booking's deadline is its appointment; `dlq replay --reason expired --dry-run` says so for each.";

pub(crate) fn next_commands(s: &Summary) -> String {
    let mut out = String::new();
    if s.kept {
        out.push_str("\nThe demo's data is still there. Try next:\n");
        out.push_str(&format!("  export REDIS_URL={}\n", s.redis_url));
        if s.namespace != herald_shared::config::DEFAULT_NAMESPACE {
            out.push_str(&format!("  export HERALD_NAMESPACE={}\n", s.namespace));
        }
    } else {
        out.push_str(
            "\nThe demo removed what it started. To look around afterwards, run `herald-demo --keep` (`cargo run -p herald-demo -- --keep`), then:\n",
        );
    }
    for command in TRY_NEXT {
        out.push_str(&format!("  {command}\n"));
    }
    out.push_str(EXPIRED_NOTE);
    out.push('\n');
    if s.kept {
        out.push_str(&format!(
            "The dashboard is still running: open {} and log in with the token {}\n",
            s.dashboard_url, s.dashboard_token
        ));
    }
    if let Some(pid) = s.redis_pid {
        out.push_str(&format!(
            "Replayed jobs wait on their lanes for `herald-worker run`. Stop the demo's Redis with: kill {pid}\n"
        ));
    }
    if let Some(pid) = s.dashboard_pid {
        out.push_str(&format!("Stop the dashboard with: kill {pid}\n"));
    }
    out
}
