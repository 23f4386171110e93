//! What a sandbox is told to do: the API key it accepts, its rate limit, the faults it
//! injects, including [`ScriptRule`]s parsed from `PHONE=RULE`, and where it posts webhooks.
//!
//! This module owns parsing and checking these values, once, before the server starts; it
//! never touches the network. Errors quote the bad input and say what would work.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use herald_shared::Redacted;
use herald_shared::config::{ConfigError, RateLimit};
use herald_shared::phone::Phone;

/// The window [`crate::Stats::max_in_window`] is measured over when no rate limit is set:
/// Interakt's plans are all per minute.
pub const DEFAULT_PEAK_WINDOW: Duration = Duration::from_secs(60);

/// Everything a sandbox needs to start.
///
/// Build it with [`SandboxConfig::new`] and struct update syntax, so fields added later keep
/// existing callers compiling:
///
/// ```
/// # use herald_sandbox::SandboxConfig;
/// let config = SandboxConfig {
///     rate: Some("300/1m".parse().unwrap()),
///     fail_rate: 0.1,
///     ..SandboxConfig::new("test-key")
/// };
/// assert!(config.check().is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// The key clients must send as `Authorization: Basic <key>`, verbatim.
    pub api_key: Redacted<String>,
    /// Requests admitted per sliding window; `None` admits everything.
    pub rate: Option<RateLimit>,
    /// Whether a rate-limited answer carries `Retry-After` (seconds until a slot frees).
    /// Interakt documents none, so the default is `false`.
    pub retry_after: bool,
    /// Every rate-limited answer says `Retry-After: SECS`, whatever the window says (and
    /// whatever `retry_after`): a huge one (`100000000`) is what a misbehaving API or proxy
    /// says, which clients must not take at its word.
    pub retry_after_secs: Option<u64>,
    /// Probability (0.0 to 1.0) that a request for an unscripted phone is answered 503.
    pub fail_rate: f64,
    /// Added to every answer of the send endpoint.
    pub latency: Duration,
    /// Per-phone behaviour; a scripted phone meets only its script, never the random
    /// `fail_rate`, so tests built on scripts stay deterministic.
    pub script: Vec<ScriptRule>,
    /// Seed of the generator behind `fail_rate`; `None` seeds it from the OS.
    pub seed: Option<u64>,
    /// Where to post webhook events about accepted messages (delivered, then read); `None`
    /// posts nothing. See [`crate::webhooks`].
    pub webhook_url: Option<String>,
    /// Signs posted webhooks (`Interakt-Signature`); `None` posts them unsigned.
    pub webhook_secret: Option<Redacted<String>>,
}

impl SandboxConfig {
    /// A sandbox that accepts `api_key` and injects nothing: no rate limit, no faults.
    pub fn new(api_key: impl Into<String>) -> Self {
        SandboxConfig {
            api_key: Redacted::new(api_key.into()),
            rate: None,
            retry_after: false,
            retry_after_secs: None,
            fail_rate: 0.0,
            latency: Duration::ZERO,
            script: Vec::new(),
            seed: None,
            webhook_url: None,
            webhook_secret: None,
        }
    }

    /// Checks what the types cannot: a non-empty key, a probability within 0..=1, and no
    /// phone scripted twice. Each error is named by its flag.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.api_key.expose().trim().is_empty() {
            return Err(ConfigError::new(
                "INTERAKT_API_KEY (--api-key)",
                "must not be empty: clients send it as `Authorization: Basic <key>`",
            ));
        }
        check_fail_rate(self.fail_rate)
            .map_err(|reason| ConfigError::new("SANDBOX_FAIL_RATE (--fail-rate)", reason))?;
        if let Some(url) = &self.webhook_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::new(
                "SANDBOX_WEBHOOK_URL (--webhook-url)",
                format!(
                    "is {url:?}; expected an http(s) URL such as http://127.0.0.1:8090/webhooks/interakt"
                ),
            ));
        }
        if self
            .webhook_secret
            .as_ref()
            .is_some_and(|s| s.expose().is_empty())
        {
            return Err(ConfigError::new(
                "SANDBOX_WEBHOOK_SECRET (--webhook-secret)",
                "is empty; give the receiver's INTERAKT_WEBHOOK_SECRET, or leave it unset to post unsigned",
            ));
        }
        let mut seen = HashSet::new();
        for rule in &self.script {
            if !seen.insert(rule.phone.e164()) {
                return Err(ConfigError::new(
                    "--script",
                    format!(
                        "{} is scripted twice; give each phone one rule",
                        rule.phone.e164()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The window [`crate::Stats::max_in_window`] is measured over: the rate limit's period,
    /// or [`DEFAULT_PEAK_WINDOW`].
    pub fn peak_window(&self) -> Duration {
        self.rate.map_or(DEFAULT_PEAK_WINDOW, |rate| rate.period)
    }
}

/// Parses `--fail-rate`: a probability from 0.0 to 1.0.
pub fn parse_fail_rate(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number; expected a probability such as 0.1"))?;
    check_fail_rate(p)?;
    Ok(p)
}

fn check_fail_rate(p: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!(
            "is {p}; expected a probability from 0.0 (never) to 1.0 (always)"
        ))
    }
}

/// How the sandbox answers one scripted phone, or which webhooks it posts for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Script {
    /// `400`: always 400 `Invalid template`, as for a template Interakt does not know.
    InvalidTemplate,
    /// `500`: always 500.
    ServerError,
    /// `fail:N`: the first N requests get 503, later ones go on normally.
    FailFirst(u32),
    /// `429:N` or `429:N:SECS`: the first N requests get 429 with `Retry-After: SECS`
    /// (1 when not given), later ones go on normally. A huge SECS (`429:1:100000000`) is
    /// what a misbehaving API might say; clients must not take it at its word forever.
    RateLimitFirst(u32, u64),
    /// `false`: always 200 with `result: false`, a refusal inside a success status.
    Reject,
    /// `slow:DURATION`: the answer is delayed by DURATION, e.g. past a client's timeout.
    Slow(Duration),
    /// `revoke`: accepted, then a SERVER_EVENT `TTL_EXPIRATION_REVOKED` webhook instead of
    /// delivered and read (the message "was not delivered in time").
    Revoke,
    /// `tap:DATA`: accepted, delivered, read, then a USER_MESSAGE suggestion tap with
    /// postBack data DATA (`tap:cancel_B123`).
    Tap(String),
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Script::InvalidTemplate => f.write_str("400"),
            Script::ServerError => f.write_str("500"),
            Script::FailFirst(n) => write!(f, "fail:{n}"),
            Script::RateLimitFirst(n, 1) => write!(f, "429:{n}"),
            Script::RateLimitFirst(n, secs) => write!(f, "429:{n}:{secs}"),
            Script::Reject => f.write_str("false"),
            Script::Slow(d) => write!(f, "slow:{}", humantime::format_duration(*d)),
            Script::Revoke => f.write_str("revoke"),
            Script::Tap(data) => write!(f, "tap:{data}"),
        }
    }
}

const RULE_HINT: &str = "RULE is one of 400, 500, fail:N, 429:N[:SECS], false, slow:DURATION, revoke, tap:DATA (e.g. fail:2, slow:3s, tap:cancel_B123)";

impl FromStr for Script {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let count = |n: &str| {
            n.trim()
                .parse::<u32>()
                .map_err(|_| format!("{n:?} is not a request count"))
        };
        match s.trim().split_once(':') {
            None => match s.trim() {
                "400" => Ok(Script::InvalidTemplate),
                "500" => Ok(Script::ServerError),
                "false" => Ok(Script::Reject),
                "revoke" => Ok(Script::Revoke),
                other => Err(format!("unknown rule {other:?}; {RULE_HINT}")),
            },
            Some(("fail", n)) => Ok(Script::FailFirst(count(n)?)),
            Some(("429", rest)) => match rest.split_once(':') {
                None => Ok(Script::RateLimitFirst(count(rest)?, 1)),
                Some((n, secs)) => {
                    let secs = secs
                        .trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| {
                            format!("{secs:?} is not a Retry-After in whole seconds (1 or more)")
                        })?;
                    Ok(Script::RateLimitFirst(count(n)?, secs))
                }
            },
            Some(("slow", d)) => herald_shared::config::parse_duration(d.trim()).map(Script::Slow),
            Some(("tap", data)) => {
                let data = data.trim();
                let max = herald_shared::validate::limits::POSTBACK_DATA_CHARS;
                if data.is_empty() || data.chars().count() > max {
                    Err(format!("tap needs postBack data of 1 to {max} characters"))
                } else {
                    Ok(Script::Tap(data.to_string()))
                }
            }
            Some((kind, _)) => Err(format!("unknown rule {kind:?}; {RULE_HINT}")),
        }
    }
}

/// One `--script PHONE=RULE`: how the sandbox answers requests for one phone.
///
/// The phone is E.164 (`+919000000001`) and must be valid for libphonenumber, since a
/// request for it has to pass validation to reach anything but a fault. It is matched
/// against the body's `countryCode` + `phoneNumber`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptRule {
    /// The phone the rule applies to.
    pub phone: Phone,
    /// What happens to its requests.
    pub script: Script,
}

/// A `PHONE=RULE` that does not parse, quoted, with the reason and the expected form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{input:?}: {reason}; expected PHONE=RULE such as +919000000001=fail:2")]
pub struct ScriptRuleError {
    /// The rule as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for ScriptRule {
    type Err = ScriptRuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| ScriptRuleError {
            input: s.to_string(),
            reason,
        };
        let (phone, rule) = s
            .split_once('=')
            .ok_or_else(|| fail("no '='".to_string()))?;
        let phone = Phone::parse_e164(phone).map_err(|err| {
            fail(format!(
                "the phone {err} (a scripted phone must pass validation, e.g. +919000000001)"
            ))
        })?;
        let script = rule.parse().map_err(fail)?;
        Ok(ScriptRule { phone, script })
    }
}

impl fmt::Display for ScriptRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.phone.e164(), self.script)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> ScriptRule {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn script_rules_parse_every_kind() {
        for (input, script) in [
            ("+919000000001=400", Script::InvalidTemplate),
            ("+919000000002=500", Script::ServerError),
            ("+919000000003=fail:3", Script::FailFirst(3)),
            ("+919000000004=429:1", Script::RateLimitFirst(1, 1)),
            (
                "+919000000010=429:2:100000000",
                Script::RateLimitFirst(2, 100_000_000),
            ),
            ("+919000000005=false", Script::Reject),
            (
                "+919000000006=slow:1500ms",
                Script::Slow(Duration::from_millis(1500)),
            ),
            ("+919000000007=fail:0", Script::FailFirst(0)),
            ("+919000000008=revoke", Script::Revoke),
            (
                "+919000000009=tap:cancel_B123",
                Script::Tap("cancel_B123".into()),
            ),
        ] {
            let parsed = rule(input);
            assert_eq!(parsed.script, script, "{input}");
            assert_eq!(parsed.to_string(), input.replace("1500ms", "1s 500ms"));
        }
        let parsed = rule("+1 415 555 2671=false");
        assert_eq!(parsed.phone.country_code, "+1");
        assert_eq!(parsed.to_string(), "+14155552671=false");
    }

    #[test]
    fn bad_script_rules_say_what_is_wrong() {
        for (input, says) in [
            ("+919000000001", "no '='"),
            ("919000000001=400", "leading '+'"),
            ("+91 12345=400", "not a valid number"),
            ("+919000000001=404", "unknown rule \"404\""),
            ("+919000000001=fail:x", "\"x\" is not a request count"),
            ("+919000000001=fail:-1", "is not a request count"),
            (
                "+919000000001=429:1:soon",
                "not a Retry-After in whole seconds",
            ),
            (
                "+919000000001=429:1:0",
                "not a Retry-After in whole seconds",
            ),
            ("+919000000001=slow:soon", "is not a duration"),
            ("+919000000001=boom:1", "unknown rule \"boom\""),
            ("+919000000001=", "unknown rule \"\""),
            ("+919000000001=tap:", "tap needs postBack data"),
        ] {
            let err = input.parse::<ScriptRule>().unwrap_err().to_string();
            assert!(err.contains(says), "{input}: {err}");
            assert!(
                err.contains(&format!("{input:?}")),
                "quotes the input: {err}"
            );
            assert!(err.contains("PHONE=RULE"), "shows the form: {err}");
        }
    }

    #[test]
    fn fail_rate_is_a_probability() {
        assert_eq!(parse_fail_rate("0.25"), Ok(0.25));
        assert_eq!(parse_fail_rate("1"), Ok(1.0));
        assert!(parse_fail_rate("1.5").unwrap_err().contains("is 1.5"));
        assert!(parse_fail_rate("-0.1").is_err());
        assert!(
            parse_fail_rate("often")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(parse_fail_rate("NaN").is_err());
    }

    #[test]
    fn check_names_the_flag_at_fault() {
        assert!(SandboxConfig::new("k").check().is_ok());
        let err = SandboxConfig::new(" ").check().unwrap_err();
        assert!(err.name.contains("--api-key"), "{err}");
        let err = SandboxConfig {
            fail_rate: 2.0,
            ..SandboxConfig::new("k")
        }
        .check()
        .unwrap_err();
        assert!(err.name.contains("--fail-rate"), "{err}");
        let err = SandboxConfig {
            script: vec![rule("+919000000001=400"), rule("+91 90000 00001=500")],
            ..SandboxConfig::new("k")
        }
        .check()
        .unwrap_err();
        assert_eq!(err.name, "--script");
        assert!(
            err.reason.contains("+919000000001 is scripted twice"),
            "{err}"
        );
    }

    #[test]
    fn the_key_never_reaches_debug_output() {
        let config = SandboxConfig::new("sk_live_secret");
        assert!(!format!("{config:?}").contains("sk_live_secret"));
    }

    #[test]
    fn peak_window_follows_the_rate() {
        assert_eq!(SandboxConfig::new("k").peak_window(), DEFAULT_PEAK_WINDOW);
        let config = SandboxConfig {
            rate: Some("5/500ms".parse().unwrap()),
            ..SandboxConfig::new("k")
        };
        assert_eq!(config.peak_window(), Duration::from_millis(500));
    }
}
