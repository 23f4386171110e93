//! Every Herald server's `/metrics` page passes Prometheus's own linter, and serves every
//! metric the alert rules and the Grafana dashboard query.
//!
//! One end-to-end run with real processes: `herald-producer serve` takes jobs over HTTP, a
//! `herald-worker run --http-listen` replica with two concurrency slots (jobs wait for them:
//! slot saturation) sends them to the sandbox (scripted to answer one 503, one 429 and one
//! 400, so the retried, rate-limited and dead-letter metrics exist), the sandbox posts
//! signed delivery webhooks to `herald-webhook`, which processes them and then loses Redis
//! for a moment (a proxy refuses it: the Redis episode counter). Then each server's page goes
//! through `promtool check metrics` (every metric has help text, counters end in `_total`,
//! units are base units in the name), and every query of `deploy/prometheus/alerts.yml` and
//! `deploy/grafana/herald.json` is checked against the pages: each metric it names is on
//! one, each `label="value"` it selects is on a sample, each label it aggregates by is
//! carried ([`herald_tests::observability`]).
//!
//! A second test checks the values of what the worker exports for the alerts: the budget's
//! plan, the live replicas, each lane's oldest job's age and an OTP's wait.
//!
//! `promtool` is Debian's `prometheus` package; without it the test is skipped locally,
//! saying so, and fails with `CI=true`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use herald_tests::observability::{Query, all_queries, missing_on_pages, samples};
use herald_tests::scenario::{SandboxSetup, Scenario, free_port, http_request, http_status};
use herald_tests::{TcpProxy, cargo_bin, require_tool, wait_until};

const TOKEN: &str = "metrics-test-token";
const SECRET: &str = "metrics-test-webhook-secret";
/// Scripted in the sandbox: answered 503 once, 429 once, 400 (dead-lettered).
const FLAKY: &str = "+919000000001";
const LIMITED: &str = "+919000000003";
const REFUSED: &str = "+919000000002";

/// A server process with its stderr in a log file, printed if the test fails; dropping it
/// kills the process.
struct Server {
    name: &'static str,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn spawn(name: &'static str, mut command: Command) -> Server {
        let dir = tempfile::tempdir().expect("temp dir for the log");
        let log = dir.path().join("server.log");
        let child = command
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the log"))
            .spawn()
            .unwrap_or_else(|err| panic!("start {name}: {err}"));
        Server {
            name,
            child,
            log,
            _dir: dir,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("----- log of {} -----\n{log}", self.name);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `/metrics` page at `addr`, empty when it does not answer 200.
async fn metrics_page(addr: &str) -> String {
    match http_request("GET", &format!("http://{addr}/metrics"), &[], "").await {
        Some((200, page)) => page,
        _ => String::new(),
    }
}

async fn wait_ready(what: &str, addr: &str) {
    wait_until(what, Duration::from_secs(30), || async {
        http_status(&format!("http://{addr}/readyz")).await == Some(200)
    })
    .await;
}

/// Waits until the page at `addr` names every metric in `names`; returns that page.
async fn wait_for_metrics(server: &str, addr: &str, names: &[&str]) -> String {
    let what = format!("{server}'s /metrics to show {names:?}");
    wait_until(&what, Duration::from_secs(60), || async {
        let page = metrics_page(addr).await;
        names.iter().all(|name| page.contains(name))
    })
    .await;
    metrics_page(addr).await
}

/// What `queries` need that the pages at `addrs` do not show.
async fn unserved(queries: &[Query], addrs: &[&String]) -> Vec<String> {
    let mut pages = Vec::new();
    for addr in addrs {
        pages.push(metrics_page(addr).await);
    }
    let pages: Vec<&str> = pages.iter().map(String::as_str).collect();
    queries
        .iter()
        .flat_map(|query| missing_on_pages(query, &pages))
        .collect()
}

/// `promtool check metrics` on `page`: `None` when it passes, its complaints when not.
fn promtool_check(page: &str) -> Option<String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(page.as_bytes())
        .expect("write the page to promtool");
    let out = child.wait_with_output().expect("wait for promtool");
    if out.status.success() {
        return None;
    }
    Some(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_servers_metrics_pass_promtool_check_metrics() {
    if !require_tool("promtool", "prometheus", "the metrics lint test") {
        return;
    }
    let webhook_addr = format!("127.0.0.1:{}", free_port());
    let s = Scenario::start(SandboxSetup {
        script: vec![
            "+919000000001=fail:1",
            "+919000000003=429:1",
            "+919000000002=400",
        ],
        webhook_url: Some(format!("http://{webhook_addr}/webhooks/interakt")),
        webhook_secret: Some(SECRET),
        // Sends that take a while, so the jobs behind them wait for the worker's two slots.
        latency: Duration::from_millis(50),
        ..SandboxSetup::default()
    })
    .await;
    let redis_url = s.redis.url();
    let namespace = herald_tests::scenario::NAMESPACE;

    let api_addr = format!("127.0.0.1:{}", free_port());
    let mut api = Command::new(cargo_bin("herald-producer"));
    api.args(["serve", "--listen", &api_addr])
        .env("REDIS_URL", &redis_url)
        .env("HERALD_NAMESPACE", namespace)
        .env("HERALD_API_TOKENS", TOKEN);
    let _api = Server::spawn("herald-producer serve", api);

    // The receiver reaches Redis through a proxy, to lose it for a moment at the end.
    let proxy = TcpProxy::for_redis_port(s.redis.port()).await;
    let mut webhook = Command::new(cargo_bin("herald-webhook"));
    webhook
        .args(["--listen", &webhook_addr, "--consumer", "metrics-webhook"])
        .env("REDIS_URL", proxy.redis_url())
        .env("HERALD_NAMESPACE", namespace)
        .env("INTERAKT_WEBHOOK_SECRET", SECRET);
    let _webhook = Server::spawn("herald-webhook", webhook);

    let worker_addr = format!("127.0.0.1:{}", free_port());
    let _worker = s.worker(
        "metrics-worker",
        &[
            "--rate",
            "100/1s",
            "--backoff-base",
            "50ms",
            "--concurrency",
            "2",
            "--http-listen",
            &worker_addr,
        ],
    );
    wait_ready("the API to be ready", &api_addr).await;
    wait_ready("the webhook receiver to be ready", &webhook_addr).await;
    wait_ready("the worker to be ready", &worker_addr).await;

    // Work for each server: jobs through the API (one per scripted answer, and one that
    // simply succeeds), a webhook POST without a signature (refused, counted).
    let auth = format!("Bearer {TOKEN}");
    for phone in ["+919876543210", FLAKY, LIMITED, REFUSED] {
        let body = format!(r#"{{"phone":"{phone}","code":"123456","valid_for":"10m"}}"#);
        let answer = http_request(
            "POST",
            &format!("http://{api_addr}/v1/jobs/otp"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            &body,
        )
        .await;
        assert!(
            matches!(answer, Some((202, _))),
            "enqueue for {phone}: {answer:?}"
        );
    }
    // A burst of OTPs and bookings in one batch: more than the worker's two slots, so jobs
    // wait in its hand for one (slot saturation).
    let burst: Vec<String> = (0..4)
        .map(|i| format!(r#"{{"kind":"otp","phone":"+9198765000{i:02}","code":"4242","valid_for":"10m"}}"#))
        .chain((0..4).map(|i| {
            format!(
                r#"{{"kind":"booking","phone":"+9198765001{i:02}","booking_id":"B{i}","service":"Haircut","date":"2030-11-24","time":"10:30"}}"#
            )
        }))
        .collect();
    let answer = http_request(
        "POST",
        &format!("http://{api_addr}/v1/jobs/batch"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &format!("[{}]", burst.join(",")),
    )
    .await;
    assert!(matches!(answer, Some((202, _))), "the batch: {answer:?}");
    let refused = http_request(
        "POST",
        &format!("http://{webhook_addr}/webhooks/interakt"),
        &[("Content-Type", "application/json")],
        "{}",
    )
    .await;
    assert!(matches!(refused, Some((401, _))), "{refused:?}");

    let pages = [
        (
            "herald-worker run --http-listen",
            wait_for_metrics(
                "the worker",
                &worker_addr,
                &[
                    "herald_jobs_sent_total",
                    "herald_jobs_retried_total",
                    "herald_jobs_rate_limited_total",
                    "herald_jobs_dead_total",
                    "herald_send_duration_seconds",
                    "herald_queue_depth",
                ],
            )
            .await,
        ),
        (
            "herald-webhook",
            wait_for_metrics(
                "the webhook receiver",
                &webhook_addr,
                &[
                    "herald_webhook_events_total",
                    "herald_webhook_processed_total",
                    "herald_webhook_requests_total",
                    "herald_webhook_answer_duration_seconds",
                ],
            )
            .await,
        ),
        (
            "herald-producer serve",
            wait_for_metrics(
                "the API",
                &api_addr,
                &[
                    "herald_api_jobs_enqueued_total",
                    "herald_api_requests_total",
                    "herald_api_request_duration_seconds",
                ],
            )
            .await,
        ),
    ];
    // The receiver loses Redis: its processor's calls fail, an episode starts and is counted.
    proxy.refuse();
    wait_for_metrics(
        "the webhook receiver",
        &webhook_addr,
        &["herald_redis_errors_total"],
    )
    .await;
    proxy.resume();

    // Every query of the alerts and the dashboard, served by the pages (the heartbeat's
    // gauges appear within a few seconds).
    let queries = all_queries();
    let addrs = [&worker_addr, &webhook_addr, &api_addr];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let problems = loop {
        let problems = unserved(&queries, &addrs).await;
        if problems.is_empty() || tokio::time::Instant::now() > deadline {
            break problems;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        problems.is_empty(),
        "what the alert rules and the dashboard query, missing from the servers' /metrics pages:\n{}",
        problems.join("\n")
    );

    let failures: Vec<String> = pages
        .iter()
        .filter_map(|(server, page)| {
            promtool_check(page)
                .map(|problems| format!("{server}: promtool check metrics:\n{problems}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The value of the first sample of `name` on `page` carrying every `labels` pair.
fn sample_value(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(page, name)
        .into_iter()
        .find(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

/// Waits until `check` holds for the pages at `addrs` (each page's value of `name` with
/// `labels`, `None` where absent).
async fn wait_for_values<F>(
    what: &str,
    addrs: &[&str],
    name: &str,
    labels: &[(&str, &str)],
    check: F,
) where
    F: Fn(&[Option<f64>]) -> bool,
{
    wait_until(what, Duration::from_secs(30), || async {
        let mut values = Vec::new();
        for addr in addrs {
            values.push(sample_value(&metrics_page(addr).await, name, labels));
        }
        check(&values)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_exports_the_budget_plan_replicas_backlog_age_and_otp_wait() {
    // One OTP phone answered after 8 s: it stays on the lane, being sent, that long (a minute
    // window: a 1 s one would lower the request timeout to 750 ms to fit it).
    let mut s = Scenario::start(SandboxSetup {
        script: vec!["+919000000005=slow:8s"],
        ..SandboxSetup::default()
    })
    .await;
    let a = format!("127.0.0.1:{}", free_port());
    let _a = s.worker("alerts-a", &["--rate", "420/1m", "--http-listen", &a]);
    wait_ready("replica a to be ready", &a).await;

    // Before any job: the plan, one live replica, empty lanes, the 429 and dead-letter
    // counters at zero (so an alert's increase() sees the first one).
    let one = [a.as_str()];
    let is = |want: f64| move |values: &[Option<f64>]| values.iter().all(|v| *v == Some(want));
    wait_for_values(
        "the plan, 420",
        &one,
        "herald_budget_configured",
        &[],
        is(420.0),
    )
    .await;
    wait_for_values("one replica", &one, "herald_worker_replicas", &[], is(1.0)).await;
    for lane in ["otp", "booking"] {
        let lane = [("lane", lane)];
        wait_for_values(
            "an empty lane's age, 0",
            &one,
            "herald_queue_oldest_age_seconds",
            &lane,
            is(0.0),
        )
        .await;
        wait_for_values(
            "no 429 yet, 0",
            &one,
            "herald_jobs_rate_limited_total",
            &lane,
            is(0.0),
        )
        .await;
        let expired = [lane[0], ("reason", "expired")];
        wait_for_values(
            "no dead letter yet, 0",
            &one,
            "herald_jobs_dead_total",
            &expired,
            is(0.0),
        )
        .await;
    }

    // A second replica: both see two.
    let b = format!("127.0.0.1:{}", free_port());
    let _b = s.worker("alerts-b", &["--rate", "420/1m", "--http-listen", &b]);
    wait_ready("replica b to be ready", &b).await;
    let both = [a.as_str(), b.as_str()];
    wait_for_values(
        "two replicas, on both",
        &both,
        "herald_worker_replicas",
        &[],
        is(2.0),
    )
    .await;

    // Two OTPs go out at once, one waits 8 s at Interakt: while it does, the OTP lane's
    // oldest job ages (every replica reads it from Redis); once sent, the lane is empty.
    s.enqueue(&[
        otp_job("+919000000006"),
        otp_job("+919000000007"),
        otp_job("+919000000005"),
    ])
    .await;
    let otp = [("lane", "otp")];
    wait_for_values(
        "the slow OTP's age, 2 s or more",
        &both,
        "herald_queue_oldest_age_seconds",
        &otp,
        |values| values.iter().any(|v| v.is_some_and(|age| age >= 2.0)),
    )
    .await;
    let sum = |values: &[Option<f64>]| values.iter().map(|v| v.unwrap_or(0.0)).sum::<f64>();
    wait_for_values(
        "three OTP waits recorded",
        &both,
        "herald_otp_wait_seconds_count",
        &[],
        |values| sum(values) == 3.0,
    )
    .await;
    wait_for_values(
        "the slow OTP's wait, 8 s or more, in the sum",
        &both,
        "herald_otp_wait_seconds_sum",
        &[],
        |values| sum(values) >= 8.0,
    )
    .await;
    wait_for_values(
        "the OTP lane empty again, age 0",
        &both,
        "herald_queue_oldest_age_seconds",
        &otp,
        is(0.0),
    )
    .await;
}

fn otp_job(phone: &str) -> herald_shared::Job {
    herald_tests::scenario::otp(phone, Duration::from_secs(600))
}
