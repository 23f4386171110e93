//! Test support shared by every Herald test suite.
//!
//! - [`RedisServer`]: a real `redis-server` on a free loopback port in its own temporary
//!   directory, one per test, that a test can stop, kill and restart (AOF on) to check
//!   durability. Never a mock: the Lua scripts and stream semantics under test are Redis's.
//! - [`cargo_bin`]: the path of a workspace binary, for tests that run real processes.

mod bin;
mod redis_server;

pub use bin::cargo_bin;
pub use redis_server::RedisServer;
