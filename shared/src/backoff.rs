//! Backing off while Redis is unreachable, for every long-running task of every Herald
//! process: exponential waits (100 ms doubling to 5 s, with jitter), one warning when an
//! outage starts and one line when it ends, never a tight loop and never an exit. Only a
//! failure no retry can help ([`RedisFailure::is_fatal`]) ends a task, with
//! [`ReconnectBackoff::give_up`] saying why.

use std::time::Duration;

use rand::RngExt;
use tokio_util::sync::CancellationToken;

use crate::redis_pool::RedisFailure;

const FIRST: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(5);

/// The reconnect state of one task.
pub struct ReconnectBackoff {
    task: &'static str,
    failures: u32,
}

/// Returned when shutdown interrupted the wait.
#[derive(Debug)]
pub struct Cancelled;

impl ReconnectBackoff {
    pub fn new(task: &'static str) -> Self {
        ReconnectBackoff { task, failures: 0 }
    }

    /// Records a failure; logs when it is the first of an outage.
    pub fn failed(&mut self, error: &dyn std::fmt::Display) {
        if self.failures == 0 {
            tracing::warn!(task = self.task, error = %error, "Redis unavailable; retrying with backoff");
        } else {
            tracing::debug!(task = self.task, error = %error, failures = self.failures, "Redis still unavailable");
        }
        self.failures += 1;
        metrics::counter!("herald_redis_errors_total", "task" => self.task).increment(1);
    }

    /// Records a success; logs the recovery if there was an outage.
    pub fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(
                task = self.task,
                failures = self.failures,
                "Redis reachable again"
            );
            self.failures = 0;
        }
    }

    /// Says why the task stops for good on `error`, a [fatal](RedisFailure::is_fatal) one,
    /// and how to fix it. The task then returns, and its supervisor stops the process.
    pub fn give_up(&self, error: &RedisFailure) {
        tracing::error!(
            task = self.task,
            error = %error,
            "a key in Herald's namespace holds another type of value: another application writes into it (HERALD_NAMESPACE), or a key was written by hand; no retry can help, so this task stops and the process with it. Give Herald a namespace of its own, or delete the key"
        );
    }

    /// The wait before the next try: `min(5 s, 100 ms * 2^failures)`, jittered by ±25%.
    pub fn delay(&self) -> Duration {
        let exp = self.failures.saturating_sub(1).min(10);
        let base = FIRST.saturating_mul(1 << exp).min(MAX);
        base.mul_f64(rand::rng().random_range(0.75..1.25))
    }

    pub async fn wait(&self, shutdown: &CancellationToken) -> Result<(), Cancelled> {
        tokio::select! {
            _ = tokio::time::sleep(self.delay()) => Ok(()),
            _ = shutdown.cancelled() => Err(Cancelled),
        }
    }
}
