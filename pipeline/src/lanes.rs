//! Reading jobs off the lanes: the consumer group, OTP-first reads, and recovery of jobs a
//! dead replica left pending.
//!
//! Every read is through the `workers` consumer group, so an entry stays in the group's
//! pending list until it is settled ([`crate::settle`]); a replica that dies holding it
//! loses nothing. This module only reads and claims; it never acknowledges.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_redis::redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamPendingCountReply,
    StreamReadOptions, StreamReadReply,
};
use deadpool_redis::redis::{self, AsyncCommands, RedisError, Value};
use herald_shared::redis_pool::Pool;
use herald_shared::{Job, Lane};
use herald_store::Keys;
use herald_store::dead_letter::{DeadReason, redact_raw};
use herald_store::keys::{JOB_FIELD, WORKER_GROUP};
use tokio::time::Instant;

use crate::limiter::Token;

/// A Redis failure while reading or settling: the caller backs off and tries again.
pub use herald_shared::redis_pool::RedisFailure;

use herald_store::calls::settle::{Lost, SettleKeys, decode_touch};

/// One entry delivered to this replica.
#[derive(Debug)]
pub struct Delivery {
    pub lane: Lane,
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
}

/// The entries this replica holds (in hand, or being sent), by lane and id: what the
/// keep-alive touches so that no other replica takes them over while they wait here, and
/// which of them it found lost. Shared by the reader (which adds), every [`Hold`] (which
/// removes itself on drop) and the keep-alive (which marks lost ones, for the dispatcher to
/// drop from its hand before it asks a token for them). Stream ids are per stream, so two
/// lanes can hold the same id: the lane is part of the key.
#[derive(Clone, Debug, Default)]
pub struct Holds(Arc<Mutex<Held>>);

/// Each held entry (lane and id), and why it is no longer this replica's once known.
type Held = HashMap<(Lane, String), Option<Lost>>;

impl Holds {
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a hold on `entry_id` of `lane`; `None` if it is already held (a second copy
    /// of an entry in hand: drop it).
    fn hold(&self, lane: Lane, entry_id: &str) -> Option<Hold> {
        let key = (lane, entry_id.to_string());
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

    /// The held entry ids of `lane` not known to be lost.
    pub fn of_lane(&self, lane: Lane) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|((l, _), lost)| *l == lane && lost.is_none())
            .map(|((_, id), _)| id.clone())
            .collect()
    }

    /// Notes that the held entry `entry_id` of `lane` is no longer this replica's.
    fn mark_lost(&self, lane: Lane, entry_id: &str, why: Lost) {
        if let Some(lost) = self.lock().get_mut(&(lane, entry_id.to_string())) {
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
    key: (Lane, String),
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
    pub fn of_job(job: &Job, entry_id: &str) -> Delivery {
        Delivery {
            lane: job.lane(),
            entry_id: entry_id.to_string(),
            job: Ok(job.clone()),
            deliveries: 1,
            taken_at: Instant::now(),
            hold: None,
            token: None,
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
}

impl LaneReader {
    pub fn new(pool: Pool, keys: Keys, consumer: String) -> Self {
        LaneReader {
            pool,
            settle_keys: SettleKeys::new(&keys),
            keys,
            consumer,
            holds: Holds::default(),
        }
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
        for lane in Lane::ALL {
            let ids = self.holds.of_lane(lane);
            if !ids.is_empty() {
                for (id, why) in self.touch(lane, &ids).await? {
                    self.holds.mark_lost(lane, &id, why);
                    lost.push((id, why));
                }
            }
        }
        Ok(lost)
    }

    /// Whether this replica still owns `delivery`'s entry (touching it if so): checked
    /// right before a send that waited.
    pub async fn still_mine(&self, delivery: &Delivery) -> Result<bool, RedisFailure> {
        let lost = self
            .touch(delivery.lane, std::slice::from_ref(&delivery.entry_id))
            .await?;
        Ok(lost.is_empty())
    }

    async fn touch(&self, lane: Lane, ids: &[String]) -> Result<Vec<(String, Lost)>, RedisFailure> {
        let call = self.settle_keys.touch(lane, &self.consumer, ids);
        Ok(decode_touch(
            &call.invoke(&mut self.pool.get().await?).await?,
        )?)
    }

    /// Deliveries with a hold each; an entry already held (a second copy) is left out.
    fn held(&self, deliveries: Vec<Delivery>) -> Vec<Delivery> {
        deliveries
            .into_iter()
            .filter_map(|mut d| {
                d.hold = Some(self.holds.hold(d.lane, &d.entry_id)?);
                Some(d)
            })
            .collect()
    }

    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Creates the group on both lanes (from the start of each stream) if missing. Called at
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

    /// New entries of `lane`, without waiting.
    pub async fn read_now(&self, lane: Lane, count: usize) -> Result<Vec<Delivery>, RedisFailure> {
        self.read(&[lane], count, None).await
    }

    /// New entries of any lane, waiting up to `block` for one to arrive. OTP entries come first.
    pub async fn read_blocking(
        &self,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, RedisFailure> {
        self.read(&Lane::ALL, count, Some(block)).await
    }

    async fn read(
        &self,
        lanes: &[Lane],
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Delivery>, RedisFailure> {
        let keys: Vec<String> = lanes.iter().map(|l| self.keys.lane(*l)).collect();
        let ids = vec![">"; keys.len()];
        let mut options = StreamReadOptions::default()
            .group(WORKER_GROUP, &self.consumer)
            .count(count);
        if let Some(block) = block {
            options = options.block(block.as_millis() as usize);
        }
        let mut conn = self.pool.get().await?;
        let reply: Result<Option<StreamReadReply>, RedisError> =
            conn.xread_options(&keys, &ids, &options).await;
        let reply = match reply {
            Err(err) if err.code() == Some("NOGROUP") => {
                drop(conn);
                tracing::warn!("consumer group missing (Redis lost its data?); recreating it");
                self.ensure_groups().await?;
                return Ok(Vec::new());
            }
            other => other?,
        };
        let mut out = Vec::new();
        for lane in lanes {
            let key = self.keys.lane(*lane);
            for stream in reply.iter().flat_map(|r| &r.keys).filter(|s| s.key == key) {
                out.extend(stream.ids.iter().map(|entry| delivery(*lane, entry, 1)));
            }
        }
        Ok(self.held(out))
    }

    /// Takes over entries of `lane` that have sat unacknowledged for `min_idle`, with their
    /// delivery counts: their consumer died, hung or was paused. A live replica keeps its
    /// holds alive ([`Self::keep_alive`]), so its entries never qualify; this replica's own
    /// holds are touched first, so it never claims from itself what it holds.
    pub async fn claim_stale(
        &self,
        lane: Lane,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>, RedisFailure> {
        let held = self.holds.of_lane(lane);
        if !held.is_empty() {
            self.touch(lane, &held).await?;
        }
        let key = self.keys.lane(lane);
        let mut conn = self.pool.get().await?;
        let options = StreamAutoClaimOptions::default().count(count);
        let reply: Result<StreamAutoClaimReply, RedisError> = conn
            .xautoclaim_options(
                &key,
                WORKER_GROUP,
                &self.consumer,
                min_idle.as_millis() as u64,
                "0-0",
                options,
            )
            .await;
        let reply = match reply {
            Err(err) if err.code() == Some("NOGROUP") => {
                drop(conn);
                self.ensure_groups().await?;
                return Ok(Vec::new());
            }
            other => other?,
        };
        if reply.claimed.is_empty() {
            return Ok(Vec::new());
        }
        // XAUTOCLAIM does not say how often each entry was delivered; XPENDING does.
        let first = &reply.claimed[0].id;
        let last = &reply.claimed[reply.claimed.len() - 1].id;
        let pending: StreamPendingCountReply = conn
            .xpending_consumer_count(
                &key,
                WORKER_GROUP,
                first,
                last,
                reply.claimed.len(),
                &self.consumer,
            )
            .await?;
        let counts: HashMap<&str, u64> = pending
            .ids
            .iter()
            .map(|p| (p.id.as_str(), p.times_delivered as u64))
            .collect();
        let claimed = reply
            .claimed
            .iter()
            .map(|entry| {
                delivery(
                    lane,
                    entry,
                    counts.get(entry.id.as_str()).copied().unwrap_or(1),
                )
            })
            .collect();
        Ok(self.held(claimed))
    }
}

fn delivery(lane: Lane, entry: &StreamId, deliveries: u64) -> Delivery {
    let job = match entry.map.get(JOB_FIELD) {
        Some(Value::BulkString(bytes)) => Job::from_json(&bytes[..]).map_err(|err| BadEntry {
            raw: redact_raw(&String::from_utf8_lossy(&bytes[..])),
            detail: err.without_values(),
        }),
        _ => Err(BadEntry {
            raw: format!("{:?}", entry.map.keys().collect::<Vec<_>>()),
            detail: format!("the entry has no {JOB_FIELD:?} field"),
        }),
    };
    Delivery {
        lane,
        entry_id: entry.id.clone(),
        job,
        deliveries,
        taken_at: Instant::now(),
        hold: None,
        token: None,
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
        let otp = holds.hold(Lane::Otp, "1-0").expect("held");
        let booking = holds
            .hold(Lane::Booking, "1-0")
            .expect("another lane, another entry");
        assert!(holds.hold(Lane::Otp, "1-0").is_none(), "a second copy");
        assert_eq!(holds.len(), 2);
        assert_eq!(holds.of_lane(Lane::Booking), ["1-0"]);
        drop(otp);
        assert_eq!(holds.of_lane(Lane::Otp), Vec::<String>::new());
        drop(booking);
        assert!(holds.is_empty());
    }
}
