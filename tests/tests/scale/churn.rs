//! Replica churn: 1 -> 4 -> 1 replicas while a backlog drains. Scaling must never break the
//! shared budget (no window sees more than N requests, Interakt never answers 429) nor lose
//! or double a job (a SIGTERM hands the replica's jobs back to the lane at once).
//!
//! Along the way it samples what KEDA's redis-streams scaler reads with `lagCount`: the
//! consumer group's lag (`XINFO GROUPS`), which must equal the jobs waiting on the lane
//! whenever Redis can tell it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use herald_shared::Lane;
use herald_store::calls::inspect::{LaneSnapshot, lane_snapshot};
use herald_store::keys::WORKER_GROUP;
use herald_tests::{WorkerProcess, wait_until};
use redis::AsyncCommands;
use redis::streams::StreamPendingReply;

use herald_tests::scenario::{SandboxSetup, Scenario};

/// The plan: N requests in any window of W, for the sandbox and the workers alike.
const RATE: &str = "60/3s";
const N: u64 = 60;
const TOTAL: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_1_to_4_to_1_replicas_keeps_the_budget_and_loses_or_doubles_nothing() {
    let started = Instant::now();
    let mut s = Scenario::start_exclusive(SandboxSetup {
        rate: Some(RATE),
        ..Default::default()
    })
    .await;
    s.enqueue_bookings(0..TOTAL).await;
    let args = [
        "--rate",
        RATE,
        "--concurrency",
        "8",
        "--shutdown-grace",
        "10s",
    ];
    let lag = LagSampler::start(&s).await;

    // One replica.
    let mut replicas = vec![s.worker("churn-0", &args)];
    wait_until(
        "the first replica sends",
        Duration::from_secs(30),
        || async { s.accepted().len() >= 30 },
    )
    .await;

    // Out to four: each new replica joins the group and sends (a replica the budget limits
    // reads each job once its token is granted, so it holds jobs only while sending them).
    for i in 1..4 {
        replicas.push(s.worker(&format!("churn-{i}"), &args));
    }
    let names: BTreeSet<String> = replicas.iter().map(|w| w.consumer.clone()).collect();
    wait_until(
        "all four replicas sending",
        Duration::from_secs(30),
        || async {
            let senders: BTreeSet<String> = s
                .status()
                .await
                .consumers
                .into_iter()
                .filter(|c| c.sent > 0)
                .map(|c| c.name)
                .collect();
            senders == names
        },
    )
    .await;
    // Four replicas share the budget for a few windows.
    wait_until("half the backlog sent", Duration::from_secs(30), || async {
        s.accepted().len() >= TOTAL / 2
    })
    .await;

    // In to one: SIGTERM three of them, the first replica among them, while they hold jobs.
    let mut stopping: Vec<WorkerProcess> = replicas.drain(..3).collect();
    let sent_at_scale_in = s.accepted().len();
    for w in &stopping {
        w.signal("TERM");
    }
    for w in &mut stopping {
        let status = w
            .wait_exit(Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("{} did not exit on SIGTERM\n{}", w.consumer, w.log()));
        assert!(
            status.success(),
            "{} exited with {status:?}\n{}",
            w.consumer,
            w.log()
        );
    }
    // Handed back at once, not left pending for another replica's --claim-idle (60 s, far
    // beyond this test's deadline).
    let held = holders(&s).await;
    for w in &stopping {
        assert!(
            !held.contains_key(&w.consumer),
            "{} stopped holding {:?} jobs",
            w.consumer,
            held.get(&w.consumer)
        );
    }
    assert!(
        sent_at_scale_in < TOTAL,
        "the scale-in must happen mid-run (sent {sent_at_scale_in} of {TOTAL})"
    );

    // The last replica finishes the backlog.
    s.wait_drained(Duration::from_secs(60)).await;
    let lag = lag.stop().await;
    let mut last = replicas.pop().expect("one replica left");
    last.signal("TERM");
    let status = last
        .wait_exit(Duration::from_secs(20))
        .await
        .expect("exits");
    assert!(status.success(), "{status:?}\n{}", last.log());

    let stats = s.sandbox.stats();
    let accepted = s.accepted();
    let phones = s.accepted_phones();
    let duplicates = accepted.len() - phones.len();
    eprintln!(
        "churn: {TOTAL} bookings, 1 -> 4 -> 1 replicas (scale-in after {sent_at_scale_in} sent) \
         in {:.1} s; max_in_window {} of {N} per {} ms; 429s {}; duplicates {duplicates}; \
         lag samples {} (unknown {}, at most {} in a row; equal to the waiting jobs {})",
        started.elapsed().as_secs_f64(),
        stats.max_in_window,
        stats.window_ms,
        stats.count(429),
        lag.samples,
        lag.unknown,
        lag.longest_unknown_run,
        lag.matched,
    );
    assert_eq!(
        stats.count(429),
        0,
        "Interakt must never answer 429: {stats:?}"
    );
    assert!(
        stats.max_in_window <= N,
        "{} requests within one window; the budget is {N}",
        stats.max_in_window
    );
    assert_eq!(phones.len(), TOTAL, "every booking accepted");
    assert_eq!(duplicates, 0, "no booking sent twice");
    let st = s.status().await;
    assert_eq!(
        (
            st.total.ready,
            st.total.pending,
            st.total.delayed,
            st.total.dead
        ),
        (0, 0, 0, 0),
        "nothing left anywhere: {st:?}"
    );
    assert_eq!(st.total.sent, TOTAL as u64, "every send recorded once");
    assert!(lag.samples > 0, "the lag was never sampled");
    assert!(
        lag.mismatches.is_empty(),
        "XINFO GROUPS lag differed from the jobs waiting (lag, waiting): {:?}",
        lag.mismatches
    );
}

/// Consumers of the booking lane holding delivered, unsettled jobs, with how many.
async fn holders(s: &Scenario) -> std::collections::BTreeMap<String, usize> {
    let mut conn = s.conn.clone();
    let reply: StreamPendingReply = conn
        .xpending(s.keys.lane(Lane::Booking), WORKER_GROUP)
        .await
        .expect("XPENDING");
    match reply {
        StreamPendingReply::Data(data) => data
            .consumers
            .into_iter()
            .filter(|c| c.pending > 0)
            .map(|c| (c.name, c.pending))
            .collect(),
        _ => Default::default(),
    }
}

/// One atomic snapshot of the booking lane: entries, pending entries and the group's lag
/// (-1 when Redis reports none). Waiting jobs = entries - pending, as `herald-worker status`
/// counts them, since settled entries are deleted.

#[derive(Debug, Default)]
struct LagStats {
    samples: usize,
    unknown: usize,
    /// The most consecutive samples (50 ms apart) with the lag unknown.
    longest_unknown_run: usize,
    matched: usize,
    mismatches: Vec<(i64, i64)>,
}

/// Samples the booking lane's lag every 50 ms until stopped.
struct LagSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<LagStats>,
}

impl LagSampler {
    async fn start(s: &Scenario) -> LagSampler {
        let mut conn = s.conn.clone();
        let keys = s.keys.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut stats = LagStats::default();
            let mut run = 0;
            while !stopped.load(Ordering::Relaxed) {
                let reply: redis::Value = lane_snapshot(&keys, Lane::Booking)
                    .invoke(&mut conn)
                    .await
                    .expect("lane snapshot");
                let snap = LaneSnapshot::decode(&reply).expect("a lane snapshot");
                let (len, lag) = (snap.length as i64, snap.lag.map_or(-1, |l| l as i64));
                // Before the first worker creates the group there is nothing to compare.
                if let Some(pending) = snap.pending.map(|p| p as i64) {
                    stats.samples += 1;
                    let waiting = len - pending;
                    run = if lag < 0 { run + 1 } else { 0 };
                    stats.longest_unknown_run = stats.longest_unknown_run.max(run);
                    if lag < 0 {
                        stats.unknown += 1;
                    } else if lag == waiting {
                        stats.matched += 1;
                    } else {
                        stats.mismatches.push((lag, waiting));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            stats
        });
        LagSampler { stop, task }
    }

    async fn stop(self) -> LagStats {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("lag sampler")
    }
}
