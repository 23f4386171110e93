//! Redis Sentinel: one primary, one replica and three `redis-server --sentinel` processes on
//! loopback. OTPs are enqueued one after another with `--min-replicas 1` (each retried with
//! its idempotency key until acknowledged) while the primary is SIGKILLed mid-run; the
//! Sentinels promote the replica, the old primary comes back as its replica, and a worker
//! that was never restarted sends every acknowledged OTP exactly once.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use herald_sandbox::SandboxConfig;
use herald_tests::{RedisServer, TEST_API_KEY, WorkerProcess, cargo_bin, free_port, wait_until};

const NAMESPACE: &str = "sentinel";
const MASTER: &str = "herald-primary";
const JOBS: usize = 40;
const KILL_AT: usize = 12;

/// One `redis-server --sentinel`, killed on drop.
struct Sentinel {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Sentinel {
    fn start(primary_port: u16) -> Sentinel {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor {MASTER} 127.0.0.1 {primary_port} 2\nsentinel down-after-milliseconds {MASTER} 1000\nsentinel failover-timeout {MASTER} 10000\nsentinel parallel-syncs {MASTER} 1\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server --sentinel");
        Sentinel {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn phone(i: usize) -> String {
    format!("+9198{i:08}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_enqueue_survives_a_failover_and_is_sent_once() {
    let run = failover_run("1").await;
    let wanted: BTreeSet<String> = (0..JOBS).map(phone).collect();
    assert_eq!(run.sent, wanted, "every acknowledged OTP sent");
    assert_eq!(run.sends, JOBS, "each exactly once");
}

/// The same run with `--min-replicas 0`, for comparison: an enqueue is acknowledged as soon
/// as the primary has it, and the SIGKILL may take the last ones with it. Reports the count
/// (on loopback, replication usually wins the race); asserts only that nothing is sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_comparison_min_replicas_0_acknowledges_at_once() {
    let run = failover_run("0").await;
    let lost = JOBS - run.sent.len();
    eprintln!(
        "sentinel: with --min-replicas 0, {lost} of {JOBS} acknowledged enqueues were lost in the failover"
    );
    assert_eq!(run.sends, run.sent.len(), "nothing sent twice");
}

/// What a failover run ended with: the phones the sandbox accepted, and how many sends.
struct Run {
    sent: BTreeSet<String>,
    sends: usize,
}

/// Enqueues JOBS OTPs with `--min-replicas MIN_REPLICAS`, SIGKILLs the primary after
/// KILL_AT, restarts it (it comes back as the new primary's replica), and waits for the
/// worker (never restarted) to send what it can.
async fn failover_run(min_replicas: &str) -> Run {
    let mut primary = RedisServer::start();
    let replica =
        RedisServer::start_with(&["--replicaof", "127.0.0.1", &primary.port().to_string()]);
    wait_until("the replica in sync", Duration::from_secs(20), || {
        let info = redis_cli(primary.port(), &["INFO", "replication"]);
        std::future::ready(info.contains("state=online"))
    })
    .await;
    let sentinels: Vec<Sentinel> = (0..3).map(|_| Sentinel::start(primary.port())).collect();
    for s in &sentinels {
        wait_until(
            "the sentinels to know each other and the replica",
            Duration::from_secs(30),
            || {
                let others = redis_cli(s.port, &["SENTINEL", "sentinels", MASTER]);
                let replicas = redis_cli(s.port, &["SENTINEL", "replicas", MASTER]);
                std::future::ready(
                    others.matches("127.0.0.1").count() >= 2
                        && replicas.contains(&replica.port().to_string()),
                )
            },
        )
        .await;
    }
    let nodes: Vec<String> = sentinels
        .iter()
        .map(|s| format!("redis://127.0.0.1:{}", s.port))
        .collect();
    let nodes = nodes.join(",");

    let sandbox = herald_sandbox::start(
        SandboxConfig::new(TEST_API_KEY),
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    // REDIS_URL points nowhere: only the Sentinels lead to Redis.
    let worker = WorkerProcess::spawn(
        "redis://127.0.0.1:1",
        NAMESPACE,
        &sandbox.base_url(),
        "sentinel-worker",
        &[
            "--redis-sentinel-nodes",
            &nodes,
            "--redis-sentinel-master",
            MASTER,
            "--min-replicas",
            min_replicas,
            "--rate",
            "50/1s",
        ],
    );

    let enqueue = |i: usize| {
        Command::new(cargo_bin("herald-producer"))
            .args([
                "otp",
                "--phone",
                &phone(i),
                "--code",
                "123456",
                "--idempotency-key",
                &format!("otp:{i}"),
            ])
            .env("REDIS_URL", "redis://127.0.0.1:1")
            .env("REDIS_SENTINEL_NODES", &nodes)
            .env("REDIS_SENTINEL_MASTER", MASTER)
            .env("HERALD_NAMESPACE", NAMESPACE)
            .env("HERALD_MIN_REPLICAS", min_replicas)
            .output()
            .unwrap()
    };
    let mut killed_at = None;
    let mut restarted = false;
    let mut failed_attempts = 0;
    let mut last_ack_before_kill = None;
    let mut first_ack_after_kill = None;
    for i in 0..JOBS {
        if i == KILL_AT {
            primary.kill();
            killed_at = Some(Instant::now());
        }
        let started = Instant::now();
        loop {
            let out = enqueue(i);
            if out.status.success() {
                if killed_at.is_none() {
                    last_ack_before_kill = Some(Instant::now());
                } else if first_ack_after_kill.is_none() {
                    first_ack_after_kill = Some(Instant::now());
                }
                break;
            }
            failed_attempts += 1;
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "job {i} never acknowledged: {out:?}"
            );
            // The promoted replica has no replica of its own until the old primary returns
            // (the Sentinels make it a replica of the new one).
            if !restarted && killed_at.is_some_and(|k| k.elapsed() > Duration::from_secs(4)) {
                primary.start_again();
                restarted = true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let pause = first_ack_after_kill.unwrap() - killed_at.unwrap();
    eprintln!(
        "sentinel: --min-replicas {min_replicas}: enqueues paused {pause:?} after the SIGKILL ({failed_attempts} failed attempts, retried with their keys); last ack before it {:?} earlier",
        killed_at.unwrap() - last_ack_before_kill.unwrap()
    );
    let promoted = redis_cli(
        sentinels[0].port,
        &["SENTINEL", "get-master-addr-by-name", MASTER],
    );
    assert!(
        promoted.contains(&replica.port().to_string()),
        "the replica was promoted: {promoted}"
    );

    if !restarted {
        primary.start_again();
    }
    // Sends settle: every OTP is in, or the count stopped growing for 3 s.
    let mut seen = (0, Instant::now());
    while sandbox.stats().accepted < JOBS as u64 && seen.1.elapsed() < Duration::from_secs(3) {
        let now = sandbox.stats().accepted;
        if now != seen.0 {
            seen = (now, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut worker = worker;
    assert!(
        worker.try_exit().is_none(),
        "the worker was never restarted:\n{}",
        worker.log()
    );
    let messages = sandbox.messages();
    Run {
        sent: messages.iter().map(|m| m.e164()).collect(),
        sends: messages.len(),
    }
}
