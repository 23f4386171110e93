//! The dead letters: the filtered, paginated list with each letter's attempt history, one
//! letter whole (redacted as `dlq show` prints it), and the action pages (a preview with a
//! confirm button, then the result). Action forms are left out entirely when read-only.

use herald_operator::dlq::{self, Page, PageCursor};
use herald_shared::job::Attempt;
use herald_store::dead_letter::DeadLetter;
use maud::{Markup, html};

use super::{Frame, Nav, at, csrf_field, layout};
use crate::actions::{ActionForm, Outcome};

/// The list's filters as the query string carries them (and the pager's links keep them).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct DeadQuery {
    pub lane: Option<String>,
    pub reason: Option<String>,
    pub older_than: Option<String>,
    pub newer_than: Option<String>,
    /// The cursor: offsets into each lane's index.
    pub otp: Option<usize>,
    pub booking: Option<usize>,
    pub reminder: Option<usize>,
    pub bulk: Option<usize>,
}

impl DeadQuery {
    /// This query's link with its cursor moved to `next`.
    fn link(&self, next: PageCursor) -> String {
        let mut parts = Vec::new();
        for (name, value) in [
            ("lane", &self.lane),
            ("reason", &self.reason),
            ("older_than", &self.older_than),
            ("newer_than", &self.newer_than),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                parts.push(format!("{name}={}", encode(value)));
            }
        }
        parts.push(format!(
            "otp={}&booking={}&reminder={}&bulk={}",
            next.otp, next.booking, next.reminder, next.bulk
        ));
        format!("/dead?{}", parts.join("&"))
    }
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The list page.
pub fn list(frame: &Frame, query: &DeadQuery, page: &Page) -> Markup {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let lane = value(&query.lane);
    html! {
        (layout(frame, Nav::Dead, "Dead letters", html! {
            h1 { "Dead letters" }
            form.filters method="get" action="/dead" {
                label { "lane " select name="lane" {
                    option value="" selected[lane.is_empty()] { "any" }
                    option value="otp" selected[lane == "otp"] { "otp" }
                    option value="booking" selected[lane == "booking"] { "booking" }
                } }
                label { "reason contains " input type="text" name="reason" value=(value(&query.reason)) placeholder="HTTP 500"; }
                label { "dead for at least " input type="text" name="older_than" value=(value(&query.older_than)) placeholder="1h" size="6"; }
                label { "at most " input type="text" name="newer_than" value=(value(&query.newer_than)) placeholder="7d" size="6"; }
                button type="submit" { "Filter" }
            }
            p #dead-count {
                (page.in_range) " dead letters in this lane and age range"
                @if query.reason.as_deref().is_some_and(|r| !r.is_empty()) {
                    "; " (page.scanned) " read for this page, " (page.letters.len()) " matching the reason"
                }
                "."
            }
            @if page.letters.is_empty() {
                p #no-dead { "No dead letters here." }
            } @else {
                table #dead {
                    thead { tr { th { "id" } th { "lane" } th { "phone" } th { "attempts" } th { "dead at" } th { "reason" } @if !frame.read_only { th {} } } }
                    tbody {
                        @for letter in &page.letters {
                            (row(frame, letter))
                        }
                    }
                }
            }
            @if let Some(next) = page.next {
                p.pager { a #next-page href=(query.link(next)) { "Next page →" } }
            }
            @if !frame.read_only {
                @if let Some(csrf) = &frame.csrf { (bulk_forms(csrf, query)) }
            }
        }))
    }
}

fn row(frame: &Frame, letter: &DeadLetter) -> Markup {
    let row = dlq::Row::from(letter);
    let attempts: Vec<&Attempt> = letter
        .job
        .as_ref()
        .map(|job| job.attempts.iter().collect())
        .unwrap_or_default();
    html! {
        tr data-id=(row.id) {
            td { a href=(format!("/dead/{}", encode(&row.id))) { code { (row.id) } } }
            td { (row.lane.as_str()) }
            td { (row.phone) }
            td {
                details {
                    summary { (row.attempts) }
                    (attempt_table(&attempts))
                }
            }
            td.when { (at(row.dead_at)) }
            td.reason { (dlq::render_reason(&row.reason)) }
            @if !frame.read_only {
                td { @if let Some(csrf) = &frame.csrf { (replay_one(csrf, &row.id)) } }
            }
        }
    }
}

fn replay_one(csrf: &str, id: &str) -> Markup {
    html! {
        form.inline method="post" action="/actions/replay" {
            (csrf_field(csrf))
            input type="hidden" name="scope" value="one";
            input type="hidden" name="id" value=(id);
            button.replay type="submit" data-replay=(id) { "Replay…" }
        }
    }
}

/// Every attempt, replay markers included, as the history `dlq show` holds.
fn attempt_table(attempts: &[&Attempt]) -> Markup {
    html! {
        @if attempts.is_empty() {
            p { "no attempts recorded" }
        } @else {
            table.attempts {
                thead { tr { th { "at" } th { "outcome" } th { "status" } th { "error" } th { "consumer" } } }
                tbody {
                    @for a in attempts {
                        tr {
                            td.when { (at(a.at)) }
                            td { (a.outcome.as_str()) }
                            td { @if let Some(status) = a.status { (status) } }
                            td { (a.error.as_deref().map(dlq::render_reason).unwrap_or_default()) }
                            td { (a.consumer.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

fn bulk_forms(csrf: &str, query: &DeadQuery) -> Markup {
    html! {
        section.actions {
            h2 { "Actions" }
            p.hint { "Each shows what it will do first; nothing changes until you confirm." }
            form method="post" action="/actions/replay" #replay-reason {
                (csrf_field(csrf))
                input type="hidden" name="scope" value="reason";
                label { "Replay all whose reason contains " input type="text" name="reason" required value=(query.reason.clone().unwrap_or_default()) placeholder="HTTP 503"; }
                label { " extending OTP deadlines by " input type="text" name="extend" placeholder="10m" size="5"; }
                button type="submit" { "Replay…" }
            }
            form method="post" action="/actions/replay" #replay-all {
                (csrf_field(csrf))
                input type="hidden" name="scope" value="all";
                label { "Replay every dead letter, extending OTP deadlines by " input type="text" name="extend" placeholder="10m" size="5"; }
                button type="submit" { "Replay all…" }
            }
            form method="post" action="/actions/purge" #purge {
                (csrf_field(csrf))
                label { "Purge dead letters dead for longer than " input type="text" name="older_than" required placeholder="7d" size="5"; }
                button.danger type="submit" { "Purge…" }
            }
        }
    }
}

/// One letter whole.
pub fn letter(frame: &Frame, letter: &DeadLetter) -> Markup {
    let attempts: Vec<&Attempt> = letter
        .job
        .as_ref()
        .map(|job| job.attempts.iter().collect())
        .unwrap_or_default();
    layout(
        frame,
        Nav::Dead,
        "Dead letter",
        html! {
            h1 { "Dead letter " code { (letter.job_id) } }
            p { strong { "Reason: " } (letter.reason) }
            p { "Lane " (letter.lane.as_str()) ", dead at " (at(letter.dead_at)) ", given up by " code { (letter.consumer) } "." }
            @if !frame.read_only {
                @if let Some(csrf) = &frame.csrf { (replay_one(csrf, &letter.job_id)) }
            }
            h2 { "Attempts" }
            (attempt_table(&attempts))
            h2 { "As stored " small { "(the OTP code redacted)" } }
            pre.json { (dlq::to_pretty_json(letter)) }
        },
    )
}

/// The preview (with its confirm button) or the result of an action.
pub fn action(
    frame: &Frame,
    title: &str,
    path: &str,
    form: &ActionForm,
    outcome: &Outcome,
) -> Markup {
    layout(
        frame,
        Nav::Dead,
        title,
        html! {
            h1 { (title) }
            @if outcome.done {
                p.done #result { "Done." }
            } @else {
                p #preview { "Nothing has changed yet. This is what it will do:" }
            }
            pre.report { (outcome.report) }
            @if !outcome.done && outcome.actionable {
                @if let Some(csrf) = &frame.csrf {
                    form method="post" action=(path) #confirm {
                        (csrf_field(csrf))
                        @for (name, value) in [("scope", &form.scope), ("id", &form.id), ("reason", &form.reason), ("extend", &form.extend), ("older_than", &form.older_than)] {
                            @if let Some(value) = value { input type="hidden" name=(name) value=(value); }
                        }
                        input type="hidden" name="confirm" value="yes";
                        button.danger type="submit" { "Confirm" }
                    }
                }
            }
            @if path == "/actions/cancel" {
                p { a href="/jobs" { "Back to finding a job" } }
            } @else {
                p { a href="/dead" { "Back to the dead letters" } }
            }
        },
    )
}
