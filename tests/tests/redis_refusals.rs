//! Redis's refusals, named: real redis-servers driven into each state, real binaries.
//!
//! - out of memory (`CONFIG SET maxmemory 1`): a worker that cannot create its groups is not
//!   ready and says why; the API and the webhook receiver answer 503 naming it; each process
//!   logs the episode once when it starts and once when it ends; the CLI names it;
//! - a permission an ACL takes away (`ACL SETUSER herald -evalsha`, `-xreadgroup`): the
//!   worker and the webhook process stop with exit 1, naming the command and the key
//!   pattern, never retried at WARN;
//! - maxclients reached (`CONFIG SET maxclients 1`, the slot held by the test): `status`
//!   says so (it said "broken pipe"), a worker is not ready until connections are accepted;
//! - a read-only replica (`REPLICAOF`): the worker is not ready and the API answers 503,
//!   until `REPLICAOF NO ONE`;
//! - loading (a restart with a dataset that loads slowly, `key-load-delay`): the worker is
//!   not ready while Redis loads, and rides it out.
//!
//! Every wait is on a condition.

use std::process::{Command, Output};
use std::time::Duration;

use herald_tests::scenario::{http_request, http_status};
use herald_tests::{ApiProcess, RedisServer, WorkerProcess, cargo_bin, free_port, wait_until};
use serde_json::json;

/// Interakt, nowhere: these workers never send.
const NOWHERE: &str = "http://127.0.0.1:1/v1/public";
const TOKEN: &str = "refusals-api-token";
/// How an episode's first log line ends, and a field only its last line has.
const STARTS: &str = "(one line when it ends)";
const ENDS: &str = "lasted_ms";
const WITHIN: Duration = Duration::from_secs(30);

fn redis_cli(server: &RedisServer, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(server.cli_args())
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn run(binary: &str, url: &str, namespace: &str, args: &[&str]) -> Output {
    Command::new(cargo_bin(binary))
        .args(args)
        .env("REDIS_URL", url)
        .env("HERALD_NAMESPACE", namespace)
        .env_remove("RUST_LOG")
        .output()
        .expect("run a herald binary")
}

/// `GET url`: status and body, `(0, "")` when nothing answers.
async fn get(url: &str) -> (u16, String) {
    http_request("GET", url, &[], "")
        .await
        .unwrap_or((0, String::new()))
}

/// Waits until `url` answers `status` with a body containing `says`.
async fn wait_for(url: &str, status: u16, says: &str) {
    wait_until(
        &format!("{url} answering {status} with {says:?}"),
        WITHIN,
        || async {
            let (got, body) = get(url).await;
            got == status && body.contains(says)
        },
    )
    .await;
}

/// A worker replica with `/metrics` and `/readyz` on a free port; its `/readyz` URL.
fn worker(url: &str, namespace: &str, consumer: &str) -> (WorkerProcess, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let worker = WorkerProcess::spawn(
        url,
        namespace,
        NOWHERE,
        consumer,
        &["--http-listen", &listen],
    );
    (worker, format!("http://{listen}/readyz"))
}

/// `herald-webhook` without signatures on a free port; its address.
fn webhook(url: &str, namespace: &str, consumer: &str) -> (WorkerProcess, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut command = Command::new(cargo_bin("herald-webhook"));
    command
        .args(["--listen", &listen, "--insecure-no-signature"])
        .env_remove("INTERAKT_WEBHOOK_SECRET");
    let process = WorkerProcess::spawn_command(command, url, namespace, consumer);
    (process, listen)
}

async fn post_otp(api: &ApiProcess, key: &str) -> (u16, String) {
    let body = json!({"phone": "+919812345670", "code": "123456", "idempotency_key": key});
    http_request(
        "POST",
        &format!("{}/v1/jobs/otp", api.base_url()),
        &[
            ("Authorization", &format!("Bearer {TOKEN}")),
            ("Content-Type", "application/json"),
        ],
        &body.to_string(),
    )
    .await
    .expect("the API answers")
}

/// Waits for the last line of `process`'s episode (containing `ends`), then checks it logged
/// that episode once when it started (a first line containing `starts`) and once when it
/// ended.
async fn one_episode(process: &WorkerProcess, starts: &str, ends: &str) {
    wait_until(&format!("{ends:?} in the log"), WITHIN, || {
        std::future::ready(process.log().contains(ends))
    })
    .await;
    let log = process.log();
    assert_eq!(episodes(&log, starts, ends), (1, 1), "{log}");
}

/// Posts a delivery event to the receiver at `hooks`; its status.
async fn post_event(hooks: &str, i: usize) -> u16 {
    let event = json!({
        "entityType": "USER_EVENT",
        "entity": {"eventType": "DELIVERED", "messageId": "m-1", "eventId": format!("e-{i}")},
    });
    http_request(
        "POST",
        &format!("http://{hooks}/webhooks/interakt"),
        &[("Content-Type", "application/json")],
        &event.to_string(),
    )
    .await
    .expect("the receiver answers")
    .0
}

/// How many episodes of one kind `log` started (a first line containing `starts`) and ended
/// (a last line containing `ends`).
fn episodes(log: &str, starts: &str, ends: &str) -> (usize, usize) {
    let count = |says: &str, marker: &str| {
        log.lines()
            .filter(|l| l.contains(marker) && l.contains(says))
            .count()
    };
    (count(starts, STARTS), count(ends, ENDS))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_memory_is_said_once_per_process_and_a_worker_that_cannot_start_is_not_ready() {
    let server = RedisServer::start();
    let url = server.url();
    let api = ApiProcess::start(&url, "oom", TOKEN, &[]).await;
    let (receiver, hooks) = webhook(&url, "oom", "oom-hooks");
    let hooks_ready = format!("http://{hooks}/readyz");
    wait_for(&hooks_ready, 200, "ready").await;

    assert_eq!(
        redis_cli(&server, &["CONFIG", "SET", "maxmemory", "1"]),
        "OK"
    );
    // A namespace no worker ever used: its groups must be created, which Redis refuses.
    let (worker, ready) = worker(&url, "fresh", "oom-worker");
    wait_for(&ready, 503, "Redis is out of memory (maxmemory reached)").await;

    // The API answers 503 naming it, request after request, and stays ready (reads and
    // cancels still work); the webhook receiver answers 503 so Interakt delivers again.
    for i in 0..3 {
        let (status, body) = post_otp(&api, &format!("oom:{i}")).await;
        assert_eq!(status, 503, "{body}");
        assert!(
            body.contains("out of memory") && body.contains("OOM command not allowed"),
            "{body}"
        );
        assert_eq!(post_event(&hooks, i).await, 503);
    }
    assert_eq!(
        http_status(&format!("{}/readyz", api.base_url())).await,
        Some(200)
    );
    let out = run(
        "herald-producer",
        &url,
        "oom",
        &["otp", "--phone", "+919812345671", "--code", "654321"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("Redis is out of memory"), "{stderr}");

    assert_eq!(
        redis_cli(&server, &["CONFIG", "SET", "maxmemory", "0"]),
        "OK"
    );
    wait_for(&ready, 200, "ready").await;
    let (status, body) = post_otp(&api, "oom:after").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(post_event(&hooks, 3).await, 200);

    let end = "Redis accepts writes again (memory freed) after";
    for (name, log) in [
        (
            "worker",
            Box::new(|| worker.log()) as Box<dyn Fn() -> String>,
        ),
        ("API", Box::new(|| api.log())),
        ("webhook", Box::new(|| receiver.log())),
    ] {
        wait_until(&format!("the {name}'s last line"), WITHIN, || {
            std::future::ready(log().contains(end))
        })
        .await;
        let log = log();
        assert_eq!(
            episodes(&log, "out of memory", end),
            (1, 1),
            "{name}: one line when it started, one when it ended:\n{log}"
        );
    }
    let metrics = get(&ready.replace("/readyz", "/metrics")).await.1;
    assert!(
        metrics.contains("herald_redis_errors_total{kind=\"oom\",task=\"start-up\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("herald_redis_failing{kind=\"oom\"} 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_taken_away_stops_the_worker_and_the_webhook_naming_the_command() {
    let server = RedisServer::start();
    // The README's user; its key pattern is `~{herald}:*`, the namespace `herald`.
    let url = herald_tests::acl::create_readme_user(server.port(), "s3cret-refusals");
    let (mut worker, ready) = worker(&url, "herald", "noperm-worker");
    let (mut receiver, hooks) = webhook(&url, "herald", "noperm-hooks");
    let hooks_ready = format!("http://{hooks}/readyz");
    wait_for(&ready, 200, "ready").await;
    wait_for(&hooks_ready, 200, "ready").await;

    // Scripts refused: the worker's retry promoter meets it within a quarter second.
    assert_eq!(
        redis_cli(&server, &["ACL", "SETUSER", "herald", "-evalsha"]),
        "OK"
    );
    worker
        .assert_stops_unready(
            &ready,
            &[
                "kind=\"noperm\"",
                "Redis refused the 'evalsha' command",
                "waiting cannot help",
                "ACL SETUSER <user> +evalsha ~{herald}:*",
            ],
        )
        .await;
    let log = worker.log();
    assert!(!log.contains(STARTS), "never retried at WARN:\n{log}");

    // Stream reads refused: the webhook processor stops, the receiver with it.
    assert_eq!(
        redis_cli(&server, &["ACL", "SETUSER", "herald", "-xreadgroup"]),
        "OK"
    );
    receiver
        .assert_stops_unready(
            &hooks_ready,
            &[
                "Redis refused the 'xreadgroup' command",
                "ACL SETUSER <user> +xreadgroup ~{herald}:*",
            ],
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxclients_reached_is_named_by_status_and_the_worker_waits_it_out() {
    let server = RedisServer::start();
    let url = server.url();
    // The test's connection takes the one slot left.
    let mut held = herald_tests::connect(&url).await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "maxclients", "1"])
        .query_async(&mut held)
        .await
        .unwrap();

    let out = run("herald-worker", &url, "clients", &["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refused: Redis has reached maxclients")
            && stderr.contains("ERR max number of clients reached"),
        "{stderr}"
    );
    assert!(!stderr.contains("broken pipe"), "{stderr}");

    let (worker, ready) = worker(&url, "clients", "clients-worker");
    wait_for(&ready, 503, "maxclients").await;
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "maxclients", "10000"])
        .query_async(&mut held)
        .await
        .unwrap();
    wait_for(&ready, 200, "ready").await;
    let out = run("herald-worker", &url, "clients", &["status"]);
    assert!(out.status.success(), "{out:?}");
    one_episode(
        &worker,
        "maxclients",
        "Redis accepts connections again after",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_replica_makes_the_worker_unready_and_the_api_say_so_until_promoted() {
    let server = RedisServer::start();
    let primary = RedisServer::start();
    let url = server.url();
    let api = ApiProcess::start(&url, "replica", TOKEN, &[]).await;
    let (worker, ready) = worker(&url, "replica", "replica-worker");
    wait_for(&ready, 200, "ready").await;

    let port = primary.port().to_string();
    assert_eq!(redis_cli(&server, &["REPLICAOF", "127.0.0.1", &port]), "OK");
    wait_for(&ready, 503, "read-only replica").await;
    let mut tries = 0;
    wait_until("the API naming READONLY", WITHIN, || {
        tries += 1;
        let key = format!("replica:{tries}");
        let api = &api;
        async move {
            let (status, body) = post_otp(api, &key).await;
            status == 503 && body.contains("read-only replica and refuses writes: READONLY")
        }
    })
    .await;

    assert_eq!(redis_cli(&server, &["REPLICAOF", "NO", "ONE"]), "OK");
    wait_for(&ready, 200, "ready").await;
    let (status, body) = post_otp(&api, "replica:after").await;
    assert_eq!(status, 202, "{body}");
    one_episode(
        &worker,
        "read-only replica",
        "Redis accepts writes again (a primary) after",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_loading_its_dataset_is_waited_out_and_readiness_says_so() {
    // 60,000 keys at 100 µs each: about six seconds of LOADING after a restart, answered
    // between every kilobyte read.
    let mut server = RedisServer::start_with(&[
        "--enable-debug-command",
        "yes",
        "--key-load-delay",
        "100",
        "--loading-process-events-interval-bytes",
        "1024",
    ]);
    assert_eq!(redis_cli(&server, &["DEBUG", "POPULATE", "60000"]), "OK");
    redis_cli(&server, &["BGREWRITEAOF"]);
    wait_until("the AOF rewritten", WITHIN, || {
        let info = redis_cli(&server, &["INFO", "persistence"]);
        std::future::ready(
            info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrite_scheduled:0"),
        )
    })
    .await;
    let url = server.url();
    let (worker, ready) = worker(&url, "loading", "loading-worker");
    wait_for(&ready, 200, "ready").await;

    server.stop();
    // Started again on a thread of its own: it returns once Redis answers PING, loaded.
    let restart = tokio::task::spawn_blocking(move || {
        server.start_again();
        server
    });
    wait_for(&ready, 503, "loading").await;
    let _server = restart.await.unwrap();
    wait_for(&ready, 200, "ready").await;
    one_episode(
        &worker,
        "loading its dataset",
        "Redis has loaded its dataset after",
    )
    .await;
}
