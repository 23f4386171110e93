//! Helpers: a producer on a fresh server, fixtures, and reading what landed in Redis.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use deadpool_redis::redis;
use herald_shared::wire::SendRequest;
use herald_shared::{Job, Lane};
use herald_store::Keys;
use herald_store::keys::JOB_FIELD;
use herald_tests::RedisServer;
use producer::Producer;

pub const NAMESPACE: &str = "herald";

pub fn keys() -> Keys {
    Keys::new(NAMESPACE).unwrap()
}

/// A producer with its own pool on `server`.
pub async fn producer(server: &RedisServer) -> Producer {
    let pool = herald_shared::redis_pool::connect(
        &server.url(),
        herald_shared::redis_pool::DEFAULT_POOL_SIZE,
    )
    .await
    .unwrap();
    Producer::new(pool, keys())
}

pub fn fixture_path(name: &str) -> String {
    format!(
        "{}/../shared/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

pub fn fixture(name: &str) -> String {
    let path = fixture_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn request(name: &str) -> SendRequest {
    herald_shared::wire::decode(fixture(name).as_bytes()).unwrap()
}

/// The standalone fixture with `n` suggestions on its card (the limit is 4).
pub fn request_with_suggestions(n: usize) -> serde_json::Value {
    let mut body: serde_json::Value =
        serde_json::from_str(&fixture("request-curl-example-1.json")).unwrap();
    let suggestions = body
        .pointer_mut("/message/richCardDetails/standalone/content/suggestions")
        .unwrap()
        .as_array_mut()
        .unwrap();
    let first = suggestions[0].clone();
    *suggestions = vec![first; n];
    body
}

pub fn conn(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

/// `SCRIPT FLUSH`: Redis forgets every script it has loaded (as after a restart), so a
/// producer's next script call is refused with `NOSCRIPT`.
pub fn flush_scripts(server: &RedisServer) {
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut conn(server))
        .unwrap();
}

pub fn dbsize(server: &RedisServer) -> i64 {
    redis::cmd("DBSIZE").query(&mut conn(server)).unwrap()
}

/// Every job on `lane`, oldest first, checking each entry has exactly the one job field.
pub fn lane_jobs(server: &RedisServer, lane: Lane) -> Vec<Job> {
    tenant_jobs(server, lane, herald_shared::job::Tenant::DEFAULT)
}

/// The jobs of `tenant` waiting on `lane`, oldest first.
pub fn tenant_jobs(server: &RedisServer, lane: Lane, tenant: &str) -> Vec<Job> {
    let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(keys().lane_of(lane, tenant))
        .arg("-")
        .arg("+")
        .query(&mut conn(server))
        .unwrap();
    entries
        .into_iter()
        .map(|(id, fields)| {
            assert_eq!(fields.len(), 1, "entry {id} has fields {:?}", fields.keys());
            Job::from_json(fields[JOB_FIELD].as_bytes()).unwrap()
        })
        .collect()
}

/// Polls `condition` every few milliseconds until it holds, failing after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Settles job `job_id` of `lane` as sent, as a worker would: read through the workers'
/// group as consumer `settler`, then the store's `complete` script.
pub async fn settle_sent(server: &RedisServer, lane: Lane, job_id: uuid::Uuid) {
    use herald_store::calls::settle::{At, RecordWrite, SettleKeys};
    use herald_store::keys::WORKER_GROUP;
    let mut conn = herald_tests::connect(&server.url()).await.unwrap();
    let stream = keys().lane(lane);
    let _: Result<(), _> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg(WORKER_GROUP)
        .arg("0")
        .query_async(&mut conn)
        .await;
    let read: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(WORKER_GROUP)
        .arg("settler")
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    for entry in read.keys.iter().flat_map(|k| &k.ids) {
        let raw: String = entry.get(JOB_FIELD).unwrap();
        let job = Job::from_json(raw.as_bytes()).unwrap();
        if job.id != job_id {
            continue;
        }
        let at = At {
            lane,
            tenant: herald_shared::job::Tenant::DEFAULT,
            stream: &stream,
            entry_id: &entry.id,
            consumer: "settler",
            token: None,
        };
        // Settled without the check before a send: the whole record, as for a job without one.
        let call = SettleKeys::new(&keys()).complete(
            &at,
            &job,
            "m-1",
            time::OffsetDateTime::now_utc(),
            RecordWrite::Whole,
        );
        let _: redis::Value = call.invoke(&mut conn).await.unwrap();
        return;
    }
    panic!("job {job_id} not on lane {lane}");
}
