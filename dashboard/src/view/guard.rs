//! The Guard page: the OTP guard's refusals in the last hour per rule, and its blocked
//! prefixes with the rule that blocked each and when it frees, each with an Unblock button
//! (a POST with the session's CSRF token; hidden in read-only mode). The same data as
//! `herald-worker guard list`.

use herald_store::guard::{GuardStatus, Rule};
use maud::{Markup, html};

use super::{Frame, Nav, age, csrf_field, layout};

/// The Guard page.
pub fn page(frame: &Frame, status: &GuardStatus) -> Markup {
    layout(
        frame,
        Nav::Guard,
        "OTP guard",
        html! {
            h1 { "OTP guard" }
            p { "OTPs the guard refused in the last hour, by rule (nothing was enqueued for them and no token was spent):" }
            table #guard-refusals {
                thead { tr { @for rule in Rule::ALL { th { (rule.as_str()) } } } }
                tbody { tr {
                    @for rule in Rule::ALL {
                        td data-rule=(rule.as_str()) { (status.refused_last_hour.get(&rule).copied().unwrap_or(0)) }
                    }
                } }
            }
            h2 { "Blocked prefixes (" span #blocked-total { (status.blocked_total) } ")" }
            @if status.blocked.is_empty() {
                p #no-blocks { "No prefix is blocked." }
            } @else {
                table #guard-blocked {
                    thead { tr { th { "prefix" } th { "rule" } th { "until" } th { "frees in" } @if !frame.read_only { th {} } } }
                    tbody {
                        @for block in &status.blocked {
                            tr data-prefix=(block.prefix) {
                                td { code { (block.prefix) } }
                                td { (block.rule.map_or("-", Rule::as_str)) }
                                td { (block.until) }
                                td { (age(std::time::Duration::from_secs(block.frees_in_s))) }
                                @if !frame.read_only {
                                    td {
                                        @if let Some(csrf) = &frame.csrf {
                                            form method="post" action="/actions/unblock" .unblock {
                                                (csrf_field(csrf))
                                                input type="hidden" name="prefix" value=(block.prefix);
                                                button.danger type="submit" { "Unblock" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if status.blocked.len() < status.blocked_total as usize {
                    p { "The " (status.blocked.len()) " soonest to free are listed; `herald-worker guard list` shows the same." }
                }
            }
        },
    )
}

/// After an unblock: what happened, and the way back.
pub fn unblocked(frame: &Frame, prefix: &str, was_blocked: bool) -> Markup {
    layout(
        frame,
        Nav::Guard,
        "Unblock",
        html! {
            h1 { "Unblock" }
            @if was_blocked {
                p.done #result { "Unblocked " code { (prefix) } ": it takes OTPs again, its counts started afresh." }
            } @else {
                p #result { code { (prefix) } " was not blocked (its block had ended, or someone unblocked it): nothing changed." }
            }
            p { a href="/guard" { "Back to the guard" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_store::guard::BlockedPrefix;

    fn status() -> GuardStatus {
        let mut refused: std::collections::BTreeMap<Rule, u64> =
            Rule::ALL.into_iter().map(|r| (r, 0)).collect();
        refused.insert(Rule::PrefixBlocked, 12);
        GuardStatus {
            refused_last_hour: refused,
            blocked: vec![BlockedPrefix {
                prefix: "+91987654".into(),
                rule: Some(Rule::PerPrefix),
                until: "2026-12-06T20:00:00Z".into(),
                frees_in_s: 7200,
            }],
            blocked_total: 1,
        }
    }

    #[test]
    fn the_page_lists_refusals_and_blocks_with_an_unblock_button() {
        let frame = Frame {
            csrf: Some("tok".into()),
            read_only: false,
            namespace: "herald".into(),
        };
        let page = page(&frame, &status()).into_string();
        assert!(page.contains("data-rule=\"prefix_blocked\">12<"), "{page}");
        assert!(page.contains("+91987654"), "{page}");
        assert!(page.contains("action=\"/actions/unblock\""), "{page}");
        assert!(page.contains("name=\"csrf\" value=\"tok\""), "{page}");
    }

    #[test]
    fn read_only_hides_the_unblock_button() {
        let frame = Frame {
            csrf: Some("tok".into()),
            read_only: true,
            namespace: "herald".into(),
        };
        let page = page(&frame, &status()).into_string();
        assert!(page.contains("+91987654"), "{page}");
        assert!(!page.contains("/actions/unblock"), "{page}");
    }
}
