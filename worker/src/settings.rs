//! `herald-worker run`'s flags and environment, turned once into validated [`Settings`].

use std::net::SocketAddr;
use std::time::Duration;

use herald_shared::compose::SmsSettings;
use herald_shared::config::{
    ConfigError, InteraktArgs, RateArgs, RateLimit, RedisArgs, SmsArgs, parse_duration,
};
use herald_shared::consumer::consumer_name;
use herald_shared::redis_pool::Target;
use herald_shared::{Keys, Redacted};

use crate::limiter::default_margin;
use crate::retry::RetryPolicy;

/// Flags of `herald-worker run`; each also reads an environment variable.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub interakt: InteraktArgs,
    #[command(flatten)]
    pub rate: RateArgs,
    #[command(flatten)]
    pub sms: SmsArgs,
    /// Requests in flight at once in this replica.
    #[arg(long, env = "HERALD_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Failed attempts (5xx, timeouts, connection errors) before a job is dead-lettered.
    /// 429s never count.
    #[arg(long, env = "HERALD_MAX_ATTEMPTS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// First retry delay ceiling; doubles each attempt (full jitter).
    #[arg(long, env = "HERALD_BACKOFF_BASE", default_value = "1s", value_parser = parse_duration)]
    pub backoff_base: Duration,
    /// Longest retry delay.
    #[arg(long, env = "HERALD_BACKOFF_MAX", default_value = "5m", value_parser = parse_duration)]
    pub backoff_max: Duration,
    /// How long a job may sit unacknowledged with a silent consumer before another replica
    /// takes it over.
    #[arg(long, env = "HERALD_CLAIM_IDLE", default_value = "60s", value_parser = parse_duration)]
    pub claim_idle: Duration,
    /// Deliveries after which a job that keeps crashing or stalling its consumer is
    /// dead-lettered as poison.
    #[arg(long, env = "HERALD_MAX_DELIVERIES", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_deliveries: u64,
    /// On SIGTERM/SIGINT: how long in-flight sends may take to finish.
    #[arg(long, env = "HERALD_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Timeout of one request to Interakt.
    #[arg(long, env = "HERALD_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Extra length of the shared window, absorbing the jitter between a grant and the
    /// request's arrival (default: 2% of the window, 250 ms to 1 s).
    #[arg(long, env = "HERALD_RATE_MARGIN", value_parser = parse_duration)]
    pub rate_margin: Option<Duration>,
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
    pub rate: RateLimit,
    pub rate_margin: Duration,
    pub sms: Option<SmsSettings>,
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub claim_idle: Duration,
    pub max_deliveries: u64,
    pub shutdown_grace: Duration,
    pub request_timeout: Duration,
    pub http_listen: Option<SocketAddr>,
    pub consumer: String,
}

impl Settings {
    pub fn from_args(redis: &RedisArgs, args: &RunArgs) -> Result<Settings, ConfigError> {
        let rate = args.rate.resolve()?;
        if args.backoff_base.is_zero() || args.backoff_max < args.backoff_base {
            return Err(ConfigError::new(
                "HERALD_BACKOFF_BASE / HERALD_BACKOFF_MAX",
                "the base must be above zero and at most the max",
            ));
        }
        // A job is only taken over once it has been idle longer than any send can take.
        if args.claim_idle < args.request_timeout * 2 {
            return Err(ConfigError::new(
                "HERALD_CLAIM_IDLE (--claim-idle)",
                format!(
                    "is {}; it must be at least twice --request-timeout ({}), or a slow send could be taken over and sent twice",
                    humantime::format_duration(args.claim_idle),
                    humantime::format_duration(args.request_timeout)
                ),
            ));
        }
        let consumer = consumer_name(args.consumer.as_deref())?;
        Ok(Settings {
            redis: redis.target(),
            keys: Keys::new(&redis.namespace)?,
            send_url: args.interakt.send_url()?,
            api_key: args.interakt.require_api_key()?,
            rate,
            rate_margin: args
                .rate_margin
                .unwrap_or_else(|| default_margin(rate.period)),
            sms: args.sms.resolve()?,
            concurrency: args.concurrency as usize,
            retry: RetryPolicy {
                max_attempts: args.max_attempts,
                backoff_base: args.backoff_base,
                backoff_max: args.backoff_max,
            },
            claim_idle: args.claim_idle,
            max_deliveries: args.max_deliveries,
            shutdown_grace: args.shutdown_grace,
            request_timeout: args.request_timeout,
            http_listen: args.http_listen,
            consumer,
        })
    }
}
