//! `herald-webhook`: receive Interakt's webhooks and process them until SIGTERM/SIGINT.
//! The same command as `herald-worker webhook`, for images and manifests that want the
//! webhook service alone.

use std::process::ExitCode;

use herald_shared::config::load_dotenv;
use herald_shared::process::{exit, init_tracing, parse_args, server_runtime};
use herald_webhook::cli::Cli;
use herald_webhook::run_command;

fn main() -> ExitCode {
    load_dotenv();
    let cli: Cli = parse_args("herald-webhook");
    init_tracing(cli.log_format, "info");
    let runtime = match server_runtime() {
        Ok(runtime) => runtime,
        Err(failure) => return exit("herald-webhook", Err(failure)),
    };
    exit(
        "herald-webhook",
        runtime.block_on(run_command(&cli.redis, &cli.webhook)),
    )
}
