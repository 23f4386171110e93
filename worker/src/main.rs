//! `herald-worker`: parse the command line, set up logging, call the library, map the result
//! to an exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use herald_shared::config::{RedisArgs, load_dotenv};
use herald_shared::redis_pool::{create_pool, redact_url};
use herald_worker::settings::{RunArgs, Settings};
use herald_worker::track::TrackArgs;
use herald_worker::webhook::{WebhookArgs, WebhookSettings};
use herald_worker::{status, track, webhook, worker};
use tokio_util::sync::CancellationToken;

const EXIT_CODES: &str = "Exit codes:
  0  done (for run and webhook: stopped cleanly on SIGTERM/SIGINT; for track: found)
  1  failed while running (for track: no such job)
  2  bad usage or configuration, or Redis unreachable (status, track)";

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
    /// Receive Interakt's webhooks (POST /webhooks/interakt) and process them into job
    /// timelines and the inbound stream, until SIGTERM/SIGINT.
    Webhook(Box<WebhookArgs>),
    /// Show a job's timeline: enqueued, attempts, sent, delivered, read, revoked, dead.
    Track(TrackArgs),
}

fn main() -> ExitCode {
    load_dotenv();
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("start the tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
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

async fn run(cli: Cli) -> Result<(), Failure> {
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
                })
        }
        Command::Status { json } => {
            let keys = herald_shared::Keys::new(&cli.redis.namespace).map_err(usage)?;
            let url = cli.redis.redis_url.expose();
            let pool = create_pool(url, 1).map_err(usage)?;
            let status = status::collect(&pool, &keys).await.map_err(|err| {
                usage(format!("cannot reach Redis at {}: {err}", redact_url(url)))
            })?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&status).expect("status serializes")
                );
            } else {
                print!("{}", status::render(&status));
            }
            Ok(())
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
                })
        }
        Command::Track(args) => {
            let out = track::run(&cli.redis, &args).await.map_err(|err| Failure {
                code: err.exit_code(),
                message: err.to_string(),
            })?;
            print!("{out}");
            Ok(())
        }
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

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
