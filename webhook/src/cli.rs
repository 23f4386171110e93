//! `herald-webhook`'s command line ([`Cli`]): the Redis connection, the log format and the
//! receiver's own flags ([`crate::WebhookArgs`]). Never parses the process's arguments: the
//! binary does.

use clap::Parser;
use herald_shared::config::RedisArgs;
use herald_shared::process::LogFormat;

use crate::{EXIT_CODES, WebhookArgs};

/// Receive Interakt's webhooks (POST /webhooks/interakt) and process them into job
/// timelines and the inbound stream, until SIGTERM/SIGINT.
#[derive(Parser, Debug)]
#[command(name = "herald-webhook", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub webhook: WebhookArgs,
    /// Log format.
    #[arg(long, env = "HERALD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    // Last: what follows it is shown under its heading.
    #[command(flatten)]
    pub redis: RedisArgs,
}
