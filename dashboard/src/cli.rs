//! `herald-dashboard`'s command line ([`Cli`]): the dashboard's own flags
//! ([`crate::DashboardArgs`]), the log format and the Redis connection. Never parses the
//! process's arguments: the binary does.

use clap::Parser;
use herald_shared::config::RedisArgs;
use herald_shared::process::LogFormat;

use crate::{DashboardArgs, EXIT_CODES};

/// Herald's operator dashboard: the queue, the budget and the dead letters in a browser.
#[derive(Parser, Debug)]
#[command(name = "herald-dashboard", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub args: DashboardArgs,
    /// Log format.
    #[arg(long, env = "HERALD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    // Last: what follows it is shown under its heading.
    #[command(flatten)]
    pub redis: RedisArgs,
}
