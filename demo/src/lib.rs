//! `herald-demo` (also `herald-worker demo`): the whole system working on one machine, in
//! one command, with no configuration.
//!
//! 1. Redis: a throwaway `redis-server` on a free port (no persistence, in a temporary
//!    directory; the test support's [`RedisServer`]), or the one `REDIS_URL` names, under a fresh `demo-xxxx` namespace so real
//!    data is never touched.
//! 2. Webhooks: the receiver and processor of `herald-worker webhook`
//!    ([`herald_webhook::serve`]), in-process on a free loopback port, checking signatures
//!    with a secret made up for the run.
//! 3. Interakt: the sandbox, in-process, limited to [`DEMO_RATE`] and scripted to fail for a
//!    few phones (a 400, two 503s, one 429, a 500 that never clears). It posts signed webhooks
//!    to the receiver for every message it accepts: DELIVERED then READ, except for one OTP
//!    it revokes (TTL_EXPIRATION_REVOKED) and one booking whose "Cancel booking" chip it taps.
//! 4. Work: [`OTPS`] OTPs and [`BOOKINGS`] booking confirmations enqueued through the
//!    producer library, plus the scripted ones and an OTP that expires before it can be sent.
//! 5. Workers: [`WORKERS`] replicas as tasks ([`herald_pipeline::dispatcher::run`]), at the same rate,
//!    sharing the budget through Redis as separate processes would.
//! 6. The operator dashboard ([`dashboard`]) over the demo's data, its address printed at
//!    the start; left running with `keep`.
//! 7. Progress until every job is sent or dead, then until every sent message is reported
//!    delivered and read, or revoked, and the tap is on the inbound stream (at most
//!    [`DELIVERY_WAIT`]); then a [`Summary`] from Herald's own counters
//!    ([`herald_operator::status::collect`]) and the sandbox's record of what reached it.
//!
//! It owns orchestration and cleanup only: what it started is stopped and removed at the end
//! (the Redis and its data are left running with `keep`). Sending, retrying, dead-lettering
//! and processing webhooks are the worker's and the receiver's, unchanged.

pub mod dashboard;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use deadpool_redis::redis::{self, AsyncCommands};
use herald_sandbox::{SandboxConfig, ScriptRule};
use herald_shared::config::{ConfigError, RateLimit, RedisArgs};
use herald_shared::job::Booking;
use herald_shared::redis_pool::Pool;
use herald_shared::redis_pool::{ConnectError, connect, redact_url};
use herald_shared::{Job, Redacted};
use herald_store::Keys;
use herald_store::keys::Stat;
use herald_tests::{NO_PERSISTENCE, RedisServer, StartError};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use dashboard::DemoDashboard;
use herald_operator::dlq::{DeadLetters, ListFilter};
use herald_pipeline::dispatcher::{self, StartError as WorkerStartError};
use herald_pipeline::limiter::{Budget, default_margin};
use herald_pipeline::retry::RetryPolicy;
use herald_pipeline::settings::Settings;
use herald_webhook::{DEFAULT_INBOUND_MAX_LEN, WebhookArgs, WebhookError, WebhookSettings};

/// The rate the sandbox enforces and the workers keep to: low, so the limit is visible.
pub const DEMO_RATE: &str = "20/2s";
/// Worker replicas.
pub const WORKERS: usize = 3;
/// Plain OTPs and bookings enqueued, besides the scripted and the expiring ones.
pub const OTPS: usize = 19;
pub const BOOKINGS: usize = 74;
/// The demo gives up if the jobs are not all settled by then.
pub const DEADLINE: Duration = Duration::from_secs(50);
/// Once the jobs are settled, the longest the demo waits for the webhooks about them to be
/// processed (a report that arrives before the worker recorded its send is retried after
/// [`herald_webhook::processor::RETRY_IDLE`]).
pub const DELIVERY_WAIT: Duration = Duration::from_secs(10);
/// The key the sandbox and the in-process workers share.
const API_KEY: &str = "herald-demo-key";
/// Scripted phones: how the sandbox answers each (or which webhooks it posts), and what the
/// job is.
const SCRIPTED: [(&str, &str, ScriptedKind); 6] = [
    ("+919000000001", "400", ScriptedKind::Booking("B1")),
    ("+919000000002", "fail:2", ScriptedKind::Otp),
    ("+919000000003", "429:1", ScriptedKind::Booking("B3")),
    ("+919000000004", "500", ScriptedKind::Otp),
    ("+919000000006", "revoke", ScriptedKind::Otp),
    (
        "+919000000007",
        "tap:cancel_B7",
        ScriptedKind::Booking("B7"),
    ),
];
/// The OTP that expires before any worker can take it.
const EXPIRING_PHONE: &str = "+919000000005";

#[derive(Clone, Copy)]
enum ScriptedKind {
    Otp,
    /// A booking, with its id (its "Cancel booking" chip posts back `cancel_<ID>`).
    Booking(&'static str),
}

/// Scripted taps: each puts one entry on the inbound stream.
fn scripted_taps() -> u64 {
    SCRIPTED
        .iter()
        .filter(|(_, rule, _)| rule.starts_with("tap:"))
        .count() as u64
}

/// How the demo shows progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar (stderr is a terminal).
    Bar,
    /// A line on stderr every few seconds.
    Lines,
    Off,
}

impl ProgressMode {
    /// A bar on a terminal, lines otherwise.
    pub fn detect() -> ProgressMode {
        if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Lines
        }
    }
}

/// What the demo is told.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Use this Redis instead of starting one; the demo's keys then go under a fresh
    /// `demo-xxxx` namespace.
    pub redis_url: Option<Redacted<String>>,
    /// The namespace when the demo starts its own Redis (so the next commands need none).
    pub namespace: String,
    /// Leave the Redis (and the demo's keys) in place at the end.
    pub keep: bool,
    pub progress: ProgressMode,
}

/// Why the demo did not complete.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "redis-server is not installed (or not on PATH): install it with `apt-get install -y redis-server`, or point the demo at a Redis with REDIS_URL=redis://HOST:PORT"
    )]
    RedisMissing,
    #[error("could not start redis-server: {0}")]
    RedisStart(String),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not start the sandbox: {0}")]
    Sandbox(#[from] herald_sandbox::Error),
    #[error("could not enqueue the demo's jobs: {0}")]
    Enqueue(#[from] producer::Error),
    #[error("a worker could not start: {0}")]
    Worker(#[from] WorkerStartError),
    #[error("Redis: {0}")]
    Redis(String),
    #[error("a demo worker stopped unexpectedly")]
    WorkerStopped,
    #[error("could not start the demo's webhook receiver: {0}")]
    WebhookStart(String),
    #[error("the demo's webhook receiver stopped: {0}")]
    Webhook(String),
    #[error(
        "only {settled} of {total} jobs were settled after {}s; see `herald-worker status`",
        DEADLINE.as_secs()
    )]
    TimedOut { settled: u64, total: usize },
    #[error("interrupted")]
    Interrupted,
    #[error("could not start the demo's dashboard: {0}")]
    DashboardStart(String),
}

impl DemoError {
    /// True when the demo could not even start (exit 2); false when it started and did not
    /// complete (exit 1).
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            DemoError::RedisMissing
                | DemoError::RedisStart(_)
                | DemoError::Connect(_)
                | DemoError::Config(_)
                | DemoError::Sandbox(_)
                | DemoError::WebhookStart(_)
                | DemoError::DashboardStart(_)
        )
    }
}

/// Dead letters with the same reason.
#[derive(Clone, Debug, Serialize)]
pub struct ReasonCount {
    pub reason: String,
    pub count: usize,
}

/// What the demo saw: Herald's counters next to the sandbox's record.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Jobs enqueued, and of them OTPs and bookings.
    pub enqueued: usize,
    pub otp: usize,
    pub booking: usize,
    /// Herald's counters (`herald-worker status`): sent, retries after a failure, retries
    /// after a 429, dead letters.
    pub sent: u64,
    pub retried: u64,
    pub rate_limited: u64,
    pub dead: u64,
    pub dead_reasons: Vec<ReasonCount>,
    /// Cancelled or superseded before their send began: the demo cancels one booking and
    /// resends one OTP.
    pub cancelled: u64,
    /// What Interakt's webhooks reported, as the receiver recorded it (`herald-worker
    /// status`): sent messages delivered, read, and revoked (not delivered in time; SMS
    /// fallback would take over), each counted once; and entries on the inbound stream
    /// (replies and suggestion taps).
    pub delivered: u64,
    pub read: u64,
    pub revoked: u64,
    pub inbound: u64,
    /// The sandbox's record: every request that reached it, and the messages it accepted.
    pub requests: u64,
    pub accepted: u64,
    /// The most requests the sandbox saw in any sliding window of `window_ms`, and the limit.
    pub max_in_window: u64,
    pub window_ms: u64,
    pub limit: u32,
    pub rate: String,
    pub workers: usize,
    pub elapsed_ms: u64,
    /// Where the demo's data is (credentials masked), and whether it was left there.
    pub redis_url: String,
    pub namespace: String,
    pub kept: bool,
    /// The pid of the demo's own `redis-server`, when it was left running.
    pub redis_pid: Option<u32>,
    /// The operator dashboard over the demo's data, the run's made-up login token, and its
    /// pid when `keep` left it running.
    pub dashboard_url: String,
    pub dashboard_token: String,
    pub dashboard_pid: Option<u32>,
}

/// Runs the demo; stops early when `shutdown` is cancelled. Cleans up in every case.
pub async fn run(options: DemoOptions, shutdown: CancellationToken) -> Result<Summary, DemoError> {
    let started = Instant::now();
    let redis = DemoRedis::start(&options).await?;
    let dashboard = {
        let (url, namespace) = (redis.url.expose().clone(), redis.namespace.clone());
        tokio::task::spawn_blocking(move || DemoDashboard::start(&url, &namespace, DEMO_RATE))
            .await
            .map_err(|err| DemoError::DashboardStart(err.to_string()))?
    };
    let dashboard = match dashboard {
        Ok(dashboard) => dashboard,
        Err(err) => {
            redis.finish(false).await;
            return Err(err);
        }
    };
    if options.progress != ProgressMode::Off {
        eprintln!(
            "herald demo: dashboard at {} (log in with the token {})",
            dashboard.url, dashboard.token
        );
    }
    let result = run_on(&redis, &options, &shutdown, started).await;
    let (url, token) = (dashboard.url.clone(), dashboard.token.clone());
    let dashboard_pid = if options.keep {
        dashboard.leave_running()
    } else {
        dashboard.stop();
        None
    };
    let pid = redis.finish(options.keep).await;
    result.map(|summary| Summary {
        kept: options.keep,
        redis_pid: pid,
        dashboard_url: url,
        dashboard_token: token,
        dashboard_pid,
        ..summary
    })
}

async fn run_on(
    redis: &DemoRedis,
    options: &DemoOptions,
    shutdown: &CancellationToken,
    started: Instant,
) -> Result<Summary, DemoError> {
    let mut receiver = DemoReceiver::start(redis).await?;
    let result = run_with(redis, &mut receiver, options, shutdown, started).await;
    receiver.stop().await;
    result
}

async fn run_with(
    redis: &DemoRedis,
    receiver: &mut DemoReceiver,
    options: &DemoOptions,
    shutdown: &CancellationToken,
    started: Instant,
) -> Result<Summary, DemoError> {
    let rate: RateLimit = DEMO_RATE.parse().expect("the demo rate parses");
    let sandbox = herald_sandbox::start(
        SandboxConfig {
            rate: Some(rate),
            retry_after: true,
            script: SCRIPTED
                .iter()
                .map(|(phone, rule, _)| {
                    format!("{phone}={rule}")
                        .parse::<ScriptRule>()
                        .expect("the demo's script parses")
                })
                .collect(),
            webhook_url: Some(receiver.url.clone()),
            webhook_secret: Some(receiver.secret.clone()),
            ..SandboxConfig::new(API_KEY)
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await?;

    let jobs = demo_jobs();
    let otp = jobs
        .iter()
        .filter(|j| j.lane() == herald_shared::Lane::Otp)
        .count()
        + 1;
    let expiring_deadline = jobs.iter().filter_map(|j| j.not_after).min();
    let producer = producer::Producer::new(redis.pool.clone(), redis.keys.clone());
    let enqueued = jobs.len() + time_and_change(&producer).await?;
    producer.enqueue_batch(jobs).await?;
    // The workers start once the expiring OTP's millisecond is over, so it always expires.
    if let Some(wait) = expiring_deadline.map(|deadline| deadline - time::OffsetDateTime::now_utc())
        && wait.is_positive()
    {
        tokio::time::sleep(wait.unsigned_abs()).await;
    }

    let stop_workers = CancellationToken::new();
    let _stop_on_drop = stop_workers.clone().drop_guard();
    let mut workers = JoinSet::new();
    for i in 0..WORKERS {
        let settings = worker_settings(redis, &sandbox.send_url(), rate, i);
        workers.spawn(dispatcher::run(settings, stop_workers.child_token()));
    }

    let watched = watch(
        redis,
        enqueued,
        rate,
        options.progress,
        shutdown,
        &mut workers,
    )
    .await;
    stop_workers.cancel();
    while let Some(done) = workers.join_next().await {
        if let Ok(Err(err)) = done {
            tracing::warn!(error = %err, "a demo worker stopped with an error");
        }
    }
    watched?;
    let delivery = wait_for_delivery(redis, receiver, options.progress, shutdown).await?;

    let stats = sandbox.stats();
    let _ = sandbox.shutdown().await;
    let counters = redis.counters().await?;
    let dead_letters = DeadLetters::new(redis.pool.clone(), redis.keys.clone())
        .list(&ListFilter::default())
        .await
        .map_err(|err| DemoError::Redis(err.to_string()))?;
    let mut reasons: Vec<ReasonCount> = Vec::new();
    for letter in dead_letters.iter().rev() {
        match reasons.iter_mut().find(|r| r.reason == letter.reason) {
            Some(r) => r.count += 1,
            None => reasons.push(ReasonCount {
                reason: letter.reason.clone(),
                count: 1,
            }),
        }
    }
    Ok(Summary {
        enqueued,
        otp,
        booking: enqueued - otp,
        sent: counters.get(Stat::Sent),
        retried: counters.get(Stat::Retried),
        rate_limited: counters.get(Stat::RateLimited),
        dead: counters.get(Stat::Dead),
        cancelled: counters.get(Stat::Cancelled),
        dead_reasons: reasons,
        delivered: delivery.delivered,
        read: delivery.read,
        revoked: delivery.revoked,
        inbound: delivery.inbound,
        requests: stats.requests,
        accepted: stats.accepted,
        max_in_window: stats.max_in_window,
        window_ms: stats.window_ms,
        limit: rate.requests.get(),
        rate: rate.to_string(),
        workers: WORKERS,
        elapsed_ms: started.elapsed().as_millis() as u64,
        redis_url: redact_url(redis.url.expose()),
        namespace: redis.namespace.clone(),
        kept: false,
        redis_pid: None,
        dashboard_url: String::new(),
        dashboard_token: String::new(),
        dashboard_pid: None,
    })
}

/// Time and change: a reminder due in two seconds, a booking scheduled for later and then
/// cancelled, and an OTP resent under its replace key (the first is superseded, never sent).
/// Returns how many of these jobs will be sent (the reminder and the newer OTP).
async fn time_and_change(producer: &producer::Producer) -> Result<usize, DemoError> {
    let zone = herald_shared::schedule::Zone::default();
    let appointment = |id: &str| Booking {
        phone: "+919600000001".into(),
        booking_id: id.into(),
        service: "Haircut".into(),
        date: "2030-11-24".into(),
        time: "10:30".into(),
        image_url: None,
    };
    let soon = time::OffsetDateTime::now_utc() + Duration::from_secs(2);
    let later = time::OffsetDateTime::now_utc() + Duration::from_secs(3600);
    let reminder = Job::reminder(appointment("DEMO-R1"), &zone)
        .and_then(|job| job.scheduled("send_in", Some(soon)))
        .expect("a valid reminder");
    producer.enqueue(reminder).await?;
    let cancelled = Job::booking_in(appointment("DEMO-C1"), &zone)
        .and_then(|job| job.scheduled("send_in", Some(later)))
        .expect("a valid booking");
    let cancelled = producer.enqueue(cancelled).await?;
    producer.cancel(cancelled.job_id).await?;
    let key = Some("otp:+919600000002".to_string());
    for code in ["111111", "222222"] {
        let otp = Job::otp("+919600000002", code, Duration::from_secs(600))
            .and_then(|job| job.with_replace_key(key.clone()))
            .expect("a valid OTP");
        producer.enqueue(otp).await?;
    }
    Ok(2)
}

/// The jobs: plain OTPs and bookings, the scripted ones, and an OTP valid for a millisecond
/// (the earliest deadline of all; no worker starts before it has passed).
fn demo_jobs() -> Vec<Job> {
    let code = || format!("{:06}", rand::random_range(0..1_000_000u32));
    let otp = |phone: &str, valid_for| Job::otp(phone, &code(), valid_for).expect("a valid OTP");
    let booking = |phone: &str, id: String, n: usize| {
        Job::booking(Booking {
            phone: phone.to_string(),
            booking_id: id,
            service: "Haircut".into(),
            date: "2030-11-24".into(),
            time: format!("{:02}:{:02}", 9 + n % 9, (n % 4) * 15),
            image_url: None,
        })
        .expect("a valid booking")
    };
    let ten_minutes = Duration::from_secs(600);
    let mut jobs: Vec<Job> = (0..OTPS)
        .map(|i| otp(&format!("+9198{i:08}"), ten_minutes))
        .collect();
    jobs.extend((0..BOOKINGS).map(|i| booking(&format!("+9197{i:08}"), format!("DEMO-{i}"), i)));
    for (n, (phone, _, kind)) in SCRIPTED.iter().enumerate() {
        jobs.push(match kind {
            ScriptedKind::Otp => otp(phone, ten_minutes),
            ScriptedKind::Booking(id) => booking(phone, id.to_string(), BOOKINGS + n),
        });
    }
    jobs.push(otp(EXPIRING_PHONE, Duration::from_millis(1)));
    jobs
}

/// A worker replica's settings, built directly: the demo needs no configuration.
fn worker_settings(redis: &DemoRedis, send_url: &str, rate: RateLimit, i: usize) -> Settings {
    Settings {
        redis: herald_shared::redis_pool::Target::single(redis.url.expose().clone()),
        keys: redis.keys.clone(),
        send_url: send_url.to_string(),
        api_key: Redacted::new(API_KEY.to_string()),
        // Wider than the default margin: a demo may run on a busy laptop, and its point is
        // that the sandbox never sees more than the limit in any window.
        budget: Budget {
            margin: default_margin(rate.period) * 2,
            ..Budget::new(rate)
        },
        sms: None,
        concurrency: 4,
        // Small, so the failing jobs reach their verdict within seconds.
        retry: RetryPolicy {
            max_attempts: 3,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(1),
            max_cooldown: Duration::from_secs(5),
        },
        claim_idle: Duration::from_secs(10),
        max_deliveries: 5,
        shutdown_grace: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        http_listen: None,
        consumer: format!("demo-{}-{i}", std::process::id()),
        durability: Default::default(),
    }
}

/// Shows progress until every job is sent or dead. Fails on timeout, interruption, or a
/// worker that stopped.
async fn watch(
    redis: &DemoRedis,
    total: usize,
    rate: RateLimit,
    mode: ProgressMode,
    shutdown: &CancellationToken,
    workers: &mut JoinSet<Result<(), WorkerStartError>>,
) -> Result<(), DemoError> {
    if mode != ProgressMode::Off {
        eprintln!(
            "herald demo: {total} jobs, {WORKERS} workers, Interakt sandbox limited to {rate}"
        );
    }
    let mut progress = Progress::start(mode, total as u64, "settled");
    let deadline = Instant::now() + DEADLINE;
    let result = loop {
        let status = redis.status().await?;
        let t = &status.total;
        let settled = t.sent + t.dead;
        progress.show(
            settled,
            format!(
                "sent {} · waiting to retry {} · dead {} · queued {}",
                t.sent,
                t.delayed,
                t.dead,
                t.ready + t.pending
            ),
        );
        if settled >= total as u64 && t.ready + t.pending + t.delayed == 0 {
            break Ok(());
        }
        if Instant::now() >= deadline {
            break Err(DemoError::TimedOut { settled, total });
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = shutdown.cancelled() => break Err(DemoError::Interrupted),
            Some(done) = workers.join_next() => {
                break Err(match done {
                    Ok(Err(err)) => err.into(),
                    _ => DemoError::WorkerStopped,
                });
            }
        }
    };
    progress.finish();
    result
}

/// What Interakt's webhooks told Herald about the sent messages, as `herald-worker status`
/// counts it, and the length of the inbound stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Delivery {
    sent: u64,
    delivered: u64,
    read: u64,
    revoked: u64,
    inbound: u64,
}

impl Delivery {
    /// Every sent message reported delivered and read, or revoked, and every scripted tap on
    /// the inbound stream: all the sandbox posts once the jobs are settled.
    fn complete(&self) -> bool {
        self.delivered + self.revoked >= self.sent
            && self.read >= self.delivered
            && self.inbound >= scripted_taps()
    }
}

/// Once the jobs are settled, waits until the webhooks about the sent messages are processed
/// ([`Delivery::complete`]) or [`DELIVERY_WAIT`] has passed, and returns the counts either
/// way (the summary says what was not reported). Fails on interruption, or a receiver that
/// stopped.
async fn wait_for_delivery(
    redis: &DemoRedis,
    receiver: &mut DemoReceiver,
    mode: ProgressMode,
    shutdown: &CancellationToken,
) -> Result<Delivery, DemoError> {
    let deadline = Instant::now() + DELIVERY_WAIT;
    let mut progress = None;
    let result = loop {
        let delivery = redis.delivery().await?;
        let progress = progress
            .get_or_insert_with(|| Progress::start(mode, delivery.sent, "reported by webhook"));
        progress.show(
            delivery.delivered + delivery.revoked,
            format!(
                "delivered {} · read {} · revoked {} · inbound {}",
                delivery.delivered, delivery.read, delivery.revoked, delivery.inbound
            ),
        );
        if delivery.complete() || Instant::now() >= deadline {
            break Ok(delivery);
        }
        if let Some(err) = receiver.failure().await {
            break Err(DemoError::Webhook(err));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shutdown.cancelled() => break Err(DemoError::Interrupted),
        }
    };
    if let Some(progress) = progress {
        progress.finish();
    }
    result
}

/// Progress towards `total`: a bar, or a line on stderr every two seconds, or nothing.
struct Progress {
    mode: ProgressMode,
    total: u64,
    what: &'static str,
    bar: Option<ProgressBar>,
    next_line: Instant,
}

impl Progress {
    fn start(mode: ProgressMode, total: u64, what: &'static str) -> Progress {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} {{elapsed:>3}} [{{bar:30}}] {{pos}}/{{len}} {what}  {{msg}}"
                ))
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            mode,
            total,
            what,
            bar,
            next_line: Instant::now(),
        }
    }

    fn show(&mut self, done: u64, line: String) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(line);
        } else if self.mode == ProgressMode::Lines && Instant::now() >= self.next_line {
            eprintln!("herald demo: {done}/{} {}: {line}", self.total, self.what);
            self.next_line = Instant::now() + Duration::from_secs(2);
        }
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The receiving half of the loop: `herald-worker webhook`'s receiver and processor
/// ([`herald_webhook::serve`]) as a task on a free loopback port. The sandbox posts to
/// [`DemoReceiver::url`], signing with a secret made up for the run. Dropping it tells the
/// task to stop; [`DemoReceiver::stop`] also waits for it.
struct DemoReceiver {
    url: String,
    secret: Redacted<String>,
    stop: CancellationToken,
    /// `None` once it has been waited for.
    task: Option<JoinHandle<Result<(), WebhookError>>>,
}

impl DemoReceiver {
    /// How long the task gets to stop before it is aborted.
    const STOP: Duration = Duration::from_secs(5);

    async fn start(redis: &DemoRedis) -> Result<DemoReceiver, DemoError> {
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
    async fn failure(&mut self) -> Option<String> {
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
    async fn stop(mut self) {
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

/// The demo's Redis: one it started, or one it borrowed under a namespace of its own.
struct DemoRedis {
    url: Redacted<String>,
    namespace: String,
    keys: Keys,
    pool: Pool,
    /// `Some` when the demo started it; dropping it stops the server and removes its data.
    server: Option<RedisServer>,
}

impl DemoRedis {
    async fn start(options: &DemoOptions) -> Result<DemoRedis, DemoError> {
        let (url, namespace, server) = match &options.redis_url {
            Some(url) => {
                let suffix: u32 = rand::random();
                (url.clone(), format!("demo-{suffix:08x}"), None)
            }
            None => {
                let server =
                    tokio::task::spawn_blocking(|| RedisServer::try_start(&NO_PERSISTENCE))
                        .await
                        .map_err(|err| DemoError::RedisStart(err.to_string()))?
                        .map_err(|err| match err {
                            StartError::Missing => DemoError::RedisMissing,
                            StartError::Failed(reason) => DemoError::RedisStart(reason),
                        })?;
                let url = Redacted::new(server.url());
                (url, options.namespace.clone(), Some(server))
            }
        };
        let keys = Keys::new(&namespace)?;
        let pool = connect(url.expose(), 4).await?;
        Ok(DemoRedis {
            url,
            namespace,
            keys,
            pool,
            server,
        })
    }

    /// Where every job is, as `herald-worker status` reports it.
    async fn status(&self) -> Result<herald_operator::status::Status, DemoError> {
        herald_operator::status::collect(&self.pool, &self.keys)
            .await
            .map_err(|err| DemoError::Redis(err.to_string()))
    }

    /// The delivery counts of [`herald_operator::status::collect`] and the inbound stream's length.
    async fn delivery(&self) -> Result<Delivery, DemoError> {
        let t = self.status().await?.total;
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|err| DemoError::Redis(err.to_string()))?;
        let inbound: u64 = conn
            .xlen(self.keys.inbound())
            .await
            .map_err(|err| DemoError::Redis(err.to_string()))?;
        Ok(Delivery {
            sent: t.sent,
            delivered: t.delivered,
            read: t.read,
            revoked: t.revoked,
            inbound,
        })
    }

    /// Herald's counters summed over the lanes, from the stats hash.
    async fn counters(&self) -> Result<Counters, DemoError> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|err| DemoError::Redis(err.to_string()))?;
        let all: HashMap<String, u64> = conn
            .hgetall(self.keys.stats())
            .await
            .map_err(|err| DemoError::Redis(err.to_string()))?;
        Ok(Counters(all))
    }

    /// Removes what the demo left (unless `keep`); returns the pid of a server left running.
    async fn finish(self, keep: bool) -> Option<u32> {
        match self.server {
            Some(server) if keep => Some(server.leave_running()),
            Some(server) => {
                drop(server);
                None
            }
            None if keep => None,
            None => {
                if let Err(err) = delete_namespace(&self.pool, &self.namespace).await {
                    eprintln!(
                        "herald demo: could not delete the demo's keys ({{{}}}:*): {err}",
                        self.namespace
                    );
                }
                None
            }
        }
    }
}

struct Counters(HashMap<String, u64>);

impl Counters {
    /// `stat:otp` + `stat:booking`.
    fn get(&self, stat: Stat) -> u64 {
        herald_shared::Lane::ALL
            .iter()
            .map(|lane| self.0.get(&stat.field(*lane)).copied().unwrap_or(0))
            .sum()
    }
}

/// Deletes every key of `namespace` (they all start with its hash tag).
async fn delete_namespace(pool: &Pool, namespace: &str) -> Result<(), redis::RedisError> {
    let mut conn = pool.get().await.map_err(|err| match err {
        deadpool_redis::PoolError::Backend(err) => err,
        other => redis::RedisError::from(std::io::Error::other(other.to_string())),
    })?;
    let keys: Vec<String> = {
        let mut iter: redis::AsyncIter<String> =
            conn.scan_match(format!("{{{namespace}}}:*")).await?;
        let mut keys = Vec::new();
        while let Some(key) = iter.next_item().await {
            keys.push(key?);
        }
        keys
    };
    for chunk in keys.chunks(500) {
        let _: () = conn.del(chunk).await?;
    }
    Ok(())
}

/// The summary table and the commands to try next.
pub fn render(summary: &Summary) -> String {
    let s = summary;
    let mut out = format!(
        "\nHerald demo: {} jobs ({} OTPs, {} bookings), {} workers, Interakt sandbox limited to {}, {:.1}s\n\n",
        s.enqueued,
        s.otp,
        s.booking,
        s.workers,
        s.rate,
        s.elapsed_ms as f64 / 1000.0
    );
    let row = |label: &str, n: u64, note: &str| format!("  {label:<15}{n:>5}   {note}\n");
    out.push_str(&row("sent", s.sent, "accepted by Interakt (the sandbox)"));
    out.push_str(&row(
        "retried",
        s.retried,
        "failed (503/500), sent again after a backoff",
    ));
    out.push_str(&row(
        "rate-limited",
        s.rate_limited,
        "answered 429: every worker paused, then sent again",
    ));
    out.push_str(&row(
        "cancelled",
        s.cancelled,
        "cancelled or superseded (a resent OTP) before sending: never sent",
    ));
    out.push_str(&row("dead-lettered", s.dead, "given up on, with a reason:"));
    for reason in &s.dead_reasons {
        out.push_str(&format!(
            "{:>26} × {}\n",
            reason.count,
            herald_operator::dlq::render_reason(&reason.reason)
        ));
    }
    out.push_str(&row(
        "delivered",
        s.delivered,
        "reported delivered by Interakt's webhooks",
    ));
    out.push_str(&row("read", s.read, "reported read (opened by the user)"));
    out.push_str(&row(
        "revoked",
        s.revoked,
        "not delivered in time, revoked: SMS fallback would take over",
    ));
    out.push_str(&row(
        "inbound",
        s.inbound,
        "replies/taps on the inbound stream, for your services",
    ));
    let unreported = s.sent.saturating_sub(s.delivered + s.revoked);
    if unreported > 0 {
        out.push_str(&format!(
            "{:>26} sent with no report after {}s\n",
            unreported,
            DELIVERY_WAIT.as_secs()
        ));
    }
    out.push_str(&format!(
        "\n  requests to Interakt: {} (the busiest {} window held {}; the limit is {})\n",
        s.requests,
        humantime::format_duration(Duration::from_millis(s.window_ms)),
        s.max_in_window,
        s.limit
    ));
    out.push_str(&next_commands(s));
    out
}

fn next_commands(s: &Summary) -> String {
    let commands = [
        "herald-worker status",
        "herald-worker dlq list",
        "herald-worker dlq show <ID>",
        "herald-worker dlq replay --reason \"HTTP 500\" --dry-run",
        "herald-worker dlq replay --reason expired --extend 10m",
    ];
    let mut out = String::new();
    if s.kept {
        out.push_str("\nThe demo's data is still there. Try next:\n");
        out.push_str(&format!("  export REDIS_URL={}\n", s.redis_url));
        if s.namespace != herald_shared::config::DEFAULT_NAMESPACE {
            out.push_str(&format!("  export HERALD_NAMESPACE={}\n", s.namespace));
        }
    } else {
        out.push_str(
            "\nThe demo removed what it started. To look around afterwards, run `herald-demo --keep` (`cargo run -p herald-demo -- --keep`), then:\n",
        );
    }
    for command in commands {
        out.push_str(&format!("  {command}\n"));
    }
    if s.kept {
        out.push_str(&format!(
            "The dashboard is still running: open {} and log in with the token {}\n",
            s.dashboard_url, s.dashboard_token
        ));
    }
    if let Some(pid) = s.redis_pid {
        out.push_str(&format!(
            "Replayed jobs wait on their lanes for `herald-worker run`. Stop the demo's Redis with: kill {pid}\n"
        ));
    }
    if let Some(pid) = s.dashboard_pid {
        out.push_str(&format!("Stop the dashboard with: kill {pid}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scripted_phone_has_one_job_and_taps_post_back_a_chip_it_carries() {
        let jobs = demo_jobs();
        assert_eq!(jobs.len(), 100, "the demo's advertised size");
        for (phone, rule, _) in SCRIPTED {
            let rule: ScriptRule = format!("{phone}={rule}").parse().unwrap();
            let mine: Vec<&Job> = jobs
                .iter()
                .filter(|job| {
                    let request = job.render(None);
                    serde_json::to_value(&request).unwrap()["phoneNumber"]
                        == rule.phone.national_number.as_str()
                })
                .collect();
            assert_eq!(mine.len(), 1, "{rule}");
            if let herald_sandbox::Script::Tap(data) = &rule.script {
                let request = mine[0].render(None);
                let body = serde_json::to_string(&request).unwrap();
                assert!(body.contains(&format!("\"{data}\"")), "{data} in {body}");
            }
        }
        assert_eq!(scripted_taps(), 1);
    }

    #[test]
    fn delivery_is_complete_once_every_sent_message_is_accounted_for() {
        let done = Delivery {
            sent: 10,
            delivered: 9,
            read: 9,
            revoked: 1,
            inbound: 1,
        };
        assert!(done.complete());
        assert!(
            !Delivery {
                delivered: 8,
                read: 8,
                ..done
            }
            .complete()
        );
        assert!(
            !Delivery { read: 8, ..done }.complete(),
            "reads still to come"
        );
        assert!(!Delivery { inbound: 0, ..done }.complete(), "the tap");
    }
}
