//! `herald-worker run`'s flags and environment, turned once into validated [`Settings`]:
//! each duration and count in its range ([`bounds`]), and the flags that depend on each
//! other checked together.

pub mod bounds;
pub mod weights;

pub use weights::LaneWeights;

use std::net::SocketAddr;
use std::time::Duration;

use herald_shared::Redacted;
use herald_shared::compose::SmsSettings;
use herald_shared::config::{
    ConfigError, InteraktArgs, RateArgs, RedisArgs, SmsArgs, parse_duration,
};
use herald_shared::consumer::consumer_name;
use herald_shared::redis_pool::Target;
use herald_store::Keys;
use herald_store::durability::Durability;

use crate::limiter::{Budget, default_margin, percent_of};
use crate::retry::RetryPolicy;

/// `herald-worker run`'s exit codes, for its `--help`.
pub const RUN_EXIT_CODES: &str = "Exit codes:
  0  stopped cleanly on SIGTERM/SIGINT (in-flight sends finished or handed back)
  1  part of the worker (retry promoter, heartbeat, keep-alive, code eraser, metrics
     server) stopped
     unexpectedly, or Redis refused something no retry can help (NOPERM: a permission the
     ACL user lacks, WRONGTYPE, refused credentials; the last line names it and its fix):
     /readyz turned 503, jobs in hand were handed back, and it exited
  2  bad usage or configuration (a missing API key, a malformed flag or one out of its
     range, --http-listen cannot be bound)
Redis unreachable, out of memory, at maxclients, loading or a read-only replica is not an
exit: the replica waits and retries with backoff, unready (docs/redis-errors.md).";

/// Flags of `herald-worker run`; each also reads an environment variable.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub interakt: InteraktArgs,
    #[command(flatten)]
    pub rate: RateArgs,
    #[command(flatten)]
    pub sms: SmsArgs,
    /// How the lanes other than OTPs share the budget when more than one has a backlog:
    /// `booking=6,reminder=3,bulk=1` (each 1 to 1000); a lane with no backlog leaves its share
    /// to the others. OTPs always go first.
    #[arg(long, env = "HERALD_LANE_WEIGHTS", default_value = weights::DEFAULT_LANE_WEIGHTS)]
    pub lane_weights: String,
    /// Tenants that weigh more (or less) than 1 within a lane: `salon-a=3,salon-b=1`;
    /// tenants with a backlog are served in turn, each by its weight.
    #[arg(long, env = "HERALD_TENANT_WEIGHTS", default_value = "")]
    pub tenant_weights: String,
    /// Requests in flight at once in this replica (1 to 1024).
    #[arg(long, env = "HERALD_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u64,
    /// Failed attempts (5xx, timeouts, connection errors) before a job is dead-lettered.
    /// 429s never count (1 to 100).
    #[arg(long, env = "HERALD_MAX_ATTEMPTS", default_value_t = 8)]
    pub max_attempts: u64,
    /// First retry delay ceiling; doubles each attempt (full jitter). 10ms to 1h, at most
    /// --backoff-max.
    #[arg(long, env = "HERALD_BACKOFF_BASE", default_value = "1s", value_parser = parse_duration)]
    pub backoff_base: Duration,
    /// Longest retry delay (10ms to 1day).
    #[arg(long, env = "HERALD_BACKOFF_MAX", default_value = "5m", value_parser = parse_duration)]
    pub backoff_max: Duration,
    /// How long a job may sit unacknowledged with a silent consumer before another replica
    /// takes it over (2s to 1day, at least twice --request-timeout).
    #[arg(long, env = "HERALD_CLAIM_IDLE", default_value = "60s", value_parser = parse_duration)]
    pub claim_idle: Duration,
    /// Deliveries after which a job that keeps crashing or stalling its consumer is
    /// dead-lettered as poison (1 to 100).
    #[arg(long, env = "HERALD_MAX_DELIVERIES", default_value_t = 5)]
    pub max_deliveries: u64,
    /// On SIGTERM/SIGINT: how long in-flight sends may take to finish (1s to 1h).
    #[arg(long, env = "HERALD_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Timeout of one request to Interakt (1s to 5m); lowered, with a warning, to the window of
    /// --rate less the margin when it does not fit in it (docs/budget.md).
    #[arg(long, env = "HERALD_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// How late after its grant a request may start (half of it) and, after its timeout,
    /// reach Interakt: a request in flight counts in the shared window from its grant plus
    /// --request-timeout plus this margin, then from its answer (default: 2% of the window,
    /// 250 ms to 1 s). At least 50ms, and below the window.
    #[arg(long, env = "HERALD_RATE_MARGIN", value_parser = parse_duration)]
    pub rate_margin: Option<Duration>,
    /// The most tokens of each window bookings leave to OTPs, so one finds a token even
    /// behind a backlog: as many as OTPs took in this or the last window, up to this (one
    /// when none came, from N = 100). A count (`3`) or a share of N (`5%`). Default 5% of N,
    /// at least 1.
    #[arg(
        long,
        env = "HERALD_OTP_RESERVE",
        default_value = "5%",
        value_name = "N|P%"
    )]
    pub otp_reserve: Portion,
    /// The share of the budget waiting bookings always get, even behind a flood of OTPs: a
    /// count or a share of N. Default 10% of N, at least 1.
    #[arg(
        long,
        env = "HERALD_BOOKING_SHARE",
        default_value = "10%",
        value_name = "N|P%"
    )]
    pub booking_share: Portion,
    /// The longest every replica pauses after a 429; a longer Retry-After is clamped to it
    /// (and the rate-limited job retries after at most this, plus a little jitter). 1s to
    /// 1h.
    #[arg(long, env = "HERALD_MAX_COOLDOWN", default_value = "30s", value_parser = parse_duration)]
    pub max_cooldown: Duration,
    /// During a longer pause after a 429, one replica at a time sends one request this often
    /// (an OTP first, if one waits): its 2xx ends the pause for every replica, a 429 keeps
    /// it. 1s to 1h; at --max-cooldown or above, no probe goes.
    #[arg(long, env = "HERALD_PROBE_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub probe_interval: Duration,
    /// Wait until this many replicas have each sent marker (Redis WAIT, 2 s) before moving
    /// on, so a failover does not make a sent job look unsent; 0: do not wait (0 to 100).
    #[arg(long, env = "HERALD_MIN_REPLICAS", default_value_t = 0)]
    pub min_replicas: u32,
    /// Serve /metrics, /healthz and /readyz on this address.
    #[arg(long, env = "HERALD_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// This replica's consumer name; must be unique per process (default: host-pid-random).
    #[arg(long, env = "HERALD_CONSUMER")]
    pub consumer: Option<String>,
}

/// Everything a worker needs, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The Redis server or cluster.
    pub redis: Target,
    pub keys: Keys,
    pub send_url: String,
    pub api_key: Redacted<String>,
    /// The plan's rate, its margin, the OTP reserve, the bookings' share, the cool-down cap.
    pub budget: Budget,
    pub sms: Option<SmsSettings>,
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub claim_idle: Duration,
    pub max_deliveries: u64,
    pub shutdown_grace: Duration,
    /// The request timeout actually used: `--request-timeout`, or less when the window of
    /// `--rate` is shorter than it plus the margin (see [`bounds::fit_timeout`]).
    pub request_timeout: Duration,
    /// `Some(asked)` when `request_timeout` was lowered from `asked` to fit the window: the
    /// worker warns once at start.
    pub timeout_lowered: Option<Duration>,
    pub http_listen: Option<SocketAddr>,
    /// How the lanes other than OTPs share the budget.
    pub lane_weights: LaneWeights,
    /// The tenants that do not weigh 1.
    pub tenant_weights: Vec<(String, u32)>,
    pub consumer: String,
    /// How many replicas must have a sent marker (`--min-replicas`).
    pub durability: Durability,
}

impl Settings {
    pub fn from_args(redis: &RedisArgs, args: &RunArgs) -> Result<Settings, ConfigError> {
        let rate = args.rate.resolve()?;
        bounds::RATE_WINDOW.check(rate.period).map_err(|err| {
            ConfigError::new(err.name, format!("{rate}: its window {}", err.reason))
        })?;
        let concurrency = bounds::CONCURRENCY.check(args.concurrency)?;
        let max_attempts = bounds::MAX_ATTEMPTS.check(args.max_attempts)?;
        let max_deliveries = bounds::MAX_DELIVERIES.check(args.max_deliveries)?;
        let min_replicas = bounds::MIN_REPLICAS.check(u64::from(args.min_replicas))?;
        let backoff_base = bounds::BACKOFF_BASE.check(args.backoff_base)?;
        let backoff_max = bounds::BACKOFF_MAX.check(args.backoff_max)?;
        if backoff_max < backoff_base {
            return Err(ConfigError::new(
                bounds::BACKOFF_BASE.name,
                format!(
                    "is {}; it must be at most HERALD_BACKOFF_MAX (--backoff-max), {}",
                    humantime::format_duration(backoff_base),
                    humantime::format_duration(backoff_max)
                ),
            ));
        }
        let asked_timeout = bounds::REQUEST_TIMEOUT.check(args.request_timeout)?;
        let margin = match args.rate_margin {
            Some(margin) => bounds::check_margin(margin, rate.period)?,
            None => default_margin(rate.period),
        };
        let (request_timeout, timeout_lowered) =
            bounds::fit_timeout(asked_timeout, margin, rate.period);
        let claim_idle = bounds::CLAIM_IDLE.check(args.claim_idle)?;
        // A job is only taken over once it has been idle longer than any send can take.
        if claim_idle < request_timeout * 2 {
            return Err(ConfigError::new(
                bounds::CLAIM_IDLE.name,
                format!(
                    "is {}; it must be at least twice --request-timeout ({}), or a slow send could be taken over and sent twice",
                    humantime::format_duration(claim_idle),
                    humantime::format_duration(request_timeout)
                ),
            ));
        }
        let shutdown_grace = bounds::SHUTDOWN_GRACE.check(args.shutdown_grace)?;
        let max_cooldown = bounds::MAX_COOLDOWN.check(args.max_cooldown)?;
        let probe_interval = bounds::PROBE_INTERVAL.check(args.probe_interval)?;
        let consumer = consumer_name(args.consumer.as_deref())?;
        let n = rate.requests.get();
        let otp_reserve = args
            .otp_reserve
            .tokens(n, "HERALD_OTP_RESERVE (--otp-reserve)")?;
        let booking_share = args
            .booking_share
            .tokens(n, "HERALD_BOOKING_SHARE (--booking-share)")?;
        let budget = Budget {
            rate,
            margin,
            request_timeout,
            otp_reserve,
            booking_share,
            max_cooldown,
            probe_interval,
        };
        Ok(Settings {
            redis: redis.target(),
            keys: Keys::new(&redis.namespace)?,
            send_url: args.interakt.send_url()?,
            api_key: args.interakt.require_api_key()?,
            budget,
            sms: args.sms.resolve()?,
            // Both within their ranges (at most 1024 and 100).
            concurrency: concurrency as usize,
            retry: RetryPolicy {
                max_attempts: max_attempts as u32,
                backoff_base,
                backoff_max,
                max_cooldown: max_cooldown.min(probe_interval),
            },
            claim_idle,
            max_deliveries,
            shutdown_grace,
            request_timeout,
            timeout_lowered,
            http_listen: args.http_listen,
            lane_weights: LaneWeights::parse(&args.lane_weights)?,
            tenant_weights: weights::parse_tenant_weights(&args.tenant_weights)?,
            consumer,
            // Within its range (at most 100).
            durability: Durability::replicas(min_replicas as u32),
        })
    }
}

/// A part of the budget: a count of tokens (`3`) or a share of N (`5%`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Portion {
    Tokens(u32),
    Percent(u32),
}

impl std::str::FromStr for Portion {
    type Err = String;

    fn from_str(s: &str) -> Result<Portion, String> {
        let s = s.trim();
        let bad = || format!("{s:?} is neither a count of tokens (3) nor a whole percentage (5%)");
        match s.strip_suffix('%') {
            Some(p) => match p.trim().parse::<u32>() {
                Ok(p) if p <= 100 => Ok(Portion::Percent(p)),
                _ => Err(bad()),
            },
            None => s.parse().map(Portion::Tokens).map_err(|_| bad()),
        }
    }
}

impl Portion {
    /// Tokens out of a window of `n`: a percentage rounds and is at least 1; either way it
    /// must leave at least one token to the other lane.
    pub fn tokens(self, n: u32, name: &'static str) -> Result<u32, ConfigError> {
        match self {
            Portion::Percent(p) => Ok(percent_of(n, p)),
            Portion::Tokens(t) if t >= 1 && (t < n || n == 1) => Ok(t),
            Portion::Tokens(t) => Err(ConfigError::new(
                name,
                format!(
                    "is {t} tokens; it must be at least 1 and below the rate's {n} per window, or one lane would never be sent"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(flags: &[&str]) -> Result<Settings, ConfigError> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            redis: RedisArgs,
            #[command(flatten)]
            run: RunArgs,
        }
        let args = ["herald-worker", "--api-key", "k"].iter().chain(flags);
        let cli = <Cli as clap::Parser>::try_parse_from(args).expect("flags parse");
        Settings::from_args(&cli.redis, &cli.run)
    }

    /// An extreme `--request-timeout` is refused by name, as a short `--claim-idle` is:
    /// no overflow, no panic.
    #[test]
    fn a_request_timeout_no_claim_idle_can_cover_is_refused_by_name() {
        let err = settings(&["--request-timeout", "10000000000000000000s"])
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("HERALD_REQUEST_TIMEOUT (--request-timeout)"),
            "{err}"
        );
        let err = settings(&["--request-timeout", "40s", "--claim-idle", "60s"])
            .expect_err("refused")
            .to_string();
        assert!(err.contains("HERALD_CLAIM_IDLE (--claim-idle)"), "{err}");
        assert!(settings(&["--request-timeout", "30s", "--claim-idle", "60s"]).is_ok());
    }

    /// A window shorter than the request timeout plus the margin gets the timeout lowered to
    /// fit (the worker warns); one that holds them keeps the timeout asked for.
    #[test]
    fn a_timeout_that_does_not_fit_the_window_is_lowered_to_fit() {
        let short = settings(&["--rate", "10/1s"]).unwrap();
        assert_eq!(short.budget.margin, Duration::from_millis(250));
        assert_eq!(short.request_timeout, Duration::from_millis(750));
        assert_eq!(short.budget.request_timeout, Duration::from_millis(750));
        assert_eq!(short.timeout_lowered, Some(Duration::from_secs(10)));
        let asked = settings(&[
            "--rate",
            "5/2s",
            "--request-timeout",
            "1s",
            "--rate-margin",
            "100ms",
        ])
        .unwrap();
        assert_eq!(asked.request_timeout, Duration::from_secs(1));
        assert_eq!(asked.timeout_lowered, None);
        let exact = settings(&[
            "--rate",
            "50/5s",
            "--request-timeout",
            "4s",
            "--rate-margin",
            "1s",
        ])
        .unwrap();
        assert_eq!(exact.request_timeout, Duration::from_secs(4));
        assert_eq!(exact.timeout_lowered, None);
        let defaults = settings(&[]).unwrap();
        assert_eq!(defaults.request_timeout, Duration::from_secs(10));
        assert_eq!(defaults.timeout_lowered, None);
    }

    /// A rate-limited job waits at most until the next probe could end the pause.
    #[test]
    fn a_rate_limited_job_waits_at_most_the_probe_interval_when_pauses_are_probed() {
        let probed = settings(&["--probe-interval", "3s"]).expect("valid");
        assert_eq!(probed.retry.max_cooldown, Duration::from_secs(3));
        assert_eq!(probed.budget.max_cooldown, Duration::from_secs(30));
        let unprobed = settings(&["--probe-interval", "1h", "--max-cooldown", "20s"]).unwrap();
        assert_eq!(unprobed.retry.max_cooldown, Duration::from_secs(20));
    }

    /// The defaults are in range, and so is every value the ranges' ends allow.
    #[test]
    fn the_defaults_and_the_ends_of_every_range_are_accepted() {
        let defaults = settings(&[]).expect("the defaults");
        assert_eq!(defaults.concurrency, 16);
        assert_eq!(defaults.budget.margin, Duration::from_secs(1));
        let ends = [
            "--concurrency 1 --max-attempts 1 --max-deliveries 1 --backoff-base 10ms \
             --backoff-max 10ms --request-timeout 1s --claim-idle 2s --shutdown-grace 1s \
             --max-cooldown 1s --rate 1/1s --rate-margin 50ms --probe-interval 1s \
             --min-replicas 0",
            "--concurrency 1024 --max-attempts 100 --max-deliveries 100 --backoff-base 1h \
             --backoff-max 1day --request-timeout 5m --claim-idle 1day --shutdown-grace 1h \
             --max-cooldown 1h --rate 4000000000/1day --rate-margin 86399s \
             --probe-interval 1h --min-replicas 100",
        ];
        for flags in ends {
            let flags: Vec<&str> = flags.split_whitespace().collect();
            if let Err(err) = settings(&flags) {
                panic!("{flags:?}: {err}");
            }
        }
    }

    /// Each flag out of its range is refused by its own name (not another's it depends on).
    #[test]
    fn a_value_out_of_range_is_refused_naming_its_variable_and_flag() {
        let cases: [(&[&str], &str); 17] = [
            (
                &["--min-replicas", "101"],
                "HERALD_MIN_REPLICAS (--min-replicas)",
            ),
            (
                &["--concurrency", "0"],
                "HERALD_CONCURRENCY (--concurrency)",
            ),
            (
                &["--max-attempts", "0"],
                "HERALD_MAX_ATTEMPTS (--max-attempts)",
            ),
            (
                &["--max-deliveries", "101"],
                "HERALD_MAX_DELIVERIES (--max-deliveries)",
            ),
            (
                &["--backoff-base", "0s"],
                "HERALD_BACKOFF_BASE (--backoff-base)",
            ),
            (
                &["--backoff-base", "10m"],
                "HERALD_BACKOFF_BASE (--backoff-base)",
            ),
            (
                &["--backoff-max", "100years"],
                "HERALD_BACKOFF_MAX (--backoff-max)",
            ),
            (&["--claim-idle", "0s"], "HERALD_CLAIM_IDLE (--claim-idle)"),
            (
                &["--shutdown-grace", "0s"],
                "HERALD_SHUTDOWN_GRACE (--shutdown-grace)",
            ),
            (
                &["--request-timeout", "0s"],
                "HERALD_REQUEST_TIMEOUT (--request-timeout)",
            ),
            (
                &["--max-cooldown", "10000000000000000000s"],
                "HERALD_MAX_COOLDOWN (--max-cooldown)",
            ),
            (
                &["--probe-interval", "999ms"],
                "HERALD_PROBE_INTERVAL (--probe-interval)",
            ),
            (
                &["--probe-interval", "10000000000000000000s"],
                "HERALD_PROBE_INTERVAL (--probe-interval)",
            ),
            (&["--rate", "10/500ms"], "INTERAKT_RATE_LIMIT (--rate)"),
            (&["--rate", "10/100years"], "INTERAKT_RATE_LIMIT (--rate)"),
            (
                &["--rate-margin", "0s"],
                "HERALD_RATE_MARGIN (--rate-margin)",
            ),
            (
                &["--rate", "10/1s", "--rate-margin", "1s"],
                "HERALD_RATE_MARGIN (--rate-margin)",
            ),
        ];
        for (flags, name) in cases {
            let err = settings(flags).expect_err("refused");
            assert_eq!(err.name, name, "{flags:?}: {err}");
        }
        let err = settings(&["--rate", "10/500ms"]).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "INTERAKT_RATE_LIMIT (--rate): 10/500ms: its window is 500ms; it must be from 1s to 1day: "
            ),
            "{err}"
        );
    }

    #[test]
    fn portions_parse_as_counts_or_percentages_and_leave_the_other_lane_a_token() {
        assert_eq!("3".parse(), Ok(Portion::Tokens(3)));
        assert_eq!("5%".parse(), Ok(Portion::Percent(5)));
        assert!("2.5%".parse::<Portion>().is_err());
        assert!("101%".parse::<Portion>().is_err());
        assert_eq!(Portion::Percent(5).tokens(300, "X").unwrap(), 15);
        assert_eq!(Portion::Percent(5).tokens(10, "X").unwrap(), 1);
        assert_eq!(Portion::Tokens(299).tokens(300, "X").unwrap(), 299);
        let err = Portion::Tokens(300)
            .tokens(300, "HERALD_OTP_RESERVE (--otp-reserve)")
            .unwrap_err()
            .to_string();
        assert!(err.contains("HERALD_OTP_RESERVE (--otp-reserve)"), "{err}");
        assert!(Portion::Tokens(0).tokens(300, "X").is_err());
    }
}
