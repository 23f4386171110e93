//! Redis Sentinel: connections to the primary the Sentinels name, followed through a
//! failover (`REDIS_SENTINEL_NODES`, `REDIS_SENTINEL_MASTER`).
//!
//! Two hops, each with its own credentials, and TLS on both or neither:
//! - to the Sentinels, with the `user:password` of their URLs (one for all Sentinels: they
//!   share one configuration), asking `ROLE` (is it a Sentinel?) and `SENTINEL MASTERS`;
//! - to the primary they name, with [`Credentials`] (`REDIS_USERNAME`, `REDIS_PASSWORD`),
//!   asking `ROLE` (is it still the primary?) before any connection is used.
//!
//! `rediss://` Sentinel URLs mean TLS to the Sentinels and to the primary (Redis's
//! `tls-replication yes` deployments), both verified against `REDIS_CA_CERT` or the system's
//! roots, both shown the client certificate when one is given. Sentinels announce the
//! primary by IP address (unless `resolve-hostnames`/`announce-hostnames` are on): its
//! certificate must name that address.

use deadpool::managed;
use deadpool_redis::redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use deadpool_redis::redis::{
    self, AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError,
    TlsCertificates, TlsMode, Value,
};

use super::credentials::Credentials;
use super::errors::{error_reason, redact_url};
use super::limits::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT, with_timeouts};
use super::tls::install_crypto_provider;
use super::tracked::{self, Tracked};
use crate::Redacted;
use crate::error::ConfigError;

/// The variable naming the Sentinels, in messages.
pub const NODES_VAR: &str = "REDIS_SENTINEL_NODES (--redis-sentinel-nodes)";
/// The variable naming the primary, in messages.
pub const MASTER_VAR: &str = "REDIS_SENTINEL_MASTER (--redis-sentinel-master)";

/// Creates connections to the primary the Sentinels name, and drops any that no longer
/// reach a primary: after a failover, a connection to the old primary fails (it died) or
/// answers `ROLE` with `slave` (it came back demoted), and the next one is made to the
/// primary the Sentinels name now. No restart needed.
pub struct SentinelManager {
    /// Asks the Sentinels; behind a lock because asking needs `&mut`.
    client: tokio::sync::Mutex<SentinelClient>,
    config: AsyncConnectionConfig,
}

impl managed::Manager for SentinelManager {
    type Type = Tracked<redis::aio::MultiplexedConnection>;
    type Error = RedisError;

    async fn create(&self) -> Result<Tracked<redis::aio::MultiplexedConnection>, RedisError> {
        let mut client = self.client.lock().await;
        client
            .get_async_connection_with_config(&self.config)
            .await
            .map(Tracked::new)
    }

    /// A connection whose command failed, or that answered `READONLY` (its server was
    /// demoted), is discarded; one idle for [`super::RECHECK_IDLE`] must answer `ROLE` with
    /// `master` first.
    async fn recycle(
        &self,
        conn: &mut Tracked<redis::aio::MultiplexedConnection>,
        metrics: &managed::Metrics,
    ) -> managed::RecycleResult<RedisError> {
        tracked::recycle(conn, metrics, async |conn| {
            let role: Vec<Value> = redis::cmd("ROLE").query_async(conn).await?;
            match role.first() {
                Some(Value::BulkString(role)) if role.as_slice() == b"master" => Ok(()),
                _ => Err(managed::RecycleError::message(
                    "no longer the primary (demoted after a failover)",
                )),
            }
        })
        .await
    }
}

/// A pool of connections to the primary named `master` by the Sentinels at `nodes`.
pub(super) fn create_pool(
    nodes: &[Redacted<String>],
    master: &str,
    certs: Option<TlsCertificates>,
    auth: &Credentials,
    max_size: usize,
) -> Result<managed::Pool<SentinelManager>, ConfigError> {
    let client = client(nodes, master, certs, auth)?;
    install_crypto_provider();
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    Ok(with_timeouts(
        managed::Pool::builder(SentinelManager {
            client: tokio::sync::Mutex::new(client),
            config,
        }),
        max_size,
    ))
}

/// The Sentinel client: the Sentinels' addresses and credentials from their URLs, TLS to
/// both hops when they are `rediss://`, the primary's credentials from `auth`.
fn client(
    nodes: &[Redacted<String>],
    master: &str,
    certs: Option<TlsCertificates>,
    auth: &Credentials,
) -> Result<SentinelClient, ConfigError> {
    if master.trim().is_empty() {
        return Err(ConfigError::new(
            MASTER_VAR,
            "is required with REDIS_SENTINEL_NODES: the name the Sentinels monitor the primary under (sentinel monitor NAME ...)",
        ));
    }
    let sentinels = nodes
        .iter()
        .map(|node| parse(node.expose()))
        .collect::<Result<Vec<_>, _>>()?;
    let first = sentinels
        .first()
        .ok_or_else(|| ConfigError::new(NODES_VAR, "names no Sentinel"))?
        .redis_settings()
        .clone();
    for (node, info) in nodes.iter().zip(&sentinels) {
        let redis = info.redis_settings();
        if redis.username() != first.username() || redis.password() != first.password() {
            return Err(ConfigError::new(
                NODES_VAR,
                format!(
                    "{} has another user or password than the first Sentinel; Herald uses one for all Sentinels: write the same user:password in every URL",
                    redact_url(node.expose())
                ),
            ));
        }
        if redis.db() != 0 {
            return Err(ConfigError::new(
                NODES_VAR,
                format!(
                    "{} names a database; Sentinels have none: drop the /{}",
                    redact_url(node.expose()),
                    redis.db()
                ),
            ));
        }
    }
    // The scheme is the same for every node (checked with the certificates).
    let tls = match sentinels[0].addr() {
        ConnectionAddr::TcpTls { insecure, .. } => Some(if *insecure {
            TlsMode::Insecure
        } else {
            TlsMode::Secure
        }),
        _ => None,
    };
    let addrs = sentinels.iter().map(|info| info.addr().clone());
    let mut builder = SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)
        .map_err(|err| ConfigError::new(NODES_VAR, error_reason(&err)))?;
    if let Some(username) = first.username() {
        builder = builder.set_client_to_sentinel_username(username);
    }
    if let Some(password) = first.password() {
        builder = builder.set_client_to_sentinel_password(password);
    }
    if let Some(mode) = tls {
        builder = builder.set_client_to_redis_tls_mode(mode);
        if let Some(certs) = certs {
            builder = builder
                .set_client_to_sentinel_certificates(certs.clone())
                .set_client_to_redis_certificates(certs);
        }
    }
    if let Some(username) = &auth.username {
        builder = builder.set_client_to_redis_username(username);
    }
    if let Some(password) = &auth.password {
        builder = builder.set_client_to_redis_password(password.expose());
    }
    builder.build().map_err(|err| {
        ConfigError::new(
            NODES_VAR,
            format!("cannot be used ({})", error_reason(&err)),
        )
    })
}

/// One Sentinel URL, its password never in the message.
fn parse(url: &str) -> Result<ConnectionInfo, ConfigError> {
    url.trim().into_connection_info().map_err(|err| {
        ConfigError::new(
            NODES_VAR,
            format!(
                "{} is not a Sentinel URL ({}); expected redis://[user:password@]host:26379 or rediss://...",
                redact_url(url),
                error_reason(&err)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(urls: &[&str]) -> Vec<Redacted<String>> {
        urls.iter().map(|u| Redacted::new(u.to_string())).collect()
    }

    fn refusal(urls: &[&str], master: &str) -> String {
        match client(&nodes(urls), master, None, &Credentials::default()) {
            Ok(_) => panic!("{urls:?} accepted"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn sentinel_urls_are_checked_and_never_echo_a_password() {
        client(
            &nodes(&[
                "rediss://watcher:pw@127.0.0.1:26379",
                "rediss://watcher:pw@127.0.0.1:26380",
            ]),
            "herald-primary",
            None,
            &Credentials::default(),
        )
        .expect("TLS Sentinels with one user");
        let text = refusal(
            &[
                "redis://watcher:pw@127.0.0.1:26379",
                "redis://watcher:hunter2@127.0.0.1:26380",
            ],
            "m",
        );
        assert!(
            text.starts_with(NODES_VAR) && text.contains("same user:password"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        let text = refusal(&["redis://127.0.0.1:26379/2"], "m");
        assert!(text.contains("drop the /2"), "{text}");
        let text = refusal(&["http://:hunter2@x"], "m");
        assert!(
            text.starts_with(NODES_VAR) && !text.contains("hunter2"),
            "{text}"
        );
        let text = refusal(&["redis://127.0.0.1:26379"], " ");
        assert!(text.starts_with(MASTER_VAR), "{text}");
    }
}
