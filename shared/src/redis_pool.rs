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
//!
//! TLS: a `rediss://` URL (single server or cluster seed nodes) connects with rustls,
//! verifying the server against the system's roots, or against `REDIS_CA_CERT` when given,
//! and presenting `REDIS_CLIENT_CERT` + `REDIS_CLIENT_KEY` when the server asks for a client
//! certificate ([`TlsFiles`]). Certificate files with a `redis://` URL are refused, never
//! ignored: nothing falls back to plain text. A server certificate that does not verify is a
//! configuration error naming the variable ([`Target::open`], [`Target::connect`]).
//!
//! Credentials: in the URL (`redis://herald:PASSWORD@host`) or apart from it
//! ([`Credentials`]: `REDIS_USERNAME`, `REDIS_PASSWORD`), which Sentinel mode needs
//! ([`sentinel`]: a Sentinel URL's own credentials are the Sentinels').

mod credentials;
pub mod sentinel;
mod shared;
mod tracked;

pub use credentials::{Credentials, PASSWORD_VAR, USERNAME_VAR};
pub use sentinel::SentinelManager;
pub use shared::SharedConnection;
pub use tracked::{RECHECK_IDLE, Tracked};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use deadpool::managed;
use deadpool_redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use deadpool_redis::redis::cluster::ClusterClientBuilder;
use deadpool_redis::redis::cluster_async::ClusterConnection;
use deadpool_redis::redis::{
    self, AsyncConnectionConfig, ClientTlsConfig, Cmd, ConnectionInfo, IntoConnectionInfo,
    Pipeline, RedisError, RedisFuture, TlsCertificates, Value,
};
use deadpool_redis::{PoolError, Runtime};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

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

/// The variable naming the private CA, in messages.
pub const CA_CERT_VAR: &str = "REDIS_CA_CERT (--redis-ca-cert)";
/// The variable naming the client certificate, in messages.
pub const CLIENT_CERT_VAR: &str = "REDIS_CLIENT_CERT (--redis-client-cert)";
/// The variable naming the client key, in messages.
pub const CLIENT_KEY_VAR: &str = "REDIS_CLIENT_KEY (--redis-client-key)";

/// Where Redis is (one server, the seed nodes of a cluster, or the Sentinels), the
/// certificates for `rediss://`, and the data nodes' user and password when not in the URLs.
#[derive(Clone, Debug)]
pub struct Target {
    pub servers: Servers,
    pub tls: TlsFiles,
    pub auth: Credentials,
}

/// One server, the seed nodes of a cluster, or the Sentinels that know a primary.
#[derive(Clone, Debug)]
pub enum Servers {
    Single(Redacted<String>),
    Cluster(Vec<Redacted<String>>),
    /// Sentinels (`redis://[user:password@]host:26379`, or `rediss://`) and the name of the
    /// primary they monitor (`REDIS_SENTINEL_NODES`, `REDIS_SENTINEL_MASTER`).
    Sentinel {
        nodes: Vec<Redacted<String>>,
        master: String,
    },
}

/// PEM files for `rediss://` connections; all optional. Without a CA the system's roots
/// verify the server; the client certificate and key come together or not at all.
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    /// The CA (or CAs) that signed the server's certificate (`REDIS_CA_CERT`).
    pub ca_cert: Option<PathBuf>,
    /// The client certificate chain for mutual TLS (`REDIS_CLIENT_CERT`).
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (`REDIS_CLIENT_KEY`).
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    fn is_empty(&self) -> bool {
        self.ca_cert.is_none() && self.client_cert.is_none() && self.client_key.is_none()
    }

    /// The variable to name first when files are given but TLS is not used.
    fn first_var(&self) -> &'static str {
        if self.ca_cert.is_some() {
            CA_CERT_VAR
        } else if self.client_cert.is_some() {
            CLIENT_CERT_VAR
        } else {
            CLIENT_KEY_VAR
        }
    }

    /// Reads and checks the files; `None` when none is given. Each problem names its
    /// variable: unreadable, not PEM, no certificate in it, a certificate without its key.
    pub fn load(&self) -> Result<Option<TlsCertificates>, ConfigError> {
        if self.is_empty() {
            return Ok(None);
        }
        let root_cert = match &self.ca_cert {
            Some(path) => {
                let pem = read_pem(CA_CERT_VAR, path)?;
                check_certificates(CA_CERT_VAR, path, &pem)?;
                Some(pem)
            }
            None => None,
        };
        let client_tls = match (&self.client_cert, &self.client_key) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    CLIENT_KEY_VAR,
                    "is required with REDIS_CLIENT_CERT: give the client certificate's private key (PEM)",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    CLIENT_CERT_VAR,
                    "is required with REDIS_CLIENT_KEY: give the client certificate (PEM)",
                ));
            }
            (Some(cert_path), Some(key_path)) => {
                let client_cert = read_pem(CLIENT_CERT_VAR, cert_path)?;
                check_certificates(CLIENT_CERT_VAR, cert_path, &client_cert)?;
                let client_key = read_pem(CLIENT_KEY_VAR, key_path)?;
                PrivateKeyDer::from_pem_slice(&client_key).map_err(|err| {
                    ConfigError::new(
                        CLIENT_KEY_VAR,
                        format!(
                            "{} holds no usable private key ({err}); expected a PEM file (BEGIN PRIVATE KEY)",
                            key_path.display()
                        ),
                    )
                })?;
                Some(ClientTlsConfig {
                    client_cert,
                    client_key,
                })
            }
        };
        Ok(Some(TlsCertificates {
            client_tls,
            root_cert,
        }))
    }
}

fn read_pem(var: &str, path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|err| {
        ConfigError::new(
            var,
            format!(
                "cannot read {}: {}",
                path.display(),
                without_os_error(&err.to_string())
            ),
        )
    })
}

fn check_certificates(var: &str, path: &std::path::Path, pem: &[u8]) -> Result<(), ConfigError> {
    let certs: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|err| {
            ConfigError::new(
                var,
                format!("{} is not a PEM certificate file ({err})", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(ConfigError::new(
            var,
            format!(
                "{} holds no certificate; expected a PEM file (BEGIN CERTIFICATE)",
                path.display()
            ),
        ));
    }
    Ok(())
}

impl Target {
    /// The single server at `url`, TLS with the system's roots when it is `rediss://`.
    pub fn single(url: impl Into<String>) -> Target {
        Target {
            servers: Servers::Single(Redacted::new(url.into())),
            tls: TlsFiles::default(),
            auth: Credentials::default(),
        }
    }

    /// The target for messages, credentials masked.
    pub fn describe(&self) -> String {
        match &self.servers {
            Servers::Single(url) => redact_url(url.expose()),
            Servers::Cluster(nodes) => {
                let nodes: Vec<String> = nodes.iter().map(|n| redact_url(n.expose())).collect();
                format!("cluster {}", nodes.join(","))
            }
            Servers::Sentinel { nodes, master } => {
                let nodes: Vec<String> = nodes.iter().map(|n| redact_url(n.expose())).collect();
                format!("primary {master:?} of sentinels {}", nodes.join(","))
            }
        }
    }

    /// Whether connections use TLS (`rediss://`).
    pub fn uses_tls(&self) -> bool {
        self.urls().iter().any(|url| is_tls_url(url))
    }

    fn urls(&self) -> Vec<&str> {
        match &self.servers {
            Servers::Single(url) => vec![url.expose().as_str()],
            Servers::Cluster(nodes) | Servers::Sentinel { nodes, .. } => {
                nodes.iter().map(|n| n.expose().as_str()).collect()
            }
        }
    }

    /// The variable the URLs come from, in messages.
    fn urls_var(&self) -> &'static str {
        match &self.servers {
            Servers::Single(_) => "REDIS_URL (--redis-url)",
            Servers::Cluster(_) => CLUSTER_NODES_VAR,
            Servers::Sentinel { .. } => sentinel::NODES_VAR,
        }
    }

    /// The certificates, checked against the URLs: files given with a `redis://` URL (which
    /// would silently not use them) are refused, as are mixed `redis://` and `rediss://`
    /// cluster or Sentinel nodes.
    fn certificates(&self) -> Result<Option<TlsCertificates>, ConfigError> {
        let urls = self.urls();
        let tls = urls.iter().filter(|url| is_tls_url(url)).count();
        if tls > 0 && tls < urls.len() {
            return Err(ConfigError::new(
                self.urls_var(),
                "mixes redis:// and rediss:// nodes; give every node with rediss:// to use TLS",
            ));
        }
        if tls == 0 && !self.tls.is_empty() {
            let var = self.tls.first_var();
            let plain = urls.first().map(|url| redact_url(url)).unwrap_or_default();
            return Err(ConfigError::new(
                var,
                format!(
                    "is set, but {plain} is not a rediss:// URL and would not use TLS: write rediss://"
                ),
            ));
        }
        self.tls.load()
    }

    /// A pool of at most `max_size` connections. Opens no connection yet.
    pub fn pool(&self, max_size: usize) -> Result<Pool, ConfigError> {
        let certs = self.certificates()?;
        match &self.servers {
            Servers::Single(url) => create_pool_with(url.expose(), certs, &self.auth, max_size),
            Servers::Cluster(nodes) => create_cluster_pool_with(nodes, certs, &self.auth, max_size),
            Servers::Sentinel { nodes, master } => {
                sentinel::create_pool(nodes, master, certs, &self.auth, max_size)
            }
        }
    }

    /// A pool that has answered PING: what a command-line tool wants at start-up. A server
    /// certificate that does not verify is a [`ConnectError::Config`] naming the variable.
    ///
    /// Also reads Redis's `maxmemory-policy` and warns unless it is `noeviction`
    /// ([`crate::memory_policy`]).
    pub async fn connect(&self, max_size: usize) -> Result<Pool, ConnectError> {
        let pool = self.pool(max_size)?;
        self.ping(&pool).await?;
        crate::memory_policy::check_at_start(&pool).await;
        Ok(pool)
    }

    /// A pool for a long-running service (worker, webhook, API): Redis may be down at
    /// start (the service waits for it), but a TLS set-up that can never work (a server
    /// certificate that does not verify) is an error naming its variable.
    ///
    /// Reads Redis's `maxmemory-policy` as soon as Redis answers and warns unless it is
    /// `noeviction` ([`crate::memory_policy::watch_at_start`]).
    pub async fn open(&self, max_size: usize) -> Result<Pool, ConfigError> {
        let pool = self.pool(max_size)?;
        match self.ping(&pool).await {
            Ok(()) | Err(ConnectError::Unreachable { .. }) => {
                crate::memory_policy::watch_at_start(pool.clone());
                Ok(pool)
            }
            Err(ConnectError::Config(err)) => Err(err),
        }
    }

    async fn ping(&self, pool: &Pool) -> Result<(), ConnectError> {
        let fail = |reason: String| match self.tls_failure(&reason) {
            Some(err) => ConnectError::Config(err),
            None => ConnectError::Unreachable {
                url: self.describe(),
                reason,
            },
        };
        let mut conn = pool
            .get()
            .await
            .map_err(|err| fail(pool_error_reason(&err)))?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|err| fail(error_reason(&err)))
    }

    /// A connection failure that is the TLS set-up's fault, named by its variable.
    fn tls_failure(&self, reason: &str) -> Option<ConfigError> {
        if !self.uses_tls() {
            return None;
        }
        let lower = reason.to_ascii_lowercase();
        if lower.contains("invalid peer certificate") || lower.contains("certificate verify") {
            let against = match &self.tls.ca_cert {
                Some(path) => format!("the CA in {}", path.display()),
                None => "the system's roots (set REDIS_CA_CERT to a private CA's PEM file)".into(),
            };
            return Some(ConfigError::new(
                CA_CERT_VAR,
                format!(
                    "the certificate of {} does not verify against {against}: {reason}",
                    self.describe()
                ),
            ));
        }
        if lower.contains("alert") && lower.contains("certificate") {
            let hint = if self.tls.client_cert.is_none() {
                " (none given: set REDIS_CLIENT_CERT and REDIS_CLIENT_KEY)"
            } else {
                ""
            };
            return Some(ConfigError::new(
                CLIENT_CERT_VAR,
                format!(
                    "{} refused the client certificate{hint}: {reason}",
                    self.describe()
                ),
            ));
        }
        None
    }
}

fn is_tls_url(url: &str) -> bool {
    url.trim_start()
        .to_ascii_lowercase()
        .starts_with("rediss://")
}

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
    fn from_sentinel(pool: managed::Pool<SentinelManager>) -> Pool {
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

    async fn create(&self) -> Result<Tracked<MultiplexedConnection>, RedisError> {
        self.client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
            .map(Tracked::new)
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
const CLUSTER_NODES_VAR: &str = "REDIS_CLUSTER_NODES (--redis-cluster-nodes)";

fn create_cluster_pool_with(
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

fn create_pool_with(
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

/// rustls needs one process-wide crypto provider; Herald uses aws-lc-rs (as reqwest does).
/// Installing it explicitly keeps `rediss://` working whatever else the build enables.
fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
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
    Target::single(url).connect(max_size).await
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
