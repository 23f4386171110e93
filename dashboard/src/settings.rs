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
/// How long a session lasts unused: each page or action it makes starts this again.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// How long a session lasts at most, however much it is used (the cookie's `Max-Age`).
pub const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);
/// The shortest login token accepted (characters): a short one can be guessed.
pub const MIN_TOKEN_CHARS: usize = 16;
/// The shortest `HERALD_DASHBOARD_SECRET` accepted (characters).
pub const MIN_SECRET_CHARS: usize = 32;

/// `dashboard`'s exit codes, for its `--help`.
pub const EXIT_CODES: &str = "Exit codes:
  0  stopped cleanly on SIGTERM/SIGINT
  1  the server failed while running
  2  bad usage or configuration (no HERALD_DASHBOARD_TOKENS, a token shorter than 16
     characters, a HERALD_DASHBOARD_SECRET shorter than 32, a bad namespace or rate), or
     --listen cannot be bound";

/// Flags of `herald-dashboard` and `herald-worker dashboard`.
#[derive(clap::Args, Clone, Debug)]
pub struct DashboardArgs {
    /// Address to listen on (HTTP; put a TLS-terminating proxy in front of it for anything
    /// but loopback).
    #[arg(long, env = "HERALD_DASHBOARD_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Accepted login tokens, comma-separated (required), each at least 16 characters
    /// (e.g. from `openssl rand -hex 32`).
    #[arg(long, env = "HERALD_DASHBOARD_TOKENS", hide_env_values = true)]
    pub tokens: Option<Redacted<String>>,
    /// The secret that signs session cookies, at least 32 characters (e.g. from `openssl
    /// rand -hex 32`); give every replica the same. Without it, a random secret is kept in
    /// Redis ({NAMESPACE}:dashboard:secret), made once by the first replica and shared.
    #[arg(long, env = "HERALD_DASHBOARD_SECRET", hide_env_values = true)]
    pub secret: Option<Redacted<String>>,
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
    /// `HERALD_DASHBOARD_SECRET`, checked; `None`: the secret kept in Redis.
    pub secret: Option<Redacted<String>>,
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
        if let Some(list) = &args.tokens {
            check_token_lengths(list)?;
        }
        if let Some(secret) = &args.secret {
            let chars = secret.expose().chars().count();
            if chars < MIN_SECRET_CHARS {
                return Err(ConfigError::new(
                    "HERALD_DASHBOARD_SECRET (--secret)",
                    format!(
                        "is {chars} characters; it must be at least {MIN_SECRET_CHARS}: make one with `openssl rand -hex 32`, or leave it unset for a random secret kept in Redis"
                    ),
                ));
            }
        }
        Ok(Settings {
            listen: args.listen,
            redis: redis.target(),
            keys: Keys::new(&redis.namespace)?,
            namespace: redis.namespace.clone(),
            tokens,
            secret: args.secret.clone(),
            read_only: args.read_only,
            secure_cookie: args.secure_cookie,
            rate: args.rate.resolve()?,
        })
    }
}

/// Each token of the list is at least [`MIN_TOKEN_CHARS`] long; the error says which one by
/// its position and length, never its text.
fn check_token_lengths(list: &Redacted<String>) -> Result<(), ConfigError> {
    let tokens: Vec<&str> = list
        .expose()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    for (i, token) in tokens.iter().enumerate() {
        let chars = token.chars().count();
        if chars < MIN_TOKEN_CHARS {
            return Err(ConfigError::new(
                "HERALD_DASHBOARD_TOKENS (--tokens)",
                format!(
                    "token {} of {} is {chars} characters; each must be at least {MIN_TOKEN_CHARS}, or it can be guessed: make them with `openssl rand -hex 32`",
                    i + 1,
                    tokens.len()
                ),
            ));
        }
    }
    Ok(())
}

/// Settings from a command line (`argv` without the program name), as the binaries parse
/// it: for tests.
#[cfg(test)]
pub(crate) fn from_argv(argv: &[&str]) -> Result<Settings, ConfigError> {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        args: DashboardArgs,
    }
    let cli = Cli::try_parse_from(std::iter::once("x").chain(argv.iter().copied())).unwrap();
    Settings::from_args(&cli.redis, &cli.args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(argv: &[&str]) -> Result<Settings, ConfigError> {
        from_argv(argv)
    }

    #[test]
    fn tokens_are_required_and_never_shown() {
        // SAFETY of the test: the variable is not set by the harness.
        assert!(std::env::var_os("HERALD_DASHBOARD_TOKENS").is_none());
        let err = settings(&[]).unwrap_err().to_string();
        assert!(err.contains("HERALD_DASHBOARD_TOKENS (--tokens)"), "{err}");
        let ok = settings(&["--tokens", "s3cret-token-0123456789"]).unwrap();
        assert!(!format!("{ok:?}").contains("s3cret-token"));
        assert_eq!(ok.listen.to_string(), DEFAULT_LISTEN);
        assert!(!ok.read_only);
        assert_eq!(ok.rate.requests.get(), 300, "growth by default");
    }

    #[test]
    fn short_tokens_and_secrets_are_refused_by_name_and_never_quoted() {
        for (list, says) in [
            ("short", "token 1 of 1 is 5 characters"),
            (
                "0123456789abcdef0123, fifteen-chars!!",
                "token 2 of 2 is 15 characters",
            ),
        ] {
            let err = settings(&["--tokens", list]).unwrap_err().to_string();
            assert!(
                err.starts_with("HERALD_DASHBOARD_TOKENS (--tokens)"),
                "{err}"
            );
            assert!(err.contains(says) && err.contains("at least 16"), "{err}");
            for token in list.split(',') {
                assert!(!err.contains(token.trim()), "never quoted: {err}");
            }
        }
        // Sixteen characters, and sixteen of them multi-byte, are enough.
        settings(&["--tokens", "0123456789abcdef"]).unwrap();
        settings(&["--tokens", "éééééééééééééééé"]).unwrap();

        let token = "0123456789abcdef0123";
        let err = settings(&["--tokens", token, "--secret", "too-short-secret"])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("HERALD_DASHBOARD_SECRET (--secret)"),
            "{err}"
        );
        assert!(
            err.contains("16 characters") && !err.contains("too-short"),
            "{err}"
        );
        let ok = settings(&["--tokens", token, "--secret", &"s".repeat(32)]).unwrap();
        assert!(ok.secret.is_some() && !format!("{ok:?}").contains(&"s".repeat(32)));
        assert!(settings(&["--tokens", token]).unwrap().secret.is_none());
    }
}
