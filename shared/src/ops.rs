//! The operational endpoints every Herald server shares: `/metrics` (Prometheus text),
//! `/healthz` (the process is up) and `/readyz` (the process can do its work: Redis answers,
//! no long-running task is stuck on a Redis failure, nothing stopped it), and the
//! process-wide Prometheus recorder behind them.
//!
//! Servers merge [`routes`] into their own router, so the worker, the webhook receiver and
//! the producer API answer these paths the same way.

use std::sync::OnceLock;
use std::time::Duration;

use crate::episodes::Episodes;
use crate::redis_pool::{Pool, RedisErrorKind, RedisFailure};
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
            "Redis failure episodes this process met, by kind (unreachable, max_clients, oom, readonly, loading, noperm, auth, wrongtype, other) and the task that met it first."
        );
        metrics::describe_gauge!(
            "herald_redis_failing",
            "1 while this process's Redis calls fail with this kind of failure (an episode is open), else 0."
        );
        metrics::describe_counter!(
            crate::traces::DROPPED,
            "Spans that never reached the trace collector, by reason: queue_full (the export queue, OTEL_BSP_MAX_QUEUE_SIZE, was full), export_failed (the collector refused, failed or did not answer in time), shutdown (ended as the process exited). Always 0 with tracing off."
        );
        for reason in crate::traces::export::Dropped::ALL {
            metrics::counter!(crate::traces::DROPPED, "reason" => reason.label()).absolute(0);
        }
        for kind in RedisErrorKind::ALL {
            metrics::gauge!("herald_redis_failing", "kind" => kind.label()).set(0.0);
        }
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
    ping(pool).await.is_ok()
}

/// PING within [`READY_TIMEOUT`], or why not (named: `Redis has reached maxclients ...`).
async fn ping(pool: &Pool) -> Result<(), String> {
    let ping = async {
        let mut conn = pool.get().await.map_err(RedisFailure::from)?;
        deadpool_redis::redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(RedisFailure::from)
    };
    match tokio::time::timeout(READY_TIMEOUT, ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!(
            "no answer to PING within {}",
            humantime::format_duration(READY_TIMEOUT)
        )),
    }
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

/// 200 `ready`, or 503 with the reason: the process was marked broken, a long-running task
/// met a refusal no retry can help, one is stuck on a Redis failure (out of memory, say, while
/// PING still answers), or Redis does not answer PING.
async fn ready(pool: Pool) -> (StatusCode, String) {
    let unavailable = |reason: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
    };
    if let Some(reason) = broken() {
        return unavailable(reason);
    }
    let episodes = Episodes::process();
    if let Some(refusal) = episodes.refusal() {
        return unavailable(refusal.to_string());
    }
    if let Some((kind, lasted)) = episodes.failing() {
        let lasted = std::time::Duration::from_secs(lasted.as_secs());
        return unavailable(format!(
            "{} (for {}; kind {kind})",
            kind.what(),
            humantime::format_duration(lasted)
        ));
    }
    match ping(&pool).await {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("redis unreachable: {reason}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::{Next, ReconnectBackoff};
    use deadpool_redis::redis::make_extension_error;

    /// `/readyz` on this process's episodes (the test binary's own: this is the only test
    /// that reports to them): a task stuck on a failure PING does not see, then a refusal.
    #[tokio::test]
    async fn readiness_names_what_a_task_is_stuck_on_and_the_refusal_that_stops_the_process() {
        let pool = crate::redis_pool::create_pool("redis://127.0.0.1:1", 1).unwrap();
        let (status, body) = ready(pool.clone()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.starts_with("redis unreachable: "), "{body}");

        let mut start_up = ReconnectBackoff::new("start-up");
        let oom = RedisFailure::from(make_extension_error(
            "OOM".into(),
            Some("command not allowed when used memory > 'maxmemory'.".into()),
        ));
        assert_eq!(start_up.failed(&oom), Next::Retry);
        let (status, body) = ready(pool.clone()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.starts_with("not ready: Redis is out of memory (maxmemory reached)")
                && body.contains("kind oom"),
            "{body}"
        );

        let noperm = RedisFailure::from(make_extension_error(
            "NOPERM".into(),
            Some("this user has no permissions to run the 'evalsha' command".into()),
        ));
        assert_eq!(start_up.failed(&noperm), Next::Stop);
        let (status, body) = ready(pool).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.starts_with("not ready: Redis refused the 'evalsha' command to the start-up"),
            "{body}"
        );
    }
}
