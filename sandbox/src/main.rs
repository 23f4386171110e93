//! `herald-sandbox`: a local stand-in for Interakt's public RCS API.
//!
//! Thin on purpose: parse flags, set up tracing, call [`herald_sandbox::run`], map the
//! result to an exit code.

use std::process::ExitCode;

use clap::Parser;
use herald_sandbox::cli::Args;

fn main() -> ExitCode {
    herald_shared::config::load_dotenv();
    let args = match Args::try_parse() {
        Ok(args) => args,
        // --help and --version
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("{}", one_line(&err));
            return ExitCode::from(2);
        }
    };
    let (config, listen) = args.into_config();
    if let Err(err) = config.check() {
        eprintln!("error: {err}");
        return ExitCode::from(2);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(herald_sandbox::run(
        config,
        listen,
        herald_shared::signal::shutdown_signal(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "sandbox stopped");
            ExitCode::FAILURE
        }
    }
}

/// Clap's error on one line: its message and details, without the usage block.
fn one_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more"))
        .filter(|line| !line.is_empty() && !line.starts_with("tip:"))
        .collect();
    format!("{}; see --help", parts.join(" "))
}
