//! The text people read: `dlq list`'s table and JSON rows, `dlq show`'s pretty JSON (an
//! OTP's code hidden), and the summaries of `dlq replay` and `dlq purge`. Pure.

use herald_shared::Lane;
use herald_store::dead_letter::DeadLetter;
use serde::Serialize;
use time::OffsetDateTime;

use super::plan::{NotReplayed, PurgeReport, ReplayReport};

/// The most ids a report lists one by one; the rest are counted.
const SHOWN: usize = 20;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub id: String,
    pub lane: Lane,
    /// Masked (`+91******0001`); empty for an entry that never decoded into a job.
    pub phone: String,
    pub reason: String,
    /// Send attempts, over every life of the job (replay markers not counted).
    pub attempts: usize,
    #[serde(with = "time::serde::rfc3339")]
    pub dead_at: OffsetDateTime,
}

impl From<&DeadLetter> for Row {
    fn from(letter: &DeadLetter) -> Row {
        let job = letter.job.as_ref();
        Row {
            id: letter.job_id.clone(),
            lane: letter.lane,
            phone: job
                .map(|j| herald_shared::phone::mask(&j.phone()))
                .unwrap_or_default(),
            reason: letter.reason.clone(),
            attempts: job.map_or(0, |j| j.attempts.iter().filter(|a| a.is_send()).count()),
            dead_at: letter.dead_at,
        }
    }
}

/// A dead letter as `dlq show` prints it: pretty JSON, everything but an OTP's code, which
/// is a secret an operator never needs and a terminal or a ticket must not keep.
pub fn to_pretty_json(letter: &DeadLetter) -> String {
    let mut value = serde_json::to_value(letter).expect("a dead letter serializes");
    if let Some(code) = value.pointer_mut("/job/payload/code") {
        *code = serde_json::Value::String("[redacted]".into());
    }
    // Letters stored before raw entries were redacted at the source still hold them whole.
    if let Some(raw) = value.pointer_mut("/raw")
        && let Some(text) = raw.as_str()
    {
        *raw = serde_json::Value::String(herald_store::dead_letter::redact_raw(text));
    }
    serde_json::to_string_pretty(&value).expect("a JSON value serializes")
}

/// `2026-11-24T10:30:00Z`: to the second, for tables.
fn short_time(at: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_else(|_| at.to_string())
}

/// The table of `dlq list`; the reason, which may be long, comes last.
pub fn render_list(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "no dead letters\n".to_string();
    }
    let mut out = format!(
        "{:<38} {:<8} {:<15} {:>8}  {:<21} {}\n",
        "ID", "LANE", "PHONE", "ATTEMPTS", "DEAD AT", "REASON"
    );
    for row in rows {
        out.push_str(&format!(
            "{:<38} {:<8} {:<15} {:>8}  {:<21} {}\n",
            row.id,
            row.lane.as_str(),
            row.phone,
            row.attempts,
            short_time(row.dead_at),
            render_reason(&row.reason)
        ));
    }
    out
}

/// A reason on one line, cut to 100 characters for tables (`dlq show` has it whole).
pub fn render_reason(reason: &str) -> String {
    const MAX: usize = 100;
    let flat = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAX {
        return flat;
    }
    let mut cut: String = flat.chars().take(MAX - 1).collect();
    cut.push('…');
    cut
}

/// The summary of `dlq replay`.
pub fn render_replay(report: &ReplayReport) -> String {
    let mut out = String::new();
    let r = &report.replayed;
    let verb = if report.dry_run {
        "would replay"
    } else {
        "replayed"
    };
    if report.matched == 0 && report.complete() {
        return "no dead letters matched; nothing to replay\n".to_string();
    }
    out.push_str(&format!(
        "{verb} {} of {} selected dead letters",
        r.total(),
        report.matched
    ));
    if r.total() > 0 {
        let by_lane: Vec<String> = Lane::ALL
            .iter()
            .filter(|lane| r.get(**lane) > 0 || matches!(lane, Lane::Otp | Lane::Booking))
            .map(|lane| format!("{lane} {}", r.get(*lane)))
            .collect();
        out.push_str(&format!(" ({})", by_lane.join(", ")));
    }
    if report.extended > 0 {
        out.push_str(&format!(
            "; {} given a new deadline by --extend",
            report.extended
        ));
    }
    out.push('\n');
    if report.dry_run {
        out.push_str("dry run: nothing was changed\n");
    }
    if !report.not_replayed.is_empty() {
        out.push_str(&format!("not replayed: {}\n", report.not_replayed.len()));
        for (id, why) in report.not_replayed.iter().take(SHOWN) {
            out.push_str(&format!("  {id}: {}\n", explain(id, why)));
        }
        if report.not_replayed.len() > SHOWN {
            out.push_str(&format!(
                "  ... and {} more (see `herald-worker dlq list`)\n",
                report.not_replayed.len() - SHOWN
            ));
        }
    }
    out
}

fn explain(id: &str, why: &NotReplayed) -> String {
    match why {
        NotReplayed::NotFound => {
            "not found: no dead letter has this id (already replayed or purged?); see `herald-worker dlq list`".into()
        }
        NotReplayed::NoJob => format!(
            "no job to replay: the entry never decoded into one; see `herald-worker dlq show {id}`"
        ),
        NotReplayed::Expired {
            deadline,
            extendable: true,
        } => format!(
            "expired at {}; give it a new deadline with --extend (e.g. --extend 10m)",
            short_time(*deadline)
        ),
        NotReplayed::Expired {
            deadline,
            extendable: false,
        } => format!(
            "expired at {}: its deadline is its appointment's, which a replay cannot move (--extend gives OTPs a new validity only); enqueue a new message if it still matters (`herald-producer booking` or `reminder`, with a new idempotency key)",
            short_time(*deadline)
        ),
        NotReplayed::Unreadable(reason) => format!("unreadable dead letter ({reason})"),
        NotReplayed::Changing => {
            "dead-lettered again while being replayed (a worker keeps failing it); try again".into()
        }
        NotReplayed::CodeErased => {
            "its OTP code was erased when its deadline passed (codes are secrets), so no replay can send it, --extend or not: the customer must ask for a new code (a new `herald-producer otp`)".into()
        }
        NotReplayed::Superseded { by } => format!(
            "superseded: its replace key names the newer job {by}; replaying it would send a stale message after the newer one"
        ),
        NotReplayed::KeyTaken { by } => format!(
            "its idempotency key now holds job {by} (the same message enqueued again): replaying it would send it twice"
        ),
        NotReplayed::NotDead { state } => format!(
            "its record says it is {state}, not dead (replayed meanwhile?); see `herald-worker track {id}`"
        ),
    }
}

/// The summary of `dlq purge`.
pub fn render_purge(report: &PurgeReport) -> String {
    let mut out = String::new();
    let n = report.ids.len();
    if report.confirmed {
        out.push_str(&format!("deleted {n} dead letters\n"));
    } else if n == 0 {
        out.push_str("nothing to purge\n");
    } else {
        out.push_str(&format!("would delete {n} dead letters:\n"));
        for id in report.ids.iter().take(SHOWN) {
            out.push_str(&format!("  {id}\n"));
        }
        if n > SHOWN {
            out.push_str(&format!("  ... and {} more\n", n - SHOWN));
        }
        out.push_str("nothing was deleted: run again with --yes to delete them\n");
    }
    for id in &report.not_found {
        out.push_str(&format!("  {id}: not found: no dead letter has this id\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlq::reason_matches;
    use crate::dlq::tests::{letter, otp};
    use std::time::Duration;

    #[test]
    fn reasons_match_case_insensitively_and_rows_mask_phones() {
        assert!(reason_matches(
            "permanent: HTTP 400: Invalid template",
            "invalid TEMPLATE"
        ));
        assert!(!reason_matches("expired", "http"));
        let row = Row::from(&letter(Some(otp(Duration::from_secs(60)))));
        assert!(!row.phone.contains("9000000001"), "{}", row.phone);
        assert!(row.phone.ends_with("01"), "{}", row.phone);
        let json = serde_json::to_value(&row).unwrap();
        for field in ["id", "lane", "phone", "reason", "attempts", "dead_at"] {
            assert!(json.get(field).is_some(), "{field} in {json}");
        }
    }

    #[test]
    fn what_cannot_be_replayed_says_what_can_be_done_instead() {
        let deadline = OffsetDateTime::UNIX_EPOCH;
        let report = ReplayReport {
            dry_run: false,
            matched: 3,
            not_replayed: vec![
                ("otp-1".into(), NotReplayed::CodeErased),
                (
                    "booking-1".into(),
                    NotReplayed::Expired {
                        deadline,
                        extendable: false,
                    },
                ),
                (
                    "otp-2".into(),
                    NotReplayed::Expired {
                        deadline,
                        extendable: true,
                    },
                ),
            ],
            ..ReplayReport::default()
        };
        let text = render_replay(&report);
        let line = |id: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(&format!("{id}:")))
                .unwrap_or_else(|| panic!("{id} in {text}"))
                .to_string()
        };
        // An erased code: no replay, with --extend or without; a new OTP is the way.
        let erased = line("otp-1");
        assert!(erased.contains("--extend or not"), "{erased}");
        assert!(erased.contains("herald-producer otp"), "{erased}");
        // A booking's deadline is its appointment: a new message, under a new key.
        let booking = line("booking-1");
        assert!(booking.contains("cannot move"), "{booking}");
        assert!(booking.contains("new idempotency key"), "{booking}");
        // An OTP whose code is still there: --extend is the way.
        assert!(line("otp-2").contains("--extend 10m"), "{text}");
    }

    #[test]
    fn show_hides_the_otp_code() {
        let shown = to_pretty_json(&letter(Some(otp(Duration::from_secs(60)))));
        assert!(!shown.contains("123456"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(
            shown.contains("+919000000001"),
            "the rest is whole: {shown}"
        );
    }
}
