//! A throwaway Redis Cluster: three masters on loopback, slots assigned by
//! `redis-cli --cluster create`, for the tests that check Herald runs unchanged on Cluster.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::RedisServer;

/// Three cluster-mode `redis-server`s forming one cluster. Dropping it stops them all.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three masters and waits until every node reports `cluster_state:ok`.
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "5000",
                ])
            })
            .collect();
        RedisCluster::create(nodes)
    }

    /// Three masters that speak TLS only, on the client port and the cluster bus
    /// (`--tls-cluster yes`), with the server certificate of `certs`.
    pub fn start_tls(certs: &crate::TestCerts) -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_tls(
                    certs,
                    false,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-node-timeout",
                        "5000",
                        "--tls-cluster",
                        "yes",
                    ],
                )
            })
            .collect();
        RedisCluster::create(nodes)
    }

    fn create(nodes: Vec<RedisServer>) -> RedisCluster {
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let tls_args: Vec<String> = nodes[0]
            .cli_args()
            .into_iter()
            .skip(2) // -p PORT
            .collect();
        let created = Command::new("redis-cli")
            .args(&tls_args)
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create (redis-cli comes with redis-server)");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&created.stdout),
            String::from_utf8_lossy(&created.stderr)
        );
        let cluster = RedisCluster { nodes };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cluster.nodes.iter().all(cluster_ok) {
            assert!(
                Instant::now() < deadline,
                "the cluster did not reach cluster_state:ok"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// `redis://127.0.0.1:P1,redis://127.0.0.1:P2,...` (`rediss://` for TLS): what
    /// REDIS_CLUSTER_NODES takes.
    pub fn nodes_env(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.url())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn cluster_ok(node: &RedisServer) -> bool {
    Command::new("redis-cli")
        .args(node.cli_args())
        .args(["cluster", "info"])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok"))
}
