//! TLS to Redis (`rediss://`): a redis-server that speaks TLS only, with certificates made
//! for the test (a private CA), with and without client certificates. Every binary works
//! through it (enqueue, drain, status, dlq, webhook); a certificate that does not verify
//! fails with one line naming the variable, and certificate files are never ignored.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use herald_sandbox::SandboxConfig;
use herald_tests::scenario::http_status;
use herald_tests::{
    RedisServer, TEST_API_KEY, TestCerts, WorkerProcess, cargo_bin, free_port, wait_until,
};
use serde_json::{Value, json};

const NAMESPACE: &str = "tls";
const SECRET: &str = "tls-webhook-secret";
const REFUSED_PHONE: &str = "+919000000007";

/// The TLS variables for a server: the CA, and the client certificate when it asks for one.
fn tls_env(certs: &TestCerts, client_cert: bool) -> Vec<(&'static str, String)> {
    let mut env = vec![("REDIS_CA_CERT", certs.ca().display().to_string())];
    if client_cert {
        env.push((
            "REDIS_CLIENT_CERT",
            certs.client_cert().display().to_string(),
        ));
        env.push(("REDIS_CLIENT_KEY", certs.client_key().display().to_string()));
    }
    env
}

fn herald(binary: &str, url: &str, env: &[(&str, String)], args: &[&str]) -> Output {
    let mut command = Command::new(cargo_bin(binary));
    command
        .args(args)
        .env("REDIS_URL", url)
        .env("HERALD_NAMESPACE", NAMESPACE)
        .env_remove("REDIS_CA_CERT")
        .env_remove("REDIS_CLIENT_CERT")
        .env_remove("REDIS_CLIENT_KEY");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run a herald binary")
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Enqueues (CLI single and bulk), drains with a worker replica, receives the sandbox's
/// delivery webhooks, and reads status, track and dlq, every process over TLS.
async fn every_binary_works_over_tls(client_cert: bool) {
    let certs = TestCerts::generate();
    let server = RedisServer::start_tls(&certs, client_cert, &[]);
    let url = server.url();
    assert!(url.starts_with("rediss://"), "{url}");
    let env = tls_env(&certs, client_cert);

    let listen = format!("127.0.0.1:{}", free_port());
    let mut config = SandboxConfig::new(TEST_API_KEY);
    config.webhook_url = Some(format!("http://{listen}/webhooks/interakt"));
    config.webhook_secret = Some(SECRET.to_string().into());
    config.script = vec![format!("{REFUSED_PHONE}=400").parse().unwrap()];
    let sandbox = herald_sandbox::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();

    let otp_id = ok(
        &herald(
            "herald-producer",
            &url,
            &env,
            &["otp", "--phone", "+919812345678", "--code", "123456"],
        ),
        "herald-producer otp",
    )
    .trim()
    .to_string();
    let bulk = tempfile::NamedTempFile::new().unwrap();
    let lines = [
        json!({"kind": "booking", "phone": "+919812345671", "booking_id": "B1", "service": "Haircut", "date": "2030-11-24", "time": "10:30"}),
        json!({"kind": "booking", "phone": REFUSED_PHONE, "booking_id": "B7", "service": "Haircut", "date": "2030-11-24", "time": "11:30"}),
    ];
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(bulk.path(), text.join("\n")).unwrap();
    let summary = ok(
        &herald(
            "herald-producer",
            &url,
            &env,
            &["bulk", "--json", bulk.path().to_str().unwrap()],
        ),
        "herald-producer bulk",
    );
    assert_eq!(
        serde_json::from_str::<Value>(&summary).unwrap(),
        json!({"enqueued": 2, "duplicates": 0, "rejected": 0})
    );

    // The webhook receiver and the worker take the TLS files as flags (the CLI above took
    // them from the environment).
    let mut flags: Vec<String> = Vec::new();
    for (name, value) in &env {
        let flag = format!("--{}", name.to_ascii_lowercase().replace('_', "-"));
        flags.push(flag);
        flags.push(value.clone());
    }
    let mut webhook = Command::new(cargo_bin("herald-worker"));
    webhook
        .args(["webhook", "--listen", &listen])
        .args(&flags)
        .env("INTERAKT_WEBHOOK_SECRET", SECRET);
    let receiver = WorkerProcess::spawn_command(webhook, &url, NAMESPACE, "tls-hooks");
    wait_until(
        "the receiver ready over TLS",
        Duration::from_secs(20),
        || async { http_status(&format!("http://{listen}/readyz")).await == Some(200) },
    )
    .await;
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let worker = WorkerProcess::spawn(
        &url,
        NAMESPACE,
        &sandbox.base_url(),
        "tls-worker",
        &flag_refs,
    );

    let track = |id: &str| -> Value {
        let out = herald("herald-worker", &url, &env, &["track", id, "--json"]);
        serde_json::from_str(&ok(&out, "track")).unwrap()
    };
    wait_until(
        "the OTP delivered and read",
        Duration::from_secs(30),
        || std::future::ready(track(&otp_id)["state"] == "read"),
    )
    .await;
    let status_of = || -> Value {
        let out = herald("herald-worker", &url, &env, &["status", "--json"]);
        serde_json::from_str(&ok(&out, "status")).unwrap()
    };
    wait_until("every job settled", Duration::from_secs(30), || {
        let s = status_of();
        std::future::ready(s["sent"] == 2 && s["dead"] == 1)
    })
    .await;
    let dead: Value = serde_json::from_str(&ok(
        &herald("herald-worker", &url, &env, &["dlq", "list", "--json"]),
        "dlq list",
    ))
    .unwrap();
    assert_eq!(dead.as_array().map(Vec::len), Some(1), "{dead}");
    assert_eq!(sandbox.stats().accepted, 2);
    drop(worker);
    let log = receiver.log();
    assert!(!log.contains("ERROR"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_binary_works_over_tls_with_a_private_ca() {
    every_binary_works_over_tls(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_binary_works_over_mutual_tls() {
    every_binary_works_over_tls(true).await;
}

/// The one line on stderr, which must name `var`.
fn refused(out: &Output, var: &str, what: &str) -> String {
    assert_eq!(out.status.code(), Some(2), "{what}: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let last = stderr.lines().last().unwrap_or("").to_string();
    assert!(last.contains(var), "{what}: {stderr}");
    eprintln!("{what}: {last}");
    last
}

#[test]
fn a_certificate_that_does_not_verify_is_an_error_naming_the_variable() {
    let certs = TestCerts::generate();
    let server = RedisServer::start_tls(&certs, true, &[]);
    let url = server.url();
    let wrong_ca = vec![
        ("REDIS_CA_CERT", certs.other_ca().display().to_string()),
        (
            "REDIS_CLIENT_CERT",
            certs.client_cert().display().to_string(),
        ),
        ("REDIS_CLIENT_KEY", certs.client_key().display().to_string()),
    ];
    let otp = ["otp", "--phone", "+919812345678", "--code", "123456"];
    let line = refused(
        &herald("herald-producer", &url, &wrong_ca, &otp),
        "REDIS_CA_CERT",
        "producer, wrong CA",
    );
    assert!(line.contains("does not verify"), "{line}");
    refused(
        &herald("herald-worker", &url, &wrong_ca, &["status"]),
        "REDIS_CA_CERT",
        "status, wrong CA",
    );
    // A service (which waits for an unreachable Redis) stops at once: this never heals.
    let mut run = Command::new(cargo_bin("herald-worker"));
    run.arg("run").env("INTERAKT_API_KEY", TEST_API_KEY);
    for (name, value) in &wrong_ca {
        run.env(name, value);
    }
    let out = run
        .env("REDIS_URL", &url)
        .env("HERALD_NAMESPACE", NAMESPACE)
        .output()
        .unwrap();
    refused(&out, "REDIS_CA_CERT", "worker run, wrong CA");

    // The system's roots do not know the test CA either.
    refused(
        &herald("herald-producer", &url, &[], &otp),
        "REDIS_CA_CERT",
        "producer, no CA",
    );
    // The server asks for a client certificate and none is given.
    let no_client = tls_env(&certs, false);
    refused(
        &herald("herald-producer", &url, &no_client, &otp),
        "REDIS_CLIENT_CERT",
        "producer, no client certificate",
    );
    // Certificate files with a plain-text URL are refused, never silently unused.
    let plain = format!("redis://127.0.0.1:{}", server.port());
    let line = refused(
        &herald("herald-producer", &plain, &no_client, &otp),
        "REDIS_CA_CERT",
        "producer, redis://",
    );
    assert!(line.contains("rediss://"), "{line}");
    // A key without its certificate, and a file that is not PEM.
    let key_only = vec![("REDIS_CLIENT_KEY", certs.client_key().display().to_string())];
    refused(
        &herald("herald-producer", &url, &key_only, &otp),
        "REDIS_CLIENT_CERT",
        "producer, key only",
    );
    let not_pem = vec![("REDIS_CA_CERT", certs.client_key().display().to_string())];
    refused(
        &herald("herald-producer", &url, &not_pem, &otp),
        "REDIS_CA_CERT",
        "producer, a key as CA",
    );
}

/// Cluster seed nodes over TLS: three TLS-only masters (`--tls-cluster yes`), the producer
/// CLI and a worker replica given `rediss://` seed nodes and the private CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_seed_nodes_work_over_tls() {
    let certs = TestCerts::generate();
    let cluster = herald_tests::RedisCluster::start_tls(&certs);
    let nodes = cluster.nodes_env();
    assert!(nodes.starts_with("rediss://"), "{nodes}");
    let sandbox = herald_sandbox::start(
        SandboxConfig::new(TEST_API_KEY),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let mut env = tls_env(&certs, false);
    env.push(("REDIS_CLUSTER_NODES", nodes.clone()));
    // REDIS_URL points nowhere: only the cluster's seed nodes lead to Redis.
    let nowhere = "redis://127.0.0.1:1";
    for i in 0..5 {
        let phone = format!("+91981234560{i}");
        ok(
            &herald(
                "herald-producer",
                nowhere,
                &env,
                &["otp", "--phone", &phone, "--code", "123456"],
            ),
            "herald-producer otp on a TLS cluster",
        );
    }
    let ca = certs.ca().display().to_string();
    let _worker = WorkerProcess::spawn(
        nowhere,
        NAMESPACE,
        &sandbox.base_url(),
        "tls-cluster-worker",
        &["--redis-cluster-nodes", &nodes, "--redis-ca-cert", &ca],
    );
    wait_until("every OTP sent", Duration::from_secs(30), || {
        std::future::ready(sandbox.stats().accepted == 5)
    })
    .await;
    wait_until("status to show them sent", Duration::from_secs(20), || {
        let out = herald("herald-worker", nowhere, &env, &["status", "--json"]);
        let status: Value = serde_json::from_str(&ok(&out, "status")).unwrap();
        std::future::ready(status["sent"] == 5)
    })
    .await;
}
