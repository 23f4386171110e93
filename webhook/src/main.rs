//! `herald-webhook`: receive Interakt's webhooks and process them until SIGTERM/SIGINT.
//! The same command as `herald-worker webhook`, for images and manifests that want the
//! webhook service alone.

use std::process::ExitCode;

use clap::Parser;
use herald_shared::config::{RedisArgs, load_dotenv};
use herald_shared::process::{LogFormat, exit, init_tracing, parse_args};
use herald_webhook::{EXIT_CODES, WebhookArgs, run_command};

/// Receive Interakt's webhooks (POST /webhooks/interakt) and process them into job
/// timelines and the inbound stream, until SIGTERM/SIGINT.
#[derive(Parser, Debug)]
#[command(name = "herald-webhook", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    redis: RedisArgs,
    /// Log format.
    #[arg(long, env = "HERALD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(flatten)]
    webhook: WebhookArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    load_dotenv();
    let cli: Cli = parse_args("herald-webhook");
    init_tracing(cli.log_format, "info");
    exit(
        "herald-webhook",
        run_command(&cli.redis, &cli.webhook).await,
    )
}
