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
//! exits nor spins. On shutdown the dispatcher stops reading, hands the jobs in hand back to
//! the lane, and in-flight sends get `shutdown_grace` to finish.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::redis::AsyncCommands;
use herald_shared::dead_letter::DeadReason;
use herald_shared::job::Attempt;
use herald_shared::keys::Stat;
use herald_shared::redis_pool::MAX_BLOCK;
use herald_shared::redis_pool::Pool;
use herald_shared::validate::validate_request;
use herald_shared::wire::SendRequest;
use herald_shared::{Job, Lane, compose};
use rand::RngExt;
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::dead_letter::DeadLetter;
use crate::lanes::{Delivery, LaneReader, RedisFailure};
use crate::limiter::{AcquireError, SharedLimiter};
use crate::retry::{SendOutcome, Verdict, decide};
use crate::sender::Sender;
use crate::settings::Settings;
use crate::settle::{Settled, Settler};
use crate::telemetry;
use herald_shared::backoff::ReconnectBackoff;
use herald_shared::job::Outcome;

/// How often a replica records that it is alive.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A booking about to be sent looks for a newer OTP at most this often.
const OTP_PEEK_INTERVAL: Duration = Duration::from_millis(50);

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
}

impl StartError {
    /// 1 when the worker ran and stopped because part of it did; 2 when it could not start.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::TaskStopped(_) => 1,
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
}

/// Runs one replica until `shutdown` is cancelled, then drains and returns.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), StartError> {
    herald_shared::phone::warm_up();
    let pool = settings.redis.open(settings.concurrency + 8).await?;
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
    let ctx = Arc::new(Context {
        reader: LaneReader::new(
            pool.clone(),
            settings.keys.clone(),
            settings.consumer.clone(),
        ),
        settler: Settler::new(
            pool.clone(),
            settings.keys.clone(),
            settings.consumer.clone(),
        )
        .with_durability(settings.durability),
        limiter,
        sender,
        pool,
        settings,
    });
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

    // `stop` ends the dispatcher and every background task: on SIGTERM (`shutdown`), or
    // when the supervisor sees a background task stop on its own.
    let stop = shutdown.child_token();
    let mut background = Background::default();
    if let Some(addr) = ctx.settings.http_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|err| StartError::Http(format!("--http-listen {addr}: {err}")))?;
        let (pool, keys, stop) = (ctx.pool.clone(), ctx.settings.keys.clone(), stop.clone());
        background.spawn(
            "metrics server",
            telemetry::serve(listener, pool, keys, stop),
        );
    }
    if !wait_for_groups(&ctx, &shutdown).await {
        return Ok(());
    }
    let (pool, keys) = (ctx.pool.clone(), ctx.settings.keys.clone());
    background.spawn(
        "retry promoter",
        crate::delayed::run_promoter(pool, keys, stop.clone()),
    );
    background.spawn("heartbeat", heartbeat(ctx.clone(), stop.clone()));
    let (pool, keys) = (ctx.pool.clone(), ctx.settings.keys.clone());
    background.spawn(
        "code eraser",
        crate::erase::run_eraser(pool, keys, stop.clone()),
    );
    background.spawn(
        "keep-alive of held jobs",
        keep_alive(ctx.clone(), stop.clone()),
    );
    let supervisor = tokio::spawn(background.supervise(stop.clone()));

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
    let _ = remove_heartbeat(&ctx).await;
    tracing::info!("worker stopped");
    match failed {
        Some(task) => Err(StartError::TaskStopped(task)),
        None => Ok(()),
    }
}

/// The replica's background tasks, each with its name, watched by [`Background::supervise`]:
/// none of them may stop while the replica runs.
#[derive(Default)]
struct Background {
    tasks: JoinSet<()>,
    names: std::collections::HashMap<tokio::task::Id, &'static str>,
}

impl Background {
    fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// Waits until `stop`, then ends every task and returns `None`; or, when a task stops
    /// (or panics) first, marks the process not ready (`/readyz` answers 503), cancels
    /// `stop` so the replica winds down, and returns the task's name.
    async fn supervise(mut self, stop: CancellationToken) -> Option<&'static str> {
        let failed = tokio::select! {
            biased;
            _ = stop.cancelled() => None,
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
async fn keep_alive(ctx: Arc<Context>, stop: CancellationToken) {
    let every = recovery_interval(ctx.settings.claim_idle);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        match ctx.reader.keep_alive().await {
            Ok(lost) if !lost.is_empty() => {
                tracing::info!(
                    entries = lost.len(),
                    "jobs held here were taken over (this process was paused?); they will not be sent from here"
                );
            }
            Ok(_) => {}
            Err(err) => tracing::debug!(error = %err, "could not keep held jobs alive"),
        }
    }
}

/// Creates the consumer groups, retrying while Redis is unreachable. False on shutdown.
async fn wait_for_groups(ctx: &Context, shutdown: &CancellationToken) -> bool {
    let mut backoff = ReconnectBackoff::new("start-up");
    loop {
        match ctx.reader.ensure_groups().await {
            Ok(()) => {
                backoff.succeeded();
                return true;
            }
            Err(err) => {
                backoff.failed(&err);
                if backoff.wait(shutdown).await.is_err() {
                    return false;
                }
            }
        }
    }
}

/// Why one dispatcher step stopped early.
enum StepError {
    Cancelled,
    Redis(RedisFailure),
}

impl From<RedisFailure> for StepError {
    fn from(err: RedisFailure) -> Self {
        StepError::Redis(err)
    }
}

impl From<AcquireError> for StepError {
    fn from(err: AcquireError) -> Self {
        match err {
            AcquireError::Cancelled => StepError::Cancelled,
            AcquireError::Redis(e) => StepError::Redis(e.into()),
            AcquireError::Pool(e) => StepError::Redis(e.into()),
        }
    }
}

/// The dispatcher's state between steps. Owned by [`dispatch`] alone; dropped at shutdown,
/// after the jobs still in hand were taken out to be handed back.
struct Dispatcher<'a> {
    ctx: &'a Arc<Context>,
    /// Concurrency slots: the dispatcher takes one per send; each send task holds its permit
    /// until it has settled, and dropping it frees the slot.
    slots: Arc<Semaphore>,
    /// Delivered to this replica, not yet started. OTPs in front.
    hand: VecDeque<Delivery>,
    /// When to look for jobs dead replicas left pending next.
    next_claim: Instant,
    /// When the OTP lane was last read, so a waiting booking looks again at most every
    /// [`OTP_PEEK_INTERVAL`].
    last_otp_peek: Instant,
    /// When a booking was last read behind a flood of OTPs (at most every
    /// [`OTP_PEEK_INTERVAL`]).
    last_booking_peek: Instant,
    /// This replica's recent grants by lane, for the bookings' share.
    mix: LaneMix,
}

/// Runs the dispatcher until shutdown; returns the jobs still in hand.
async fn dispatch(
    ctx: &Arc<Context>,
    shutdown: &CancellationToken,
    sends: &mut JoinSet<()>,
) -> VecDeque<Delivery> {
    let mut d = Dispatcher {
        ctx,
        slots: Arc::new(Semaphore::new(ctx.settings.concurrency)),
        hand: VecDeque::new(),
        next_claim: Instant::now(),
        last_otp_peek: Instant::now(),
        last_booking_peek: Instant::now(),
        mix: LaneMix::new(ctx.settings.budget.rate.period),
    };
    let mut backoff = ReconnectBackoff::new("dispatcher");
    loop {
        while let Some(finished) = sends.try_join_next() {
            if let Err(err) = finished
                && err.is_panic()
            {
                tracing::error!(error = %err, "a send task panicked; its job stays pending for recovery");
            }
        }
        // Jobs waiting in hand while every slot is busy: budget another replica could use.
        let saturated = (!d.hand.is_empty() && d.slots.available_permits() == 0).then(Instant::now);
        let permit = tokio::select! {
            permit = d.slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = shutdown.cancelled() => break,
        };
        if let Some(since) = saturated {
            telemetry::record_saturated(since.elapsed());
        }
        match d.step(permit, shutdown, sends).await {
            Ok(()) => backoff.succeeded(),
            Err(StepError::Cancelled) => break,
            Err(StepError::Redis(err)) => {
                backoff.failed(&err);
                if backoff.wait(shutdown).await.is_err() {
                    break;
                }
            }
        }
    }
    d.hand
}

impl Dispatcher<'_> {
    async fn step(
        &mut self,
        permit: OwnedSemaphorePermit,
        shutdown: &CancellationToken,
        sends: &mut JoinSet<()>,
    ) -> Result<(), StepError> {
        let ctx = self.ctx;
        if Instant::now() >= self.next_claim {
            self.recover().await?;
        }
        if self.hand.is_empty() {
            self.fill(shutdown).await?;
        }
        self.triage(sends);
        if self.hand.is_empty() {
            return Ok(());
        }

        let grant = self.acquire(shutdown, sends).await?;
        let granted_at = Instant::now();
        if grant.lane == Lane::Booking && !grant.bookings_turn {
            // OTPs that arrived meanwhile take the tokens (an OTP may use a booking's token).
            self.peek_otps(grant.tokens as usize).await?;
        }
        self.mix.record(grant.lane, grant.tokens);

        let mut permit = Some(permit);
        for _ in 0..grant.tokens {
            let Some(delivery) = self.take(grant) else {
                break;
            };
            let permit = match permit.take() {
                Some(p) => p,
                None => self
                    .slots
                    .clone()
                    .try_acquire_owned()
                    .expect("only the dispatcher takes slots"),
            };
            let ctx = ctx.clone();
            sends.spawn(async move {
                process(&ctx, delivery, granted_at).await;
                drop(permit);
            });
        }
        Ok(())
    }

    /// Tokens for the job at the head of the hand: which lane they are for, and how many.
    /// While a booking waits, the OTP lane is looked at every [`OTP_PEEK_INTERVAL`], so an
    /// OTP that arrives behind a backlog asks for its own token (which the OTP reserve keeps
    /// free) at once; while OTPs hold the head and bookings fall below their share, a
    /// booking asks first.
    async fn acquire(
        &mut self,
        shutdown: &CancellationToken,
        sends: &mut JoinSet<()>,
    ) -> Result<Grant, StepError> {
        loop {
            self.triage(sends);
            let Some(head) = self.hand.front().map(|d| d.lane) else {
                return Ok(Grant {
                    lane: Lane::Otp,
                    tokens: 0,
                    bookings_turn: false,
                });
            };
            let behind = head == Lane::Otp && self.mix.bookings_behind(self.share());
            if behind && !self.has(Lane::Booking) {
                self.peek_bookings().await?;
            }
            let bookings_turn = behind && self.has(Lane::Booking);
            let lane = if bookings_turn { Lane::Booking } else { head };
            let want = self
                .hand
                .iter()
                .filter(|d| d.lane == lane)
                .count()
                .min(self.slots.available_permits() + 1) as u32;
            let (granted, wait_us) = self.ctx.limiter.try_acquire(lane, want).await?;
            if granted > 0 {
                return Ok(Grant {
                    lane,
                    tokens: granted,
                    bookings_turn,
                });
            }
            let mut wait = Duration::from_micros(wait_us.max(1000));
            if lane == Lane::Booking {
                wait = wait.min(OTP_PEEK_INTERVAL);
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return Err(StepError::Cancelled),
            }
            if lane == Lane::Booking {
                let room = self.slots.available_permits() + 1;
                self.peek_otps(room).await?;
            }
        }
    }

    /// The bookings' share of the budget, as a fraction of N.
    fn share(&self) -> f64 {
        let budget = self.ctx.limiter.budget();
        f64::from(budget.booking_share) / f64::from(budget.rate.requests.get())
    }

    fn has(&self, lane: Lane) -> bool {
        self.hand.iter().any(|d| d.lane == lane)
    }

    /// The next delivery `grant`'s token is spent on: an OTP first (it may use any token),
    /// unless it is the bookings' turn to catch up with their share; else a job of its lane.
    fn take(&mut self, grant: Grant) -> Option<Delivery> {
        let otp_first = grant.lane == Lane::Booking && !grant.bookings_turn;
        let index = otp_first
            .then(|| self.hand.iter().position(|d| d.lane == Lane::Otp))
            .flatten()
            .or_else(|| self.hand.iter().position(|d| d.lane == grant.lane))?;
        self.hand.remove(index)
    }

    /// Takes over jobs left pending by dead (or paused) replicas.
    async fn recover(&mut self) -> Result<(), StepError> {
        let ctx = self.ctx;
        self.next_claim = Instant::now() + recovery_interval(ctx.settings.claim_idle);
        for lane in Lane::ALL {
            let claimed = ctx
                .reader
                .claim_stale(lane, ctx.settings.claim_idle, 64)
                .await?;
            if !claimed.is_empty() {
                tracing::info!(lane = %lane, claimed = claimed.len(), "took over jobs left pending by another consumer");
                metrics::counter!("herald_jobs_reclaimed_total", "lane" => lane.as_str())
                    .increment(claimed.len() as u64);
            }
            for delivery in claimed {
                match lane {
                    Lane::Otp => self.hand.push_front(delivery),
                    Lane::Booking => self.hand.push_back(delivery),
                }
            }
        }
        Ok(())
    }

    /// Reads new jobs: OTPs first, then bookings (always room for one, so bookings can ask
    /// for their share behind a flood of OTPs); blocks briefly on both when idle.
    async fn fill(&mut self, shutdown: &CancellationToken) -> Result<(), StepError> {
        let reader = &self.ctx.reader;
        let want = self.slots.available_permits() + 1;
        let mut got = reader
            .read_now(Lane::Otp, want.saturating_sub(1).max(1))
            .await?;
        if got.len() < want {
            got.extend(reader.read_now(Lane::Booking, want - got.len()).await?);
        }
        if got.is_empty() {
            got = tokio::select! {
                read = reader.read_blocking(want, MAX_BLOCK) => read?,
                _ = shutdown.cancelled() => return Err(StepError::Cancelled),
            };
        }
        self.last_otp_peek = Instant::now();
        self.hand.extend(got);
        Ok(())
    }

    /// Dead-letters, without spending budget, what must not be sent.
    fn triage(&mut self, sends: &mut JoinSet<()>) {
        let now = OffsetDateTime::now_utc();
        let max_deliveries = self.ctx.settings.max_deliveries;
        let mut keep = VecDeque::with_capacity(self.hand.len());
        for delivery in self.hand.drain(..) {
            let reason = match &delivery.job {
                Err(bad) => Some(bad.reason()),
                Ok(_) if delivery.deliveries > max_deliveries => Some(DeadReason::Poison {
                    deliveries: delivery.deliveries,
                }),
                Ok(job) if job.is_expired(now) => Some(expired(job, false)),
                Ok(_) => None,
            };
            match reason {
                Some(reason) => {
                    let ctx = self.ctx.clone();
                    sends.spawn(async move { dead_letter(&ctx, delivery, reason).await });
                }
                None => keep.push_back(delivery),
            }
        }
        self.hand = keep;
    }

    /// Reads a booking behind a flood of OTPs, so bookings can ask for their share; at most
    /// every [`OTP_PEEK_INTERVAL`].
    async fn peek_bookings(&mut self) -> Result<(), StepError> {
        if self.last_booking_peek.elapsed() < OTP_PEEK_INTERVAL {
            return Ok(());
        }
        self.last_booking_peek = Instant::now();
        let bookings = self.ctx.reader.read_now(Lane::Booking, 1).await?;
        self.hand.extend(bookings);
        Ok(())
    }

    /// Looks for OTPs that arrived since the hand was filled and puts them in front, at most
    /// every [`OTP_PEEK_INTERVAL`].
    async fn peek_otps(&mut self, room: usize) -> Result<(), StepError> {
        if room == 0 || self.last_otp_peek.elapsed() < OTP_PEEK_INTERVAL {
            return Ok(());
        }
        self.last_otp_peek = Instant::now();
        let otps = self.ctx.reader.read_now(Lane::Otp, room).await?;
        for otp in otps.into_iter().rev() {
            self.hand.push_front(otp);
        }
        Ok(())
    }
}

/// Tokens granted for one lane.
#[derive(Clone, Copy, Debug)]
struct Grant {
    lane: Lane,
    tokens: u32,
    /// Asked for bookings that fell behind their share while OTPs held the head of the hand:
    /// the tokens go to bookings.
    bookings_turn: bool,
}

/// How often recovery looks for stale entries, and how often holds are kept alive: a
/// quarter of `--claim-idle`, 100 ms to 5 s.
fn recovery_interval(claim_idle: Duration) -> Duration {
    (claim_idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// Which lanes this replica's recent grants went to, over the last window: whether bookings
/// are getting their share.
struct LaneMix {
    window: Duration,
    grants: VecDeque<(Instant, Lane, u32)>,
}

impl LaneMix {
    fn new(window: Duration) -> LaneMix {
        LaneMix {
            window,
            grants: VecDeque::new(),
        }
    }

    fn record(&mut self, lane: Lane, tokens: u32) {
        let now = Instant::now();
        while self
            .grants
            .front()
            .is_some_and(|(at, _, _)| now.duration_since(*at) > self.window)
        {
            self.grants.pop_front();
        }
        if tokens > 0 {
            self.grants.push_back((now, lane, tokens));
        }
    }

    /// True when bookings got less than `share` of the recent grants.
    fn bookings_behind(&self, share: f64) -> bool {
        let (mut bookings, mut all) = (0u32, 0u32);
        for (_, lane, n) in &self.grants {
            all += n;
            if *lane == Lane::Booking {
                bookings += n;
            }
        }
        all > 0 && f64::from(bookings) < share * f64::from(all)
    }
}

/// Why `job` is dead-lettered as expired; `before_retry` when a retry would come too late.
fn expired(job: &Job, before_retry: bool) -> DeadReason {
    DeadReason::Expired {
        deadline: job.not_after,
        before_retry,
    }
}

/// Sends one job and settles it, in the order of the flow: check what must not be sent,
/// make sure the token is still good, send, record the attempt, cool everyone down on a
/// 429, decide, settle. Never panics on a bad job: it dead-letters it.
async fn process(ctx: &Context, delivery: Delivery, granted_at: Instant) {
    let job = match &delivery.job {
        Ok(job) => job.clone(),
        Err(bad) => {
            let reason = bad.reason();
            return dead_letter(ctx, delivery, reason).await;
        }
    };
    if !ctx.limiter.is_fresh(granted_at) {
        refresh_grant(ctx, delivery.lane, &job.id.to_string()).await;
    }
    let Some(request) = prepare(ctx, &delivery, &job).await else {
        return;
    };
    let outcome = send(ctx, delivery.lane, &request).await;
    let job = record_attempt(ctx, job, &outcome);
    if let SendOutcome::RateLimited { retry_after, .. } = &outcome {
        cool_down(ctx, &job, *retry_after).await;
    }
    let (failures, rate_limits) = budget_used(&job);
    let jitter = rand::rng().random_range(0.0..1.0);
    let verdict = decide(&outcome, failures, rate_limits, &ctx.settings.retry, jitter);
    settle(ctx, delivery, job, &outcome, verdict).await;
}

/// The checks right before a send, after every wait (for a token, a slot, a fresh grant):
/// a redelivered job that was already sent is acknowledged without sending; an expired or
/// invalid one is dead-lettered; one held long enough to have been taken over while this
/// process was paused is sent only if this replica still owns it. The request to send, or
/// `None` when the job was settled (or given up) here.
async fn prepare(ctx: &Context, delivery: &Delivery, job: &Job) -> Option<SendRequest> {
    let job_id = job.id.to_string();
    if delivery.taken_at.elapsed() > recovery_interval(ctx.settings.claim_idle)
        && !settle_until_done(|| ctx.reader.still_mine(delivery)).await?
    {
        tracing::info!(job = %job_id, entry = %delivery.entry_id, "another replica took this job over while it waited here; leaving it to that replica");
        metrics::counter!("herald_jobs_taken_over_total", "lane" => delivery.lane.as_str())
            .increment(1);
        return None;
    }
    if let Some(message_id) = settle_until_done(|| ctx.settler.already_sent(&job_id)).await? {
        tracing::info!(job = %job_id, %message_id, "already sent (redelivered); acknowledging without sending");
        let settled = settle_until_done(|| ctx.settler.drop_duplicate(delivery)).await;
        left_to_owner(settled, &job_id);
        return None;
    }
    if job.is_expired(OffsetDateTime::now_utc()) {
        dead_letter_job(ctx, delivery, job.clone(), expired(job, false)).await;
        return None;
    }
    let request = compose::render(job, ctx.settings.sms.as_ref());
    if let Err(err) = validate_request(&request) {
        let reason = DeadReason::Invalid {
            detail: err.to_string(),
        };
        dead_letter_job(ctx, delivery, job.clone(), reason).await;
        return None;
    }
    Some(request)
}

/// One HTTP call to Interakt, timed and counted.
async fn send(ctx: &Context, lane: Lane, request: &SendRequest) -> SendOutcome {
    let started = Instant::now();
    let outcome = ctx.sender.send(request).await;
    telemetry::record_send(lane, &outcome, started.elapsed());
    outcome
}

/// The job with this attempt appended to its history.
fn record_attempt(ctx: &Context, mut job: Job, outcome: &SendOutcome) -> Job {
    job.attempts.push(Attempt {
        at: OffsetDateTime::now_utc(),
        outcome: outcome.kind(),
        status: outcome.status(),
        error: outcome.error(),
        body: outcome.body().map(str::to_string),
        consumer: Some(ctx.settings.consumer.clone()),
    });
    job
}

/// After a 429: every replica pauses (the shared cool-down) and, once per episode, the
/// effective budget halves.
async fn cool_down(ctx: &Context, job: &Job, retry_after: Option<Duration>) {
    let started = ctx
        .limiter
        .cool_down(retry_after, ctx.settings.retry.backoff_base)
        .await;
    match started {
        Ok(cooldown) => {
            telemetry::record_budget(cooldown.effective);
            if cooldown.began_episode {
                tracing::warn!(job = %job.id, pause = ?cooldown.pause, effective = cooldown.effective, "Interakt answered 429; every replica pauses and the shared budget shrinks")
            } else {
                tracing::debug!(job = %job.id, pause = ?cooldown.pause, "another 429 of the same episode")
            }
        }
        Err(err) => {
            tracing::warn!(job = %job.id, error = %err, "Interakt answered 429; could not set the shared cool-down")
        }
    }
}

/// Carries out the verdict: sent, delayed for a retry (or dead if the retry would come after
/// the deadline), or dead.
async fn settle(
    ctx: &Context,
    delivery: Delivery,
    job: Job,
    outcome: &SendOutcome,
    verdict: Verdict,
) {
    let job_id = job.id.to_string();
    let lane = delivery.lane;
    let phone = herald_shared::phone::mask(&job.phone());
    match verdict {
        Verdict::Done { message_id } => {
            let message_id = message_id.unwrap_or_else(|| crate::settle::UNKNOWN_MESSAGE_ID.into());
            tracing::info!(job = %job_id, lane = %lane, phone = %phone, %message_id, "sent");
            let settled =
                settle_until_done(|| ctx.settler.sent(&delivery, &job, &message_id)).await;
            if settled == Some(Settled::NotOurs) {
                tracing::info!(job = %job_id, "sent and recorded; another replica holds the entry now and will find it sent");
            }
        }
        Verdict::RetryAfter { delay } => {
            let due = time::Duration::try_from(delay)
                .ok()
                .and_then(|delay| OffsetDateTime::now_utc().checked_add(delay));
            if job
                .not_after
                .is_some_and(|deadline| due.is_none_or(|due| due > deadline))
            {
                let reason = expired(&job, true);
                return dead_letter_job(ctx, &delivery, job, reason).await;
            }
            let stat = match outcome {
                SendOutcome::RateLimited { .. } => Stat::RateLimited,
                _ => Stat::Retried,
            };
            tracing::info!(job = %job_id, lane = %lane, phone = %phone, outcome = outcome.label(), delay = ?delay, "will retry");
            let settled =
                settle_until_done(|| ctx.settler.retry(&delivery, &job, delay, stat)).await;
            left_to_owner(settled, &job_id);
        }
        Verdict::Dead { reason } => dead_letter_job(ctx, &delivery, job, reason).await,
    }
}

/// Replaces a grant that went stale before its request could start (see
/// [`crate::limiter::default_margin`]) with a fresh one.
async fn refresh_grant(ctx: &Context, lane: Lane, job_id: &str) {
    tracing::debug!(job = %job_id, "grant went stale before sending; asking for a fresh one");
    metrics::counter!("herald_rate_stale_grants_total").increment(1);
    let never = CancellationToken::new();
    let mut backoff = ReconnectBackoff::new("rate limiter");
    loop {
        match ctx.limiter.acquire(lane, 1, &never).await {
            Ok(_) => return backoff.succeeded(),
            Err(err) => {
                backoff.failed(&err);
                let _ = backoff.wait(&never).await;
            }
        }
    }
}

/// How much of its retry budget a job has used: `(transient failures, 429s)`, counting only
/// the attempts since its last replay from the dead letters, so a replayed job starts afresh
/// while its history is kept.
fn budget_used(job: &Job) -> (u32, u32) {
    let current = job.attempts_since_replay();
    let count = |outcome: Outcome| current.iter().filter(|a| a.outcome == outcome).count() as u32;
    (count(Outcome::Transient), count(Outcome::RateLimited))
}

/// Dead-letters whatever `delivery` holds: its job, or the raw entry that is not one.
async fn dead_letter(ctx: &Context, delivery: Delivery, reason: DeadReason) {
    match &delivery.job {
        Ok(job) => dead_letter_job(ctx, &delivery, job.clone(), reason).await,
        Err(bad) => {
            let letter = DeadLetter {
                raw: Some(bad.raw.clone()),
                ..new_letter(
                    ctx,
                    format!("entry:{}", delivery.entry_id),
                    &delivery,
                    &reason,
                )
            };
            store_dead_letter(ctx, &delivery, letter, &reason).await;
        }
    }
}

async fn dead_letter_job(ctx: &Context, delivery: &Delivery, mut job: Job, reason: DeadReason) {
    // An OTP past its deadline can never be sent: its code is erased now (one that dies
    // earlier keeps it until its deadline, for a replay; see `crate::erase`).
    if job.is_expired(OffsetDateTime::now_utc()) {
        job.erase_code();
    }
    let job_id = job.id.to_string();
    let letter = DeadLetter {
        job: Some(job),
        ..new_letter(ctx, job_id, delivery, &reason)
    };
    store_dead_letter(ctx, delivery, letter, &reason).await;
}

fn new_letter(
    ctx: &Context,
    job_id: String,
    delivery: &Delivery,
    reason: &DeadReason,
) -> DeadLetter {
    DeadLetter::new(
        job_id,
        delivery.lane,
        reason,
        ctx.settings.consumer.clone(),
        OffsetDateTime::now_utc(),
    )
}

async fn store_dead_letter(
    ctx: &Context,
    delivery: &Delivery,
    letter: DeadLetter,
    reason: &DeadReason,
) {
    let phone = letter
        .job
        .as_ref()
        .map(|j| herald_shared::phone::mask(&j.phone()))
        .unwrap_or_default();
    tracing::warn!(job = %letter.job_id, lane = %letter.lane, phone = %phone, reason = %letter.reason, "dead-lettered");
    telemetry::record_dead(delivery.lane, reason.kind());
    let settled = settle_until_done(|| ctx.settler.dead(delivery, &letter)).await;
    left_to_owner(settled, &letter.job_id);
}

/// Says so when a settle found the entry owned by another replica (it took the job over
/// while this one was paused): that replica settles it; this one changed nothing.
fn left_to_owner(settled: Option<Settled>, job_id: &str) {
    if settled == Some(Settled::NotOurs) {
        tracing::info!(job = %job_id, "another replica took this job over; left to it");
        metrics::counter!("herald_settles_not_ours_total").increment(1);
    }
}

/// Runs a settling operation until Redis takes it: what a send did must not be forgotten
/// because Redis blinked. Returns `None` only if the task is aborted first (shutdown grace
/// over), in which case the job stays pending and is recovered by another replica.
async fn settle_until_done<T, F, Fut>(mut op: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RedisFailure>>,
{
    let mut backoff = ReconnectBackoff::new("settle");
    let never = CancellationToken::new();
    loop {
        match op().await {
            Ok(value) => {
                backoff.succeeded();
                return Some(value);
            }
            Err(err) => {
                backoff.failed(&err);
                backoff.wait(&never).await.ok()?;
            }
        }
    }
}

/// Puts the jobs in hand back on their lanes so another replica can take them at once.
async fn hand_back(ctx: &Context, hand: VecDeque<Delivery>) {
    for delivery in hand {
        // Entries that are not jobs stay pending; recovery dead-letters them.
        let Ok(job) = &delivery.job else { continue };
        match ctx.settler.hand_back(&delivery, &job.to_json()).await {
            Ok(Settled::Done) => {}
            Ok(Settled::NotOurs) => left_to_owner(Some(Settled::NotOurs), &job.id.to_string()),
            Err(err) => {
                tracing::warn!(job = %job.id, error = %err, "could not hand a job back; it stays pending for recovery")
            }
        }
    }
}

/// Records every few seconds that this consumer is alive, for `status`.
async fn heartbeat(ctx: Arc<Context>, shutdown: CancellationToken) {
    loop {
        let beat = async {
            let mut conn = ctx.pool.get().await.map_err(RedisFailure::from)?;
            let now_ms = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            let key = ctx.settings.keys.consumers();
            let _: () = conn
                .zadd(&key, &ctx.settings.consumer, now_ms as i64)
                .await?;
            let stale = (now_ms - 10 * HEARTBEAT.as_millis() as i128) as i64;
            let _: () = conn.zrembyscore(&key, "-inf", stale).await?;
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

async fn remove_heartbeat(ctx: &Context) -> Result<(), RedisFailure> {
    let mut conn = ctx.pool.get().await?;
    let _: () = conn
        .zrem(ctx.settings.keys.consumers(), &ctx.settings.consumer)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(outcome: Outcome) -> Attempt {
        Attempt {
            at: OffsetDateTime::UNIX_EPOCH,
            outcome,
            status: None,
            error: None,
            body: None,
            consumer: None,
        }
    }

    #[test]
    fn a_replayed_job_gets_a_fresh_budget_and_keeps_its_history() {
        let mut job = Job::otp("+919999999999", "1234", Duration::from_secs(60)).unwrap();
        use Outcome::{RateLimited, Transient};
        job.attempts = [Transient, RateLimited, Transient, Transient]
            .map(attempt)
            .to_vec();
        assert_eq!(
            budget_used(&job),
            (3, 1),
            "never replayed: everything counts"
        );

        job.attempts
            .push(Attempt::replayed(OffsetDateTime::UNIX_EPOCH, "exhausted"));
        assert_eq!(budget_used(&job), (0, 0), "right after a replay");

        job.attempts.extend([RateLimited, Transient].map(attempt));
        assert_eq!(budget_used(&job), (1, 1), "only attempts after the marker");
        assert_eq!(job.attempts.len(), 7, "the history is kept");

        job.attempts
            .push(Attempt::replayed(OffsetDateTime::UNIX_EPOCH, "exhausted"));
        job.attempts.push(attempt(Transient));
        assert_eq!(budget_used(&job), (1, 0), "the last marker wins");
    }

    #[tokio::test(start_paused = true)]
    async fn bookings_fall_behind_their_share_only_within_the_window() {
        let mut mix = LaneMix::new(Duration::from_secs(10));
        assert!(!mix.bookings_behind(0.1), "nothing granted yet");
        mix.record(Lane::Otp, 19);
        mix.record(Lane::Booking, 1);
        assert!(mix.bookings_behind(0.1), "1 of 20 is below 10%");
        mix.record(Lane::Booking, 2);
        assert!(!mix.bookings_behind(0.1), "3 of 22 is not");
        tokio::time::advance(Duration::from_secs(11)).await;
        mix.record(Lane::Otp, 5);
        assert!(mix.bookings_behind(0.1), "older grants left the window");
    }

    #[tokio::test(start_paused = true)]
    async fn a_background_task_that_stops_stops_the_worker_and_fails_readiness() {
        let stop = CancellationToken::new();
        let mut background = Background::default();
        background.spawn("heartbeat", std::future::pending());
        background.spawn("retry promoter", async {
            tokio::time::sleep(Duration::from_secs(3)).await;
        });
        let failed = background.supervise(stop.clone()).await;
        assert_eq!(failed, Some("retry promoter"));
        assert!(stop.is_cancelled(), "the dispatcher is told to wind down");
        assert_eq!(
            herald_shared::ops::broken().as_deref(),
            Some("the retry promoter stopped")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_named_too_and_a_requested_stop_is_no_failure() {
        let stop = CancellationToken::new();
        let mut background = Background::default();
        background.spawn("keep-alive of held jobs", async { panic!("boom") });
        assert_eq!(
            background.supervise(stop).await,
            Some("keep-alive of held jobs")
        );

        let stop = CancellationToken::new();
        let mut background = Background::default();
        let child = stop.clone();
        background.spawn("heartbeat", async move { child.cancelled().await });
        stop.cancel();
        assert_eq!(background.supervise(stop).await, None);
    }
}
