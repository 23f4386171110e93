//! Starting, running and stopping the sandbox's HTTP server.
//!
//! [`start`] binds (port 0 works) and serves on a background task, returning a
//! [`RunningSandbox`] handle; [`run`] is what the binary calls: start, log the URL, serve
//! until a shutdown future resolves, stop. Shutdown is graceful and prompt: no new
//! connections, in-flight answers sent at once (their delays are cut short).

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::config::SandboxConfig;
use crate::messages::AcceptedMessage;
use crate::state::Sandbox;
use crate::stats::Stats;
use crate::stats::WebhookStats;

/// Why a sandbox could not start, or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value that cannot work, named by its flag.
    #[error(transparent)]
    Config(#[from] herald_shared::config::ConfigError),
    /// The listen address could not be bound.
    #[error(
        "cannot listen on {addr}: {source}; is another sandbox already running there? (--listen)"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("the sandbox's HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// A sandbox serving in the background.
///
/// Dropping it stops the server (as [`RunningSandbox::shutdown`] does, without waiting), so
/// a test that panics midway does not leave a server behind.
pub struct RunningSandbox {
    /// The bound address, with the real port when port 0 was asked for.
    addr: SocketAddr,
    /// The state the routes share; this handle reads messages and stats from it.
    sandbox: Arc<Sandbox>,
    /// Cancels the server's token when dropped; disarmed by `shutdown`, which cancels it
    /// itself and then waits.
    guard: DropGuard,
    /// The `axum::serve` task; it ends once the token is cancelled and connections close.
    task: JoinHandle<std::io::Result<()>>,
}

/// Starts a sandbox on `listen` (`127.0.0.1:0` for any free port).
///
/// Checks the configuration first ([`SandboxConfig::check`]) and loads libphonenumber's
/// metadata before binding, so the first request is not the slow one.
pub async fn start(config: SandboxConfig, listen: SocketAddr) -> Result<RunningSandbox, Error> {
    config.check()?;
    // The metadata takes about a second to load in debug builds; off the async threads.
    let _ = tokio::task::spawn_blocking(herald_shared::phone::warm_up).await;
    let bind_error = |source| Error::Bind {
        addr: listen,
        source,
    };
    let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let token = CancellationToken::new();
    let sandbox = Arc::new(Sandbox::new(&config, token.clone()));
    if let Some(poster) = crate::webhooks::Poster::new(&config) {
        // Subscribed before the server takes its first request, so no message is missed.
        let accepted = sandbox.subscribe();
        tokio::spawn(poster.run(accepted, Arc::clone(&sandbox), token.clone()));
    }
    let app = crate::routes::router(Arc::clone(&sandbox));
    let task = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(token.clone().cancelled_owned())
            .into_future(),
    );
    Ok(RunningSandbox {
        addr,
        sandbox,
        guard: token.drop_guard(),
        task,
    })
}

/// Runs a sandbox until `shutdown` resolves (the binary passes SIGINT/SIGTERM), logging one
/// line with its URL at start.
pub async fn run(
    config: SandboxConfig,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let rate = config.rate.map(|r| r.to_string());
    let (fail_rate, scripted) = (config.fail_rate, config.script.len());
    let webhooks = config.webhook_url.clone();
    let latency = humantime::format_duration(config.latency).to_string();
    let sandbox = start(config, listen).await?;
    tracing::info!(
        rate = rate.as_deref().unwrap_or("none"),
        fail_rate,
        latency,
        scripted,
        webhooks = webhooks.as_deref().unwrap_or("none"),
        "sandbox listening on {}: set INTERAKT_BASE_URL={}",
        sandbox.url(),
        sandbox.base_url(),
    );
    shutdown.await;
    tracing::info!("shutting down");
    sandbox.shutdown().await.map_err(Error::Serve)
}

impl RunningSandbox {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, where the `/_sandbox/*` routes live.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://ADDR/v1/public`: what `INTERAKT_BASE_URL` takes.
    pub fn base_url(&self) -> String {
        format!("{}{}", self.url(), crate::API_PREFIX)
    }

    /// `http://ADDR/v1/public/rcs/message/`: the send endpoint, as Interakt spells it.
    pub fn send_url(&self) -> String {
        format!("{}{}/", self.url(), crate::SEND_PATH)
    }

    /// The accepted messages so far, in arrival order.
    pub fn messages(&self) -> Vec<AcceptedMessage> {
        self.sandbox.messages()
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.sandbox.stats()
    }

    /// What the webhook poster posted so far (all zero without a webhook URL).
    pub fn webhook_stats(&self) -> WebhookStats {
        self.sandbox.webhook_stats()
    }

    /// Starts over: no messages, zeroed stats, an empty rate window, script counters at zero.
    pub fn reset(&self) {
        self.sandbox.reset();
    }

    /// Every message accepted from now on, as it is accepted (before its answer's delay).
    /// A receiver more than a few thousand messages behind misses the oldest
    /// ([`broadcast::error::RecvError::Lagged`]).
    pub fn subscribe(&self) -> broadcast::Receiver<AcceptedMessage> {
        self.sandbox.subscribe()
    }

    /// Stops accepting connections, answers in-flight requests at once, and waits for the
    /// server to finish. Returns the server's I/O error, if it had one.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let RunningSandbox { guard, task, .. } = self;
        guard.disarm().cancel();
        match task.await {
            Ok(result) => result,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => Err(std::io::Error::other(err)),
        }
    }
}

impl std::fmt::Debug for RunningSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSandbox")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
