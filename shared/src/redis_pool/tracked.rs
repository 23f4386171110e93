//! Pooled connections that remember failing, so handing one out costs Redis nothing.
//!
//! deadpool-redis checks every connection it hands out with `UNWATCH` + `PING`: a round trip
//! and two commands per checkout, about 4 of the 15.5 commands a sent job used to cost. Here
//! a connection is trusted while it works. [`Tracked`] notes a failure after which the
//! connection is no good (an I/O error, a dropped or refused connection, a timeout, or
//! `READONLY`: the primary it reaches was demoted), and [`recycle`] discards such a
//! connection, and checks one that has not been handed out for [`RECHECK_IDLE`] with its
//! manager's own check (`PING`; `ROLE` behind Sentinel) before handing it out again.
//!
//! A connection that breaks while idle in the pool fails its next command: that caller sees
//! the Redis error (and backs off and retries, as every caller does), the connection is
//! discarded, and the retry gets a fresh one. Nothing in Herald uses `WATCH`, so there is
//! nothing to `UNWATCH`.

use std::time::Duration;

use deadpool::managed::{Metrics, RecycleError, RecycleResult};
use deadpool_redis::redis::aio::ConnectionLike;
use deadpool_redis::redis::{
    Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, ServerErrorKind, Value,
};

/// How long a connection may sit unused before it is checked again on its way out.
pub const RECHECK_IDLE: Duration = Duration::from_secs(5);

/// A connection and whether a command on it failed in a way that spoils it. Owned by the
/// pool; a task borrows it through [`super::Connection`].
pub struct Tracked<C> {
    conn: C,
    spoiled: bool,
}

impl<C> Tracked<C> {
    pub fn new(conn: C) -> Tracked<C> {
        Tracked {
            conn,
            spoiled: false,
        }
    }

    /// The connection itself, for what [`ConnectionLike`] does not cover (cluster routing).
    pub fn inner(&mut self) -> &mut C {
        &mut self.conn
    }

    /// The connection, out of its tracking (for [`super::shared`], which tracks its own).
    pub fn into_inner(self) -> C {
        self.conn
    }
}

/// Whether `err` means the connection it came from should not be used again. An error
/// reply (`WRONGTYPE`, `NOSCRIPT`, a script's own error) leaves the connection good.
pub(super) fn spoils(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_timeout()
        || err.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
}

impl<C: ConnectionLike + Send> ConnectionLike for Tracked<C> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let Tracked { conn, spoiled } = self;
        Box::pin(async move {
            let reply = conn.req_packed_command(cmd).await;
            *spoiled |= reply.as_ref().is_err_and(spoils);
            reply
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let Tracked { conn, spoiled } = self;
        Box::pin(async move {
            let replies = conn.req_packed_commands(pipeline, offset, count).await;
            *spoiled |= replies.as_ref().is_err_and(spoils);
            replies
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

/// Every manager's recycle: a spoiled connection is discarded; one handed out within
/// [`RECHECK_IDLE`] goes out again unchecked; an older one must pass `check` first.
pub async fn recycle<C>(
    conn: &mut Tracked<C>,
    metrics: &Metrics,
    check: impl AsyncFnOnce(&mut C) -> RecycleResult<RedisError>,
) -> RecycleResult<RedisError> {
    if conn.spoiled {
        return Err(RecycleError::message(
            "a command on it failed; a new connection replaces it",
        ));
    }
    if metrics.last_used() < RECHECK_IDLE {
        return Ok(());
    }
    check(&mut conn.conn).await
}

/// The check of a connection to one server: it answers `PING`.
pub async fn ping<C: ConnectionLike + Send>(conn: &mut C) -> RecycleResult<RedisError> {
    deadpool_redis::redis::cmd("PING")
        .query_async::<String>(conn)
        .await?;
    Ok(())
}
