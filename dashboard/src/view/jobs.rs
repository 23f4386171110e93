//! Finding a job (by job id, Interakt message id, idempotency key or booking id) and its
//! timeline as `track` shows it; and the login page.

use herald_operator::find::{Found, Lookup};
use herald_store::timeline::{EventKind, JobState, JobTimeline};
use maud::{Markup, html};

use super::{Frame, Nav, at, csrf_field, layout};

/// The search form's fields.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct JobQuery {
    pub q: Option<String>,
    /// A [`Lookup`] name, or empty for any.
    pub by: Option<String>,
}

/// The search page, with what was found (`None`: nothing asked yet).
pub fn search(frame: &Frame, query: &JobQuery, found: Option<&[Found]>) -> Markup {
    let by = query.by.clone().unwrap_or_default();
    layout(
        frame,
        Nav::Jobs,
        "Find a job",
        html! {
            h1 { "Find a job" }
            form.filters method="get" action="/jobs" #find {
                input type="search" name="q" value=(query.q.clone().unwrap_or_default()) placeholder="job id, Interakt id, idempotency key or booking id" size="50" autofocus;
                select name="by" {
                    option value="" selected[by.is_empty()] { "any" }
                    @for lookup in Lookup::ALL {
                        option value=(lookup.as_str()) selected[by == lookup.as_str()] { (lookup.label()) }
                    }
                }
                button type="submit" { "Find" }
            }
            @if let Some(found) = found {
                @if found.is_empty() {
                    p #not-found { "No job found. Timelines are kept 7 days; a job still queued behind a long backlog may be out of the search's reach." }
                }
                @for f in found {
                    (timeline(frame, f))
                }
            }
        },
    )
}

fn timeline(frame: &Frame, found: &Found) -> Markup {
    let t: &JobTimeline = &found.timeline;
    // A job whose send has not begun can be cancelled (not in a read-only session: no CSRF).
    let cancellable = matches!(
        t.state,
        JobState::Scheduled | JobState::Queued | JobState::Retrying
    );
    html! {
        section.timeline data-job=(t.job_id) {
            h2 { "Job " code { (t.job_id) } }
            p {
                "found by " (found.by.label()) " · state " strong.state { (t.state.as_str()) }
                @if let Some(kind) = &t.kind { " · " (kind) }
                @if let Some(lane) = &t.lane { " · lane " (lane) }
                @if let Some(phone) = &t.phone { " · " (phone) }
                @if let Some(id) = &t.message_id { " · Interakt id " code { (id) } }
                @if let Some(retry) = t.retry_at { " · next attempt " (at(retry)) }
            }
            @if cancellable {
                @if let Some(csrf) = &frame.csrf {
                    form method="post" action="/actions/cancel" .cancel {
                        (csrf_field(csrf))
                        input type="hidden" name="id" value=(t.job_id);
                        button.danger type="submit" { "Cancel this job…" }
                    }
                }
            }
            ol.events {
                @for e in &t.events {
                    li {
                        span.when { (at(e.at)) } " "
                        strong { (event_name(e.event)) }
                        @if let Some(outcome) = &e.outcome { " " (outcome) }
                        @if let Some(status) = e.status { " (HTTP " (status) ")" }
                        @if let Some(error) = &e.error { ": " (error) }
                        @if let Some(id) = &e.message_id { " Interakt id " code { (id) } }
                        @if let Some(reason) = &e.reason { ": " (reason) }
                    }
                }
            }
        }
    }
}

/// The event's stored name, for people (`revoke failed`); new kinds show up unchanged.
fn event_name(kind: EventKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
        .replace('_', " ")
}

/// The login page; `error` when a token was refused.
pub fn login(frame: &Frame, error: Option<&str>) -> Markup {
    layout(
        frame,
        Nav::None,
        "Log in",
        html! {
            h1 { "Log in" }
            @if let Some(error) = error { p.warn #login-error { (error) } }
            form method="post" action="/login" #login {
                label { "Token " input type="password" name="token" autocomplete="current-password" required autofocus; }
                button type="submit" { "Log in" }
            }
            p.hint { "A token from HERALD_DASHBOARD_TOKENS." }
        },
    )
}
