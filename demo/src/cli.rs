//! `herald-demo`'s command line ([`Cli`]). Never parses the process's arguments: the binary
//! does.

use clap::Parser;
use herald_shared::config::RedisArgs;
use herald_shared::process::LogFormat;

/// What `--help` ends with.
pub const EXIT_CODES: &str = "Exit codes:
  0  the demo ran to the end and printed its summary
  1  it started and did not finish (timed out, interrupted, a worker stopped)
  2  it could not start (no redis-server, a bad REDIS_URL, a bad flag)";

/// See the whole system work on this machine, in under a minute, with no configuration.
///
/// Starts a throwaway redis-server and the Interakt sandbox (with a few scripted
/// failures), enqueues ~100 OTPs and bookings, runs three workers at a demo rate, shows
/// progress, and prints what happened: sent, retried, rate-limited, dead-lettered and why,
/// and the busiest window against the limit. With REDIS_URL (or --redis-url) it uses that
/// Redis instead, under a fresh `demo-xxxx` namespace whose keys it deletes at the end.
#[derive(Parser, Debug)]
#[command(name = "herald-demo", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Leave the Redis and the demo's data in place, and print how to reach them.
    #[arg(long)]
    pub keep: bool,
    /// Log format (the demo logs only errors unless RUST_LOG says otherwise).
    #[arg(long, env = "HERALD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Internal: serve the demo's dashboard (the demo starts itself so, as a process it can
    /// leave running with --keep), configured by the environment it sets.
    #[arg(long, hide = true)]
    pub serve_dashboard: bool,
    // Last: what follows it is shown under its heading.
    #[command(flatten)]
    pub redis: RedisArgs,
}
