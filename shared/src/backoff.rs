//! Backing off while Redis fails, for every long-running task of every Herald process:
//! exponential waits (100 ms doubling to 5 s, with jitter), never a tight loop and never an
//! exit while waiting can help. What is logged and counted is the process's *episode*
//! ([`crate::episodes`]): one warning when Redis starts failing with a kind of failure, one
//! when it ends, whichever tasks fail how often meanwhile.
//!
//! A refusal no retry can help ([`RedisErrorKind::waiting_helps`]: `NOPERM`, `WRONGTYPE`,
//! refused credentials) is [`Next::Stop`]: the task ends, the process's
//! [`Refusal`](crate::episodes::Refusal) is logged with its fix and its binary exits 1.

use std::time::Duration;

use rand::RngExt;
use tokio_util::sync::CancellationToken;

use crate::episodes::{Episodes, Refusal};
use crate::redis_pool::{RedisErrorKind, RedisFailure};

const FIRST: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(5);

/// The reconnect state of one task. While its calls fail it holds the process's episode of
/// their kind (`/readyz` 503); dropping it while failing lets go of it.
pub struct ReconnectBackoff {
    task: &'static str,
    /// Failed calls in a row.
    failures: u32,
    /// The kind of the last failure, while the task is failing.
    failing: Option<RedisErrorKind>,
    episodes: &'static Episodes,
}

/// What a task does after a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a refusal no retry can help must end the task"]
pub enum Next {
    /// Wait ([`ReconnectBackoff::wait`]) and try again.
    Retry,
    /// Stop: waiting cannot help. The refusal is recorded and logged; the process stops.
    Stop,
}

/// Returned when shutdown interrupted the wait.
#[derive(Debug)]
pub struct Cancelled;

impl ReconnectBackoff {
    /// A task of this process, reporting to [`Episodes::process`].
    pub fn new(task: &'static str) -> Self {
        ReconnectBackoff::reporting_to(task, Episodes::process())
    }

    /// A task reporting to `episodes` (tests use their own).
    pub fn reporting_to(task: &'static str, episodes: &'static Episodes) -> Self {
        ReconnectBackoff {
            task,
            failures: 0,
            failing: None,
            episodes,
        }
    }

    /// Records a failed call: [`Next::Retry`] after waiting, or [`Next::Stop`] when no
    /// retry can help.
    pub fn failed(&mut self, err: &RedisFailure) -> Next {
        let kind = err.kind();
        self.failures += 1;
        if !kind.waiting_helps() {
            self.leave();
            self.episodes.refuse(Refusal::new(self.task, err));
            return Next::Stop;
        }
        let joined = self.failing != Some(kind);
        if joined {
            self.leave();
            self.failing = Some(kind);
        }
        self.episodes.task_failed(self.task, kind, joined, err);
        tracing::debug!(task = self.task, kind = kind.label(), error = %err, failures = self.failures, "Redis call failed; retrying with backoff");
        Next::Retry
    }

    /// Records a call that succeeded: the task no longer holds an episode, and the
    /// episodes no task holds are over.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        match self.failing.take() {
            Some(kind) => self.episodes.task_left(kind, true),
            None => self.episodes.succeeded(),
        }
    }

    /// Lets go of the episode it holds, without a success (another kind, or the end).
    fn leave(&mut self) {
        if let Some(kind) = self.failing.take() {
            self.episodes.task_left(kind, false);
        }
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

impl Drop for ReconnectBackoff {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deadpool_redis::redis::{RedisError, make_extension_error};

    fn reply(code: &str, detail: &str) -> RedisFailure {
        RedisFailure::from(make_extension_error(code.into(), Some(detail.into())))
    }

    /// Two tasks through an out-of-memory stretch, one of them dropped while failing:
    /// readiness follows the tasks still stuck.
    #[tokio::test(start_paused = true)]
    async fn tasks_hold_the_episode_while_they_fail_and_let_go_when_they_succeed_or_end() {
        let episodes: &'static Episodes = Box::leak(Box::default());
        let oom = reply("OOM", "command not allowed when used memory > 'maxmemory'.");
        let mut a = ReconnectBackoff::reporting_to("a", episodes);
        let mut b = ReconnectBackoff::reporting_to("b", episodes);
        assert_eq!(a.failed(&oom), Next::Retry);
        assert_eq!(a.failed(&oom), Next::Retry);
        assert_eq!(b.failed(&oom), Next::Retry);
        assert_eq!(
            episodes.failing().map(|(k, _)| k),
            Some(RedisErrorKind::OutOfMemory)
        );
        a.succeeded();
        assert!(episodes.failing().is_some(), "b still fails");
        drop(b);
        assert_eq!(episodes.failing(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_waiting_cannot_help_stops_the_task() {
        let episodes: &'static Episodes = Box::leak(Box::default());
        let mut task = ReconnectBackoff::reporting_to("retry promoter", episodes);
        let refused = RedisFailure::from(RedisError::from(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert_eq!(task.failed(&refused), Next::Retry);
        let noperm = reply(
            "NOPERM",
            "this user has no permissions to run the 'evalsha' command",
        );
        assert_eq!(task.failed(&noperm), Next::Stop);
        assert_eq!(episodes.failing(), None, "it holds nothing once stopped");
        let refusal = episodes.refusal().expect("recorded");
        assert_eq!(refusal.command(), Some("evalsha"));
        assert_eq!(refusal.task, "retry promoter");
        assert!(episodes.on_refusal().is_cancelled());
    }

    #[test]
    fn the_delay_doubles_from_100_ms_to_5_s() {
        let episodes: &'static Episodes = Box::leak(Box::default());
        let mut task = ReconnectBackoff::reporting_to("t", episodes);
        let err = reply("LOADING", "Redis is loading the dataset in memory");
        let mut delays = Vec::new();
        for _ in 0..8 {
            let _ = task.failed(&err);
            delays.push(task.delay());
        }
        for (delay, base_ms) in delays
            .iter()
            .zip([100, 200, 400, 800, 1600, 3200, 5000, 5000])
        {
            let base = Duration::from_millis(base_ms);
            assert!(
                *delay >= base.mul_f64(0.75) && *delay <= base.mul_f64(1.25),
                "{delay:?} for {base:?}"
            );
        }
    }
}
