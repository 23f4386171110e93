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
//! [`cli`] is the binary's command line.
//!
//! It owns orchestration and cleanup only: what it started is stopped and removed at the end
//! (the Redis and its data are left running with `keep`). Sending, retrying, dead-lettering
//! and processing webhooks are the worker's and the receiver's, unchanged.

pub mod cli;
pub mod dashboard;
mod demo_redis;
mod jobs;
mod options;
mod receiver;
mod summary;
mod watch;

pub use options::*;
pub use summary::{EXPIRED_NOTE, ReasonCount, Summary, TRY_NEXT, render};

use std::net::SocketAddr;
use std::time::Duration;

use herald_sandbox::{SandboxConfig, ScriptRule};
use herald_shared::Redacted;
use herald_shared::config::RateLimit;
use herald_shared::redis_pool::redact_url;
use herald_store::keys::Stat;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::dashboard::DemoDashboard;
use herald_operator::dlq::{DeadLetters, ListFilter};
use herald_pipeline::dispatcher::{self};
use herald_pipeline::limiter::{Budget, default_margin};
use herald_pipeline::retry::RetryPolicy;
use herald_pipeline::settings::Settings;
use herald_pipeline::settings::bounds::fit_timeout;

use crate::demo_redis::*;
use crate::jobs::*;
use crate::receiver::*;
use crate::watch::*;

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

/// A worker replica's settings, built directly: the demo needs no configuration.
fn worker_settings(redis: &DemoRedis, send_url: &str, rate: RateLimit, i: usize) -> Settings {
    // Wider than the default margin: a demo may run on a busy laptop, and its point is that
    // the sandbox never sees more than the limit in any window.
    let margin = default_margin(rate.period) * 2;
    // The sandbox answers at once: 5 s, or less when the demo's window is shorter (as a
    // worker started with these flags would; see docs/budget.md).
    let (request_timeout, timeout_lowered) =
        fit_timeout(Duration::from_secs(5), margin, rate.period);
    Settings {
        redis: herald_shared::redis_pool::Target::single(redis.url.expose().clone()),
        keys: redis.keys.clone(),
        send_url: send_url.to_string(),
        api_key: Redacted::new(API_KEY.to_string()),
        budget: Budget {
            margin,
            request_timeout,
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
        request_timeout,
        timeout_lowered,
        http_listen: None,
        lane_weights: Default::default(),
        tenant_weights: Vec::new(),
        consumer: format!("demo-{}-{i}", std::process::id()),
        durability: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo_redis::Delivery;
    use herald_sandbox::ScriptRule;
    use herald_shared::Job;

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
