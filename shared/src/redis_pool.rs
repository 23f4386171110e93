//! Connecting to Redis, for every binary: a connection pool with explicit timeouts, a
//! reachability check for start-up, and Redis URLs printed without their credentials.
//!
//! redis-rs 1.x gives each connection a 500 ms response timeout unless told otherwise: a
//! blocking `XREADGROUP` would then fail every time, and a slow moment would look like an
//! outage. Here the timeouts are chosen once: a dead Redis fails a call in seconds instead
//! of hanging it, replies (a pipeline of a thousand enqueues is one reply) may take
//! [`RESPONSE_TIMEOUT`], and blocking reads block for at most [`MAX_BLOCK`].

use std::time::Duration;

use crate::config::ConfigError;
use deadpool_redis::redis::{self, AsyncConnectionConfig};
use deadpool_redis::{Manager, Pool, PoolError, Runtime};

/// How long opening one connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one command (or one pipeline) may wait for its reply.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a caller may wait for a free pooled connection.
pub const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `BLOCK` a blocking read may use on these connections: well under
/// [`RESPONSE_TIMEOUT`].
pub const MAX_BLOCK: Duration = Duration::from_secs(1);
/// Connections per pool unless a binary needs more. Connections are multiplexed, so a few
/// serve many tasks.
pub const DEFAULT_POOL_SIZE: usize = 8;

/// Why Redis could not be used at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL itself is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Redis did not answer. `url` has its credentials masked.
    #[error("cannot reach Redis at {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

/// A pool of at most `max_size` connections to `url`, with the timeouts above. Opens no
/// connection yet.
pub fn create_pool(url: &str, max_size: usize) -> Result<Pool, ConfigError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let manager = Manager::new_with_config(url, config).map_err(|err| {
        ConfigError::new(
            "REDIS_URL (--redis-url)",
            format!(
                "{} is not a usable Redis URL ({}); expected redis://[:password@]host:port[/db]",
                redact_url(url),
                error_reason(&err)
            ),
        )
    })?;
    let pool = Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(RESPONSE_TIMEOUT))
        .build()
        .expect("a runtime is set, so the pool builds");
    Ok(pool)
}

/// A pool for `url` that has answered PING: what a command-line tool wants at start-up.
pub async fn connect(url: &str, max_size: usize) -> Result<Pool, ConnectError> {
    let pool = create_pool(url, max_size)?;
    let unreachable = |reason: String| ConnectError::Unreachable {
        url: redact_url(url),
        reason,
    };
    let mut conn = pool
        .get()
        .await
        .map_err(|err| unreachable(pool_error_reason(&err)))?;
    redis::cmd("PING")
        .query_async::<()>(&mut *conn)
        .await
        .map_err(|err| unreachable(error_reason(&err)))?;
    Ok(pool)
}

/// `url` with any user and password replaced by `***`, safe to print.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((_credentials, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{authority}{tail}"),
        None => format!("{authority}{tail}"),
    }
}

/// The part of a Redis error a person can act on: `Connection refused`, not Rust's
/// ` (os error 111)` suffix.
pub fn error_reason(err: &redis::RedisError) -> String {
    if err.is_timeout() {
        return format!(
            "timed out (connect timeout {}, response timeout {})",
            humantime::format_duration(CONNECT_TIMEOUT),
            humantime::format_duration(RESPONSE_TIMEOUT)
        );
    }
    one_line(&without_os_error(&err.to_string()))
}

/// [`error_reason`] for errors that come through the pool.
pub fn pool_error_reason(err: &PoolError) -> String {
    match err {
        PoolError::Backend(err) => error_reason(err),
        PoolError::Timeout(_) => format!(
            "timed out after {}",
            humantime::format_duration(CONNECT_TIMEOUT)
        ),
        other => one_line(&other.to_string()),
    }
}

/// Some replies (a non-Redis server on the port) make multi-line errors; stderr gets one.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `Connection refused (os error 111)` -> `Connection refused`.
fn without_os_error(text: &str) -> String {
    match text.find(" (os error ") {
        Some(start) => {
            let rest = &text[start + 1..];
            let end = rest.find(')').map_or(text.len(), |i| start + 1 + i + 1);
            format!("{}{}", &text[..start], &text[end..])
        }
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_keep_host_and_hide_credentials() {
        for (url, shown) in [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            (
                "redis://:s3cret@redis.internal:6380/2",
                "redis://***@redis.internal:6380/2",
            ),
            ("rediss://user:p@ss@host/0", "rediss://***@host/0"),
            ("user:pw@host:6379", "***@host:6379"),
            (
                "redis+unix:///run/redis.sock",
                "redis+unix:///run/redis.sock",
            ),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn os_error_numbers_are_dropped() {
        assert_eq!(
            without_os_error("Connection refused (os error 111)"),
            "Connection refused"
        );
        assert_eq!(without_os_error("timed out"), "timed out");
    }

    #[test]
    fn a_malformed_url_is_named_by_its_variable_without_its_password() {
        let err = create_pool("http://:hunter2@x", 1).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("REDIS_URL (--redis-url): "), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
