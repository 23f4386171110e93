//! What went wrong with Redis, in words operators read: connection errors, failures a
//! caller backs off from (named by their [kind](RedisErrorKind)), URLs printed without their
//! credentials.

use deadpool_redis::PoolError;
use deadpool_redis::redis::{self, RedisError};

use super::kind::RedisErrorKind;
use super::limits::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT};
use crate::error::ConfigError;

/// Why Redis could not be used at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL itself is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Redis did not answer, or refused this client (`kind` says how: at maxclients, say).
    /// `url` has its credentials masked.
    #[error("{}", connect_failure(.url, *.kind, .reason))]
    Unreachable {
        url: String,
        kind: RedisErrorKind,
        reason: String,
    },
}

/// `cannot reach Redis at URL: Connection refused`, or, for a Redis that answered with a
/// refusal, `Redis at URL refused: Redis has reached maxclients ...: ERR max number ...`.
fn connect_failure(url: &str, kind: RedisErrorKind, reason: &str) -> String {
    match kind {
        RedisErrorKind::Unreachable => format!("cannot reach Redis at {url}: {reason}"),
        _ => format!("Redis at {url} refused: {reason}"),
    }
}

/// A Redis failure while using a pool: callers back off and try again, unless waiting
/// cannot help ([`RedisFailure::is_fatal`]). Shown named: `Redis is out of memory (maxmemory
/// reached) and refuses writes: OOM command not allowed ...`.
#[derive(Debug, thiserror::Error)]
pub enum RedisFailure {
    #[error("{}", error_reason(.0))]
    Redis(#[from] RedisError),
    #[error("{}", pool_error_reason(.0))]
    Pool(#[from] PoolError),
}

impl RedisFailure {
    /// What kind of failure it is: the one classification logs, metrics and retries use.
    pub fn kind(&self) -> RedisErrorKind {
        match self {
            RedisFailure::Redis(err) => RedisErrorKind::of(err),
            RedisFailure::Pool(err) => RedisErrorKind::of_pool(err),
        }
    }

    /// Whether no retry can help ([`RedisErrorKind::waiting_helps`]): the ACL user lacks a
    /// permission (`NOPERM`), Redis refuses the credentials, or a key Herald uses holds
    /// another type of value (`WRONGTYPE`). It stays so until someone acts. Everything else
    /// (Redis unreachable, out of memory, at maxclients, loading, a read-only replica during a
    /// failover, timeouts, a lost consumer group) passes and is retried.
    ///
    /// A long-running task that meets a fatal failure stops, and its process with it
    /// (`/readyz` 503, exit 1, the cause and its fix logged), rather than retrying forever
    /// while its health checks answer 200.
    pub fn is_fatal(&self) -> bool {
        !self.kind().waiting_helps()
    }

    /// The failure in Redis's own words (`OOM command not allowed ...`, `Connection
    /// refused`), without the kind's description: for a log line that names the kind itself.
    pub fn words(&self) -> String {
        match self {
            RedisFailure::Redis(err) => redis_words(err),
            RedisFailure::Pool(PoolError::Backend(err)) => redis_words(err),
            RedisFailure::Pool(err) => pool_error_reason(err),
        }
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

/// The part of a Redis error a person can act on, named: `Connection refused` (not Rust's
/// ` (os error 111)` suffix), `timed out (...)`, and a refusal with what it means before
/// Redis's own words: `Redis is out of memory (maxmemory reached) and refuses writes: OOM
/// command not allowed when used memory > 'maxmemory'.`
pub fn error_reason(err: &redis::RedisError) -> String {
    let words = redis_words(err);
    match RedisErrorKind::of(err) {
        RedisErrorKind::Unreachable | RedisErrorKind::Other => words,
        kind => format!("{}: {words}", kind.what()),
    }
}

/// A Redis error in Redis's own words: an error reply as Redis wrote it (`NOPERM this user
/// has no permissions to run the 'evalsha' command`, without a script's location), an I/O
/// error without its OS error number, a timeout with the timeouts that applied.
pub fn redis_words(err: &redis::RedisError) -> String {
    if err.is_timeout() {
        return format!(
            "timed out (connect timeout {}, response timeout {})",
            humantime::format_duration(CONNECT_TIMEOUT),
            humantime::format_duration(RESPONSE_TIMEOUT)
        );
    }
    if let Some((code, detail)) = reply_parts(err) {
        return one_line(&format!("{code} {}", without_script_location(&detail)));
    }
    if err.is_connection_dropped() && !err.is_connection_refusal() {
        return format!(
            "{} (the connection closed as it opened or while in use: Redis restarted, a proxy or firewall cut it, or Redis is at maxclients)",
            one_line(&without_os_error(&err.to_string()))
        );
    }
    one_line(&without_os_error(&err.to_string()))
}

/// An error reply's code and detail, the first one of a pipeline's.
pub(super) fn reply_parts(err: &redis::RedisError) -> Option<(String, String)> {
    let code = err.code()?.to_string();
    let detail = match err.detail() {
        Some(detail) => detail.to_string(),
        None => err
            .clone()
            .into_server_errors()
            .and_then(|errors| {
                errors
                    .first()
                    .and_then(|(_, e)| e.details().map(str::to_string))
            })
            .unwrap_or_default(),
    };
    Some((code, detail))
}

/// `... value script: 5937ecb4..., on @user_script:1.` -> `... value`: where in which script
/// is Redis's internal name, useless to an operator.
fn without_script_location(detail: &str) -> &str {
    match detail.find(" script: ") {
        Some(at) => detail[..at].trim_end(),
        None => detail,
    }
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
