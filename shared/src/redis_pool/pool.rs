//! The pool every binary uses ([`Pool`]): single server or cluster behind one type, its
//! connections with explicit timeouts, and the one shared connection of the send path.

use std::sync::Arc;

use deadpool::managed;
use deadpool_redis::PoolError;
use deadpool_redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use deadpool_redis::redis::cluster::ClusterClientBuilder;
use deadpool_redis::redis::cluster_async::ClusterConnection;
use deadpool_redis::redis::{
    self, AsyncConnectionConfig, Cmd, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisError,
    RedisFuture, TlsCertificates, Value,
};

use super::credentials::Credentials;
use super::errors::*;
use super::limits::with_timeouts;
use super::limits::*;
use super::probe;
use super::sentinel::SentinelManager;
use super::shared::{self, SharedConnection};
use super::tls::*;
use super::tracked::{self, Tracked};
use crate::Redacted;
use crate::error::ConfigError;

/// A pool of Redis connections, to one server or to a cluster, and one connection shared by
/// every task that asks for it ([`Pool::shared`]). Cheap to clone: clones share the
/// connections.
#[derive(Clone)]
pub struct Pool {
    kind: Kind,
    shared: Arc<shared::Slot>,
}

#[derive(Clone)]
enum Kind {
    Single(managed::Pool<SingleManager>),
    Cluster(managed::Pool<ClusterManager>),
    Sentinel(managed::Pool<SentinelManager>),
}

impl From<Kind> for Pool {
    fn from(kind: Kind) -> Pool {
        Pool {
            kind,
            shared: Arc::default(),
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            Kind::Single(_) => f.write_str("Pool(single)"),
            Kind::Cluster(_) => f.write_str("Pool(cluster)"),
            Kind::Sentinel(_) => f.write_str("Pool(sentinel)"),
        }
    }
}

impl Pool {
    pub(super) fn from_sentinel(pool: managed::Pool<SentinelManager>) -> Pool {
        Kind::Sentinel(pool).into()
    }

    /// A connection for this task alone (blocking reads included), returned on drop.
    pub async fn get(&self) -> Result<Connection, PoolError> {
        Ok(match &self.kind {
            Kind::Single(pool) => Connection(Pooled::Single(pool.get().await?)),
            Kind::Cluster(pool) => Connection(Pooled::Cluster(pool.get().await?)),
            Kind::Sentinel(pool) => Connection(Pooled::Sentinel(pool.get().await?)),
        })
    }

    /// The connection every caller shares: commands of tasks running at once go out and
    /// come back together ([`shared`]), so a burst of short commands (the send path's
    /// checks and settles) costs a few round trips instead of one each. Never for a
    /// blocking command: use [`Pool::get`].
    pub async fn shared(&self) -> Result<SharedConnection, PoolError> {
        use managed::Manager as _;
        use shared::Multiplexed;
        let open = async || {
            Ok(match &self.kind {
                Kind::Single(pool) => {
                    Multiplexed::Server(pool.manager().create().await?.into_inner())
                }
                Kind::Cluster(pool) => {
                    Multiplexed::Cluster(pool.manager().create().await?.into_inner())
                }
                Kind::Sentinel(pool) => {
                    Multiplexed::Server(pool.manager().create().await?.into_inner())
                }
            })
        };
        self.shared.get(open).await.map_err(PoolError::Backend)
    }

    /// How many shared connections this pool has opened: one, plus one after each that a
    /// failure spoiled.
    pub fn shared_opened(&self) -> u64 {
        self.shared.opened()
    }
}

/// A pooled connection; use it as any redis-rs async connection (`AsyncCommands`,
/// `query_async(&mut conn)`, `Script::invoke_async(&mut conn)`).
pub struct Connection(Pooled);

enum Pooled {
    Single(managed::Object<SingleManager>),
    Cluster(managed::Object<ClusterManager>),
    Sentinel(managed::Object<SentinelManager>),
}

/// One node's answer to [`Connection::on_every_primary`]: its address (`None` for a single
/// server or Sentinel's primary) and its reply or error reply.
pub type NodeReply = (Option<String>, Result<Value, RedisError>);

impl Connection {
    /// Runs `cmd` on every primary, whatever the command's usual routing: the one server
    /// (or Sentinel's primary), or each master of a cluster (where redis-rs would send a
    /// keyless command such as `CONFIG GET` to one random node, maybe a replica). An error
    /// reply (`NOPERM`) is that node's answer; only failing to reach Redis is an `Err`.
    pub async fn on_every_primary(&mut self, cmd: &Cmd) -> Result<Vec<NodeReply>, RedisError> {
        let conn = match &mut self.0 {
            Pooled::Cluster(conn) => conn.inner(),
            _ => {
                return match cmd.query_async::<Value>(self).await {
                    Ok(value) => Ok(vec![(None, Ok(value))]),
                    Err(err) if err.code().is_some() => Ok(vec![(None, Err(err))]),
                    Err(err) => Err(err),
                };
            }
        };
        let routing = redis::cluster_routing::RoutingInfo::MultiNode((
            redis::cluster_routing::MultipleNodeRoutingInfo::AllMasters,
            None,
        ));
        let answers = match conn.route_command(cmd.clone(), routing).await? {
            Value::Map(answers) => answers,
            other => {
                return Err(RedisError::from((
                    redis::ErrorKind::UnexpectedReturnType,
                    "expected one answer per primary",
                    format!("{other:?}"),
                )));
            }
        };
        Ok(answers
            .into_iter()
            .map(|(node, answer)| {
                let node = match node {
                    Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    other => format!("{other:?}"),
                };
                let answer = match answer {
                    Value::ServerError(err) => Err(err.into()),
                    value => Ok(value),
                };
                (Some(node), answer)
            })
            .collect())
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Pooled::Single(conn) => conn.req_packed_command(cmd),
            Pooled::Cluster(conn) => conn.req_packed_command(cmd),
            Pooled::Sentinel(conn) => conn.req_packed_command(cmd),
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
            Pooled::Sentinel(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Pooled::Single(conn) => conn.get_db(),
            Pooled::Cluster(conn) => conn.get_db(),
            Pooled::Sentinel(conn) => conn.get_db(),
        }
    }
}

/// Creates and recycles cluster connections with Herald's timeouts (deadpool-redis's own
/// cluster manager cannot set them, and redis-rs's defaults would break blocking reads).
pub struct ClusterManager {
    client: redis::cluster::ClusterClient,
}

impl managed::Manager for ClusterManager {
    type Type = Tracked<ClusterConnection>;
    type Error = RedisError;

    async fn create(&self) -> Result<Tracked<ClusterConnection>, RedisError> {
        self.client.get_async_connection().await.map(Tracked::new)
    }

    async fn recycle(
        &self,
        conn: &mut Tracked<ClusterConnection>,
        metrics: &managed::Metrics,
    ) -> managed::RecycleResult<RedisError> {
        tracked::recycle(conn, metrics, tracked::ping).await
    }
}

/// Creates connections to one server with Herald's timeouts, and recycles them without a
/// round trip ([`tracked`]).
pub struct SingleManager {
    client: redis::Client,
    config: AsyncConnectionConfig,
}

impl managed::Manager for SingleManager {
    type Type = Tracked<MultiplexedConnection>;
    type Error = RedisError;

    /// A connection the server closed as it opened is explained by what the server says
    /// to a fresh one ([`probe`]: `ERR max number of clients reached`, not `broken pipe`).
    async fn create(&self) -> Result<Tracked<MultiplexedConnection>, RedisError> {
        match self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
        {
            Ok(conn) => Ok(Tracked::new(conn)),
            Err(err) => {
                Err(probe::explain_closed(err, self.client.get_connection_info().addr()).await)
            }
        }
    }

    async fn recycle(
        &self,
        conn: &mut Tracked<MultiplexedConnection>,
        metrics: &managed::Metrics,
    ) -> managed::RecycleResult<RedisError> {
        tracked::recycle(conn, metrics, tracked::ping).await
    }
}

/// A pool over a Redis Cluster reached through `nodes` (any subset of its nodes).
pub fn create_cluster_pool(
    nodes: &[Redacted<String>],
    max_size: usize,
) -> Result<Pool, ConfigError> {
    create_cluster_pool_with(nodes, None, &Credentials::default(), max_size)
}

/// The variable naming the cluster's seed nodes, in messages.
pub(super) const CLUSTER_NODES_VAR: &str = "REDIS_CLUSTER_NODES (--redis-cluster-nodes)";

pub(super) fn create_cluster_pool_with(
    nodes: &[Redacted<String>],
    certs: Option<TlsCertificates>,
    auth: &Credentials,
    max_size: usize,
) -> Result<Pool, ConfigError> {
    let infos = nodes
        .iter()
        .map(|node| {
            let url = node.expose().as_str();
            let info = url.into_connection_info().map_err(|err| {
                ConfigError::new(
                    CLUSTER_NODES_VAR,
                    format!(
                        "{} is not a Redis URL ({}); expected redis://host:port,redis://host:port (or rediss://)",
                        redact_url(url),
                        error_reason(&err)
                    ),
                )
            })?;
            auth.apply(info, &redact_url(url))
        })
        .collect::<Result<Vec<ConnectionInfo>, ConfigError>>()?;
    let mut builder = ClusterClientBuilder::new(infos)
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT);
    if let Some(certs) = certs {
        builder = builder.certs(certs);
    }
    let client = builder.build().map_err(|err| {
        ConfigError::new(
            CLUSTER_NODES_VAR,
            format!(
                "is not a list of Redis URLs ({}); expected redis://host:port,redis://host:port (or rediss://)",
                error_reason(&err)
            ),
        )
    })?;
    install_crypto_provider();
    Ok(Kind::Cluster(with_timeouts(
        managed::Pool::builder(ClusterManager { client }),
        max_size,
    ))
    .into())
}

/// A pool of at most `max_size` connections to the server at `url`, with the timeouts above.
/// Opens no connection yet. A `rediss://` URL verifies the server against the system's roots.
pub fn create_pool(url: &str, max_size: usize) -> Result<Pool, ConfigError> {
    create_pool_with(url, None, &Credentials::default(), max_size)
}

pub(super) fn create_pool_with(
    url: &str,
    certs: Option<TlsCertificates>,
    auth: &Credentials,
    max_size: usize,
) -> Result<Pool, ConfigError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let unusable = |err: RedisError| {
        ConfigError::new(
            "REDIS_URL (--redis-url)",
            format!(
                "{} is not a usable Redis URL ({}); expected redis://[user:password@]host:port[/db] or rediss://...",
                redact_url(url),
                error_reason(&err)
            ),
        )
    };
    let info = auth.apply(
        url.into_connection_info().map_err(unusable)?,
        &redact_url(url),
    )?;
    let client = match certs {
        Some(certs) => redis::Client::build_with_tls(info, certs),
        None => redis::Client::open(info),
    }
    .map_err(unusable)?;
    install_crypto_provider();
    Ok(Kind::Single(with_timeouts(
        managed::Pool::builder(SingleManager { client, config }),
        max_size,
    ))
    .into())
}

/// A pool of at most `max_size` connections to `url` made with `config` and no pool
/// timeouts: for tests on tokio's paused clock, where any armed timer would fire while a
/// reply is awaited. Workers use [`Target::open`].
pub fn untimed_pool(
    url: &str,
    config: AsyncConnectionConfig,
    max_size: usize,
) -> Result<Pool, RedisError> {
    let client = redis::Client::open(url)?;
    let pool = managed::Pool::builder(SingleManager { client, config })
        .max_size(max_size)
        .build()
        .expect("a pool without timeouts needs no runtime");
    Ok(Kind::Single(pool).into())
}
