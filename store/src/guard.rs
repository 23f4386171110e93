//! The OTP guard's data (`docs/otp-guard.md`): its rules' names ([`Rule`]), its settings as
//! the enqueue script takes them ([`Guard`]), a refusal as the script answers it
//! ([`Refusal`]), and what `status`, `guard list` and the dashboard show of it
//! ([`GuardStatus`], read by [`collect`]).
//!
//! The rules themselves run in Redis, inside the enqueue script (`lua/guard.lua`, called by
//! `lua/enqueue.lua`), so an OTP's check and its enqueue are one atomic step. This module
//! never decides anything: it names, carries and reads. Flags and environment variables are
//! the producer's (`producer::guard::GuardArgs`), turned into a [`Guard`] once at start-up.

use std::collections::BTreeMap;
use std::time::Duration;

use deadpool_redis::redis;
use herald_shared::config::RateLimit;
use herald_shared::redis_pool::RedisFailure;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Keys;

/// Why the guard refused an OTP: what clients branch on (`rule` in the API's 429), the
/// metric's label, and the refusal counts' field names. Stored names: never renamed.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The number has had its limit of OTPs in the per-number window
    /// (`HERALD_OTP_PER_NUMBER`).
    PerNumber,
    /// The number's prefix reached its limit in the per-prefix window
    /// (`HERALD_OTP_PER_PREFIX`); this OTP blocked it.
    PerPrefix,
    /// The number's prefix is blocked (`HERALD_OTP_BLOCK` after it reached a limit).
    PrefixBlocked,
    /// The number's country is not in `HERALD_OTP_COUNTRIES`.
    Country,
    /// Too few of the prefix's OTPs were verified (`HERALD_OTP_MIN_CONVERSION`); this OTP
    /// blocked it.
    Conversion,
}

impl Rule {
    pub const ALL: [Rule; 5] = [
        Rule::PerNumber,
        Rule::PerPrefix,
        Rule::PrefixBlocked,
        Rule::Country,
        Rule::Conversion,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Rule::PerNumber => "per_number",
            Rule::PerPrefix => "per_prefix",
            Rule::PrefixBlocked => "prefix_blocked",
            Rule::Country => "country",
            Rule::Conversion => "conversion",
        }
    }

    /// The rule a script or a stored count names.
    pub fn parse(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.as_str() == name)
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many OTPs a prefix needs in the conversion window before its conversion counts.
pub const CONVERSION_MIN_SENDS: u32 = 20;
/// The conversion window: verified over sent, in the last 24 hours.
pub const CONVERSION_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The longest per-number and per-prefix window (the prefix's hash keeps a number's times
/// until the day after theirs ends).
pub const MAX_WINDOW: Duration = CONVERSION_WINDOW;

/// The guard's settings, validated (`producer::guard::GuardArgs` builds them; the defaults
/// are [`Guard::default`]). Given to every OTP's enqueue as the script's arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Guard {
    /// At most this many accepted OTPs per number per window (`HERALD_OTP_PER_NUMBER`,
    /// default 5/1h; replacements count: they are sends). The window at most [`MAX_WINDOW`].
    pub per_number: RateLimit,
    /// At most this many per prefix per window (`HERALD_OTP_PER_PREFIX`, default 30/1h); the
    /// OTP that finds the prefix at its limit blocks it for [`Guard::block`].
    pub per_prefix: RateLimit,
    /// How long a prefix stays blocked (`HERALD_OTP_BLOCK`, default 12h).
    pub block: Duration,
    /// The calling codes allowed (`+91`; `HERALD_OTP_COUNTRIES`); empty: every country.
    pub countries: Vec<String>,
    /// The least share of a prefix's OTPs verified over [`CONVERSION_WINDOW`] once it has
    /// [`CONVERSION_MIN_SENDS`] (`HERALD_OTP_MIN_CONVERSION`, default 0.2; 0: the rule is
    /// off). Applies only once any verification was reported.
    pub min_conversion: f64,
}

impl Default for Guard {
    fn default() -> Guard {
        let per_hour = |n| RateLimit::new(n, Duration::from_secs(3600)).expect("above zero");
        Guard {
            per_number: per_hour(5),
            per_prefix: per_hour(30),
            block: Duration::from_secs(12 * 3600),
            countries: Vec::new(),
            min_conversion: 0.2,
        }
    }
}

impl Guard {
    /// The allowed calling codes as the script matches them (`,+91,+971,`), `''` for all.
    pub fn countries_arg(&self) -> String {
        if self.countries.is_empty() {
            return String::new();
        }
        format!(",{},", self.countries.join(","))
    }
}

/// An OTP the guard refused, as the enqueue script answered: nothing was enqueued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub rule: Rule,
    /// How long until the same OTP would pass this rule; `None`: never (`country`).
    pub retry_after: Option<Duration>,
}

impl Refusal {
    /// The refusal the script answered with `retry_ms` (negative: never).
    pub fn new(rule: Rule, retry_ms: i64) -> Refusal {
        Refusal {
            rule,
            retry_after: u64::try_from(retry_ms).ok().map(Duration::from_millis),
        }
    }

    /// `Retry-After` in whole seconds, rounded up and at least 1 (`None`: never).
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
            .map(|wait| wait.as_millis().div_ceil(1000).max(1) as u64)
    }
}

/// Milliseconds since the Unix epoch of `at`: the guard's clock.
pub fn unix_ms(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;

/// The Unix hour of `ms`: which [`Keys::guard_refused`] counts a refusal at `ms`.
pub fn hour_of(ms: u64) -> u64 {
    ms / HOUR_MS
}

/// How many blocked prefixes `status` lists (the soonest to free first); `blocked_total`
/// counts them all.
pub const LISTED_BLOCKS: usize = 100;

/// A blocked prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockedPrefix {
    /// `+91987654`: the numbers that start so.
    pub prefix: String,
    /// What blocked it (`per_prefix` or `conversion`); `null` if its record is gone.
    pub rule: Option<Rule>,
    /// When it frees (RFC 3339, UTC).
    pub until: String,
    /// Seconds until it frees.
    pub frees_in_s: u64,
}

/// What `status` shows of the guard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GuardStatus {
    /// Refusals in the last hour, per rule (every rule, zeros included).
    pub refused_last_hour: BTreeMap<Rule, u64>,
    /// Blocked prefixes, the soonest to free first, at most [`LISTED_BLOCKS`].
    pub blocked: Vec<BlockedPrefix>,
    /// How many prefixes are blocked in all.
    pub blocked_total: u64,
}

/// The guard's refusals and blocks as of `now`, read without writing.
pub async fn collect(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &Keys,
    now: OffsetDateTime,
) -> Result<GuardStatus, RedisFailure> {
    let now_ms = unix_ms(now);
    let hour = hour_of(now_ms);
    type Fields = Vec<(String, u64)>;
    let (this_hour, last_hour, blocked, total): (Fields, Fields, Fields, u64) = redis::pipe()
        .hgetall(keys.guard_refused(hour))
        .hgetall(keys.guard_refused(hour.saturating_sub(1)))
        .cmd("ZRANGEBYSCORE")
        .arg(keys.guard_blocked())
        .arg(format!("({now_ms}"))
        .arg("+inf")
        .arg("WITHSCORES")
        .arg("LIMIT")
        .arg(0)
        .arg(LISTED_BLOCKS)
        .cmd("ZCOUNT")
        .arg(keys.guard_blocked())
        .arg(format!("({now_ms}"))
        .arg("+inf")
        .query_async(conn)
        .await?;
    let rules: Vec<Option<String>> = if blocked.is_empty() {
        Vec::new()
    } else {
        let mut pipe = redis::pipe();
        for (prefix, _) in &blocked {
            pipe.hget(keys.guard_prefix(prefix), "r");
        }
        pipe.query_async(conn).await?
    };
    let blocked = blocked
        .into_iter()
        .zip(rules.into_iter().chain(std::iter::repeat(None)))
        .map(|((prefix, until_ms), rule)| BlockedPrefix {
            prefix,
            rule: rule.as_deref().and_then(Rule::parse),
            until: crate::record::format_time(from_unix_ms(until_ms)),
            frees_in_s: until_ms.saturating_sub(now_ms).div_ceil(1000),
        })
        .collect();
    Ok(GuardStatus {
        refused_last_hour: refused_last_hour(this_hour.iter().chain(&last_hour), now_ms),
        blocked,
        blocked_total: total,
    })
}

/// The refusal counts (`<rule>:<minute>` fields of this and the last hour's hashes) of the
/// sixty minutes up to `now_ms`, per rule; every rule listed.
pub fn refused_last_hour<'a>(
    fields: impl IntoIterator<Item = &'a (String, u64)>,
    now_ms: u64,
) -> BTreeMap<Rule, u64> {
    let minute = now_ms / MINUTE_MS;
    let mut counts: BTreeMap<Rule, u64> = Rule::ALL.into_iter().map(|rule| (rule, 0)).collect();
    for (field, count) in fields {
        let Some((rule, at)) = field.split_once(':') else {
            continue;
        };
        let (Some(rule), Ok(at)) = (Rule::parse(rule), at.parse::<u64>()) else {
            continue;
        };
        if at + 60 > minute && at <= minute {
            *counts.entry(rule).or_default() += count;
        }
    }
    counts
}

fn from_unix_ms(ms: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_named_as_the_api_and_the_metric_name_them() {
        let names: Vec<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "per_number",
                "per_prefix",
                "prefix_blocked",
                "country",
                "conversion"
            ]
        );
        for rule in Rule::ALL {
            assert_eq!(Rule::parse(rule.as_str()), Some(rule));
            assert_eq!(
                serde_json::to_string(&rule).unwrap(),
                format!("\"{}\"", rule.as_str())
            );
        }
        assert_eq!(Rule::parse("per-number"), None);
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let guard = Guard::default();
        assert_eq!(guard.per_number.to_string(), "5/1h");
        assert_eq!(guard.per_prefix.to_string(), "30/1h");
        assert_eq!(guard.block, Duration::from_secs(12 * 3600));
        assert!(guard.countries.is_empty());
        assert_eq!(guard.countries_arg(), "");
        assert_eq!(guard.min_conversion, 0.2);
        let guard = Guard {
            countries: vec!["+91".into(), "+971".into()],
            ..guard
        };
        assert_eq!(guard.countries_arg(), ",+91,+971,");
    }

    #[test]
    fn a_wait_rounds_up_to_whole_seconds_and_never_is_none() {
        assert_eq!(Refusal::new(Rule::PerNumber, 1).retry_after_secs(), Some(1));
        assert_eq!(Refusal::new(Rule::PerNumber, 0).retry_after_secs(), Some(1));
        assert_eq!(
            Refusal::new(Rule::PerNumber, 59_001).retry_after_secs(),
            Some(60)
        );
        assert_eq!(
            Refusal::new(Rule::PrefixBlocked, 43_200_000).retry_after_secs(),
            Some(43_200)
        );
        let never = Refusal::new(Rule::Country, -1);
        assert_eq!(never.retry_after, None);
        assert_eq!(never.retry_after_secs(), None);
    }

    /// The last hour is the sixty minutes up to now, this one included: a count of 61
    /// minutes ago is out, and a count stamped ahead of now (another host's clock) too.
    #[test]
    fn the_last_hour_counts_sixty_minutes_of_each_rule() {
        let now_ms = 1_000 * HOUR_MS + 30 * MINUTE_MS + 5_000;
        let minute = now_ms / MINUTE_MS;
        let fields: Vec<(String, u64)> = vec![
            (format!("per_number:{minute}"), 2),
            (format!("per_number:{}", minute - 59), 3),
            (format!("per_number:{}", minute - 60), 100),
            (format!("country:{}", minute - 10), 4),
            (format!("country:{}", minute + 1), 100),
            ("unknown:5".into(), 100),
            ("garbage".into(), 100),
        ];
        let counts = refused_last_hour(&fields, now_ms);
        assert_eq!(counts[&Rule::PerNumber], 5);
        assert_eq!(counts[&Rule::Country], 4);
        assert_eq!(counts[&Rule::Conversion], 0);
        assert_eq!(counts.len(), Rule::ALL.len());
    }
}
