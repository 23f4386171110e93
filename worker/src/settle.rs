//! Settling a delivery: every way a job leaves a lane, each one atomic Lua script so a job
//! is always in exactly one place (the lane, the delayed set, the dead letters, or sent).
//! Each one also records the job's [`crate::timeline`] in the same script, so the timeline
//! never disagrees with where the job is.
//!
//! - [`Settler::begin_send`]: the last check before a send (ownership, already sent,
//!   cancelled, expired), where a cancel and the send path meet; marks the job `sending`.
//! - [`Settler::sent`]: record it as sent, then acknowledge and delete the entry.
//! - [`Settler::retry`]: park it in the lane's delayed set with its new attempt.
//! - [`Settler::dead`]: store the dead letter, then acknowledge and delete the entry.
//! - [`Settler::hand_back`]: put an unstarted job back on the lane (shutdown).
//! - [`Settler::drop_duplicate`]: acknowledge a redelivered copy of a job already sent.
//!
//! Every script checks, inside the script, that this replica still owns the entry (another
//! may have taken it over while this one was paused) and changes nothing otherwise
//! ([`Settled::NotOurs`]); a send's record is the exception: it is written whoever owns the
//! entry, so the new holder finds it and does not send again.

use std::time::Duration;

use deadpool_redis::redis::{AsyncCommands, Script};
use herald_shared::redis_pool::Pool;
use herald_shared::{Job, Lane};
use herald_store::Keys;
use herald_store::durability::Durability;
use herald_store::keys::{JOB_FIELD, SENT_MARKER_TTL_SECS, Stat, TIMELINE_TTL_SECS, WORKER_GROUP};
use herald_store::script::{Concat, ScriptCall};
use time::OffsetDateTime;

use crate::dead_letter::DeadLetter;
use crate::lanes::{Delivery, RedisFailure};
use crate::timeline;

use herald_store::scripts::{BEGIN_SEND, COMPLETE, DEAD, DROP_DUPLICATE, HAND_BACK, RETRY};

/// What the last check before a send found ([`Settler::begin_send`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BeginSend {
    /// The job's record says `sending` now: send it.
    Send,
    /// Already sent (a redelivered copy): Interakt's message id. Nothing changed.
    AlreadySent(String),
    /// Cancelled (or superseded) before its send began: acknowledged and deleted.
    Cancelled,
    /// Another replica owns the entry now: nothing changed.
    NotOurs,
    /// Past its deadline: to be dead-lettered as expired. Nothing changed.
    Expired,
}

pub use herald_store::timeline::UNKNOWN_MESSAGE_ID;

/// What a settle did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    Done,
    /// Another replica owns the entry now (it took it over while this one was paused):
    /// nothing was changed (for a send: recorded, not acknowledged). The owner settles it.
    NotOurs,
}

impl Settled {
    fn from_reply(reply: i64) -> Settled {
        if reply == 1 {
            Settled::Done
        } else {
            Settled::NotOurs
        }
    }
}

/// Settles deliveries. Built once per replica (the dispatcher's context holds it); cheap
/// to clone. Holds nothing but handles: dropping it settles nothing and loses nothing (an
/// unsettled entry stays pending for recovery).
#[derive(Clone)]
pub struct Settler {
    /// The replica's Redis pool (shared with the reader and the limiter). The checks and
    /// settles of the send path use its shared connection ([`Pool::shared`]): those of
    /// tasks that finish together go out and come back together, in a few round trips.
    pool: Pool,
    keys: Keys,
    /// The key names every settle uses, made once.
    fixed: FixedKeys,
    /// This replica's name in the group: the owner every script checks for.
    consumer: String,
    /// How many replicas must have a sent marker before the settle returns.
    durability: Durability,
}

impl Settler {
    pub fn new(pool: Pool, keys: Keys, consumer: String) -> Self {
        Settler {
            pool,
            fixed: FixedKeys::new(&keys),
            keys,
            consumer,
            durability: Durability::default(),
        }
    }

    /// Waits for `durability.min_replicas` replicas to have each sent marker.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Interakt's message id for a job already sent, if it was.
    pub async fn already_sent(&self, job_id: &str) -> Result<Option<String>, RedisFailure> {
        let mut conn = self.pool.get().await?;
        Ok(conn.get(self.keys.sent(job_id)).await?)
    }

    /// The last check before `job` is sent, one script (`store/src/lua/begin_send.lua`) and one round
    /// trip: still this replica's, not already sent, not cancelled, not past its deadline;
    /// then its record says `sending`, and a cancel from now on is too late.
    pub async fn begin_send(
        &self,
        delivery: &Delivery,
        job: &Job,
    ) -> Result<BeginSend, RedisFailure> {
        let job_id = job.id.to_string();
        let deadline = job.not_after.map_or(String::new(), |at| {
            herald_shared::schedule::unix_ms(at).to_string()
        });
        let (status, sent) = (self.keys.job_status(&job_id), self.keys.sent(&job_id));
        let mut call = ScriptCall::new(
            &BEGIN_SEND,
            [self.fixed.lane(delivery.lane), &status, &sent],
        );
        call.arg(WORKER_GROUP)
            .arg(&delivery.entry_id)
            .arg(&self.consumer)
            .arg(deadline);
        let mut conn = self.pool.shared().await?;
        let (code, detail): (i64, String) = call.invoke(&mut conn).await?;
        Ok(match code {
            0 => BeginSend::Send,
            1 => BeginSend::AlreadySent(detail),
            2 => BeginSend::Cancelled,
            4 => BeginSend::Expired,
            _ => BeginSend::NotOurs,
        })
    }

    /// Records `job` as sent as Interakt's `message_id` (its timeline and the message index
    /// included), then acknowledges and deletes the entry.
    pub async fn sent(
        &self,
        delivery: &Delivery,
        job: &Job,
        message_id: &str,
    ) -> Result<Settled, RedisFailure> {
        let job_id = job.id.to_string();
        let now = OffsetDateTime::now_utc();
        let keys = [
            self.fixed.lane(delivery.lane),
            &self.keys.sent(&job_id),
            &self.fixed.stats,
            &self.keys.job_status(&job_id),
            &self.keys.message(message_id),
        ];
        let call = self.charged_call(&COMPLETE, &keys, delivery, |call| {
            call.arg(WORKER_GROUP)
                .arg(&delivery.entry_id)
                .arg(message_id)
                .arg(SENT_MARKER_TTL_SECS)
                .arg(Stat::Sent.field(delivery.lane))
                .arg(&self.consumer)
                .arg(timeline::sent_fields(job, message_id, now))
                .arg(timeline::message_fields(job, message_id, now));
        });
        let reply: i64 = if self.durability.is_on() {
            // `WAIT` counts this connection's writes and blocks it: a connection of its own.
            let mut conn = self.pool.get().await?;
            let reply = call.invoke(&mut conn).await?;
            self.confirm_marker(&mut conn, &job_id).await;
            reply
        } else {
            call.invoke(&mut self.pool.shared().await?).await?
        };
        Ok(Settled::from_reply(reply))
    }

    /// With `--min-replicas`, waits (a few `WAIT`s) until enough replicas have the sent
    /// marker just written. The settle itself is done either way: a job sent cannot be
    /// unsent, so a marker still short of replicas is a warning (a failover now could make
    /// the job look unsent and send it again), never a retry of the send.
    async fn confirm_marker(&self, conn: &mut herald_shared::redis_pool::Connection, job_id: &str) {
        let mut last = None;
        for _ in 0..3 {
            match self.durability.confirm(conn, &self.keys).await {
                Ok(()) => return,
                Err(err) => last = Some(err),
            }
        }
        if let Some(err) = last {
            tracing::warn!(job = %job_id, error = %err, "the sent marker is not on enough replicas yet");
        }
    }

    /// Acknowledges a redelivered copy of a job that was already sent, without sending it.
    pub async fn drop_duplicate(&self, delivery: &Delivery) -> Result<Settled, RedisFailure> {
        let mut call = ScriptCall::new(&DROP_DUPLICATE, [self.fixed.lane(delivery.lane)]);
        call.arg(WORKER_GROUP)
            .arg(&delivery.entry_id)
            .arg(&self.consumer);
        let reply: i64 = call.invoke(&mut self.pool.shared().await?).await?;
        Ok(Settled::from_reply(reply))
    }

    /// `stat` is the counter to bump: [`Stat::Retried`] or [`Stat::RateLimited`].
    pub async fn retry(
        &self,
        delivery: &Delivery,
        job: &Job,
        delay: Duration,
        stat: Stat,
    ) -> Result<Settled, RedisFailure> {
        let due = OffsetDateTime::now_utc()
            .checked_add(time::Duration::try_from(delay).unwrap_or(time::Duration::MAX))
            .unwrap_or(OffsetDateTime::now_utc());
        let keys = [
            self.fixed.lane(delivery.lane),
            &self.keys.delayed(delivery.lane),
            &self.fixed.stats,
            &self.keys.job_status(&job.id.to_string()),
        ];
        let call = self.charged_call(&RETRY, &keys, delivery, |call| {
            call.arg(WORKER_GROUP)
                .arg(&delivery.entry_id)
                .arg(delay.as_millis() as u64)
                .arg(job.to_json())
                .arg(stat.field(delivery.lane))
                .arg(TIMELINE_TTL_SECS)
                .arg(&self.consumer)
                .arg(timeline::retry_fields(job, due));
        });
        let reply: i64 = call.invoke(&mut self.pool.shared().await?).await?;
        Ok(Settled::from_reply(reply))
    }

    pub async fn dead(
        &self,
        delivery: &Delivery,
        letter: &DeadLetter,
    ) -> Result<Settled, RedisFailure> {
        let json = serde_json::to_string(letter).expect("a dead letter serializes");
        let keys = [
            self.fixed.lane(delivery.lane),
            &self.keys.dead(),
            &self.keys.dead_index(delivery.lane),
            &self.fixed.stats,
            &self.keys.job_status(&letter.job_id),
            &self.keys.dead_codes(),
        ];
        let call = self.charged_call(&DEAD, &keys, delivery, |call| {
            call.arg(WORKER_GROUP)
                .arg(&delivery.entry_id)
                .arg(&letter.job_id)
                .arg(json)
                .arg(Stat::Dead.field(delivery.lane))
                .arg(TIMELINE_TTL_SECS)
                .arg(&self.consumer)
                .arg(code_kept_until(letter))
                .arg(timeline::dead_fields(letter));
        });
        let reply: i64 = call.invoke(&mut self.pool.shared().await?).await?;
        Ok(Settled::from_reply(reply))
    }

    /// A call of a settle script that may follow a send (built by [`after_send`]), in the
    /// order `store/src/lua/charge.lua`
    /// reads it: `keys`, then the shared log and the OTPs' log when `delivery` holds a token;
    /// the script's own arguments (`args`), then the charge, always last: `charge:<member>`,
    /// or empty without a token (nothing to charge), so it is never a field of the call's
    /// own. The charge re-scores the token's entry in the log to now, after the answer, so it
    /// leaves the window W after it.
    fn charged_call(
        &self,
        script: &'static Script,
        keys: &[&str],
        delivery: &Delivery,
        args: impl FnOnce(&mut ScriptCall),
    ) -> ScriptCall<'static> {
        let logs = [self.fixed.window.as_str(), self.fixed.window_otp.as_str()];
        let charged = if delivery.token.is_some() {
            &logs[..]
        } else {
            &[]
        };
        let mut call = ScriptCall::new(script, keys.iter().chain(charged).copied());
        args(&mut call);
        match &delivery.token {
            Some(token) => call.arg(Concat(&["charge:", token.member()])),
            None => call.arg(""),
        };
        call
    }

    pub async fn hand_back(
        &self,
        delivery: &Delivery,
        job_json: &str,
    ) -> Result<Settled, RedisFailure> {
        let mut call = ScriptCall::new(&HAND_BACK, [self.fixed.lane(delivery.lane)]);
        call.arg(WORKER_GROUP)
            .arg(&delivery.entry_id)
            .arg(job_json)
            .arg(JOB_FIELD)
            .arg(&self.consumer);
        let reply: i64 = call.invoke(&mut self.pool.get().await?).await?;
        Ok(Settled::from_reply(reply))
    }
}

/// The key names every settle uses, made once per replica.
#[derive(Clone)]
struct FixedKeys {
    otp_lane: String,
    booking_lane: String,
    stats: String,
    /// The shared log and the OTPs' log, charged after a send.
    window: String,
    window_otp: String,
}

impl FixedKeys {
    fn new(keys: &Keys) -> FixedKeys {
        FixedKeys {
            otp_lane: keys.lane(Lane::Otp),
            booking_lane: keys.lane(Lane::Booking),
            stats: keys.stats(),
            window: keys.rate_window(),
            window_otp: keys.rate_window_otp(),
        }
    }

    fn lane(&self, lane: Lane) -> &str {
        match lane {
            Lane::Otp => &self.otp_lane,
            Lane::Booking => &self.booking_lane,
        }
    }
}

/// The deadline (ms, Unix) of an OTP whose letter still keeps its code, or `""`.
fn code_kept_until(letter: &DeadLetter) -> String {
    letter
        .job
        .as_ref()
        .filter(|job| job.kind() == herald_shared::JobKind::Otp && !job.code_erased())
        .and_then(|job| job.not_after)
        .map(|deadline| (deadline.unix_timestamp_nanos() / 1_000_000).to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use herald_shared::redis_pool::Target;
    use herald_tests::scenario::{SandboxSetup, Scenario, otp, phone};
    use redis::AsyncCommands;

    use super::*;
    use crate::lanes::LaneReader;
    use crate::limiter::{Budget, SharedLimiter};

    /// A settle after a send charges its own token, always its call's last argument: the
    /// token's entries in the shared log and the OTPs' log move from its grant plus the
    /// margin back to the answer. A settle without a token charges nothing, even with a
    /// message id that reads like another token's charge.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_settle_charges_its_own_token_and_nothing_else() {
        let mut s = Scenario::start(SandboxSetup::default()).await;
        let pool = Target::single(s.redis.url()).pool(4).unwrap();
        let consumer = "charger".to_string();
        let reader = LaneReader::new(pool.clone(), s.keys.clone(), consumer.clone());
        reader.ensure_groups().await.unwrap();
        let budget = Budget::new("100/1s".parse().unwrap());
        let limiter = SharedLimiter::new(pool.clone(), &s.keys, budget, &consumer);
        let settler = Settler::new(pool, s.keys.clone(), consumer);

        let jobs = [
            otp(&phone(1), Duration::from_secs(600)),
            otp(&phone(2), Duration::from_secs(600)),
        ];
        s.enqueue(&jobs).await;
        let mut read = reader.read_now(Lane::Otp, 2).await.unwrap();
        assert_eq!(read.len(), 2);
        let (tokens, _) = limiter.try_acquire(Lane::Otp, 2).await.unwrap();
        let mut granted = tokens.iter();
        let (mine, other) = (granted.next().unwrap(), granted.next().unwrap());
        let mut scores = async |member: &str| -> [f64; 2] {
            let main: f64 = s.conn.zscore(s.keys.rate_window(), member).await.unwrap();
            let otps: f64 = s
                .conn
                .zscore(s.keys.rate_window_otp(), member)
                .await
                .unwrap();
            [main, otps]
        };
        let (mine_granted, other_granted) =
            (scores(mine.member()).await, scores(other.member()).await);

        let mut charged = read.remove(0);
        charged.token = Some(mine.clone());
        let job = charged.job.clone().unwrap();
        assert_eq!(
            settler.sent(&charged, &job, "m-1").await.unwrap(),
            Settled::Done
        );
        let mine_now = scores(mine.member()).await;
        for (now, granted) in mine_now.iter().zip(mine_granted) {
            let moved_back_us = granted - now;
            assert!(
                moved_back_us > 100_000.0,
                "charged at the answer, not the grant plus the 250 ms margin: moved back {moved_back_us} µs"
            );
        }

        let uncharged = read.remove(0);
        assert!(uncharged.token.is_none());
        let job = uncharged.job.clone().unwrap();
        let lookalike = format!("charge:{}", other.member());
        assert_eq!(
            settler.sent(&uncharged, &job, &lookalike).await.unwrap(),
            Settled::Done
        );
        assert_eq!(
            scores(other.member()).await,
            other_granted,
            "nothing charged"
        );
        assert_eq!(scores(mine.member()).await, mine_now, "nor charged again");
    }

    /// Redis forgets its scripts on a restart, a failover or `SCRIPT FLUSH`: the next call
    /// of each loads it again and runs (`ScriptCall::invoke`), never failing the settle.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_script_redis_forgot_is_loaded_again() {
        let mut s = Scenario::start(SandboxSetup::default()).await;
        let pool = Target::single(s.redis.url()).pool(4).unwrap();
        let consumer = "forgetful".to_string();
        let reader = LaneReader::new(pool.clone(), s.keys.clone(), consumer.clone());
        reader.ensure_groups().await.unwrap();
        let settler = Settler::new(pool, s.keys.clone(), consumer);
        let jobs = [
            otp(&phone(1), Duration::from_secs(600)),
            otp(&phone(2), Duration::from_secs(600)),
        ];
        s.enqueue(&jobs).await;
        for delivery in reader.read_now(Lane::Otp, 2).await.unwrap() {
            let () = redis::cmd("SCRIPT")
                .arg("FLUSH")
                .query_async(&mut s.conn)
                .await
                .unwrap();
            let job = delivery.job.clone().unwrap();
            assert_eq!(
                settler.begin_send(&delivery, &job).await.unwrap(),
                BeginSend::Send
            );
            let () = redis::cmd("SCRIPT")
                .arg("FLUSH")
                .query_async(&mut s.conn)
                .await
                .unwrap();
            assert_eq!(
                settler.sent(&delivery, &job, "m").await.unwrap(),
                Settled::Done
            );
        }
    }
}
