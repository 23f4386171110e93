//! Reading jobs off the lanes: the consumer group, tenants in turn, OTP-first reads, and
//! recovery of jobs a dead replica left pending.
//!
//! A lane is one stream per tenant (the default tenant's is the lane's own stream): a read
//! takes the tenants with jobs to read in turn (`read_turns.lua`: each gets its weight's
//! share, and a tenant that newly has a job is read at the next read), so one tenant's
//! backlog never holds up another's job by more than one turn. Every read is through the
//! `workers` consumer group, so an entry stays in the group's pending list until it is
//! settled ([`crate::settle`]); a replica that dies holding it loses nothing. An idle replica
//! blocks on the lanes' bells, which ring when a tenant comes to have jobs. This module only
//! reads and claims; it never acknowledges.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_redis::redis::streams::StreamReadReply;
use deadpool_redis::redis::{self, AsyncCommands, RedisError, Value};
use herald_shared::redis_pool::Pool;
use herald_shared::{Job, Lane};
use herald_store::Keys;
use herald_store::calls::settle::RecordWrite;
use herald_store::dead_letter::{DeadReason, redact_raw};
use herald_store::keys::{JOB_FIELD, WORKER_GROUP};
use tokio::time::Instant;

use crate::limiter::Token;

/// A Redis failure while reading or settling: the caller backs off and tries again.
pub use herald_shared::redis_pool::RedisFailure;

use herald_store::calls::lanes::{self, Claimed, Entry, Read, SoloRead};
use herald_store::calls::settle::{Lost, SettleKeys, decode_touch};

/// One entry delivered to this replica.
#[derive(Debug)]
pub struct Delivery {
    pub lane: Lane,
    /// The tenant whose stream it is on.
    pub tenant: Arc<str>,
    /// That stream (`Keys::lane_of(lane, tenant)`): where it is acknowledged.
    pub stream: Arc<str>,
    /// The stream entry id; what is acknowledged.
    pub entry_id: String,
    /// The decoded job, or why the entry does not decode.
    pub job: Result<Job, BadEntry>,
    /// How many times the group has delivered this entry (1 for a first read).
    pub deliveries: u64,
    /// When this replica took it.
    pub taken_at: Instant,
    /// This replica's hold on the entry, kept alive by [`LaneReader::keep_alive`] until
    /// the delivery is dropped (settled, handed back, or given up). `None` for deliveries
    /// made by hand ([`Delivery::of_job`]).
    pub hold: Option<Hold>,
    /// The budget token its send goes out under, once granted: the settle after the send
    /// charges the request's answer to it ([`crate::limiter::Token`]).
    pub token: Option<Token>,
    /// How much of the job's record the settle of its send writes: what the last check
    /// before the send found ([`herald_store::calls::settle::BeginSend::Send`]); the whole
    /// record until then.
    pub record: RecordWrite,
}

/// The entries this replica holds (in hand, or being sent), by stream and id: what the
/// keep-alive touches so that no other replica takes them over while they wait here, and
/// which of them it found lost. Shared by the reader (which adds), every [`Hold`] (which
/// removes itself on drop) and the keep-alive (which marks lost ones, for the dispatcher to
/// drop from its hand before it asks a token for them). Stream ids are per stream, so two
/// streams can hold the same id: the stream is part of the key.
#[derive(Clone, Debug, Default)]
pub struct Holds(Arc<Mutex<Held>>);

/// Each held entry (stream and id), and why it is no longer this replica's once known.
type Held = HashMap<(Arc<str>, String), Option<Lost>>;

impl Holds {
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a hold on `entry_id` of `stream`; `None` if it is already held (a second
    /// copy of an entry in hand: drop it).
    fn hold(&self, stream: &Arc<str>, entry_id: &str) -> Option<Hold> {
        let key = (stream.clone(), entry_id.to_string());
        let mut held = self.lock();
        if held.contains_key(&key) {
            return None;
        }
        held.insert(key.clone(), None);
        Some(Hold {
            holds: self.clone(),
            key,
        })
    }

    /// The held entry ids not known to be lost, by stream.
    pub fn by_stream(&self) -> HashMap<Arc<str>, Vec<String>> {
        let mut out: HashMap<Arc<str>, Vec<String>> = HashMap::new();
        for ((stream, id), lost) in self.lock().iter() {
            if lost.is_none() {
                out.entry(stream.clone()).or_default().push(id.clone());
            }
        }
        out
    }

    /// The held entry ids of `stream` not known to be lost.
    pub fn of_stream(&self, stream: &str) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|((s, _), lost)| &**s == stream && lost.is_none())
            .map(|((_, id), _)| id.clone())
            .collect()
    }

    /// Notes that the held entry `entry_id` of `stream` is no longer this replica's.
    fn mark_lost(&self, stream: &Arc<str>, entry_id: &str, why: Lost) {
        if let Some(lost) = self.lock().get_mut(&(stream.clone(), entry_id.to_string())) {
            *lost = Some(why);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A hold on one entry; dropping it ends the hold.
#[derive(Debug)]
pub struct Hold {
    holds: Holds,
    key: (Arc<str>, String),
}

impl Hold {
    /// Why the entry is no longer this replica's, once the keep-alive found out.
    pub fn lost(&self) -> Option<Lost> {
        self.holds.lock().get(&self.key).copied().flatten()
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.holds.lock().remove(&self.key);
    }
}

impl Delivery {
    /// A delivery of `job` as a first read of stream entry `entry_id` would give it: for
    /// tools and tests that settle a job they did not read from a lane.
    pub fn of_job(keys: &Keys, job: &Job, entry_id: &str) -> Delivery {
        Delivery {
            lane: job.lane(),
            tenant: Arc::from(job.tenant()),
            stream: Arc::from(keys.lane_of(job.lane(), job.tenant())),
            entry_id: entry_id.to_string(),
            job: Ok(job.clone()),
            deliveries: 1,
            taken_at: Instant::now(),
            hold: None,
            token: None,
            record: RecordWrite::Whole,
        }
    }
}

/// An entry that is not a job.
#[derive(Debug, Clone)]
pub struct BadEntry {
    /// The entry's shape, kept in the dead letter: its keys, never its values
    /// ([`redact_raw`]: it may hold an OTP's code).
    pub raw: String,
    /// Why it does not decode, without the values serde would quote.
    pub detail: String,
}

impl BadEntry {
    /// Why it is dead-lettered.
    pub fn reason(&self) -> DeadReason {
        DeadReason::Undecodable {
            detail: self.detail.clone(),
        }
    }
}

/// Reads and claims lane entries for one consumer of the group. Built once per replica by
/// the dispatcher; cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct LaneReader {
    /// The replica's Redis pool (shared with the limiter and the settler).
    pool: Pool,
    keys: Keys,
    /// The keys of the keep-alive's script, made once.
    settle_keys: SettleKeys,
    /// This replica's name in the group: what it reads and claims as.
    consumer: String,
    /// What this replica holds; every delivery it returns carries a hold.
    holds: Holds,
    /// The tenants that do not weigh 1 (`--tenant-weights`).
    tenant_weights: Arc<[(String, u32)]>,
    /// Per lane, the last ids of its bell and of its own stream as this replica last saw
    /// them: it blocks from there when idle.
    bells: Arc<Mutex<HashMap<Lane, [String; 2]>>>,
    /// The lanes on which other tenants than the default had streams at this replica's last
    /// look: read with the turns script until a read finds the lane drained. The others are
    /// read straight off their own stream ([`lanes::read_solo`]).
    shared: Arc<Mutex<HashSet<Lane>>>,
}

impl LaneReader {
    pub fn new(pool: Pool, keys: Keys, consumer: String) -> Self {
        LaneReader {
            pool,
            settle_keys: SettleKeys::new(&keys),
            keys,
            consumer,
            holds: Holds::default(),
            tenant_weights: Arc::from(Vec::new()),
            bells: Arc::default(),
            shared: Arc::default(),
        }
    }

    /// Tenants served in turn by these weights (unlisted tenants weigh 1).
    pub fn with_tenant_weights(mut self, weights: Vec<(String, u32)>) -> Self {
        self.tenant_weights = Arc::from(weights);
        self
    }

    /// The entries this replica holds.
    pub fn holds(&self) -> &Holds {
        &self.holds
    }

    /// Resets the idle time of every entry this replica holds and still owns, so another
    /// replica's recovery never takes a live replica's job; marks and returns the held ids
    /// it no longer owns, with why: taken over (this process was paused), or gone (cancelled,
    /// settled, lost with Redis's data).
    pub async fn keep_alive(&self) -> Result<Vec<(String, Lost)>, RedisFailure> {
        let mut lost = Vec::new();
        for (stream, ids) in self.holds.by_stream() {
            for (id, why) in self.touch(&stream, &ids).await? {
                self.holds.mark_lost(&stream, &id, why);
                lost.push((id, why));
            }
        }
        Ok(lost)
    }

    /// Whether this replica still owns `delivery`'s entry (touching it if so): checked
    /// right before a send that waited.
    pub async fn still_mine(&self, delivery: &Delivery) -> Result<bool, RedisFailure> {
        let lost = self
            .touch(&delivery.stream, std::slice::from_ref(&delivery.entry_id))
            .await?;
        Ok(lost.is_empty())
    }

    async fn touch(
        &self,
        stream: &str,
        ids: &[String],
    ) -> Result<Vec<(String, Lost)>, RedisFailure> {
        let call = self.settle_keys.touch(stream, &self.consumer, ids);
        Ok(decode_touch(
            &call.invoke(&mut self.pool.get().await?).await?,
        )?)
    }

    /// Deliveries with a hold each; an entry already held (a second copy) is left out.
    fn held(&self, deliveries: Vec<Delivery>) -> Vec<Delivery> {
        deliveries
            .into_iter()
            .filter_map(|mut d| {
                d.hold = Some(self.holds.hold(&d.stream, &d.entry_id)?);
                Some(d)
            })
            .collect()
    }

    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Creates the group on every lane's own stream (the default tenant's; from the start of
    /// each stream) if missing; a tenant's stream gets it when its first job comes. Called at
    /// start and again on `NOGROUP`, which a Redis that lost its data answers.
    pub async fn ensure_groups(&self) -> Result<(), RedisFailure> {
        let mut conn = self.pool.get().await?;
        for lane in Lane::ALL {
            // Looked up first (a read): a Redis at its memory limit refuses XGROUP CREATE even
            // for a group that exists, and a replica restarted then must still start.
            let groups: Result<Vec<HashMap<String, Value>>, RedisError> = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(self.keys.lane(lane))
                .query_async(&mut conn)
                .await;
            let exists = groups.is_ok_and(|groups| {
                groups.iter().any(|g| {
                    g.get("name")
                        .and_then(|name| redis::from_redis_value::<String>(name.clone()).ok())
                        .is_some_and(|name| name == WORKER_GROUP)
                })
            });
            if exists {
                continue;
            }
            let created: Result<(), RedisError> = conn
                .xgroup_create_mkstream(self.keys.lane(lane), WORKER_GROUP, "0")
                .await;
            match created {
                Ok(()) => {}
                Err(err) if err.code() == Some("BUSYGROUP") => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// New entries of `lane`, without waiting, tenants in turn: straight off the lane's own
    /// stream while no other tenant has one ([`lanes::read_solo`]), else with the turns
    /// script.
    pub async fn read_now(&self, lane: Lane, count: usize) -> Result<Vec<Delivery>, RedisFailure> {
        if !self.is_shared(lane) {
            let pipe = lanes::read_solo(&self.keys, lane, &self.consumer, count);
            let reply: Value = pipe.query_async(&mut self.pool.get().await?).await?;
            // `None`: the group is gone (Redis lost its data): the script makes it again.
            if let Some(SoloRead { shared, read }) = SoloRead::decode(&reply)? {
                if shared {
                    self.set_shared(lane, true);
                }
                match read {
                    Read::Entries(entries) => return Ok(self.deliveries(lane, entries)),
                    Read::Nothing { bell, lane: last } if !shared => {
                        self.set_bells(lane, bell, last);
                        return Ok(Vec::new());
                    }
                    // Nothing on the default tenant's stream, and other tenants to read.
                    Read::Nothing { .. } => {}
                }
            }
        }
        let call = lanes::read(
            &self.keys,
            lane,
            &self.consumer,
            count,
            &self.tenant_weights,
        );
        let reply = call.invoke(&mut self.pool.get().await?).await?;
        match Read::decode(&reply)? {
            Read::Entries(entries) => Ok(self.deliveries(lane, entries)),
            Read::Nothing { bell, lane: last } => {
                // Drained: the next read looks again whether other tenants have streams.
                self.set_shared(lane, false);
                self.set_bells(lane, bell, last);
                Ok(Vec::new())
            }
        }
    }

    /// The deliveries of `entries` read from `lane`, held by this replica.
    fn deliveries(&self, lane: Lane, entries: Vec<Entry>) -> Vec<Delivery> {
        self.held(
            entries
                .into_iter()
                .map(|entry| self.delivery(lane, entry))
                .collect(),
        )
    }

    fn set_bells(&self, lane: Lane, bell: String, last: String) {
        self.bells
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(lane, [bell, last]);
    }

    fn is_shared(&self, lane: Lane) -> bool {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&lane)
    }

    fn set_shared(&self, lane: Lane, shared: bool) {
        let mut lanes = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if shared {
            lanes.insert(lane);
        } else {
            lanes.remove(&lane);
        }
    }

    /// New entries of the lanes, `count` at most, OTPs first; when there are none, waits up
    /// to `block` for a lane's bell to ring (a tenant came to have jobs) or a lane's own
    /// stream to grow (a producer of an earlier release does not ring), then reads again.
    pub async fn read_blocking(
        &self,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, RedisFailure> {
        let mut out = self.read_lanes(count).await?;
        if !out.is_empty() {
            return Ok(out);
        }
        let (keys, ids): (Vec<String>, Vec<String>) = {
            let bells = self.bells.lock().unwrap_or_else(|e| e.into_inner());
            Lane::ALL
                .iter()
                .flat_map(|&lane| {
                    let [bell, last] = bells
                        .get(&lane)
                        .cloned()
                        .unwrap_or_else(|| ["$".to_string(), "$".to_string()]);
                    [
                        (self.keys.lane_bell(lane), bell),
                        (self.keys.lane(lane), last),
                    ]
                })
                .unzip()
        };
        let options = redis::streams::StreamReadOptions::default()
            .count(1)
            .block(block.as_millis() as usize);
        let mut conn = self.pool.get().await?;
        let _: Option<StreamReadReply> = conn.xread_options(&keys, &ids, &options).await?;
        drop(conn);
        out = self.read_lanes(count).await?;
        Ok(out)
    }

    /// Up to `count` new entries, reading the lanes in order (OTPs first).
    async fn read_lanes(&self, count: usize) -> Result<Vec<Delivery>, RedisFailure> {
        let mut out = Vec::new();
        for lane in Lane::ALL {
            if out.len() >= count {
                break;
            }
            out.extend(self.read_now(lane, count - out.len()).await?);
        }
        Ok(out)
    }

    /// Takes over entries of `lane` that have sat unacknowledged for `min_idle`, with their
    /// delivery counts, on every tenant's stream: their consumer died, hung or was paused. A
    /// live replica keeps its holds alive ([`Self::keep_alive`]), so its entries never
    /// qualify; this replica's own holds are touched first, so it never claims from itself
    /// what it holds.
    pub async fn claim_stale(
        &self,
        lane: Lane,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>, RedisFailure> {
        self.keep_alive().await?;
        let mut cursor = "0".to_string();
        let mut out = Vec::new();
        loop {
            let call = lanes::claim(
                &self.keys,
                lane,
                &self.consumer,
                min_idle.as_millis() as u64,
                count.saturating_sub(out.len()).max(1),
                &cursor,
            );
            let reply = call.invoke(&mut self.pool.get().await?).await?;
            let Claimed {
                cursor: next,
                entries,
            } = Claimed::decode(&reply)?;
            out.extend(entries.into_iter().map(|entry| self.delivery(lane, entry)));
            if next == "0" || out.len() >= count {
                break;
            }
            cursor = next;
        }
        Ok(self.held(out))
    }

    /// The delivery of `entry`, read or claimed on `lane`.
    fn delivery(&self, lane: Lane, entry: Entry) -> Delivery {
        let job = match &entry.job {
            Some(bytes) => Job::from_json(bytes).map_err(|err| BadEntry {
                raw: redact_raw(&String::from_utf8_lossy(bytes)),
                detail: err.without_values(),
            }),
            None => Err(BadEntry {
                raw: format!("{:?}", entry.fields),
                detail: format!("the entry has no {JOB_FIELD:?} field"),
            }),
        };
        Delivery {
            lane,
            stream: Arc::from(self.keys.lane_of(lane, &entry.tenant)),
            tenant: Arc::from(entry.tenant),
            entry_id: entry.id,
            job,
            deliveries: entry.deliveries,
            taken_at: Instant::now(),
            hold: None,
            token: None,
            record: RecordWrite::Whole,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the suite: an OTP and a booking enqueued in the same millisecond have the
    /// same stream id in their own lanes; the booking was dropped as a second copy.
    #[test]
    fn the_same_id_on_both_lanes_is_two_holds_and_a_second_copy_is_none() {
        let holds = Holds::default();
        let (otps, bookings): (Arc<str>, Arc<str>) =
            (Arc::from("lane:otp"), Arc::from("lane:booking"));
        let otp = holds.hold(&otps, "1-0").expect("held");
        let booking = holds
            .hold(&bookings, "1-0")
            .expect("another lane, another entry");
        assert!(holds.hold(&otps, "1-0").is_none(), "a second copy");
        assert_eq!(holds.len(), 2);
        assert_eq!(holds.of_stream("lane:booking"), ["1-0"]);
        drop(otp);
        assert_eq!(holds.of_stream("lane:otp"), Vec::<String>::new());
        drop(booking);
        assert!(holds.is_empty());
    }

    /// A lane only the default tenant uses is read straight off its stream, no script; once
    /// another tenant has a stream on it, that tenant's jobs are read by the next read at the
    /// latest, and reads take the tenants in turn (the script) until the lane is drained.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lane_of_the_default_tenant_alone_is_read_without_the_script_and_a_new_tenant_soon() {
        use herald_shared::job::Tenant;
        use herald_shared::redis_pool::Target;
        use herald_store::calls::enqueue;
        use herald_tests::scenario::{SandboxSetup, Scenario, otp, phone};

        let mut s = Scenario::start(SandboxSetup::default()).await;
        let pool = Target::single(s.redis.url()).pool(2).unwrap();
        let reader = LaneReader::new(pool, s.keys.clone(), "reader".to_string());
        reader.ensure_groups().await.unwrap();

        let defaults: Vec<Job> = (0..3)
            .map(|i| otp(&phone(i), Duration::from_secs(600)))
            .collect();
        s.enqueue(&defaults).await;
        let () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut s.conn)
            .await
            .unwrap();
        let read = reader.read_now(Lane::Otp, 2).await.unwrap();
        assert_eq!(read.len(), 2);
        assert!(read.iter().all(|d| &*d.tenant == Tenant::DEFAULT));
        assert_eq!(
            herald_tests::script_calls(&mut s.conn).await,
            0,
            "read without a script"
        );

        let now = time::OffsetDateTime::now_utc();
        let mut acme = Vec::new();
        for i in 10..12 {
            let mut job = otp(&phone(i), Duration::from_secs(600));
            job.tenant = Some(Tenant::parse("tenant", "acme").unwrap());
            let _: redis::Value = enqueue::enqueue(&s.keys, &job, 86_400_000, now, None)
                .invoke(&mut s.conn)
                .await
                .unwrap();
            acme.push(job.id);
        }
        // The default tenant has a backlog the next reads could fill alone.
        let backlog: Vec<Job> = (20..50)
            .map(|i| otp(&phone(i), Duration::from_secs(600)))
            .collect();
        s.enqueue(&backlog).await;
        // This read takes the default tenant's jobs and finds that acme has a stream now...
        let first = reader.read_now(Lane::Otp, 10).await.unwrap();
        assert_eq!(first.len(), 10);
        // ... and the next one takes the tenants in turn: acme's jobs are in it.
        let second = reader.read_now(Lane::Otp, 10).await.unwrap();
        let tenants = |read: &[Delivery]| -> Vec<String> {
            read.iter().map(|d| d.tenant.to_string()).collect()
        };
        assert_eq!(tenants(&first), vec![Tenant::DEFAULT; 10]);
        let read: Vec<uuid::Uuid> = second.iter().map(|d| d.job.as_ref().unwrap().id).collect();
        assert!(
            acme.iter().all(|id| read.contains(id)),
            "{:?}",
            tenants(&second)
        );
        assert!(
            herald_tests::script_calls(&mut s.conn).await > 0,
            "read in turn"
        );
        while !reader.read_now(Lane::Otp, 10).await.unwrap().is_empty() {}
        assert!(!reader.is_shared(Lane::Otp), "drained: looked at again");
    }
}
