//! `herald-dashboard`: parse the command line, set up logging, run the dashboard
//! ([`herald_dashboard::run_command`]), map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;
use herald_dashboard::{DashboardArgs, EXIT_CODES};
use herald_shared::config::{RedisArgs, load_dotenv};
use herald_shared::process::{LogFormat, exit, init_tracing, parse_args};

/// Herald's operator dashboard: the queue, the budget and the dead letters in a browser.
#[derive(Parser, Debug)]
#[command(name = "herald-dashboard", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    redis: RedisArgs,
    #[command(flatten)]
    args: DashboardArgs,
    /// Log format.
    #[arg(long, env = "HERALD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn main() -> ExitCode {
    load_dotenv();
    let cli: Cli = parse_args("herald-dashboard");
    init_tracing(cli.log_format, "info");
    let runtime = tokio::runtime::Runtime::new().expect("start the tokio runtime");
    exit(
        "herald-dashboard",
        runtime.block_on(herald_dashboard::run_command(&cli.redis, &cli.args)),
    )
}
