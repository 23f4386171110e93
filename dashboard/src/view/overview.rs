//! The overview: per lane ready (and the oldest's wait) / in hand / delayed / scheduled /
//! dead, the tenants with the most ready jobs, the live replicas, the shared budget, the
//! charts of the last hour and day, and the OTPs' latency. The part under `#live` is also
//! served alone ([`live`]) for the live refresh.

use std::time::Duration;

use herald_operator::status::Status;
use herald_shared::Lane;
use herald_shared::config::RateLimit;
use herald_store::history::{COARSE_SECS, Charts, FINE_SECS, Series};
use maud::{Markup, html};

use super::charts::{Line, format_value, svg};
use super::{Frame, Nav, age, layout};

/// What the overview shows.
pub struct Overview {
    pub status: Status,
    pub charts: Charts,
    /// The plan's rate (its window scales the limit line).
    pub rate: RateLimit,
}

/// The whole page.
pub fn page(frame: &Frame, overview: &Overview) -> Markup {
    layout(
        frame,
        Nav::Overview,
        "Overview",
        html! {
            div #live data-live="/live/overview" { (live(overview)) }
            noscript { p.hint { "JavaScript is off: reload the page to refresh it." } }
        },
    )
}

/// How long the oldest job has waited: `-` for none.
fn waited(ms: u64) -> String {
    if ms == 0 {
        "-".to_string()
    } else {
        age(Duration::from_millis(ms))
    }
}

/// The refreshed part.
pub fn live(o: &Overview) -> Markup {
    let s = &o.status;
    let budget_n = s
        .budget
        .as_ref()
        .map_or(o.rate.requests.get(), |b| b.effective);
    let per_bucket =
        |bucket: u64| f64::from(budget_n) * bucket as f64 / o.rate.period.as_secs_f64();
    let traffic = [Line {
        series: Series::Requests,
        class: "requests",
        label: "requests",
    }];
    let trouble = [
        Line {
            series: Series::RateLimited,
            class: "rate-limited",
            label: "429s",
        },
        Line {
            series: Series::Retried,
            class: "retried",
            label: "retries",
        },
        Line {
            series: Series::Dead,
            class: "dead",
            label: "dead letters",
        },
    ];
    html! {
        section {
            h2 { "Lanes" }
            table #lanes {
                thead { tr { th { "lane" } th { "ready" } th { "oldest" } th { "in hand" } th { "delayed" } th { "scheduled" } th { "cancelled" } th { "dead" } th { "sent" } th { "delivered" } th { "read" } } }
                tbody {
                    @for (lane, c) in Lane::ALL.iter().filter_map(|l| Some((l.as_str(), s.lanes.get(l.as_str())?))) {
                        tr data-lane=(lane) {
                            th { (lane) }
                            td data-count="ready" { (c.ready) }
                            td data-age="oldest" { (waited(c.oldest_ms)) }
                            td data-count="pending" { (c.pending) }
                            td data-count="delayed" { (c.delayed) }
                            td data-count="scheduled" { (c.scheduled) }
                            td data-count="cancelled" { (c.cancelled) }
                            td data-count="dead" { a href=(format!("/dead?lane={lane}")) { (c.dead) } }
                            td data-count="sent" { (c.sent) }
                            td data-count="delivered" { (c.delivered) }
                            td data-count="read" { (c.read) }
                        }
                    }
                    tr.total data-lane="total" {
                        th { "total" }
                        td data-count="ready" { (s.total.ready) }
                        td data-age="oldest" { (waited(s.total.oldest_ms)) }
                        td data-count="pending" { (s.total.pending) }
                        td data-count="delayed" { (s.total.delayed) }
                        td data-count="scheduled" { (s.total.scheduled) }
                        td data-count="cancelled" { (s.total.cancelled) }
                        td data-count="dead" { a href="/dead" { (s.total.dead) } }
                        td data-count="sent" { (s.total.sent) }
                        td data-count="delivered" { (s.total.delivered) }
                        td data-count="read" { (s.total.read) }
                    }
                }
            }
        }
        section {
            h2 { "Tenants " small { "the " (herald_store::status::TOP_TENANTS) " with the most ready jobs" } }
            @if s.tenants.is_empty() {
                p #no-tenants { "No job is waiting to be read." }
            } @else {
                table #tenants {
                    thead { tr { th { "tenant" } th { "lane" } th { "ready" } th { "oldest" } } }
                    tbody {
                        @for t in &s.tenants {
                            tr data-tenant=(t.tenant) data-lane=(t.lane) {
                                td { code { (t.tenant) } }
                                td { (t.lane) }
                                td data-count="ready" { (t.ready) }
                                td data-age="oldest" { (waited(t.oldest_ms)) }
                            }
                        }
                    }
                }
            }
        }
        div.columns {
            section {
                h2 { "Replicas " small { (s.consumers.len()) " live" } }
                @if s.consumers.is_empty() {
                    p.warn #no-replicas { "No worker replica has sent a heartbeat in the last 15 s: nothing is being sent." }
                } @else {
                    table #replicas {
                        thead { tr { th { "consumer" } th { "heartbeat" } th { "in hand" } th { "sent" } } }
                        tbody {
                            @for c in &s.consumers {
                                tr { td { code { (c.name) } } td { (age(Duration::from_millis(c.last_seen_ms))) " ago" } td { (c.in_hand) } td { (c.sent) } }
                            }
                        }
                    }
                }
            }
            section #budget {
                h2 { "Shared budget" }
                @match &s.budget {
                    None => p { "No worker has asked for a token yet. Configured: " strong { (o.rate) } "." },
                    Some(b) => {
                        dl {
                            dt { "per window" } dd { strong { (b.effective) } " of " (b.configured) " (" (o.rate) " configured here)" }
                            dt { "cool-down" } dd class=[(b.cooldown_ms > 0).then_some("warn")] {
                                @if b.cooldown_ms > 0 { "paused after a 429 for " (b.cooldown_ms) " ms" } @else { "none" }
                                @if b.probing { span #probing { ", probing: one request every probe interval; a 2xx ends the pause" } }
                            }
                            dt { "next token" } dd { "in " (b.next_token_in_ms) " ms" }
                            dt { "OTP reserve" } dd { (b.otp_reserve) }
                            dt { "bookings' share" } dd { (b.booking_share) }
                        }
                    }
                }
                h2 { "OTP latency, last hour" }
                @match &o.charts.otp_latency {
                    None => p #otp-latency { "No OTP sent in the last hour." },
                    Some(l) => p #otp-latency {
                        "p50 ≤ " strong { (format_value(l.p50_ms.round())) " ms" }
                        ", p99 ≤ " strong { (format_value(l.p99_ms.round())) " ms" }
                        " (" (l.count) " OTPs, enqueue to Interakt's 200)"
                    },
                }
                p.hint { "Redis maxmemory-policy: " (s.maxmemory_policy_note) }
            }
        }
        section {
            h2 { "Last hour " small { "per 10 s" } }
            (svg(&o.charts.hour, &traffic, Some(per_bucket(FINE_SECS)), "-60 min"))
            (svg(&o.charts.hour, &trouble, None, "-60 min"))
            h2 { "Last 24 hours " small { "per 5 min" } }
            (svg(&o.charts.day, &traffic, Some(per_bucket(COARSE_SECS)), "-24 h"))
            (svg(&o.charts.day, &trouble, None, "-24 h"))
        }
    }
}
