//! The webhook receiver and processor, in-process, for the sandbox's delivery reports.

use std::net::SocketAddr;
use std::time::Duration;

use herald_shared::Redacted;
use herald_shared::config::RedisArgs;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use herald_webhook::{DEFAULT_INBOUND_MAX_LEN, WebhookArgs, WebhookError, WebhookSettings};

use crate::demo_redis::*;
use crate::options::*;

/// The receiving half of the loop: `herald-worker webhook`'s receiver and processor
/// ([`herald_webhook::serve`]) as a task on a free loopback port. The sandbox posts to
/// [`DemoReceiver::url`], signing with a secret made up for the run. Dropping it tells the
/// task to stop; [`DemoReceiver::stop`] also waits for it.
pub(crate) struct DemoReceiver {
    pub(crate) url: String,
    pub(crate) secret: Redacted<String>,
    pub(crate) stop: CancellationToken,
    /// `None` once it has been waited for.
    pub(crate) task: Option<JoinHandle<Result<(), WebhookError>>>,
}

impl DemoReceiver {
    /// How long the task gets to stop before it is aborted.
    const STOP: Duration = Duration::from_secs(5);

    pub(crate) async fn start(redis: &DemoRedis) -> Result<DemoReceiver, DemoError> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|err| DemoError::WebhookStart(format!("cannot listen on 127.0.0.1: {err}")))?;
        let addr = listener
            .local_addr()
            .map_err(|err| DemoError::WebhookStart(err.to_string()))?;
        let secret = Redacted::new(format!("{:032x}", rand::random::<u128>()));
        // Built as the `webhook` command builds them, from its flags.
        let settings = WebhookSettings::from_args(
            &RedisArgs::single(redis.url.clone(), redis.namespace.clone()),
            &WebhookArgs {
                listen: addr,
                secret: Some(secret.clone()),
                insecure_no_signature: false,
                consumer: Some(format!("demo-{}-webhook", std::process::id())),
                inbound_max_len: DEFAULT_INBOUND_MAX_LEN,
            },
        )?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(herald_webhook::serve(listener, settings, stop.clone()));
        Ok(DemoReceiver {
            url: format!("http://{addr}{}", herald_webhook::receiver::PATH),
            secret,
            stop,
            task: Some(task),
        })
    }

    /// Why the task ended, if it ended before it was told to.
    pub(crate) async fn failure(&mut self) -> Option<String> {
        if !self.task.as_ref()?.is_finished() {
            return None;
        }
        let task = self.task.take()?;
        Some(match task.await {
            Ok(Err(err)) => err.to_string(),
            Ok(Ok(())) => "stopped unexpectedly".to_string(),
            Err(err) => err.to_string(),
        })
    }

    /// Stops the receiver and its processor, and waits for them (at most [`Self::STOP`]).
    pub(crate) async fn stop(mut self) {
        self.stop.cancel();
        let Some(mut task) = self.task.take() else {
            return;
        };
        match tokio::time::timeout(Self::STOP, &mut task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => {
                tracing::warn!(error = %err, "the demo's webhook receiver failed");
            }
            Ok(Err(err)) => tracing::warn!(error = %err, "the demo's webhook receiver panicked"),
            Err(_) => {
                tracing::warn!("the demo's webhook receiver did not stop in time; aborting it");
                task.abort();
                let _ = task.await;
            }
        }
    }
}

impl Drop for DemoReceiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
