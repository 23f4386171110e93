//! Durable enqueue (`HERALD_MIN_REPLICAS`): a real primary and replica (`--replicaof`).
//! With `--min-replicas 1` an enqueue is acknowledged only once the replica has it; with the
//! replica gone it fails (CLI exit 2 naming the setting, API 503 with Retry-After, bulk exit
//! 2) and a retry with the same idempotency key, once the replica is back, enqueues nothing
//! twice. Workers wait for the replica to have each sent marker, and say so when it does not.

use std::process::{Command, Output};
use std::time::Duration;

use herald_shared::Lane;
use herald_store::Keys;
use herald_tests::scenario::http_request;
use herald_tests::{ApiProcess, RedisServer, WorkerProcess, cargo_bin, wait_until};
use serde_json::json;

/// docs/redis.md's ACL user's namespace: the producer runs as that user (WAIT included).
const NAMESPACE: &str = "herald";
const TOKEN: &str = "durable-token";

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn start_replica(primary: &RedisServer) -> RedisServer {
    let port = primary.port().to_string();
    RedisServer::start_with(&["--replicaof", "127.0.0.1", &port])
}

async fn wait_in_sync(primary: &RedisServer) {
    wait_until("the replica in sync", Duration::from_secs(20), || {
        let info = redis_cli(primary.port(), &["INFO", "replication"]);
        std::future::ready(info.contains("connected_slaves:1") && info.contains("state=online"))
    })
    .await;
}

fn producer(url: &str, min_replicas: &str, args: &[&str]) -> Output {
    Command::new(cargo_bin("herald-producer"))
        .args(args)
        .env("REDIS_URL", url)
        .env("HERALD_NAMESPACE", NAMESPACE)
        .env("HERALD_MIN_REPLICAS", min_replicas)
        .output()
        .expect("run herald-producer")
}

fn otp(key: &str) -> Vec<&str> {
    vec![
        "otp",
        "--phone",
        "+919812345678",
        "--code",
        "123456",
        "--idempotency-key",
        key,
    ]
}

fn lane_len(server: &RedisServer) -> String {
    redis_cli(
        server.port(),
        &["XLEN", &Keys::new(NAMESPACE).unwrap().lane(Lane::Otp)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueue_is_acknowledged_only_once_a_replica_has_it() {
    let primary = RedisServer::start();
    let mut replica = start_replica(&primary);
    wait_in_sync(&primary).await;
    // As docs/redis.md's minimal ACL user: `+wait` must be in it.
    let url = herald_tests::acl::create_readme_user(primary.port(), "durable-pw");

    // Replicated: acknowledged, and already on the replica when the CLI returns.
    let out = producer(&url, "1", &otp("login:1"));
    assert!(out.status.success(), "{out:?}");
    let first = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(lane_len(&replica), "1");

    // The API, with --min-replicas 1, while the replica is up.
    let api = ApiProcess::start(&url, NAMESPACE, TOKEN, &["--min-replicas", "1"]).await;
    let listen = api.listen().to_string();
    let auth = format!("Bearer {TOKEN}");
    let post = |key: &str| {
        let body = json!({"phone": "+919812345679", "code": "222222", "idempotency_key": key});
        let (url, auth) = (format!("http://{listen}/v1/jobs/otp"), auth.clone());
        async move {
            http_request("POST", &url, &[("Authorization", &auth)], &body.to_string())
                .await
                .expect("the API answers")
        }
    };
    assert_eq!(post("api:1").await.0, 202);

    // The replica is gone: every enqueue fails, named, and says to retry.
    replica.kill();
    let out = producer(&url, "1", &otp("login:2"));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("HERALD_MIN_REPLICAS") && stderr.contains("same idempotency key"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let (status, body) = post("api:2").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("HERALD_MIN_REPLICAS"), "{body}");
    let (status, headers) = retry_after(&listen, &auth).await;
    assert_eq!((status, headers.as_deref()), (503, Some("1")));
    let bulk = tempfile::NamedTempFile::new().unwrap();
    let line = json!({"kind": "otp", "phone": "+919812345670", "code": "333333", "idempotency_key": "bulk:1"});
    std::fs::write(bulk.path(), line.to_string()).unwrap();
    let out = producer(&url, "1", &["bulk", bulk.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // Without --min-replicas the same enqueue is acknowledged at once (Redis's default).
    let out = producer(&url, "0", &otp("login:3"));
    assert!(out.status.success(), "{out:?}");

    // The replica is back: the retries with the same keys are acknowledged, once each.
    replica.start_again();
    wait_in_sync(&primary).await;
    let before = lane_len(&primary);
    let out = producer(&url, "1", &otp("login:2"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(post("api:2").await.0, 202);
    let out = producer(
        &url,
        "1",
        &["bulk", "--json", bulk.path().to_str().unwrap()],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        json!({"enqueued": 0, "duplicates": 1, "rejected": 0})
    );
    assert_eq!(
        lane_len(&primary),
        before,
        "the retries enqueued nothing twice"
    );
    // The first job's retry is a duplicate too.
    let out = producer(&url, "1", &otp("login:1"));
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), first);
    assert_eq!(lane_len(&replica), lane_len(&primary));
}

/// The status and `Retry-After` of an OTP enqueue the API cannot make durable.
async fn retry_after(listen: &str, auth: &str) -> (u16, Option<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body =
        json!({"phone": "+919812345679", "code": "222222", "idempotency_key": "api:3"}).to_string();
    let mut stream = tokio::net::TcpStream::connect(listen).await.unwrap();
    let request = format!(
        "POST /v1/jobs/otp HTTP/1.0\r\nHost: {listen}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer.split_whitespace().nth(1).unwrap().parse().unwrap();
    let header = answer.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("retry-after:")
            .map(|v| v.trim().to_string())
    });
    (status, header)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_wait_for_replicas_to_have_sending_marks_and_sent_markers() {
    let primary = RedisServer::start();
    let mut replica = start_replica(&primary);
    wait_in_sync(&primary).await;
    let url = primary.url();
    let sandbox = herald_sandbox::start(
        herald_sandbox::SandboxConfig::new(herald_tests::TEST_API_KEY),
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let out = producer(&url, "1", &otp("marker:1"));
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let worker = WorkerProcess::spawn(
        &url,
        NAMESPACE,
        &sandbox.base_url(),
        "durable-1",
        &["--min-replicas", "1"],
    );
    wait_until("the job sent", Duration::from_secs(20), || {
        std::future::ready(sandbox.stats().accepted == 1)
    })
    .await;
    let marker = Keys::new(NAMESPACE).unwrap().sent(&id);
    wait_until("the marker on the replica", Duration::from_secs(10), || {
        std::future::ready(redis_cli(replica.port(), &["EXISTS", &marker]) == "1")
    })
    .await;
    assert!(
        !worker.log().contains("not on enough replicas"),
        "{}",
        worker.log()
    );

    // Without the replica, a job's `sending` mark cannot be confirmed: it is not sent (a
    // failover would forget the mark, and a cancel then would answer "cancelled" for a job
    // being sent), and the worker says why. A replica back, it goes.
    replica.kill();
    let out = producer(&url, "0", &otp("marker:2"));
    assert!(out.status.success(), "{out:?}");
    wait_until("the warning", Duration::from_secs(30), || {
        std::future::ready(worker.log().contains("not on enough replicas"))
    })
    .await;
    assert_eq!(sandbox.stats().accepted, 1, "not sent unconfirmed");
    let _replica = start_replica(&primary);
    wait_until(
        "the job sent once replicated",
        Duration::from_secs(30),
        || std::future::ready(sandbox.stats().accepted == 2),
    )
    .await;
}
