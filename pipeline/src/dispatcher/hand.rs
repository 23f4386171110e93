//! The dispatcher loop: the jobs this replica holds in hand, which lane asks for tokens and
//! which job a token goes to (OTPs first; the OTP lane looked at while another job waits;
//! the other lanes, which share what OTPs leave, when they fall behind their share, and
//! among themselves by weight: [`LaneTurns`]), recovery of dead replicas' jobs, and triage
//! of what must not be sent. Each granted token becomes a send task ([`super::send`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use herald_shared::Lane;
use herald_shared::redis_pool::MAX_BLOCK;
use herald_store::dead_letter::DeadReason;
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use herald_shared::backoff::{Next, ReconnectBackoff};

use super::Context;
use super::hold::Hold;
use super::send::{dead_letter, expired, process};
use crate::lanes::{Delivery, RedisFailure};
use crate::limiter::{AcquireError, Tokens};
use crate::telemetry;

/// A job waiting for a token looks for a newer OTP (and for jobs of the shared lanes absent
/// from the hand) at most this often.
const OTP_PEEK_INTERVAL: Duration = Duration::from_millis(50);

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
    /// Request slots (`--concurrency`): the dispatcher takes one per send; each send task
    /// holds it until Interakt has answered ([`Hold`]), and dropping it frees the slot.
    slots: Arc<Semaphore>,
    /// Settle slots, as many: what an answered send task holds until it is settled.
    settles: Arc<Semaphore>,
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
    /// This replica's recent grants by budget class, for the shared lanes' share.
    mix: LaneMix,
    /// The shared lanes' turns: which of them the next token of their class goes to.
    turns: LaneTurns,
    /// Whether the last ask for tokens got all it asked for: then the budget is not what
    /// limits this replica, and [`Dispatcher::fill`] reads ahead.
    unthrottled: bool,
    /// Whether the shared lanes had jobs at the last look: while the budget limits this
    /// replica, it then asks for their tokens before reading them ([`Self::token_first`]).
    shared_backlog: bool,
    /// Set after a Redis failure: the jobs in hand may be gone (Redis lost its data, or they
    /// were cancelled meanwhile), so the hand is checked before the next ask for tokens.
    verify_hand: bool,
}

/// Runs the dispatcher until shutdown; returns the jobs still in hand.
pub(super) async fn dispatch(
    ctx: &Arc<Context>,
    shutdown: &CancellationToken,
    sends: &mut JoinSet<()>,
) -> VecDeque<Delivery> {
    let mut d = Dispatcher::new(ctx);
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
                d.verify_hand = true;
                if backoff.failed(&err) == Next::Stop || backoff.wait(shutdown).await.is_err() {
                    break;
                }
            }
        }
    }
    d.hand
}

impl<'a> Dispatcher<'a> {
    /// Nothing in hand, every slot free.
    fn new(ctx: &'a Arc<Context>) -> Dispatcher<'a> {
        Dispatcher {
            ctx,
            slots: Arc::new(Semaphore::new(ctx.settings.concurrency)),
            settles: Arc::new(Semaphore::new(ctx.settings.concurrency)),
            hand: VecDeque::new(),
            next_claim: Instant::now(),
            last_otp_peek: Instant::now(),
            last_booking_peek: Instant::now(),
            mix: LaneMix::new(ctx.settings.budget.rate.period),
            turns: LaneTurns::new(ctx.settings.lane_weights),
            unthrottled: false,
            shared_backlog: false,
            verify_hand: false,
        }
    }

    /// While the budget is what limits this replica and the shared lanes have a backlog, it
    /// asks for their tokens first and reads their jobs once granted: each token then goes
    /// to the job whose turn it is at that moment (the lanes' turns here, the tenants' in
    /// Redis), whichever replica got it, and no job waits in one replica's hand while the
    /// others send. Otherwise (tokens to spare, or no backlog to know of) it reads first.
    fn token_first(&self) -> bool {
        !self.unthrottled && self.shared_backlog
    }

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
        if self.verify_hand {
            // One touch of every hold marks what left the hand meanwhile (triage drops it).
            ctx.reader.keep_alive().await?;
            self.verify_hand = false;
        }
        if self.hand.is_empty() {
            self.fill(shutdown).await?;
        }
        self.triage(sends);
        if self.hand.is_empty() && !self.token_first() {
            return Ok(());
        }

        let grant = self.acquire(shutdown, sends).await?;
        if grant.lane == Lane::Booking && !grant.bookings_turn {
            // OTPs that arrived meanwhile take the tokens (an OTP may use any token).
            self.peek_otps(grant.tokens.count() as usize).await?;
        }
        let unheld = (grant.tokens.count() as usize).saturating_sub(self.hand.len());
        if grant.lane == Lane::Booking && self.shared_backlog && unheld > 0 {
            // Asked for before the jobs were read (`token_first`).
            self.read_shared(unheld).await?;
        }
        self.mix.record(grant.lane, grant.tokens.count());

        let mut permit = Some(permit);
        let mut tokens = grant.tokens.iter();
        while let Some(token) = tokens.next() {
            let Some(mut delivery) = self.take(&grant) else {
                // No job left for it (the backlog ended): given back, not spent.
                for unused in std::iter::once(token).chain(tokens) {
                    ctx.limiter.refund(&unused).await;
                }
                break;
            };
            delivery.token = Some(token);
            let permit = match permit.take() {
                Some(p) => p,
                None => self
                    .slots
                    .clone()
                    .try_acquire_owned()
                    .expect("only the dispatcher takes slots"),
            };
            let (ctx, stop) = (ctx.clone(), shutdown.clone());
            let hold = Hold::new(permit, self.settles.clone());
            // Boxed: a send's future holds the whole send path (the HTTP request, the settle)
            // and is kilobytes large; a task moves its future when spawned and its stage when
            // finished, so unboxed those copies were a tenth of the worker's CPU.
            sends.spawn(Box::pin(async move {
                process(&ctx, delivery, hold, &stop).await
            }));
        }
        Ok(())
    }

    /// Tokens for the job at the head of the hand: which budget class they are for (OTPs,
    /// or the shared lanes: [`Lane::budget_class`]), and how many. While a job of the shared
    /// lanes waits, the OTP lane is looked at every [`OTP_PEEK_INTERVAL`], so an OTP that
    /// arrives behind a backlog asks for its own token (which the OTP reserve keeps free) at
    /// once, and so are the shared lanes absent from the hand, so a booking that arrives
    /// behind reminders or a campaign takes its turn at once; while OTPs hold the head and
    /// the shared lanes fall below their share, they ask first.
    async fn acquire(
        &mut self,
        shutdown: &CancellationToken,
        sends: &mut JoinSet<()>,
    ) -> Result<Grant, StepError> {
        loop {
            self.triage(sends);
            let head = match self.hand.front() {
                Some(delivery) => delivery.lane.budget_class(),
                // Asked for before the jobs are read (`token_first`).
                None if self.token_first() => Lane::Booking,
                None => {
                    return Ok(Grant {
                        lane: Lane::Otp,
                        tokens: Tokens::none(),
                        bookings_turn: false,
                    });
                }
            };
            let behind = head == Lane::Otp && self.mix.bookings_behind(self.share());
            if behind && !self.has_shared() {
                self.peek_bookings().await?;
            }
            let bookings_turn = behind && self.has_shared();
            let lane = if bookings_turn { Lane::Booking } else { head };
            let room = self.slots.available_permits() + 1;
            let want = if lane == Lane::Booking && self.token_first() {
                room
            } else {
                self.hand
                    .iter()
                    .filter(|d| d.lane.budget_class() == lane)
                    .count()
                    .min(room)
            } as u32;
            let (granted, wait_us) = self.ctx.limiter.try_acquire(lane, want).await?;
            self.unthrottled = granted.count() == want;
            tracing::trace!(lane = %lane, want, granted = granted.count(), wait_us, in_hand = self.hand.len(), "asked for tokens");
            if granted.count() > 0 {
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
                if !self.token_first() {
                    self.peek_absent().await?;
                }
            }
        }
    }

    /// The shared lanes' share of the budget, as a fraction of N.
    fn share(&self) -> f64 {
        let budget = self.ctx.limiter.budget();
        f64::from(budget.booking_share) / f64::from(budget.rate.requests.get())
    }

    fn has(&self, lane: Lane) -> bool {
        self.hand.iter().any(|d| d.lane == lane)
    }

    fn has_shared(&self) -> bool {
        self.hand.iter().any(|d| !d.lane.is_otp())
    }

    /// The next delivery `grant`'s token is spent on: an OTP first (it may use any token),
    /// unless it is the shared lanes' turn to catch up with their share; else a job of the
    /// shared lane whose turn it is ([`LaneTurns`]).
    fn take(&mut self, grant: &Grant) -> Option<Delivery> {
        let otp_first = grant.lane == Lane::Otp || !grant.bookings_turn;
        if let Some(index) = otp_first
            .then(|| self.hand.iter().position(|d| d.lane == Lane::Otp))
            .flatten()
        {
            return self.hand.remove(index);
        }
        if grant.lane == Lane::Otp {
            return None;
        }
        let hand = &self.hand;
        let lane = self
            .turns
            .next(|lane| hand.iter().any(|d| d.lane == lane))?;
        let index = self.hand.iter().position(|d| d.lane == lane)?;
        self.turns.served(lane);
        self.hand.remove(index)
    }

    /// Adds `deliveries` to the hand: OTPs in front, the others behind, their lanes taking
    /// their turns.
    fn add(&mut self, deliveries: Vec<Delivery>) {
        for delivery in deliveries {
            if delivery.lane.is_otp() {
                self.hand.push_front(delivery);
            } else {
                self.turns.found(delivery.lane, true);
                self.shared_backlog = true;
                self.hand.push_back(delivery);
            }
        }
    }

    /// Reads up to `count` jobs of the shared lanes for tokens already granted, the lane
    /// whose turn it is first (each lane is looked at, so one that came to have jobs behind
    /// another's backlog takes its turn at once); finding fewer ends the backlog.
    async fn read_shared(&mut self, count: usize) -> Result<(), StepError> {
        let mut got = Vec::new();
        for lane in self.turns.order() {
            if got.len() >= count {
                break;
            }
            let read = self.ctx.reader.read_now(lane, count - got.len()).await?;
            self.turns.found(lane, !read.is_empty());
            got.extend(read);
        }
        if got.len() < count {
            self.shared_backlog = false;
        }
        self.add(got);
        Ok(())
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
            self.add(claimed);
        }
        Ok(())
    }

    /// Reads new jobs: OTPs first (as many as there are free slots), then the shared lanes
    /// (always room for one, so they can ask for their share behind a flood of OTPs);
    /// blocks briefly on all when idle. While the budget is what limits this replica, one
    /// job of the shared lanes: enough to learn they have a backlog, whose jobs are then
    /// read as their tokens are granted ([`Dispatcher::token_first`]); while it is not
    /// ([`Dispatcher::unthrottled`]), up to the concurrency.
    async fn fill(&mut self, shutdown: &CancellationToken) -> Result<(), StepError> {
        let reader = &self.ctx.reader;
        let free = self.slots.available_permits() + 1;
        // With tokens to spare, read ahead up to the concurrency: reading only as many as
        // there are free slots would make the reads, one round trip a step, what paces sends.
        let want = if self.unthrottled {
            free.max(self.ctx.settings.concurrency)
        } else {
            free
        };
        let mut got = reader
            .read_now(Lane::Otp, want.saturating_sub(1).max(1))
            .await?;
        if self.token_first() {
            // The shared lanes' jobs are read once their tokens are granted.
            self.add(got);
            return Ok(());
        }
        let want = if self.unthrottled {
            want
        } else {
            got.len() + 1
        };
        // The shared lanes by their turns; what one has not, the next may.
        for lane in self.turns.order() {
            if got.len() >= want {
                break;
            }
            let read = reader.read_now(lane, want - got.len()).await?;
            self.turns.found(lane, !read.is_empty());
            got.extend(read);
        }
        if got.is_empty() {
            got = tokio::select! {
                read = reader.read_blocking(want, MAX_BLOCK) => read?,
                _ = shutdown.cancelled() => return Err(StepError::Cancelled),
            };
        }
        self.last_otp_peek = Instant::now();
        self.last_booking_peek = Instant::now();
        self.add(got);
        Ok(())
    }

    /// Drops what left the hand meanwhile (taken over, cancelled, settled elsewhere, lost
    /// with Redis's data: the keep-alive marks it), and dead-letters, without spending
    /// budget, what must not be sent.
    fn triage(&mut self, sends: &mut JoinSet<()>) {
        let now = OffsetDateTime::now_utc();
        let max_deliveries = self.ctx.settings.max_deliveries;
        let mut keep = VecDeque::with_capacity(self.hand.len());
        for delivery in self.hand.drain(..) {
            if let Some(lost) = delivery.hold.as_ref().and_then(|hold| hold.lost()) {
                tracing::debug!(entry = %delivery.entry_id, lane = %delivery.lane, ?lost, "left the hand unsent");
                continue;
            }
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

    /// Reads a job of the shared lanes behind a flood of OTPs (the lane whose turn it is
    /// first), so they can ask for their share; at most every [`OTP_PEEK_INTERVAL`].
    async fn peek_bookings(&mut self) -> Result<(), StepError> {
        if self.last_booking_peek.elapsed() < OTP_PEEK_INTERVAL {
            return Ok(());
        }
        self.last_booking_peek = Instant::now();
        for lane in self.turns.order() {
            let read = self.ctx.reader.read_now(lane, 1).await?;
            if !read.is_empty() {
                self.add(read);
                break;
            }
        }
        Ok(())
    }

    /// Reads one job of each shared lane that has none in hand, so a lane that comes to
    /// have jobs behind another's backlog takes its turn at once; at most every
    /// [`OTP_PEEK_INTERVAL`].
    async fn peek_absent(&mut self) -> Result<(), StepError> {
        if self.last_booking_peek.elapsed() < OTP_PEEK_INTERVAL {
            return Ok(());
        }
        self.last_booking_peek = Instant::now();
        for lane in Lane::SHARED {
            if !self.has(lane) {
                let read = self.ctx.reader.read_now(lane, 1).await?;
                self.add(read);
            }
        }
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
        self.add(otps.into_iter().rev().collect());
        Ok(())
    }
}

/// Tokens granted for one budget class ([`Lane::budget_class`]: OTPs, or the shared lanes).
#[derive(Clone, Debug)]
struct Grant {
    lane: Lane,
    tokens: Tokens,
    /// Asked for bookings that fell behind their share while OTPs held the head of the hand:
    /// the tokens go to bookings.
    bookings_turn: bool,
}

/// How often recovery looks for stale entries, and how often holds are kept alive: a
/// quarter of `--claim-idle`, 100 ms to 5 s.
pub(super) fn recovery_interval(claim_idle: Duration) -> Duration {
    (claim_idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// The shared lanes' turns in this replica: weighted fair queuing. Each lane's virtual time
/// grows by 1 / its weight for each token it gets; the lane with jobs and the lowest goes
/// next, so with backlogs in several, each gets its weight's share, and a lane with none
/// leaves its share to the others (work-conserving). A lane found to have jobs after none
/// enters at the current virtual time (the lowest of the lanes with jobs): no credit saved
/// while it was idle.
struct LaneTurns {
    weights: crate::settings::LaneWeights,
    time: [f64; 3],
    /// The lanes found to have jobs at their last read.
    active: [bool; 3],
}

impl LaneTurns {
    fn new(weights: crate::settings::LaneWeights) -> LaneTurns {
        LaneTurns {
            weights,
            time: [0.0; 3],
            active: [false; 3],
        }
    }

    fn slot(lane: Lane) -> usize {
        Lane::SHARED
            .iter()
            .position(|l| *l == lane)
            .expect("a shared lane")
    }

    /// The lane among those `present` whose turn it is.
    fn next(&self, present: impl Fn(Lane) -> bool) -> Option<Lane> {
        Lane::SHARED
            .into_iter()
            .filter(|lane| present(*lane))
            .min_by(|a, b| self.time[Self::slot(*a)].total_cmp(&self.time[Self::slot(*b)]))
    }

    /// The shared lanes, whose turn comes first first.
    fn order(&self) -> Vec<Lane> {
        let mut lanes = Lane::SHARED.to_vec();
        lanes.sort_by(|a, b| self.time[Self::slot(*a)].total_cmp(&self.time[Self::slot(*b)]));
        lanes
    }

    fn served(&mut self, lane: Lane) {
        self.time[Self::slot(lane)] += 1.0 / f64::from(self.weights.of(lane));
    }

    /// A read of `lane` found jobs, or none. Found after none, it enters at the lowest
    /// virtual time of the other lanes with jobs if it is behind it.
    fn found(&mut self, lane: Lane, jobs: bool) {
        let slot = Self::slot(lane);
        if jobs && !self.active[slot] {
            let now = Lane::SHARED
                .into_iter()
                .filter(|l| *l != lane && self.active[Self::slot(*l)])
                .map(|l| self.time[Self::slot(l)])
                .min_by(f64::total_cmp);
            if let Some(now) = now {
                self.time[slot] = self.time[slot].max(now);
            }
        }
        self.active[slot] = jobs;
    }
}

/// Which budget class this replica's recent grants went to, over the last window: whether
/// the shared lanes are getting their share.
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

    /// True when the shared lanes got less than `share` of the recent grants.
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

#[cfg(test)]
mod tests {
    use super::*;
    use herald_tests::scenario::{SandboxSetup, Scenario, booking};

    /// Every slot busy (three sending, one held by the step itself): while tokens are not
    /// known to be plentiful the dispatcher reads one job, for the step's own slot; once an
    /// ask for tokens got all it asked for, it reads ahead up to the concurrency.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_replica_reads_ahead_only_while_its_asks_for_tokens_are_met() {
        let mut s = Scenario::start(SandboxSetup::default()).await;
        let ctx = super::super::tests::context(&s, Duration::from_secs(60)).await;
        assert_eq!(ctx.settings.concurrency, 4);
        s.enqueue(&(0..20).map(booking).collect::<Vec<_>>()).await;
        let mut d = Dispatcher::new(&ctx);
        let _busy = d.slots.clone().try_acquire_many_owned(4).unwrap();
        let shutdown = CancellationToken::new();

        assert!(d.fill(&shutdown).await.is_ok());
        assert_eq!(
            d.hand.len(),
            1,
            "not known to be unthrottled: free slots + 1"
        );

        let mut sends = JoinSet::new();
        let grant = d.acquire(&shutdown, &mut sends).await.ok().unwrap();
        assert_eq!(grant.tokens.count(), 1, "100/1s has room for one");
        assert!(d.unthrottled, "the ask got all it asked for");

        d.hand.clear();
        assert!(d.fill(&shutdown).await.is_ok());
        assert_eq!(d.hand.len(), 4, "reads ahead up to the concurrency");
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
}
