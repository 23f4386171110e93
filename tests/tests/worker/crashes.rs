//! Guarantee 5: kill -9 of a replica loses nothing; its jobs are claimed by live replicas
//! after --claim-idle; a job recorded as sent is not sent again; a poison job is
//! dead-lettered.

use std::time::Duration;

use herald_store::keys::{JOB_FIELD, WORKER_GROUP};
use herald_tests::wait_until;
use redis::AsyncCommands;

use herald_tests::scenario::{SandboxSetup, Scenario, otp};

/// A short claim: the request timeout it must cover is 1 s, so the windows below are a
/// minute (a 1 s window would lower the timeout to 750 ms, below the slowest answers).
const CLAIM: [&str; 4] = ["--claim-idle", "2s", "--request-timeout", "1s"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_5_kill_9_loses_nothing() {
    let mut s = Scenario::start(SandboxSetup {
        latency: Duration::from_millis(200),
        ..Default::default()
    })
    .await;
    let total = 120;
    s.enqueue_bookings(0..total).await;
    let args = [&CLAIM[..], &["--rate", "6000/1m", "--concurrency", "8"]].concat();
    let mut doomed = s.worker("doomed", &args);
    let survivor = s.worker("survivor", &args);

    wait_until("the run under way", Duration::from_secs(20), || async {
        s.accepted().len() >= 20
    })
    .await;
    doomed.kill9();

    wait_until("every booking sent", Duration::from_secs(60), || async {
        s.accepted_phones().len() == total
    })
    .await;
    s.wait_drained(Duration::from_secs(20)).await;
    assert_eq!(s.status().await.total.dead, 0);
    assert!(
        survivor.log().contains("took over jobs left pending"),
        "the survivor never claimed the dead replica's jobs"
    );
    // Jobs in flight at the kill may have reached Interakt before their result was recorded;
    // at most one per concurrency slot of the killed replica is sent twice.
    let duplicates = s.accepted().len() - total;
    assert!(duplicates <= 8, "{duplicates} duplicates");
}

/// A crashed consumer's job: read by "ghost", never settled.
async fn ghost_read(s: &mut Scenario) -> String {
    let _: () = s
        .conn
        .xgroup_create_mkstream(s.keys.lane(herald_shared::Lane::Otp), WORKER_GROUP, "0")
        .await
        .unwrap();
    let reply: redis::streams::StreamReadReply = s
        .conn
        .xread_options(
            &[s.keys.lane(herald_shared::Lane::Otp)],
            &[">"],
            &redis::streams::StreamReadOptions::default()
                .group(WORKER_GROUP, "ghost")
                .count(1),
        )
        .await
        .unwrap();
    reply.keys[0].ids[0].id.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_5_a_job_recorded_as_sent_is_not_sent_again() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let job = otp("+919000000001", Duration::from_secs(600));
    s.enqueue(std::slice::from_ref(&job)).await;
    ghost_read(&mut s).await;
    // The ghost sent it and recorded it, then died before acknowledging.
    let _: () = s
        .conn
        .set(s.keys.sent(&job.id.to_string()), "interakt-id-1")
        .await
        .unwrap();

    let w = s.worker("live", &CLAIM);
    s.wait_drained(Duration::from_secs(20)).await;
    assert!(
        s.accepted().is_empty(),
        "a job recorded as sent was sent again"
    );
    assert!(w.log().contains("already sent"), "{}", w.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_5_a_poison_job_is_dead_lettered() {
    let mut s = Scenario::start(SandboxSetup::default()).await;
    let job = otp("+919000000001", Duration::from_secs(600));
    s.enqueue(std::slice::from_ref(&job)).await;
    let entry = ghost_read(&mut s).await;
    // It has already been delivered nine times and crashed its consumer each time.
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(s.keys.lane(herald_shared::Lane::Otp))
        .arg(WORKER_GROUP)
        .arg("ghost")
        .arg(0)
        .arg(&entry)
        .arg("RETRYCOUNT")
        .arg(9)
        .query_async(&mut s.conn)
        .await
        .unwrap();

    let _w = s.worker("live", &CLAIM);
    wait_until(
        "the poison job dead-lettered",
        Duration::from_secs(20),
        || async { s.status().await.total.dead == 1 },
    )
    .await;
    let dead = s.dead_letters().await;
    assert!(
        dead[0].reason.starts_with("poison: delivered 10 times"),
        "{}",
        dead[0].reason
    );
    assert_eq!(dead[0].job.as_ref().unwrap().id, job.id);
    assert!(s.accepted().is_empty());
    let left: usize = s
        .conn
        .xlen(s.keys.lane(herald_shared::Lane::Otp))
        .await
        .unwrap();
    assert_eq!(left, 0, "the entry is off the lane");
    let _ = JOB_FIELD;
}

/// A replica with tokens to spare reads ahead of its free slots
/// ([`herald_pipeline::dispatcher`]'s read-ahead), then is SIGSTOPped while it holds those
/// jobs. The survivor takes them over after `--claim-idle`; once resumed, the paused
/// replica finds them taken over and sends none of them. Only requests already in flight
/// at the pause may reach Interakt twice: at most one per concurrency slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_replica_never_sends_the_jobs_it_read_ahead_once_they_were_taken_over() {
    let mut s = Scenario::start(SandboxSetup {
        latency: Duration::from_millis(200),
        // A few slower answers, so that slots free up one at a time (with one latency for
        // all, the sends finish in waves and every slot is free when the replica reads).
        script: vec![
            "+919800000000=slow:300ms",
            "+919800000003=slow:500ms",
            "+919800000011=slow:700ms",
        ],
        ..Default::default()
    })
    .await;
    let total = 200;
    s.enqueue_bookings(0..total).await;
    let args = [&CLAIM[..], &["--rate", "60000000/1m", "--concurrency", "8"]].concat();
    let paused = s.worker("paused", &args);
    let lane = s.keys.lane(herald_shared::Lane::Booking);
    let conn = s.conn.clone();
    wait_until(
        "the replica to hold more jobs than it has slots",
        Duration::from_secs(20),
        || async {
            let mut conn = conn.clone();
            // NOGROUP until the worker has made its group: nothing held yet.
            let held: redis::RedisResult<Vec<redis::Value>> = redis::cmd("XPENDING")
                .arg(&lane)
                .arg(WORKER_GROUP)
                .arg("-")
                .arg("+")
                .arg(1000)
                .arg("paused")
                .query_async(&mut conn)
                .await;
            held.is_ok_and(|held| held.len() > 8)
        },
    )
    .await;
    paused.signal("STOP");
    let survivor = s.worker("survivor", &args);

    wait_until("every booking sent", Duration::from_secs(60), || async {
        s.accepted_phones().len() == total
    })
    .await;
    paused.signal("CONT");
    // It held more jobs than slots: at least one it had not begun is checked now, and found
    // taken over (still pending to the survivor) or gone (the survivor sent and settled it:
    // the usual case once every booking was sent); a send that was in flight at the pause is
    // settled as another replica's. Any of them says it looked.
    wait_until(
        "the resumed replica to find its jobs taken over",
        Duration::from_secs(20),
        || async {
            let log = paused.log();
            log.contains("another replica took this job over")
                || log.contains("no longer held here")
        },
    )
    .await;
    s.wait_drained(Duration::from_secs(20)).await;
    assert!(survivor.log().contains("took over jobs left pending"));
    let duplicates = s.accepted().len() - total;
    assert!(
        duplicates <= 8,
        "{duplicates} duplicates: more than the requests in flight at the pause"
    );
}
