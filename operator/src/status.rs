//! `herald-worker status`: where every job is, per lane and in total (read by
//! [`herald_store::status::collect`]), rendered for people; `--json` is the same data.

pub use herald_store::status::{Budget, Consumer, Counts, Status, TenantBacklog, collect};

use herald_shared::Lane;

/// An age for people: `-` for none, else whole seconds, minutes or hours.
fn age(ms: u64) -> String {
    match ms {
        0 => "-".to_string(),
        ms if ms < 60_000 => format!("{}s", ms.div_ceil(1000)),
        ms if ms < 3_600_000 => format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000),
        ms => format!("{}h{:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// The human-readable table.
pub fn render(status: &Status) -> String {
    let mut out = format!(
        "{:<10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n",
        "lane",
        "ready",
        "oldest",
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
            "{name:<10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n",
            c.ready,
            age(c.oldest_ms),
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
    for lane in Lane::ALL {
        if let Some(counts) = status.lanes.get(lane.as_str()) {
            out.push_str(&row(lane.as_str(), counts));
        }
    }
    out.push_str(&row("total", &status.total));
    if !status.tenants.is_empty() {
        out.push_str(&format!(
            "\ntenants with the most ready jobs:\n  {:<32}{:<10}{:>10}{:>10}\n",
            "tenant", "lane", "ready", "oldest"
        ));
        for t in &status.tenants {
            out.push_str(&format!(
                "  {:<32}{:<10}{:>10}{:>10}\n",
                t.tenant,
                t.lane,
                t.ready,
                age(t.oldest_ms)
            ));
        }
    }
    if let Some(b) = &status.budget {
        out.push_str(&format!(
            "\nbudget: {} of {} per window (OTP reserve {}, bookings' share {}); next token in {} ms{}\n",
            b.effective,
            b.configured,
            b.otp_reserve,
            b.booking_share,
            b.next_token_in_ms,
            if b.cooldown_ms > 0 {
                let probing = if b.probing { ", probing" } else { "" };
                format!("; cooling down after a 429 for {} ms{probing}", b.cooldown_ms)
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

#[cfg(test)]
mod tests {
    use super::age;

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(age(0), "-");
        assert_eq!(age(1), "1s");
        assert_eq!(age(59_000), "59s");
        assert_eq!(age(61_000), "1m01s");
        assert_eq!(age(3_600_000 * 2 + 60_000 * 5), "2h05m");
    }
}
