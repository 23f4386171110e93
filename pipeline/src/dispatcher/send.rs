//! One send task, in the order of the flow: check what must not be sent (already sent,
//! expired, invalid, taken over), make sure the token is still good, send, record the
//! attempt, cool every replica down on a 429, decide ([`crate::retry`]), settle
//! ([`crate::settle`]): sent, delayed for a retry, or dead-lettered.

use std::time::Duration;

use herald_shared::backoff::{Next, ReconnectBackoff};
use herald_shared::job::{Attempt, Outcome};
use herald_shared::validate::{PhoneCheck, validate_serialized};
use herald_shared::{Job, Lane};
use herald_store::dead_letter::{DeadLetter, DeadReason};
use herald_store::keys::Stat;
use rand::RngExt;
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::hold::Hold;
use super::{Context, hand_back_one};
use crate::lanes::{Delivery, RedisFailure};
use crate::limiter::{AcquireError, ProbeAnswer, ProbeOutcome, Token};
use crate::retry::{SendOutcome, Verdict, decide};
use crate::settle::{BeginSend, Settled};
use crate::{spans, telemetry};
use herald_shared::traces::JobSpan;

/// Why `job` is dead-lettered as expired; `before_retry` when a retry would come too late.
pub(super) fn expired(job: &Job, before_retry: bool) -> DeadReason {
    DeadReason::Expired {
        deadline: job.not_after,
        before_retry,
    }
}

/// Fresh grants one send asks for at most, when the grant it holds went stale before its
/// request could start; then it hands its job back to the lane. A grant that keeps going
/// stale means the check before the send outlasts half the margin (Redis stalled, the
/// process starved): asking again without end would spend shared tokens and send nothing.
pub(super) const MAX_REFRESHES: u32 = 3;

/// Why a send task gave its job back to the lane unsent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GaveBack {
    /// Its grant went stale [`MAX_REFRESHES`] + 1 times in a row.
    StaleGrants,
    /// The replica is shutting down while it waited for a fresh grant.
    ShuttingDown,
}

/// Sends one job and settles it, in the order of the flow: make sure the token is still
/// good, check what must not be sent, make sure the token is still good after that check,
/// send, record the attempt, cool everyone down on a 429, decide, settle. Never panics on a
/// bad job: it dead-letters it. `hold` is the task's request slot, traded for a settle slot
/// once Interakt has answered (and, on a 429, once every replica is cooling down). `stop`
/// (the replica's shutdown) ends a wait for a fresh grant: the job is handed back, as it
/// is after [`MAX_REFRESHES`] fresh grants that went stale too.
pub(super) async fn process(
    ctx: &Context,
    mut delivery: Delivery,
    mut hold: Hold,
    stop: &CancellationToken,
) {
    let job = match &delivery.job {
        Ok(job) => job.clone(),
        Err(bad) => {
            let reason = bad.reason();
            return Box::pin(dead_letter(ctx, delivery, reason)).await;
        }
    };
    // Ends when this function returns: after the settle, or wherever the job stops here.
    let span = spans::process(delivery.lane, &job);
    let fresh = |delivery: &Delivery| {
        delivery
            .token
            .as_ref()
            .is_some_and(|token| ctx.limiter.is_fresh(token))
    };
    let mut refreshes = 0;
    let body = loop {
        if !fresh(&delivery) {
            if refreshes == MAX_REFRESHES {
                return give_back(ctx, delivery, &job, GaveBack::StaleGrants).await;
            }
            refreshes += 1;
            // No request went out under the stale grant: it goes back to the budget.
            if let Some(stale) = delivery.token.take() {
                ctx.limiter.refund(&stale).await;
            }
            let job_id = job.id.to_string();
            match Box::pin(refresh_grant(ctx, delivery.lane, &job_id, stop)).await {
                Some(token) => delivery.token = Some(token),
                None => return give_back(ctx, delivery, &job, GaveBack::ShuttingDown).await,
            }
        }
        let probe = delivery.token.as_ref().filter(|t| t.is_probe()).cloned();
        let Some(body) = Box::pin(prepare(ctx, &mut delivery, &job)).await else {
            // Not sent: the probe's turn goes to the next.
            if let Some(probe) = probe {
                ctx.limiter.release_probe(&probe).await;
            }
            return;
        };
        // The check is a round trip to Redis, retried through an outage: it can outlast the
        // grant. A request sent on such a grant could reach Interakt after its log entry
        // left the window (one request too many there), so it gets a fresh grant and the
        // check runs again (for the owner of a job marked `sending`, it changes nothing).
        if fresh(&delivery) {
            break body;
        }
    };
    let outcome = Box::pin(send(ctx, &job, body, &span)).await;
    let job = record_attempt(ctx, job, &outcome);
    let token = delivery.token.as_ref();
    if let SendOutcome::RateLimited { retry_after, .. } = &outcome {
        Box::pin(cool_down(ctx, &job, token, *retry_after)).await;
    } else if let Some(probe) = token.filter(|t| t.is_probe()) {
        Box::pin(probe_answered(ctx, &job, probe, &outcome)).await;
    }
    hold.answered().await;
    let (failures, rate_limits) = budget_used(&job);
    let jitter = rand::rng().random_range(0.0..1.0);
    let verdict = decide(&outcome, failures, rate_limits, &ctx.settings.retry, jitter);
    spans::decided(&span, &outcome, &verdict);
    Box::pin(settle(ctx, delivery, job, &outcome, verdict)).await;
}

/// How long a job waits behind an older job of its replace key still being sent before it
/// is looked at again (the older one's request is then answered, or timed out).
const DEFER_BEHIND_OLDER: Duration = Duration::from_millis(500);

/// The checks right before a send, after every wait (for a token, a slot, a fresh grant),
/// in one script and one round trip ([`crate::settle::Settler::begin_send`]): a job another
/// replica took over while this process was paused is left to it; one that left this
/// replica's hand meanwhile (cancelled, superseded, settled elsewhere, lost with Redis's
/// data) is forgotten; a redelivered job that was already sent, and one stopped while an
/// earlier attempt was under way, are acknowledged without sending; an expired one is
/// dead-lettered; one behind an older job of its replace key still being sent waits. In
/// every such case the token goes back to the budget, unspent. Then the job's record says
/// `sending` (a cancel from now on is too late for this attempt) and an invalid request is
/// dead-lettered, its token given back too. The request to send, as JSON, or `None` when the
/// job was settled (or given up) here. A job dead-lettered here leaves `delivery` without its
/// token: the dead letter's settle must not charge a request that was never made (a charge
/// puts an entry that left the log back).
async fn prepare(ctx: &Context, delivery: &mut Delivery, job: &Job) -> Option<Vec<u8>> {
    let job_id = job.id.to_string();
    let lane = delivery.lane.as_str();
    match settle_until_done(|| ctx.settler.begin_send(delivery, job)).await? {
        BeginSend::Send(record) => delivery.record = record,
        BeginSend::TakenOver(_) => {
            tracing::info!(job = %job_id, entry = %delivery.entry_id, "another replica took this job over while it waited here; leaving it to that replica");
            metrics::counter!("herald_jobs_taken_over_total", "lane" => lane).increment(1);
            return None;
        }
        BeginSend::Gone(state) => {
            let state = state.map_or("unknown", |s| s.as_str());
            tracing::info!(job = %job_id, lane, state, "no longer held here (cancelled, superseded, settled elsewhere, or lost with Redis's data); not sent, its token given back");
            if matches!(state, "cancelled" | "superseded") {
                metrics::counter!("herald_jobs_cancelled_total", "lane" => lane).increment(1);
            }
            return None;
        }
        BeginSend::AlreadySent(message_id) => {
            tracing::info!(job = %job_id, %message_id, "already sent (redelivered); acknowledged without sending");
            return None;
        }
        BeginSend::Stopped(state) => {
            let state = state.map_or("unknown", |s| s.as_str());
            tracing::info!(job = %job_id, lane, state, "stopped (cancelled or superseded) before this attempt, or recorded as finished; dropped, not sent");
            metrics::counter!("herald_jobs_cancelled_total", "lane" => lane).increment(1);
            return None;
        }
        BeginSend::Expired => {
            // begin_send gave the token back.
            delivery.token = None;
            dead_letter_job(ctx, delivery, job.clone(), expired(job, false)).await;
            return None;
        }
        BeginSend::WaitsFor(older) => {
            tracing::info!(job = %job_id, %older, "an older job of its replace key is still being sent; this one waits so it cannot be overtaken");
            let settled =
                settle_until_done(|| ctx.settler.defer(delivery, job, DEFER_BEHIND_OLDER)).await;
            report_settled(settled, &job_id);
            return None;
        }
    }
    let request = job.render(ctx.settings.sms.as_ref());
    // Serialized once: validated (its size) and sent as these bytes.
    let body = serde_json::to_vec(&request).expect("a send request serializes");
    // The number was checked for its country at enqueue: only its split is checked here.
    if let Err(err) = validate_serialized(&request, &body, PhoneCheck::Split) {
        let reason = DeadReason::Invalid {
            detail: err.to_string(),
        };
        if let Some(unspent) = delivery.token.take() {
            ctx.limiter.refund(&unspent).await;
        }
        dead_letter_job(ctx, delivery, job.clone(), reason).await;
        return None;
    }
    Some(body)
}

/// One HTTP call to Interakt, timed and counted (metrics, the dashboard's history, and a
/// child span of `process` when traced).
async fn send(ctx: &Context, job: &Job, body: Vec<u8>, process: &JobSpan) -> SendOutcome {
    let request = spans::request(process, ctx.sender.url(), job.attempts_since_replay().len());
    let started = Instant::now();
    let outcome = ctx.sender.send(body).await;
    telemetry::record_send(&ctx.history, job, &outcome, started.elapsed());
    spans::answered(request, &outcome);
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
/// effective budget halves. The 429 of the cool-down's probe keeps the pause.
async fn cool_down(ctx: &Context, job: &Job, token: Option<&Token>, retry_after: Option<Duration>) {
    let started = ctx
        .limiter
        .rate_limited(token, retry_after, ctx.settings.retry.backoff_base)
        .await;
    let probe = token.is_some_and(Token::is_probe);
    if probe {
        telemetry::record_probe(ProbeOutcome::RateLimited);
    }
    match started {
        Ok(cooldown) => {
            telemetry::record_budget(cooldown.effective);
            if probe {
                tracing::info!(job = %job.id, pause = ?cooldown.pause, "the cool-down's probe was answered 429; every replica stays paused")
            } else if cooldown.began_episode {
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

/// The cool-down's probe answered other than 429: a 2xx ends the pause for every replica
/// (sending resumes at the effective budget); anything else lets the next probe go an
/// interval later.
async fn probe_answered(ctx: &Context, job: &Job, probe: &Token, outcome: &SendOutcome) {
    let (answer, counted) = if outcome.is_2xx() {
        (ProbeAnswer::Room, ProbeOutcome::Ok)
    } else {
        (ProbeAnswer::Unknown, ProbeOutcome::Failed)
    };
    telemetry::record_probe(counted);
    match ctx.limiter.probe_answered(probe, answer).await {
        Ok(true) => {
            tracing::info!(job = %job.id, "the cool-down's probe was answered 2xx; every replica sends again, at the effective budget")
        }
        Ok(false) => {
            tracing::debug!(job = %job.id, outcome = outcome.label(), "the cool-down's probe was answered; the pause goes on")
        }
        Err(err) => {
            tracing::warn!(job = %job.id, error = %err, "could not record the cool-down's probe's answer; the pause runs its course")
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
            match settled {
                Some(done) if !done.acknowledged => {
                    tracing::info!(job = %job_id, "sent and recorded; another replica holds the entry now and will find it sent")
                }
                Some(done) if !done.recorded => {
                    tracing::info!(job = %job_id, "sent; it was recorded as sent before (a settle that ran again, or a copy another replica sent too)")
                }
                _ => {}
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
            report_settled(settled, &job_id);
        }
        Verdict::Dead { reason } => dead_letter_job(ctx, &delivery, job, reason).await,
    }
}

/// Replaces a grant that went stale before its request could start (see
/// [`crate::limiter::default_margin`]) with a fresh one; `None` once `stop` is cancelled
/// (the wait, for a token or through a Redis outage, never holds up a shutdown).
async fn refresh_grant(
    ctx: &Context,
    lane: Lane,
    job_id: &str,
    stop: &CancellationToken,
) -> Option<Token> {
    tracing::debug!(job = %job_id, "grant went stale before sending; asking for a fresh one");
    metrics::counter!("herald_rate_stale_grants_total").increment(1);
    let mut backoff = ReconnectBackoff::new("rate limiter");
    loop {
        match ctx.limiter.acquire(lane, 1, stop).await {
            Ok(tokens) => {
                backoff.succeeded();
                if let Some(token) = tokens.iter().next() {
                    return Some(token);
                }
            }
            Err(AcquireError::Cancelled) => return None,
            Err(AcquireError::Redis(err)) => retry(&mut backoff, err.into(), stop).await?,
            Err(AcquireError::Pool(err)) => retry(&mut backoff, err.into(), stop).await?,
        }
    }
}

/// Hands `delivery`'s job back to its lane unsent, for any replica to take at once, gives its
/// stale token back, and says why.
async fn give_back(ctx: &Context, mut delivery: Delivery, job: &Job, why: GaveBack) {
    if let Some(stale) = delivery.token.take() {
        ctx.limiter.refund(&stale).await;
    }
    match why {
        GaveBack::StaleGrants => tracing::warn!(
            job = %job.id,
            refreshes = MAX_REFRESHES,
            margin = ?ctx.settings.budget.margin,
            "every fresh grant went stale before its request could start (the check before the send takes longer than half --rate-margin: Redis slow, or this process starved); handing the job back instead of spending more tokens"
        ),
        GaveBack::ShuttingDown => tracing::info!(
            job = %job.id,
            "shutting down while waiting for a fresh grant; handing the job back"
        ),
    }
    hand_back_one(ctx, &delivery).await;
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
pub(super) async fn dead_letter(ctx: &Context, delivery: Delivery, reason: DeadReason) {
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
    telemetry::record_dead(&ctx.history, delivery.lane, reason.kind());
    let settled = settle_until_done(|| ctx.settler.dead(delivery, &letter)).await;
    report_settled(settled, &letter.job_id);
}

/// Says what a settle that did not simply happen came to: the entry owned by another
/// replica (it took the job over while this one was paused: that replica settles it); a stop
/// noted while the job was sending, which ended it instead (never retried or
/// dead-lettered); or a step the lifecycle refused (the record says the job is finished).
pub(super) fn report_settled(settled: Option<Settled>, job_id: &str) {
    match settled {
        Some(Settled::NotOurs) => {
            tracing::info!(job = %job_id, "another replica took this job over; left to it");
            metrics::counter!("herald_settles_not_ours_total").increment(1);
        }
        Some(Settled::Stopped(state)) => {
            let state = state.map_or("unknown", |s| s.as_str());
            tracing::info!(job = %job_id, state, "stopped while this attempt was under way: not retried, not dead-lettered");
        }
        Some(Settled::Refused(state)) => {
            let state = state.map_or("unknown", |s| s.as_str());
            tracing::warn!(job = %job_id, state, "its record says it is finished; this copy was dropped");
            metrics::counter!("herald_lifecycle_refused_total", "state" => state).increment(1);
        }
        Some(Settled::Done) | None => {}
    }
}

/// Runs a settling operation until Redis takes it: what a send did must not be forgotten
/// because Redis blinked. Returns `None` only on a refusal no retry can help (the replica
/// stops), and the task never returns if it is aborted first (shutdown grace over): either
/// way the job stays pending and is recovered by another replica.
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
            Err(err) => retry(&mut backoff, err, &never).await?,
        }
    }
}

/// After a failed call: `Some` once the backoff's wait is over; `None` when no retry can help
/// (the refusal stops the replica; the job stays pending for recovery) or `stop` ended the
/// wait.
async fn retry(
    backoff: &mut ReconnectBackoff,
    err: RedisFailure,
    stop: &CancellationToken,
) -> Option<()> {
    match backoff.failed(&err) {
        Next::Retry => backoff.wait(stop).await.ok(),
        Next::Stop => None,
    }
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
}
