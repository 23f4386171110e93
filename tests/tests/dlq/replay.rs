//! `dlq replay`: every move is atomic and happens once; a fresh budget with the history
//! kept; expired OTPs only with --extend; dry runs change nothing; exit 0 when everything
//! selected was replayed, 1 when something was not (each reported).

use std::collections::BTreeSet;
use std::time::Duration;

use herald_shared::{Job, Lane};
use herald_store::dead_letter::DeadLetter;
use herald_tests::scenario::{SandboxSetup, Scenario, booking, otp};
use time::OffsetDateTime;

use crate::support::{EXHAUSTED, PERMANENT, assert_exit, dead, stdout, undecodable};

const MINUTE: Duration = Duration::from_secs(60);

async fn scenario_with(letters: &[DeadLetter]) -> Scenario {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    s.store_dead_letters(letters).await;
    s
}

/// Ids of every job waiting on either lane (repeats kept).
async fn queued_ids(s: &mut Scenario) -> Vec<String> {
    let mut ids = Vec::new();
    for lane in Lane::ALL {
        ids.extend(s.lane_jobs(lane).await.iter().map(|j| j.id.to_string()));
    }
    ids
}

fn sorted(ids: impl IntoIterator<Item = impl ToString>) -> Vec<String> {
    let mut ids: Vec<String> = ids.into_iter().map(|id| id.to_string()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_all_puts_every_job_back_with_a_fresh_budget_and_its_history() {
    let letters = [
        dead(booking(1), EXHAUSTED, 3, MINUTE),
        dead(booking(2), PERMANENT, 1, MINUTE),
        dead(otp("+919000000001", 10 * MINUTE), EXHAUSTED, 3, MINUTE),
    ];
    let mut s = scenario_with(&letters).await;

    let out = s.run_worker_command(&["dlq", "replay", "--all"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("replayed 3 of 3 selected dead letters (otp 1, booking 2)"),
        "{}",
        stdout(&out)
    );
    assert!(s.dead_ids().await.is_empty());
    assert_eq!(
        s.status().await.total.dead,
        0,
        "the indexes are emptied too"
    );

    let otps = s.lane_jobs(Lane::Otp).await;
    let bookings = s.lane_jobs(Lane::Booking).await;
    assert_eq!((otps.len(), bookings.len()), (1, 2));
    for job in otps.iter().chain(&bookings) {
        let letter = letters
            .iter()
            .find(|l| l.job_id == job.id.to_string())
            .unwrap();
        let before = &letter.job.as_ref().unwrap().attempts;
        assert_eq!(&job.attempts[..before.len()], &before[..], "history kept");
        let marker = job.attempts.last().unwrap();
        assert_eq!(marker.outcome, herald_shared::job::Outcome::Replayed);
        assert!(marker.error.as_deref().unwrap().contains(&letter.reason));
        assert!(job.attempts_since_replay().is_empty(), "a fresh budget");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_by_id_and_by_reason_take_only_those() {
    let letters: Vec<DeadLetter> = (0..4)
        .map(|i| {
            let reason = if i % 2 == 0 { EXHAUSTED } else { PERMANENT };
            dead(booking(i), reason, 1, MINUTE)
        })
        .collect();
    let mut s = scenario_with(&letters).await;
    let id = |i: usize| letters[i].job_id.clone();

    let out = s.run_worker_command(&["dlq", "replay", &id(0)]);
    assert_exit(&out, 0);
    assert_eq!(queued_ids(&mut s).await, [id(0)]);

    let out = s.run_worker_command(&["dlq", "replay", "--reason", "invalid TEMPLATE"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("replayed 2 of 2"), "{}", stdout(&out));
    assert_eq!(
        sorted(queued_ids(&mut s).await),
        sorted([id(0), id(1), id(3)])
    );
    assert_eq!(s.dead_ids().await, [id(2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_same_id_twice_enqueues_it_once() {
    let letters: Vec<DeadLetter> = (0..300)
        .map(|i| dead(booking(i), EXHAUSTED, 3, MINUTE))
        .collect();
    let mut s = scenario_with(&letters).await;
    let first = letters[0].job_id.clone();

    // Named twice in one command, then again: enqueued once, the second run reports it.
    let out = s.run_worker_command(&["dlq", "replay", &first, &first]);
    assert_exit(&out, 0);
    let out = s.run_worker_command(&["dlq", "replay", &first]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains(&format!("{first}: not found")),
        "{}",
        stdout(&out)
    );
    assert_eq!(queued_ids(&mut s).await, [first.as_str()]);

    // Two replays of everything at once: each job is enqueued by exactly one of them.
    let racers: Vec<_> = (0..2)
        .map(|_| {
            s.herald_pipeline()
                .args(["dlq", "replay", "--all"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("start a replay")
        })
        .collect();
    for mut racer in racers {
        assert!(racer.wait().unwrap().success());
    }
    let queued = queued_ids(&mut s).await;
    assert_eq!(queued.len(), letters.len(), "no job enqueued twice");
    assert_eq!(
        queued.iter().collect::<BTreeSet<_>>(),
        letters.iter().map(|l| &l.job_id).collect::<BTreeSet<_>>()
    );
    assert!(s.dead_ids().await.is_empty());
}

/// An OTP whose deadline passed a minute ago.
fn expired_otp() -> Job {
    let mut job = otp("+919000000001", 10 * MINUTE);
    job.created_at -= 11 * MINUTE;
    job.not_after = Some(OffsetDateTime::now_utc() - MINUTE);
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_otp_is_reported_and_replayed_only_with_extend() {
    let stale = dead(expired_otp(), "exhausted: 8 attempts failed", 8, MINUTE);
    let fine = dead(booking(1), EXHAUSTED, 3, MINUTE);
    let mut s = scenario_with(&[stale.clone(), fine.clone()]).await;

    let out = s.run_worker_command(&["dlq", "replay", "--all"]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("replayed 1 of 2"), "{text}");
    assert!(
        text.contains(&format!("{}: expired at", stale.job_id)) && text.contains("--extend"),
        "{text}"
    );
    assert_eq!(s.dead_ids().await, [stale.job_id.as_str()], "still dead");
    assert!(s.lane_jobs(Lane::Otp).await.is_empty());

    let before = OffsetDateTime::now_utc();
    let out = s.run_worker_command(&["dlq", "replay", "--all", "--extend", "10m"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("1 given a new deadline by --extend"),
        "{}",
        stdout(&out)
    );
    let replayed = s.lane_jobs(Lane::Otp).await;
    assert_eq!(replayed.len(), 1);
    let deadline = replayed[0].not_after.unwrap();
    assert!(
        deadline >= before + 10 * MINUTE && deadline <= OffsetDateTime::now_utc() + 10 * MINUTE,
        "a new deadline 10 minutes out: {deadline}"
    );
    assert!(s.dead_ids().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbounded_extend_exits_2_naming_the_flag_and_changes_nothing() {
    let stale = dead(expired_otp(), "exhausted: 8 attempts failed", 8, MINUTE);
    let mut s = scenario_with(std::slice::from_ref(&stale)).await;
    for extend in ["100000000y", "25h"] {
        let out = s.run_worker_command(&["dlq", "replay", "--all", "--extend", extend]);
        assert_exit(&out, 2);
        let err = crate::support::stderr(&out);
        assert!(
            err.contains("--extend") && err.contains("at most 24h") && !err.contains("panicked"),
            "{err}"
        );
    }
    assert_eq!(s.dead_ids().await, [stale.job_id.as_str()], "still dead");
    assert!(s.lane_jobs(Lane::Otp).await.is_empty());
    let out = s.run_worker_command(&["dlq", "replay", "--all", "--extend", "24h"]);
    assert_exit(&out, 0);
    assert_eq!(
        s.lane_jobs(Lane::Otp).await.len(),
        1,
        "24h is the most, allowed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_changes_nothing() {
    let letters = [
        dead(booking(1), EXHAUSTED, 3, MINUTE),
        dead(expired_otp(), EXHAUSTED, 3, MINUTE),
    ];
    let mut s = scenario_with(&letters).await;

    let out = s.run_worker_command(&["dlq", "replay", "--all", "--dry-run", "--extend", "5m"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("would replay 2 of 2"), "{text}");
    assert!(text.contains("dry run: nothing was changed"), "{text}");
    assert_eq!(
        sorted(s.dead_ids().await),
        sorted(letters.iter().map(|l| &l.job_id))
    );
    assert!(queued_ids(&mut s).await.is_empty());
    assert_eq!(s.status().await.total.dead, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_with_no_job_and_an_unknown_id_are_reported_exit_1() {
    let broken = undecodable("1700000000000-0");
    let fine = dead(booking(1), EXHAUSTED, 3, MINUTE);
    let mut s = scenario_with(&[broken.clone(), fine.clone()]).await;

    let out = s.run_worker_command(&["dlq", "replay", &broken.job_id, &fine.job_id, "nope"]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("replayed 1 of 3"), "{text}");
    assert!(
        text.contains(&format!("{}: no job to replay", broken.job_id)),
        "{text}"
    );
    assert!(text.contains("nope: not found"), "{text}");
    assert_eq!(queued_ids(&mut s).await, [fine.job_id.as_str()]);
    assert_eq!(s.dead_ids().await, [broken.job_id.as_str()]);
}

/// The script behind every move, run directly: it moves only the dead letter the caller
/// read. One dead-lettered again meanwhile (a longer history) is left for a fresh read, so
/// no attempt is lost; one already gone is not enqueued again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_script_moves_only_what_was_read_and_only_once() {
    let first_life = dead(booking(1), EXHAUSTED, 3, MINUTE);
    let mut s = scenario_with(std::slice::from_ref(&first_life)).await;
    let read = serde_json::to_string(&first_life).unwrap();
    // Dead-lettered again after the caller read it, with two more attempts.
    let mut second_life = first_life.clone();
    let job = second_life.job.as_mut().unwrap();
    job.attempts.extend(job.attempts[..2].to_vec());
    s.store_dead_letters(std::slice::from_ref(&second_life))
        .await;
    let stored = serde_json::to_string(&second_life).unwrap();

    let keys = s.keys.clone();
    let mut conn = s.conn.clone();
    let job = second_life.job.clone().unwrap();
    let replay = |json: String| {
        let (keys, mut conn, job) = (keys.clone(), conn.clone(), job.clone());
        let id = first_life.job_id.clone();
        async move {
            let call = herald_store::calls::dead_letters::replay(
                &keys,
                Lane::Booking,
                &id,
                &json,
                &job,
                60_000,
            );
            let reply: redis::Value = call.invoke(&mut conn).await.unwrap();
            match herald_store::calls::dead_letters::Replayed::decode(&reply).unwrap() {
                herald_store::calls::dead_letters::Replayed::Moved { .. } => 1,
                herald_store::calls::dead_letters::Replayed::NotDead => 0,
                herald_store::calls::dead_letters::Replayed::Changed => -1,
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(replay(read).await, -1, "changed since read: refused");
    assert!(queued_ids(&mut s).await.is_empty());
    assert_eq!(
        s.dead_letters().await[0]
            .job
            .as_ref()
            .unwrap()
            .attempts
            .len(),
        5
    );

    assert_eq!(replay(stored.clone()).await, 1, "moved");
    assert_eq!(replay(stored).await, 0, "gone: not enqueued twice");
    let len: usize = redis::AsyncCommands::xlen(&mut conn, s.keys.lane(Lane::Booking))
        .await
        .unwrap();
    assert_eq!(len, 1);
    assert!(s.dead_ids().await.is_empty());
}
