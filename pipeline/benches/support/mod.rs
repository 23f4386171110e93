//! What the worker benchmarks share: a redis-server, the in-process sandbox (optionally
//! rate-limited) and a connection to Redis; real `herald-worker` replicas against them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use herald_sandbox::{RunningSandbox, SandboxConfig};
use herald_tests::{RedisServer, TEST_API_KEY, WorkerProcess};

/// The benchmarks' namespace.
pub const NAMESPACE: &str = "bench";

pub struct Setup {
    pub redis: RedisServer,
    pub sandbox: RunningSandbox,
    pub conn: redis::aio::MultiplexedConnection,
}

pub async fn setup(rate: Option<&str>) -> Setup {
    let redis = RedisServer::start();
    let mut config = SandboxConfig::new(TEST_API_KEY);
    config.rate = rate.map(|r| r.parse().unwrap());
    let sandbox = herald_sandbox::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let conn = herald_tests::connect(&redis.url()).await.unwrap();
    Setup {
        redis,
        sandbox,
        conn,
    }
}

pub fn worker(s: &Setup, name: &str, args: &[&str]) -> WorkerProcess {
    WorkerProcess::spawn(&s.redis.url(), NAMESPACE, &s.sandbox.base_url(), name, args)
}

pub async fn wait_for(s: &Setup, count: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while s.sandbox.stats().accepted < count as u64 {
        assert!(
            Instant::now() < deadline,
            "timed out at {} of {count}",
            s.sandbox.stats().accepted
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
