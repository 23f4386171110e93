//! Settling a delivery: every way a job leaves a lane, each one atomic Lua script so a job
//! is always in exactly one place (the lane, the delayed set, the dead letters, or sent),
//! and its record says so: the scripts and their typed calls are the store's
//! ([`herald_store::calls::settle`]); this module runs them on the replica's connection.
//!
//! - [`Settler::begin_send`]: the last check before a send (ownership, already sent,
//!   stopped, expired, an older job of its replace key still sending), where a cancel and
//!   the send path meet; marks the job `sending`, or gives its token back.
//! - [`Settler::sent`]: record it as sent, then acknowledge and delete the entry.
//! - [`Settler::retry`]: park it in the lane's delayed set with its new attempt.
//! - [`Settler::dead`]: store the dead letter, then acknowledge and delete the entry.
//! - [`Settler::hand_back`]: put an unstarted job back on the lane (shutdown).
//! - [`Settler::defer`]: park a job behind an older one of its replace key still sending.
//! - [`Settler::drop_duplicate`]: acknowledge a redelivered copy of a job already sent.
//!
//! Every script checks, inside the script, that this replica still owns the entry (another
//! may have taken it over while this one was paused) and changes nothing otherwise
//! ([`Settled::NotOurs`]); a send's record is the exception: it is written whoever owns the
//! entry, so the new holder finds it and does not send again.
//!
//! The checks before sends and the records of sends, the two calls every job makes, go in
//! batches ([`batch`]): those that tasks ask for at about the same time are one script call.

mod batch;

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::redis::{AsyncCommands, Value};
use herald_shared::redis_pool::Pool;
use herald_shared::{Job, Lane};
use herald_store::Keys;
use herald_store::calls::settle::{At, Check, Sent, SentFields, SettleKeys};
use herald_store::durability::Durability;
use herald_store::keys::Stat;
use herald_store::script::ScriptCall;
use time::OffsetDateTime;

use crate::dead_letter::DeadLetter;
use crate::lanes::{Delivery, RedisFailure};
use crate::limiter::Token;
use batch::{Batched, Batcher};

pub use herald_store::calls::settle::{BeginSend, Completed, RecordWrite, Settled};
pub use herald_store::record::UNKNOWN_MESSAGE_ID;

/// Settles deliveries. Built once per replica (the dispatcher's context holds it); cheap
/// to clone. Holds nothing but handles: dropping it settles nothing and loses nothing (an
/// unsettled entry stays pending for recovery).
#[derive(Clone)]
pub struct Settler {
    /// The replica's Redis pool (shared with the reader and the limiter). The checks and
    /// settles of the send path use its shared connection ([`Pool::shared`]): those of
    /// tasks that finish together go out and come back together, in a few round trips.
    pool: Pool,
    /// The key names every settle uses, made once.
    keys: SettleKeys,
    /// This replica's name in the group: the owner every script checks for.
    consumer: String,
    /// How many replicas must have a `sending` mark and a sent marker before the step goes
    /// on (`--min-replicas`).
    durability: Durability,
    /// The checks before sends and the records of sends, batched; shared by every clone.
    batches: Arc<Batches>,
}

/// The two batched calls of the send path, each with its batcher's task.
struct Batches {
    checks: Batcher<Checks>,
    records: Batcher<Records>,
}

impl Batches {
    fn new(pool: &Pool, keys: &SettleKeys, consumer: &str) -> Batches {
        let calls = BatchCalls {
            pool: pool.clone(),
            keys: keys.clone(),
            consumer: consumer.to_string(),
        };
        Batches {
            checks: Batcher::new(Checks(calls.clone())),
            records: Batcher::new(Records(calls)),
        }
    }
}

/// What a batched call is made with: the send path's shared connection, the key names, the
/// replica's name.
#[derive(Clone)]
struct BatchCalls {
    pool: Pool,
    keys: SettleKeys,
    consumer: String,
}

impl BatchCalls {
    async fn run(&self, call: &ScriptCall<'_>) -> Result<Value, RedisFailure> {
        Ok(call.invoke(&mut self.pool.shared().await?).await?)
    }
}

/// A delivery's entry and token, owned, as a batched call needs them.
struct Entry {
    lane: Lane,
    tenant: Arc<str>,
    stream: Arc<str>,
    entry_id: String,
    token: Option<Token>,
}

impl Entry {
    fn of(delivery: &Delivery) -> Entry {
        Entry {
            lane: delivery.lane,
            tenant: delivery.tenant.clone(),
            stream: delivery.stream.clone(),
            entry_id: delivery.entry_id.clone(),
            token: delivery.token.clone(),
        }
    }

    fn at<'a>(&'a self, consumer: &'a str) -> At<'a> {
        At {
            lane: self.lane,
            tenant: &self.tenant,
            stream: &self.stream,
            entry_id: &self.entry_id,
            consumer,
            token: self.token.as_ref().map(Token::charge),
        }
    }
}

/// One job's last check before its send, batched.
struct CheckItem {
    entry: Entry,
    job_id: String,
    not_after: Option<OffsetDateTime>,
}

struct Checks(BatchCalls);

impl Batched for Checks {
    type Item = CheckItem;
    type Answer = BeginSend;

    async fn call(&self, items: &[CheckItem]) -> Result<Vec<BeginSend>, RedisFailure> {
        let checks: Vec<Check> = items
            .iter()
            .map(|item| Check {
                at: item.entry.at(&self.0.consumer),
                job_id: &item.job_id,
                not_after: item.not_after,
            })
            .collect();
        let call = self.0.keys.begin_sends(&checks);
        Ok(BeginSend::decode_all(
            &self.0.run(&call).await?,
            checks.len(),
        )?)
    }
}

/// One send to record, batched.
struct RecordItem {
    entry: Entry,
    job_id: String,
    message_id: String,
    fields: SentFields,
}

struct Records(BatchCalls);

impl Batched for Records {
    type Item = RecordItem;
    type Answer = Completed;

    async fn call(&self, items: &[RecordItem]) -> Result<Vec<Completed>, RedisFailure> {
        let sends: Vec<Sent> = items
            .iter()
            .map(|item| Sent {
                at: item.entry.at(&self.0.consumer),
                job_id: &item.job_id,
                message_id: &item.message_id,
                fields: &item.fields,
            })
            .collect();
        let call = self.0.keys.completes(&sends);
        Ok(Completed::decode_all(
            &self.0.run(&call).await?,
            sends.len(),
        )?)
    }
}

impl Settler {
    pub fn new(pool: Pool, keys: Keys, consumer: String) -> Self {
        let keys = SettleKeys::new(&keys);
        Settler {
            batches: Arc::new(Batches::new(&pool, &keys, &consumer)),
            pool,
            keys,
            consumer,
            durability: Durability::default(),
        }
    }

    /// Waits for `durability.min_replicas` replicas to have each `sending` mark and sent
    /// marker.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    fn at<'a>(&'a self, delivery: &'a Delivery) -> At<'a> {
        At {
            lane: delivery.lane,
            tenant: &delivery.tenant,
            stream: &delivery.stream,
            entry_id: &delivery.entry_id,
            consumer: &self.consumer,
            token: delivery.token.as_ref().map(|t| t.charge()),
        }
    }

    /// Runs `call` on the shared connection of the send path.
    async fn run(&self, call: &ScriptCall<'_>) -> Result<Value, RedisFailure> {
        Ok(call.invoke(&mut self.pool.shared().await?).await?)
    }

    /// Interakt's message id for a job already sent, if it was.
    pub async fn already_sent(&self, job_id: &str) -> Result<Option<String>, RedisFailure> {
        let mut conn = self.pool.get().await?;
        Ok(conn.get(self.keys.keys().sent(job_id)).await?)
    }

    /// The last check before `job` is sent, one script (`begin_send.lua`) and one round
    /// trip, shared with the checks other tasks ask for meanwhile: still this replica's, not
    /// already sent, not stopped, not past its deadline, not behind an older job of its
    /// replace key still sending; then its record says `sending`, and a cancel from now on
    /// is too late for this attempt. When it answers anything but [`BeginSend::Send`], the
    /// delivery's token went back to the budget.
    ///
    /// With `--min-replicas`, `sending` is on enough replicas before the send goes on: a
    /// failover that lost it would let a cancel answer "cancelled" for a job being sent.
    pub async fn begin_send(
        &self,
        delivery: &Delivery,
        job: &Job,
    ) -> Result<BeginSend, RedisFailure> {
        if !self.durability.is_on() {
            let item = CheckItem {
                entry: Entry::of(delivery),
                job_id: job.id.to_string(),
                not_after: job.not_after,
            };
            if let Some(answer) = self.batches.checks.ask(item).await {
                return Ok(answer);
            }
        }
        let call = self.keys.begin_send(&self.at(delivery), job);
        if !self.durability.is_on() {
            return Ok(BeginSend::decode(&self.run(&call).await?)?);
        }
        // `WAIT` counts this connection's writes and blocks it: a connection of its own.
        let mut conn = self.pool.get().await?;
        let answer = BeginSend::decode(&call.invoke(&mut conn).await?)?;
        if matches!(answer, BeginSend::Send(_)) {
            self.durability
                .confirm(&mut conn, self.keys.keys())
                .await
                .map_err(|err| {
                    RedisFailure::from(deadpool_redis::redis::RedisError::from((
                        deadpool_redis::redis::ErrorKind::Io,
                        "the sending mark is not on enough replicas",
                        err.to_string(),
                    )))
                })?;
        }
        Ok(answer)
    }

    /// Records `job` as sent as Interakt's `message_id` (its record and the message index
    /// included), then acknowledges and deletes the entry; in one call with the sends other
    /// tasks record meanwhile.
    pub async fn sent(
        &self,
        delivery: &Delivery,
        job: &Job,
        message_id: &str,
    ) -> Result<Completed, RedisFailure> {
        let now = OffsetDateTime::now_utc();
        if !self.durability.is_on() {
            let item = RecordItem {
                entry: Entry::of(delivery),
                job_id: job.id.to_string(),
                message_id: message_id.to_string(),
                fields: SentFields::new(job, message_id, now, delivery.record),
            };
            if let Some(answer) = self.batches.records.ask(item).await {
                return Ok(answer);
            }
        }
        let call = self
            .keys
            .complete(&self.at(delivery), job, message_id, now, delivery.record);
        let reply = if self.durability.is_on() {
            // `WAIT` counts this connection's writes and blocks it: a connection of its own.
            let mut conn = self.pool.get().await?;
            let reply = call.invoke(&mut conn).await?;
            self.confirm_marker(&mut conn, &job.id.to_string()).await;
            reply
        } else {
            self.run(&call).await?
        };
        Ok(Completed::decode(&reply)?)
    }

    /// With `--min-replicas`, waits (a few `WAIT`s) until enough replicas have the sent
    /// marker just written. The settle itself is done either way: a job sent cannot be
    /// unsent, so a marker still short of replicas is a warning (a failover now could make
    /// the job look unsent and send it again), never a retry of the send.
    async fn confirm_marker(&self, conn: &mut herald_shared::redis_pool::Connection, job_id: &str) {
        let mut last = None;
        for _ in 0..3 {
            match self.durability.confirm(conn, self.keys.keys()).await {
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
        let call = self.keys.drop_duplicate(&self.at(delivery));
        let reply: i64 = call.invoke(&mut self.pool.shared().await?).await?;
        Ok(if reply == 1 {
            Settled::Done
        } else {
            Settled::NotOurs
        })
    }

    /// `stat` is the counter to bump: [`Stat::Retried`] or [`Stat::RateLimited`].
    pub async fn retry(
        &self,
        delivery: &Delivery,
        job: &Job,
        delay: Duration,
        stat: Stat,
    ) -> Result<Settled, RedisFailure> {
        let call = self.keys.retry(&self.at(delivery), job, delay, stat);
        Ok(Settled::decode("retry.lua", &self.run(&call).await?)?)
    }

    pub async fn dead(
        &self,
        delivery: &Delivery,
        letter: &DeadLetter,
    ) -> Result<Settled, RedisFailure> {
        let call = self.keys.dead(&self.at(delivery), letter);
        Ok(Settled::decode("dead.lua", &self.run(&call).await?)?)
    }

    /// Puts `job`, read but not sent, back on its lane for any replica to take at once.
    pub async fn hand_back(&self, delivery: &Delivery, job: &Job) -> Result<Settled, RedisFailure> {
        let call = self.keys.hand_back(&self.at(delivery), job);
        let reply = call.invoke(&mut self.pool.get().await?).await?;
        Ok(Settled::decode("hand_back.lua", &reply)?)
    }

    /// Parks `job` for `delay` behind an older job of its replace key still being sent.
    pub async fn defer(
        &self,
        delivery: &Delivery,
        job: &Job,
        delay: Duration,
    ) -> Result<Settled, RedisFailure> {
        let call = self.keys.defer(&self.at(delivery), job, delay);
        Ok(Settled::decode("defer.lua", &self.run(&call).await?)?)
    }
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
    use herald_shared::Lane;

    /// A settle after a send charges its own token, always its call's last argument: the
    /// token's entries in the shared log and the OTPs' log move from its grant plus the
    /// request timeout and the margin back to the answer. A settle without a token charges nothing, even with a
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
            Completed {
                acknowledged: true,
                recorded: true
            }
        );
        let mine_now = scores(mine.member()).await;
        for (now, granted) in mine_now.iter().zip(mine_granted) {
            let moved_back_us = granted - now;
            assert!(
                moved_back_us > 100_000.0,
                "charged at the answer, not the grant plus the timeout and the margin: moved back {moved_back_us} µs"
            );
        }

        let uncharged = read.remove(0);
        assert!(uncharged.token.is_none());
        let job = uncharged.job.clone().unwrap();
        let lookalike = format!("charge:1000:otp:{}", other.member());
        assert_eq!(
            settler.sent(&uncharged, &job, &lookalike).await.unwrap(),
            Completed {
                acknowledged: true,
                recorded: true
            }
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
            assert!(matches!(
                settler.begin_send(&delivery, &job).await.unwrap(),
                BeginSend::Send(_)
            ));
            let () = redis::cmd("SCRIPT")
                .arg("FLUSH")
                .query_async(&mut s.conn)
                .await
                .unwrap();
            assert_eq!(
                settler.sent(&delivery, &job, "m").await.unwrap(),
                Completed {
                    acknowledged: true,
                    recorded: true
                }
            );
        }
    }
}
