//! The dashboard's flags and environment, turned once into [`Settings`]: the address, the
//! accepted tokens (required: a dashboard that anyone on the network could open would show
//! the queue and replay dead letters for them), read-only mode, and the plan's rate (the
//! charts' limit line).

use std::net::SocketAddr;
use std::time::Duration;

use herald_shared::Redacted;
use herald_shared::config::{ConfigError, RateArgs, RateLimit, RedisArgs};
use herald_shared::redis_pool::Target;
use herald_shared::tokens::Tokens;
use herald_store::Keys;

/// Redis connections of one dashboard: a page uses one at a time.
pub const POOL_SIZE: usize = 8;
/// The default address: loopback only, so exposing it is a decision.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";
/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// `dashboard`'s exit codes, for its `--help`.
pub const EXIT_CODES: &str = "Exit codes:
  0  stopped cleanly on SIGTERM/SIGINT
  1  the server failed while running
  2  bad usage or configuration (no HERALD_DASHBOARD_TOKENS, a bad namespace or rate),
     or --listen cannot be bound";

/// Flags of `herald-dashboard` and `herald-worker dashboard`.
#[derive(clap::Args, Clone, Debug)]
pub struct DashboardArgs {
    /// Address to listen on (HTTP; put a TLS-terminating proxy in front of it for anything
    /// but loopback).
    #[arg(long, env = "HERALD_DASHBOARD_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Accepted login tokens, comma-separated (required).
    #[arg(long, env = "HERALD_DASHBOARD_TOKENS", hide_env_values = true)]
    pub tokens: Option<Redacted<String>>,
    /// Show everything, allow nothing: every action is hidden and refused (403).
    #[arg(long, env = "HERALD_DASHBOARD_READ_ONLY")]
    pub read_only: bool,
    /// Mark the session cookie Secure even when the proxy in front sends no
    /// `X-Forwarded-Proto: https` (which sets it on its own).
    #[arg(long, env = "HERALD_DASHBOARD_SECURE_COOKIE")]
    pub secure_cookie: bool,
    #[command(flatten)]
    pub rate: RateArgs,
}

/// What the dashboard runs with, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub redis: Target,
    pub keys: Keys,
    pub namespace: String,
    pub tokens: Tokens,
    pub read_only: bool,
    pub secure_cookie: bool,
    /// The plan's rate: N per window, for the charts' limit line (the effective N comes
    /// from Redis).
    pub rate: RateLimit,
}

impl Settings {
    pub fn from_args(redis: &RedisArgs, args: &DashboardArgs) -> Result<Settings, ConfigError> {
        let tokens = args
            .tokens
            .as_ref()
            .and_then(Tokens::parse)
            .ok_or_else(|| {
                ConfigError::new(
                    "HERALD_DASHBOARD_TOKENS (--tokens)",
                    "is required: give one or more login tokens, comma-separated (e.g. from `openssl rand -hex 32`)",
                )
            })?;
        Ok(Settings {
            listen: args.listen,
            redis: redis.target(),
            keys: Keys::new(&redis.namespace)?,
            namespace: redis.namespace.clone(),
            tokens,
            read_only: args.read_only,
            secure_cookie: args.secure_cookie,
            rate: args.rate.resolve()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        args: DashboardArgs,
    }

    fn settings(argv: &[&str]) -> Result<Settings, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("x").chain(argv.iter().copied())).unwrap();
        Settings::from_args(&cli.redis, &cli.args)
    }

    #[test]
    fn tokens_are_required_and_never_shown() {
        // SAFETY of the test: the variable is not set by the harness.
        assert!(std::env::var_os("HERALD_DASHBOARD_TOKENS").is_none());
        let err = settings(&[]).unwrap_err().to_string();
        assert!(err.contains("HERALD_DASHBOARD_TOKENS (--tokens)"), "{err}");
        let ok = settings(&["--tokens", "s3cret-token"]).unwrap();
        assert!(!format!("{ok:?}").contains("s3cret-token"));
        assert_eq!(ok.listen.to_string(), DEFAULT_LISTEN);
        assert!(!ok.read_only);
        assert_eq!(ok.rate.requests.get(), 300, "growth by default");
    }
}
