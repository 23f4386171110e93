//! Settling a delivery: every way a job leaves a lane, each one atomic Lua script so a job
//! is always in exactly one place (the lane, the delayed set, the dead letters, or sent).
//!
//! - [`Settler::sent`]: record it as sent, then acknowledge and delete the entry.
//! - [`Settler::retry`]: park it in the lane's delayed set with its new attempt.
//! - [`Settler::dead`]: store the dead letter, then acknowledge and delete the entry.
//! - [`Settler::hand_back`]: put an unstarted job back on the lane (shutdown).

use std::sync::LazyLock;
use std::time::Duration;

use deadpool_redis::redis::{AsyncCommands, Script};
use herald_shared::keys::{JOB_FIELD, SENT_MARKER_TTL_SECS, WORKER_GROUP};
use herald_shared::redis_pool::Pool;
use herald_shared::{Job, Keys};

use crate::dead_letter::DeadLetter;
use crate::lanes::{Delivery, RedisFailure};

static COMPLETE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/complete.lua")));
static RETRY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/retry.lua")));
static DEAD: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/dead.lua")));
static HAND_BACK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/hand_back.lua")));

/// Settles deliveries. Cheap to clone.
#[derive(Clone)]
pub struct Settler {
    pool: Pool,
    keys: Keys,
}

impl Settler {
    pub fn new(pool: Pool, keys: Keys) -> Self {
        Settler { pool, keys }
    }

    /// Interakt's message id for a job already sent, if it was.
    pub async fn already_sent(&self, job_id: &str) -> Result<Option<String>, RedisFailure> {
        let mut conn = self.pool.get().await?;
        Ok(conn.get(self.keys.sent(job_id)).await?)
    }

    pub async fn sent(
        &self,
        delivery: &Delivery,
        job_id: &str,
        message_id: &str,
    ) -> Result<(), RedisFailure> {
        let mut conn = self.pool.get().await?;
        let _: i64 = COMPLETE
            .key(self.keys.lane(delivery.lane))
            .key(self.keys.sent(job_id))
            .key(self.keys.stats())
            .arg(WORKER_GROUP)
            .arg(&delivery.entry_id)
            .arg(message_id)
            .arg(SENT_MARKER_TTL_SECS)
            .arg(format!("sent:{}", delivery.lane))
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Acknowledges a redelivered copy of a job that was already sent, without sending it.
    pub async fn drop_duplicate(&self, delivery: &Delivery) -> Result<(), RedisFailure> {
        let mut conn = self.pool.get().await?;
        let key = self.keys.lane(delivery.lane);
        let _: () = deadpool_redis::redis::pipe()
            .atomic()
            .xack(&key, WORKER_GROUP, &[&delivery.entry_id])
            .ignore()
            .xdel(&key, &[&delivery.entry_id])
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// `stat` is the counter to bump: `retried` or `rate_limited`.
    pub async fn retry(
        &self,
        delivery: &Delivery,
        job: &Job,
        delay: Duration,
        stat: &str,
    ) -> Result<(), RedisFailure> {
        let mut conn = self.pool.get().await?;
        let _: i64 = RETRY
            .key(self.keys.lane(delivery.lane))
            .key(self.keys.delayed(delivery.lane))
            .key(self.keys.stats())
            .arg(WORKER_GROUP)
            .arg(&delivery.entry_id)
            .arg(delay.as_millis() as u64)
            .arg(job.to_json())
            .arg(format!("{stat}:{}", delivery.lane))
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    pub async fn dead(&self, delivery: &Delivery, letter: &DeadLetter) -> Result<(), RedisFailure> {
        let mut conn = self.pool.get().await?;
        let json = serde_json::to_string(letter).expect("a dead letter serializes");
        let _: i64 = DEAD
            .key(self.keys.lane(delivery.lane))
            .key(self.keys.dead())
            .key(self.keys.dead_index(delivery.lane))
            .key(self.keys.stats())
            .arg(WORKER_GROUP)
            .arg(&delivery.entry_id)
            .arg(&letter.job_id)
            .arg(json)
            .arg(format!("dead:{}", delivery.lane))
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    pub async fn hand_back(&self, delivery: &Delivery, job_json: &str) -> Result<(), RedisFailure> {
        let mut conn = self.pool.get().await?;
        let _: i64 = HAND_BACK
            .key(self.keys.lane(delivery.lane))
            .arg(WORKER_GROUP)
            .arg(&delivery.entry_id)
            .arg(job_json)
            .arg(JOB_FIELD)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}
