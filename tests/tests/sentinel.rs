//! Redis Sentinel: one primary, one replica and three `redis-server --sentinel` processes on
//! loopback. OTPs are enqueued one after another, alternately by the producer CLI and the
//! producer API, with `--min-replicas 1` (each retried with its idempotency key until
//! acknowledged). The worker starts once the first KILL_AT are in, and the primary is
//! SIGKILLed while it is sending that backlog and enqueues go on; the Sentinels promote the replica, the old primary comes back as its replica,
//! and the worker and the API, never restarted, carry on: every acknowledged OTP is sent
//! exactly once. The run prints how long enqueues and sends paused.
//!
//! A second test runs the Sentinels and the data nodes with TLS only and passwords on both,
//! and checks that the wrong CA or a missing Sentinel password is a clear one-line error.

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use herald_sandbox::SandboxConfig;
use herald_tests::redis_sentinel::{DATA_PASSWORD, SENTINEL_PASSWORD};
use herald_tests::scenario::http_request;
use herald_tests::{
    ApiProcess, RedisEnv, RedisSentinel, SentinelOptions, TEST_API_KEY, TestCerts, WorkerProcess,
    cargo_bin, wait_until,
};
use serde_json::json;
use time::OffsetDateTime;

const NAMESPACE: &str = "sentinel";
const TOKEN: &str = "sentinel-api-token";
const JOBS: usize = 60;
const KILL_AT: usize = 24;
/// Slow enough that the worker still has a backlog when the primary dies and after the
/// promotion, so its own pause shows apart from the enqueues'.
const WORKER_RATE: &str = "4/1s";

fn phone(i: usize) -> String {
    format!("+9198{i:08}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_enqueue_survives_a_failover_and_is_sent_once() {
    let run = failover_run("1").await;
    let wanted: BTreeSet<String> = (0..JOBS).map(phone).collect();
    assert_eq!(run.sent, wanted, "every acknowledged OTP sent");
    assert_eq!(run.sends, JOBS, "each exactly once");
    assert!(
        run.sends_resumed_after < Duration::from_secs(60),
        "the worker resumed within a minute of the SIGKILL"
    );
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

/// What a failover run ended with.
struct Run {
    /// The phones the sandbox accepted.
    sent: BTreeSet<String>,
    sends: usize,
    /// From the SIGKILL to the first send after the pause.
    sends_resumed_after: Duration,
}

/// Enqueues JOBS OTPs (even ones by the CLI, odd ones by the API) with `--min-replicas
/// MIN_REPLICAS`; after KILL_AT starts the worker, and SIGKILLs the primary once it has sent
/// two; restarts the old primary (it comes back as the new primary's replica), and waits for
/// the worker (never restarted) to send what it can.
async fn failover_run(min_replicas: &str) -> Run {
    let mut setup = RedisSentinel::start(SentinelOptions::default()).await;
    let env = setup
        .env(None, None)
        .with("HERALD_MIN_REPLICAS", min_replicas);
    let sandbox = herald_sandbox::start(
        SandboxConfig::new(TEST_API_KEY),
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let api = ApiProcess::start_in(&env, NAMESPACE, TOKEN, &[]).await;
    let mut worker = None;

    let mut killed_at = None;
    let mut restarted = false;
    let mut failed_attempts = 0;
    let mut first_ack_after_kill = None;
    for i in 0..JOBS {
        if i == KILL_AT {
            // REDIS_URL points nowhere: only the Sentinels lead to Redis.
            worker = Some(WorkerProcess::spawn_in(
                &env,
                NAMESPACE,
                &sandbox.base_url(),
                "sentinel-worker",
                &["--rate", WORKER_RATE],
            ));
            wait_until("the worker sending", Duration::from_secs(30), || {
                std::future::ready(sandbox.stats().accepted >= 2)
            })
            .await;
            setup.primary.kill();
            killed_at = Some((Instant::now(), OffsetDateTime::now_utc()));
        }
        let started = Instant::now();
        loop {
            let acknowledged = if i % 2 == 0 {
                enqueue_cli(&env, i).status.success()
            } else {
                enqueue_api(&api, i).await
            };
            if acknowledged {
                if killed_at.is_some() && first_ack_after_kill.is_none() {
                    first_ack_after_kill = Some(Instant::now());
                }
                break;
            }
            failed_attempts += 1;
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "job {i} never acknowledged: {:?}\napi log:\n{}",
                enqueue_cli(&env, i),
                api.log()
            );
            // The promoted replica has no replica of its own until the old primary returns
            // (the Sentinels make it a replica of the new one).
            if !restarted && killed_at.is_some_and(|(k, _)| k.elapsed() > Duration::from_secs(4)) {
                setup.primary.start_again();
                restarted = true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let (killed, killed_wall) = killed_at.expect("the primary was killed");
    let enqueue_pause = first_ack_after_kill.unwrap() - killed;
    let promoted = setup.primary_port();
    assert_eq!(
        promoted,
        Some(setup.replica.port()),
        "the replica was promoted"
    );
    if !restarted {
        setup.primary.start_again();
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
    let mut worker = worker.expect("the worker started");
    assert!(
        worker.try_exit().is_none(),
        "the worker was never restarted:\n{}",
        worker.log()
    );
    let messages = sandbox.messages();
    let times: Vec<OffsetDateTime> = messages.iter().map(|m| m.received_at).collect();
    let pause = send_pause(&times, killed_wall);
    let backlog = JOBS.min(KILL_AT) - times.iter().filter(|t| **t < killed_wall).count();
    eprintln!(
        "sentinel: --min-replicas {min_replicas}: enqueues (CLI and API) paused {enqueue_pause:.1?} after the SIGKILL ({failed_attempts} failed attempts, retried with their keys); \
         the worker, with {backlog} OTPs still to send at the kill, sent its last one before the pause {} and resumed {:.1?} after it (promotion: {promoted:?}; old primary restarted: {restarted})",
        if pause.stopped.is_zero() {
            "before the SIGKILL".to_string()
        } else {
            format!("{:.1?} after the SIGKILL", pause.stopped)
        },
        pause.resumed
    );
    Run {
        sent: messages.iter().map(|m| m.e164()).collect(),
        sends: messages.len(),
        sends_resumed_after: pause.resumed,
    }
}

/// When sends stopped and resumed around the SIGKILL.
struct SendPause {
    /// From the SIGKILL to the last send before the pause (sends already under way end
    /// just after it); zero when that send came before the SIGKILL.
    stopped: Duration,
    /// From the SIGKILL to the first send after the pause.
    resumed: Duration,
}

/// The failover's pause in sends, on the sandbox's clock of accepted sends: the first gap of
/// more than [`PAUSE`] between consecutive sends from the last one before `killed` on. With
/// a backlog at 4 a second, sends are 250 ms apart until Redis goes away.
fn send_pause(times: &[OffsetDateTime], killed: OffsetDateTime) -> SendPause {
    const PAUSE: Duration = Duration::from_secs(1);
    let mut times = times.to_vec();
    times.sort();
    let from = times.iter().rposition(|t| *t < killed).unwrap_or(0);
    let after_kill = |t: OffsetDateTime| Duration::try_from(t - killed).unwrap_or(Duration::ZERO);
    let gap = times[from..]
        .windows(2)
        .find(|pair| pair[1] - pair[0] > PAUSE)
        .map(|pair| (pair[0], pair[1]))
        .unwrap_or((killed, killed));
    eprintln!(
        "sentinel: sends after the SIGKILL at {:?}",
        times[from..]
            .iter()
            .map(|t| format!("{:.1?}", after_kill(*t)))
            .collect::<Vec<_>>()
    );
    SendPause {
        stopped: after_kill(gap.0),
        resumed: after_kill(gap.1),
    }
}

fn enqueue_cli(env: &RedisEnv, i: usize) -> Output {
    let mut command = Command::new(cargo_bin("herald-producer"));
    env.apply(&mut command);
    command
        .args([
            "otp",
            "--phone",
            &phone(i),
            "--code",
            "123456",
            "--idempotency-key",
            &format!("otp:{i}"),
        ])
        .env("HERALD_NAMESPACE", NAMESPACE)
        .output()
        .unwrap()
}

/// One attempt through the API: acknowledged when it answered 202 (200 for a duplicate).
async fn enqueue_api(api: &ApiProcess, i: usize) -> bool {
    let body = json!({"phone": phone(i), "code": "123456", "idempotency_key": format!("otp:{i}")});
    let answer = http_request(
        "POST",
        &format!("{}/v1/jobs/otp", api.base_url()),
        &[
            ("Authorization", &format!("Bearer {TOKEN}")),
            ("Content-Type", "application/json"),
        ],
        &body.to_string(),
    )
    .await;
    matches!(answer, Some((200 | 202, _)))
}

/// TLS only on every port (client certificates required) and passwords on the data nodes
/// and the Sentinels: the producer finds the primary through `rediss://user:password@`
/// Sentinels; the wrong CA names REDIS_CA_CERT, a wrong Sentinel password says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_sentinels_with_passwords_and_clear_errors() {
    let certs = TestCerts::generate();
    let setup = RedisSentinel::start(SentinelOptions::secured(&certs)).await;
    let sentinel_user = Some(("default", SENTINEL_PASSWORD));
    let data_user = Some(("default", DATA_PASSWORD));
    let env = setup.env(sentinel_user, data_user);
    let run = |env: &RedisEnv, args: &[&str]| {
        let mut command = Command::new(cargo_bin("herald-producer"));
        env.apply(&mut command);
        command
            .args(args)
            .env("HERALD_NAMESPACE", NAMESPACE)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let otp = ["otp", "--phone", "+919812345670", "--code", "123456"];
    let out = run(&env.clone().with("HERALD_MIN_REPLICAS", "1"), &otp);
    assert!(out.status.success(), "{out:?}");
    let lane = herald_store::Keys::new(NAMESPACE)
        .unwrap()
        .lane(herald_shared::Lane::Otp);
    assert_eq!(setup.data_cli(&setup.replica, &["XLEN", &lane]), "1");

    let stderr = |out: &Output| String::from_utf8_lossy(&out.stderr).trim().to_string();
    // A CA that did not sign the Sentinels' certificates.
    let wrong_ca = env
        .clone()
        .with("REDIS_CA_CERT", certs.other_ca().display().to_string());
    let out = run(&wrong_ca, &otp);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = stderr(&out);
    assert!(
        text.contains("REDIS_CA_CERT (--redis-ca-cert)") && text.contains("does not verify"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
    // A wrong password toward the Sentinels: refused, and the password is never printed.
    let wrong = setup.env(Some(("default", "not-the-password")), data_user);
    let out = run(&wrong, &otp);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = stderr(&out);
    assert!(
        text.contains("rediss://***@127.0.0.1") && !text.contains("not-the-password"),
        "{text}"
    );
    // No password toward the primary.
    let out = run(&setup.env(sentinel_user, None), &otp);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        !stderr(&out).contains("sentinel-password"),
        "{}",
        stderr(&out)
    );
    // Certificate files with plain-text Sentinel URLs are refused, never ignored.
    let plain = env.clone().with(
        "REDIS_SENTINEL_NODES",
        setup
            .nodes_env(sentinel_user)
            .replace("rediss://", "redis://"),
    );
    let out = run(&plain, &otp);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stderr(&out)
            .starts_with("herald-producer: REDIS_CA_CERT (--redis-ca-cert): is set, but redis://"),
        "{}",
        stderr(&out)
    );
}
