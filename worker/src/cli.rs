//! `herald-worker`'s command line: its flags and subcommands ([`Cli`]) and what each runs
//! ([`run`]). `run` is the pipeline ([`herald_pipeline::dispatcher`]); the operator's
//! commands come from `herald-operator`, `webhook` from `herald-webhook`, `dashboard` hands
//! over to the `herald-dashboard` binary and `demo` to `herald-demo` (this one links no test
//! stand-in). Never parses the process's arguments or sets up logging: `main` does.

use clap::{Parser, Subcommand};
use herald_operator::cli::OperatorCommand;
use herald_pipeline::dispatcher;
use herald_pipeline::settings::{RUN_EXIT_CODES, RunArgs, Settings};
use herald_shared::config::{GLOBAL_DISPLAY_ORDER, RedisArgs};
use herald_shared::process::{Failure, LogFormat, exec_sibling};
use herald_webhook::WebhookArgs;

const EXIT_CODES: &str = "Exit codes:
  0  done (run and webhook: stopped cleanly on SIGTERM/SIGINT; track: found; dlq purge
     without --yes: nothing deleted)
  1  partly done, each case reported (dlq: an id not found, an expired OTP without --extend,
     an entry with no job), not found (track), or failed while running (run, webhook, demo;
     run and webhook also when Redis refuses what no retry can help: NOPERM, WRONGTYPE)
  2  bad usage or configuration, or Redis unreachable (status, track, dlq; run and webhook
     wait for it)";

const DASHBOARD_EXIT_CODES: &str =
    "Exit codes: those of herald-dashboard (0 stopped on SIGTERM/SIGINT, 1 failed while
running, 2 bad configuration: no HERALD_DASHBOARD_TOKENS or one shorter than 16 characters,
a HERALD_DASHBOARD_SECRET shorter than 32, --listen cannot be bound), or 2 when the
herald-dashboard binary is not next to this one.";

const DEMO_EXIT_CODES: &str =
    "Exit codes: those of herald-demo (0 finished, 1 did not finish, 2 could not
start), or 2 when the herald-demo binary is not next to this one.";

#[derive(Parser, Debug)]
#[command(name = "herald-worker", version, about = "Drain Herald's lanes into Interakt within the plan's rate limit.", after_help = EXIT_CODES)]
pub struct Cli {
    /// Log format.
    #[arg(long, env = "HERALD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true, display_order = GLOBAL_DISPLAY_ORDER)]
    pub log_format: LogFormat,
    // Last of the flags: what follows it is shown under its heading.
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one worker replica until SIGTERM/SIGINT.
    #[command(after_help = RUN_EXIT_CODES)]
    Run(Box<RunArgs>),
    #[command(flatten)]
    Operator(OperatorCommand),
    /// Receive Interakt's webhooks (POST /webhooks/interakt) and process them into job
    /// timelines and the inbound stream, until SIGTERM/SIGINT (the same as `herald-webhook`).
    #[command(after_help = herald_webhook::EXIT_CODES)]
    Webhook(Box<WebhookArgs>),
    /// Serve the operator dashboard (runs `herald-dashboard` with these arguments: `--listen`,
    /// `--read-only`; see `herald-dashboard --help`). Needs HERALD_DASHBOARD_TOKENS.
    #[command(after_help = DASHBOARD_EXIT_CODES, disable_help_flag = true)]
    Dashboard {
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
    /// See the whole system work on this machine (runs `herald-demo` with these arguments:
    /// `--json`, `--keep`; see `herald-demo --help`).
    #[command(after_help = DEMO_EXIT_CODES, disable_help_flag = true)]
    Demo {
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
}

/// Runs the command `cli` names; the exit code, or the failure to report.
pub async fn run(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Run(args) => {
            // First, so a SIGTERM during start-up is a clean stop, never the default action.
            let shutdown = herald_shared::signal::shutdown_token();
            let settings = Settings::from_args(&cli.redis, &args).map_err(Failure::usage)?;
            // Kept to the end: dropping it posts the last spans (see docs/tracing.md).
            let _traces = herald_shared::traces::init("herald-worker").map_err(Failure::usage)?;
            dispatcher::run(settings, shutdown)
                .await
                .map_err(|err| Failure::new(err.exit_code(), err))?;
            Ok(0)
        }
        Command::Operator(command) => herald_operator::cli::run(&cli.redis, command).await,
        Command::Webhook(args) => herald_webhook::run_command(&cli.redis, &args).await,
        Command::Dashboard { args } => Err(exec_sibling(
            "herald-dashboard",
            &args,
            &sibling_env(&cli.redis),
        )),
        Command::Demo { args } => Err(exec_sibling("herald-demo", &args, &sibling_env(&cli.redis))),
    }
}

/// The Redis flags given to `herald-worker`, as the environment of a sibling binary it hands
/// over to (`demo`, `dashboard`).
fn sibling_env(redis: &RedisArgs) -> Vec<(&'static str, String)> {
    let mut env = vec![("HERALD_NAMESPACE", redis.namespace.clone())];
    if std::env::args().any(|a| a.starts_with("--redis-url")) {
        env.push(("REDIS_URL", redis.redis_url.expose().clone()));
    }
    env
}
