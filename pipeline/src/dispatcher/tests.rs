//! One send task ([`super::send::process`]) against a real redis-server and the sandbox,
//! with a grant that went stale before its send: the fresh grant is waited for first, and
//! the job's deadline and this replica's ownership are checked after that wait, so a wait
//! that outlasts either never ends in a send. A send asks for at most
//! [`super::send::MAX_REFRESHES`] fresh grants, and a shutdown ends its wait for one: either
//! way its job goes back to the lane.
//!
//! The wait is a shared cool-down set in Redis (as a 429 would set it), longer than the
//! OTP's validity or than another replica needs to take the job over: the order of the
//! checks decides the outcome, not the timing.

use std::sync::Arc;
use std::time::Duration;

use herald_shared::redis_pool::Target;
use herald_shared::{Job, Lane};
use herald_store::dead_letter::DeadKind;
use herald_store::durability::Durability;
use herald_store::keys::WORKER_GROUP;
use herald_tests::scenario::{SandboxSetup, Scenario, booking, otp, phone};
use herald_tests::{TEST_API_KEY, wait_until};
use redis::AsyncCommands;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Context;
use super::hold::Hold;
use super::send::process;
use crate::lanes::Delivery;
use crate::limiter::{Budget, Token};
use crate::retry::RetryPolicy;
use crate::settings::Settings;

/// The cool-down every replica waits out before its fresh grant.
const PAUSE: Duration = Duration::from_secs(4);

/// This replica's name in the group.
const CONSUMER: &str = "stale-holder";

/// A replica's context against `s`, at a plan of 100 per second.
pub(super) async fn context(s: &Scenario, claim_idle: Duration) -> Arc<Context> {
    context_with(s, claim_idle, Budget::new("100/1s".parse().unwrap())).await
}

/// A replica's context against `s` with `budget` (which start-up would have checked).
async fn context_with(s: &Scenario, claim_idle: Duration, budget: Budget) -> Arc<Context> {
    let settings = Settings {
        redis: Target::single(s.redis.url()),
        keys: s.keys.clone(),
        send_url: s.sandbox.send_url(),
        api_key: TEST_API_KEY.to_string().into(),
        budget,
        sms: None,
        concurrency: 4,
        retry: RetryPolicy {
            max_attempts: 3,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(5),
            max_cooldown: Duration::from_secs(30),
        },
        claim_idle,
        max_deliveries: 5,
        shutdown_grace: Duration::from_secs(5),
        request_timeout: Duration::from_secs(2),
        timeout_lowered: None,
        http_listen: None,
        consumer: CONSUMER.into(),
        durability: Durability::default(),
        lane_weights: Default::default(),
        tenant_weights: Vec::new(),
    };
    let pool = settings.redis.pool(8).unwrap();
    let ctx = Context::new(settings, pool).unwrap();
    ctx.reader.ensure_groups().await.unwrap();
    Arc::new(ctx)
}

/// Enqueues `jobs` (all of one lane) and reads them as this replica.
async fn deliveries(s: &mut Scenario, ctx: &Context, jobs: &[Job]) -> Vec<Delivery> {
    s.enqueue(jobs).await;
    let read = ctx
        .reader
        .read_now(jobs[0].lane(), jobs.len())
        .await
        .unwrap();
    assert_eq!(read.len(), jobs.len());
    read
}

/// Pauses every replica for [`PAUSE`], as a 429 does.
async fn cool_down(s: &mut Scenario) {
    cool_down_for(s, PAUSE).await;
}

/// Pauses every replica for `pause`, as a 429 does.
async fn cool_down_for(s: &mut Scenario, pause: Duration) {
    let _: () = s
        .conn
        .set_options(
            s.keys.cooldown(),
            1,
            redis::SetOptions::default()
                .with_expiration(redis::SetExpiry::PX(pause.as_millis() as u64)),
        )
        .await
        .unwrap();
}

/// A grant older than half the margin: no longer usable, its job waits for a fresh one.
fn stale_grant(ctx: &Context) -> Token {
    Token::unlogged(Instant::now() - ctx.settings.budget.margin)
}

/// Starts a send task per delivery, each with a stale grant and slots of its own.
async fn process_all(ctx: &Arc<Context>, deliveries: Vec<Delivery>) -> tokio::task::JoinSet<()> {
    let mut tasks = tokio::task::JoinSet::new();
    let slots = Arc::new(Semaphore::new(deliveries.len()));
    for mut delivery in deliveries {
        let ctx = ctx.clone();
        delivery.token = Some(stale_grant(&ctx));
        let hold = Hold::new(slots.clone().try_acquire_owned().unwrap(), slots.clone());
        tasks.spawn(async move { process(&ctx, delivery, hold, &CancellationToken::new()).await });
    }
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_otp_whose_deadline_passes_while_its_grant_is_refreshed_is_dead_lettered_never_sent() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let ctx = context(&s, Duration::from_secs(60)).await;
    let short = otp(&phone(1), Duration::from_secs(1));
    let long = otp(&phone(2), Duration::from_secs(60));
    let read = deliveries(&mut s, &ctx, &[short.clone(), long.clone()]).await;
    cool_down(&mut s).await;
    let started = Instant::now();
    process_all(&ctx, read).await.join_all().await;

    assert!(
        started.elapsed() >= PAUSE / 2,
        "the fresh grants waited for the pause: {:?}",
        started.elapsed()
    );
    assert_eq!(
        s.accepted_phones().into_iter().collect::<Vec<_>>(),
        [long.phone()],
        "only the OTP still valid after the wait is sent"
    );
    let letters = s.dead_letters().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].job_id, short.id.to_string());
    assert_eq!(letters[0].kind(), DeadKind::Expired, "{:?}", letters[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_taken_over_while_its_grant_is_refreshed_is_not_sent_from_here() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    // Held longer than a quarter of --claim-idle, a job's ownership is checked before its send.
    let ctx = context(&s, Duration::from_secs(2)).await;
    let read = deliveries(&mut s, &ctx, &[booking(1), booking(2)]).await;
    let taken = read[0].entry_id.clone();
    cool_down(&mut s).await;
    let mut tasks = process_all(&ctx, read).await;

    // Meanwhile another replica's recovery takes the first booking over: it has been idle
    // a second (nothing here keeps it alive: as if this process were paused).
    let key = s.keys.lane(Lane::Booking);
    let conn = s.conn.clone();
    wait_until("another replica takes the job over", PAUSE, || {
        let (mut conn, key, taken) = (conn.clone(), key.clone(), taken.clone());
        async move {
            let claimed: Vec<String> = redis::cmd("XCLAIM")
                .arg(&key)
                .arg(WORKER_GROUP)
                .arg("thief")
                .arg(1_000)
                .arg(&taken)
                .arg("JUSTID")
                .query_async(&mut conn)
                .await
                .unwrap();
            !claimed.is_empty()
        }
    })
    .await;
    assert_eq!(tasks.len(), 2);
    assert!(
        tasks.try_join_next().is_none(),
        "taken over while both send tasks still wait for their fresh grants"
    );
    tasks.join_all().await;

    assert_eq!(
        s.accepted_phones().into_iter().collect::<Vec<_>>(),
        [phone(2)],
        "only the booking still held here is sent"
    );
    let pending: redis::streams::StreamPendingCountReply = s
        .conn
        .xpending_count(&key, WORKER_GROUP, "-", "+", 10)
        .await
        .unwrap();
    let holders: Vec<(&str, &str)> = pending
        .ids
        .iter()
        .map(|p| (p.id.as_str(), p.consumer.as_str()))
        .collect();
    assert_eq!(
        holders,
        [(taken.as_str(), "thief")],
        "the job taken over is left to its new holder, untouched"
    );
    assert!(s.dead_letters().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_that_goes_stale_during_the_pre_send_check_is_replaced_before_the_send() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let ctx = context(&s, Duration::from_secs(60)).await;
    let mut delivery = deliveries(&mut s, &ctx, &[booking(1)]).await.remove(0);
    // Redis holds every command longer than a grant lives, as a restart or a stall does:
    // the pre-send check starts with a fresh grant and answers after it went stale.
    let stall = ctx.settings.budget.margin * 2;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(stall.as_millis() as u64)
        .arg("ALL")
        .query_async(&mut s.conn)
        .await
        .unwrap();
    delivery.token = Some(Token::unlogged(Instant::now()));
    process(&ctx, delivery, one_hold(), &CancellationToken::new()).await;

    assert_eq!(
        s.accepted_phones().into_iter().collect::<Vec<_>>(),
        [phone(1)]
    );
    // It went out on a grant the shared log holds, taken after the stall; not on the one it
    // started with, whose entry could already have left the window (the chaos suite once saw
    // 11 requests in a window of 10 after a Redis restart, from exactly that).
    let logged: usize = s.conn.zcard(s.keys.rate_window()).await.unwrap();
    assert_eq!(logged, 1, "the request's grant is in the log");
}

/// A hold on a request slot of its own.
fn one_hold() -> Hold {
    let requests = Arc::new(Semaphore::new(1));
    Hold::new(
        requests.try_acquire_owned().unwrap(),
        Arc::new(Semaphore::new(1)),
    )
}

/// Asserts that `job` is back on its lane, unsent, for any replica to take: one entry,
/// that job, pending with nobody.
async fn assert_handed_back(s: &mut Scenario, job: &Job) {
    let waiting: Vec<String> = s
        .lane_jobs(job.lane())
        .await
        .iter()
        .map(|j| j.id.to_string())
        .collect();
    assert_eq!(waiting, [job.id.to_string()], "the job is back on its lane");
    let pending: redis::streams::StreamPendingReply = s
        .conn
        .xpending(s.keys.lane(job.lane()), WORKER_GROUP)
        .await
        .unwrap();
    assert_eq!(pending.count(), 0, "held by no replica");
    assert!(s.accepted().is_empty(), "never sent");
    assert!(s.dead_letters().await.is_empty());
}

/// The livelock, at the level of one send: a margin no round trip fits in (0, as
/// `--rate-margin 0s` gave before start-up refused it) makes every grant stale by the time
/// the check before the send answers. The send asks for [`MAX_REFRESHES`] fresh grants,
/// then hands the job back instead of asking again, and gives every stale grant back to the
/// budget: before, it asked without end, each grant a shared token spent on no request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fourth_stale_grant_hands_the_job_back_instead_of_asking_again() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let budget = Budget {
        margin: Duration::ZERO,
        ..Budget::new("100/1s".parse().unwrap())
    };
    let ctx = context_with(&s, Duration::from_secs(60), budget).await;
    let job = booking(1);
    let mut delivery = deliveries(&mut s, &ctx, std::slice::from_ref(&job))
        .await
        .remove(0);
    delivery.token = Some(stale_grant(&ctx));
    let sent = tokio::time::timeout(
        Duration::from_secs(30),
        process(&ctx, delivery, one_hold(), &CancellationToken::new()),
    )
    .await;
    let logged: usize = s.conn.zcard(s.keys.rate_window()).await.unwrap();
    assert!(
        sent.is_ok(),
        "still asking for fresh grants after 30 s: {logged} shared tokens spent, none sent"
    );
    assert_eq!(
        logged, 0,
        "every stale grant given back: no request went out"
    );
    assert_handed_back(&mut s, &job).await;
}

/// A send waiting for a fresh grant through a long cool-down (a minute, far beyond any
/// grace) stops waiting when its replica shuts down, and hands its job back at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_waiting_for_a_fresh_grant_hands_its_job_back_on_shutdown() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let ctx = context(&s, Duration::from_secs(60)).await;
    let job = booking(1);
    let mut delivery = deliveries(&mut s, &ctx, std::slice::from_ref(&job))
        .await
        .remove(0);
    delivery.token = Some(stale_grant(&ctx));
    cool_down_for(&mut s, Duration::from_secs(60)).await;
    let scripts_run = script_calls(&mut s).await;
    let stop = CancellationToken::new();
    let task = {
        let (ctx, stop) = (ctx.clone(), stop.clone());
        tokio::spawn(async move { process(&ctx, delivery, one_hold(), &stop).await })
    };
    // Its ask for a fresh grant ran (and found every replica paused): it is waiting now.
    wait_until("the send asked for a fresh grant", PAUSE, || {
        let mut s = s.conn.clone();
        async move { herald_tests::script_calls(&mut s).await > scripts_run }
    })
    .await;
    assert!(!task.is_finished(), "waiting out the cool-down");

    stop.cancel();
    let stopped = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the wait ends with the shutdown, not with the cool-down")
        .unwrap();
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopped.elapsed()
    );
    assert_handed_back(&mut s, &job).await;
}

/// Lua scripts Redis has run so far (`EVAL` and `EVALSHA` calls that ran).
async fn script_calls(s: &mut Scenario) -> u64 {
    herald_tests::script_calls(&mut s.conn).await
}
