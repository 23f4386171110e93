//! Redis connection pools with explicit timeouts, for every binary.
//!
//! redis-rs 1.x gives each connection a 500 ms response timeout unless told otherwise: a
//! blocking `XREADGROUP` would then fail every time, and a slow moment would look like an
//! outage. Here the timeouts are chosen once: connecting fails fast (a dead Redis is
//! reported in seconds, not hung on), replies may take [`RESPONSE_TIMEOUT`], and blocking
//! reads must block for less than that ([`MAX_BLOCK`]).

use std::time::Duration;

use deadpool_redis::redis::AsyncConnectionConfig;
use deadpool_redis::{Manager, Pool, Runtime};

use crate::config::ConfigError;

/// How long to wait for a TCP connection to Redis.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long any one reply may take.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest `BLOCK` a blocking read may use on these connections.
pub const MAX_BLOCK: Duration = Duration::from_secs(1);

/// A pool of at most `max_size` connections to `url`. Fails only on a malformed URL;
/// reachability shows on first use.
pub fn create_pool(url: &str, max_size: usize) -> Result<Pool, ConfigError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let manager = Manager::new_with_config(url, config).map_err(|err| {
        ConfigError::new(
            "REDIS_URL (--redis-url)",
            format!("is not a Redis URL: {err}"),
        )
    })?;
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(RESPONSE_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT + Duration::from_millis(500)))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|err| ConfigError::new("REDIS_URL (--redis-url)", err.to_string()))
}

/// A Redis URL with any password replaced by `***`, for messages.
pub fn display_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            display_url("redis://:hunter2@db:6379/0"),
            "redis://***@db:6379/0"
        );
        assert_eq!(
            display_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[tokio::test]
    async fn malformed_urls_are_config_errors() {
        let err = create_pool("http://nope", 1).unwrap_err();
        assert!(err.name.contains("REDIS_URL"), "{err}");
    }
}
