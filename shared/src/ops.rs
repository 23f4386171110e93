//! The operational endpoints every Herald server shares: `/metrics` (Prometheus text),
//! `/healthz` (the process is up) and `/readyz` (Redis answers), and the process-wide
//! Prometheus recorder behind them.
//!
//! Servers merge [`routes`] into their own router, so the worker, the webhook receiver and
//! the producer API answer these paths the same way.

use std::sync::OnceLock;
use std::time::Duration;

use crate::redis_pool::Pool;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// How long `/readyz` waits for Redis's PING.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The process-wide Prometheus recorder, installed on first use, with the metrics this crate
/// records described (each server describes its own). Histograms whose names end in
/// `_seconds` get latency buckets from 1 ms to 10 s; `herald_otp_wait_seconds` gets
/// buckets from 50 ms to 10 min (the Full matcher wins over the Suffix one).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        // An OTP's wait (creation to Interakt's 200) can last minutes when the budget is
        // short; its alert's threshold (deploy/prometheus/alerts.yml) is a bucket bound.
        let wait_buckets = [
            0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
        ];
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
            .expect("static buckets are valid")
            .set_buckets_for_metric(
                Matcher::Full("herald_otp_wait_seconds".into()),
                &wait_buckets,
            )
            .expect("static buckets are valid")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        metrics::describe_counter!(
            "herald_redis_errors_total",
            "Redis calls that failed in a long-running task and were retried with backoff, by task."
        );
        handle
    })
}

/// `/metrics`, `/healthz` and `/readyz`, for any router state.
pub fn routes<S: Clone + Send + Sync + 'static>(pool: Pool) -> Router<S> {
    let handle = prometheus();
    Router::new()
        .route("/metrics", get(move || std::future::ready(handle.render())))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(move || ready(pool.clone())))
}

/// Whether Redis answers PING within [`READY_TIMEOUT`].
pub async fn redis_ready(pool: &Pool) -> bool {
    let ping = async {
        let mut conn = pool.get().await.ok()?;
        deadpool_redis::redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    matches!(tokio::time::timeout(READY_TIMEOUT, ping).await, Ok(Some(_)))
}

/// Marks this process as broken for good (a background task it needs stopped): `/readyz`
/// answers 503 with `reason` from now on, while the process winds down and exits non-zero
/// for its orchestrator to restart it.
pub fn mark_broken(reason: &str) {
    let mut broken = BROKEN.lock().unwrap_or_else(|e| e.into_inner());
    broken.get_or_insert_with(|| reason.to_string());
}

/// Why this process was marked broken, if it was.
pub fn broken() -> Option<String> {
    BROKEN.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Process-wide, like the Prometheus recorder: every server of the process answers
/// `/readyz` from it.
static BROKEN: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

async fn ready(pool: Pool) -> (StatusCode, String) {
    if let Some(reason) = broken() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        );
    }
    if redis_ready(&pool).await {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "redis unreachable\n".to_string(),
        )
    }
}
