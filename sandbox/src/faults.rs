//! Which injected fault, if any, a request meets: its phone's script first, else the random
//! `--fail-rate`.
//!
//! Owns the per-phone request counters behind `fail:N` and `429:N`, and the random generator
//! (seedable, so a test can replay a run). It decides; it never sleeps and never formats an
//! answer (that is [`crate::reply`]). Only requests that got past authentication and the rate
//! limiter reach it, so only those count towards a script's "first N".

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::config::{SandboxConfig, Script};

/// A fault the request is answered with instead of going on to validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// 400 `Invalid template` (script `400`).
    InvalidTemplate,
    /// 500 (script `500`).
    ServerError,
    /// 503 (script `fail:N`, or the random fail rate).
    Unavailable,
    /// 429 with `Retry-After` of this many seconds (script `429:N[:SECS]`).
    RateLimited(u64),
    /// 200 with `result: false` (script `false`).
    Rejected,
}

/// What fault injection decided for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// `None`: go on to validation.
    pub(crate) fault: Option<Fault>,
    /// Extra delay before answering (script `slow:D`), on top of `--latency`.
    pub(crate) delay: Duration,
}

impl Verdict {
    const PASS: Verdict = Verdict {
        fault: None,
        delay: Duration::ZERO,
    };

    fn fault(fault: Fault) -> Verdict {
        Verdict {
            fault: Some(fault),
            delay: Duration::ZERO,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Faults {
    /// E.164 phone -> its script.
    script: HashMap<String, Script>,
    /// E.164 phone -> requests seen so far, for `fail:N` and `429:N`.
    seen: HashMap<String, u32>,
    fail_rate: f64,
    seed: Option<u64>,
    rng: StdRng,
}

impl Faults {
    pub(crate) fn new(config: &SandboxConfig) -> Self {
        Faults {
            script: config
                .script
                .iter()
                .map(|rule| (rule.phone.e164(), rule.script.clone()))
                .collect(),
            seen: HashMap::new(),
            fail_rate: config.fail_rate,
            seed: config.seed,
            rng: new_rng(config.seed),
        }
    }

    /// Decides for a request to `phone` (E.164, `None` when the body names no phone).
    pub(crate) fn decide(&mut self, phone: Option<&str>) -> Verdict {
        let Some((phone, script)) = phone.and_then(|p| self.script.get_key_value(p)) else {
            return if self.fail_rate > 0.0 && self.rng.random_bool(self.fail_rate) {
                Verdict::fault(Fault::Unavailable)
            } else {
                Verdict::PASS
            };
        };
        let seen = self.seen.entry(phone.clone()).or_default();
        *seen = seen.saturating_add(1);
        match script {
            Script::InvalidTemplate => Verdict::fault(Fault::InvalidTemplate),
            Script::ServerError => Verdict::fault(Fault::ServerError),
            Script::FailFirst(n) if *seen <= *n => Verdict::fault(Fault::Unavailable),
            Script::RateLimitFirst(n, secs) if *seen <= *n => {
                Verdict::fault(Fault::RateLimited(*secs))
            }
            Script::FailFirst(_) | Script::RateLimitFirst(..) => Verdict::PASS,
            Script::Reject => Verdict::fault(Fault::Rejected),
            Script::Slow(delay) => Verdict {
                fault: None,
                delay: *delay,
            },
            // Scripts of what happens after acceptance: the send itself goes on normally.
            Script::Revoke | Script::Tap(_) => Verdict::PASS,
        }
    }

    /// Back to how it started: counters at zero, the generator reseeded.
    pub(crate) fn reset(&mut self) {
        self.seen.clear();
        self.rng = new_rng(self.seed);
    }
}

fn new_rng(seed: Option<u64>) -> StdRng {
    match seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => rand::make_rng(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPTED: &str = "+919000000001";
    const OTHER: &str = "+919999999999";

    fn faults(fail_rate: f64, script: &[&str]) -> Faults {
        Faults::new(&SandboxConfig {
            fail_rate,
            script: script.iter().map(|s| s.parse().unwrap()).collect(),
            seed: Some(7),
            ..SandboxConfig::new("k")
        })
    }

    fn faults_of(f: &mut Faults, phone: &str, n: usize) -> Vec<Option<Fault>> {
        (0..n).map(|_| f.decide(Some(phone)).fault).collect()
    }

    #[test]
    fn fail_first_n_then_pass() {
        let mut f = faults(0.0, &["+919000000001=fail:2"]);
        let u = Some(Fault::Unavailable);
        assert_eq!(faults_of(&mut f, SCRIPTED, 4), [u, u, None, None]);
        assert_eq!(faults_of(&mut f, OTHER, 2), [None, None]);
        f.reset();
        assert_eq!(faults_of(&mut f, SCRIPTED, 3), [u, u, None]);
    }

    #[test]
    fn rate_limit_first_n_then_pass() {
        let mut f = faults(0.0, &["+919000000001=429:1"]);
        assert_eq!(
            faults_of(&mut f, SCRIPTED, 3),
            [Some(Fault::RateLimited(1)), None, None]
        );
    }

    #[test]
    fn permanent_rules_never_relent() {
        let mut f = faults(
            0.0,
            &[
                "+919000000001=400",
                "+919000000002=500",
                "+919000000003=false",
            ],
        );
        for _ in 0..3 {
            assert_eq!(
                f.decide(Some("+919000000001")).fault,
                Some(Fault::InvalidTemplate)
            );
            assert_eq!(
                f.decide(Some("+919000000002")).fault,
                Some(Fault::ServerError)
            );
            assert_eq!(f.decide(Some("+919000000003")).fault, Some(Fault::Rejected));
        }
    }

    #[test]
    fn slow_delays_without_failing() {
        let mut f = faults(0.0, &["+919000000001=slow:2s"]);
        assert_eq!(
            f.decide(Some(SCRIPTED)),
            Verdict {
                fault: None,
                delay: Duration::from_secs(2)
            }
        );
        assert_eq!(f.decide(Some(OTHER)), Verdict::PASS);
    }

    #[test]
    fn fail_rate_extremes_are_exact_and_spare_scripted_phones() {
        let mut always = faults(1.0, &["+919000000001=slow:1s"]);
        assert!(
            faults_of(&mut always, OTHER, 50)
                .iter()
                .all(|f| *f == Some(Fault::Unavailable))
        );
        assert_eq!(always.decide(None).fault, Some(Fault::Unavailable));
        assert_eq!(always.decide(Some(SCRIPTED)).fault, None);
        let mut never = faults(0.0, &[]);
        assert!(faults_of(&mut never, OTHER, 50).iter().all(Option::is_none));
    }

    #[test]
    fn fail_rate_is_roughly_honoured_and_replayable() {
        let mut f = faults(0.3, &[]);
        let first = faults_of(&mut f, OTHER, 1000);
        let failed = first.iter().filter(|f| f.is_some()).count();
        assert!((220..380).contains(&failed), "{failed} of 1000 at p = 0.3");
        f.reset();
        assert_eq!(faults_of(&mut f, OTHER, 1000), first, "same seed, same run");
    }
}
