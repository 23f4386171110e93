//! Herald's operator dashboard (`herald-dashboard`, also `herald-worker dashboard`): the
//! queue, the budget and the dead letters in a browser, and the operator's actions (replay,
//! purge) behind a login, each a POST with a CSRF token.
//!
//! It reads and moves what the pipeline wrote through the operator library
//! ([`herald_operator`]: status, find, dlq), and the chart history the workers record
//! ([`herald_store::history`]); it never sends a message and keeps its own state (sessions,
//! their signing secret, failed-login counts) in Redis beside the rest, so any number of
//! replicas show the same picture, log in and out alike, and a restart loses nothing.
//!
//! - [`cli`]: the `herald-dashboard` command line (its flags and the Redis connection).
//! - [`settings`]: flags and environment (`--listen`, `HERALD_DASHBOARD_TOKENS`,
//!   `HERALD_DASHBOARD_SECRET`, `--read-only`), validated once.
//! - [`session`]: sessions in Redis (logout, idle and maximum age), their signed cookie and
//!   the CSRF tokens.
//! - [`throttle`]: failed logins per client address (429 past ten in ten minutes).
//! - [`server`]: the routes, authentication, security headers, and each page's handler.
//! - [`actions`]: replay, purge and cancel, previewed (the plan `dlq ... --dry-run` prints),
//!   then done.
//! - [`view`]: the pages, compiled templates (maud), and the server-drawn SVG charts.
//!
//! Pages are complete without JavaScript; one small script (`static/live.js`) refreshes the
//! overview every few seconds by fetching its server-rendered fragment.

pub mod actions;
pub mod cli;
pub mod server;
pub mod session;
pub mod settings;
pub mod throttle;
pub mod view;

pub use server::serve;
pub use settings::{DashboardArgs, EXIT_CODES, Settings};

use std::net::SocketAddr;

use herald_shared::config::RedisArgs;
use herald_shared::process::Failure;

/// Runs the dashboard as the `dashboard` command does: validates the settings (exit 2
/// without tokens, with a token shorter than 16 characters or a secret shorter than 32, or
/// with an address that cannot be bound), serves until SIGTERM/SIGINT (exit 0).
pub async fn run_command(redis: &RedisArgs, args: &DashboardArgs) -> Result<u8, Failure> {
    run_until_signal(redis, args, |_| {}).await
}

/// [`run_command`], calling `ready` with the address once it listens (the demo prints it).
pub async fn run_until_signal(
    redis: &RedisArgs,
    args: &DashboardArgs,
    ready: impl FnOnce(SocketAddr),
) -> Result<u8, Failure> {
    let shutdown = herald_shared::signal::shutdown_token();
    let settings = Settings::from_args(redis, args).map_err(Failure::usage)?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|err| {
            Failure::usage(format!(
                "HERALD_DASHBOARD_LISTEN (--listen): cannot listen on {}: {err}",
                settings.listen
            ))
        })?;
    let pool = settings
        .redis
        .open(settings::POOL_SIZE)
        .await
        .map_err(Failure::usage)?;
    let addr = listener.local_addr().map_err(Failure::usage)?;
    tracing::info!(
        %addr,
        read_only = settings.read_only,
        redis = %settings.redis.describe(),
        "dashboard listening"
    );
    ready(addr);
    serve(listener, settings, pool, shutdown)
        .await
        .map_err(|err| Failure::new(1, format!("the dashboard stopped: {err}")))?;
    Ok(0)
}
