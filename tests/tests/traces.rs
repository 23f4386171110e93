//! Traces across the queue (docs/tracing.md), end to end against a real OTLP/HTTP receiver
//! ([`OtlpReceiver`], decoding the protobuf the processes export) with real processes: the
//! API (`herald-producer serve`), a worker replica, the sandbox and the webhook receiver.
//!
//! - a job's trace: the caller's `traceparent` is the parent of `create <lane>` (PRODUCER);
//!   `process <lane>` (CONSUMER) links to it, one per attempt, a retry an event; the HTTP
//!   call to Interakt is its CLIENT child with the status code; the webhook's `receive
//!   <lane>` links to the job's creation; the messaging attributes are there and no phone
//!   number or code is anywhere;
//! - a collector that stalls or is down never holds sending up; what cannot be exported is
//!   dropped and counted in `herald_trace_spans_dropped_total`;
//! - a malformed endpoint or variable stops each binary at start with exit 2, naming it.

use std::process::Command;
use std::time::{Duration, Instant};

use herald_tests::otlp::{Behaviour, OtlpReceiver, ReceivedSpan, SpanKind};
use herald_tests::scenario::{
    NAMESPACE, SandboxSetup, Scenario, free_port, http_request, http_status,
};
use herald_tests::{ApiProcess, RedisEnv, WorkerProcess, cargo_bin, wait_until};

const TOKEN: &str = "traces-test-token";
const SECRET: &str = "traces-test-webhook-secret";
/// The caller's trace, as its `traceparent` names it.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
/// Fails once with a 5xx, then is sent: its job is processed twice.
const FLAKY_PHONE: &str = "+919812300001";
const PHONE: &str = "+919812300002";
const CODE: &str = "918273";

/// The variables that turn tracing on towards `receiver`, exporting every 100 ms.
fn tracing_to(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.to_string()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_string()),
    ]
}

fn env_with(redis_url: &str, vars: &[(&'static str, String)]) -> RedisEnv {
    vars.iter().fold(RedisEnv::url(redis_url), |env, (k, v)| {
        env.with(k, v.clone())
    })
}

async fn wait_ready(what: &str, addr: &str) {
    wait_until(what, Duration::from_secs(30), || async {
        http_status(&format!("http://{addr}/readyz")).await == Some(200)
    })
    .await;
}

/// POSTs an OTP through the API, with `traceparent` when given; the job id.
async fn enqueue_otp(api: &ApiProcess, phone: &str, traceparent: Option<&str>) -> String {
    let auth = format!("Bearer {TOKEN}");
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    if let Some(traceparent) = traceparent {
        headers.push(("traceparent", traceparent));
    }
    let body = format!(r#"{{"phone":"{phone}","code":"{CODE}","valid_for":"10m"}}"#);
    let answer = http_request(
        "POST",
        &format!("{}/v1/jobs/otp", api.base_url()),
        &headers,
        &body,
    )
    .await;
    let Some((202, body)) = answer else {
        panic!("enqueue for {phone}: {answer:?}");
    };
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    body["job_id"].as_str().unwrap().to_string()
}

fn spans_named<'a>(spans: &'a [ReceivedSpan], name: &str, job: &str) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.name() == name && s.attr("messaging.message.id").as_deref() == Some(job))
        .collect()
}

fn assert_messaging(span: &ReceivedSpan, operation: &str, job: &str) {
    let attr = |key| span.attr(key);
    assert_eq!(
        attr("messaging.system").as_deref(),
        Some("herald"),
        "{span:?}"
    );
    assert_eq!(attr("messaging.destination.name").as_deref(), Some("otp"));
    assert_eq!(attr("messaging.message.id").as_deref(), Some(job));
    assert_eq!(attr("messaging.operation.type").as_deref(), Some(operation));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_trace_crosses_the_api_the_worker_and_the_webhook() {
    let receiver = OtlpReceiver::start(Behaviour::Accept).await;
    let webhook_addr = format!("127.0.0.1:{}", free_port());
    let s = Scenario::start(SandboxSetup {
        script: vec!["+919812300001=fail:1"],
        webhook_url: Some(format!("http://{webhook_addr}/webhooks/interakt")),
        webhook_secret: Some(SECRET),
        ..SandboxSetup::default()
    })
    .await;
    let redis_url = s.redis.url();
    let tracing = tracing_to(&receiver.endpoint());
    let api = ApiProcess::start_in(&env_with(&redis_url, &tracing), NAMESPACE, TOKEN, &[]).await;
    let mut webhook = Command::new(cargo_bin("herald-webhook"));
    webhook
        .args(["--listen", &webhook_addr])
        .env("INTERAKT_WEBHOOK_SECRET", SECRET)
        .envs(tracing.iter().map(|(k, v)| (k, v)));
    let _webhook = WorkerProcess::spawn_command(webhook, &redis_url, NAMESPACE, "traces-webhook");
    let worker_addr = format!("127.0.0.1:{}", free_port());
    let _worker = WorkerProcess::spawn_in(
        &env_with(&redis_url, &tracing),
        NAMESPACE,
        &s.sandbox.base_url(),
        "traces-worker",
        &["--backoff-base", "50ms", "--http-listen", &worker_addr],
    );
    wait_ready("the webhook receiver ready", &webhook_addr).await;
    wait_ready("the worker ready", &worker_addr).await;

    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let flaky = enqueue_otp(&api, FLAKY_PHONE, Some(&caller)).await;
    let plain = enqueue_otp(&api, PHONE, None).await;

    let complete = |spans: &[ReceivedSpan]| {
        [&flaky, &plain].iter().all(|job| {
            spans_named(spans, "create otp", job).len() == 1
                && !spans_named(spans, "receive otp", job).is_empty()
        }) && spans_named(spans, "process otp", &flaky).len() == 2
            && spans.iter().filter(|s| s.name() == "POST").count() >= 3
    };
    wait_until(
        "the spans of both jobs at the receiver",
        Duration::from_secs(60),
        || async { complete(&receiver.spans()) },
    )
    .await;
    let spans = receiver.spans();

    // The API's `create otp`: a child of the caller's span, in the caller's trace.
    let create = spans_named(&spans, "create otp", &flaky)[0];
    assert_eq!(create.kind(), SpanKind::Producer);
    assert_eq!(create.service, "herald-producer");
    assert_eq!(create.trace_id(), CALLER_TRACE);
    assert_eq!(create.parent_id(), CALLER_SPAN);
    assert_messaging(create, "create", &flaky);
    // Without a caller's context, a trace of its own.
    let plain_create = spans_named(&spans, "create otp", &plain)[0];
    assert_eq!(plain_create.parent_id(), "", "a root");
    assert_ne!(plain_create.trace_id(), CALLER_TRACE);

    // The worker's `process otp`, one per attempt, each linked to the creation; the first
    // attempt's 5xx is a retry event; each has its HTTP call as a CLIENT child.
    let mut processes = spans_named(&spans, "process otp", &flaky);
    processes.sort_by_key(|s| s.span.start_time_unix_nano);
    for process in &processes {
        assert_eq!(process.kind(), SpanKind::Consumer);
        assert_eq!(process.service, "herald-worker");
        assert_messaging(process, "process", &flaky);
        assert_eq!(
            process.links(),
            [(create.trace_id(), create.span_id())],
            "linked to its creation"
        );
        let calls: Vec<_> = spans
            .iter()
            .filter(|s| s.name() == "POST" && s.parent_id() == process.span_id())
            .collect();
        assert_eq!(calls.len(), 1, "one HTTP call per attempt: {calls:?}");
        assert_eq!(calls[0].kind(), SpanKind::Client);
        assert_eq!(calls[0].trace_id(), process.trace_id());
    }
    assert_eq!(processes[0].events(), ["retry"], "the 5xx: a retry");
    assert!(processes[1].events().is_empty());
    let status = |process: &ReceivedSpan| {
        spans
            .iter()
            .find(|s| s.name() == "POST" && s.parent_id() == process.span_id())
            .and_then(|s| s.attr("http.response.status_code"))
    };
    assert_ne!(status(processes[0]).as_deref(), Some("200"));
    assert_eq!(status(processes[1]).as_deref(), Some("200"));
    let resent = spans
        .iter()
        .find(|s| s.name() == "POST" && s.parent_id() == processes[1].span_id())
        .unwrap();
    assert_eq!(
        resent.attr("http.request.resend_count").as_deref(),
        Some("1")
    );

    // The webhook's `receive otp` for the delivery report, linked to the job's creation.
    for (job, created) in [(&flaky, create), (&plain, plain_create)] {
        for receive in spans_named(&spans, "receive otp", job) {
            assert_eq!(receive.kind(), SpanKind::Consumer);
            assert_eq!(receive.service, "herald-webhook");
            assert_messaging(receive, "receive", job);
            assert_eq!(receive.links(), [(created.trace_id(), created.span_id())]);
        }
    }

    // Never a phone number or a code, in any span of any process.
    let digits = |phone: &str| phone.trim_start_matches("+91").to_string();
    for span in &spans {
        for text in span.all_text() {
            for secret in [digits(FLAKY_PHONE), digits(PHONE), CODE.to_string()] {
                assert!(!text.contains(&secret), "{secret} in {text:?} of {span:?}");
            }
        }
    }
    let page = metrics_page(&worker_addr).await;
    assert_eq!(dropped(&page, "queue_full"), 0, "{page}");
}

/// The worker's `/metrics`, empty when it does not answer.
async fn metrics_page(addr: &str) -> String {
    match http_request("GET", &format!("http://{addr}/metrics"), &[], "").await {
        Some((200, page)) => page,
        _ => String::new(),
    }
}

/// `herald_trace_spans_dropped_total{reason="REASON"}` on `page`.
fn dropped(page: &str, reason: &str) -> u64 {
    let prefix = format!("herald_trace_spans_dropped_total{{reason=\"{reason}\"}} ");
    page.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {prefix:?} on the page:\n{page}")) as u64
}

/// Drains `jobs` bookings with tracing towards `endpoint` and a small export queue, then
/// waits for the worker's metrics to count spans dropped for `reason`.
async fn drain_and_count_dropped(endpoint: &str, jobs: usize, reason: &str) {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let worker_addr = format!("127.0.0.1:{}", free_port());
    let mut tracing = tracing_to(endpoint);
    tracing.push(("OTEL_BSP_MAX_QUEUE_SIZE", "8".into()));
    tracing.push(("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4".into()));
    tracing.push(("OTEL_EXPORTER_OTLP_TIMEOUT", "1000".into()));
    tracing.push(("OTEL_BSP_EXPORT_TIMEOUT", "2000".into()));
    let worker = WorkerProcess::spawn_in(
        &env_with(&s.redis.url(), &tracing),
        NAMESPACE,
        &s.sandbox.base_url(),
        "traces-trouble",
        &["--rate", "1000/1s", "--http-listen", &worker_addr],
    );
    wait_ready("the worker ready", &worker_addr).await;
    s.enqueue_bookings(0..jobs).await;
    let started = Instant::now();
    s.wait_drained(Duration::from_secs(120)).await;
    assert_eq!(s.sandbox.stats().accepted, jobs as u64);
    println!(
        "{jobs} jobs sent in {:.2} s with the collector at {endpoint} in trouble",
        started.elapsed().as_secs_f64()
    );
    let counted = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let page = metrics_page(&worker_addr).await;
            if !page.is_empty() && dropped(&page, reason) > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        counted.is_ok(),
        "no span counted as dropped for {reason}:\n{}\nthe worker's log:\n{}",
        metrics_page(&worker_addr).await,
        worker.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_collector_never_holds_sending_up_and_spans_that_do_not_fit_are_counted() {
    let receiver = OtlpReceiver::start(Behaviour::Stall).await;
    drain_and_count_dropped(&receiver.endpoint(), 300, "queue_full").await;
    assert!(receiver.requests() >= 1, "the worker did try to export");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_down_or_refusing_never_holds_sending_up_and_its_spans_are_counted() {
    // Nothing listens on this port.
    let down = format!("http://127.0.0.1:{}", free_port());
    drain_and_count_dropped(&down, 100, "export_failed").await;

    let refusing = OtlpReceiver::start(Behaviour::Refuse).await;
    drain_and_count_dropped(&refusing.endpoint(), 100, "export_failed").await;
    assert!(refusing.requests() >= 1);
}

/// Runs `command` (which must stop at once) with `var=value`; its stderr, once it exited 2.
async fn exits_2(what: &str, mut command: Command, var: &str, value: &str) -> String {
    command.env(var, value);
    let out = tokio::task::spawn_blocking(move || {
        command
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .output()
            .expect("run the binary")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what} with {var}={value}: {stderr}"
    );
    assert!(stderr.contains(var), "{what}: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_endpoint_or_variable_stops_each_binary_with_exit_2_naming_it() {
    // Nothing listens here: a binary that got past its configuration would fail otherwise.
    let redis_url = format!("redis://127.0.0.1:{}", free_port());
    let worker = || {
        let mut c = Command::new(cargo_bin("herald-worker"));
        c.args(["run", "--consumer", "traces-bad"])
            .env("REDIS_URL", &redis_url)
            .env("INTERAKT_API_KEY", "k")
            .env("INTERAKT_BASE_URL", "http://127.0.0.1:9");
        c
    };
    let webhook = || {
        let mut c = Command::new(cargo_bin("herald-webhook"));
        c.args(["--listen", "127.0.0.1:0", "--insecure-no-signature"])
            .env("REDIS_URL", &redis_url);
        c
    };
    let producer = || {
        let mut c = Command::new(cargo_bin("herald-producer"));
        c.args(["otp", "--phone", PHONE, "--code", CODE])
            .env("REDIS_URL", &redis_url);
        c
    };
    let endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT";
    let stderr = exits_2("herald-worker run", worker(), endpoint, "collector:4318").await;
    assert!(stderr.contains("http://"), "the fix: {stderr}");
    exits_2("herald-webhook", webhook(), endpoint, "ftp://collector").await;
    exits_2("herald-producer otp", producer(), endpoint, "http://").await;
    exits_2(
        "herald-worker run",
        worker(),
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "not a url",
    )
    .await;
    let mut ratio = worker();
    ratio.env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio");
    let stderr = exits_2("herald-worker run", ratio, "OTEL_TRACES_SAMPLER_ARG", "1%").await;
    assert!(stderr.contains("0.01"), "the fix: {stderr}");
    exits_2(
        "herald-webhook",
        webhook(),
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "grpc",
    )
    .await;
    exits_2(
        "herald-producer otp",
        producer(),
        "OTEL_BSP_MAX_QUEUE_SIZE",
        "0",
    )
    .await;
    // The code never appears in an error (it was on the command line).
    let stderr = exits_2(
        "herald-producer otp",
        producer(),
        "OTEL_TRACES_SAMPLER",
        "half",
    )
    .await;
    assert!(!stderr.contains(CODE), "{stderr}");
}
