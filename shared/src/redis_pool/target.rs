//! Where Redis is ([`Target`]: one server, a cluster, or a primary found through Sentinels)
//! and opening a pool to it, checked (reachable, `maxmemory-policy`) at start-up.

use deadpool_redis::redis::{self, TlsCertificates};

use super::credentials::Credentials;
use super::errors::*;
use super::memory_policy;
use super::pool::*;
use super::pool::{CLUSTER_NODES_VAR, create_cluster_pool_with, create_pool_with};
use super::sentinel;
use super::tls::*;
use crate::Redacted;
use crate::error::ConfigError;

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
                    .map(Pool::from_sentinel)
            }
        }
    }

    /// A pool that has answered PING: what a command-line tool wants at start-up. A server
    /// certificate that does not verify is a [`ConnectError::Config`] naming the variable.
    ///
    /// Also reads Redis's `maxmemory-policy` and warns unless it is `noeviction`
    /// ([`memory_policy`]).
    pub async fn connect(&self, max_size: usize) -> Result<Pool, ConnectError> {
        let pool = self.pool(max_size)?;
        self.ping(&pool).await?;
        memory_policy::check_at_start(&pool).await;
        Ok(pool)
    }

    /// A pool for a long-running service (worker, webhook, API): Redis may be down at
    /// start (the service waits for it), but a TLS set-up that can never work (a server
    /// certificate that does not verify) is an error naming its variable.
    ///
    /// Reads Redis's `maxmemory-policy` as soon as Redis answers and warns unless it is
    /// `noeviction` ([`memory_policy::watch_at_start`]).
    pub async fn open(&self, max_size: usize) -> Result<Pool, ConfigError> {
        let pool = self.pool(max_size)?;
        match self.ping(&pool).await {
            Ok(()) | Err(ConnectError::Unreachable { .. }) => {
                memory_policy::watch_at_start(pool.clone());
                Ok(pool)
            }
            Err(ConnectError::Config(err)) => Err(err),
        }
    }

    async fn ping(&self, pool: &Pool) -> Result<(), ConnectError> {
        let fail = |err: RedisFailure| {
            let reason = err.to_string();
            match self.tls_failure(&reason) {
                Some(err) => ConnectError::Config(err),
                None => ConnectError::Unreachable {
                    url: self.describe(),
                    kind: err.kind(),
                    reason,
                },
            }
        };
        let mut conn = pool.get().await.map_err(|err| fail(err.into()))?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|err| fail(err.into()))
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

/// A pool for the server at `url` that has answered PING.
pub async fn connect(url: &str, max_size: usize) -> Result<Pool, ConnectError> {
    Target::single(url).connect(max_size).await
}
