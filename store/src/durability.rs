//! Writes acknowledged only once replicas have them: `HERALD_MIN_REPLICAS`.
//!
//! Redis replicates asynchronously: a primary that acknowledged an enqueue and died a
//! millisecond later, before its replica had the write, takes the job with it when the
//! replica is promoted. With `min_replicas` above 0, a durable write is followed on the same
//! connection by `WAIT min_replicas timeout`: the caller is told "done" only when that many
//! replicas have every write made on that connection so far, and otherwise gets
//! [`NotReplicated`] (the producer answers exit 2 / HTTP 503, and the caller retries with the
//! same idempotency key, which stays safe: a retry of a job that did land is a duplicate).
//!
//! Before `WAIT`, a tiny marker key is written ([`crate::Keys::replicated`]): `WAIT` counts
//! the replicas that reached this connection's last write, and a duplicate enqueue writes
//! nothing, so without the marker it would not wait for the first, maybe unreplicated, write.
//! Never a guarantee against every failure (Redis has no synchronous replication), but an
//! acknowledged write is then on `min_replicas` + 1 servers.
//!
//! On a Redis Cluster `WAIT` is per node: it counts the replicas of the master it runs on.
//! Sent alone, redis-rs would run it on every master and keep the smallest answer (one
//! master's missing replica would fail every write); in one pipeline behind the marker, whose
//! key carries the namespace's hash tag, it runs on the master that holds Herald's keys and
//! took the write, and counts that master's replicas only (`tests/tests/cluster.rs`).

use std::time::Duration;

use deadpool_redis::redis::{self, RedisError};

use crate::Keys;
use herald_shared::redis_pool::Connection;

/// How long a durable write waits for its replicas unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The flag and variable, in messages.
pub const MIN_REPLICAS_VAR: &str = "HERALD_MIN_REPLICAS (--min-replicas)";

/// How many replicas must have a write before it counts, and how long to wait for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durability {
    /// 0: acknowledge as soon as the primary has it (Redis's default).
    pub min_replicas: u32,
    /// The `WAIT` timeout.
    pub timeout: Duration,
}

impl Default for Durability {
    fn default() -> Self {
        Durability {
            min_replicas: 0,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Fewer replicas than asked for acknowledged a write within the timeout. The write itself
/// happened on the primary; retrying with the same idempotency key is safe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "only {acknowledged} of the {wanted} replicas required by HERALD_MIN_REPLICAS (--min-replicas) acknowledged the write within {}; it may be lost in a failover: retry with the same idempotency key",
    humantime::format_duration(*timeout)
)]
pub struct NotReplicated {
    pub acknowledged: u32,
    pub wanted: u32,
    pub timeout: Duration,
}

/// Why a durable write could not be confirmed.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error(transparent)]
    NotReplicated(#[from] NotReplicated),
    #[error("{0}")]
    Redis(#[from] RedisError),
}

impl Durability {
    /// A durability of `min_replicas` with the default timeout.
    pub fn replicas(min_replicas: u32) -> Durability {
        Durability {
            min_replicas,
            ..Durability::default()
        }
    }

    /// Whether writes wait for replicas at all.
    pub fn is_on(&self) -> bool {
        self.min_replicas > 0
    }

    /// Waits until `min_replicas` replicas have every write made on `conn` so far (nothing
    /// to do when `min_replicas` is 0).
    pub async fn confirm(&self, conn: &mut Connection, keys: &Keys) -> Result<(), WaitError> {
        if !self.is_on() {
            return Ok(());
        }
        let timeout_ms = self.timeout.as_millis().max(1) as u64;
        let (_, acknowledged): ((), u32) = redis::pipe()
            .cmd("SET")
            .arg(keys.replicated())
            .arg(1)
            .arg("PX")
            .arg(60_000)
            .cmd("WAIT")
            .arg(self.min_replicas)
            .arg(timeout_ms)
            .query_async(conn)
            .await?;
        if acknowledged >= self.min_replicas {
            Ok(())
        } else {
            Err(NotReplicated {
                acknowledged,
                wanted: self.min_replicas,
                timeout: self.timeout,
            }
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_names_the_setting_and_the_fix() {
        let err = NotReplicated {
            acknowledged: 0,
            wanted: 1,
            timeout: Duration::from_secs(2),
        };
        let text = err.to_string();
        assert!(
            text.contains("HERALD_MIN_REPLICAS") && text.contains("same idempotency key"),
            "{text}"
        );
        assert!(!Durability::default().is_on());
        assert!(Durability::replicas(1).is_on());
    }
}
