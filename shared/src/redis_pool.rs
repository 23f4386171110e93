//! Connecting to Redis, for every binary: a connection pool with explicit timeouts, a
//! reachability check for start-up, and Redis URLs printed without their credentials.
//!
//! One [`Pool`] type serves a single server or a Redis Cluster ([`Target`]). Every key of a
//! namespace shares one hash tag, so each Lua script and multi-key read lands on one node
//! and works unchanged on a cluster; the code using a pool never knows which it has.
//!
//! redis-rs 1.x gives each connection a 500 ms response timeout unless told otherwise: a
//! blocking `XREADGROUP` would then fail every time, and a slow moment would look like an
//! outage. Here the timeouts are chosen once: a dead Redis fails a call in seconds instead
//! of hanging it, replies (a pipeline of a thousand enqueues is one reply) may take
//! [`RESPONSE_TIMEOUT`], and blocking reads block for at most [`MAX_BLOCK`].

use std::time::Duration;

use deadpool::managed;
use deadpool_redis::redis::aio::ConnectionLike;
use deadpool_redis::redis::cluster::ClusterClientBuilder;
use deadpool_redis::redis::cluster_async::ClusterConnection;
use deadpool_redis::redis::{
    self, AsyncConnectionConfig, Cmd, Pipeline, RedisError, RedisFuture, Value,
};
use deadpool_redis::{Manager, PoolError, Runtime};

use crate::Redacted;
use crate::config::ConfigError;

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

/// A Redis failure while using a pool: callers back off and try again.
#[derive(Debug, thiserror::Error)]
pub enum RedisFailure {
    #[error("{0}")]
    Redis(#[from] RedisError),
    #[error("{0}")]
    Pool(#[from] PoolError),
}

/// Where Redis is: one server, or the seed nodes of a cluster.
#[derive(Clone, Debug)]
pub enum Target {
    Single(Redacted<String>),
    Cluster(Vec<Redacted<String>>),
}

impl Target {
    /// The target for messages, credentials masked.
    pub fn describe(&self) -> String {
        match self {
            Target::Single(url) => redact_url(url.expose()),
            Target::Cluster(nodes) => {
                let nodes: Vec<String> = nodes.iter().map(|n| redact_url(n.expose())).collect();
                format!("cluster {}", nodes.join(","))
            }
        }
    }

    /// A pool of at most `max_size` connections. Opens no connection yet.
    pub fn pool(&self, max_size: usize) -> Result<Pool, ConfigError> {
        match self {
            Target::Single(url) => create_pool(url.expose(), max_size),
            Target::Cluster(nodes) => create_cluster_pool(nodes, max_size),
        }
    }

    /// A pool that has answered PING: what a command-line tool wants at start-up.
    pub async fn connect(&self, max_size: usize) -> Result<Pool, ConnectError> {
        let pool = self.pool(max_size)?;
        let unreachable = |reason: String| ConnectError::Unreachable {
            url: self.describe(),
            reason,
        };
        let mut conn = pool
            .get()
            .await
            .map_err(|err| unreachable(pool_error_reason(&err)))?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|err| unreachable(error_reason(&err)))?;
        Ok(pool)
    }
}

/// A pool of Redis connections, to one server or to a cluster. Cheap to clone: clones share
/// the connections.
#[derive(Clone)]
pub enum Pool {
    Single(deadpool_redis::Pool),
    Cluster(managed::Pool<ClusterManager>),
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pool::Single(_) => f.write_str("Pool(single)"),
            Pool::Cluster(_) => f.write_str("Pool(cluster)"),
        }
    }
}

impl Pool {
    /// A connection for this task alone (blocking reads included), returned on drop.
    pub async fn get(&self) -> Result<Connection, PoolError> {
        Ok(match self {
            Pool::Single(pool) => Connection(Pooled::Single(pool.get().await?)),
            Pool::Cluster(pool) => Connection(Pooled::Cluster(pool.get().await?)),
        })
    }
}

/// A pooled connection; use it as any redis-rs async connection (`AsyncCommands`,
/// `query_async(&mut conn)`, `Script::invoke_async(&mut conn)`).
pub struct Connection(Pooled);

enum Pooled {
    Single(deadpool_redis::Connection),
    Cluster(managed::Object<ClusterManager>),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Pooled::Single(conn) => conn.req_packed_command(cmd),
            Pooled::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Pooled::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Pooled::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Pooled::Single(conn) => conn.get_db(),
            Pooled::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Creates and recycles cluster connections with Herald's timeouts (deadpool-redis's own
/// cluster manager cannot set them, and redis-rs's defaults would break blocking reads).
pub struct ClusterManager {
    client: redis::cluster::ClusterClient,
}

impl managed::Manager for ClusterManager {
    type Type = ClusterConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<ClusterConnection, RedisError> {
        self.client.get_async_connection().await
    }

    async fn recycle(
        &self,
        conn: &mut ClusterConnection,
        _: &managed::Metrics,
    ) -> managed::RecycleResult<RedisError> {
        redis::cmd("PING").query_async::<String>(conn).await?;
        Ok(())
    }
}

/// A pool over a Redis Cluster reached through `nodes` (any subset of its nodes).
pub fn create_cluster_pool(
    nodes: &[Redacted<String>],
    max_size: usize,
) -> Result<Pool, ConfigError> {
    let urls: Vec<String> = nodes.iter().map(|n| n.expose().clone()).collect();
    let client = ClusterClientBuilder::new(urls)
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .build()
        .map_err(|err| {
            ConfigError::new(
                "REDIS_CLUSTER_NODES (--redis-cluster-nodes)",
                format!("is not a list of Redis URLs ({}); expected redis://host:port,redis://host:port", error_reason(&err)),
            )
        })?;
    Ok(Pool::Cluster(with_timeouts(
        managed::Pool::builder(ClusterManager { client }),
        max_size,
    )))
}

/// A pool of at most `max_size` connections to the server at `url`, with the timeouts above.
/// Opens no connection yet.
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
    Ok(Pool::Single(with_timeouts(
        deadpool_redis::Pool::builder(manager),
        max_size,
    )))
}

/// Builds a pool of either kind with the same size and pool timeouts.
fn with_timeouts<M, W>(builder: managed::PoolBuilder<M, W>, max_size: usize) -> managed::Pool<M, W>
where
    M: managed::Manager,
    W: From<managed::Object<M>>,
{
    builder
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(RESPONSE_TIMEOUT))
        .build()
        .expect("a runtime is set, so the pool builds")
}

/// A pool for the server at `url` that has answered PING.
pub async fn connect(url: &str, max_size: usize) -> Result<Pool, ConnectError> {
    Target::Single(Redacted::new(url.to_string()))
        .connect(max_size)
        .await
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
