//! Shutdown signals: SIGTERM (what an orchestrator sends) and SIGINT (Ctrl-C), for every
//! Herald process.
//!
//! Servers take [`shutdown_signal`] as their graceful-shutdown future; long-running loops
//! take a [`CancellationToken`] that [`shutdown_token`] cancels. Either way a signal only
//! asks the process to stop; what "stopping" means (hand jobs back, finish in-flight sends)
//! belongs to the process.

use tokio_util::sync::CancellationToken;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGTERM and SIGINT, listened for from the moment this is made (the handlers are
/// installed at once, not when first awaited, so a signal that arrives during start-up is
/// not lost to its default action).
pub struct Signals {
    terminate: Option<Signal>,
    interrupt: Option<Signal>,
}

impl Signals {
    /// Installs the handlers now (on the current tokio runtime). One that cannot be
    /// installed (no signals in this environment) is said once and never awaited.
    pub fn install() -> Signals {
        let install = |kind: SignalKind, name: &str| {
            signal(kind)
                .map_err(|err| tracing::warn!(error = %err, "cannot listen for {name}"))
                .ok()
        };
        Signals {
            terminate: install(SignalKind::terminate(), "SIGTERM"),
            interrupt: install(SignalKind::interrupt(), "SIGINT"),
        }
    }

    /// Resolves on the first SIGTERM or SIGINT, saying which in the log.
    pub async fn recv(mut self) {
        async fn next(signal: &mut Option<Signal>) {
            match signal {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            () = next(&mut self.terminate) => tracing::info!("SIGTERM received"),
            () = next(&mut self.interrupt) => tracing::info!("SIGINT received"),
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT after the call, saying which in the log.
pub async fn shutdown_signal() {
    Signals::install().recv().await;
}

/// A token cancelled on the first SIGTERM or SIGINT. The handlers are installed before it
/// returns (on the current tokio runtime); call it first thing, before the work it stops.
pub fn shutdown_token() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let signals = Signals::install();
    let cancel = shutdown.clone();
    tokio::spawn(async move {
        signals.recv().await;
        cancel.cancel();
    });
    shutdown
}
