//! Where every job is, per lane and in total, read from Redis at one moment: what
//! `herald-worker status` renders, the dashboard shows and the workers' queue gauges report.
//!
//! - `ready`: on the lane (any tenant's stream), not yet delivered to a worker;
//! - `oldest_ms`: how long the oldest ready job has waited, ms (0: none ready);
//! - `pending`: delivered, not yet settled (being sent, or held by a dead replica);
//! - `scheduled`: waiting for its `send_at`;
//! - `delayed`: waiting for a retry;
//! - `dead`: dead-lettered;
//! - `sent`: sent since the namespace was created;
//! - `cancelled`: cancelled or superseded before their send began, since then;
//! - `delivered`, `read`, `revoked`: sent messages Interakt reported so, as the webhook
//!   processor recorded them (each message counted once per milestone).
//!
//! Settled entries are deleted from the lane, so `ready = XLEN - pending`, summed over the
//! lane's tenants (`backlog.lua`, one atomic read); `tenants` lists the [`TOP_TENANTS`]
//! with the most ready jobs. It also shows
//! Redis's `maxmemory-policy`, which must be `noeviction` (`null` when Redis refuses
//! `CONFIG GET`).

use std::collections::BTreeMap;

use crate::Keys;
use crate::calls::inspect::{self, Backlog};
use crate::keys::Stat;
use deadpool_redis::redis::AsyncCommands;
use herald_shared::Lane;
use herald_shared::memory_policy::MemoryPolicies;
use herald_shared::redis_pool::Pool;
use serde::Serialize;
use time::OffsetDateTime;

use herald_shared::redis_pool::RedisFailure;

/// How many tenants `status` lists: those with the most ready jobs.
pub const TOP_TENANTS: usize = 20;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub ready: u64,
    /// Since the oldest ready job was added, ms (0: none ready).
    pub oldest_ms: u64,
    /// Since the oldest job ready or pending was added, ms: the queue-age gauge's reading.
    #[serde(skip)]
    pub oldest_unsettled_ms: u64,
    pub pending: u64,
    pub scheduled: u64,
    pub delayed: u64,
    pub dead: u64,
    pub sent: u64,
    pub cancelled: u64,
    pub delivered: u64,
    pub read: u64,
    pub revoked: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.ready += other.ready;
        self.oldest_ms = self.oldest_ms.max(other.oldest_ms);
        self.oldest_unsettled_ms = self.oldest_unsettled_ms.max(other.oldest_unsettled_ms);
        self.pending += other.pending;
        self.delayed += other.delayed;
        self.scheduled += other.scheduled;
        self.cancelled += other.cancelled;
        self.dead += other.dead;
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.read += other.read;
        self.revoked += other.revoked;
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Consumer {
    pub name: String,
    /// Milliseconds since its last heartbeat.
    pub last_seen_ms: u64,
    /// Entries delivered to it and not yet settled, over both lanes (in its hand or being
    /// sent).
    pub in_hand: u64,
    /// Jobs it sent since it started (as of its last heartbeat).
    pub sent: u64,
}

/// The shared budget as the workers last left it (`null` before any worker asked for a
/// token).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// The plan's N per window (`--rate`).
    pub configured: u32,
    /// N after 429 episodes halved it (it grows back each clean window).
    pub effective: u32,
    /// The shared pause after a 429 still to run, in ms (0: none).
    pub cooldown_ms: u64,
    /// When the pacing lets the next request go, in ms from now (0: now).
    pub next_token_in_ms: u64,
    /// Tokens of each window kept for OTPs (`--otp-reserve`).
    pub otp_reserve: u32,
    /// Tokens of each window OTPs leave to waiting bookings (`--booking-share`).
    pub booking_share: u32,
    /// The cool-down in force outlasts the next probe: one replica at a time sends one
    /// request every `--probe-interval`, and its 2xx ends the pause for every replica.
    pub probing: bool,
}

/// A tenant's ready jobs on one lane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantBacklog {
    pub tenant: String,
    pub lane: String,
    pub ready: u64,
    /// Since its oldest ready job was added, ms.
    pub oldest_ms: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Status {
    #[serde(flatten)]
    pub total: Counts,
    pub lanes: BTreeMap<String, Counts>,
    /// The [`TOP_TENANTS`] tenants with the most ready jobs, largest first (a tenant once per
    /// lane it has jobs on).
    pub tenants: Vec<TenantBacklog>,
    /// Consumers that sent a heartbeat in the last 15 s, with what they hold and sent.
    pub consumers: Vec<Consumer>,
    pub budget: Option<Budget>,
    /// Redis's `maxmemory-policy` (`null` when Redis refused to say).
    pub maxmemory_policy: Option<String>,
    /// The policy for people: `noeviction`, a warning, or why it could not be checked.
    pub maxmemory_policy_note: String,
}

pub async fn collect(pool: &Pool, keys: &Keys) -> Result<Status, RedisFailure> {
    let mut conn = pool.get().await?;
    let mut total = Counts::default();
    let mut lanes = BTreeMap::new();
    let reply: deadpool_redis::redis::Value = inspect::backlog(keys, TOP_TENANTS)
        .invoke(&mut conn)
        .await?;
    let backlog = Backlog::decode(&reply)?;
    let in_hand: BTreeMap<String, u64> = backlog.in_hand.iter().cloned().collect();
    for lane in Lane::ALL {
        let read = backlog.lane(lane);
        let fields: Vec<String> = [
            Stat::Sent,
            Stat::Delivered,
            Stat::Read,
            Stat::Revoked,
            Stat::Cancelled,
        ]
        .iter()
        .map(|stat| stat.field(lane))
        .collect();
        let stats: Vec<Option<u64>> = deadpool_redis::redis::cmd("HMGET")
            .arg(keys.stats())
            .arg(&fields)
            .query_async(&mut conn)
            .await?;
        let stat = |i: usize| stats.get(i).copied().flatten().unwrap_or(0);
        let counts = Counts {
            ready: read.ready,
            oldest_ms: read.oldest_ready_ms,
            oldest_unsettled_ms: read.oldest_ms,
            pending: read.pending,
            scheduled: conn.zcard(keys.scheduled(lane)).await?,
            delayed: conn.zcard(keys.delayed(lane)).await?,
            dead: conn.zcard(keys.dead_index(lane)).await?,
            sent: stat(0),
            delivered: stat(1),
            read: stat(2),
            revoked: stat(3),
            cancelled: stat(4),
        };
        total.add(&counts);
        lanes.insert(lane.to_string(), counts);
    }
    let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let beats: Vec<(String, i64)> = conn
        .zrangebyscore_withscores(keys.consumers(), now_ms - 15_000, "+inf")
        .await?;
    let sends: Vec<Option<u64>> = if beats.is_empty() {
        Vec::new()
    } else {
        deadpool_redis::redis::cmd("HMGET")
            .arg(keys.consumer_sends())
            .arg(beats.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .query_async(&mut conn)
            .await?
    };
    let consumers = beats
        .into_iter()
        .zip(sends.into_iter().chain(std::iter::repeat(None)))
        .map(|((name, at), sent)| Consumer {
            in_hand: in_hand.get(&name).copied().unwrap_or(0),
            sent: sent.unwrap_or(0),
            last_seen_ms: now_ms.saturating_sub(at).max(0) as u64,
            name,
        })
        .collect();
    let budget = budget(&mut conn, keys).await?;
    let policy = MemoryPolicies::read(&mut conn).await?;
    let tenants = backlog
        .tenants
        .into_iter()
        .map(|t| TenantBacklog {
            tenant: t.tenant,
            lane: t.lane.to_string(),
            ready: t.ready,
            oldest_ms: t.oldest_ms,
        })
        .collect();
    Ok(Status {
        total,
        lanes,
        tenants,
        consumers,
        budget,
        maxmemory_policy: policy.policy().map(str::to_string),
        maxmemory_policy_note: policy.describe(),
    })
}

/// The budget's state, read at one instant of Redis's clock.
async fn budget(
    conn: &mut herald_shared::redis_pool::Connection,
    keys: &Keys,
) -> Result<Option<Budget>, RedisFailure> {
    let (fields, cooldown_ms, (secs, micros)): (Vec<Option<u64>>, i64, (u64, u64)) =
        deadpool_redis::redis::pipe()
            .cmd("HMGET")
            .arg(keys.rate_state())
            .arg(&[
                "configured",
                "effective",
                "tat",
                "reserve",
                "share",
                "probe_at",
            ])
            .cmd("PTTL")
            .arg(keys.cooldown())
            .cmd("TIME")
            .query_async(conn)
            .await?;
    let field = |i: usize| fields.get(i).copied().flatten();
    let Some(configured) = field(0) else {
        return Ok(None);
    };
    let now_us = secs * 1_000_000 + micros;
    let cooldown_ms = cooldown_ms.max(0) as u64;
    let pause_ends_us = now_us.saturating_add(cooldown_ms.saturating_mul(1000));
    Ok(Some(Budget {
        configured: configured as u32,
        effective: field(1).unwrap_or(configured) as u32,
        cooldown_ms,
        next_token_in_ms: field(2).unwrap_or(0).saturating_sub(now_us) / 1000,
        otp_reserve: field(3).unwrap_or(0) as u32,
        booking_share: field(4).unwrap_or(0) as u32,
        probing: cooldown_ms > 0 && field(5).is_some_and(|probe_at| probe_at < pause_ends_us),
    }))
}
