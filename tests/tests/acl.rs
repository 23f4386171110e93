//! Herald under the least Redis access it needs: the ACL user docs/redis.md gives (read from
//! that page itself, so the two cannot drift apart) is created on a real redis-server, and
//! every binary runs under it: the producer CLI and API, a worker replica through sends,
//! a retry, jobs held for budget, a dead letter and a SIGTERM, the webhook receiver and its
//! processor, the operator's status, track and dlq, and the dashboard (a failed login, a
//! login, its pages, a replay preview, a logout). A command missing from the list
//! fails the test: as an exit code, an outcome that never comes, or a NOPERM in a log.
//!
//! The same run again behind Sentinel, as production runs it: TLS only everywhere with client
//! certificates, docs/redis.md's Sentinel user (`rediss://herald-sentinel:PASSWORD@...`) toward
//! the Sentinels, docs/redis.md's data user (`REDIS_USERNAME`, `REDIS_PASSWORD`) toward the
//! primary they name, and `HERALD_MIN_REPLICAS=1`, so the commands that finding the primary
//! (`ROLE`, `SENTINEL MASTERS`) and waiting for the replica (`WAIT`) need are checked too.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use herald_sandbox::SandboxConfig;
use herald_tests::acl::{readme_acl, readme_sentinel_acl};
use herald_tests::scenario::{http_request, http_status};
use herald_tests::{
    ApiProcess, DashboardProcess, LOOPBACK, RedisEnv, RedisSentinel, RedisServer, SentinelOptions,
    TEST_API_KEY, TestCerts, WorkerProcess, cargo_bin, free_port, wait_until,
};
use serde_json::{Value, json};

/// docs/redis.md's namespace: the ACL's key pattern is `~{herald}:*`.
const NAMESPACE: &str = "herald";
const PASSWORD: &str = "s3cret-acl-password";
const SENTINEL_PASSWORD: &str = "s3cret-sentinel-acl-password";
const SECRET: &str = "acl-webhook-secret";
const TOKEN: &str = "acl-api-token";
const DASHBOARD_TOKEN: &str = "acl-dashboard-token";
const REFUSED: &str = "+919000000001";
const FLAKY: &str = "+919000000002";
const OTHER: &str = "+919000000003";

struct Env {
    redis: RedisEnv,
}

impl Env {
    fn run(&self, binary: &str, args: &[&str]) -> Output {
        let mut command = Command::new(cargo_bin(binary));
        self.redis.apply(&mut command);
        command
            .args(args)
            .env("HERALD_NAMESPACE", NAMESPACE)
            .env_remove("RUST_LOG")
            .output()
            .expect("run a herald binary")
    }

    /// Runs and requires success and a stderr free of permission errors; returns stdout.
    fn ok(&self, binary: &str, args: &[&str]) -> String {
        let out = self.run(binary, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !denied(&stderr),
            "{binary} {args:?}: {:?}\n{stderr}",
            out.status
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, binary: &str, args: &[&str]) -> Value {
        let out = self.ok(binary, args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }
}

fn redis_cli(port: u16, args: &[&str]) -> Output {
    Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli")
}

/// A permission error in `log`, but for the one refusal Herald expects and reports as such
/// (`CONFIG GET maxmemory-policy`, deliberately not granted).
fn denied(log: &str) -> bool {
    log.lines()
        .filter(|line| !line.contains("maxmemory-policy could not be checked"))
        .map(str::to_ascii_lowercase)
        .any(|line| line.contains("noperm") || line.contains("no permissions"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_binary_runs_under_the_readme_acl_user() {
    let server = RedisServer::start();
    let env = Env {
        redis: RedisEnv::url(&herald_tests::acl::create_readme_user(
            server.port(),
            PASSWORD,
        )),
    };
    // The user really is limited: another namespace's keys are refused.
    let out = redis_cli(
        server.port(),
        &[
            "--user",
            "herald",
            "--pass",
            PASSWORD,
            "SET",
            "{other}:x",
            "1",
        ],
    );
    assert!(denied(&String::from_utf8_lossy(&out.stdout)), "{out:?}");
    every_binary_runs_as(&env).await;
}

/// The user and password apart from the URL (REDIS_USERNAME, REDIS_PASSWORD): used when the
/// URL has none, refused (exit 2, naming the variable, showing neither password) when the
/// URL has another.
#[test]
fn the_user_and_password_may_be_given_apart_from_the_url() {
    let server = RedisServer::start();
    herald_tests::acl::create_readme_user(server.port(), PASSWORD);
    let off = redis_cli(server.port(), &["ACL", "SETUSER", "default", "off"]);
    assert!(off.status.success(), "{off:?}");
    let otp = ["otp", "--phone", "+919812345670", "--code", "123456"];
    let apart = Env {
        redis: RedisEnv::url(&server.url())
            .with("REDIS_USERNAME", "herald")
            .with("REDIS_PASSWORD", PASSWORD),
    };
    apart.ok("herald-producer", &otp);
    let both = Env {
        redis: apart.redis.clone().with(
            "REDIS_URL",
            format!(
                "redis://herald:another-password@127.0.0.1:{}",
                server.port()
            ),
        ),
    };
    let out = both.run("herald-producer", &otp);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "REDIS_PASSWORD (--redis-password): differs from the password in redis://***@127.0.0.1:"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains(PASSWORD) && !stderr.contains("another-password"),
        "{stderr}"
    );
    // Without them the URL alone is Redis's default user, switched off here.
    let default_user = Env {
        redis: RedisEnv::url(&server.url()),
    };
    let out = default_user.run("herald-producer", &otp);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_binary_runs_under_the_readme_acl_users_behind_tls_sentinels() {
    let certs = TestCerts::generate();
    let setup = RedisSentinel::start(SentinelOptions::secured(&certs)).await;
    setup.on_data_nodes(&readme_acl(PASSWORD));
    setup.on_sentinels(&readme_sentinel_acl(SENTINEL_PASSWORD));
    let env = Env {
        redis: setup
            .env(
                Some(("herald-sentinel", SENTINEL_PASSWORD)),
                Some(("herald", PASSWORD)),
            )
            .with("HERALD_MIN_REPLICAS", "1"),
    };
    let nodes = setup.nodes_env(Some(("herald-sentinel", SENTINEL_PASSWORD)));
    assert!(nodes.starts_with("rediss://herald-sentinel:"), "{nodes}");
    every_binary_runs_as(&env).await;
    // Nothing was refused on the way but the one expected refusal (CONFIG GET).
    for i in 0..setup.sentinels.len() {
        let refused = refused_commands(&setup.sentinel_cli(i, &["ACL", "LOG"]));
        assert!(refused.is_empty(), "sentinel {i} refused: {refused:?}");
    }
    let refused = refused_commands(&setup.data_cli(&setup.primary, &["ACL", "LOG"]));
    assert!(
        refused.iter().all(|c| c == "config|get"),
        "the primary refused: {refused:?}"
    );
}

/// The commands an `ACL LOG` reply (redis-cli's plain output, one field a line) lists.
fn refused_commands(log: &str) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    lines
        .windows(2)
        .filter(|pair| pair[0] == "object")
        .map(|pair| pair[1].to_string())
        .collect()
}

/// Every binary, under the Redis that `env` points at: the assertions of the module doc.
async fn every_binary_runs_as(env: &Env) {
    let hooks = format!("127.0.0.1:{}", free_port());
    let mut config = SandboxConfig::new(TEST_API_KEY);
    config.webhook_url = Some(format!("http://{hooks}/webhooks/interakt"));
    config.webhook_secret = Some(SECRET.to_string().into());
    config.script = [format!("{REFUSED}=400"), format!("{FLAKY}=fail:1")]
        .iter()
        .map(|rule| rule.parse().unwrap())
        .collect();
    let sandbox = herald_sandbox::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();

    // The webhook receiver and processor (herald-webhook).
    let mut webhook = Command::new(cargo_bin("herald-webhook"));
    webhook
        .args(["--listen", &hooks])
        .env("INTERAKT_WEBHOOK_SECRET", SECRET);
    env.redis.apply(&mut webhook);
    let receiver =
        WorkerProcess::spawn_command(webhook, env.redis.redis_url(), NAMESPACE, "acl-hooks");
    wait_until("the receiver ready", Duration::from_secs(20), || async {
        http_status(&format!("http://{hooks}/readyz")).await == Some(200)
    })
    .await;

    // The producer API.
    let api = ApiProcess::start_in(&env.redis, NAMESPACE, TOKEN, &[]).await;
    let listen = api.listen().to_string();
    let auth = format!("Bearer {TOKEN}");
    let post = |path: &'static str, body: Value| {
        let (url, auth) = (format!("http://{listen}{path}"), auth.clone());
        async move {
            let (status, body) = http_request(
                "POST",
                &url,
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                ],
                &body.to_string(),
            )
            .await
            .expect("the API answers");
            (
                status,
                serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
            )
        }
    };
    let (status, api_otp) = post(
        "/v1/jobs/otp",
        json!({"phone": "+919812345670", "code": "123456", "idempotency_key": "acl:otp:1"}),
    )
    .await;
    assert_eq!(status, 202, "{api_otp}");
    let (status, batch) = post(
        "/v1/jobs/batch",
        json!([
            {"kind": "booking", "phone": "+919812345671", "booking_id": "B1", "service": "Haircut", "date": "2030-11-24", "time": "10:30"},
            {"kind": "booking", "phone": FLAKY, "booking_id": "B2", "service": "Haircut", "date": "2030-11-24", "time": "11:30"},
            // A tenant's own stream and turn, and the reminder lane.
            {"kind": "reminder", "phone": "+919812345674", "booking_id": "B5", "service": "Haircut", "date": "2030-11-24", "time": "14:30", "tenant": "salon-acl"},
        ]),
    )
    .await;
    assert_eq!(status, 202, "{batch}");

    // The producer CLI: single jobs (a duplicate key once), and bulk.
    let otp_id = env
        .ok(
            "herald-producer",
            &["otp", "--phone", "+919812345672", "--code", "654321"],
        )
        .trim()
        .to_string();
    let booking = [
        "booking",
        "--phone",
        OTHER,
        "--booking-id",
        "B3",
        "--service",
        "Haircut",
        "--date",
        "2030-11-24",
        "--time",
        "12:30",
        "--idempotency-key",
        "acl:booking:B3",
    ];
    let first = env.ok("herald-producer", &booking);
    assert_eq!(env.ok("herald-producer", &booking), first, "a duplicate");
    let bulk = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        bulk.path(),
        [
            json!({"kind": "otp", "phone": REFUSED, "code": "111111", "valid_for": "10m"}),
            json!({"kind": "booking", "phone": "+919812345673", "booking_id": "B4", "service": "Haircut", "date": "2030-11-24", "time": "13:30"}),
        ]
        .map(|l| l.to_string())
        .join("\n"),
    )
    .unwrap();
    let summary = env.json(
        "herald-producer",
        &["bulk", "--json", bulk.path().to_str().unwrap()],
    );
    assert_eq!(
        summary,
        json!({"enqueued": 2, "duplicates": 0, "rejected": 0})
    );
    let total = 8;

    // A worker replica: sends, a retry after a 503, jobs held for budget, one dead letter.
    let worker = WorkerProcess::spawn_in(
        &env.redis,
        NAMESPACE,
        &sandbox.base_url(),
        "acl-worker",
        // A low rate: jobs wait in hand for their token, are kept alive and checked (XCLAIM)
        // before their send; a short --claim-idle runs the recovery scan (XAUTOCLAIM) often.
        &[
            "--backoff-base",
            "100ms",
            "--rate",
            "2/1s",
            "--request-timeout",
            "1s",
            "--claim-idle",
            "2s",
        ],
    );
    let status_of = || env.json("herald-worker", &["status", "--json"]);
    let settled = |s: &Value| s["sent"] == total - 1 && s["dead"] == 1 && s["delayed"] == 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while !settled(&status_of()) {
        assert!(
            std::time::Instant::now() < deadline,
            "not settled: {}\nworker log:\n{}",
            status_of(),
            worker.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = status_of();
    assert_eq!(
        status["maxmemory_policy"],
        Value::Null,
        "CONFIG is not granted: {status}"
    );

    // Timelines, through the webhook processor's records.
    let id = api_otp["job_id"].as_str().unwrap().to_string();
    for job in [&id, &otp_id] {
        wait_until("delivered and read", Duration::from_secs(30), || {
            let t = env.json("herald-worker", &["track", job, "--json"]);
            std::future::ready(t["state"] == "read")
        })
        .await;
    }
    let timeline = env.json("herald-worker", &["track", &otp_id, "--json"]);
    let message_id = timeline["message_id"].as_str().unwrap().to_string();
    let by_message = env.json(
        "herald-worker",
        &["track", "--interakt-id", &message_id, "--json"],
    );
    assert_eq!(by_message["job_id"], otp_id);
    let (status, answer) = http_request(
        "GET",
        &format!("http://{listen}/v1/jobs/{id}"),
        &[("Authorization", &auth)],
        "",
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{answer}");

    // The dashboard: a failed login (counted), a login, its pages, a replay preview, a
    // logout (its session deleted).
    let dashboard = DashboardProcess::start_in(&env.redis, NAMESPACE, DASHBOARD_TOKEN, &[]).await;
    let refused = dashboard
        .log_in_from(LOOPBACK, "not-the-dashboard-token")
        .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let cookie = dashboard.log_in(DASHBOARD_TOKEN).await;
    let get = |path: String| {
        let cookie = cookie.clone();
        let dashboard = &dashboard;
        async move {
            dashboard
                .request(LOOPBACK, "GET", &path, &[("Cookie", &cookie)], "")
                .await
        }
    };
    let overview = get("/".to_string()).await;
    assert_eq!(overview.status, 200, "{overview:?}\n{}", dashboard.log());
    for path in [
        "/live/overview".to_string(),
        "/dead".to_string(),
        format!("/jobs?q={id}"),
    ] {
        let page = get(path.clone()).await;
        assert_eq!(page.status, 200, "{path}: {page:?}\n{}", dashboard.log());
    }
    let csrf = overview.csrf().expect("a CSRF token");
    let form = [
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let preview = dashboard
        .request(
            LOOPBACK,
            "POST",
            "/actions/replay",
            &form,
            &format!("scope=all&csrf={csrf}"),
        )
        .await;
    assert_eq!(preview.status, 200, "{preview:?}");
    let logout = dashboard
        .request(LOOPBACK, "POST", "/logout", &form, &format!("csrf={csrf}"))
        .await;
    assert_eq!(logout.status, 303, "{logout:?}");
    assert_eq!(get("/".to_string()).await.status, 303, "logged out");

    // Dead letters: list, show, replay (it fails again: dead again), purge.
    let dead = env.json("herald-worker", &["dlq", "list", "--json"]);
    let dead_id = dead[0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{dead}"))
        .to_string();
    env.ok("herald-worker", &["dlq", "show", &dead_id]);
    env.ok("herald-worker", &["dlq", "replay", &dead_id]);
    wait_until(
        "the replayed job dead again",
        Duration::from_secs(30),
        || {
            let s = status_of();
            std::future::ready(s["dead"] == 1 && s["ready"] == 0 && s["pending"] == 0)
        },
    )
    .await;
    env.ok("herald-worker", &["dlq", "purge", "--all", "--yes"]);
    assert_eq!(status_of()["dead"], 0);

    // A clean stop: the worker hands nothing back it should not, and exits 0.
    let mut worker = worker;
    worker.signal("TERM");
    let exited = worker.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(exited.and_then(|s| s.code()), Some(0), "{}", worker.log());

    let stats = sandbox.stats();
    assert!(stats.count(503) >= 1, "{stats:?}");
    for (name, log) in [
        ("worker", worker.log()),
        ("webhook", receiver.log()),
        ("api", api.log()),
        ("dashboard", dashboard.log()),
    ] {
        assert!(!denied(&log), "{name} was refused a command:\n{log}");
    }
}
