//! What kind of failure a Redis error is ([`RedisErrorKind`]): the one classification that
//! names it in logs, labels its metric, and says whether waiting can help. Pure: it reads
//! the error, never Redis; it never logs or retries (that is [`crate::backoff`] and
//! [`crate::episodes`]).
//!
//! Redis says most of it in the error's code (`OOM`, `NOPERM`, `READONLY`, `LOADING`,
//! `WRONGTYPE`, `WRONGPASS`); two refusals come as a plain `ERR` and are told by their text:
//! `max number of clients reached`, and a command an ACL denies inside a Lua script
//! (`The user executing the script can't run this command`, Redis 7.0).

use deadpool_redis::PoolError;
use deadpool_redis::redis::{ErrorKind, RedisError};

/// The kinds of Redis failure Herald tells apart. Matched on, never parsed back from text:
/// [`RedisErrorKind::label`] is the metric label and the name in logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RedisErrorKind {
    /// No answer: connection refused, reset or timed out, DNS, a pool that could not open a
    /// connection in time.
    Unreachable,
    /// Redis has `maxclients` connections and closes every new one
    /// (`ERR max number of clients reached`).
    MaxClients,
    /// Redis is over `maxmemory` and refuses writes (`OOM command not allowed ...`).
    OutOfMemory,
    /// The server is a read-only replica (`READONLY`): a failover moved the primary, or the
    /// URL names a replica.
    ReadOnly,
    /// Redis is loading its dataset after a restart (`LOADING`).
    Loading,
    /// The ACL user may not run a command or touch a key (`NOPERM`).
    NoPermission,
    /// Redis refuses the credentials (`WRONGPASS`, `NOAUTH`).
    Authentication,
    /// A key Herald uses holds another type of value (`WRONGTYPE`).
    WrongType,
    /// Anything else Redis or the client reported.
    Other,
}

impl RedisErrorKind {
    /// Every kind, in the order docs and metrics list them.
    pub const ALL: [RedisErrorKind; 9] = [
        RedisErrorKind::Unreachable,
        RedisErrorKind::MaxClients,
        RedisErrorKind::OutOfMemory,
        RedisErrorKind::ReadOnly,
        RedisErrorKind::Loading,
        RedisErrorKind::NoPermission,
        RedisErrorKind::Authentication,
        RedisErrorKind::WrongType,
        RedisErrorKind::Other,
    ];

    /// The kind of `err`.
    pub fn of(err: &RedisError) -> RedisErrorKind {
        if let Some(code) = err.code() {
            return Self::of_reply(code, err.detail().unwrap_or_default());
        }
        match err.kind() {
            ErrorKind::AuthenticationFailed => RedisErrorKind::Authentication,
            ErrorKind::Io | ErrorKind::ClusterConnectionNotFound => RedisErrorKind::Unreachable,
            ErrorKind::MasterNameNotFoundBySentinel | ErrorKind::NoValidReplicasFoundBySentinel => {
                RedisErrorKind::Unreachable
            }
            _ if err.is_timeout() || err.is_connection_dropped() => RedisErrorKind::Unreachable,
            _ => RedisErrorKind::Other,
        }
    }

    /// The kind of an error reply: its code (`OOM`) and the text after it.
    pub fn of_reply(code: &str, detail: &str) -> RedisErrorKind {
        match code {
            "OOM" => RedisErrorKind::OutOfMemory,
            "NOPERM" => RedisErrorKind::NoPermission,
            "READONLY" => RedisErrorKind::ReadOnly,
            "LOADING" => RedisErrorKind::Loading,
            "WRONGTYPE" => RedisErrorKind::WrongType,
            "WRONGPASS" | "NOAUTH" => RedisErrorKind::Authentication,
            "ERR" if detail.starts_with("max number of clients reached") => {
                RedisErrorKind::MaxClients
            }
            "ERR" if detail.contains("The user executing the script can't run this command") => {
                RedisErrorKind::NoPermission
            }
            // What a blocked read gets when its server turns into a replica.
            "UNBLOCKED" if detail.contains("master -> replica") => RedisErrorKind::ReadOnly,
            _ => RedisErrorKind::Other,
        }
    }

    /// The kind of a failure to get a pooled connection.
    pub fn of_pool(err: &PoolError) -> RedisErrorKind {
        match err {
            PoolError::Backend(err) => Self::of(err),
            PoolError::Timeout(_) => RedisErrorKind::Unreachable,
            _ => RedisErrorKind::Other,
        }
    }

    /// The metric label and the name in logs: `unreachable`, `max_clients`, `oom`,
    /// `readonly`, `loading`, `noperm`, `auth`, `wrongtype`, `other`.
    pub const fn label(self) -> &'static str {
        match self {
            RedisErrorKind::Unreachable => "unreachable",
            RedisErrorKind::MaxClients => "max_clients",
            RedisErrorKind::OutOfMemory => "oom",
            RedisErrorKind::ReadOnly => "readonly",
            RedisErrorKind::Loading => "loading",
            RedisErrorKind::NoPermission => "noperm",
            RedisErrorKind::Authentication => "auth",
            RedisErrorKind::WrongType => "wrongtype",
            RedisErrorKind::Other => "other",
        }
    }

    /// Whether the failure can pass while the process waits (Redis restarts, memory frees, a
    /// failover ends, clients disconnect). A permission, the credentials or a key's type
    /// change only when someone acts: retrying them is a loop at WARN that hides the cause.
    pub const fn waiting_helps(self) -> bool {
        !matches!(
            self,
            RedisErrorKind::NoPermission
                | RedisErrorKind::Authentication
                | RedisErrorKind::WrongType
        )
    }

    /// What is wrong, for people: the words an episode's first log line and `/readyz` use.
    pub const fn what(self) -> &'static str {
        match self {
            RedisErrorKind::Unreachable => "Redis is unreachable",
            RedisErrorKind::MaxClients => {
                "Redis has reached maxclients and refuses new connections"
            }
            RedisErrorKind::OutOfMemory => {
                "Redis is out of memory (maxmemory reached) and refuses writes"
            }
            RedisErrorKind::ReadOnly => "Redis is a read-only replica and refuses writes",
            RedisErrorKind::Loading => "Redis is loading its dataset and answers nothing else",
            RedisErrorKind::NoPermission => {
                "Redis refuses a command or key: the ACL user lacks a permission Herald needs"
            }
            RedisErrorKind::Authentication => "Redis refuses this process's user or password",
            RedisErrorKind::WrongType => "a key in Herald's namespace holds another type of value",
            RedisErrorKind::Other => "Redis calls fail",
        }
    }

    /// What an operator can do about it.
    pub const fn fix(self) -> &'static str {
        match self {
            RedisErrorKind::Unreachable => {
                "check that Redis runs and that REDIS_URL (or the Sentinel or Cluster nodes) names it; Herald reconnects by itself"
            }
            RedisErrorKind::MaxClients => {
                "raise Redis's maxclients, or find the clients holding connections (CLIENT LIST); Herald connects again by itself"
            }
            RedisErrorKind::OutOfMemory => {
                "raise maxmemory or free memory (drain the lanes, purge dead letters); enqueues are refused meanwhile, sends and settles go on"
            }
            RedisErrorKind::ReadOnly => {
                "point Herald at the primary (Sentinel follows failovers by itself: REDIS_SENTINEL_NODES), or wait for the failover to end"
            }
            RedisErrorKind::Loading => "wait: Redis answers again once its data is loaded",
            RedisErrorKind::NoPermission => {
                "grant the ACL user the command and Herald's key pattern (docs/redis.md, ACL users, lists both), then start the process again"
            }
            RedisErrorKind::Authentication => {
                "give the user and password Redis expects (REDIS_URL, REDIS_USERNAME, REDIS_PASSWORD), then start the process again"
            }
            RedisErrorKind::WrongType => {
                "give Herald a namespace of its own (HERALD_NAMESPACE), or delete the key another application or a person wrote, then start the process again"
            }
            RedisErrorKind::Other => "see the error; Herald retries with backoff",
        }
    }

    /// How an episode of this kind ends, for its last log line.
    pub const fn over(self) -> &'static str {
        match self {
            RedisErrorKind::Unreachable => "Redis reachable again",
            RedisErrorKind::MaxClients => "Redis accepts connections again",
            RedisErrorKind::OutOfMemory => "Redis accepts writes again (memory freed)",
            RedisErrorKind::ReadOnly => "Redis accepts writes again (a primary)",
            RedisErrorKind::Loading => "Redis has loaded its dataset",
            RedisErrorKind::NoPermission => "Redis permits Herald's commands again",
            RedisErrorKind::Authentication => "Redis accepts the credentials again",
            RedisErrorKind::WrongType => "no key of the wrong type met since",
            RedisErrorKind::Other => "Redis calls succeed again",
        }
    }
}

impl std::fmt::Display for RedisErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// The command a `NOPERM` reply names (`... to run the 'evalsha' command`), if it names one.
pub fn refused_command(detail: &str) -> Option<&str> {
    let start = detail.find("to run the '")? + "to run the '".len();
    let len = detail[start..].find('\'')?;
    Some(&detail[start..start + len]).filter(|command| !command.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use deadpool_redis::redis::{self, make_extension_error};
    use std::io;

    fn reply(text: &str) -> RedisErrorKind {
        let (code, detail) = text.split_once(' ').unwrap_or((text, ""));
        RedisErrorKind::of(&make_extension_error(code.into(), Some(detail.into())))
    }

    /// Each reply as Redis 7.0 writes it (seen with redis-cli against a real server).
    #[test]
    fn each_refusal_is_named_by_its_code_or_its_text() {
        use RedisErrorKind::*;
        for (text, kind) in [
            (
                "OOM command not allowed when used memory > 'maxmemory'.",
                OutOfMemory,
            ),
            (
                "OOM command not allowed when used memory > 'maxmemory'. script: 59, on @user_script:1.",
                OutOfMemory,
            ),
            (
                "NOPERM this user has no permissions to run the 'evalsha' command",
                NoPermission,
            ),
            (
                "NOPERM this user has no permissions to access one of the keys used as arguments",
                NoPermission,
            ),
            (
                "ERR The user executing the script can't run this command or subcommand script: 5d, on @user_script:1.",
                NoPermission,
            ),
            ("ERR max number of clients reached", MaxClients),
            (
                "READONLY You can't write against a read only replica.",
                ReadOnly,
            ),
            (
                "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)",
                ReadOnly,
            ),
            ("LOADING Redis is loading the dataset in memory", Loading),
            (
                "WRONGTYPE Operation against a key holding the wrong kind of value",
                WrongType,
            ),
            (
                "WRONGPASS invalid username-password pair or user is disabled.",
                Authentication,
            ),
            ("NOAUTH Authentication required.", Authentication),
            ("ERR unknown command 'FOO'", Other),
            ("BUSY Redis is busy running a script.", Other),
        ] {
            assert_eq!(reply(text), kind, "{text}");
        }
    }

    #[test]
    fn io_failures_are_unreachable_and_the_client_s_own_are_other() {
        for kind in [
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::TimedOut,
            io::ErrorKind::UnexpectedEof,
        ] {
            let err = RedisError::from(io::Error::from(kind));
            assert_eq!(
                RedisErrorKind::of(&err),
                RedisErrorKind::Unreachable,
                "{kind:?}"
            );
        }
        let typed = RedisError::from((redis::ErrorKind::UnexpectedReturnType, "bad reply"));
        assert_eq!(RedisErrorKind::of(&typed), RedisErrorKind::Other);
        let timeout = PoolError::Timeout(deadpool::managed::TimeoutType::Wait);
        assert_eq!(
            RedisErrorKind::of_pool(&timeout),
            RedisErrorKind::Unreachable
        );
    }

    #[test]
    fn only_permissions_credentials_and_wrong_types_cannot_heal_by_waiting() {
        let never: Vec<_> = RedisErrorKind::ALL
            .into_iter()
            .filter(|kind| !kind.waiting_helps())
            .collect();
        assert_eq!(
            never,
            [
                RedisErrorKind::NoPermission,
                RedisErrorKind::Authentication,
                RedisErrorKind::WrongType
            ]
        );
        let labels: std::collections::BTreeSet<_> =
            RedisErrorKind::ALL.iter().map(|k| k.label()).collect();
        assert_eq!(
            labels.len(),
            RedisErrorKind::ALL.len(),
            "labels are distinct"
        );
    }

    #[test]
    fn a_noperm_reply_names_its_command_when_it_has_one() {
        assert_eq!(
            refused_command("this user has no permissions to run the 'evalsha' command"),
            Some("evalsha")
        );
        assert_eq!(
            refused_command("this user has no permissions to run the 'xgroup|create' command"),
            Some("xgroup|create")
        );
        assert_eq!(
            refused_command("this user has no permissions to access one of the keys"),
            None
        );
    }
}
