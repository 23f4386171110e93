//! Metrics and health: what the worker counts, and the HTTP endpoints that expose it.
//!
//! `/metrics` (Prometheus text), `/healthz` (the process is up), `/readyz` (Redis answers),
//! served by `run --http-listen` and, on the same listener as the receiver, by `webhook`.
//! Labels are low-cardinality on purpose: lane, outcome, the first word of a dead letter's
//! reason, and for webhooks the entity and event types from a fixed list (anything else is
//! `unknown` / `other`).

use std::time::Duration;

use axum::Router;
use herald_shared::redis_pool::Pool;
use herald_shared::{Keys, Lane};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::retry::SendOutcome;

/// The process-wide Prometheus recorder (shared by every Herald server in the process).
pub fn prometheus() -> &'static PrometheusHandle {
    herald_shared::ops::prometheus()
}

pub fn record_send(lane: Lane, outcome: &SendOutcome, took: Duration) {
    let lane = lane.as_str();
    let label = outcome.label();
    metrics::histogram!("herald_send_duration_seconds", "lane" => lane, "outcome" => label)
        .record(took.as_secs_f64());
    match outcome {
        SendOutcome::Sent { .. } => {
            metrics::counter!("herald_jobs_sent_total", "lane" => lane).increment(1)
        }
        SendOutcome::RateLimited { .. } => {
            metrics::counter!("herald_jobs_rate_limited_total", "lane" => lane).increment(1)
        }
        SendOutcome::Transient { .. } => {
            metrics::counter!("herald_jobs_retried_total", "lane" => lane).increment(1)
        }
        SendOutcome::Permanent { .. } => {}
    }
}

pub fn record_dead(lane: Lane, reason: &str) {
    let kind = reason
        .split([':', ' '])
        .next()
        .unwrap_or("unknown")
        .to_string();
    metrics::counter!("herald_jobs_dead_total", "lane" => lane.as_str(), "reason" => kind)
        .increment(1);
}

/// Updates the queue-depth gauges from Redis (called by the heartbeat).
pub async fn refresh_queue_gauges(pool: &Pool, keys: &Keys) {
    let Ok(status) = crate::status::collect(pool, keys).await else {
        return;
    };
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
    }
}

/// Registers the webhook counters at zero, so dashboards and alerts see them before the
/// first event (or the first forged one) arrives.
pub fn register_webhook_metrics() {
    prometheus();
    metrics::describe_counter!(
        "herald_webhook_events_total",
        "Webhook events recorded (duplicates excluded), by entity and event type."
    );
    metrics::describe_counter!(
        "herald_webhook_signature_failures_total",
        "Webhook POSTs refused for a missing or wrong Interakt-Signature."
    );
    metrics::describe_counter!(
        "herald_webhook_duplicates_total",
        "Webhook events received again and not recorded twice."
    );
    metrics::counter!("herald_webhook_signature_failures_total").increment(0);
    metrics::counter!("herald_webhook_duplicates_total").increment(0);
}

/// Events the webhook receiver recorded (not duplicates), by type.
pub fn record_webhook_event(entity_type: &'static str, event_type: &'static str) {
    metrics::counter!("herald_webhook_events_total", "entity_type" => entity_type, "event_type" => event_type)
        .increment(1);
}

/// A webhook POST refused for a missing or wrong `Interakt-Signature`.
pub fn record_webhook_signature_failure() {
    metrics::counter!("herald_webhook_signature_failures_total").increment(1);
}

/// A webhook event received again (same event id, or message id and type).
pub fn record_webhook_duplicate() {
    metrics::counter!("herald_webhook_duplicates_total").increment(1);
}

/// One webhook POST answered: by status, and how long the answer took.
pub fn record_webhook_answer(status: u16, took: Duration) {
    let status = match status {
        200 => "200",
        400 => "400",
        401 => "401",
        413 => "413",
        503 => "503",
        _ => "other",
    };
    metrics::counter!("herald_webhook_requests_total", "status" => status).increment(1);
    metrics::histogram!("herald_webhook_answer_duration_seconds").record(took.as_secs_f64());
}

/// One webhook event processed: `linked` (a job's timeline updated), `unlinked` (a status
/// event for a message Herald did not send, given up after the grace), `inbound`, or
/// `unhandled` (kept for people).
pub fn record_webhook_processed(outcome: &'static str) {
    metrics::counter!("herald_webhook_processed_total", "outcome" => outcome).increment(1);
}

/// `/metrics`, `/healthz` and `/readyz`, for a server to merge with its own routes.
pub fn routes(pool: Pool) -> Router {
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
