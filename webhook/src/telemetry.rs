//! The webhook service's metrics: events recorded, signature failures, duplicates, stale
//! events, answers and processing outcomes. Labels come from fixed lists (anything else is `unknown` /
//! `other`), so a forged body cannot grow Prometheus's series.

use std::time::Duration;

/// Registers the webhook counters at zero, so dashboards and alerts see them before the
/// first event (or the first forged one) arrives.
pub fn register_webhook_metrics() {
    herald_shared::ops::prometheus();
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
    metrics::describe_counter!(
        "herald_webhook_requests_total",
        "Webhook POSTs answered, by status (200, 400, 401, 413, 503, other)."
    );
    metrics::describe_histogram!(
        "herald_webhook_answer_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer one webhook POST."
    );
    metrics::describe_counter!(
        "herald_webhook_processed_total",
        "Webhook events processed, by outcome (linked, unlinked, inbound, unhandled)."
    );
    metrics::describe_counter!(
        "herald_webhook_stale_total",
        "Webhook events refused (answered 200, not recorded) for a sendTime older than the de-duplication window: replays, or redeliveries too late to tell from one."
    );
    metrics::counter!("herald_webhook_signature_failures_total").increment(0);
    metrics::counter!("herald_webhook_duplicates_total").increment(0);
    metrics::counter!("herald_webhook_stale_total").increment(0);
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

/// A webhook event received again (same key: see [`crate::action::dedup_key`]).
pub fn record_webhook_duplicate() {
    metrics::counter!("herald_webhook_duplicates_total").increment(1);
}

/// Webhook events refused for being older than the de-duplication window.
pub fn record_webhook_stale(events: usize) {
    metrics::counter!("herald_webhook_stale_total").increment(events as u64);
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
