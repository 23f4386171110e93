//! `herald-worker status`: where every job is, per lane and in total (read by
//! [`herald_store::status::collect`]), rendered for people; `--json` is the same data.

pub use herald_store::status::{Budget, Consumer, Counts, Status, collect};

/// The human-readable table.
pub fn render(status: &Status) -> String {
    let mut out = format!(
        "{:<10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n",
        "lane",
        "ready",
        "pending",
        "scheduled",
        "delayed",
        "dead",
        "sent",
        "delivered",
        "read",
        "revoked",
        "cancelled"
    );
    let row = |name: &str, c: &Counts| {
        format!(
            "{name:<10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n",
            c.ready,
            c.pending,
            c.scheduled,
            c.delayed,
            c.dead,
            c.sent,
            c.delivered,
            c.read,
            c.revoked,
            c.cancelled
        )
    };
    for (lane, counts) in &status.lanes {
        out.push_str(&row(lane, counts));
    }
    out.push_str(&row("total", &status.total));
    if let Some(b) = &status.budget {
        out.push_str(&format!(
            "\nbudget: {} of {} per window (OTP reserve {}, bookings' share {}); next token in {} ms{}\n",
            b.effective,
            b.configured,
            b.otp_reserve,
            b.booking_share,
            b.next_token_in_ms,
            if b.cooldown_ms > 0 {
                format!("; cooling down after a 429 for {} ms", b.cooldown_ms)
            } else {
                String::new()
            }
        ));
    }
    let warning = match &status.maxmemory_policy {
        Some(policy) if policy != herald_shared::memory_policy::REQUIRED => "WARNING: ",
        _ => "",
    };
    out.push_str(&format!(
        "\n{warning}redis maxmemory-policy: {}\n",
        status.maxmemory_policy_note
    ));
    out.push_str(&format!("\nconsumers alive: {}\n", status.consumers.len()));
    for consumer in &status.consumers {
        out.push_str(&format!(
            "  {} (seen {} ms ago, {} in hand, {} sent)\n",
            consumer.name, consumer.last_seen_ms, consumer.in_hand, consumer.sent
        ));
    }
    out
}
