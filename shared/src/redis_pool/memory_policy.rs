//! Redis's `maxmemory-policy`, which a queue needs to be `noeviction`: any other policy lets
//! a full Redis evict keys, and an evicted lane, delayed set, sent marker or idempotency key
//! is a job lost, sent twice or enqueued twice, silently.
//!
//! Every binary reads it once at start-up ([`check_at_start`] for command-line tools,
//! [`watch_at_start`] for services, which may start before Redis) and warns loudly when it is
//! anything else; `status` shows it. Managed Redis and ACL users often refuse `CONFIG GET`:
//! then the policy is [`MemoryPolicy::Unchecked`], said once, never an error.
//!
//! On a Redis Cluster it is read from every master ([`MemoryPolicies`]): Herald's keys live on
//! one, but a resharding or a failover can move them to any other, and `CONFIG GET` alone
//! would reach one random node, maybe a replica. The worst answer is the one shown, with the
//! master it came from.

use deadpool_redis::redis::{self, FromRedisValue, RedisError, Value};

use super::pool::{Connection, Pool};

/// The only policy under which Redis never drops a queued job.
pub const REQUIRED: &str = "noeviction";

/// What one Redis server said its `maxmemory-policy` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemoryPolicy {
    /// The policy's name (`noeviction`, `allkeys-lru`, ...).
    Policy(String),
    /// Redis refused to say (`CONFIG GET` not allowed): the reason.
    Unchecked(String),
}

impl MemoryPolicy {
    /// Reads the policy of every primary and keeps the worst ([`MemoryPolicies::read`]).
    pub async fn read(conn: &mut Connection) -> Result<MemoryPolicy, RedisError> {
        Ok(MemoryPolicies::read(conn).await?.worst().1.clone())
    }

    /// One server's answer to `CONFIG GET maxmemory-policy`. A refusal (an ACL user without
    /// `CONFIG`, a managed Redis that renames it) is `Unchecked`.
    fn from_reply(reply: Result<Value, RedisError>) -> MemoryPolicy {
        let pair =
            reply.and_then(|value| Vec::<String>::from_redis_value(value).map_err(Into::into));
        match pair {
            Ok(pair) => match pair.get(1) {
                Some(policy) => MemoryPolicy::Policy(policy.clone()),
                None => {
                    MemoryPolicy::Unchecked("CONFIG GET maxmemory-policy answered nothing".into())
                }
            },
            Err(err) => MemoryPolicy::Unchecked(format!(
                "CONFIG GET was refused: {}",
                super::errors::redis_words(&err)
            )),
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

    /// How bad it is, for picking the one to show: evicting, then unknown, then fine.
    fn severity(&self) -> u8 {
        match self {
            MemoryPolicy::Policy(_) if self.evicts() => 2,
            MemoryPolicy::Unchecked(_) => 1,
            MemoryPolicy::Policy(_) => 0,
        }
    }

    /// One line for people: `noeviction`, a warning, or why it is unknown.
    pub fn describe(&self) -> String {
        self.describe_on(None)
    }

    /// [`describe`](MemoryPolicy::describe), naming the server when it is one of several.
    fn describe_on(&self, node: Option<&str>) -> String {
        let on = node.map(|n| format!(" on {n}")).unwrap_or_default();
        match self {
            MemoryPolicy::Policy(policy) if policy == REQUIRED => policy.clone(),
            MemoryPolicy::Policy(policy) => format!(
                "{policy}{on}: Redis may EVICT Herald's keys when memory is full (queued jobs lost, sent ones sent again); set maxmemory-policy noeviction"
            ),
            MemoryPolicy::Unchecked(reason) => {
                format!("could not be checked{on} ({reason}); make sure it is noeviction")
            }
        }
    }
}

/// The `maxmemory-policy` of every primary: one for a single server or Sentinel's primary,
/// one per master of a cluster, each with its address (`None` for a single server).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryPolicies(Vec<(Option<String>, MemoryPolicy)>);

impl MemoryPolicies {
    /// Reads every primary's policy; an error only when Redis could not be reached.
    pub async fn read(conn: &mut Connection) -> Result<MemoryPolicies, RedisError> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg("maxmemory-policy");
        let answers = conn.on_every_primary(&cmd).await?;
        Ok(MemoryPolicies(
            answers
                .into_iter()
                .map(|(node, reply)| (node, MemoryPolicy::from_reply(reply)))
                .collect(),
        ))
    }

    /// The answer that matters most (evicting, then unknown, then `noeviction`) and the
    /// master that gave it.
    pub fn worst(&self) -> (Option<&str>, &MemoryPolicy) {
        const NONE: &MemoryPolicy = &MemoryPolicy::Unchecked(String::new());
        self.0
            .iter()
            .max_by_key(|(_, policy)| policy.severity())
            .map_or((None, NONE), |(node, policy)| (node.as_deref(), policy))
    }

    /// The worst policy's name, `None` when it could not be checked.
    pub fn policy(&self) -> Option<&str> {
        self.worst().1.policy()
    }

    /// One line for people, naming the master when a cluster's is not `noeviction`.
    pub fn describe(&self) -> String {
        let (node, policy) = self.worst();
        policy.describe_on(node)
    }

    /// Logs the worst policy once: a warning when it evicts; when it could not be checked, a
    /// warning from a service and an info line from a command-line tool (which runs often).
    pub fn log(&self, service: bool) {
        let (node, policy) = self.worst();
        let on = node.map(|n| format!(" on {n}")).unwrap_or_default();
        match policy {
            MemoryPolicy::Policy(policy) if policy == REQUIRED => {
                tracing::debug!("Redis maxmemory-policy is noeviction");
            }
            MemoryPolicy::Policy(policy) => tracing::warn!(
                maxmemory_policy = %policy,
                "Redis's maxmemory-policy{on} is {policy}, not noeviction: when Redis fills up it EVICTS keys, and an evicted lane, retry, sent marker or idempotency key loses a job or sends it twice, silently. Set maxmemory-policy noeviction"
            ),
            MemoryPolicy::Unchecked(reason) if service => tracing::warn!(
                "Redis's maxmemory-policy could not be checked{on} ({reason}); make sure it is noeviction"
            ),
            MemoryPolicy::Unchecked(reason) => tracing::info!(
                "Redis's maxmemory-policy could not be checked{on} ({reason}); make sure it is noeviction"
            ),
        }
    }
}

/// Reads and logs the policy for a command-line tool that has just connected. Silent when
/// Redis cannot be reached (the tool's own command reports that).
pub async fn check_at_start(pool: &Pool) {
    if let Ok(mut conn) = pool.get().await
        && let Ok(policies) = MemoryPolicies::read(&mut conn).await
    {
        policies.log(false);
    }
}

/// Reads and logs the policy for a service, as soon as Redis answers (it may be down at
/// start): a task that retries every few seconds until it has an answer, then ends. It
/// only logs, so nobody needs to watch it.
pub fn watch_at_start(pool: Pool) {
    tokio::spawn(async move {
        loop {
            if let Ok(mut conn) = pool.get().await
                && let Ok(policies) = MemoryPolicies::read(&mut conn).await
            {
                policies.log(true);
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
    fn a_cluster_shows_its_worst_master() {
        let of = |answers: &[(&str, MemoryPolicy)]| {
            MemoryPolicies(
                answers
                    .iter()
                    .map(|(node, policy)| (Some(node.to_string()), policy.clone()))
                    .collect(),
            )
        };
        let fine = MemoryPolicy::Policy(REQUIRED.into());
        let lru = MemoryPolicy::Policy("allkeys-lru".into());
        let refused = MemoryPolicy::Unchecked("NOPERM".into());
        let all_fine = of(&[("a:1", fine.clone()), ("b:2", fine.clone())]);
        assert_eq!(all_fine.policy(), Some(REQUIRED));
        assert_eq!(all_fine.describe(), "noeviction");
        let one_evicts = of(&[
            ("a:1", fine.clone()),
            ("b:2", lru),
            ("c:3", refused.clone()),
        ]);
        assert_eq!(one_evicts.policy(), Some("allkeys-lru"));
        assert!(
            one_evicts.describe().starts_with("allkeys-lru on b:2: "),
            "{}",
            one_evicts.describe()
        );
        let one_unknown = of(&[("a:1", fine), ("c:3", refused)]);
        assert_eq!(one_unknown.policy(), None);
        assert!(
            one_unknown
                .describe()
                .starts_with("could not be checked on c:3")
        );
    }

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
