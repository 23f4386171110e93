//! `herald-worker status`: where every job is, per lane and in total.
//!
//! - `ready`: on the lane, not yet delivered to a worker;
//! - `pending`: delivered, not yet settled (being sent, or held by a dead replica);
//! - `scheduled`: waiting for its `send_at`;
//! - `delayed`: waiting for a retry;
//! - `dead`: dead-lettered;
//! - `sent`: sent since the namespace was created;
//! - `cancelled`: cancelled or superseded before their send began, since then;
//! - `delivered`, `read`, `revoked`: sent messages Interakt reported so, as the webhook
//!   processor recorded them (each message counted once per milestone).
//!
//! Settled entries are deleted from the lane, so `ready = XLEN - pending`. It also shows
//! Redis's `maxmemory-policy`, which must be `noeviction` (`null` when Redis refuses
//! `CONFIG GET`).

use std::collections::BTreeMap;

use deadpool_redis::redis::streams::StreamPendingReply;
use deadpool_redis::redis::{AsyncCommands, RedisError};
use herald_shared::Lane;
use herald_shared::memory_policy::MemoryPolicies;
use herald_shared::redis_pool::Pool;
use herald_store::Keys;
use herald_store::keys::{Stat, WORKER_GROUP};
use serde::Serialize;
use time::OffsetDateTime;

use herald_shared::redis_pool::RedisFailure;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub ready: u64,
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

#[derive(Clone, Debug, Serialize)]
pub struct Status {
    #[serde(flatten)]
    pub total: Counts,
    pub lanes: BTreeMap<String, Counts>,
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
    let mut in_hand: BTreeMap<String, u64> = BTreeMap::new();
    for lane in Lane::ALL {
        let stream = keys.lane(lane);
        let len: u64 = conn.xlen(&stream).await?;
        let pending: Result<StreamPendingReply, RedisError> =
            conn.xpending(&stream, WORKER_GROUP).await;
        let pending = match pending {
            Ok(StreamPendingReply::Data(data)) => {
                for consumer in &data.consumers {
                    *in_hand.entry(consumer.name.clone()).or_default() += consumer.pending as u64;
                }
                data.count as u64
            }
            Ok(reply) => reply.count() as u64,
            Err(err) if err.code() == Some("NOGROUP") => 0,
            Err(err) => return Err(err.into()),
        };
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
            ready: len.saturating_sub(pending),
            pending,
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
    Ok(Status {
        total,
        lanes,
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

/// The human-readable table.
pub fn render(status: &Status) -> String {
    let mut out = format!(
        "{:<10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n",
        "lane",
        "ready",
        "pending",
        "scheduled",
        "delayed",
        "dead",
        "sent",
        "delivered",
        "read",
        "revoked",
        "cancelled"
    );
    let row = |name: &str, c: &Counts| {
        format!(
            "{name:<10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n",
            c.ready,
            c.pending,
            c.scheduled,
            c.delayed,
            c.dead,
            c.sent,
            c.delivered,
            c.read,
            c.revoked,
            c.cancelled
        )
    };
    for (lane, counts) in &status.lanes {
        out.push_str(&row(lane, counts));
    }
    out.push_str(&row("total", &status.total));
    if let Some(b) = &status.budget {
        out.push_str(&format!(
            "\nbudget: {} of {} per window (OTP reserve {}, bookings' share {}); next token in {} ms{}\n",
            b.effective,
            b.configured,
            b.otp_reserve,
            b.booking_share,
            b.next_token_in_ms,
            if b.cooldown_ms > 0 {
                let probing = if b.probing { ", probing" } else { "" };
                format!("; cooling down after a 429 for {} ms{probing}", b.cooldown_ms)
            } else {
                String::new()
            }
        ));
    }
    let warning = match &status.maxmemory_policy {
        Some(policy) if policy != herald_shared::memory_policy::REQUIRED => "WARNING: ",
        _ => "",
    };
    out.push_str(&format!(
        "\n{warning}redis maxmemory-policy: {}\n",
        status.maxmemory_policy_note
    ));
    out.push_str(&format!("\nconsumers alive: {}\n", status.consumers.len()));
    for consumer in &status.consumers {
        out.push_str(&format!(
            "  {} (seen {} ms ago, {} in hand, {} sent)\n",
            consumer.name, consumer.last_seen_ms, consumer.in_hand, consumer.sent
        ));
    }
    out
}
