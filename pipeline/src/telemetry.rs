//! Metrics and health: what the worker counts, and the HTTP endpoints that expose it.
//!
//! `/metrics` (Prometheus text), `/healthz` (the process is up), `/readyz` (Redis answers),
//! served by `run --http-listen` and, on the same listener as the receiver, by `webhook`.
//! Labels are low-cardinality on purpose: lane, outcome ([`herald_shared::job::Outcome`]) and
//! a dead letter's kind ([`DeadKind`]), each from a fixed list. What the alert rules of
//! `deploy/prometheus/alerts.yml` need is here too: the budget's plan beside its effective
//! N, the live replicas and the age of each lane's oldest job (read from Redis by the
//! heartbeat), and an OTP's wait. Never records a phone number, a code or a key.

use std::time::{Duration, SystemTime};

use axum::Router;
use herald_shared::redis_pool::Pool;
use herald_shared::{Job, Lane};
use herald_store::Keys;
use herald_store::dead_letter::DeadKind;
use herald_store::history::{Recorder, Series};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::limiter::ProbeOutcome;
use crate::retry::SendOutcome;

/// The process-wide Prometheus recorder (shared by every Herald server in the process),
/// with the worker's metrics described on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    let handle = herald_shared::ops::prometheus();
    DESCRIBED.call_once(describe);
    handle
}

/// Gives every metric the worker records its help text and unit, so `/metrics` passes
/// `promtool check metrics`. Called once, by [`prometheus`], after the recorder is
/// installed (a description given to no recorder is lost). Durations are in seconds and
/// named so; counters end in `_total`; `herald_queue_depth` counts jobs and has no unit.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "herald_jobs_sent_total",
        "Jobs Interakt accepted (HTTP 200 with result true), by lane."
    );
    describe_counter!(
        "herald_jobs_retried_total",
        "Sends that failed transiently (5xx, 408, timeout, connection error) and will be retried, by lane."
    );
    describe_counter!(
        "herald_jobs_rate_limited_total",
        "Sends Interakt answered 429; each sets the shared cool-down and is retried, by lane."
    );
    describe_counter!(
        "herald_jobs_dead_total",
        "Jobs dead-lettered, by lane and the reason's kind (expired, permanent, exhausted, poison, undecodable, invalid)."
    );
    describe_counter!(
        "herald_jobs_reclaimed_total",
        "Jobs taken over from a consumer silent for longer than --claim-idle, by lane."
    );
    describe_counter!(
        "herald_rate_stale_grants_total",
        "Rate-limit grants that went stale before their request could start and were replaced."
    );
    describe_histogram!(
        "herald_send_duration_seconds",
        Unit::Seconds,
        "Time of one request to Interakt, by lane and outcome."
    );
    describe_counter!(
        "herald_jobs_taken_over_total",
        "Jobs this replica held that another replica took over while this one was paused; left to that replica, by lane."
    );
    describe_counter!(
        "herald_settles_not_ours_total",
        "Settles that found the entry owned by another replica (taken over meanwhile) and changed nothing."
    );
    describe_histogram!(
        "herald_slots_saturated_seconds",
        Unit::Seconds,
        "Waits of jobs in this replica's hand because every concurrency slot was busy; the rate of its _sum is what another replica would turn into sends (KEDA scales on it)."
    );
    describe_counter!(
        "herald_budget_probes_total",
        "Requests sent as the cool-down's probe (one every --probe-interval during a longer pause after a 429), by outcome: ok (a 2xx ended the pause for every replica), rate_limited (a 429 kept it), failed (anything else)."
    );
    describe_gauge!(
        "herald_budget_effective",
        "The shared budget's effective requests per window: the configured N, halved per 429 episode, grown back per clean window."
    );
    describe_gauge!(
        "herald_queue_depth",
        "Jobs per lane and state (ready, pending, delayed, dead), refreshed every heartbeat."
    );
    describe_gauge!(
        "herald_budget_configured",
        "The plan's requests per window this replica was started with (--rate); herald_budget_effective below it means 429 episodes shrank the budget."
    );
    describe_gauge!(
        "herald_worker_replicas",
        "Worker replicas with a heartbeat in Redis in the last 15 s, as this replica saw them at its last heartbeat."
    );
    describe_gauge!(
        "herald_queue_oldest_age_seconds",
        Unit::Seconds,
        "Age of the oldest job on each lane (ready, or delivered and not yet settled) by Redis's clock, 0 when the lane is empty; refreshed every heartbeat."
    );
    describe_histogram!(
        "herald_otp_wait_seconds",
        Unit::Seconds,
        "Each sent OTP's wait from its creation to Interakt's 200: what the user waits for."
    );
}

/// Gives the series the alert rules compute increases of a zero before their first event,
/// so the first 429 or dead letter of a replica counts (a series born at 1 shows no
/// increase), and records the plan the budget was configured with. Called once when a
/// replica that serves `/metrics` starts; installs the recorder first (a value recorded
/// before it is lost).
pub fn register_replica_series(configured_budget: u32) {
    prometheus();
    for lane in Lane::ALL {
        let lane = lane.as_str();
        metrics::counter!("herald_jobs_sent_total", "lane" => lane).increment(0);
        metrics::counter!("herald_jobs_retried_total", "lane" => lane).increment(0);
        metrics::counter!("herald_jobs_rate_limited_total", "lane" => lane).increment(0);
        for kind in DeadKind::ALL {
            // `unknown` is only read from letters stored before kinds existed.
            if kind != DeadKind::Unknown {
                metrics::counter!("herald_jobs_dead_total", "lane" => lane, "reason" => kind.as_str())
                    .increment(0);
            }
        }
    }
    for outcome in ProbeOutcome::ALL {
        metrics::counter!("herald_budget_probes_total", "outcome" => outcome.as_str()).increment(0);
    }
    metrics::gauge!("herald_budget_configured").set(f64::from(configured_budget));
}

/// One request to Interakt: its metrics, and the history the dashboard charts (requests,
/// 429s, retries, sends, and an OTP's wait from its creation to Interakt's 200).
pub fn record_send(history: &Recorder, job: &Job, outcome: &SendOutcome, took: Duration) {
    let lane = job.lane().as_str();
    let label = outcome.label();
    let now = SystemTime::now();
    metrics::histogram!("herald_send_duration_seconds", "lane" => lane, "outcome" => label)
        .record(took.as_secs_f64());
    history.count(Series::Requests, now);
    match outcome {
        SendOutcome::Sent { .. } => {
            metrics::counter!("herald_jobs_sent_total", "lane" => lane).increment(1);
            history.count(Series::Sent, now);
            if job.lane() == Lane::Otp {
                let created: SystemTime = job.created_at.into();
                let wait = now.duration_since(created).unwrap_or_default();
                metrics::histogram!("herald_otp_wait_seconds").record(wait.as_secs_f64());
                history.otp_latency(wait, now);
            }
        }
        SendOutcome::RateLimited { .. } => {
            metrics::counter!("herald_jobs_rate_limited_total", "lane" => lane).increment(1);
            history.count(Series::RateLimited, now);
        }
        SendOutcome::Transient { .. } => {
            metrics::counter!("herald_jobs_retried_total", "lane" => lane).increment(1);
            history.count(Series::Retried, now);
        }
        SendOutcome::Permanent { .. } => {}
    }
}

/// A job dead-lettered, labelled by its kind (a fixed list: [`DeadKind`]), and counted in
/// the dashboard's history.
pub fn record_dead(history: &Recorder, lane: Lane, kind: DeadKind) {
    metrics::counter!("herald_jobs_dead_total", "lane" => lane.as_str(), "reason" => kind.as_str())
        .increment(1);
    history.count(Series::Dead, SystemTime::now());
}

/// Time jobs waited in hand because every concurrency slot was busy: what another replica
/// would turn into sends (KEDA scales on its rate; see deploy/k8s/scaledobject.yaml).
pub fn record_saturated(waited: Duration) {
    metrics::histogram!("herald_slots_saturated_seconds").record(waited.as_secs_f64());
}

/// A request sent as the cool-down's probe, answered.
pub fn record_probe(outcome: ProbeOutcome) {
    metrics::counter!("herald_budget_probes_total", "outcome" => outcome.as_str()).increment(1);
}

/// The shared budget's effective N (the configured N until 429s shrink it).
pub fn record_budget(effective: u32) {
    metrics::gauge!("herald_budget_effective").set(f64::from(effective));
}

/// Updates the queue gauges from Redis (called by the heartbeat): depth per lane and
/// state, live replicas, and the age of each lane's oldest job.
pub async fn refresh_queue_gauges(pool: &Pool, keys: &Keys) {
    let Ok(status) = herald_store::status::collect(pool, keys).await else {
        return;
    };
    metrics::gauge!("herald_worker_replicas").set(status.consumers.len() as f64);
    for (lane, counts) in &status.lanes {
        for (state, value) in [
            ("ready", counts.ready),
            ("pending", counts.pending),
            ("delayed", counts.delayed),
            ("dead", counts.dead),
        ] {
            metrics::gauge!("herald_queue_depth", "lane" => lane.clone(), "state" => state)
                .set(value as f64);
        }
        // Settled entries are deleted, so a stream's first entry is its oldest unsettled
        // job, and its id (`XADD *`) is when it was added, by Redis's clock.
        metrics::gauge!("herald_queue_oldest_age_seconds", "lane" => lane.clone())
            .set(counts.oldest_unsettled_ms as f64 / 1000.0);
    }
}

/// `/metrics`, `/healthz` and `/readyz`, for a server to merge with its own routes.
pub fn routes(pool: Pool) -> Router {
    prometheus();
    herald_shared::ops::routes(pool)
}

/// Serves `/metrics`, `/healthz` and `/readyz` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    pool: Pool,
    _keys: Keys,
    shutdown: CancellationToken,
) {
    let served = axum::serve(listener, routes(pool))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    if let Err(err) = served {
        tracing::error!(error = %err, "metrics server failed");
    }
}
