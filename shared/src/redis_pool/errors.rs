//! What went wrong with Redis, in words operators read: connection errors, failures a
//! caller backs off from, URLs printed without their credentials.

use deadpool_redis::PoolError;
use deadpool_redis::redis::{self, RedisError};

use super::limits::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT};
use crate::error::ConfigError;

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

/// A Redis failure while using a pool: callers back off and try again, unless it is
/// [fatal](RedisFailure::is_fatal).
#[derive(Debug, thiserror::Error)]
pub enum RedisFailure {
    #[error("{0}")]
    Redis(#[from] RedisError),
    #[error("{0}")]
    Pool(#[from] PoolError),
}

impl RedisFailure {
    /// Whether no retry can help: a key Herald uses holds another type of value
    /// (`WRONGTYPE`), because another application writes into Herald's namespace or a key
    /// was written by hand. It stays so until someone acts. Everything else (Redis
    /// unreachable, timeouts, a failover, a lost consumer group) passes and is retried.
    ///
    /// A long-running task that meets a fatal failure stops, and its process with it
    /// (`/readyz` 503, exit 1, the cause logged), rather than retrying forever while its
    /// health checks answer 200.
    pub fn is_fatal(&self) -> bool {
        matches!(self, RedisFailure::Redis(err) if err.code() == Some("WRONGTYPE"))
    }
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
pub(super) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `Connection refused (os error 111)` -> `Connection refused`.
pub(super) fn without_os_error(text: &str) -> String {
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
    use crate::redis_pool::create_pool;

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
