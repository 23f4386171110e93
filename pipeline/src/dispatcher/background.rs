//! The tasks that run beside the dispatcher loop, and their supervisor: the heartbeat (this
//! consumer is alive, its sends, gauges refreshed), the history flusher (the dashboard's
//! chart counts, once a second), the keep-alive of held jobs, and the [`Background`]
//! set that watches them with the retry promoter, the code eraser and the metrics server:
//! none of them may stop while the replica runs.

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::redis::AsyncCommands;
use herald_store::calls::settle::Lost;
use time::OffsetDateTime;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Context;
use super::hand::recovery_interval;
use crate::lanes::RedisFailure;
use crate::telemetry;

/// How often a replica records that it is alive.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// The replica's background tasks, each with its name, watched by [`Background::supervise`]:
/// none of them may stop while the replica runs.
#[derive(Default)]
pub(super) struct Background {
    tasks: JoinSet<()>,
    names: std::collections::HashMap<tokio::task::Id, &'static str>,
}

impl Background {
    pub(super) fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// Waits until `stop`, then ends every task and returns `None`; or, when a task stops
    /// (or panics) first, marks the process not ready (`/readyz` answers 503), cancels
    /// `stop` so the replica winds down, and returns the task's name. A refusal no retry can
    /// help, met by any task of the replica (`refused`, [`Episodes::on_refusal`]), cancels
    /// `stop` too; the refusal itself says why (the task that met it may have stopped).
    ///
    /// [`Episodes::on_refusal`]: herald_shared::episodes::Episodes::on_refusal
    pub(super) async fn supervise(
        mut self,
        stop: CancellationToken,
        refused: CancellationToken,
    ) -> Option<&'static str> {
        let failed = tokio::select! {
            biased;
            _ = stop.cancelled() => None,
            _ = refused.cancelled() => {
                stop.cancel();
                None
            }
            done = self.tasks.join_next_with_id() => done,
        };
        // A task that ended because `stop` was cancelled meanwhile did what it was told.
        let failed = failed.filter(|_| !stop.is_cancelled());
        let failed = failed.map(|done| {
            let (id, panicked) = match done {
                Ok((id, ())) => (id, false),
                Err(err) => (err.id(), err.is_panic()),
            };
            let name = self.names.get(&id).copied().unwrap_or("background task");
            tracing::error!(
                task = name,
                panicked,
                "a background task stopped unexpectedly; stopping the worker"
            );
            herald_shared::ops::mark_broken(&format!("the {name} stopped"));
            stop.cancel();
            name
        });
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        failed
    }
}

/// Keeps this replica's holds alive (see [`LaneReader::keep_alive`]) until `stop`.
pub(super) async fn keep_alive(ctx: Arc<Context>, stop: CancellationToken) {
    let every = recovery_interval(ctx.settings.claim_idle);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        match ctx.reader.keep_alive().await {
            Ok(lost) => {
                let taken = lost.iter().filter(|(_, why)| *why == Lost::Taken).count();
                if taken > 0 {
                    tracing::info!(
                        entries = taken,
                        "jobs held here were taken over (this process was paused?); they will not be sent from here"
                    );
                }
                if lost.len() > taken {
                    tracing::debug!(
                        entries = lost.len() - taken,
                        "jobs held here are gone (cancelled, settled, or lost with Redis's data); they leave the hand unsent"
                    );
                }
            }
            Err(err) => tracing::debug!(error = %err, "could not keep held jobs alive"),
        }
    }
}

/// How often a replica sends its chart counts to Redis (one pipeline, only when it did
/// something): the send path never waits on Redis for them.
const HISTORY_FLUSH: Duration = Duration::from_secs(1);

/// Records every few seconds that this consumer is alive, and how many jobs it sent, for
/// `status` and the dashboard; forgets consumers silent for ten beats.
pub(super) async fn heartbeat(ctx: Arc<Context>, shutdown: CancellationToken) {
    loop {
        let beat = async {
            let mut conn = ctx.pool.get().await.map_err(RedisFailure::from)?;
            let now_ms = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            let keys = &ctx.settings.keys;
            let key = keys.consumers();
            let stale = (now_ms - 10 * HEARTBEAT.as_millis() as i128) as i64;
            let gone: Vec<String> = conn.zrangebyscore(&key, "-inf", stale).await?;
            let mut pipe = deadpool_redis::redis::pipe();
            pipe.zadd(&key, &ctx.settings.consumer, now_ms as i64)
                .ignore()
                .hset(
                    keys.consumer_sends(),
                    &ctx.settings.consumer,
                    ctx.history.sent_total(),
                )
                .ignore()
                .zrembyscore(&key, "-inf", stale)
                .ignore();
            if !gone.is_empty() {
                pipe.hdel(keys.consumer_sends(), &gone).ignore();
            }
            let _: () = pipe.query_async(&mut conn).await?;
            let effective: Option<u32> = conn
                .hget(ctx.settings.keys.rate_state(), "effective")
                .await?;
            telemetry::record_budget(effective.unwrap_or(ctx.settings.budget.rate.requests.get()));
            Ok::<(), RedisFailure>(())
        };
        if let Err(err) = beat.await {
            tracing::debug!(error = %err, "heartbeat failed");
        }
        telemetry::refresh_queue_gauges(&ctx.pool, &ctx.settings.keys).await;
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

pub(super) async fn remove_heartbeat(ctx: &Context) -> Result<(), RedisFailure> {
    let mut conn = ctx.pool.get().await?;
    let _: () = deadpool_redis::redis::pipe()
        .zrem(ctx.settings.keys.consumers(), &ctx.settings.consumer)
        .ignore()
        .hdel(ctx.settings.keys.consumer_sends(), &ctx.settings.consumer)
        .ignore()
        .query_async(&mut conn)
        .await?;
    Ok(())
}

/// Sends the chart counts to Redis every [`HISTORY_FLUSH`] until `stop`. A failed flush
/// keeps its counts for the next one.
pub(super) async fn flush_history(ctx: Arc<Context>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(HISTORY_FLUSH) => {}
            _ = stop.cancelled() => return,
        }
        if let Err(err) = flush_history_once(&ctx).await {
            tracing::debug!(error = %err, "could not record the chart history; kept for the next flush");
        }
    }
}

pub(super) async fn flush_history_once(ctx: &Context) -> Result<(), RedisFailure> {
    let mut conn = ctx.pool.get().await?;
    ctx.history.flush(&mut conn, &ctx.settings.keys).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_background_task_that_stops_stops_the_worker_and_fails_readiness() {
        let stop = CancellationToken::new();
        let mut background = Background::default();
        background.spawn("heartbeat", std::future::pending());
        background.spawn("retry promoter", async {
            tokio::time::sleep(Duration::from_secs(3)).await;
        });
        let failed = background
            .supervise(stop.clone(), CancellationToken::new())
            .await;
        assert_eq!(failed, Some("retry promoter"));
        assert!(stop.is_cancelled(), "the dispatcher is told to wind down");
        assert_eq!(
            herald_shared::ops::broken().as_deref(),
            Some("the retry promoter stopped")
        );
    }

    /// A refusal met anywhere in the replica (a send task's settle, say) winds it down; the
    /// refusal, not a task, is what it stopped for.
    #[tokio::test(start_paused = true)]
    async fn a_refusal_met_anywhere_stops_the_worker() {
        let (stop, refused) = (CancellationToken::new(), CancellationToken::new());
        let mut background = Background::default();
        background.spawn("heartbeat", std::future::pending());
        let supervisor = tokio::spawn(background.supervise(stop.clone(), refused.clone()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!stop.is_cancelled());
        refused.cancel();
        assert_eq!(supervisor.await.unwrap(), None);
        assert!(stop.is_cancelled(), "the dispatcher is told to wind down");
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_named_too_and_a_requested_stop_is_no_failure() {
        let stop = CancellationToken::new();
        let mut background = Background::default();
        background.spawn("keep-alive of held jobs", async { panic!("boom") });
        assert_eq!(
            background.supervise(stop, CancellationToken::new()).await,
            Some("keep-alive of held jobs")
        );

        let stop = CancellationToken::new();
        let mut background = Background::default();
        let child = stop.clone();
        background.spawn("heartbeat", async move { child.cancelled().await });
        stop.cancel();
        assert_eq!(
            background.supervise(stop, CancellationToken::new()).await,
            None
        );
    }
}
