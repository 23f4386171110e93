//! The OTP guard as the producer runs it (`docs/otp-guard.md`): its flags and environment
//! variables ([`GuardArgs`]), validated once at start-up into the store's
//! [`Guard`](herald_store::guard::Guard); a refusal as callers see it ([`OtpRefused`]); and
//! what a refusal leaves behind in the process: `herald_otp_refused_total{rule}` and a log
//! line at most once per prefix per minute ([`RefusalLog`]).
//!
//! The rules themselves run in Redis, in the enqueue script, so the check and the enqueue
//! are one atomic step; this module never decides whether an OTP goes.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use clap::Args;
use herald_shared::config::{ConfigError, RateLimit};
use herald_shared::phone;
use herald_store::guard::{Guard, MAX_WINDOW, Refusal, Rule};

/// The longest block a prefix can be given (`HERALD_OTP_BLOCK`).
pub const MAX_BLOCK: Duration = Duration::from_secs(30 * 24 * 3600);

/// The OTP guard's settings (`docs/otp-guard.md`), on every subcommand that enqueues.
#[derive(Args, Clone, Debug)]
pub struct GuardArgs {
    /// The OTP guard: `on`, or `off` to turn every rule off.
    #[arg(
        long = "otp-guard",
        env = "HERALD_OTP_GUARD",
        default_value = "on",
        value_name = "on|off",
        global = true
    )]
    pub guard: String,
    /// At most this many accepted OTPs per phone number per window (replacements count);
    /// the window at most 24h.
    #[arg(
        long,
        env = "HERALD_OTP_PER_NUMBER",
        default_value = "5/1h",
        value_name = "N/PERIOD",
        global = true
    )]
    pub otp_per_number: String,
    /// At most this many OTPs per prefix (the number without its last 4 digits) per window;
    /// the OTP past it blocks the prefix for --otp-block. The window at most 24h.
    #[arg(
        long,
        env = "HERALD_OTP_PER_PREFIX",
        default_value = "30/1h",
        value_name = "N/PERIOD",
        global = true
    )]
    pub otp_per_prefix: String,
    /// How long a prefix stays blocked once a limit blocks it (e.g. 12h; at most 30 days).
    #[arg(
        long,
        env = "HERALD_OTP_BLOCK",
        default_value = "12h",
        value_name = "DURATION",
        global = true
    )]
    pub otp_block: String,
    /// The calling codes OTPs may go to, comma-separated (e.g. +91,+971); empty: every
    /// country. Recommended: the countries you serve.
    #[arg(
        long,
        env = "HERALD_OTP_COUNTRIES",
        default_value = "",
        value_name = "CODES",
        global = true
    )]
    pub otp_countries: String,
    /// The least share of a prefix's OTPs verified over 24h once it has 20 (reported with
    /// `verified` or POST /v1/otp/verified), below which it is blocked; 0 turns the rule off.
    /// Applies only once any verification was reported.
    #[arg(
        long,
        env = "HERALD_OTP_MIN_CONVERSION",
        default_value = "0.2",
        value_name = "SHARE",
        global = true
    )]
    pub otp_min_conversion: String,
}

impl GuardArgs {
    /// The validated settings; `None` when the guard is off. The error names the variable
    /// and the flag of the first bad value.
    pub fn settings(&self) -> Result<Option<Guard>, ConfigError> {
        match self.guard.trim().to_ascii_lowercase().as_str() {
            "on" => {}
            "off" => return Ok(None),
            other => {
                return Err(ConfigError::new(
                    "HERALD_OTP_GUARD (--otp-guard)",
                    format!("{other:?} is neither on nor off"),
                ));
            }
        }
        let limit = |value: &str, name: &str| {
            let limit: RateLimit = value
                .trim()
                .parse()
                .map_err(|reason: String| ConfigError::new(name, reason))?;
            if limit.period > MAX_WINDOW {
                return Err(ConfigError::new(
                    name,
                    format!("{value:?}: the window must be at most 24h, e.g. 5/1h"),
                ));
            }
            Ok(limit)
        };
        let per_number = limit(
            &self.otp_per_number,
            "HERALD_OTP_PER_NUMBER (--otp-per-number)",
        )?;
        let per_prefix = limit(
            &self.otp_per_prefix,
            "HERALD_OTP_PER_PREFIX (--otp-per-prefix)",
        )?;
        let block_name = "HERALD_OTP_BLOCK (--otp-block)";
        let block = herald_shared::duration::parse(self.otp_block.trim())
            .map_err(|err| ConfigError::new(block_name, format!("{:?}: {err}", self.otp_block)))?;
        if block.is_zero() || block > MAX_BLOCK {
            return Err(ConfigError::new(
                block_name,
                format!(
                    "{:?}: must be above zero and at most 30 days, e.g. 12h",
                    self.otp_block
                ),
            ));
        }
        let countries = self
            .otp_countries
            .split(',')
            .filter(|code| !code.trim().is_empty())
            .map(|code| {
                phone::calling_code_of(code).ok_or_else(|| {
                    ConfigError::new(
                        "HERALD_OTP_COUNTRIES (--otp-countries)",
                        format!(
                            "{:?} is not a calling code; give codes like +91,+971",
                            code.trim()
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let conversion_name = "HERALD_OTP_MIN_CONVERSION (--otp-min-conversion)";
        let min_conversion: f64 = self.otp_min_conversion.trim().parse().map_err(|_| {
            ConfigError::new(
                conversion_name,
                format!(
                    "{:?} is not a number; give a share from 0 to 1, e.g. 0.2",
                    self.otp_min_conversion
                ),
            )
        })?;
        if !(0.0..=1.0).contains(&min_conversion) {
            return Err(ConfigError::new(
                conversion_name,
                format!("{min_conversion} is not a share from 0 to 1, e.g. 0.2"),
            ));
        }
        Ok(Some(Guard {
            per_number,
            per_prefix,
            block,
            countries,
            min_conversion,
        }))
    }
}

/// An OTP the guard refused: nothing was enqueued and no token spent. Says which rule, the
/// masked number (or, for a prefix's rule, the masked prefix) and when it frees.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.line())]
pub struct OtpRefused {
    pub rule: Rule,
    /// How long until the same OTP would pass; `None`: never (its country is not allowed).
    pub retry_after: Option<Duration>,
    /// The masked number (`+91********10`) or prefix (`+******54xxxx`) the rule is about.
    pub masked: String,
}

impl OtpRefused {
    /// The refusal the script answered for an OTP to `e164`.
    pub fn new(refusal: Refusal, e164: &str) -> OtpRefused {
        let prefix_rule = matches!(
            refusal.rule,
            Rule::PerPrefix | Rule::PrefixBlocked | Rule::Conversion
        );
        let masked = match phone::guard_parts(e164) {
            Some(parts) if prefix_rule => phone::mask_prefix(parts.prefix),
            Some(parts) if refusal.rule == Rule::Country => parts.country_code.to_string(),
            _ => phone::mask(e164),
        };
        OtpRefused {
            rule: refusal.rule,
            retry_after: refusal.retry_after,
            masked,
        }
    }

    /// `Retry-After` in whole seconds (at least 1); `None`: never.
    pub fn retry_after_secs(&self) -> Option<u64> {
        Refusal {
            rule: self.rule,
            retry_after: self.retry_after,
        }
        .retry_after_secs()
    }

    /// One line for people: the rule, what it is about, and when it frees.
    pub fn line(&self) -> String {
        let what = match self.rule {
            Rule::PerNumber => format!("{} has had its OTPs for the window", self.masked),
            Rule::PerPrefix => format!(
                "the prefix {} reached its limit and is blocked",
                self.masked
            ),
            Rule::PrefixBlocked => format!("the prefix {} is blocked", self.masked),
            Rule::Country => format!("{} is not in HERALD_OTP_COUNTRIES", self.masked),
            Rule::Conversion => format!(
                "too few of the prefix {}'s OTPs were verified; it is blocked",
                self.masked
            ),
        };
        let frees = match self.retry_after_secs() {
            Some(secs) => format!(
                "frees in {}",
                herald_shared::job::human(Duration::from_secs(secs))
            ),
            None => "never frees (allow the country to send there)".into(),
        };
        format!(
            "OTP refused ({}): {what}; {frees}; nothing was enqueued",
            self.rule
        )
    }
}

/// How many prefixes a producer logs refusals of in one minute; past it, one line says so.
pub const LOGGED_PREFIXES_PER_MINUTE: usize = 1_000;

/// Counts each refusal (`herald_otp_refused_total{rule}`) and, when it logs (the API
/// server's; the CLI prints each refusal itself), logs it at most once per prefix per
/// minute, so a flood costs a few log lines, not one per request. Held by the
/// [`Producer`](crate::Producer) (shared by its clones); its memory is the prefixes logged
/// this minute, at most [`LOGGED_PREFIXES_PER_MINUTE`].
#[derive(Debug, Default)]
pub struct RefusalLog {
    /// Whether refusals are logged at all.
    logs: bool,
    /// The minute (Unix) and the prefixes logged in it.
    logged: Mutex<(u64, HashSet<String>)>,
}

impl RefusalLog {
    /// A log that logs (a default one only counts).
    pub fn logging() -> RefusalLog {
        RefusalLog {
            logs: true,
            ..RefusalLog::default()
        }
    }

    /// Counts and, if its prefix was not logged this minute, logs `refused` (an OTP to
    /// `e164`) at `now_s` (Unix seconds).
    pub fn record(&self, refused: &OtpRefused, e164: &str, now_s: u64) {
        metrics::counter!("herald_otp_refused_total", "rule" => refused.rule.as_str()).increment(1);
        if !self.logs {
            return;
        }
        let prefix = phone::guard_parts(e164).map_or(e164, |parts| parts.prefix);
        let minute = now_s / 60;
        let first = {
            let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
            if logged.0 != minute {
                *logged = (minute, HashSet::new());
            }
            match logged.1.len() {
                n if n < LOGGED_PREFIXES_PER_MINUTE => logged.1.insert(prefix.to_string()),
                n if n == LOGGED_PREFIXES_PER_MINUTE => {
                    logged.1.insert(String::new());
                    tracing::warn!(
                        "OTP refusals for more than {LOGGED_PREFIXES_PER_MINUTE} prefixes this minute: no more logged until the next (herald_otp_refused_total counts them all)"
                    );
                    false
                }
                _ => false,
            }
        };
        if first {
            tracing::warn!(
                rule = refused.rule.as_str(),
                prefix = %phone::mask_prefix(prefix),
                retry_after_s = refused.retry_after_secs(),
                "OTP refused by the guard (logged once per prefix per minute)"
            );
        }
    }
}

/// Describes the guard's metric, so `/metrics` carries its help text.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "herald_otp_refused_total",
        "OTPs the OTP guard refused, by rule (nothing enqueued, no token spent)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        guard: GuardArgs,
    }

    fn settings(args: &[&str]) -> Result<Option<Guard>, ConfigError> {
        let mut argv = vec!["x"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().guard.settings()
    }

    #[test]
    fn no_flags_are_the_documented_defaults() {
        // The variables of a developer's shell would change the answer: clear them here.
        for name in [
            "HERALD_OTP_GUARD",
            "HERALD_OTP_PER_NUMBER",
            "HERALD_OTP_PER_PREFIX",
            "HERALD_OTP_BLOCK",
            "HERALD_OTP_COUNTRIES",
            "HERALD_OTP_MIN_CONVERSION",
        ] {
            assert!(std::env::var_os(name).is_none(), "{name} is set");
        }
        assert_eq!(settings(&[]).unwrap(), Some(Guard::default()));
        assert_eq!(settings(&["--otp-guard", "off"]).unwrap(), None);
        let guard = settings(&[
            "--otp-per-number",
            "3/10m",
            "--otp-per-prefix",
            "100/24h",
            "--otp-block",
            "1h",
            "--otp-countries",
            "+91, 971",
            "--otp-min-conversion",
            "0",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(guard.per_number.to_string(), "3/10m");
        assert_eq!(guard.countries, ["+91", "+971"]);
        assert_eq!(guard.block, Duration::from_secs(3600));
        assert_eq!(guard.min_conversion, 0.0);
    }

    #[test]
    fn every_bad_value_names_its_variable_and_flag() {
        for (flag, value, name) in [
            ("--otp-guard", "maybe", "HERALD_OTP_GUARD (--otp-guard)"),
            (
                "--otp-per-number",
                "5",
                "HERALD_OTP_PER_NUMBER (--otp-per-number)",
            ),
            (
                "--otp-per-number",
                "0/1h",
                "HERALD_OTP_PER_NUMBER (--otp-per-number)",
            ),
            (
                "--otp-per-number",
                "5/2d",
                "HERALD_OTP_PER_NUMBER (--otp-per-number)",
            ),
            (
                "--otp-per-prefix",
                "x/1h",
                "HERALD_OTP_PER_PREFIX (--otp-per-prefix)",
            ),
            ("--otp-block", "0s", "HERALD_OTP_BLOCK (--otp-block)"),
            ("--otp-block", "60d", "HERALD_OTP_BLOCK (--otp-block)"),
            ("--otp-block", "soon", "HERALD_OTP_BLOCK (--otp-block)"),
            (
                "--otp-countries",
                "+91,+999",
                "HERALD_OTP_COUNTRIES (--otp-countries)",
            ),
            (
                "--otp-countries",
                "india",
                "HERALD_OTP_COUNTRIES (--otp-countries)",
            ),
            (
                "--otp-min-conversion",
                "1.5",
                "HERALD_OTP_MIN_CONVERSION (--otp-min-conversion)",
            ),
            (
                "--otp-min-conversion",
                "much",
                "HERALD_OTP_MIN_CONVERSION (--otp-min-conversion)",
            ),
        ] {
            let err = settings(&[flag, value]).unwrap_err();
            assert_eq!(err.name, name, "{flag} {value}");
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }

    #[test]
    fn a_refusal_names_the_rule_the_masked_number_or_prefix_and_when_it_frees() {
        let number = "+919876543210";
        let per_number = OtpRefused::new(Refusal::new(Rule::PerNumber, 2_400_000), number);
        let line = per_number.line();
        assert!(line.contains("per_number"), "{line}");
        assert!(line.contains(&phone::mask(number)), "{line}");
        assert!(line.contains("frees in 40m"), "{line}");
        assert!(!line.contains("9876543"), "{line}");
        let blocked = OtpRefused::new(Refusal::new(Rule::PrefixBlocked, 43_200_000), number);
        assert!(
            blocked.line().contains("+******54xxxx"),
            "{}",
            blocked.line()
        );
        let country = OtpRefused::new(Refusal::new(Rule::Country, -1), number);
        assert_eq!(country.retry_after_secs(), None);
        assert!(
            country.line().contains("+91 is not in"),
            "{}",
            country.line()
        );
        assert!(!country.line().contains('\n'));
    }

    #[test]
    fn a_flood_is_logged_once_per_prefix_per_minute() {
        let log = RefusalLog::logging();
        let refused = OtpRefused::new(Refusal::new(Rule::PrefixBlocked, 1000), "+919876543210");
        for i in 0..100 {
            log.record(&refused, &format!("+91987654{i:04}"), 120);
        }
        assert_eq!(log.logged.lock().unwrap().1.len(), 1);
        for i in 0..(3 * LOGGED_PREFIXES_PER_MINUTE) {
            log.record(&refused, &format!("+91{:06}0000", i), 130);
        }
        assert_eq!(
            log.logged.lock().unwrap().1.len(),
            LOGGED_PREFIXES_PER_MINUTE + 1,
            "bounded"
        );
        log.record(&refused, "+919876543210", 180);
        let logged = log.logged.lock().unwrap();
        assert_eq!(
            (logged.0, logged.1.clone()),
            (3, HashSet::from(["+91987654".to_string()]))
        );
    }
}
