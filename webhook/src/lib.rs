//! Herald's webhook service (`herald-webhook`, also `herald-worker webhook`): Interakt's
//! events back into Herald.
//!
//! One process, two halves joined by a Redis stream ([`Keys::webhook_events`]):
//!
//! ```text
//! Interakt --POST--> receiver (verify, de-dup, XADD; 200 in ms) --> webhook:events
//!     --> processor (consumer group) --> job timelines | inbound stream | unhandled
//! ```
//!
//! - [`receiver`]: the HTTP route; answers fast and never 5xx for an event it merely does
//!   not recognise; 503 only when Redis cannot take the event.
//! - [`verify`]: who may post: a secret is required unless `--insecure-no-signature`.
//! - [`processor`]: the background consumer; at-least-once, idempotent.
//! - [`action`]: what an event means (pure).
//! - [`telemetry`]: the webhook's counters.
//! - [`cli`]: the `herald-webhook` command line.
//!
//! `/metrics`, `/healthz` and `/readyz` ([`herald_shared::ops`]) are served on the same
//! listener. This module owns the command's flags and start-up; it never sends anything.

pub mod action;
pub mod cli;
pub mod processor;
pub mod receiver;
pub mod telemetry;
pub mod verify;

use std::net::SocketAddr;

use herald_shared::Redacted;
use herald_shared::config::{ConfigError, RedisArgs};
use herald_shared::consumer::consumer_name;
use herald_shared::episodes::{Episodes, Refusal};
use herald_shared::process::Failure;
use herald_store::Keys;
use tokio_util::sync::CancellationToken;

pub use processor::Processor;
pub use receiver::Receiver;
pub use verify::Signatures;

/// Default approximate cap of the inbound stream.
pub const DEFAULT_INBOUND_MAX_LEN: u64 = 100_000;

/// Redis connections of a `webhook` process: requests and the processor share them.
const POOL_SIZE: usize = 16;

/// Flags of `herald-worker webhook`; each also reads an environment variable.
#[derive(clap::Args, Debug, Clone)]
pub struct WebhookArgs {
    /// Address to listen on: POST /webhooks/interakt, and GET /metrics, /healthz, /readyz.
    #[arg(long, env = "HERALD_WEBHOOK_LISTEN", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The secret key saved with the webhook in Interakt's dashboard; required. Every POST
    /// must carry `Interakt-Signature` (or `X-Interakt-Signature`): `sha256=<hex
    /// HMAC-SHA256(secret, body)>` (401 if not). Prefer the environment variable: flags
    /// show in the process list.
    #[arg(
        long,
        env = "INTERAKT_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "S"
    )]
    pub secret: Option<Redacted<String>>,
    /// Run without a secret and accept unsigned POSTs. For local development only: anyone
    /// who can reach the port can post events (forged taps, forged delivery reports).
    /// Cannot be combined with a secret.
    #[arg(
        long,
        env = "HERALD_WEBHOOK_INSECURE_NO_SIGNATURE",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure_no_signature: bool,
    /// This process's name in the webhook processors' consumer group; unique per process
    /// (default: host-pid-random).
    #[arg(long, env = "HERALD_CONSUMER")]
    pub consumer: Option<String>,
    /// Approximate cap of the inbound stream's length (the oldest entries go first); 0 for
    /// none. Backend services must read faster than this fills.
    #[arg(long, env = "HERALD_INBOUND_MAX_LEN", default_value_t = DEFAULT_INBOUND_MAX_LEN, value_name = "N")]
    pub inbound_max_len: u64,
}

/// Everything a `webhook` process needs, validated.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// The Redis server or cluster.
    pub redis: herald_shared::redis_pool::Target,
    pub keys: Keys,
    pub listen: SocketAddr,
    /// The secret POSTs are checked against, or none (`--insecure-no-signature`).
    pub signatures: Signatures,
    pub consumer: String,
    pub inbound_max_len: u64,
}

impl WebhookSettings {
    pub fn from_args(redis: &RedisArgs, args: &WebhookArgs) -> Result<Self, ConfigError> {
        let signatures = signatures(args)?;
        let consumer = consumer_name(args.consumer.as_deref())?;
        Ok(WebhookSettings {
            redis: redis.target(),
            keys: Keys::new(&redis.namespace)?,
            listen: args.listen,
            signatures,
            consumer,
            inbound_max_len: args.inbound_max_len,
        })
    }
}

/// The flag and variable of the secret, as errors name them.
const SECRET_NAME: &str = "INTERAKT_WEBHOOK_SECRET (--secret)";

/// The signature policy the flags ask for: a secret, or explicitly none.
fn signatures(args: &WebhookArgs) -> Result<Signatures, ConfigError> {
    match (&args.secret, args.insecure_no_signature) {
        (Some(secret), _) if secret.expose().trim().is_empty() => Err(ConfigError::new(
            SECRET_NAME,
            "is empty; set it to the secret key saved with the webhook in Interakt's dashboard",
        )),
        (Some(_), true) => Err(ConfigError::new(
            "HERALD_WEBHOOK_INSECURE_NO_SIGNATURE (--insecure-no-signature)",
            "is set together with INTERAKT_WEBHOOK_SECRET (--secret); drop --insecure-no-signature to check signatures",
        )),
        (Some(secret), false) => Ok(Signatures::Required(secret.clone())),
        (None, true) => Ok(Signatures::Unchecked),
        (None, false) => Err(ConfigError::new(
            SECRET_NAME,
            "is required: set it to the secret key saved with the webhook in Interakt's dashboard (every POST must be signed with it); for local development only, pass --insecure-no-signature",
        )),
    }
}

/// A `webhook` process that could not start, or whose server failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr} (--listen): {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the webhook server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// The processor stopped while the receiver ran: events would pile up unprocessed, so
    /// the process stops (readiness turned 503 first) for its orchestrator to restart it.
    #[error("the webhook processor stopped unexpectedly; the receiver stopped too")]
    ProcessorStopped,
    /// The processor met a refusal no retry can help (`NOPERM`, `WRONGTYPE`, the
    /// credentials) and stopped, the receiver with it. `.1` is the namespace's key pattern,
    /// for the fix.
    #[error("{}", .0.explain(.1))]
    Refused(Refusal, String),
}

impl WebhookError {
    /// 1 when the server failed while running, 2 when it could not start.
    pub fn exit_code(&self) -> u8 {
        match self {
            WebhookError::Serve(_) | WebhookError::ProcessorStopped | WebhookError::Refused(..) => {
                1
            }
            WebhookError::Config(_) | WebhookError::Bind { .. } => 2,
        }
    }
}

/// The webhook command's exit codes, for its `--help`.
pub const EXIT_CODES: &str = "Exit codes:
  0  stopped cleanly on SIGTERM/SIGINT
  1  the server failed while running, or the processor stopped unexpectedly (/readyz turned
     503 first), or Redis refused something no retry can help (NOPERM, WRONGTYPE: the log and
     this message name it and its fix)
  2  bad usage or configuration (a flag, the secret or its absence, the listen address)";

/// The whole command, as `herald-webhook` and `herald-worker webhook` run it: validate the
/// flags, serve until SIGTERM/SIGINT, and return the exit code.
pub async fn run_command(redis: &RedisArgs, args: &WebhookArgs) -> Result<u8, Failure> {
    // First, so a SIGTERM during start-up is a clean stop, never the default action.
    let shutdown = herald_shared::signal::shutdown_token();
    let settings = WebhookSettings::from_args(redis, args).map_err(Failure::usage)?;
    // Kept to the end: dropping it posts the last spans (see docs/tracing.md).
    let _traces = herald_shared::traces::init("herald-webhook").map_err(Failure::usage)?;
    run(settings, shutdown)
        .await
        .map_err(|err| Failure::new(err.exit_code(), err))?;
    Ok(0)
}

/// Binds `--listen`, then [`serve`]s until `shutdown`.
pub async fn run(
    settings: WebhookSettings,
    shutdown: CancellationToken,
) -> Result<(), WebhookError> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| WebhookError::Bind {
            addr: settings.listen,
            source,
        })?;
    serve(listener, settings, shutdown).await
}

/// Receives and processes webhooks on `listener` until `shutdown`, then stops taking
/// requests, lets the processor finish the event in hand, and returns. Redis may be down at
/// start: the receiver answers 503 and the processor retries until it is back.
pub async fn serve(
    listener: tokio::net::TcpListener,
    settings: WebhookSettings,
    shutdown: CancellationToken,
) -> Result<(), WebhookError> {
    let pool = settings.redis.open(POOL_SIZE).await?;
    let addr = listener.local_addr().map_err(WebhookError::Serve)?;
    if settings.signatures.is_unchecked() {
        tracing::warn!(
            "--insecure-no-signature: webhook signatures are not checked; anyone who can reach this port can post events (forged taps, forged delivery reports). For local development only: set INTERAKT_WEBHOOK_SECRET anywhere else"
        );
    }
    tracing::info!(
        consumer = %settings.consumer,
        redis = %settings.redis.describe(),
        "receiving Interakt webhooks on http://{addr}{}",
        receiver::PATH
    );
    let processor = Processor::new(
        pool.clone(),
        settings.keys.clone(),
        settings.consumer.clone(),
        settings.inbound_max_len,
    );
    telemetry::register_webhook_metrics();
    let mut processing = tokio::spawn(processor.run(shutdown.clone()));
    let app = Receiver::new(
        pool.clone(),
        settings.keys.clone(),
        settings.signatures.clone(),
    )
    .router()
    .merge(herald_shared::ops::routes(pool));
    // The receiver stops on `stop`: SIGTERM, or the processor stopping on its own.
    let stop = shutdown.child_token();
    let serving = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future(),
    );
    let processor_failed = tokio::select! {
        biased;
        _ = shutdown.cancelled() => false,
        done = &mut processing => {
            let failed = !shutdown.is_cancelled();
            if failed {
                let panicked = done.as_ref().err().is_some_and(|err| err.is_panic());
                tracing::error!(panicked, "the webhook processor stopped unexpectedly; stopping the receiver");
                herald_shared::ops::mark_broken("the webhook processor stopped");
            }
            failed
        }
    };
    stop.cancel();
    let served = serving
        .await
        .unwrap_or_else(|err| Err(std::io::Error::other(err.to_string())));
    if !processing.is_finished() {
        let _ = processing.await;
    }
    tracing::info!("webhook receiver stopped");
    served.map_err(WebhookError::Serve)?;
    if processor_failed {
        return Err(match Episodes::process().refusal() {
            Some(refusal) => WebhookError::Refused(refusal, settings.keys.pattern()),
            None => WebhookError::ProcessorStopped,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        webhook: WebhookArgs,
    }

    /// Settings from flags only (the environment is the process's: these tests pass every
    /// value they rely on as a flag).
    fn settings(flags: &[&str]) -> Result<WebhookSettings, ConfigError> {
        let mut argv = vec!["herald-webhook", "--listen", "127.0.0.1:0"];
        argv.extend_from_slice(flags);
        let cli = Cli::try_parse_from(argv).unwrap();
        WebhookSettings::from_args(&cli.redis, &cli.webhook)
    }

    #[test]
    fn a_secret_is_required_unless_insecure_no_signature_is_explicit() {
        if std::env::var_os("INTERAKT_WEBHOOK_SECRET").is_some()
            || std::env::var_os("HERALD_WEBHOOK_INSECURE_NO_SIGNATURE").is_some()
        {
            return; // the environment decides instead of the flags
        }
        let err = settings(&[]).unwrap_err().to_string();
        assert!(
            err.starts_with("INTERAKT_WEBHOOK_SECRET (--secret): is required")
                && err.contains("--insecure-no-signature")
                && !err.contains('\n'),
            "{err}"
        );
        let secret = settings(&["--secret", "whsec-1"]).unwrap();
        assert!(matches!(&secret.signatures, Signatures::Required(s) if s.expose() == "whsec-1"));
        assert!(!format!("{secret:?}").contains("whsec-1"), "{secret:?}");
        let open = settings(&["--insecure-no-signature"]).unwrap();
        assert!(open.signatures.is_unchecked());
        let err = settings(&["--secret", "whsec-1", "--insecure-no-signature"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("HERALD_WEBHOOK_INSECURE_NO_SIGNATURE"),
            "{err}"
        );
        let err = settings(&["--secret", " "]).unwrap_err().to_string();
        assert!(err.contains("is empty"), "{err}");
    }
}
