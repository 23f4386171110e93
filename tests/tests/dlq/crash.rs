//! A replay killed with -9 at any point leaves every job either still dead or back on its
//! lane: never both, never neither. Running it again finishes the job.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use herald_shared::Lane;
use herald_store::dead_letter::DeadLetter;
use herald_tests::scenario::{SandboxSetup, Scenario, booking};
use herald_tests::wait_until;
use redis::AsyncCommands;

use crate::support::{EXHAUSTED, assert_exit, dead};

const JOBS: usize = 5_000;

/// Checks every job is in exactly one place; returns how many are back on the lane.
async fn assert_each_job_in_one_place(s: &mut Scenario, letters: &[DeadLetter]) -> usize {
    let all: BTreeSet<String> = letters.iter().map(|l| l.job_id.clone()).collect();
    let still_dead: BTreeSet<String> = s.dead_ids().await.into_iter().collect();
    let indexed: BTreeSet<String> = s
        .conn
        .zrange(s.keys.dead_index(Lane::Booking), 0, -1)
        .await
        .unwrap();
    let queued: Vec<String> = s
        .lane_jobs(Lane::Booking)
        .await
        .iter()
        .map(|j| j.id.to_string())
        .collect();
    let queued_set: BTreeSet<String> = queued.iter().cloned().collect();

    assert_eq!(queued.len(), queued_set.len(), "a job was enqueued twice");
    assert_eq!(indexed, still_dead, "the index and the hash disagree");
    let both: Vec<_> = still_dead.intersection(&queued_set).collect();
    assert!(both.is_empty(), "{} jobs both dead and queued", both.len());
    let neither: Vec<_> = all
        .iter()
        .filter(|id| !still_dead.contains(*id) && !queued_set.contains(*id))
        .collect();
    assert!(neither.is_empty(), "{} jobs lost", neither.len());
    queued.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_large_replay_leaves_every_job_in_exactly_one_place() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let letters: Vec<DeadLetter> = (0..JOBS)
        .map(|i| dead(booking(i), EXHAUSTED, 3, Duration::from_secs(60)))
        .collect();
    s.store_dead_letters(&letters).await;

    let mut replay = s
        .herald_pipeline()
        .args(["dlq", "replay", "--all"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the replay");
    let lane = s.keys.lane(Lane::Booking);
    let conn = s.conn.clone();
    wait_until("the replay under way", Duration::from_secs(30), || {
        let (lane, mut conn) = (lane.clone(), conn.clone());
        async move { conn.xlen::<_, usize>(&lane).await.unwrap() >= JOBS / 10 }
    })
    .await;
    replay.kill().expect("kill -9 the replay");
    replay.wait().unwrap();

    let moved = assert_each_job_in_one_place(&mut s, &letters).await;
    eprintln!("killed after {moved} of {JOBS} moves");
    assert!(
        moved < JOBS,
        "the replay finished before it was killed; make it bigger"
    );

    // The rest, on a second run.
    let out = s.run_worker_command(&["dlq", "replay", "--all"]);
    assert_exit(&out, 0);
    assert_eq!(assert_each_job_in_one_place(&mut s, &letters).await, JOBS);
}
