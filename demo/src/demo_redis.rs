//! The demo's Redis: a throwaway server or the one `REDIS_URL` names, under a fresh
//! namespace removed at the end.

use std::collections::HashMap;

use deadpool_redis::redis::{self, AsyncCommands};
use herald_shared::Redacted;
use herald_shared::redis_pool::Pool;
use herald_shared::redis_pool::connect;
use herald_store::Keys;
use herald_store::keys::Stat;
use herald_tests::{NO_PERSISTENCE, RedisServer, StartError};

use crate::jobs::scripted_taps;
use crate::options::*;

/// The demo's Redis: one it started, or one it borrowed under a namespace of its own.
pub(crate) struct DemoRedis {
    pub(crate) url: Redacted<String>,
    pub(crate) namespace: String,
    pub(crate) keys: Keys,
    pub(crate) pool: Pool,
    /// `Some` when the demo started it; dropping it stops the server and removes its data.
    pub(crate) server: Option<RedisServer>,
}

impl DemoRedis {
    pub(crate) async fn start(options: &DemoOptions) -> Result<DemoRedis, DemoError> {
        let (url, namespace, server) = match &options.redis_url {
            Some(url) => {
                let suffix: u32 = rand::random();
                (url.clone(), format!("demo-{suffix:08x}"), None)
            }
            None => {
                let server =
                    tokio::task::spawn_blocking(|| RedisServer::try_start(&NO_PERSISTENCE))
                        .await
                        .map_err(|err| DemoError::RedisStart(err.to_string()))?
                        .map_err(|err| match err {
                            StartError::Missing => DemoError::RedisMissing,
                            StartError::Failed(reason) => DemoError::RedisStart(reason),
                        })?;
                let url = Redacted::new(server.url());
                (url, options.namespace.clone(), Some(server))
            }
        };
        let keys = Keys::new(&namespace)?;
        let pool = connect(url.expose(), 4).await?;
        Ok(DemoRedis {
            url,
            namespace,
            keys,
            pool,
            server,
        })
    }

    /// Where every job is, as `herald-worker status` reports it.
    pub(crate) async fn status(&self) -> Result<herald_operator::status::Status, DemoError> {
        herald_operator::status::collect(&self.pool, &self.keys)
            .await
            .map_err(|err| DemoError::Redis(err.to_string()))
    }

    /// The delivery counts of [`herald_operator::status::collect`] and the inbound stream's length.
    pub(crate) async fn delivery(&self) -> Result<Delivery, DemoError> {
        let t = self.status().await?.total;
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|err| DemoError::Redis(err.to_string()))?;
        let inbound: u64 = conn
            .xlen(self.keys.inbound())
            .await
            .map_err(|err| DemoError::Redis(err.to_string()))?;
        Ok(Delivery {
            sent: t.sent,
            delivered: t.delivered,
            read: t.read,
            revoked: t.revoked,
            inbound,
        })
    }

    /// Herald's counters summed over the lanes, from the stats hash.
    pub(crate) async fn counters(&self) -> Result<Counters, DemoError> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|err| DemoError::Redis(err.to_string()))?;
        let all: HashMap<String, u64> = conn
            .hgetall(self.keys.stats())
            .await
            .map_err(|err| DemoError::Redis(err.to_string()))?;
        Ok(Counters(all))
    }

    /// Removes what the demo left (unless `keep`); returns the pid of a server left running.
    pub(crate) async fn finish(self, keep: bool) -> Option<u32> {
        match self.server {
            Some(server) if keep => Some(server.leave_running()),
            Some(server) => {
                drop(server);
                None
            }
            None if keep => None,
            None => {
                if let Err(err) = delete_namespace(&self.pool, &self.namespace).await {
                    eprintln!(
                        "herald demo: could not delete the demo's keys ({}): {err}",
                        self.keys.all_pattern()
                    );
                }
                None
            }
        }
    }
}

pub(crate) struct Counters(HashMap<String, u64>);

impl Counters {
    /// `stat:otp` + `stat:booking`.
    pub(crate) fn get(&self, stat: Stat) -> u64 {
        herald_shared::Lane::ALL
            .iter()
            .map(|lane| self.0.get(&stat.field(*lane)).copied().unwrap_or(0))
            .sum()
    }
}

/// Deletes every key of `namespace` (they all start with its hash tag).
pub(crate) async fn delete_namespace(
    pool: &Pool,
    namespace: &str,
) -> Result<(), redis::RedisError> {
    let mut conn = pool.get().await.map_err(|err| match err {
        deadpool_redis::PoolError::Backend(err) => err,
        other => redis::RedisError::from(std::io::Error::other(other.to_string())),
    })?;
    let keys: Vec<String> = {
        let mut iter: redis::AsyncIter<String> = conn
            .scan_match(
                Keys::new(namespace)
                    .map_err(|err| redis::RedisError::from(std::io::Error::other(err.to_string())))?
                    .all_pattern(),
            )
            .await?;
        let mut keys = Vec::new();
        while let Some(key) = iter.next_item().await {
            keys.push(key?);
        }
        keys
    };
    for chunk in keys.chunks(500) {
        let _: () = conn.del(chunk).await?;
    }
    Ok(())
}

/// What Interakt's webhooks told Herald about the sent messages, as `herald-worker status`
/// counts it, and the length of the inbound stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub(crate) sent: u64,
    pub(crate) delivered: u64,
    pub(crate) read: u64,
    pub(crate) revoked: u64,
    pub(crate) inbound: u64,
}

impl Delivery {
    /// Every sent message reported delivered and read, or revoked, and every scripted tap on
    /// the inbound stream: all the sandbox posts once the jobs are settled.
    pub(crate) fn complete(&self) -> bool {
        self.delivered + self.revoked >= self.sent
            && self.read >= self.delivered
            && self.inbound >= scripted_taps()
    }
}
