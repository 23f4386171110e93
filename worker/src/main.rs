//! `herald-worker`: parse the command line, set up logging, call the library
//! ([`herald_worker::cli::run`]), map the result to an exit code.

use std::process::ExitCode;

use herald_shared::config::load_dotenv;
use herald_shared::process::{exit, init_tracing, one_malloc_arena, parse_args, worker_runtime};
use herald_worker::cli::{Cli, run};

fn main() -> ExitCode {
    one_malloc_arena();
    load_dotenv();
    let cli: Cli = parse_args("herald-worker");
    init_tracing(cli.log_format, "info");
    let runtime = match worker_runtime() {
        Ok(runtime) => runtime,
        Err(failure) => return exit("herald-worker", Err(failure)),
    };
    exit("herald-worker", runtime.block_on(run(cli)))
}
