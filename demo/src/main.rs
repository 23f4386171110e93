//! `herald-demo`: the whole system on this machine in one command. Parses the command
//! line, runs [`herald_demo::run`], prints the summary, maps the result to an exit code.

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use herald_demo::cli::Cli;
use herald_demo::{DemoOptions, ProgressMode};
use herald_shared::config::load_dotenv;
use herald_shared::process::{Failure, exit, init_tracing, print_out, usage_error};

#[tokio::main]
async fn main() -> ExitCode {
    load_dotenv();
    let matches = Cli::command()
        .try_get_matches()
        .unwrap_or_else(|err| usage_error("herald-demo", &err));
    // The demo borrows a Redis only when one is named; the default URL means "start one".
    let redis_named = matches.value_source("redis_url") != Some(ValueSource::DefaultValue);
    let cli =
        Cli::from_arg_matches(&matches).unwrap_or_else(|err| usage_error("herald-demo", &err));
    // The workers would log every send: the demo shows progress and a summary instead.
    init_tracing(cli.log_format, "error");
    if cli.serve_dashboard {
        return exit(
            "herald-demo",
            herald_demo::dashboard::serve_from_env().await,
        );
    }
    let options = DemoOptions {
        redis_url: redis_named.then(|| cli.redis.redis_url.clone()),
        namespace: cli.redis.namespace.clone(),
        keep: cli.keep,
        progress: ProgressMode::detect(),
    };
    let result = herald_demo::run(options, herald_shared::signal::shutdown_token()).await;
    exit(
        "herald-demo",
        result
            .map(|summary| {
                let out = if cli.json {
                    serde_json::to_string(&summary).expect("the summary serializes")
                } else {
                    herald_demo::render(&summary)
                };
                print_out("herald-demo", &out);
                0
            })
            .map_err(|err| {
                Failure::new(if err.is_setup() { 2 } else { 1 }, format!("demo: {err}"))
            }),
    )
}
