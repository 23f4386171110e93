//! The store against a real redis-server: every script loads, the data today's release wrote
//! is read and moved correctly by this one, and a settle that runs twice counts once.
//!
//! `fixtures/release-2026-12-*.json` are Redis as the release before the store crate left
//! it (written by its binaries: `herald-producer` enqueues of every kind, a cancel, a
//! supersede, then `herald-worker run` against the sandbox with a permanent failure and a
//! transient one), before and after the worker ran.

use std::collections::BTreeMap;
use std::time::Duration;

use herald_shared::{Job, Lane};
use herald_store::calls::budget::Charge;
use herald_store::calls::dead_letters::{self, Replayed};
use herald_store::calls::enqueue::{self, CancelReply};
use herald_store::calls::lanes::{self, Read};
use herald_store::calls::settle::{
    At, BeginSend, Check, Completed, RecordWrite, Sent, SentFields, SettleKeys,
};
use herald_store::calls::waiting::{self, Moved};
use herald_store::dead_letter::DeadLetter;
use herald_store::keys::{JOB_FIELD, WORKER_GROUP};
use herald_store::lifecycle::{self, State, Step};
use herald_store::timeline::{self, JobState};
use herald_store::{Keys, message_index, scripts};
use herald_tests::RedisServer;
use redis::AsyncCommands;
use serde::Deserialize;

/// Redis as the release left it, by kind of key.
#[derive(Deserialize)]
struct Snapshot {
    records: BTreeMap<String, BTreeMap<String, String>>,
    dead: BTreeMap<String, String>,
    /// Each lane's entries as `XRANGE` gives them: id, then field and value.
    lanes: BTreeMap<String, Vec<(String, Vec<String>)>>,
    delayed: BTreeMap<String, Vec<String>>,
    scheduled: BTreeMap<String, Vec<String>>,
    scheduled_bodies: BTreeMap<String, String>,
    claims: BTreeMap<String, String>,
    replace: BTreeMap<String, String>,
    sent: BTreeMap<String, String>,
}

fn snapshot(name: &str) -> Snapshot {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixtures' namespace.
fn keys() -> Keys {
    Keys::new("fx").unwrap()
}

fn prefixed(name: &str) -> String {
    format!("{{fx}}:{name}")
}

#[test]
fn todays_records_letters_and_entries_decode() {
    let before = snapshot("release-2026-12-before-worker");
    let after = snapshot("release-2026-12-after-worker");
    let states = |snap: &Snapshot| -> Vec<JobState> {
        snap.records
            .iter()
            .map(|(id, fields)| {
                let fields = fields.clone().into_iter().collect();
                timeline::build(id, &fields).state
            })
            .collect()
    };
    let count =
        |states: &[JobState], state: JobState| states.iter().filter(|s| **s == state).count();
    let before_states = states(&before);
    assert_eq!(
        count(&before_states, JobState::Queued),
        5,
        "{before_states:?}"
    );
    assert_eq!(count(&before_states, JobState::Scheduled), 2);
    assert_eq!(count(&before_states, JobState::Cancelled), 1);
    assert_eq!(
        count(&before_states, JobState::Superseded),
        1,
        "`cancelled` with `superseded_by` reads as superseded"
    );
    let after_states = states(&after);
    assert_eq!(count(&after_states, JobState::Sent), 3, "{after_states:?}");
    assert_eq!(count(&after_states, JobState::Dead), 1);
    assert_eq!(count(&after_states, JobState::Retrying), 1);
    for fields in before.records.values().chain(after.records.values()) {
        let state = fields.get("state").unwrap();
        assert!(State::parse(state).is_some(), "{state}");
    }
    for json in after.dead.values() {
        let letter: DeadLetter = serde_json::from_str(json).unwrap();
        assert!(letter.job.is_some());
        assert_eq!(timeline::from_dead_letter(&letter).state, JobState::Dead);
    }
    let mut decoded = 0;
    for (_, fields) in before.lanes.values().flatten() {
        assert_eq!(fields[0], JOB_FIELD);
        Job::from_json(fields[1].as_bytes()).unwrap();
        decoded += 1;
    }
    assert_eq!(decoded, 5);
    for json in after
        .delayed
        .values()
        .flatten()
        .chain(before.scheduled_bodies.values())
    {
        Job::from_json(json.as_bytes()).unwrap();
    }
}

/// Writes `snap` into Redis under its own key names.
async fn load(conn: &mut redis::aio::MultiplexedConnection, snap: &Snapshot) {
    for (id, fields) in &snap.records {
        let pairs: Vec<(&String, &String)> = fields.iter().collect();
        let () = conn
            .hset_multiple(prefixed(&format!("job:{id}")), &pairs)
            .await
            .unwrap();
    }
    for (id, json) in &snap.dead {
        let letter: DeadLetter = serde_json::from_str(json).unwrap();
        let () = conn.hset(prefixed("dead"), id, json).await.unwrap();
        let () = conn
            .zadd(keys().dead_index(letter.lane), id, 1)
            .await
            .unwrap();
    }
    for (key, members) in &snap.delayed {
        for member in members {
            let () = conn.zadd(prefixed(key), member, 1).await.unwrap();
        }
    }
    for (key, ids) in &snap.scheduled {
        for id in ids {
            let () = conn
                .zadd(prefixed(key), id, 4_102_444_800_000u64)
                .await
                .unwrap();
        }
    }
    for (id, json) in &snap.scheduled_bodies {
        let () = conn
            .hset(prefixed("scheduled:jobs"), id, json)
            .await
            .unwrap();
    }
    for (key, value) in snap.claims.iter().chain(&snap.replace).chain(&snap.sent) {
        let () = conn.set(prefixed(key), value).await.unwrap();
    }
    for (key, entries) in &snap.lanes {
        for (_, fields) in entries {
            let _: String = conn
                .xadd(prefixed(key), "*", &[(JOB_FIELD, &fields[1])])
                .await
                .unwrap();
        }
    }
    for lane in Lane::ALL {
        let _: Result<(), _> = conn
            .xgroup_create_mkstream(keys().lane(lane), WORKER_GROUP, "0")
            .await;
    }
}

#[tokio::test]
async fn every_script_loads_into_redis() {
    let redis = RedisServer::start();
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    for script in scripts::all() {
        let hash: String = script.prepare_invoke().load_async(&mut conn).await.unwrap();
        assert_eq!(hash, script.get_hash());
    }
}

/// The lifecycle prelude's `may`, run in Redis, answers every step from every state (and
/// from no record) as [`lifecycle::allowed`] does, and raises for a step it does not know.
#[tokio::test]
async fn the_scripts_may_is_the_tables_allowed() {
    let redis = RedisServer::start();
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let script = format!(
        "{}local out = {{}}\n\
         for i = 1, #ARGV, 2 do\n  \
           local state = ARGV[i + 1] ~= '' and ARGV[i + 1]\n  \
           out[#out + 1] = may(ARGV[i], state) and 1 or 0\n\
         end\n\
         return out",
        lifecycle::lua_prelude()
    );
    let mut eval = redis::cmd("EVAL");
    eval.arg(&script).arg(0);
    let mut expected = Vec::new();
    for step in Step::ALL {
        for from in State::ALL.map(Some).into_iter().chain([None]) {
            eval.arg(step.as_str()).arg(from.map_or("", State::as_str));
            expected.push(i64::from(lifecycle::allowed(step, from)));
        }
    }
    let answers: Vec<i64> = eval.query_async(&mut conn).await.unwrap();
    assert_eq!(answers, expected);
    let unknown: Result<Vec<i64>, _> = redis::cmd("EVAL")
        .arg(&script)
        .arg(0)
        .arg("no_such_step")
        .arg("queued")
        .query_async(&mut conn)
        .await;
    assert!(unknown.is_err(), "{unknown:?}");
}

/// The release's pending jobs are cancelled, promoted and replayed by this release's scripts.
#[tokio::test]
async fn this_releases_scripts_move_what_today_wrote() {
    let redis = RedisServer::start();
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let after = snapshot("release-2026-12-after-worker");
    load(&mut conn, &after).await;
    let keys = keys();
    let now = time::OffsetDateTime::now_utc();

    // A scheduled job of the release: cancelled, out of its set, its claim freed.
    let (scheduled_id, claim) = after
        .records
        .iter()
        .filter(|(_, f)| f["state"] == "scheduled")
        .find_map(|(id, _)| {
            after
                .claims
                .iter()
                .find(|(_, held)| held.starts_with(id.as_str()))
                .map(|(claim, _)| (id.clone(), claim.clone()))
        })
        .expect("a scheduled job with a key");
    let reply: redis::Value = enqueue::cancel(&keys, &scheduled_id, now)
        .invoke(&mut conn)
        .await
        .unwrap();
    assert_eq!(CancelReply::decode(&reply).unwrap(), CancelReply::Cancelled);
    let left: u64 = conn.zcard(keys.scheduled(Lane::Booking)).await.unwrap();
    assert_eq!(left, 1, "the other scheduled job stays");
    // Claims of the release carry no record field: they keep their own expiry.
    let held: Option<String> = conn.get(prefixed(&claim)).await.unwrap();
    assert!(held.is_some());

    // Its retrying job is promoted back onto its lane, the record following.
    let reply: redis::Value = waiting::promote(&keys, Lane::Booking, 10)
        .invoke(&mut conn)
        .await
        .unwrap();
    let moved = Moved::decode("promote.lua", &reply).unwrap();
    assert_eq!((moved.moved, moved.dropped), (1, 0));
    let retrying = after
        .records
        .iter()
        .find(|(_, f)| f["state"] == "retrying")
        .map(|(id, _)| id.clone())
        .unwrap();
    let state: String = conn
        .hget(keys.job_status(&retrying), "state")
        .await
        .unwrap();
    assert_eq!(state, "queued");

    // Its dead letter is replayed: off the letters, onto its lane, its record queued.
    let (dead_id, json) = after.dead.iter().next().unwrap();
    let letter: DeadLetter = serde_json::from_str(json).unwrap();
    let job = letter.job.clone().unwrap();
    let reply: redis::Value =
        dead_letters::replay(&keys, letter.lane, dead_id, json, &job, 86_400_000)
            .invoke(&mut conn)
            .await
            .unwrap();
    assert!(matches!(
        Replayed::decode(&reply).unwrap(),
        Replayed::Moved { .. }
    ));
    let state: String = conn.hget(keys.job_status(dead_id), "state").await.unwrap();
    assert_eq!(state, "queued");
}

/// Issue 25, failure 11: `status` showed 603 sent for 600 when settles were retried (a
/// timeout, a lost consumer group): the sent counter was bumped before the ownership check,
/// and again by every run. A send is recorded and counted once, however often its settle
/// runs, and a settle whose group is gone does not fail.
#[tokio::test]
async fn a_settle_that_runs_again_counts_the_send_once() {
    let redis = RedisServer::start();
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let keys = keys();
    let job = Job::otp("+919812345678", "4242", std::time::Duration::from_secs(600)).unwrap();
    let _: redis::Value = enqueue::enqueue(
        &keys,
        &job,
        86_400_000,
        time::OffsetDateTime::now_utc(),
        None,
    )
    .invoke(&mut conn)
    .await
    .unwrap();
    let () = conn
        .xgroup_create(keys.lane(Lane::Otp), WORKER_GROUP, "0")
        .await
        .unwrap();
    let read: redis::streams::StreamReadReply = conn
        .xread_options(
            &[keys.lane(Lane::Otp)],
            &[">"],
            &redis::streams::StreamReadOptions::default().group(WORKER_GROUP, "w1"),
        )
        .await
        .unwrap();
    let entry = read.keys[0].ids[0].id.clone();
    let stream = keys.lane(Lane::Otp);
    let at = At {
        lane: Lane::Otp,
        tenant: herald_shared::job::Tenant::DEFAULT,
        stream: &stream,
        entry_id: &entry,
        consumer: "w1",
        token: None,
    };
    let settles = SettleKeys::new(&keys);
    let now = time::OffsetDateTime::now_utc();
    let mut answers = Vec::new();
    for _ in 0..3 {
        let reply: redis::Value = settles
            .complete(&at, &job, "m-1", now, RecordWrite::Whole)
            .invoke(&mut conn)
            .await
            .unwrap();
        answers.push(Completed::decode(&reply).unwrap());
    }
    assert_eq!(
        answers[0],
        Completed {
            acknowledged: true,
            recorded: true
        }
    );
    assert!(answers[1..].iter().all(|a| !a.recorded));
    // Redis lost the group (a restart without its data): the settle still answers.
    let () = redis::cmd("DEL")
        .arg(keys.lane(Lane::Otp))
        .query_async(&mut conn)
        .await
        .unwrap();
    let reply: redis::Value = settles
        .complete(&at, &job, "m-1", now, RecordWrite::Whole)
        .invoke(&mut conn)
        .await
        .unwrap();
    assert!(!Completed::decode(&reply).unwrap().recorded);
    let sent: u64 = conn.hget(keys.stats(), "sent:otp").await.unwrap();
    assert_eq!(sent, 1);
}

/// `n` OTPs enqueued and read by consumer `w1`: each job with its entry id.
/// A delivery on the OTP lane's own stream, read by consumer `w1`, without a token.
fn otp_at_w1<'a>(stream: &'a str, entry_id: &'a str) -> At<'a> {
    At {
        lane: Lane::Otp,
        tenant: herald_shared::job::Tenant::DEFAULT,
        stream,
        entry_id,
        consumer: "w1",
        token: None,
    }
}

async fn read_otps(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &Keys,
    n: usize,
) -> Vec<(Job, String)> {
    let mut jobs = Vec::new();
    for i in 0..n {
        let phone = format!("+9198123456{i:02}");
        let job = Job::otp(&phone, "4242", std::time::Duration::from_secs(600)).unwrap();
        let _: redis::Value = enqueue::enqueue(
            keys,
            &job,
            86_400_000,
            time::OffsetDateTime::now_utc(),
            None,
        )
        .invoke(conn)
        .await
        .unwrap();
        jobs.push(job);
    }
    let _: Result<(), _> = conn
        .xgroup_create(keys.lane(Lane::Otp), WORKER_GROUP, "0")
        .await;
    let read: redis::streams::StreamReadReply = conn
        .xread_options(
            &[keys.lane(Lane::Otp)],
            &[">"],
            &redis::streams::StreamReadOptions::default()
                .group(WORKER_GROUP, "w1")
                .count(n),
        )
        .await
        .unwrap();
    let entries = read.keys[0].ids.iter().map(|id| id.id.clone());
    jobs.into_iter().zip(entries).collect()
}

/// Tokens `members` granted at `score` in both logs of the budget.
async fn grant(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &Keys,
    members: &[&str],
    score: f64,
) {
    for log in [keys.rate_window(), keys.rate_window_otp()] {
        for member in members {
            let () = conn.zadd(&log, *member, score).await.unwrap();
        }
    }
}

/// Issue 31: the sends a replica's tasks record together go in one call, each recorded as
/// if alone: one recorded before is not counted again but its entry is acknowledged; one
/// another replica took over is recorded (the new holder must find it) but its entry is
/// left; tokens are charged at the answer, a delivery without one charges nothing.
#[tokio::test]
async fn sends_recorded_in_one_call_are_each_recorded_as_if_alone() {
    let redis = RedisServer::start();
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let keys = keys();
    let read = read_otps(&mut conn, &keys, 3).await;
    let stream = keys.lane(Lane::Otp);
    let entries: Vec<&str> = read.iter().map(|(_, entry)| entry.as_str()).collect();
    let ids: Vec<String> = read.iter().map(|(job, _)| job.id.to_string()).collect();
    let settles = SettleKeys::new(&keys);
    let now = time::OffsetDateTime::now_utc();
    // The first was recorded before (another replica sent it too); the third was taken over
    // by w2.
    let () = conn.set(keys.sent(&ids[0]), "m-0").await.unwrap();
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(&stream)
        .arg(WORKER_GROUP)
        .arg("w2")
        .arg(0)
        .arg(entries[2])
        .query_async(&mut conn)
        .await
        .unwrap();
    grant(&mut conn, &keys, &["t-0", "t-1"], 4e15).await;

    let fields: Vec<SentFields> = read
        .iter()
        .enumerate()
        .map(|(i, (job, _))| SentFields::new(job, &format!("m-{i}"), now, RecordWrite::Update))
        .collect();
    let messages = ["m-0", "m-1", "m-2"];
    let tokens = [Some(charge("t-0")), Some(charge("t-1")), None];
    let sends: Vec<Sent> = (0..3)
        .map(|i| Sent {
            at: At {
                lane: Lane::Otp,
                tenant: herald_shared::job::Tenant::DEFAULT,
                stream: &stream,
                entry_id: entries[i],
                consumer: "w1",
                token: tokens[i],
            },
            job_id: &ids[i],
            message_id: messages[i],
            fields: &fields[i],
        })
        .collect();
    let reply: redis::Value = settles.completes(&sends).invoke(&mut conn).await.unwrap();
    let answers = Completed::decode_all(&reply, 3).unwrap();
    let answer = |acknowledged, recorded| Completed {
        acknowledged,
        recorded,
    };
    assert_eq!(
        answers,
        [answer(true, false), answer(true, true), answer(false, true)]
    );
    let sent: u64 = conn.hget(keys.stats(), "sent:otp").await.unwrap();
    assert_eq!(
        sent, 2,
        "each send counted once, the one recorded before not again"
    );
    let left: Vec<String> = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query_async::<redis::streams::StreamRangeReply>(&mut conn)
        .await
        .unwrap()
        .ids
        .into_iter()
        .map(|id| id.id)
        .collect();
    assert_eq!(left, [entries[2]], "only w2's entry is left, for w2");
    for (i, id) in ids.iter().enumerate().skip(1) {
        let record: BTreeMap<String, String> = conn.hgetall(keys.job_status(id)).await.unwrap();
        assert_eq!(record["state"], "sent", "{i}: {record:?}");
        assert_eq!(record["message_id"], messages[i]);
        // Written as an update (the record was there): what the enqueue wrote is kept, what a
        // queued job had and a sent one has not is gone.
        assert_eq!(record["kind"], "otp", "{i}: {record:?}");
        assert_eq!(record["lane"], "otp");
        assert_eq!(record["phone"], format!("+91********{i:02}"));
        assert!(record.contains_key("enqueued_at") && record.contains_key("attempts"));
        assert!(!record.contains_key("entry"), "{i}: {record:?}");
        let marker: String = conn.get(keys.sent(id)).await.unwrap();
        assert_eq!(marker, messages[i]);
    }
    let indexed = message_index::find(&mut conn, &keys, "m-1").await.unwrap();
    assert_eq!(
        indexed.map(|i| (i.job_id, i.lane)),
        Some((ids[1].clone(), "otp".to_string())),
        "the message index names its job and lane"
    );
    for log in [keys.rate_window(), keys.rate_window_otp()] {
        for member in ["t-0", "t-1"] {
            let score: f64 = conn.zscore(&log, member).await.unwrap();
            let now_us = (now.unix_timestamp_nanos() / 1000) as f64;
            assert!(
                (score - now_us).abs() < 60e6,
                "{member} charged at the answer: {score} (now {now_us})"
            );
        }
    }
}

/// Issue 31: the last checks a replica's tasks ask for together go in one call, each
/// answered as if alone, and only the tokens of jobs not sent go back to the budget.
#[tokio::test]
async fn checks_made_in_one_call_are_each_answered_as_if_alone() {
    let redis = RedisServer::start();
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let keys = keys();
    let read = read_otps(&mut conn, &keys, 3).await;
    let stream = keys.lane(Lane::Otp);
    let ids: Vec<String> = read.iter().map(|(job, _)| job.id.to_string()).collect();
    // The first was sent by an earlier delivery (complete.lua wrote its marker and `sent`).
    let () = conn.set(keys.sent(&ids[0]), "m-earlier").await.unwrap();
    let () = conn
        .hset(keys.job_status(&ids[0]), "state", "sent")
        .await
        .unwrap();
    grant(&mut conn, &keys, &["t-0", "t-1", "t-2"], 1e15).await;
    let tokens = ["t-0", "t-1", "t-2"];
    let past = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let checks: Vec<Check> = (0..3)
        .map(|i| Check {
            at: At {
                lane: Lane::Otp,
                tenant: herald_shared::job::Tenant::DEFAULT,
                stream: &stream,
                entry_id: &read[i].1,
                consumer: "w1",
                token: Some(charge(tokens[i])),
            },
            job_id: &ids[i],
            // The second is past its deadline.
            not_after: if i == 1 {
                Some(past)
            } else {
                read[i].0.not_after
            },
        })
        .collect();
    let settles = SettleKeys::new(&keys);
    let reply: redis::Value = settles
        .begin_sends(&checks)
        .invoke(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        BeginSend::decode_all(&reply, 3).unwrap(),
        [
            BeginSend::AlreadySent("m-earlier".into()),
            BeginSend::Expired,
            BeginSend::Send(RecordWrite::Update)
        ]
    );
    let states: Vec<Option<String>> = {
        let mut states = Vec::new();
        for id in &ids {
            states.push(conn.hget(keys.job_status(id), "state").await.unwrap());
        }
        states
    };
    assert_eq!(states[2].as_deref(), Some("sending"));
    assert_eq!(
        states[1].as_deref(),
        Some("queued"),
        "expired: nothing changed"
    );
    for log in [keys.rate_window(), keys.rate_window_otp()] {
        let left: Vec<String> = conn.zrange(&log, 0, -1).await.unwrap();
        assert_eq!(left, ["t-2"], "the tokens of jobs not sent went back");
    }
}

/// `n` entries added to `stream` (group created if need be) and read by `consumer`, in order.
async fn read_entries(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    consumer: &str,
    n: usize,
) -> Vec<String> {
    let _: Result<(), _> = conn.xgroup_create_mkstream(stream, WORKER_GROUP, "0").await;
    for i in 0..n {
        let _: String = conn.xadd(stream, "*", &[("n", i)]).await.unwrap();
    }
    let read: redis::streams::StreamReadReply = conn
        .xread_options(
            &[stream],
            &[">"],
            &redis::streams::StreamReadOptions::default()
                .group(WORKER_GROUP, consumer)
                .count(n),
        )
        .await
        .unwrap();
    read.keys[0].ids.iter().map(|id| id.id.clone()).collect()
}

/// Entries of `stream` pending as `XPENDING` lists them: id and consumer.
async fn pending(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
) -> Vec<(String, String)> {
    let reply: redis::streams::StreamPendingCountReply = conn
        .xpending_count(stream, WORKER_GROUP, "-", "+", 10_000)
        .await
        .unwrap();
    reply.ids.into_iter().map(|p| (p.id, p.consumer)).collect()
}

/// The entries a batched ownership check is asked about, all read by w1 on one stream:
/// `mine` (two, low in the stream), `middle` (150 after them, so the one `XPENDING` over the
/// call's range fills its count before it reaches the rest), `late` (eight, after those).
struct Entries {
    mine: Vec<String>,
    middle: Vec<String>,
    late: Vec<String>,
}

/// [`Entries`] read on `stream`, then `middle[0]` and `late[0]` taken over by w2,
/// `middle[1]` and `late[1]` settled (acknowledged and deleted): 160 read, 158 left
/// pending.
async fn entries_w1_and_w2_hold(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
) -> Entries {
    let mine = read_entries(conn, stream, "w1", 2).await;
    let middle = read_entries(conn, stream, "w1", 150).await;
    let late = read_entries(conn, stream, "w1", 8).await;
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(stream)
        .arg(WORKER_GROUP)
        .arg("w2")
        .arg(0)
        .arg(&middle[0])
        .arg(&late[0])
        .arg("JUSTID")
        .query_async(conn)
        .await
        .unwrap();
    for gone in [&middle[1], &late[1]] {
        let _: u64 = conn.xack(stream, WORKER_GROUP, &[gone]).await.unwrap();
        let _: u64 = conn.xdel(stream, &[gone]).await.unwrap();
    }
    Entries { mine, middle, late }
}

/// Issue 31: the checks of one call ask who holds their entries with one `XPENDING` per
/// stream over the call's range, not one per entry. Each entry is still answered as its own
/// `XPENDING` would: held by another consumer, gone, or this one's, whether the range's
/// reply listed it or filled its count before it (then it is asked alone); an entry the call
/// finished is gone for a later check of the same entry; a stream without the group is
/// nobody's.
#[tokio::test]
async fn checks_made_in_one_call_see_who_holds_each_entry() {
    let redis = RedisServer::start();
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let keys = keys();
    let stream = keys.lane(Lane::Otp);
    let no_group = keys.lane_of(Lane::Otp, "acme");
    let _: String = conn.xadd(&no_group, "*", &[("n", 0)]).await.unwrap();
    let Entries { mine, middle, late } = entries_w1_and_w2_hold(&mut conn, &stream).await;
    // Sent by an earlier delivery: finished by the check, gone for its second check.
    let sent = |entry: &str| -> String { format!("job-{entry}") };
    for entry in [&mine[1], &late[3]] {
        let () = conn
            .set(keys.sent(&sent(entry)), "m-earlier")
            .await
            .unwrap();
    }
    let asked: Vec<(&str, &str)> = vec![
        (&stream, &mine[0]),
        (&stream, &mine[1]),
        (&stream, &mine[1]),
        (&stream, &middle[0]),
        (&stream, &middle[1]),
        (&stream, &late[0]),
        (&stream, &late[1]),
        (&stream, &late[2]),
        (&stream, &late[3]),
        (&stream, &late[3]),
        (&no_group, "0-1"),
        (&no_group, "0-2"),
        (&no_group, "0-3"),
        (&no_group, "0-4"),
    ];
    let ids: Vec<String> = asked.iter().map(|(_, entry)| sent(entry)).collect();
    let checks: Vec<Check> = asked
        .iter()
        .zip(&ids)
        .map(|(&(stream, entry), id)| Check {
            at: At {
                lane: Lane::Otp,
                tenant: herald_shared::job::Tenant::DEFAULT,
                stream,
                entry_id: entry,
                consumer: "w1",
                token: None,
            },
            job_id: id,
            not_after: None,
        })
        .collect();
    let reply: redis::Value = SettleKeys::new(&keys)
        .begin_sends(&checks)
        .invoke(&mut conn)
        .await
        .unwrap();
    use BeginSend::{AlreadySent, Gone, Send, TakenOver};
    // No job here has a record: a send's settle writes it whole.
    let send = Send(RecordWrite::Whole);
    assert_eq!(
        BeginSend::decode_all(&reply, asked.len()).unwrap(),
        [
            send.clone(),
            AlreadySent("m-earlier".into()),
            Gone(None),
            TakenOver(None),
            Gone(None),
            TakenOver(None),
            Gone(None),
            send,
            AlreadySent("m-earlier".into()),
            Gone(None),
            Gone(None),
            Gone(None),
            Gone(None),
            Gone(None),
        ]
    );
    let left = pending(&mut conn, &stream).await;
    assert_only_these_left_the_list(&left, &[&mine[1], &late[3]], 160 - 2);
}

/// Issue 31: the sends one call records ask who holds their entries with one `XPENDING` per
/// stream, and acknowledge exactly the entries this replica still holds: not one another
/// consumer took over or one already gone, whether the range's reply listed it or filled its
/// count before it; a stream without the group is nobody's.
#[tokio::test]
async fn sends_recorded_in_one_call_acknowledge_only_entries_still_held() {
    let redis = RedisServer::start();
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let keys = keys();
    let stream = keys.lane(Lane::Otp);
    let no_group = keys.lane_of(Lane::Otp, "acme");
    let _: String = conn.xadd(&no_group, "*", &[("n", 0)]).await.unwrap();
    let Entries { mine, middle, late } = entries_w1_and_w2_hold(&mut conn, &stream).await;
    let asked: Vec<(&str, &str)> = vec![
        (&stream, &mine[0]),
        (&stream, &middle[0]),
        (&stream, &middle[1]),
        (&stream, &late[0]),
        (&stream, &late[1]),
        (&stream, &late[2]),
        (&stream, &late[3]),
        (&no_group, "0-1"),
        (&no_group, "0-2"),
        (&no_group, "0-3"),
        (&no_group, "0-4"),
    ];
    let jobs: Vec<Job> = (0..asked.len())
        .map(|i| {
            let phone = format!("+9198123457{i:02}");
            Job::otp(&phone, "4242", std::time::Duration::from_secs(600)).unwrap()
        })
        .collect();
    let ids: Vec<String> = jobs.iter().map(|job| job.id.to_string()).collect();
    let messages: Vec<String> = (0..asked.len()).map(|i| format!("m-{i}")).collect();
    let now = time::OffsetDateTime::now_utc();
    let fields: Vec<SentFields> = jobs
        .iter()
        .zip(&messages)
        .map(|(job, message)| SentFields::new(job, message, now, RecordWrite::Whole))
        .collect();
    let sends: Vec<Sent> = (0..asked.len())
        .map(|i| Sent {
            at: At {
                lane: Lane::Otp,
                tenant: herald_shared::job::Tenant::DEFAULT,
                stream: asked[i].0,
                entry_id: asked[i].1,
                consumer: "w1",
                token: None,
            },
            job_id: &ids[i],
            message_id: &messages[i],
            fields: &fields[i],
        })
        .collect();
    let reply: redis::Value = SettleKeys::new(&keys)
        .completes(&sends)
        .invoke(&mut conn)
        .await
        .unwrap();
    let acknowledged: Vec<bool> = Completed::decode_all(&reply, asked.len())
        .unwrap()
        .iter()
        .map(|c| {
            assert!(c.recorded);
            c.acknowledged
        })
        .collect();
    assert_eq!(
        acknowledged,
        [
            true, false, false, false, false, true, true, false, false, false, false
        ]
    );
    let left = pending(&mut conn, &stream).await;
    for (entry, holder) in [(&middle[0], "w2"), (&late[0], "w2")] {
        assert!(
            left.contains(&(entry.clone(), holder.to_string())),
            "{entry} left to {holder}"
        );
    }
    assert_only_these_left_the_list(&left, &[&mine[0], &late[2], &late[3]], 160 - 2);
}

/// The jobs today's release queued (on each lane's own stream, with no turn in the lanes'
/// turns: that release had none) are read by this release's reader, every one, and a read
/// that finds nothing says where to block from on the lane's own stream too (a producer of
/// that release adds there without ringing a bell).
#[tokio::test]
async fn this_releases_reader_reads_what_today_queued() {
    let redis = RedisServer::start();
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let before = snapshot("release-2026-12-before-worker");
    load(&mut conn, &before).await;
    let keys = keys();
    let queued: usize = before.lanes.values().map(Vec::len).sum();
    let mut read = 0;
    for lane in Lane::ALL {
        let reply: redis::Value = lanes::read(&keys, lane, "w1", 100, &[])
            .invoke(&mut conn)
            .await
            .unwrap();
        match Read::decode(&reply).unwrap() {
            Read::Entries(entries) => {
                for entry in entries {
                    assert_eq!(entry.tenant, "default");
                    Job::from_json(&entry.job.unwrap()).unwrap();
                    read += 1;
                }
            }
            Read::Nothing { lane: last, .. } => {
                let newest: redis::streams::StreamRangeReply = conn
                    .xrevrange_count(keys.lane(lane), "+", "-", 1)
                    .await
                    .unwrap();
                let newest = newest.ids;
                let expected = newest.first().map_or("0-0".to_string(), |e| e.id.clone());
                assert_eq!(last, expected, "{lane}");
            }
        }
    }
    assert_eq!(read, queued);
    // The lanes now have their turns: the default tenant's jobs were read.
    let reply: redis::Value = lanes::read(&keys, Lane::Booking, "w1", 100, &[])
        .invoke(&mut conn)
        .await
        .unwrap();
    assert!(matches!(
        Read::decode(&reply).unwrap(),
        Read::Nothing { .. }
    ));
}

/// An OTP's token as the settle scripts take it (granted to an OTP: in both logs).
fn charge(member: &str) -> Charge<'_> {
    Charge {
        member,
        otp_log: true,
        reserve: false,
        window_ms: 60_000,
    }
}

/// A seeded mix of jobs sharing a few numbers, idempotency keys (same and other content),
/// replace keys and bookings, some scheduled, with a tight OTP guard: enqueued one call per
/// job on one redis-server and in calls of many jobs (of random sizes) on another, at the
/// same instant, every job's answer and everything they leave behind are the same.
#[tokio::test]
async fn jobs_enqueued_in_one_call_end_as_if_each_were_alone() {
    use herald_store::calls::enqueue::EnqueueReply;
    use herald_store::guard::Guard;

    for seed in [1_u64, 7, 42, 2026] {
        let mut rng = seed;
        let mut next = move |n: u64| {
            // xorshift64*: enough to pick among a few choices, the same every run.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let now = time::OffsetDateTime::now_utc();
        let mut jobs: Vec<Job> = Vec::new();
        for i in 0..120 {
            // Now and then the same content again under its key: a duplicate.
            let keyed: Vec<&Job> = jobs
                .iter()
                .filter(|j| j.idempotency_key.is_some())
                .collect();
            if !keyed.is_empty() && next(6) == 0 {
                let mut again = keyed[next(keyed.len() as u64) as usize].clone();
                again.id = uuid::Uuid::now_v7();
                jobs.push(again);
                continue;
            }
            jobs.push({
                let phone = format!("+9198765{:05}", 40_000 + next(6) * 7);
                let mut job = match next(4) {
                    0 | 1 => Job::otp(&phone, &format!("{:06}", next(3)), Duration::from_secs(600))
                        .unwrap(),
                    2 => herald_tests::scenario::booking_to(&phone, next(5) as usize),
                    _ => herald_tests::scenario::booking_to(&phone, i)
                        .scheduled("send_at", Some(now + Duration::from_secs(60 + next(600))))
                        .unwrap(),
                };
                if next(3) == 0 {
                    job = job
                        .with_idempotency_key(Some(format!("idem-{}", next(8))))
                        .unwrap();
                }
                if next(3) == 0 && job.kind() != herald_shared::JobKind::Otp {
                    job = job
                        .with_replace_key(Some(format!("repl-{}", next(4))))
                        .unwrap();
                }
                if next(4) == 0 {
                    job = job.with_tenant("tenant", Some("salon-b")).unwrap();
                }
                job
            });
        }
        let guard = Guard {
            per_number: "3/1h".parse().unwrap(),
            per_prefix: "8/1h".parse().unwrap(),
            ..Guard::default()
        };
        let mut ends = Vec::new();
        for batched in [false, true] {
            let redis = RedisServer::start();
            let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
            let keys = keys();
            let mut replies = Vec::new();
            let mut rest: &[Job] = &jobs;
            while !rest.is_empty() {
                let n = if batched {
                    (1 + next(40) as usize).min(rest.len())
                } else {
                    1
                };
                let (call, after) = rest.split_at(n);
                let reply: redis::Value =
                    enqueue::enqueue_all(&keys, call, 86_400_000, now, Some(&guard))
                        .invoke(&mut conn)
                        .await
                        .unwrap();
                replies.extend(EnqueueReply::decode_all(&reply).unwrap().into_iter().map(
                    // Stream entry ids are the server's clock: the same only by chance.
                    |reply| match reply {
                        EnqueueReply::Added {
                            entry,
                            superseded,
                            waits_for,
                            held_until_ms,
                        } => format!(
                            "added on lane {} {superseded:?} {waits_for:?} {held_until_ms:?}",
                            entry.is_some()
                        ),
                        other => format!("{other:?}"),
                    },
                ));
                rest = after;
            }
            let mut left = BTreeMap::new();
            let names: Vec<String> = conn.keys("*").await.unwrap();
            for name in names {
                let kind: String = redis::cmd("TYPE")
                    .arg(&name)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                let what = match kind.as_str() {
                    "hash" => {
                        let mut all: BTreeMap<String, String> = conn.hgetall(&name).await.unwrap();
                        all.remove("entry");
                        format!("{all:?}")
                    }
                    "stream" => {
                        let n: usize = conn.xlen(&name).await.unwrap();
                        format!("{n} entries")
                    }
                    "zset" => {
                        let members: Vec<String> = conn.zrange(&name, 0, -1).await.unwrap();
                        format!("{members:?}")
                    }
                    "set" => {
                        let mut members: Vec<String> = conn.smembers(&name).await.unwrap();
                        members.sort();
                        format!("{members:?}")
                    }
                    "string" => conn.get(&name).await.unwrap(),
                    other => other.to_string(),
                };
                left.insert(name, what);
            }
            ends.push((replies, left));
        }
        let (alone, batched) = (&ends[0], &ends[1]);
        assert_eq!(alone.0, batched.0, "seed {seed}: the answers");
        assert!(
            [
                "Refused",
                "Duplicate",
                "Conflict",
                "added on lane false",
                "added on lane true Some("
            ]
            .iter()
            .all(|what| alone.0.iter().any(|r| r.contains(what))),
            "seed {seed}: the mix has refusals, duplicates, conflicts, jobs scheduled or held \
             back, and supersedes: {:?}",
            alone.0
        );
        assert_eq!(alone.1, batched.1, "seed {seed}: what is left in Redis");
    }
}

/// `left` (a pending list, as `pending` reads it) holds none of `gone` and, of the `before`
/// entries it held, nothing else is missing.
fn assert_only_these_left_the_list(left: &[(String, String)], gone: &[&String], before: usize) {
    for entry in gone {
        assert!(
            left.iter().all(|(id, _)| id != *entry),
            "{entry} left the pending list"
        );
    }
    assert_eq!(left.len(), before - gone.len(), "nothing else acknowledged");
}

/// The message index entry this release writes (one string) and the hash of the releases
/// before it are both found, so a delivery report for a message sent before an upgrade still
/// finds its job; a message never indexed is none.
#[tokio::test]
async fn the_message_index_is_read_in_both_forms() {
    let redis = RedisServer::start();
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let keys = keys();
    let () = conn
        .hset_multiple(
            keys.message("m-old"),
            &[
                ("job_id", "01a25015-0000-7000-8000-000000000001"),
                ("lane", "booking"),
                ("phone", "+91********12"),
                ("sent_at", "2026-12-06T10:00:00Z"),
            ],
        )
        .await
        .unwrap();
    let () = conn
        .set(
            keys.message("m-new"),
            "01a25015-0000-7000-8000-000000000002 otp",
        )
        .await
        .unwrap();
    let found = |id: &'static str| {
        let keys = keys.clone();
        let mut conn = conn.clone();
        async move {
            message_index::find(&mut conn, &keys, id)
                .await
                .unwrap()
                .map(|i| (i.job_id, i.lane))
        }
    };
    assert_eq!(
        found("m-old").await,
        Some((
            "01a25015-0000-7000-8000-000000000001".into(),
            "booking".into()
        ))
    );
    assert_eq!(
        found("m-new").await,
        Some(("01a25015-0000-7000-8000-000000000002".into(), "otp".into()))
    );
    assert_eq!(found("m-none").await, None);
}

/// A sent record is kept a week or more after its send: one enqueued shortly before keeps
/// the expiry the enqueue gave it (a week and the slack: the settle reads it and leaves it),
/// one that would go sooner (a retry's, or an old record's) is kept a week from the send.
#[tokio::test]
async fn a_sent_record_is_kept_a_week_after_its_send_whatever_its_expiry_was() {
    let redis = RedisServer::start();
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let keys = keys();
    let read = read_otps(&mut conn, &keys, 2).await;
    let stream = keys.lane(Lane::Otp);
    let soon = keys.job_status(&read[1].0.id.to_string());
    let () = conn.expire(&soon, 60).await.unwrap();
    let settles = SettleKeys::new(&keys);
    let now = time::OffsetDateTime::now_utc();
    for (job, entry) in &read {
        let at = otp_at_w1(&stream, entry);
        let reply: redis::Value = settles
            .complete(&at, job, "m", now, RecordWrite::Update)
            .invoke(&mut conn)
            .await
            .unwrap();
        assert!(Completed::decode(&reply).unwrap().recorded);
    }
    let week = herald_store::keys::TIMELINE_TTL_SECS as i64;
    let slack = herald_store::keys::RECORD_TTL_SLACK_SECS as i64;
    let kept: i64 = conn
        .ttl(keys.job_status(&read[0].0.id.to_string()))
        .await
        .unwrap();
    assert!((week + slack - 60..=week + slack).contains(&kept), "{kept}");
    let pushed: i64 = conn.ttl(&soon).await.unwrap();
    assert!((week - 60..=week).contains(&pushed), "{pushed}");
    let index: i64 = conn.ttl(keys.message("m")).await.unwrap();
    assert!((week - 60..=week).contains(&index), "{index}");
}

/// A record that expired between the check before the send and its settle (the settle was
/// told to update it): the settle still records the send, and the record it leaves (what
/// the send changed) expires a week after the send like any other, never kept forever.
#[tokio::test]
async fn a_record_gone_before_the_settle_of_its_update_is_written_with_its_expiry() {
    let redis = RedisServer::start();
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let keys = keys();
    let read = read_otps(&mut conn, &keys, 1).await;
    let (job, entry) = &read[0];
    let record = keys.job_status(&job.id.to_string());
    let () = redis::cmd("DEL")
        .arg(&record)
        .query_async(&mut conn)
        .await
        .unwrap();
    let stream = keys.lane(Lane::Otp);
    let at = otp_at_w1(&stream, entry);
    let reply: redis::Value = SettleKeys::new(&keys)
        .complete(
            &at,
            job,
            "m-gone",
            time::OffsetDateTime::now_utc(),
            RecordWrite::Update,
        )
        .invoke(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        Completed::decode(&reply).unwrap(),
        Completed {
            acknowledged: true,
            recorded: true
        }
    );
    let fields: BTreeMap<String, String> = conn.hgetall(&record).await.unwrap();
    assert_eq!(fields["state"], "sent", "{fields:?}");
    assert_eq!(fields["message_id"], "m-gone");
    let week = herald_store::keys::TIMELINE_TTL_SECS as i64;
    let ttl: i64 = conn.ttl(&record).await.unwrap();
    assert!((week - 60..=week).contains(&ttl), "{ttl}");
}
