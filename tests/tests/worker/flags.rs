//! Flags that cannot hurt the fleet: every duration and count flag of `herald-worker run`
//! has a range, and a value outside it (zero, below the floor, a hundred years, 10^19 s) is
//! refused at start, before the worker touches Redis: exit 2, one line naming the variable
//! and the flag and saying the range. Given as a flag or as its variable, alike.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use herald_tests::scenario::{SandboxSetup, Scenario};
use herald_tests::{cargo_bin, wait_until};
use redis::AsyncCommands;

/// `herald-worker run ARGS` with `env` added, Redis on a port where nothing listens (the
/// checks come first): its exit code and stderr; `None` for the code when it was still
/// running (waiting for that Redis) after [`PATIENCE`], then killed.
fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(cargo_bin("herald-worker"));
    cmd.arg("run")
        .args(args)
        .env("INTERAKT_API_KEY", "test-key")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run herald-worker");
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("poll herald-worker") {
            break status.code();
        }
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .map(|mut e| e.read_to_string(&mut stderr));
    (code, stderr)
}

/// How long a refused start may take.
const PATIENCE: Duration = Duration::from_secs(5);

/// A hundred years, and 10^19 seconds: durations no clock can add to now.
const CENTURY: &str = "100years";
const HUGE_SECS: &str = "10000000000000000000s";

/// The variable, the flag, its bad values, and the range its error must state.
struct Case {
    var: &'static str,
    flag: &'static str,
    bad: &'static [&'static str],
    range: &'static str,
}

const CASES: &[Case] = &[
    Case {
        var: "HERALD_CONCURRENCY",
        flag: "--concurrency",
        bad: &["0", "1025", "10000000000000000000"],
        range: "it must be from 1 to 1024",
    },
    Case {
        var: "HERALD_MAX_ATTEMPTS",
        flag: "--max-attempts",
        bad: &["0", "101", "10000000000000000000"],
        range: "it must be from 1 to 100",
    },
    Case {
        var: "HERALD_MAX_DELIVERIES",
        flag: "--max-deliveries",
        bad: &["0", "101", "10000000000000000000"],
        range: "it must be from 1 to 100",
    },
    Case {
        var: "HERALD_MIN_REPLICAS",
        flag: "--min-replicas",
        bad: &["101", "4294967295"],
        range: "it must be from 0 to 100",
    },
    Case {
        var: "HERALD_BACKOFF_BASE",
        flag: "--backoff-base",
        bad: &["0s", "1ms", CENTURY, HUGE_SECS],
        range: "it must be from 10ms to 1h",
    },
    Case {
        var: "HERALD_BACKOFF_MAX",
        flag: "--backoff-max",
        bad: &["0s", "1ms", CENTURY, HUGE_SECS],
        range: "it must be from 10ms to 1day",
    },
    Case {
        var: "HERALD_CLAIM_IDLE",
        flag: "--claim-idle",
        bad: &["0s", "1s", CENTURY, HUGE_SECS],
        range: "it must be from 2s to 1day",
    },
    Case {
        var: "HERALD_SHUTDOWN_GRACE",
        flag: "--shutdown-grace",
        bad: &["0s", "500ms", CENTURY, HUGE_SECS],
        range: "it must be from 1s to 1h",
    },
    Case {
        var: "HERALD_REQUEST_TIMEOUT",
        flag: "--request-timeout",
        bad: &["0s", "500ms", CENTURY, HUGE_SECS],
        range: "it must be from 1s to 5m",
    },
    Case {
        var: "HERALD_MAX_COOLDOWN",
        flag: "--max-cooldown",
        bad: &["0s", "100ms", CENTURY, HUGE_SECS],
        range: "it must be from 1s to 1h",
    },
    Case {
        var: "HERALD_PROBE_INTERVAL",
        flag: "--probe-interval",
        bad: &["0s", "999ms", "2h", CENTURY, HUGE_SECS],
        range: "it must be from 1s to 1h",
    },
    Case {
        var: "HERALD_RATE_MARGIN",
        flag: "--rate-margin",
        // The default window is a minute (growth: 300/1m).
        bad: &["0s", "49ms", "1m", CENTURY, HUGE_SECS],
        range: "it must be at least 50ms and below the window of --rate (1m)",
    },
    Case {
        var: "INTERAKT_RATE_LIMIT",
        flag: "--rate",
        bad: &["10/500ms", "10/100years", "10/10000000000000000000s"],
        range: "it must be from 1s to 1day",
    },
    Case {
        var: "HERALD_OTP_RESERVE",
        flag: "--otp-reserve",
        bad: &["0", "300"],
        range: "it must be at least 1 and below the rate's 300 per window",
    },
    Case {
        var: "HERALD_BOOKING_SHARE",
        flag: "--booking-share",
        bad: &["0", "300"],
        range: "it must be at least 1 and below the rate's 300 per window",
    },
];

#[test]
fn every_duration_and_count_flag_out_of_its_range_exits_2_naming_it_and_the_range() {
    let mut failures = Vec::new();
    for case in CASES {
        let name = format!("{} ({})", case.var, case.flag);
        for bad in case.bad {
            let as_flag = run(&[case.flag, bad], &[]);
            let as_var = run(&[], &[(case.var, bad)]);
            for (how, (code, stderr)) in [("flag", as_flag), ("variable", as_var)] {
                let refused = code == Some(2)
                    && stderr.starts_with(&format!("herald-worker: {name}: "))
                    && stderr.contains(case.range)
                    && stderr.lines().count() == 1;
                if !refused {
                    failures.push(format!(
                        "{name} = {bad:?} as a {how}: exit {code:?}: {stderr}"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "not refused as they must be:\n{}",
        failures.join("\n")
    );
}

/// The livelock: with `--rate-margin 0s` every grant was stale by the time its
/// check answered, and every send asked again without end: in 6 s, 197 of 300 shared
/// tokens spent and no request sent, starving the fleet's other replicas too. Now the
/// worker refuses it at start, before it spends a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_margin_of_zero_is_refused_at_start_before_it_spends_a_shared_token() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    s.enqueue_bookings(0..20).await;
    let mut worker = s.worker("margin-zero", &["--rate-margin", "0s"]);
    let window = s.keys.rate_window();
    let mut conn = s.conn.clone();
    wait_until(
        "the worker exits or spends a shared token",
        Duration::from_secs(15),
        || {
            let exited = worker.try_exit().is_some();
            let (mut conn, window) = (conn.clone(), window.clone());
            async move { exited || conn.zcard::<_, usize>(&window).await.unwrap() > 0 }
        },
    )
    .await;
    let spent: usize = conn.zcard(&window).await.unwrap();
    let status = worker.wait_exit(Duration::from_secs(5)).await;
    let log = worker.log();
    assert!(
        status.is_some(),
        "still running with --rate-margin 0s: {spent} shared tokens spent, {} requests sent",
        s.accepted().len()
    );
    assert_eq!(status.unwrap().code(), Some(2), "{log}");
    assert!(
        log.contains("HERALD_RATE_MARGIN (--rate-margin): is 0s; it must be at least 50ms"),
        "{log}"
    );
    assert_eq!(spent, 0, "no shared token spent");
    assert!(s.accepted().is_empty());
}
