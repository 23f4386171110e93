//! `herald-worker`: parse the command line, set up logging, call the library, map the result
//! to an exit code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use herald_shared::config::{RedisArgs, load_dotenv, parse_duration};
use herald_shared::{Keys, Lane};
use herald_worker::dlq::{self, DeadLetters, ListFilter, PurgeSelection, ReplayOptions, Selection};
use herald_worker::settings::{RunArgs, Settings};
use herald_worker::track::TrackArgs;
use herald_worker::webhook::{WebhookArgs, WebhookSettings};
use herald_worker::{demo, status, track, webhook, worker};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

const EXIT_CODES: &str = "Exit codes:
  0  done (run and webhook: stopped cleanly on SIGTERM/SIGINT; track: found; dlq purge
     without --yes: nothing deleted)
  1  partly done, each case reported (dlq: an id not found, an expired OTP without --extend,
     an entry with no job), not found (track), or failed while running (demo: did not finish)
  2  bad usage or configuration, or Redis unreachable";

#[derive(Parser, Debug)]
#[command(name = "herald-worker", version, about = "Drain Herald's lanes into Interakt within the plan's rate limit.", after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    redis: RedisArgs,
    /// Log format.
    #[arg(long, env = "HERALD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one worker replica until SIGTERM/SIGINT.
    Run(Box<RunArgs>),
    /// Show ready, pending, delayed, dead and sent jobs per lane, and live consumers.
    Status {
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Inspect dead letters, replay them onto their lanes, or purge them.
    #[command(after_help = EXIT_CODES)]
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// See the whole system work on this machine, in under a minute, with no configuration.
    ///
    /// Starts a throwaway redis-server and the Interakt sandbox (with a few scripted
    /// failures), enqueues ~100 OTPs and bookings, runs three workers at a demo rate, shows
    /// progress, and prints what happened: sent, retried, rate-limited, dead-lettered and why,
    /// and the busiest window against the limit. With REDIS_URL (or --redis-url) it uses that
    /// Redis instead, under a fresh `demo-xxxx` namespace whose keys it deletes at the end.
    #[command(after_help = EXIT_CODES)]
    Demo {
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Leave the Redis and the demo's data in place, and print how to reach them.
        #[arg(long)]
        keep: bool,
    },
    /// Receive Interakt's webhooks (POST /webhooks/interakt) and process them into job
    /// timelines and the inbound stream, until SIGTERM/SIGINT.
    Webhook(Box<WebhookArgs>),
    /// Show a job's timeline: enqueued, attempts, sent, delivered, read, revoked, dead.
    Track(TrackArgs),
}

#[derive(Subcommand, Debug)]
enum DlqCommand {
    /// One line per dead letter (id, lane, masked phone, attempts, when, reason), newest first.
    List {
        /// A JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Only this lane's.
        #[arg(long, value_parser = parse_lane)]
        lane: Option<Lane>,
        /// Only those whose reason contains TEXT (case-insensitive).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// At most N.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// The whole dead letter, attempt history included, as pretty JSON (an OTP's code hidden).
    Show {
        /// The dead letter's id (the job id; `entry:<stream id>` for an entry that was not a job).
        id: String,
    },
    /// Move dead letters back onto their lanes with a fresh attempt budget, history kept.
    ///
    /// Each move is atomic: a replay interrupted at any point leaves every job either still
    /// dead or back on its lane, and replaying an id twice enqueues it once.
    Replay {
        #[command(flatten)]
        select: ReplaySelect,
        /// Give each replayed job with a deadline (an OTP) at least this long from now
        /// (10m); an expired OTP is not replayed without it.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        extend: Option<Duration>,
        /// Say what would be replayed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete dead letters. Without --yes, only says what would be deleted.
    Purge {
        #[command(flatten)]
        select: PurgeSelect,
        /// Really delete.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct ReplaySelect {
    /// Every dead letter.
    #[arg(long)]
    all: bool,
    /// Dead letters whose reason contains TEXT (case-insensitive), e.g. "HTTP 500".
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// These dead letters.
    #[arg(value_name = "ID")]
    ids: Vec<String>,
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct PurgeSelect {
    /// Every dead letter.
    #[arg(long)]
    all: bool,
    /// Dead letters dead for longer than this (7d, 12h).
    #[arg(long, value_name = "AGE", value_parser = parse_duration)]
    older_than: Option<Duration>,
    /// These dead letters.
    #[arg(value_name = "ID")]
    ids: Vec<String>,
}

fn parse_lane(s: &str) -> Result<Lane, String> {
    s.parse()
}

fn main() -> ExitCode {
    load_dotenv();
    let matches = Cli::command().get_matches();
    // The demo borrows a Redis only when one is named; the default URL means "start one".
    let redis_named = matches.value_source("redis_url") != Some(ValueSource::DefaultValue);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    // The demo's workers would log every send: it shows progress and a summary instead.
    let default_level = match cli.command {
        Command::Demo { .. } => "error",
        _ => "info",
    };
    init_tracing(cli.log_format, default_level);
    let runtime = tokio::runtime::Runtime::new().expect("start the tokio runtime");
    match runtime.block_on(run(cli, redis_named)) {
        Ok(code) => ExitCode::from(code),
        Err(Failure { code, message }) => {
            eprintln!("herald-worker: {message}");
            ExitCode::from(code)
        }
    }
}

struct Failure {
    code: u8,
    message: String,
}

fn usage(message: impl std::fmt::Display) -> Failure {
    Failure {
        code: 2,
        message: message.to_string(),
    }
}

/// 0 when everything asked was done, 1 when some of it was not (each case reported).
fn done_if(complete: bool) -> u8 {
    if complete { 0 } else { 1 }
}

async fn run(cli: Cli, redis_named: bool) -> Result<u8, Failure> {
    match cli.command {
        Command::Run(args) => {
            let settings = Settings::from_args(&cli.redis, &args).map_err(usage)?;
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            worker::run(settings, shutdown)
                .await
                .map_err(|err| Failure {
                    code: 2,
                    message: err.to_string(),
                })?;
            Ok(0)
        }
        Command::Status { json } => {
            let keys = Keys::new(&cli.redis.namespace).map_err(usage)?;
            let target = cli.redis.target();
            let pool = target.pool(1).map_err(usage)?;
            let status = status::collect(&pool, &keys).await.map_err(|err| {
                usage(format!(
                    "cannot reach Redis at {}: {err}",
                    target.describe()
                ))
            })?;
            if json {
                print_out(&serde_json::to_string(&status).expect("status serializes"));
            } else {
                print_out(&status::render(&status));
            }
            Ok(0)
        }
        Command::Dlq { command } => {
            let keys = Keys::new(&cli.redis.namespace).map_err(usage)?;
            let pool = cli.redis.target().connect(2).await.map_err(usage)?;
            run_dlq(DeadLetters::new(pool, keys), command).await
        }
        Command::Demo { json, keep } => {
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            let options = demo::DemoOptions {
                redis_url: redis_named.then(|| cli.redis.redis_url.clone()),
                namespace: cli.redis.namespace.clone(),
                keep,
                progress: demo::ProgressMode::detect(),
            };
            let summary = demo::run(options, shutdown).await.map_err(|err| Failure {
                code: if err.is_setup() { 2 } else { 1 },
                message: format!("demo: {err}"),
            })?;
            if json {
                print_out(&serde_json::to_string(&summary).expect("the summary serializes"));
            } else {
                print_out(&demo::render(&summary));
            }
            Ok(0)
        }
        Command::Webhook(args) => {
            let settings = WebhookSettings::from_args(&cli.redis, &args).map_err(usage)?;
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            webhook::run(settings, shutdown)
                .await
                .map_err(|err| Failure {
                    code: err.exit_code(),
                    message: err.to_string(),
                })?;
            Ok(0)
        }
        Command::Track(args) => {
            let out = track::run(&cli.redis, &args).await.map_err(|err| Failure {
                code: err.exit_code(),
                message: err.to_string(),
            })?;
            print_out(&out);
            Ok(0)
        }
    }
}

async fn run_dlq(dead: DeadLetters, command: DlqCommand) -> Result<u8, Failure> {
    let redis_failed = |err: dlq::DlqError| Failure {
        // A dead letter another program wrote is reported like any that is not replayed.
        code: if matches!(err, dlq::DlqError::Unreadable { .. }) {
            1
        } else {
            2
        },
        message: err.to_string(),
    };
    match command {
        DlqCommand::List {
            json,
            lane,
            reason,
            limit,
        } => {
            let filter = ListFilter {
                lane,
                reason,
                limit,
            };
            let letters = dead.list(&filter).await.map_err(redis_failed)?;
            let rows: Vec<dlq::Row> = letters.iter().map(dlq::Row::from).collect();
            if json {
                print_out(&serde_json::to_string(&rows).expect("rows serialize"));
            } else {
                print_out(&dlq::render_list(&rows));
            }
            Ok(0)
        }
        DlqCommand::Show { id } => match dead.get(&id).await.map_err(redis_failed)? {
            Some(letter) => {
                print_out(&dlq::to_pretty_json(&letter));
                Ok(0)
            }
            None => Err(Failure {
                code: 1,
                message: format!(
                    "no dead letter has id {id:?}; list them with `herald-worker dlq list`"
                ),
            }),
        },
        DlqCommand::Replay {
            select,
            extend,
            dry_run,
        } => {
            let selection = if select.all {
                Selection::All
            } else if let Some(reason) = select.reason {
                Selection::Reason(reason)
            } else {
                Selection::Ids(select.ids)
            };
            let bar = progress_bar();
            let mut progress = |done: usize, total: usize| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            };
            let report = dead
                .replay(&selection, ReplayOptions { extend, dry_run }, &mut progress)
                .await
                .map_err(|err| {
                    let mut failure = redis_failed(err);
                    failure.message.push_str(
                        "; every dead letter is either back on its lane or still dead: run the same replay again to finish",
                    );
                    failure
                });
            bar.finish_and_clear();
            let report = report?;
            print_out(&dlq::render_replay(&report));
            Ok(done_if(report.complete()))
        }
        DlqCommand::Purge { select, yes } => {
            let selection = if select.all {
                PurgeSelection::All
            } else if let Some(age) = select.older_than {
                PurgeSelection::OlderThan(age)
            } else {
                PurgeSelection::Ids(select.ids)
            };
            let report = dead.purge(&selection, yes).await.map_err(redis_failed)?;
            print_out(&dlq::render_purge(&report));
            // Without --yes nothing was asked to be done, so nothing is partly done.
            Ok(done_if(!yes || report.complete()))
        }
    }
}

/// A replay's progress bar on stderr when it is a terminal; hidden otherwise.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("replaying [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Prints to stdout; a closed pipe (`dlq list | head`) is not an error.
fn print_out(text: &str) {
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
        eprintln!("herald-worker: cannot write to stdout: {err}");
    }
}

async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
    shutdown.cancel();
}

fn init_tracing(format: LogFormat, default_level: &str) {
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
