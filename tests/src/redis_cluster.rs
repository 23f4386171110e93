//! A throwaway Redis Cluster: three masters on loopback (and a replica each, when asked),
//! slots assigned by `redis-cli --cluster create`, for the tests that check Herald runs
//! unchanged on Cluster.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::RedisServer;

/// Cluster-mode `redis-server`s forming one cluster. Dropping it stops them all.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

/// One node as `CLUSTER NODES` describes it.
#[derive(Clone, Debug)]
pub struct ClusterNode {
    pub id: String,
    pub port: u16,
    /// The master this node replicates; `None` for a master.
    pub master_id: Option<String>,
    /// The slot ranges a master serves (`0-5460`), inclusive.
    pub slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// Starts three masters and waits until every node reports `cluster_state:ok`.
    pub fn start() -> RedisCluster {
        RedisCluster::start_plain(3, 0)
    }

    /// Starts three masters with one replica each (six nodes); waits until every node
    /// reports `cluster_state:ok` and every replica is in sync with its master.
    pub fn start_with_replicas() -> RedisCluster {
        let cluster = RedisCluster::start_plain(6, 1);
        let deadline = Instant::now() + Duration::from_secs(30);
        let in_sync = || {
            let replicas: Vec<ClusterNode> = cluster
                .topology()
                .into_iter()
                .filter(|n| n.master_id.is_some())
                .collect();
            replicas.len() == 3
                && replicas.iter().all(|replica| {
                    cluster
                        .cli(replica.port, &["INFO", "replication"])
                        .contains("master_link_status:up")
                })
        };
        while !in_sync() {
            assert!(
                Instant::now() < deadline,
                "the replicas did not sync with their masters"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    fn start_plain(count: usize, replicas: u8) -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..count)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "5000",
                ])
            })
            .collect();
        RedisCluster::create(nodes, replicas)
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
        RedisCluster::create(nodes, 0)
    }

    fn create(nodes: Vec<RedisServer>, replicas: u8) -> RedisCluster {
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
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
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

    /// Every node as the first one's `CLUSTER NODES` describes it.
    pub fn topology(&self) -> Vec<ClusterNode> {
        let text = self.cli(self.nodes[0].port(), &["CLUSTER", "NODES"]);
        text.lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let port = fields.get(1)?.split(['@', ':']).nth(1)?.parse().ok()?;
                let master_id = Some(fields.get(3)?.to_string()).filter(|m| m != "-");
                let slots = fields
                    .iter()
                    .skip(8)
                    .filter_map(|range| {
                        let (from, to) = range.split_once('-').unwrap_or((range, range));
                        Some((from.parse().ok()?, to.parse().ok()?))
                    })
                    .collect();
                Some(ClusterNode {
                    id: fields[0].to_string(),
                    port,
                    master_id,
                    slots,
                })
            })
            .collect()
    }

    /// The master serving `key`'s slot, and its replicas.
    pub fn master_of(&self, key: &str) -> (ClusterNode, Vec<ClusterNode>) {
        let slot: u16 = self
            .cli(self.nodes[0].port(), &["CLUSTER", "KEYSLOT", key])
            .parse()
            .expect("CLUSTER KEYSLOT answers a number");
        let nodes = self.topology();
        let master = nodes
            .iter()
            .find(|n| n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .expect("a master serves every slot")
            .clone();
        let replicas = nodes
            .into_iter()
            .filter(|n| n.master_id.as_deref() == Some(master.id.as_str()))
            .collect();
        (master, replicas)
    }

    /// The node listening on `port`.
    pub fn node_mut(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .expect("a node of this cluster")
    }

    /// `redis-cli` against the node on `port`, stdout trimmed.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let node = self
            .nodes
            .iter()
            .find(|n| n.port() == port)
            .expect("a node of this cluster");
        let out = Command::new("redis-cli")
            .args(node.cli_args())
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
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
