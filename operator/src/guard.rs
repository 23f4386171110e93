//! `herald-worker guard list` and `guard unblock PREFIX`: the OTP guard's blocked prefixes
//! and its refusals of the last hour (read by [`herald_store::guard::collect`]), and an
//! operator's unblock (`unblock.lua`). The dashboard's Guard page calls the same functions.
//!
//! It never blocks a prefix and never decides an OTP: the rules run in the enqueue script.

use herald_shared::redis_pool::{Pool, RedisFailure};
use herald_store::Keys;
use herald_store::calls::guard::{self as calls, UnblockReply};
use herald_store::guard::{GuardStatus, Rule};
use time::OffsetDateTime;

pub use herald_store::guard::{BlockedPrefix, collect};

/// The guard's refusals of the last hour and its blocked prefixes, now.
pub async fn list(pool: &Pool, keys: &Keys) -> Result<GuardStatus, RedisFailure> {
    let mut conn = pool.get().await?;
    collect(&mut conn, keys, OffsetDateTime::now_utc()).await
}

/// `prefix` as an operator gives it: `+` and digits starting with a calling code, as
/// `guard list` prints it. The error says what is wrong.
pub fn parse_prefix(prefix: &str) -> Result<String, String> {
    let prefix = prefix.trim();
    let well_formed = prefix.len() <= 16 && herald_shared::phone::guard_parts(prefix).is_some();
    if well_formed {
        Ok(prefix.to_string())
    } else {
        Err(format!(
            "PREFIX: {prefix:?} is not a prefix: give it as `guard list` prints it, `+` and digits with a calling code (e.g. +91987654)"
        ))
    }
}

/// Unblocks `prefix` (parsed by [`parse_prefix`]) at once; its counts start afresh.
pub async fn unblock(pool: &Pool, keys: &Keys, prefix: &str) -> Result<UnblockReply, RedisFailure> {
    let mut conn = pool.get().await?;
    let reply: redis::Value = calls::unblock(keys, prefix, OffsetDateTime::now_utc())
        .invoke(&mut conn)
        .await?;
    Ok(UnblockReply::decode(&reply)?)
}

/// The refusals per rule, on one line (`per_number 3, per_prefix 1, ...`).
pub fn render_refusals(status: &GuardStatus) -> String {
    Rule::ALL
        .iter()
        .map(|rule| {
            let count = status.refused_last_hour.get(rule).copied().unwrap_or(0);
            format!("{rule} {count}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `guard list` for people: the refusals, then one line per blocked prefix.
pub fn render(status: &GuardStatus) -> String {
    let mut out = format!(
        "OTP refusals in the last hour: {}\n",
        render_refusals(status)
    );
    if status.blocked_total == 0 {
        out.push_str("no prefix is blocked\n");
        return out;
    }
    out.push_str(&format!(
        "blocked prefixes: {}\n  {:<18}  {:<14}  {:<24}  {:>12}\n",
        status.blocked_total, "prefix", "rule", "until", "frees in"
    ));
    for block in &status.blocked {
        out.push_str(&format!(
            "  {:<18}  {:<14}  {:<24}  {:>12}\n",
            block.prefix,
            block.rule.map_or("-", Rule::as_str),
            block.until,
            herald_shared::job::human(std::time::Duration::from_secs(block.frees_in_s)),
        ));
    }
    if status.blocked.len() < status.blocked_total as usize {
        out.push_str(&format!(
            "  ... and {} more\n",
            status.blocked_total as usize - status.blocked.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_plus_and_digits_with_a_calling_code() {
        assert_eq!(parse_prefix(" +91987654 ").unwrap(), "+91987654");
        assert_eq!(parse_prefix("+683").unwrap(), "+683");
        for bad in ["", "91987654", "+0123", "+91 987", "+9198765412345678"] {
            let err = parse_prefix(bad).unwrap_err();
            assert!(err.starts_with("PREFIX: "), "{err}");
        }
    }

    #[test]
    fn the_list_names_each_rule_and_each_block() {
        let mut status = GuardStatus {
            refused_last_hour: Rule::ALL.into_iter().map(|r| (r, 0)).collect(),
            ..GuardStatus::default()
        };
        assert!(render(&status).contains("no prefix is blocked"));
        status.refused_last_hour.insert(Rule::PrefixBlocked, 7);
        status.blocked_total = 2;
        status.blocked.push(BlockedPrefix {
            prefix: "+91987654".into(),
            rule: Some(Rule::PerPrefix),
            // As the store writes it: milliseconds, 24 characters.
            until: "2026-12-06T20:00:00.123Z".into(),
            frees_in_s: 11 * 3600 + 59 * 60 + 31,
        });
        let text = render(&status);
        assert!(
            text.contains("2026-12-06T20:00:00.123Z   11h 59m 31s"),
            "the time and the wait apart: {text}"
        );
        assert!(text.contains("prefix_blocked 7"), "{text}");
        assert!(text.contains("+91987654"), "{text}");
        assert!(text.contains("per_prefix"), "{text}");
        assert!(text.contains("and 1 more"), "{text}");
    }
}
