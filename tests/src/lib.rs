//! Test support shared by every Herald test suite.
//!
//! - [`RedisServer`]: a real `redis-server` on a free loopback port in its own temporary
//!   directory, one per test, that a test can stop, kill and restart (AOF on) to check
//!   durability. Never a mock: the Lua scripts and stream semantics under test are Redis's.
//!   [`RedisServer::start_tls`] serves TLS only, with certificates from [`TestCerts`].
//!   [`connect`] opens a test's own connection to it, as patient as Herald's.
//! - [`RedisCluster`]: three cluster-mode servers forming a real Redis Cluster.
//! - [`RedisSentinel`]: a primary, a replica and three Sentinels, optionally TLS only with
//!   passwords everywhere, as production runs them.
//! - [`RedisEnv`]: the environment that points a Herald binary at one of these.
//! - [`cargo_bin`]: the path of a workspace binary, for tests that run real processes.
//! - [`WorkerProcess`]: a real `herald-worker run` process against a sandbox, or a
//!   `herald-worker webhook` receiver, with its log.
//! - [`TcpProxy`]: a fault-injecting TCP proxy in front of a test's Redis (drop every
//!   connection, stall, refuse, resume), for the chaos suite.
//! - [`HugeAnswers`]: an Interakt gone wrong, answering every request with a huge body
//!   streamed until the client stops reading.
//! - [`acl`]: the README's minimal ACL user, created on a test's redis-server.
//! - [`ApiProcess`]: a real `herald-producer serve` on a free port, ready when returned.
//! - [`DashboardProcess`]: a real `herald-dashboard` on a free port, ready when returned,
//!   and requests to it from any loopback address ([`HttpAnswer`]).
//! - [`Browser`]: headless Chromium over WebDriver (chromedriver, fantoccini).
//! - [`wait_until`]: await a condition instead of sleeping.
//! - [`require_tool`], [`require_tool_installed_by`]: an external tool (`node`, `promtool`,
//!   `schemathesis`) a test needs: a skip saying so locally, a failure when `CI=true`.
//! - [`observability`]: the queries of the alert rules and the Grafana dashboard in
//!   `deploy/`, and what a `/metrics` page must show for each.
//! - [`otlp`]: a real OTLP/HTTP trace receiver (decodes the protobuf the processes export;
//!   can refuse or stall like a collector in trouble).
//! - [`scenario`]: a redis-server, a sandbox and a namespace for one end-to-end test, with
//!   helpers to enqueue jobs, run `herald-worker` and read back where every job went; its
//!   turn (`turns`) keeps the scenarios that measure requests per window alone, across every
//!   test process of a run.

pub mod acl;
mod api_process;
mod bin;
mod browser;
mod dashboard_process;
mod huge_answers;
pub mod observability;
pub mod otlp;
pub mod proxy;
mod redis_cluster;
mod redis_env;
pub mod redis_sentinel;
mod redis_server;
pub mod scenario;
pub mod tls;
mod tools;
mod turns;
mod wait;
mod worker_process;

pub use api_process::ApiProcess;
pub use bin::cargo_bin;
pub use browser::Browser;
pub use dashboard_process::{DashboardProcess, HttpAnswer, LOOPBACK};
pub use huge_answers::HugeAnswers;
pub use proxy::TcpProxy;
pub use redis_cluster::{ClusterNode, RedisCluster};
pub use redis_env::RedisEnv;
pub use redis_sentinel::{RedisSentinel, SentinelOptions};
pub use redis_server::{NO_PERSISTENCE, RedisServer, StartError, connect, free_port, script_calls};
pub use tls::TestCerts;
pub use tools::{in_ci, require_tool, require_tool_installed_by};
pub use wait::wait_until;
pub use worker_process::{TEST_API_KEY, WorkerProcess};
