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
    // Colours only for a person at a terminal: a log file, a pipe or a collector gets plain
    // text (escape codes there split `key=value` apart).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Parses the process's arguments as `T`; on a usage error prints one line (see
/// [`usage_error`]) and exits 2. `--help` and `--version` print as clap prints them, exit 0.
pub fn parse_args<T: clap::Parser>(program: &str) -> T {
    T::try_parse().unwrap_or_else(|err| usage_error(program, &err))
}

/// Ends the process for a command-line error: help and version as clap prints them (exit
/// 0), anything else as one line on stderr, `program: message (see --help)`, exit 2.
pub fn usage_error(program: &str, err: &clap::Error) -> ! {
    if !err.use_stderr() {
        let _ = err.print();
        std::process::exit(0);
    }
    eprintln!("{program}: {} (see --help)", one_line(err));
    std::process::exit(2);
}

/// Clap's error message on one line: without its `error: ` prefix, the usage block, the
/// `--help` hint and the tips.
pub fn one_line(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more"))
        .filter(|line| !line.is_empty() && !line.starts_with("tip:"))
        .map(|line| line.strip_prefix("error: ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join(" ")
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

/// Replaces this process with the binary `name` installed next to it, with `args` and
/// `env` added; returns (the failure to print) only when that cannot be done. For a
/// subcommand that lives in a binary of its own (`herald-worker demo`).
pub fn exec_sibling(name: &str, args: &[String], env: &[(&str, String)]) -> Failure {
    use std::os::unix::process::CommandExt;
    let path = std::env::current_exe().map(|exe| exe.with_file_name(name));
    let Ok(path) = path.and_then(|path| path.canonicalize()) else {
        return Failure::usage(format!(
            "{name} is a binary of its own and it is not next to this one: run `cargo run -p {name}`"
        ));
    };
    let mut command = std::process::Command::new(&path);
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    Failure::usage(format!("cannot run {}: {}", path.display(), command.exec()))
}

/// Asks glibc's allocator for one arena (`MALLOC_ARENA_MAX=1`) unless the environment
/// already says how many, by running this binary again with it set: glibc reads it only at
/// start, and setting it from inside the process would take `unsafe`. Call it first thing in
/// `main`, before any thread starts.
///
/// glibc gives each thread that finds an arena busy an arena of its own, up to eight per
/// core, and a freed block only serves its own arena: a worker's runtime threads then keep
/// several half-empty heaps (19 to 20 MiB peak at concurrency 50, against 17 to 18 with one
/// arena and the same throughput: docs/performance.md). `MALLOC_ARENA_MAX=8` (or any value)
/// keeps glibc's own choice. Other C libraries ignore the variable; when this binary cannot
/// run itself again it goes on as it is.
pub fn one_malloc_arena() {
    use std::os::unix::process::CommandExt;
    const VAR: &str = "MALLOC_ARENA_MAX";
    if !cfg!(all(target_os = "linux", target_env = "gnu")) || std::env::var_os(VAR).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    // Returns only when the exec failed: then this process goes on, with glibc's default.
    let _ = command.args(args).env(VAR, "1").exec();
}

/// The variable that sets how many threads a binary's runtime runs (tokio's own name).
pub const RUNTIME_THREADS_VAR: &str = "TOKIO_WORKER_THREADS";

/// How many runtime threads `value` (of [`RUNTIME_THREADS_VAR`]) asks for: `default` when
/// unset. A value that is not a number of threads, 1 or more, is a usage failure naming the
/// variable (tokio, reading it itself, panics on it).
pub fn runtime_threads(value: Option<&str>, default: usize) -> Result<usize, Failure> {
    let Some(value) = value else {
        return Ok(default);
    };
    value
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|threads| *threads > 0)
        .ok_or_else(|| {
            Failure::usage(format!(
                "{RUNTIME_THREADS_VAR}={value:?}: must be a number of threads, 1 or more \
                 (unset: {default})"
            ))
        })
}

/// A runtime, I/O and timers on, of as many threads as [`RUNTIME_THREADS_VAR`] says,
/// `default` when it is unset ([`runtime_of`]).
pub fn runtime(default: usize) -> Result<tokio::runtime::Runtime, Failure> {
    let value = std::env::var_os(RUNTIME_THREADS_VAR).map(|v| v.to_string_lossy().into_owned());
    runtime_of(runtime_threads(value.as_deref(), default)?)
}

/// A runtime of `threads` threads: one is the thread that runs it (tokio's current-thread
/// runtime), more a multi-threaded one. One thread in a multi-threaded runtime would be a
/// second thread beside the one blocked in `block_on`, every wake-up of the main task a
/// hand-off between them: on a worker at full speed that cost a third of its CPU and a fifth
/// of its throughput (docs/performance.md).
pub fn runtime_of(threads: usize) -> Result<tokio::runtime::Runtime, Failure> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder
        .enable_all()
        .build()
        .map_err(|err| Failure::new(1, format!("could not start the runtime: {err}")))
}

/// The runtime of a server or a command (the producer, the webhook receiver, the dashboard):
/// one thread per core unless [`RUNTIME_THREADS_VAR`] says how many.
pub fn server_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    runtime(std::thread::available_parallelism().map_or(1, usize::from))
}

/// A worker's runtime: one thread, the one that runs it, unless [`RUNTIME_THREADS_VAR`]
/// says how many. A worker replica spends a core at most on one thread: on a shared 2-core
/// machine one thread sent more jobs a second for less CPU per job than two, which spent a
/// fifth of their time handing tasks between themselves (docs/performance.md); a
/// deployment scales by replicas.
pub fn worker_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    runtime(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_is_the_thread_that_runs_the_runtime() {
        use tokio::runtime::RuntimeFlavor;
        let flavor = |threads| {
            runtime_of(threads)
                .unwrap()
                .block_on(async { tokio::runtime::Handle::current().runtime_flavor() })
        };
        assert_eq!(flavor(1), RuntimeFlavor::CurrentThread);
        assert_eq!(flavor(2), RuntimeFlavor::MultiThread);
        // The thread that calls block_on runs the tasks it spawns: no second thread.
        let runtime = runtime_of(1).unwrap();
        let caller = std::thread::current().id();
        let ran_on = runtime.block_on(async {
            tokio::spawn(async { std::thread::current().id() })
                .await
                .unwrap()
        });
        assert_eq!(ran_on, caller);
    }

    #[test]
    fn a_worker_runs_one_runtime_thread_unless_told_how_many() {
        assert_eq!(runtime_threads(None, 1).unwrap(), 1);
        assert_eq!(runtime_threads(None, 8).unwrap(), 8);
        assert_eq!(runtime_threads(Some("4"), 1).unwrap(), 4);
        assert_eq!(runtime_threads(Some(" 2 "), 1).unwrap(), 2);
        for bad in ["0", "", "two", "-1", "1.5"] {
            let err = runtime_threads(Some(bad), 1).unwrap_err();
            assert_eq!(err.code, 2, "{bad:?}");
            assert!(
                err.message.contains("TOKIO_WORKER_THREADS") && err.message.contains("1 or more"),
                "{bad:?}: {}",
                err.message
            );
        }
    }

    #[test]
    fn clap_errors_become_one_line_naming_the_argument() {
        let command = clap::Command::new("x")
            .arg(clap::Arg::new("listen").long("listen").required(true))
            .arg(
                clap::Arg::new("rate")
                    .long("rate")
                    .value_parser(clap::value_parser!(u32)),
            );
        for (args, names) in [
            (&["x"][..], "--listen"),
            (&["x", "--listen", "a", "--rate", "lots"][..], "--rate"),
            (&["x", "--listen", "a", "--bogus"][..], "--bogus"),
        ] {
            let err = command.clone().try_get_matches_from(args).unwrap_err();
            let line = one_line(&err);
            assert!(!line.contains('\n'), "{line}");
            assert!(line.contains(names), "{line}");
            assert!(
                !line.contains("Usage:") && !line.starts_with("error:"),
                "{line}"
            );
        }
    }
}
