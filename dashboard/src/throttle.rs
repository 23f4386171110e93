//! Failed logins, counted per client address in Redis ([`Keys::dashboard_login_failures`])
//! so that every replica of the dashboard counts them together: after [`MAX_FAILURES`]
//! failures within [`WINDOW`] of the first, every login from that address is answered 429
//! with `Retry-After` until the window ends, whatever token it brings. A guesser gets ten
//! tries per ten minutes per address; an operator at another address is not affected.
//!
//! The address is the TCP peer as the dashboard's socket sees it (IPv4-mapped IPv6 counted
//! as the IPv4 address). Forwarding headers (`X-Forwarded-For`) are never trusted: anyone
//! can send one. Behind a proxy, every client comes from the proxy's address and shares
//! its count.
//!
//! The window is fixed from the first failure (a counter with a TTL, set atomically with
//! its first increment), not sliding; a success does not reset it. It never reads or
//! writes anything but its counters.

use std::net::IpAddr;
use std::time::Duration;

use deadpool_redis::redis;

use herald_shared::redis_pool::{Pool, RedisFailure};
use herald_store::Keys;

/// Failed logins from one address that are answered as usual; the next is refused.
pub const MAX_FAILURES: u64 = 10;
/// How long an address's failures are counted from its first.
pub const WINDOW: Duration = Duration::from_secs(600);

/// The failed-login counters of one namespace. Cloned into the dashboard's state once.
#[derive(Clone)]
pub struct LoginThrottle {
    pool: Pool,
    keys: Keys,
}

impl LoginThrottle {
    pub fn new(pool: Pool, keys: Keys) -> LoginThrottle {
        LoginThrottle { pool, keys }
    }

    fn key(&self, client: IpAddr) -> String {
        self.keys
            .dashboard_login_failures(&client.to_canonical().to_string())
    }

    /// How long `client` must wait before it may try again (`None`: it may now).
    pub async fn blocked(&self, client: IpAddr) -> Result<Option<Duration>, RedisFailure> {
        let key = self.key(client);
        let mut conn = self.pool.get().await?;
        let (failures, ttl_ms): (Option<u64>, i64) = redis::pipe()
            .atomic()
            .get(&key)
            .pttl(&key)
            .query_async(&mut conn)
            .await?;
        if failures.unwrap_or(0) < MAX_FAILURES {
            return Ok(None);
        }
        // -1 (no TTL) cannot happen (the TTL is set with the counter); say the whole window.
        let ttl = u64::try_from(ttl_ms).map_or(WINDOW, Duration::from_millis);
        Ok(Some(ttl))
    }

    /// Counts a failed login from `client`.
    pub async fn failed(&self, client: IpAddr) -> Result<(), RedisFailure> {
        let key = self.key(client);
        let mut conn = self.pool.get().await?;
        let () = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&key)
            .arg(0)
            .arg("NX")
            .arg("PX")
            .arg(WINDOW.as_millis() as u64)
            .ignore()
            .cmd("INCR")
            .arg(&key)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}

/// `Retry-After`'s value for a wait: whole seconds, rounded up, at least 1.
pub fn retry_after(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_tests::RedisServer;

    #[tokio::test]
    async fn ten_failures_block_an_address_for_the_rest_of_the_window_and_no_other() {
        let redis = RedisServer::start();
        let pool = herald_shared::redis_pool::create_pool(&redis.url(), 2).unwrap();
        let throttle = LoginThrottle::new(pool.clone(), Keys::new("dash").unwrap());
        // Another replica: the same counters.
        let other = LoginThrottle::new(pool, Keys::new("dash").unwrap());
        let guesser: IpAddr = "192.0.2.7".parse().unwrap();
        for i in 0..MAX_FAILURES {
            assert_eq!(throttle.blocked(guesser).await.unwrap(), None, "after {i}");
            let replica = if i % 2 == 0 { &throttle } else { &other };
            replica.failed(guesser).await.unwrap();
        }
        let wait = throttle.blocked(guesser).await.unwrap().expect("blocked");
        assert!(
            wait <= WINDOW && wait > WINDOW - Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(other.blocked(guesser).await.unwrap().is_some());
        // The same address written as IPv4-mapped IPv6 is the same client.
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(throttle.blocked(mapped).await.unwrap().is_some());
        for innocent in ["192.0.2.8", "2001:db8::1"] {
            let innocent: IpAddr = innocent.parse().unwrap();
            assert_eq!(throttle.blocked(innocent).await.unwrap(), None);
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        for (ms, secs) in [
            (0, 1),
            (1, 1),
            (999, 1),
            (1000, 1),
            (1001, 2),
            (600_000, 600),
        ] {
            assert_eq!(retry_after(Duration::from_millis(ms)), secs, "{ms} ms");
        }
    }
}
