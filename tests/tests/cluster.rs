//! Herald unchanged on Redis Cluster: a real 3-master cluster on loopback, the producer CLI
//! and two worker replicas pointed at it with REDIS_CLUSTER_NODES, the sandbox as Interakt.
//! The shared budget holds in every window and every job is sent exactly once, and the
//! dashboard reads the counts, the workers' chart history and a job's timeline there.
//!
//! And a cluster with a replica per master: `--min-replicas` waits for the replicas of the
//! master that holds Herald's keys (`WAIT` is per node), and `maxmemory-policy` is read from
//! every master, not from one random node.

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use herald_sandbox::SandboxConfig;
use herald_tests::scenario::http_request;
use herald_tests::{
    ClusterNode, DashboardProcess, RedisCluster, TEST_API_KEY, WorkerProcess, cargo_bin, wait_until,
};
use serde_json::{Value, json};

const NAMESPACE: &str = "cluster";
const N: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_and_workers_run_unchanged_on_redis_cluster() {
    let cluster = RedisCluster::start();
    let nodes = cluster.nodes_env();
    let mut config = SandboxConfig::new(TEST_API_KEY);
    config.rate = Some("40/2s".parse().unwrap());
    let sandbox = herald_sandbox::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();

    // 100 bookings and 20 OTPs with idempotency keys, 5 of them sent twice.
    let mut lines: Vec<Value> = (0..100)
        .map(|i| json!({"kind": "booking", "phone": format!("+9198{i:08}"), "booking_id": format!("B{i}"), "service": "Haircut", "date": "2030-11-24", "time": "10:30"}))
        .collect();
    let otps: Vec<Value> = (0..20)
        .map(|i| json!({"kind": "otp", "phone": format!("+9197{i:08}"), "code": "123456", "idempotency_key": format!("otp:{i}")}))
        .collect();
    lines.extend(otps.iter().cloned());
    lines.extend(otps[..5].iter().cloned());
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for line in &lines {
        writeln!(file, "{line}").unwrap();
    }
    let path = file.path().to_str().unwrap();
    let out = on_cluster("herald-producer", &nodes, &["bulk", "--json", path]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary,
        json!({"enqueued": 120, "duplicates": 5, "rejected": 0})
    );

    // One more OTP enqueued alone: its job id lets `track` find it on the cluster later.
    let out = on_cluster(
        "herald-producer",
        &nodes,
        &["otp", "--phone", "+919000000001", "--code", "654321"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tracked_id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let total: u64 = 121;

    let args = ["--redis-cluster-nodes", &nodes, "--rate", "40/2s"];
    // REDIS_URL points nowhere: were the cluster flag ignored, nothing would be sent.
    let _a = WorkerProcess::spawn(
        "redis://127.0.0.1:1",
        NAMESPACE,
        &sandbox.base_url(),
        "cluster-a",
        &args,
    );
    let _b = WorkerProcess::spawn(
        "redis://127.0.0.1:1",
        NAMESPACE,
        &sandbox.base_url(),
        "cluster-b",
        &args,
    );

    wait_until("every job sent", Duration::from_secs(60), || async {
        sandbox.stats().accepted >= total
    })
    .await;
    let status = wait_status(&nodes, |s| {
        s["ready"] == 0 && s["pending"] == 0 && s["delayed"] == 0
    })
    .await;
    assert_eq!(
        (status["sent"].as_u64(), status["dead"].as_u64()),
        (Some(total), Some(0)),
        "{status}"
    );
    let tracked = worker_json(&nodes, &["track", &tracked_id, "--json"]);
    assert_eq!(tracked["state"], "sent", "{tracked}");
    assert_eq!(worker_json(&nodes, &["dlq", "list", "--json"]), json!([]));

    let stats = sandbox.stats();
    assert_eq!(stats.count(429), 0, "{stats:?}");
    assert!(
        stats.max_in_window <= N,
        "{} requests in one window; the limit is {N}",
        stats.max_in_window
    );
    let phones: std::collections::BTreeSet<String> =
        sandbox.messages().iter().map(|m| m.e164()).collect();
    assert_eq!(
        (phones.len(), sandbox.messages().len()),
        (121, 121),
        "every job sent exactly once"
    );

    // The dashboard on the cluster: the overview's counts, the workers' chart history (its
    // requests per 10 s), and a job found by its id.
    let dashboard = DashboardProcess::start(
        "redis://127.0.0.1:1",
        NAMESPACE,
        "cluster-dashboard-token",
        &["--redis-cluster-nodes", &nodes],
    )
    .await;
    let cookie = dashboard.log_in("cluster-dashboard-token").await;
    let page = |path: String| {
        let (base, cookie) = (dashboard.base_url(), cookie.clone());
        async move {
            let (code, body) =
                http_request("GET", &format!("{base}{path}"), &[("Cookie", &cookie)], "")
                    .await
                    .expect("the dashboard answers");
            assert_eq!(code, 200, "{path}: {body}");
            body
        }
    };
    let overview = page("/".into()).await;
    assert!(
        overview.contains(&format!(r#"data-count="sent">{total}<"#)),
        "the overview counts every send: {overview}"
    );
    let mut titles = Vec::new();
    for _ in 0..50 {
        titles = page("/".into())
            .await
            .split("<title>")
            .filter_map(|t| t.split_once("</title>").map(|(t, _)| t.to_string()))
            .collect();
        if titles.iter().any(|t| *t == format!("requests: {total}")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        titles.iter().any(|t| *t == format!("requests: {total}")),
        "the charts count every request, from the workers' history on the cluster: {titles:?}"
    );
    let found = page(format!("/jobs?q={tracked_id}")).await;
    assert!(
        found.contains(r#"<strong class="state">sent</strong>"#),
        "{found}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_replicas_waits_for_the_replica_of_the_keys_master_and_every_master_policy_is_read() {
    let mut cluster = RedisCluster::start_with_replicas();
    let nodes = cluster.nodes_env();
    let (keys_master, keys_replicas) =
        cluster.master_of(herald_store::Keys::new(NAMESPACE).unwrap().tag());
    let [keys_replica]: [ClusterNode; 1] = keys_replicas.try_into().expect("one replica");
    let topology = cluster.topology();
    let other = topology
        .iter()
        .find(|n| n.master_id.is_none() && n.id != keys_master.id)
        .expect("another master")
        .clone();
    let other_replica = topology
        .iter()
        .find(|n| n.master_id.as_deref() == Some(other.id.as_str()))
        .expect("its replica")
        .clone();

    // A master that does not hold Herald's keys may evict: said, naming it, by every binary.
    let answer = cluster.cli(
        other.port,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
    );
    assert_eq!(answer, "OK");
    let otp = |i: u32, min_replicas: &str| {
        let mut command = Command::new(cargo_bin("herald-producer"));
        command
            .args([
                "otp",
                "--phone",
                &format!("+91980000{i:04}"),
                "--code",
                "123456",
            ])
            .env("REDIS_CLUSTER_NODES", &nodes)
            .env("HERALD_NAMESPACE", NAMESPACE)
            .env("HERALD_MIN_REPLICAS", min_replicas)
            .env("RUST_LOG", "info")
            .output()
            .unwrap()
    };
    let out = otp(1, "1");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let other_address = format!("127.0.0.1:{}", other.port);
    assert!(
        stderr.contains("allkeys-lru") && stderr.contains(&other_address),
        "the producer names the evicting master: {stderr}"
    );
    let status = worker_json(&nodes, &["status", "--json"]);
    assert_eq!(status["maxmemory_policy"], "allkeys-lru", "{status}");
    let note = status["maxmemory_policy_note"].as_str().unwrap();
    assert!(note.contains(&other_address), "{note}");

    // Acknowledged with --min-replicas 1: the keys' master's replica has it.
    let lane = herald_store::Keys::new(NAMESPACE)
        .unwrap()
        .lane(herald_shared::Lane::Otp);
    let on_replica = |port: u16| {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(format!("READONLY\nXLEN {lane}\n").as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(on_replica(keys_replica.port), "1");

    // Another master's replica gone: nothing of Herald's waits for it.
    cluster.node_mut(other_replica.port).kill();
    let out = otp(2, "1");
    assert!(
        out.status.success(),
        "WAIT went to the keys' master only: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(on_replica(keys_replica.port), "2");

    // The keys' master's replica gone: not acknowledged (exit 2, the documented line) with
    // --min-replicas 1, acknowledged at once with 0.
    cluster.node_mut(keys_replica.port).kill();
    let out = otp(3, "1");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("only 0 of the 1 replicas required by HERALD_MIN_REPLICAS"),
        "{stderr}"
    );
    let out = otp(4, "0");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a Herald binary against the cluster.
fn on_cluster(binary: &str, nodes: &str, args: &[&str]) -> std::process::Output {
    Command::new(cargo_bin(binary))
        .args(args)
        .env("REDIS_CLUSTER_NODES", nodes)
        .env("HERALD_NAMESPACE", NAMESPACE)
        .output()
        .unwrap()
}

/// Runs `herald-worker ARGS` against the cluster and parses its JSON output.
fn worker_json(nodes: &str, args: &[&str]) -> Value {
    let out = on_cluster("herald-worker", nodes, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Polls `herald-worker status --json` on the cluster until `done` holds.
async fn wait_status(nodes: &str, done: impl Fn(&Value) -> bool) -> Value {
    let read = || worker_json(nodes, &["status", "--json"]);
    wait_until("status to settle", Duration::from_secs(20), || {
        std::future::ready(done(&read()))
    })
    .await;
    read()
}

/// Time and change on Redis Cluster: a scheduled booking moved when due, a scheduled one
/// cancelled, a resent OTP superseding the unsent one. Every script touches one hash slot
/// (the records a script names by id share the namespace's tag).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_cancelled_and_superseded_jobs_work_on_redis_cluster() {
    let cluster = RedisCluster::start();
    let nodes = cluster.nodes_env();
    let sandbox = herald_sandbox::start(
        SandboxConfig::new(TEST_API_KEY),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let enqueue = |args: &[&str]| {
        let out = on_cluster("herald-producer", &nodes, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let booking = |phone: &'static str, id: &'static str, when: &'static str| {
        vec![
            "booking",
            "--phone",
            phone,
            "--booking-id",
            id,
            "--service",
            "Haircut",
            "--date",
            "2030-11-24",
            "--time",
            "10:30",
            "--in",
            when,
        ]
    };
    let scheduled = enqueue(&booking("+919800000001", "C1", "2s"));
    let cancelled = enqueue(&booking("+919800000002", "C2", "2s"));
    let out = on_cluster("herald-producer", &nodes, &["cancel", &cancelled]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let otp = |code: &'static str| {
        vec![
            "otp",
            "--phone",
            "+919800000003",
            "--code",
            code,
            "--replace-key",
            "otp:+919800000003",
        ]
    };
    let older = enqueue(&otp("111111"));
    let out = on_cluster("herald-producer", &nodes, &otp("222222"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("superseded job {older}")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _w = WorkerProcess::spawn(
        "redis://127.0.0.1:1",
        NAMESPACE,
        &sandbox.base_url(),
        "cluster-time",
        &["--redis-cluster-nodes", &nodes, "--rate", "20/1s"],
    );
    wait_until(
        "the scheduled booking and the newer OTP sent",
        Duration::from_secs(30),
        || async { sandbox.stats().accepted >= 2 },
    )
    .await;
    let status = wait_status(&nodes, |s| {
        s["ready"] == 0 && s["pending"] == 0 && s["scheduled"] == 0
    })
    .await;
    assert_eq!(status["cancelled"], 2, "{status}");
    let phones: Vec<String> = sandbox.messages().iter().map(|m| m.e164()).collect();
    assert_eq!(phones.len(), 2, "{phones:?}");
    assert!(
        phones.contains(&"+919800000001".to_string())
            && phones.contains(&"+919800000003".to_string())
    );
    assert_eq!(
        worker_json(&nodes, &["track", &scheduled, "--json"])["state"],
        "sent"
    );
    assert_eq!(
        worker_json(&nodes, &["track", &cancelled, "--json"])["state"],
        "cancelled"
    );
    let superseded = worker_json(&nodes, &["track", &older, "--json"]);
    assert_eq!(superseded["state"], "superseded");
    assert!(
        superseded.to_string().contains("superseded by"),
        "{superseded}"
    );
}
