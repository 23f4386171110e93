//! A throwaway Redis Sentinel deployment on loopback: a primary, one replica and three
//! `redis-server --sentinel`, for the tests that check Herald finds the primary through the
//! Sentinels and follows a failover. Optionally the way production runs it: TLS only on every
//! port with client certificates required (`tls-replication yes`, so the replica and the
//! Sentinels speak TLS to the data nodes too), a password on the data nodes, and one on the
//! Sentinels.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{RedisEnv, RedisServer, TestCerts, free_port, wait_until};

/// The name the Sentinels monitor the primary under (`REDIS_SENTINEL_MASTER`).
pub const MASTER: &str = "herald-primary";

/// How a [`RedisSentinel`] is set up; the default is plain text with no passwords.
#[derive(Clone, Copy, Default)]
pub struct SentinelOptions<'a> {
    /// TLS only on every port, client certificates required, with these certificates.
    pub tls: Option<&'a TestCerts>,
    /// `requirepass` of the data nodes' `default` user (the replica's `masterauth` and the
    /// Sentinels' `auth-pass` too).
    pub data_password: Option<&'a str>,
    /// `requirepass` of the Sentinels' `default` user (and what they show each other).
    pub sentinel_password: Option<&'a str>,
}

/// The `default` user's password on the data nodes of [`SentinelOptions::secured`].
pub const DATA_PASSWORD: &str = "data-admin-password";
/// The `default` user's password on the Sentinels of [`SentinelOptions::secured`].
pub const SENTINEL_PASSWORD: &str = "sentinel-admin-password";

impl<'a> SentinelOptions<'a> {
    /// As production runs it: TLS only with client certificates required everywhere, and
    /// passwords on the data nodes ([`DATA_PASSWORD`]) and on the Sentinels
    /// ([`SENTINEL_PASSWORD`]).
    pub fn secured(certs: &'a TestCerts) -> SentinelOptions<'a> {
        SentinelOptions {
            tls: Some(certs),
            data_password: Some(DATA_PASSWORD),
            sentinel_password: Some(SENTINEL_PASSWORD),
        }
    }
}

/// One `redis-server --sentinel`, killed on drop.
pub struct Sentinel {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sentinel {
    /// Its log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sentinel.log")).unwrap_or_default()
    }
}

/// A primary, its replica and three Sentinels (quorum 2, `down-after-milliseconds 1000`).
/// Dropping it stops them all.
pub struct RedisSentinel {
    pub primary: RedisServer,
    pub replica: RedisServer,
    pub sentinels: Vec<Sentinel>,
    tls: Option<TlsFiles>,
    data_password: Option<String>,
    sentinel_password: Option<String>,
}

/// The certificate paths every process of a TLS set-up uses.
#[derive(Clone)]
struct TlsFiles {
    cert: String,
    key: String,
    ca: String,
    client_cert: String,
    client_key: String,
}

impl RedisSentinel {
    /// Starts everything and waits until the replica is in sync and every Sentinel knows the
    /// other two and the replica.
    pub async fn start(options: SentinelOptions<'_>) -> RedisSentinel {
        let data_args: Vec<String> = match options.data_password {
            Some(password) => vec![
                "--requirepass".into(),
                password.into(),
                "--masterauth".into(),
                password.into(),
            ],
            None => Vec::new(),
        };
        let start = |extra: &[String]| {
            let mut args: Vec<&str> = data_args.iter().map(String::as_str).collect();
            args.extend(extra.iter().map(String::as_str));
            match options.tls {
                Some(certs) => {
                    args.extend(["--tls-replication", "yes"]);
                    RedisServer::start_tls(certs, true, &args)
                }
                None => RedisServer::start_with(&args),
            }
        };
        let primary = start(&[]);
        let replica = start(&[
            "--replicaof".into(),
            "127.0.0.1".into(),
            primary.port().to_string(),
        ]);
        let mut setup = RedisSentinel {
            primary,
            replica,
            sentinels: Vec::new(),
            tls: options.tls.map(|certs| TlsFiles {
                cert: certs.server_cert().display().to_string(),
                key: certs.server_key().display().to_string(),
                ca: certs.ca().display().to_string(),
                client_cert: certs.client_cert().display().to_string(),
                client_key: certs.client_key().display().to_string(),
            }),
            data_password: options.data_password.map(str::to_string),
            sentinel_password: options.sentinel_password.map(str::to_string),
        };
        wait_until("the replica in sync", Duration::from_secs(20), || {
            let info = setup.data_cli(&setup.primary, &["INFO", "replication"]);
            std::future::ready(info.contains("state=online"))
        })
        .await;
        setup.sentinels = (0..3).map(|_| setup.start_sentinel()).collect();
        for i in 0..setup.sentinels.len() {
            let replica = setup.replica.port().to_string();
            let known = || {
                let others = setup.sentinel_cli(i, &["SENTINEL", "sentinels", MASTER]);
                let replicas = setup.sentinel_cli(i, &["SENTINEL", "replicas", MASTER]);
                others.matches("127.0.0.1").count() >= 2 && replicas.contains(&replica)
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            while !known() {
                assert!(
                    Instant::now() < deadline,
                    "sentinel {i} did not learn of the others and the replica:\n{}",
                    setup.sentinels[i].log()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        setup
    }

    fn start_sentinel(&self) -> Sentinel {
        let dir = tempfile::Builder::new()
            .prefix("herald-sentinel-")
            .tempdir()
            .expect("a temp dir");
        let port = free_port();
        let mut conf = format!("bind 127.0.0.1\ndir {}\n", dir.path().display());
        match &self.tls {
            Some(tls) => conf.push_str(&format!(
                "port 0\ntls-port {port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients yes\ntls-replication yes\n",
                tls.cert, tls.key, tls.ca
            )),
            None => conf.push_str(&format!("port {port}\n")),
        }
        if let Some(password) = &self.sentinel_password {
            conf.push_str(&format!(
                "requirepass {password}\nsentinel sentinel-pass {password}\n"
            ));
        }
        conf.push_str(&format!(
            "sentinel monitor {MASTER} 127.0.0.1 {} 2\nsentinel down-after-milliseconds {MASTER} 1000\nsentinel failover-timeout {MASTER} 10000\nsentinel parallel-syncs {MASTER} 1\n",
            self.primary.port()
        ));
        if let Some(password) = &self.data_password {
            conf.push_str(&format!("sentinel auth-pass {MASTER} {password}\n"));
        }
        let path = dir.path().join("sentinel.conf");
        std::fs::write(&path, conf).expect("write sentinel.conf");
        let child = Command::new("redis-server")
            .arg(&path)
            .arg("--sentinel")
            .arg("--logfile")
            .arg(dir.path().join("sentinel.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server --sentinel");
        Sentinel { port, child, dir }
    }

    /// `redis://127.0.0.1:S1,...` (`rediss://` with TLS), with `user:password@` when given:
    /// what REDIS_SENTINEL_NODES takes.
    pub fn nodes_env(&self, credentials: Option<(&str, &str)>) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let auth = credentials
            .map(|(user, password)| format!("{user}:{password}@"))
            .unwrap_or_default();
        self.sentinels
            .iter()
            .map(|s| format!("{scheme}://{auth}127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The environment that points a Herald binary at the primary through the Sentinels
    /// (REDIS_URL points nowhere), with the Sentinels' `sentinel_user` and the data nodes'
    /// `data_user`, and the CA and client certificate with TLS.
    pub fn env(
        &self,
        sentinel_user: Option<(&str, &str)>,
        data_user: Option<(&str, &str)>,
    ) -> RedisEnv {
        let mut env = RedisEnv::url("redis://127.0.0.1:1")
            .with("REDIS_SENTINEL_NODES", self.nodes_env(sentinel_user))
            .with("REDIS_SENTINEL_MASTER", MASTER);
        if let Some((user, password)) = data_user {
            env = env
                .with("REDIS_USERNAME", user)
                .with("REDIS_PASSWORD", password);
        }
        if let Some(tls) = &self.tls {
            env = env
                .with("REDIS_CA_CERT", &tls.ca)
                .with("REDIS_CLIENT_CERT", &tls.client_cert)
                .with("REDIS_CLIENT_KEY", &tls.client_key);
        }
        env
    }

    /// `redis-cli` against a data node as its `default` user; stdout trimmed.
    pub fn data_cli(&self, server: &RedisServer, args: &[&str]) -> String {
        self.cli(
            server.port(),
            self.data_password.as_deref(),
            args.iter().map(|a| a.to_string()),
        )
    }

    /// `redis-cli` against Sentinel `i` as its `default` user; stdout trimmed.
    pub fn sentinel_cli(&self, i: usize, args: &[&str]) -> String {
        self.cli(
            self.sentinels[i].port,
            self.sentinel_password.as_deref(),
            args.iter().map(|a| a.to_string()),
        )
    }

    /// Runs `args` (an `ACL SETUSER ...` line, say) on both data nodes: ACL users are not
    /// replicated, and either node may be the primary.
    pub fn on_data_nodes(&self, args: &[String]) {
        for server in [&self.primary, &self.replica] {
            let answer = self.cli(server.port(), self.data_password.as_deref(), args.to_vec());
            assert_eq!(answer, "OK", "{args:?} on port {}", server.port());
        }
    }

    /// Runs `args` on every Sentinel.
    pub fn on_sentinels(&self, args: &[String]) {
        for s in &self.sentinels {
            let answer = self.cli(s.port, self.sentinel_password.as_deref(), args.to_vec());
            assert_eq!(answer, "OK", "{args:?} on sentinel {}", s.port);
        }
    }

    /// The port of the node the Sentinels name as the primary now.
    pub fn primary_port(&self) -> Option<u16> {
        let answer = self.sentinel_cli(0, &["SENTINEL", "get-master-addr-by-name", MASTER]);
        answer
            .lines()
            .nth(1)
            .and_then(|port| port.trim().parse().ok())
    }

    fn cli(
        &self,
        port: u16,
        password: Option<&str>,
        args: impl IntoIterator<Item = String>,
    ) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-p", &port.to_string()]);
        if let Some(tls) = &self.tls {
            command.arg("--tls");
            for (flag, file) in [
                ("--cacert", &tls.ca),
                ("--cert", &tls.client_cert),
                ("--key", &tls.client_key),
            ] {
                command.arg(flag).arg(Path::new(file));
            }
        }
        if let Some(password) = password {
            command.args(["-a", password, "--no-auth-warning"]);
        }
        let out = command.args(args).output().expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}
