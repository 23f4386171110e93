//! `herald-sandbox`'s command line ([`Args`]): its flags and environment variables, turned
//! into a [`SandboxConfig`] and an address. Never parses the process's arguments: the binary
//! does.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use herald_shared::Redacted;
use herald_shared::config::RateLimit;

use crate::{SandboxConfig, ScriptRule};

/// What `--help` ends with.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  stopped by SIGINT or SIGTERM
  1  could not listen, or the server failed
  2  bad flags or environment variables";

/// A local stand-in for Interakt's public RCS API: same route, auth, rate limit and bodies,
/// plus injected faults. Point INTERAKT_BASE_URL at http://LISTEN/v1/public.
#[derive(Parser, Debug)]
#[command(name = "herald-sandbox", version, after_help = EXIT_CODES)]
pub struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "SANDBOX_LISTEN", default_value = "127.0.0.1:8089")]
    pub listen: SocketAddr,
    /// The key clients must send as `Authorization: Basic <key>`.
    #[arg(long, env = "INTERAKT_API_KEY", hide_env_values = true)]
    pub api_key: Redacted<String>,
    /// Admit at most N requests in any sliding window of PERIOD (300/1m); no limit if absent.
    #[arg(long, env = "SANDBOX_RATE", value_name = "N/PERIOD")]
    pub rate: Option<RateLimit>,
    /// Send `Retry-After` (seconds until a slot frees) with rate-limited answers; Interakt
    /// documents none.
    #[arg(long, env = "SANDBOX_RETRY_AFTER")]
    pub retry_after: bool,
    /// Send `Retry-After: SECS` with every rate-limited answer instead (e.g. 100000000, as a
    /// misbehaving API might).
    #[arg(long, env = "SANDBOX_RETRY_AFTER_SECS", value_name = "SECS")]
    pub retry_after_secs: Option<u64>,
    /// Probability (0.0 to 1.0) of answering an unscripted phone with 503.
    #[arg(long, env = "SANDBOX_FAIL_RATE", default_value = "0", value_name = "P",
          value_parser = crate::config::parse_fail_rate)]
    pub fail_rate: f64,
    /// Delay added to every answer of the send endpoint (20ms, 1s).
    #[arg(long, env = "SANDBOX_LATENCY", default_value = "0s", value_name = "DURATION",
          value_parser = herald_shared::config::parse_duration)]
    pub latency: Duration,
    /// Script one phone, repeatable: RULE is 400, 500, fail:N, 429:N[:SECS], false or slow:DURATION
    /// (+919000000001=fail:2), or for webhooks revoke (TTL_EXPIRATION_REVOKED instead of
    /// delivered and read) or tap:DATA (a suggestion tap after read). The variable takes a
    /// comma-separated list.
    #[arg(
        long = "script",
        env = "SANDBOX_SCRIPT",
        value_name = "PHONE=RULE",
        value_delimiter = ','
    )]
    pub script: Vec<ScriptRule>,
    /// Seed for --fail-rate's random choices, to replay a run.
    #[arg(long, env = "SANDBOX_SEED")]
    pub seed: Option<u64>,
    /// After accepting a message, post webhook events about it here (DELIVERED then READ),
    /// e.g. http://127.0.0.1:8090/webhooks/interakt.
    #[arg(long, env = "SANDBOX_WEBHOOK_URL", value_name = "URL")]
    pub webhook_url: Option<String>,
    /// Sign posted webhooks with this secret (`Interakt-Signature`), as the receiver's
    /// INTERAKT_WEBHOOK_SECRET expects.
    #[arg(
        long,
        env = "SANDBOX_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "S"
    )]
    pub webhook_secret: Option<Redacted<String>>,
}

impl Args {
    /// The sandbox's configuration and the address to listen on.
    pub fn into_config(self) -> (SandboxConfig, SocketAddr) {
        let config = SandboxConfig {
            rate: self.rate,
            retry_after: self.retry_after,
            retry_after_secs: self.retry_after_secs,
            fail_rate: self.fail_rate,
            latency: self.latency,
            script: self.script,
            seed: self.seed,
            api_key: self.api_key,
            webhook_url: self.webhook_url,
            webhook_secret: self.webhook_secret,
        };
        (config, self.listen)
    }
}
