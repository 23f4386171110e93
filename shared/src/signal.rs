//! Shutdown signals: SIGTERM (what an orchestrator sends) and SIGINT (Ctrl-C), for every
//! Herald process.
//!
//! Servers take [`shutdown_signal`] as their graceful-shutdown future; long-running loops
//! take a [`CancellationToken`] that [`cancel_on_signal`] cancels. Either way a signal only
//! asks the process to stop; what "stopping" means (hand jobs back, finish in-flight sends)
//! belongs to the process.

use tokio_util::sync::CancellationToken;

/// Resolves on the first SIGTERM or SIGINT, saying which in the log. When a handler cannot
/// be installed (no signals in this environment), that signal is simply never awaited.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = terminate => tracing::info!("SIGTERM received"),
        () = interrupt => tracing::info!("SIGINT received"),
    }
}

/// Cancels `shutdown` on the first SIGTERM or SIGINT. Spawn it once per process, before the
/// work it stops.
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    shutdown_signal().await;
    shutdown.cancel();
}

/// A token cancelled on the first SIGTERM or SIGINT (the listener runs on the current tokio
/// runtime).
pub fn shutdown_token() -> CancellationToken {
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    shutdown
}
