//! The budget on a paused tokio clock, for the suites that walk it through windows at once
//! (`adaptive_budget.rs`, `budget.rs`): a real redis-server, and limiters whose scripts read
//! `now` from the test's clock ([`Clock::Tokio`]) instead of Redis `TIME`.
//!
//! Paused tokio time jumps to the next timer whenever the runtime is idle, also while a
//! reply from Redis is on its way: the connections here have no timeouts, so none fires
//! early. Keys that expire (the cool-down) still do on Redis's own clock, which the test's
//! does not move: [`Harness::pause_over`] ends a pause the test's clock has passed. Each
//! suite uses part of it.
#![allow(dead_code)]

use deadpool_redis::redis::AsyncConnectionConfig;
use herald_pipeline::limiter::{Budget, Clock, SharedLimiter};
use herald_shared::redis_pool::Pool;
use herald_store::Keys;
use herald_tests::RedisServer;
use redis::AsyncCommands;

/// 2026-11-23 10:00 UTC, in microseconds: where the test's clock starts (a whole minute, so
/// windows of a minute or a divisor of one start there).
pub const ORIGIN_US: u64 = 1_795_428_000_000_000;

/// A redis-server and the budget's keys in it; dropping it stops the server.
pub struct Harness {
    _redis: RedisServer,
    pub pool: Pool,
    pub keys: Keys,
}

/// A pool whose connections never time out (see the module's doc).
fn untimed_pool(url: &str) -> Pool {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(None)
        .set_response_timeout(None);
    herald_shared::redis_pool::untimed_pool(url, config, 2).expect("a redis:// URL")
}

pub fn harness() -> Harness {
    let redis = RedisServer::start();
    Harness {
        pool: untimed_pool(&redis.url()),
        _redis: redis,
        keys: Keys::new("paused").unwrap(),
    }
}

impl Harness {
    /// A replica's limiter with `budget`, on the test's clock.
    pub fn limiter_with(&self, budget: Budget, consumer: &str) -> SharedLimiter {
        SharedLimiter::new(self.pool.clone(), &self.keys, budget, consumer)
            .with_clock(Clock::tokio(ORIGIN_US))
    }

    /// The effective budget in the state, once a worker asked.
    pub async fn effective(&self) -> Option<u32> {
        let mut conn = self.pool.get().await.unwrap();
        conn.hget(self.keys.rate_state(), "effective")
            .await
            .unwrap()
    }

    /// The remaining pause on Redis's clock, in ms (negative: none).
    pub async fn pause_left_ms(&self) -> i64 {
        let mut conn = self.pool.get().await.unwrap();
        conn.pttl(self.keys.cooldown()).await.unwrap()
    }

    /// Ends the pause in force, as its expiry would once the test's clock has passed it.
    pub async fn pause_over(&self) {
        let mut conn = self.pool.get().await.unwrap();
        let _: () = conn.del(self.keys.cooldown()).await.unwrap();
    }

    /// The budget's state field `name`, as a number.
    pub async fn state_field(&self, name: &str) -> Option<u64> {
        let mut conn = self.pool.get().await.unwrap();
        conn.hget(self.keys.rate_state(), name).await.unwrap()
    }

    /// Entries of the shared log, and of the OTPs' log, scored after `since` (µs on the
    /// test's clock): the requests counting in the window that ends now.
    pub async fn in_window(&self, since_us: u64) -> (u64, u64) {
        let mut conn = self.pool.get().await.unwrap();
        let since = format!("({since_us}");
        let all: u64 = conn
            .zcount(self.keys.rate_window(), &since, "+inf")
            .await
            .unwrap();
        let otps: u64 = conn
            .zcount(self.keys.rate_window_otp(), &since, "+inf")
            .await
            .unwrap();
        (all, otps)
    }
}
