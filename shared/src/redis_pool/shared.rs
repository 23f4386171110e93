//! One multiplexed connection that many tasks use at once ([`super::Pool::shared`]).
//!
//! A pooled connection serves one task at a time, so fifty send tasks settling at once make
//! fifty round trips, each a write and a read on both sides. On a shared connection their
//! commands queue together: redis-rs writes whatever is queued in one go and reads the
//! replies in order, so a burst of settles costs a few round trips, not one each, and Redis
//! spends less time in system calls.
//!
//! Never for a blocking command (`XREADGROUP BLOCK`): every reply behind it would wait.
//!
//! A command that fails in a way that spoils a connection (the same rule as the pool's,
//! [`super::tracked`]) discards the shared one; the next caller opens a new one, and tasks
//! that held a clone of the old one fail their next command and retry on the new one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use deadpool_redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use deadpool_redis::redis::cluster_async::ClusterConnection;
use deadpool_redis::redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};

use super::tracked::spoils;

/// A connection several tasks can use at once: a clone talks over the same socket.
#[derive(Clone)]
pub enum Multiplexed {
    /// A single server, or the primary Sentinel named.
    Server(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// The pool's shared connection, if one is open, and its number.
#[derive(Default)]
pub struct Slot {
    current: std::sync::Mutex<Option<(u64, Multiplexed)>>,
    /// Held while a connection is being opened, so a burst of callers opens one.
    opening: tokio::sync::Mutex<()>,
    /// Failed attempts to open one, and why the last failed.
    failures: AtomicU64,
    last_failure: std::sync::Mutex<String>,
    opened: AtomicU64,
}

impl Slot {
    fn current(&self) -> Option<(u64, Multiplexed)> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The shared connection, opened with `open` when there is none. Callers that waited
    /// while another's attempt failed get that failure at once, rather than each trying in
    /// turn (with Redis out of reach, fifty tasks would wait fifty connect timeouts).
    pub async fn get(
        self: &Arc<Self>,
        open: impl AsyncFnOnce() -> Result<Multiplexed, RedisError>,
    ) -> Result<SharedConnection, RedisError> {
        if let Some((id, conn)) = self.current() {
            return Ok(self.handle(id, conn));
        }
        let failures = self.failures.load(Ordering::Acquire);
        let _opening = self.opening.lock().await;
        if let Some((id, conn)) = self.current() {
            return Ok(self.handle(id, conn));
        }
        if self.failures.load(Ordering::Acquire) != failures {
            let reason = self
                .last_failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            return Err(RedisError::from((
                ErrorKind::Io,
                "could not open the shared connection to Redis",
                reason,
            )));
        }
        let conn = match open().await {
            Ok(conn) => conn,
            Err(err) => {
                *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = err.to_string();
                self.failures.fetch_add(1, Ordering::AcqRel);
                return Err(err);
            }
        };
        let id = self.opened.fetch_add(1, Ordering::Relaxed) + 1;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((id, conn.clone()));
        Ok(self.handle(id, conn))
    }

    fn handle(self: &Arc<Self>, id: u64, conn: Multiplexed) -> SharedConnection {
        SharedConnection {
            conn,
            id,
            slot: Arc::clone(self),
        }
    }

    /// Forgets connection `id` if it is still the shared one.
    fn discard(&self, id: u64) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|(open, _)| *open == id) {
            *current = None;
        }
    }

    /// How many shared connections have been opened (for tests).
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }
}

/// A task's handle on the shared connection.
pub struct SharedConnection {
    conn: Multiplexed,
    id: u64,
    slot: Arc<Slot>,
}

impl ConnectionLike for SharedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let SharedConnection { conn, id, slot } = self;
        let reply = match conn {
            Multiplexed::Server(conn) => conn.req_packed_command(cmd),
            Multiplexed::Cluster(conn) => conn.req_packed_command(cmd),
        };
        discard_if_spoiled(reply, slot, *id)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let SharedConnection { conn, id, slot } = self;
        let replies = match conn {
            Multiplexed::Server(conn) => conn.req_packed_commands(pipeline, offset, count),
            Multiplexed::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        };
        discard_if_spoiled(replies, slot, *id)
    }

    fn get_db(&self) -> i64 {
        match &self.conn {
            Multiplexed::Server(conn) => conn.get_db(),
            Multiplexed::Cluster(conn) => conn.get_db(),
        }
    }
}

fn discard_if_spoiled<'a, T: Send + 'a>(
    reply: RedisFuture<'a, T>,
    slot: &'a Slot,
    id: u64,
) -> RedisFuture<'a, T> {
    Box::pin(async move {
        let reply = reply.await;
        if reply.as_ref().is_err_and(spoils) {
            slot.discard(id);
        }
        reply
    })
}
