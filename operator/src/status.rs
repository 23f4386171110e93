//! `herald-worker status`: where every job is, per lane and in total.
//!
//! - `ready`: on the lane, not yet delivered to a worker;
//! - `pending`: delivered, not yet settled (being sent, or held by a dead replica);
//! - `delayed`: waiting for a retry;
//! - `dead`: dead-lettered;
//! - `sent`: sent since the namespace was created;
//! - `delivered`, `read`, `revoked`: sent messages Interakt reported so, as the webhook
//!   processor recorded them (each message counted once per milestone).
//!
//! Settled entries are deleted from the lane, so `ready = XLEN - pending`.

use std::collections::BTreeMap;

use deadpool_redis::redis::streams::StreamPendingReply;
use deadpool_redis::redis::{AsyncCommands, RedisError};
use herald_shared::keys::{Stat, WORKER_GROUP};
use herald_shared::redis_pool::Pool;
use herald_shared::{Keys, Lane};
use serde::Serialize;
use time::OffsetDateTime;

use herald_shared::redis_pool::RedisFailure;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub ready: u64,
    pub pending: u64,
    pub delayed: u64,
    pub dead: u64,
    pub sent: u64,
    pub delivered: u64,
    pub read: u64,
    pub revoked: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.ready += other.ready;
        self.pending += other.pending;
        self.delayed += other.delayed;
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
}

#[derive(Clone, Debug, Serialize)]
pub struct Status {
    #[serde(flatten)]
    pub total: Counts,
    pub lanes: BTreeMap<String, Counts>,
    /// Consumers that sent a heartbeat in the last 15 s.
    pub consumers: Vec<Consumer>,
}

pub async fn collect(pool: &Pool, keys: &Keys) -> Result<Status, RedisFailure> {
    let mut conn = pool.get().await?;
    let mut total = Counts::default();
    let mut lanes = BTreeMap::new();
    for lane in Lane::ALL {
        let stream = keys.lane(lane);
        let len: u64 = conn.xlen(&stream).await?;
        let pending: Result<StreamPendingReply, RedisError> =
            conn.xpending(&stream, WORKER_GROUP).await;
        let pending = match pending {
            Ok(reply) => reply.count() as u64,
            Err(err) if err.code() == Some("NOGROUP") => 0,
            Err(err) => return Err(err.into()),
        };
        let fields: Vec<String> = [Stat::Sent, Stat::Delivered, Stat::Read, Stat::Revoked]
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
            ready: len.saturating_sub(pending),
            pending,
            delayed: conn.zcard(keys.delayed(lane)).await?,
            dead: conn.zcard(keys.dead_index(lane)).await?,
            sent: stat(0),
            delivered: stat(1),
            read: stat(2),
            revoked: stat(3),
        };
        total.add(&counts);
        lanes.insert(lane.to_string(), counts);
    }
    let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let beats: Vec<(String, i64)> = conn
        .zrangebyscore_withscores(keys.consumers(), now_ms - 15_000, "+inf")
        .await?;
    let consumers = beats
        .into_iter()
        .map(|(name, at)| Consumer {
            name,
            last_seen_ms: now_ms.saturating_sub(at).max(0) as u64,
        })
        .collect();
    Ok(Status {
        total,
        lanes,
        consumers,
    })
}

/// The human-readable table.
pub fn render(status: &Status) -> String {
    let mut out = format!(
        "{:<10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n",
        "lane", "ready", "pending", "delayed", "dead", "sent", "delivered", "read", "revoked"
    );
    let row = |name: &str, c: &Counts| {
        format!(
            "{name:<10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n",
            c.ready, c.pending, c.delayed, c.dead, c.sent, c.delivered, c.read, c.revoked
        )
    };
    for (lane, counts) in &status.lanes {
        out.push_str(&row(lane, counts));
    }
    out.push_str(&row("total", &status.total));
    out.push_str(&format!("\nconsumers alive: {}\n", status.consumers.len()));
    for consumer in &status.consumers {
        out.push_str(&format!(
            "  {} (seen {} ms ago)\n",
            consumer.name, consumer.last_seen_ms
        ));
    }
    out
}
