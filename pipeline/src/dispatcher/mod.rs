//! One worker replica: the data flow `lane -> limiter -> send -> settle`, and shutdown.
//!
//! The **dispatcher** (one loop per replica) holds a few delivered jobs "in hand" and sends
//! each when it has both a concurrency slot and a token of the shared budget:
//!
//! 1. every so often, take over jobs dead replicas left pending ([`LaneReader::claim_stale`]);
//! 2. when the hand is empty, read: the OTP lane first, then bookings, else block on both;
//! 3. triage: entries that are not jobs, poison, or past their deadline are dead-lettered
//!    without spending budget;
//! 4. acquire tokens ([`SharedLimiter`]); a booking about to use one yields to an OTP that
//!    arrived meanwhile, so OTPs jump the booking backlog;
//! 5. spawn a send task per token; it sends, classifies ([`crate::retry`]) and settles
//!    ([`Settler`]).
//!
//! Redis failures anywhere back off and retry ([`ReconnectBackoff`]); the replica neither
//! exits nor spins, but for a refusal no retry can help (`NOPERM`, `WRONGTYPE`): then it
//! stops as it does on SIGTERM and exits 1, naming the refusal and its fix. On shutdown the dispatcher stops reading, hands the jobs in hand back to
//! the lane, and in-flight sends get `shutdown_grace` to finish.
//!
//! One concern per file:
//!
//! - this file: [`run`]: start-up, the shared [`Context`], shutdown;
//! - `hand`: the dispatcher loop: the jobs in hand, which lane asks for tokens, recovery;
//! - `hold`: a send task's request slot, then settle slot;
//! - `send`: one send task: check, send, record, decide, settle;
//! - `background`: the tasks beside the loop (heartbeat, history flusher, keep-alive, code
//!   eraser, retry promoter, metrics) and the supervisor that stops the replica when one
//!   stops.

mod background;
mod hand;
mod hold;
mod send;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;

use herald_shared::backoff::{Next, ReconnectBackoff};
use herald_shared::episodes::{Episodes, Refusal};
use herald_shared::redis_pool::Pool;
use herald_store::history::Recorder;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::lanes::{Delivery, LaneReader};
use crate::limiter::SharedLimiter;
use crate::sender::Sender;
use crate::settings::Settings;
use crate::settle::{Settled, Settler};
use crate::telemetry;

use background::{
    Background, flush_history, flush_history_once, heartbeat, keep_alive, remove_heartbeat,
};
use hand::dispatch;
use send::report_settled;

/// A worker that could not start, or that stopped because part of it did.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] herald_shared::config::ConfigError),
    #[error("{0}")]
    Http(String),
    /// A background task the replica needs (the retry promoter, the heartbeat, the
    /// keep-alive of its holds, the metrics server) stopped: the replica handed its jobs
    /// back and stopped too, for its orchestrator to restart it.
    #[error("the {0} stopped unexpectedly; the worker stopped too (jobs in hand were handed back)")]
    TaskStopped(&'static str),
    /// Redis refused something no retry can help (`NOPERM`, `WRONGTYPE`, the credentials):
    /// the replica stopped as on SIGTERM. `.1` is the namespace's key pattern, for the fix.
    #[error("{}", .0.explain(.1))]
    Refused(Refusal, String),
}

impl StartError {
    /// 1 when the worker ran and stopped because part of it did; 2 when it could not start.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::TaskStopped(_) | StartError::Refused(..) => 1,
            StartError::Config(_) | StartError::Http(_) => 2,
        }
    }
}

/// Everything the dispatcher and the send tasks share. Built once by [`run`], which holds
/// the first `Arc`; the dispatcher borrows it, and each send task and background task
/// (heartbeat) holds a clone until it finishes. The last clone dropped closes the pool's
/// connections and the HTTP client's.
struct Context {
    /// Validated once at start-up; never changes while the replica runs.
    settings: Settings,
    /// The replica's Redis connections; the reader, settler and limiter hold clones of it.
    pool: Pool,
    /// Reads and claims this replica's entries (the dispatcher only).
    reader: LaneReader,
    /// Every way a job leaves a lane (the send tasks; the dispatcher on shutdown).
    settler: Settler,
    /// The budget shared with every replica through Redis, and this replica's pacer.
    limiter: SharedLimiter,
    /// The HTTP client to Interakt (the send tasks).
    sender: Sender,
    /// What this replica did, counted for the dashboard's charts (the send tasks count; the
    /// history flusher empties it into Redis once a second).
    history: Recorder,
}

impl Context {
    /// The replica's shared handles, all over `pool`.
    fn new(settings: Settings, pool: Pool) -> Result<Context, StartError> {
        let sender = Sender::new(
            settings.send_url.clone(),
            &settings.api_key,
            settings.request_timeout,
        )
        .map_err(StartError::Http)?;
        let limiter = SharedLimiter::new(
            pool.clone(),
            &settings.keys,
            settings.budget,
            &settings.consumer,
        );
        Ok(Context {
            reader: LaneReader::new(
                pool.clone(),
                settings.keys.clone(),
                settings.consumer.clone(),
            )
            .with_tenant_weights(settings.tenant_weights.clone()),
            settler: Settler::new(
                pool.clone(),
                settings.keys.clone(),
                settings.consumer.clone(),
            )
            .with_durability(settings.durability),
            limiter,
            sender,
            history: Recorder::default(),
            pool,
            settings,
        })
    }
}

/// Runs one replica until `shutdown` is cancelled, then drains and returns.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), StartError> {
    let pool = settings.redis.open(settings.concurrency + 8).await?;
    let ctx = Arc::new(Context::new(settings, pool)?);
    tracing::info!(
        consumer = %ctx.settings.consumer,
        rate = %ctx.settings.budget.rate,
        otp_reserve = ctx.settings.budget.otp_reserve,
        booking_share = ctx.settings.budget.booking_share,
        concurrency = ctx.settings.concurrency,
        redis = %ctx.settings.redis.describe(),
        interakt = %ctx.settings.send_url,
        sms_fallback = ctx.settings.sms.is_some(),
        "worker starting"
    );
    if let Some(asked) = ctx.settings.timeout_lowered {
        tracing::warn!(
            asked = ?asked,
            used = ?ctx.settings.request_timeout,
            rate = %ctx.settings.budget.rate,
            margin = ?ctx.settings.budget.margin,
            "the window of --rate is shorter than --request-timeout plus the rate margin: the request timeout is lowered to fit it (docs/budget.md)"
        );
    }
    if let Some(sms) = &ctx.settings.sms
        && sms.reminder_template_id.is_none()
    {
        tracing::info!(
            "reminders go without SMS fallback: DLT_REMINDER_TEMPLATE_ID is not set (bookings and OTPs keep theirs)"
        );
    }

    // `stop` ends the dispatcher and every background task: on SIGTERM (`shutdown`), when
    // the supervisor sees a background task stop on its own, or when any task meets a
    // refusal no retry can help.
    let stop = shutdown.child_token();
    let episodes = Episodes::process();
    let mut background = Background::default();
    if let Some(addr) = ctx.settings.http_listen {
        telemetry::register_replica_series(ctx.settings.budget.rate.requests.get());
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|err| StartError::Http(format!("--http-listen {addr}: {err}")))?;
        let (pool, keys, stop) = (ctx.pool.clone(), ctx.settings.keys.clone(), stop.clone());
        background.spawn(
            "metrics server",
            telemetry::serve(listener, pool, keys, stop),
        );
    }
    if !wait_for_groups(&ctx, &stop).await {
        return match episodes.refusal() {
            Some(refusal) => Err(StartError::Refused(refusal, ctx.settings.keys.pattern())),
            None => Ok(()),
        };
    }
    let (pool, keys) = (ctx.pool.clone(), ctx.settings.keys.clone());
    background.spawn(
        "retry promoter",
        crate::delayed::run_promoter(pool, keys, stop.clone()),
    );
    background.spawn("heartbeat", heartbeat(ctx.clone(), stop.clone()));
    background.spawn("history flusher", flush_history(ctx.clone(), stop.clone()));
    let (pool, keys) = (ctx.pool.clone(), ctx.settings.keys.clone());
    background.spawn(
        "code eraser",
        crate::erase::run_eraser(pool, keys, stop.clone()),
    );
    background.spawn(
        "keep-alive of held jobs",
        keep_alive(ctx.clone(), stop.clone()),
    );
    let supervisor = tokio::spawn(background.supervise(stop.clone(), episodes.on_refusal()));

    let mut sends = JoinSet::new();
    let hand = dispatch(&ctx, &stop, &mut sends).await;
    tracing::info!(
        in_hand = hand.len(),
        in_flight = sends.len(),
        "shutting down: no new jobs taken"
    );
    hand_back(&ctx, hand).await;

    let grace = ctx.settings.shutdown_grace;
    let drained =
        tokio::time::timeout(grace, async { while sends.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            unfinished = sends.len(),
            "shutdown grace over; unfinished sends stay pending and will be taken over by another replica"
        );
        sends.abort_all();
    }
    stop.cancel();
    let failed = supervisor.await.ok().flatten();
    // The last second's counts, sends finished during the grace included.
    let _ = flush_history_once(&ctx).await;
    let _ = remove_heartbeat(&ctx).await;
    tracing::info!("worker stopped");
    if let Some(refusal) = episodes.refusal() {
        return Err(StartError::Refused(refusal, ctx.settings.keys.pattern()));
    }
    match failed {
        Some(task) => Err(StartError::TaskStopped(task)),
        None => Ok(()),
    }
}

/// Creates the consumer groups, retrying while Redis fails (unreachable, out of memory
/// with the groups missing: `/readyz` says 503 meanwhile). False on shutdown, or on a
/// refusal no retry can help.
async fn wait_for_groups(ctx: &Context, stop: &CancellationToken) -> bool {
    let mut backoff = ReconnectBackoff::new("start-up");
    loop {
        match ctx.reader.ensure_groups().await {
            Ok(()) => {
                backoff.succeeded();
                return true;
            }
            Err(err) => {
                if backoff.failed(&err) == Next::Stop || backoff.wait(stop).await.is_err() {
                    return false;
                }
            }
        }
    }
}

/// Puts the jobs in hand back on their lanes so another replica can take them at once.
async fn hand_back(ctx: &Context, hand: VecDeque<Delivery>) {
    for delivery in hand {
        hand_back_one(ctx, &delivery).await;
    }
}

/// Puts one job this replica did not send back on its lane (one try: if Redis does not
/// take it, the entry stays pending and recovery takes it over after `--claim-idle`).
/// An entry that is not a job stays pending too; recovery dead-letters it.
async fn hand_back_one(ctx: &Context, delivery: &Delivery) {
    let Ok(job) = &delivery.job else { return };
    match ctx.settler.hand_back(delivery, job).await {
        Ok(Settled::Done) => {}
        Ok(other) => report_settled(Some(other), &job.id.to_string()),
        Err(err) => {
            tracing::warn!(job = %job.id, error = %err, "could not hand a job back; it stays pending for recovery")
        }
    }
}
