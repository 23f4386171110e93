//! `herald-dashboard`: parse the command line, set up logging, run the dashboard
//! ([`herald_dashboard::run_command`]), map the result to an exit code.

use std::process::ExitCode;

use herald_dashboard::cli::Cli;
use herald_shared::config::load_dotenv;
use herald_shared::process::{exit, init_tracing, parse_args, server_runtime};

fn main() -> ExitCode {
    load_dotenv();
    let cli: Cli = parse_args("herald-dashboard");
    init_tracing(cli.log_format, "info");
    let runtime = match server_runtime() {
        Ok(runtime) => runtime,
        Err(failure) => return exit("herald-dashboard", Err(failure)),
    };
    exit(
        "herald-dashboard",
        runtime.block_on(herald_dashboard::run_command(&cli.redis, &cli.args)),
    )
}
