//! `herald-producer`: parses the command line, runs it, and maps the result to the exit
//! code documented in `--help` (0 done, 1 some bulk lines rejected, 2 failed, 3 refused by the OTP guard).

use std::process::ExitCode;

use producer::cli::{self, Cli, NAME};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    match herald_shared::process::server_runtime() {
        Ok(runtime) => runtime.block_on(run()),
        Err(failure) => herald_shared::process::exit(NAME, Err(failure)),
    }
}

async fn run() -> ExitCode {
    herald_shared::config::load_dotenv();
    let cli = match Cli::try_parse_args() {
        Ok(cli) => cli,
        Err(err) => return cli::usage_error(err),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .init();
    match cli::run(cli).await {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => {
            eprintln!("{NAME}: {err}");
            err.exit_code()
        }
    }
}
