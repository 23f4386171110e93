//! The pages, as compiled templates (maud: HTML written in Rust, checked by the compiler,
//! every value escaped). Pure: each takes what its handler gathered and returns markup.
//!
//! - this file: the layout every page shares (navigation, the logout form), and small
//!   helpers (times, ages);
//! - [`charts`]: the SVG charts;
//! - [`overview`]: lanes, replicas, budget, charts, OTP latency;
//! - [`dead`]: the dead-letter list, one letter, and the action pages;
//! - [`jobs`]: the job search and timelines; the login page;
//! - [`guard`]: the OTP guard's refusals and blocked prefixes, with Unblock.
//!
//! Secrets never reach a page: dead letters are shown through `dlq`'s redaction (OTP codes
//! `[redacted]`), phones masked, the API key is never read.

pub mod charts;
pub mod dead;
pub mod guard;
pub mod jobs;
pub mod overview;

use std::time::Duration;

use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;

/// What every page needs to draw its frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The session's CSRF token (for the logout form and actions); `None` on the login page.
    pub csrf: Option<String>,
    pub read_only: bool,
    pub namespace: String,
}

/// Which navigation entry is current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Dead,
    Jobs,
    Guard,
    None,
}

/// The page around `body`.
pub fn layout(frame: &Frame, nav: Nav, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Herald" }
                link rel="stylesheet" href="/static/style.css";
                script src="/static/live.js" defer {}
            }
            body {
                header.top {
                    span.brand { "Herald" }
                    span.ns { "namespace " code { (frame.namespace) } }
                    @if frame.csrf.is_some() {
                        nav {
                            a href="/" class=[(nav == Nav::Overview).then_some("current")] { "Overview" }
                            a href="/dead" class=[(nav == Nav::Dead).then_some("current")] { "Dead letters" }
                            a href="/jobs" class=[(nav == Nav::Jobs).then_some("current")] { "Find a job" }
                            a href="/guard" class=[(nav == Nav::Guard).then_some("current")] { "Guard" }
                        }
                    }
                    @if frame.read_only {
                        span.badge #read-only { "read-only" }
                    }
                    @if let Some(csrf) = &frame.csrf {
                        form.logout method="post" action="/logout" {
                            (csrf_field(csrf))
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name=(crate::session::CSRF_FIELD) value=(csrf); }
}

/// `2026-11-24 10:30:05 UTC`.
pub fn at(t: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_else(|_| t.to_string())
}

/// `3 s`, `4 min`, `2 h`, `5 d`: roughly how long.
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..172_800 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// A message page (an error, a refusal).
pub fn message(frame: &Frame, title: &str, text: &str) -> Markup {
    layout(
        frame,
        Nav::None,
        title,
        html! {
            h1 { (title) }
            p.message { (text) }
            p { a href="/" { "Back to the overview" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_roughly() {
        assert_eq!(age(Duration::from_secs(5)), "5 s");
        assert_eq!(age(Duration::from_secs(300)), "5 min");
        assert_eq!(age(Duration::from_secs(7200)), "2 h");
        assert_eq!(age(Duration::from_secs(86_400 * 3)), "3 d");
    }

    #[test]
    fn values_are_escaped_and_read_only_hides_nothing_but_actions() {
        let frame = Frame {
            csrf: Some("tok".into()),
            read_only: true,
            namespace: "<b>".into(),
        };
        let page = layout(&frame, Nav::Dead, "x", html! {}).into_string();
        assert!(page.contains("&lt;b&gt;"), "{page}");
        assert!(page.contains("id=\"read-only\""), "{page}");
        assert!(page.contains("name=\"csrf\" value=\"tok\""), "{page}");
    }
}
