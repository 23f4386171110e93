//! `herald-demo`: the whole system on this machine in one command. Parses the command
//! line, runs [`herald_demo::run`], prints the summary, maps the result to an exit code.

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use herald_demo::{DemoOptions, ProgressMode};
use herald_shared::config::{RedisArgs, load_dotenv};
use herald_shared::process::{Failure, LogFormat, exit, init_tracing, print_out, usage_error};

const EXIT_CODES: &str = "Exit codes:
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
struct Cli {
    #[command(flatten)]
    redis: RedisArgs,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    /// Leave the Redis and the demo's data in place, and print how to reach them.
    #[arg(long)]
    keep: bool,
    /// Log format (the demo logs only errors unless RUST_LOG says otherwise).
    #[arg(long, env = "HERALD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Internal: serve the demo's dashboard (the demo starts itself so, as a process it can
    /// leave running with --keep), configured by the environment it sets.
    #[arg(long, hide = true)]
    serve_dashboard: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    load_dotenv();
    let matches = Cli::command()
        .try_get_matches()
        .unwrap_or_else(|err| usage_error("herald-demo", &err));
    // The demo borrows a Redis only when one is named; the default URL means "start one".
    let redis_named = matches.value_source("redis_url") != Some(ValueSource::DefaultValue);
    let cli =
        Cli::from_arg_matches(&matches).unwrap_or_else(|err| usage_error("herald-demo", &err));
    // The workers would log every send: the demo shows progress and a summary instead.
    init_tracing(cli.log_format, "error");
    if cli.serve_dashboard {
        return exit(
            "herald-demo",
            herald_demo::dashboard::serve_from_env().await,
        );
    }
    let options = DemoOptions {
        redis_url: redis_named.then(|| cli.redis.redis_url.clone()),
        namespace: cli.redis.namespace.clone(),
        keep: cli.keep,
        progress: ProgressMode::detect(),
    };
    let result = herald_demo::run(options, herald_shared::signal::shutdown_token()).await;
    exit(
        "herald-demo",
        result
            .map(|summary| {
                let out = if cli.json {
                    serde_json::to_string(&summary).expect("the summary serializes")
                } else {
                    herald_demo::render(&summary)
                };
                print_out("herald-demo", &out);
                0
            })
            .map_err(|err| {
                Failure::new(if err.is_setup() { 2 } else { 1 }, format!("demo: {err}"))
            }),
    )
}
