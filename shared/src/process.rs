//! What every Herald binary does around its library call: logging set-up, printing to a
//! stdout that may be a closed pipe, and failures that carry their exit code.
//!
//! Binaries stay thin (parse, set up tracing, call the library, map the result to an exit
//! code); the parts they would otherwise each write again live here.

use std::io::Write;

/// Log format of a binary (`--log-format`, `HERALD_LOG_FORMAT`).
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Logs to stderr in `format`, at `RUST_LOG`'s filter or else `default_level`.
pub fn init_tracing(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// A command that did not complete: the exit code and the one line that says why.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl std::fmt::Display) -> Failure {
        Failure {
            code,
            message: message.to_string(),
        }
    }

    /// Bad usage or configuration, or Redis unreachable: exit 2.
    pub fn usage(message: impl std::fmt::Display) -> Failure {
        Failure::new(2, message)
    }
}

/// 0 when everything asked was done, 1 when some of it was not (each case reported).
pub fn done_if(complete: bool) -> u8 {
    if complete { 0 } else { 1 }
}

/// Prints `text` to stdout with a final newline; a closed pipe (`dlq list | head`) is not an
/// error, any other write failure is reported on stderr as `program: ...`.
pub fn print_out(program: &str, text: &str) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(text.as_bytes())
        .and_then(|()| {
            if text.ends_with('\n') {
                Ok(())
            } else {
                out.write_all(b"\n")
            }
        })
        .and_then(|()| out.flush());
    if let Err(err) = written
        && err.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("{program}: cannot write to stdout: {err}");
    }
}

/// The exit code of `result`, printing a failure's line as `program: message`.
pub fn exit(program: &str, result: Result<u8, Failure>) -> std::process::ExitCode {
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(Failure { code, message }) => {
            eprintln!("{program}: {message}");
            std::process::ExitCode::from(code)
        }
    }
}
