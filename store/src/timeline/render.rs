//! The text `herald-worker track` prints.

use time::OffsetDateTime;

use super::{EventKind, JobTimeline};

/// The human-readable timeline `herald-worker track` prints.
pub fn render(timeline: &JobTimeline) -> String {
    let mut out = format!("job {}\n", timeline.job_id);
    let mut about = vec![format!("state: {}", timeline.state.as_str())];
    about.extend(timeline.kind.as_ref().map(|k| format!("kind: {k}")));
    about.extend(timeline.lane.as_ref().map(|l| format!("lane: {l}")));
    about.extend(timeline.phone.as_ref().map(|p| format!("phone: {p}")));
    about.extend(
        timeline
            .message_id
            .as_ref()
            .map(|m| format!("interakt id: {m}")),
    );
    about.extend(
        timeline
            .retry_at
            .map(|at| format!("next attempt: {}", display_time(at))),
    );
    about.extend(
        timeline
            .send_at
            .map(|at| format!("due: {}", display_time(at))),
    );
    out.push_str(&format!("  {}\n", about.join(", ")));
    let mut attempt = 0;
    for event in &timeline.events {
        let what = match event.event {
            EventKind::Attempt => {
                attempt += 1;
                let mut text = format!(
                    "attempt {attempt}: {}",
                    event.outcome.as_deref().unwrap_or("?")
                );
                if let Some(status) = event.status {
                    text.push_str(&format!(" (HTTP {status})"));
                }
                if let Some(error) = &event.error {
                    text.push_str(&format!(": {error}"));
                }
                text
            }
            EventKind::Sent => format!(
                "sent, interakt id {}",
                event.message_id.as_deref().unwrap_or("unknown")
            ),
            EventKind::Dead => format!(
                "dead-lettered: {}",
                event.reason.as_deref().unwrap_or("no reason recorded")
            ),
            EventKind::Cancelled => event.reason.clone().unwrap_or_else(|| "cancelled".into()),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
                .replace('_', " "),
        };
        out.push_str(&format!("  {}  {what}\n", display_time(event.at)));
    }
    out
}

/// `2026-11-23 10:00:00.123 UTC`: what a person reads in `track`'s text output.
fn display_time(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3] UTC"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(format)
        .expect("a UTC timestamp formats")
}
