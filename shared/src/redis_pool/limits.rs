//! The timeouts and sizes every pool is built with, chosen once (see the module's doc).

use std::time::Duration;

use deadpool::managed;
use deadpool_redis::Runtime;

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

/// Builds a pool of either kind with the same size and pool timeouts.
pub(super) fn with_timeouts<M, W>(
    builder: managed::PoolBuilder<M, W>,
    max_size: usize,
) -> managed::Pool<M, W>
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
