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
mod errors;
mod kind;
mod limits;
pub mod memory_policy;
mod pool;
mod probe;
pub mod sentinel;
mod shared;
mod target;
mod tls;
mod tracked;

pub use credentials::{Credentials, PASSWORD_VAR, USERNAME_VAR};
pub use errors::{
    ConnectError, RedisFailure, error_reason, pool_error_reason, redact_url, redis_words,
};
pub use kind::{RedisErrorKind, refused_command};
pub use limits::{
    CONNECT_TIMEOUT, DEFAULT_POOL_SIZE, MAX_BLOCK, POOL_WAIT_TIMEOUT, RESPONSE_TIMEOUT,
};
pub use pool::*;
pub use sentinel::SentinelManager;
pub use shared::SharedConnection;
pub use target::*;
pub use tls::{CA_CERT_VAR, CLIENT_CERT_VAR, CLIENT_KEY_VAR, TlsFiles};
pub use tracked::{RECHECK_IDLE, Tracked};
