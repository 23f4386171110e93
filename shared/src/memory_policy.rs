//! Redis's `maxmemory-policy`, which a queue needs to be `noeviction`: any other policy lets
//! a full Redis evict keys, and an evicted lane, delayed set, sent marker or idempotency key
//! is a job lost, sent twice or enqueued twice, silently.
//!
//! Every binary reads it once at start-up ([`check_at_start`] for command-line tools,
//! [`watch_at_start`] for services, which may start before Redis) and warns loudly when it is
//! anything else; `status` shows it. Managed Redis and ACL users often refuse `CONFIG GET`:
//! then the policy is [`MemoryPolicy::Unchecked`], said once, never an error.

use deadpool_redis::redis::{self, RedisError};

use crate::redis_pool::{Connection, Pool};

/// The only policy under which Redis never drops a queued job.
pub const REQUIRED: &str = "noeviction";

/// What Redis said its `maxmemory-policy` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemoryPolicy {
    /// The policy's name (`noeviction`, `allkeys-lru`, ...).
    Policy(String),
    /// Redis refused to say (`CONFIG GET` not allowed): the reason.
    Unchecked(String),
}

impl MemoryPolicy {
    /// Reads the policy. A refusal (an ACL user without `CONFIG`, a managed Redis that
    /// renames it) is `Unchecked`; an error only when Redis could not be reached.
    pub async fn read(conn: &mut Connection) -> Result<MemoryPolicy, RedisError> {
        let reply: Result<Vec<String>, RedisError> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(conn)
            .await;
        match reply {
            Ok(pair) => Ok(match pair.get(1) {
                Some(policy) => MemoryPolicy::Policy(policy.clone()),
                None => {
                    MemoryPolicy::Unchecked("CONFIG GET maxmemory-policy answered nothing".into())
                }
            }),
            // Redis answered with an error (NOPERM, ERR unknown command): a refusal.
            Err(err) if err.code().is_some() => Ok(MemoryPolicy::Unchecked(format!(
                "CONFIG GET was refused: {}",
                crate::redis_pool::error_reason(&err)
            ))),
            Err(err) => Err(err),
        }
    }

    /// The policy's name, `None` when it could not be checked.
    pub fn policy(&self) -> Option<&str> {
        match self {
            MemoryPolicy::Policy(policy) => Some(policy),
            MemoryPolicy::Unchecked(_) => None,
        }
    }

    /// True for a policy that may evict keys (not for an unchecked one).
    pub fn evicts(&self) -> bool {
        self.policy().is_some_and(|p| p != REQUIRED)
    }

    /// One line for people: `noeviction`, a warning, or why it is unknown.
    pub fn describe(&self) -> String {
        match self {
            MemoryPolicy::Policy(policy) if policy == REQUIRED => policy.clone(),
            MemoryPolicy::Policy(policy) => format!(
                "{policy}: Redis may EVICT Herald's keys when memory is full (queued jobs lost, sent ones sent again); set maxmemory-policy noeviction"
            ),
            MemoryPolicy::Unchecked(reason) => {
                format!("could not be checked ({reason}); make sure it is noeviction")
            }
        }
    }

    /// Logs the policy once: a warning when it evicts; when it could not be checked, a
    /// warning from a service and an info line from a command-line tool (which runs often).
    pub fn log(&self, service: bool) {
        match self {
            MemoryPolicy::Policy(policy) if policy == REQUIRED => {
                tracing::debug!("Redis maxmemory-policy is noeviction");
            }
            MemoryPolicy::Policy(policy) => tracing::warn!(
                maxmemory_policy = %policy,
                "Redis's maxmemory-policy is {policy}, not noeviction: when Redis fills up it EVICTS keys, and an evicted lane, retry, sent marker or idempotency key loses a job or sends it twice, silently. Set maxmemory-policy noeviction"
            ),
            MemoryPolicy::Unchecked(reason) if service => tracing::warn!(
                "Redis's maxmemory-policy could not be checked ({reason}); make sure it is noeviction"
            ),
            MemoryPolicy::Unchecked(reason) => tracing::info!(
                "Redis's maxmemory-policy could not be checked ({reason}); make sure it is noeviction"
            ),
        }
    }
}

/// Reads and logs the policy for a command-line tool that has just connected. Silent when
/// Redis cannot be reached (the tool's own command reports that).
pub async fn check_at_start(pool: &Pool) {
    if let Ok(mut conn) = pool.get().await
        && let Ok(policy) = MemoryPolicy::read(&mut conn).await
    {
        policy.log(false);
    }
}

/// Reads and logs the policy for a service, as soon as Redis answers (it may be down at
/// start): a task that retries every few seconds until it has an answer, then ends. It
/// only logs, so nobody needs to watch it.
pub fn watch_at_start(pool: Pool) {
    tokio::spawn(async move {
        loop {
            if let Ok(mut conn) = pool.get().await
                && let Ok(policy) = MemoryPolicy::read(&mut conn).await
            {
                policy.log(true);
                return;
            }
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_noeviction_is_safe() {
        let policy = |p: &str| MemoryPolicy::Policy(p.into());
        assert!(!policy("noeviction").evicts());
        assert!(policy("allkeys-lru").evicts());
        assert!(policy("volatile-ttl").evicts());
        assert!(!MemoryPolicy::Unchecked("NOPERM".into()).evicts());
        assert_eq!(policy("noeviction").describe(), "noeviction");
        assert!(policy("allkeys-lru").describe().contains("EVICT"));
        assert!(
            MemoryPolicy::Unchecked("CONFIG GET was refused".into())
                .describe()
                .starts_with("could not be checked")
        );
    }
}
