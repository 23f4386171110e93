//! A lane's tenants against a real redis-server: each tenant's jobs on its own stream, read
//! in turn by weight (`read_turns.lua`), taken over stream by stream (`claim_turns.lua`),
//! and counted tenant by tenant (`backlog.lua`).

use std::collections::BTreeMap;

use herald_shared::{Job, Lane};
use herald_store::Keys;
use herald_store::calls::enqueue;
use herald_store::calls::inspect::{self, Backlog};
use herald_store::calls::lanes::{self, Claimed, Read};
use herald_tests::RedisServer;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

fn keys() -> Keys {
    Keys::new("lanes").unwrap()
}

fn booking(i: usize, tenant: &str) -> Job {
    Job::booking(herald_shared::job::Booking {
        phone: format!("+9198{i:08}"),
        booking_id: format!("B{i}"),
        service: "Haircut".into(),
        date: "2030-11-24".into(),
        time: "10:30".into(),
        image_url: None,
    })
    .unwrap()
    .with_tenant("tenant", Some(tenant))
    .unwrap()
}

async fn enqueue_all(conn: &mut MultiplexedConnection, jobs: &[Job]) {
    let now = time::OffsetDateTime::now_utc();
    for job in jobs {
        let _: redis::Value = enqueue::enqueue(&keys(), job, 86_400_000, now)
            .invoke(conn)
            .await
            .unwrap();
    }
}

async fn start() -> (RedisServer, MultiplexedConnection) {
    let redis = RedisServer::start();
    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let () = conn
        .xgroup_create_mkstream(keys().lane(Lane::Booking), "workers", "0")
        .await
        .unwrap();
    (redis, conn)
}

/// Reads `want` as `consumer`; the tenants of what was read, in order.
async fn read(
    conn: &mut MultiplexedConnection,
    consumer: &str,
    want: usize,
    weights: &[(String, u32)],
) -> Vec<String> {
    let reply: redis::Value = lanes::read(&keys(), Lane::Booking, consumer, want, weights)
        .invoke(conn)
        .await
        .unwrap();
    match Read::decode(&reply).unwrap() {
        Read::Entries(entries) => entries.into_iter().map(|e| e.tenant).collect(),
        Read::Nothing { .. } => Vec::new(),
    }
}

/// A tenant whose first job comes behind another's backlog is read at the next read of
/// two, whatever the backlog; a tenant that comes back after it left the turns gets no
/// credit for the time it had none.
#[tokio::test]
async fn a_tenants_first_job_is_read_within_one_turn_of_anothers_backlog() {
    let (_redis, mut conn) = start().await;
    let a: Vec<Job> = (0..500).map(|i| booking(i, "salon-a")).collect();
    enqueue_all(&mut conn, &a).await;
    assert_eq!(read(&mut conn, "w1", 10, &[]).await, vec!["salon-a"; 10]);

    enqueue_all(&mut conn, &[booking(1_000, "salon-b")]).await;
    let next = read(&mut conn, "w1", 2, &[]).await;
    assert!(next.contains(&"salon-b".to_string()), "{next:?}");
    assert_eq!(read(&mut conn, "w1", 5, &[]).await, vec!["salon-a"; 5]);

    // B is back after 100 more of A's: it is read at once, and then takes turns with A.
    for _ in 0..20 {
        read(&mut conn, "w1", 5, &[]).await;
    }
    enqueue_all(
        &mut conn,
        &(2_000..2_010)
            .map(|i| booking(i, "salon-b"))
            .collect::<Vec<_>>(),
    )
    .await;
    let tenants = read(&mut conn, "w1", 10, &[]).await;
    let b = tenants.iter().filter(|t| *t == "salon-b").count();
    assert!(
        (4..=6).contains(&b),
        "B took half a read, not all of it: {tenants:?}"
    );
}

/// With both backlogged, tenants share the reads by weight (unlisted: 1).
#[tokio::test]
async fn tenants_share_the_reads_by_weight() {
    let (_redis, mut conn) = start().await;
    let jobs: Vec<Job> = (0..200)
        .map(|i| booking(i, if i % 2 == 0 { "salon-a" } else { "salon-b" }))
        .collect();
    enqueue_all(&mut conn, &jobs).await;
    let weights = vec![("salon-a".to_string(), 3)];
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..40 {
        for tenant in read(&mut conn, "w1", 1, &weights).await {
            *got.entry(tenant).or_default() += 1;
        }
    }
    assert_eq!(got.values().sum::<usize>(), 40);
    let a = got["salon-a"];
    assert!(
        (29..=31).contains(&a),
        "salon-a (weight 3) got {a} of 40: {got:?}"
    );
}

/// A dead replica's entries are taken over on every tenant's stream, with their tenants;
/// a tenant's stream left empty is removed with its turn, and made again by its next job.
#[tokio::test]
async fn entries_are_taken_over_on_every_tenants_stream_and_empty_streams_go() {
    let (_redis, mut conn) = start().await;
    let jobs: Vec<Job> = ["default", "salon-a", "salon-b", "city:blr"]
        .iter()
        .enumerate()
        .map(|(i, t)| booking(i, t))
        .collect();
    enqueue_all(&mut conn, &jobs).await;
    assert_eq!(read(&mut conn, "dead-replica", 10, &[]).await.len(), 4);

    let mut cursor = "0".to_string();
    let mut taken = Vec::new();
    loop {
        let reply: redis::Value = lanes::claim(&keys(), Lane::Booking, "w2", 0, 10, &cursor)
            .invoke(&mut conn)
            .await
            .unwrap();
        let Claimed {
            cursor: next,
            entries,
        } = Claimed::decode(&reply).unwrap();
        taken.extend(entries.into_iter().map(|e| (e.tenant, e.deliveries)));
        if next == "0" {
            break;
        }
        cursor = next;
    }
    taken.sort();
    assert_eq!(
        taken,
        vec![
            ("city:blr".to_string(), 2),
            ("default".to_string(), 2),
            ("salon-a".to_string(), 2),
            ("salon-b".to_string(), 2)
        ]
    );

    // salon-a's job settled (acknowledged, deleted): its stream goes at the next claim.
    let stream = keys().lane_of(Lane::Booking, "salon-a");
    let ids: redis::streams::StreamRangeReply = conn.xrange_all(&stream).await.unwrap();
    let id = &ids.ids[0].id;
    let _: () = redis::pipe()
        .xack(&stream, "workers", &[id])
        .xdel(&stream, &[id])
        .query_async(&mut conn)
        .await
        .unwrap();
    let reply: redis::Value = lanes::claim(&keys(), Lane::Booking, "w2", 60_000, 10, "0")
        .invoke(&mut conn)
        .await
        .unwrap();
    Claimed::decode(&reply).unwrap();
    let exists: bool = conn.exists(&stream).await.unwrap();
    assert!(!exists, "the empty stream is removed");
    let listed: bool = conn
        .sismember(keys().lane_streams(Lane::Booking), "salon-a")
        .await
        .unwrap();
    assert!(!listed);

    enqueue_all(&mut conn, &[booking(99, "salon-a")]).await;
    assert_eq!(read(&mut conn, "w3", 5, &[]).await, vec!["salon-a"]);
}

/// The backlog counts every tenant's stream: ready and pending per lane, consumers' holds
/// over all of them, and the tenants with the most ready, largest first.
#[tokio::test]
async fn the_backlog_counts_every_tenant_and_lists_the_largest() {
    let (_redis, mut conn) = start().await;
    let mut jobs = Vec::new();
    for t in 0..25 {
        for _ in 0..=t {
            jobs.push(booking(jobs.len(), &format!("t-{t:02}")));
        }
    }
    enqueue_all(&mut conn, &jobs).await;
    let held = read(&mut conn, "w1", 30, &[]).await.len();
    assert_eq!(held, 30);

    let reply: redis::Value = inspect::backlog(&keys(), 20)
        .invoke(&mut conn)
        .await
        .unwrap();
    let backlog = Backlog::decode(&reply).unwrap();
    let lane = backlog.lane(Lane::Booking);
    assert_eq!(lane.ready + lane.pending, jobs.len() as u64);
    assert_eq!(lane.pending, 30);
    assert_eq!(backlog.in_hand, vec![("w1".to_string(), 30)]);
    assert_eq!(backlog.tenants.len(), 20);
    let ready: Vec<u64> = backlog.tenants.iter().map(|t| t.ready).collect();
    assert!(ready.windows(2).all(|w| w[0] >= w[1]), "{ready:?}");
    let sum: u64 = backlog.tenants.iter().map(|t| t.ready).sum();
    assert!(sum <= lane.ready);
    assert!(lane.oldest_ms >= lane.oldest_ready_ms);
    assert!(
        backlog
            .tenants
            .iter()
            .all(|t| t.oldest_ms <= lane.oldest_ready_ms)
    );
    let otp = backlog.lane(Lane::Otp);
    assert_eq!((otp.ready, otp.pending, otp.oldest_ms), (0, 0, 0));
}

/// Calls of `command` Redis has run, scripts' own calls included (INFO commandstats).
async fn calls(conn: &mut MultiplexedConnection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// A read across many tenants costs a few commands, however many tenants it serves: the
/// tenants of a round that read as many entries each are read by one XREADGROUP, and their
/// turns moved by one ZADD and one ZREM. Ten thousand tenants with a job or two each cost
/// per job about what one tenant's backlog costs.
#[tokio::test]
async fn a_read_across_many_tenants_is_a_few_commands() {
    let (_redis, mut conn) = start().await;
    let jobs: Vec<Job> = (0..200)
        .map(|i| booking(i, &format!("t{}", i / 2)))
        .collect();
    enqueue_all(&mut conn, &jobs).await;
    let before = calls(&mut conn, "xreadgroup").await;
    let tenants = read(&mut conn, "w1", 50, &[]).await;
    let xreads = calls(&mut conn, "xreadgroup").await - before;
    assert_eq!(tenants.len(), 50, "a read of 50 over 100 tenants reads 50");
    let distinct: std::collections::BTreeSet<_> = tenants.iter().collect();
    assert_eq!(
        distinct.len(),
        50,
        "one job of each of 50 tenants: {tenants:?}"
    );
    assert!(
        xreads <= 4,
        "{xreads} XREADGROUP calls for one read of 50 tenants (one per round expected)"
    );
    // Everything is read, each job once, and the turns end empty.
    let mut all = tenants;
    loop {
        let more = read(&mut conn, "w1", 50, &[]).await;
        if more.is_empty() {
            break;
        }
        all.extend(more);
    }
    assert_eq!(all.len(), 200);
    let turns: u64 = conn.zcard(keys().lane_turns(Lane::Booking)).await.unwrap();
    assert_eq!(turns, 0);
}
