//! The processing side of `herald-worker webhook`: a consumer of the events stream, in the
//! `webhook-processors` group, that turns each event into its [`Action`]:
//!
//! - a delivery milestone stamps the timeline of the job Interakt's message id was sent for
//!   (found in the message index the worker's "sent" settle wrote);
//! - a user message is appended to the inbound stream, with its job when known;
//! - anything else is kept in the unhandled stream.
//!
//! Each of those and the acknowledgement (XACK + XDEL) happen in one Lua script, and stamps
//! are first-report-wins (`HSETNX`), so at-least-once delivery within the group never
//! records an event twice.
//!
//! **Linking waits for the send's record.** Interakt (and the sandbox) can report a delivery
//! before the worker has recorded the send: the worker settles after reading Interakt's
//! answer. A status event whose message id is not indexed yet stays pending and is retried
//! (every [`RETRY_IDLE`], via `XAUTOCLAIM`, which also takes over the entries of processors
//! that died) for up to [`STATUS_LINK_GRACE`]; after that it is dropped as `unlinked` (a
//! message Herald did not send, or whose index expired). A user message waits at most
//! [`REPLY_LINK_GRACE`] for its job, then goes to the inbound stream without one.

use std::time::Duration;

use deadpool_redis::redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply,
};
use deadpool_redis::redis::{AsyncCommands, RedisError, Value};
use herald_shared::redis_pool::MAX_BLOCK;
use herald_shared::redis_pool::Pool;
use herald_store::Keys;
use herald_store::keys::{EVENT_FIELD, UNHANDLED_MAX_LEN, WEBHOOK_GROUP};
use herald_store::message_index::{self, Indexed};
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use herald_shared::backoff::{Next, ReconnectBackoff};
use herald_shared::redis_pool::RedisFailure;
use herald_store::record::{Milestone, field, format_time};

use herald_shared::Lane;
use herald_shared::traces::{Attribute, JobSpan, Operation, TraceContext, attr};

use crate::action::{self, Action};
use crate::telemetry;

/// Entries read or claimed at once.
const BATCH: usize = 100;
/// A pending entry idle this long is looked at again (a retry of linking, or a dead
/// processor's entry).
pub const RETRY_IDLE: Duration = Duration::from_secs(2);
/// How long a status event waits for the send it names to be recorded.
pub const STATUS_LINK_GRACE: Duration = Duration::from_secs(30);
/// How long a user message waits for its job before it is passed on without one.
pub const REPLY_LINK_GRACE: Duration = Duration::from_secs(2);

use herald_store::calls::webhooks;

/// One processor. Cheap to clone; [`crate::run`] runs one per `webhook` process.
#[derive(Clone)]
pub struct Processor {
    pool: Pool,
    keys: Keys,
    /// Unique per process (see [`herald_shared::consumer::default_consumer_name`]).
    consumer: String,
    /// Approximate cap of the inbound stream; 0 for none.
    inbound_max_len: u64,
}

/// What the message index says about one sent message.
#[derive(Debug, Clone, PartialEq)]
struct SentMessage {
    job_id: String,
    lane: String,
    /// The context the job was created in (its record's `traceparent`): read only while
    /// tracing is on.
    created: Option<TraceContext>,
}

impl Processor {
    pub fn new(pool: Pool, keys: Keys, consumer: String, inbound_max_len: u64) -> Self {
        Processor {
            pool,
            keys,
            consumer,
            inbound_max_len,
        }
    }

    /// Processes events until `shutdown`; Redis failures back off and retry. Only a failure
    /// no retry can help ([`RedisFailure::is_fatal`]: the events stream, say, holds another
    /// type of value) ends it early, and [`crate::serve`] stops the process with it.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = ReconnectBackoff::new("webhook-processor");
        let mut next_claim = Instant::now();
        // Where the next XAUTOCLAIM scan starts: it walks the whole pending list over
        // successive ticks, so entries waiting at its head do not hide the rest.
        let mut cursor = "0-0".to_string();
        while !shutdown.is_cancelled() {
            let step = async {
                if Instant::now() >= next_claim {
                    next_claim = Instant::now() + RETRY_IDLE / 2;
                    let claimed = self.claim(&mut cursor).await?;
                    self.handle_all(&claimed).await?;
                }
                let read = tokio::select! {
                    read = self.read(MAX_BLOCK) => read?,
                    _ = shutdown.cancelled() => return Ok(()),
                };
                self.handle_all(&read).await
            };
            match step.await {
                Ok(()) => backoff.succeeded(),
                Err(err) => {
                    if backoff.failed(&err) == Next::Stop {
                        return;
                    }
                    if backoff.wait(&shutdown).await.is_err() {
                        break;
                    }
                }
            }
        }
        tracing::info!("webhook processor stopped");
    }

    /// Creates the group (from the start of the stream) if missing.
    pub async fn ensure_group(&self) -> Result<(), RedisFailure> {
        let mut conn = self.pool.get().await?;
        let created: Result<(), RedisError> = conn
            .xgroup_create_mkstream(self.keys.webhook_events(), WEBHOOK_GROUP, "0")
            .await;
        match created {
            Err(err) if err.code() != Some("BUSYGROUP") => Err(err.into()),
            _ => Ok(()),
        }
    }

    /// Runs `op`; on `NOGROUP` (first start, or Redis lost its data) creates the group and
    /// reports nothing read.
    async fn with_group<T: Default>(
        &self,
        result: Result<T, RedisError>,
    ) -> Result<T, RedisFailure> {
        match result {
            Err(err) if err.code() == Some("NOGROUP") => {
                self.ensure_group().await?;
                Ok(T::default())
            }
            other => Ok(other?),
        }
    }

    async fn read(&self, block: Duration) -> Result<Vec<StreamId>, RedisFailure> {
        let options = StreamReadOptions::default()
            .group(WEBHOOK_GROUP, &self.consumer)
            .count(BATCH)
            .block(block.as_millis() as usize);
        let mut conn = self.pool.get().await?;
        let reply: Result<Option<StreamReadReply>, RedisError> = conn
            .xread_options(&[self.keys.webhook_events()], &[">"], &options)
            .await;
        drop(conn);
        let reply = self.with_group(reply).await?;
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .collect())
    }

    /// Takes pending entries idle for [`RETRY_IDLE`] (this processor's own waiting ones and
    /// those of processors that died), scanning on from `cursor`.
    async fn claim(&self, cursor: &mut String) -> Result<Vec<StreamId>, RedisFailure> {
        let mut conn = self.pool.get().await?;
        let reply: Result<StreamAutoClaimReply, RedisError> = conn
            .xautoclaim_options(
                self.keys.webhook_events(),
                WEBHOOK_GROUP,
                &self.consumer,
                RETRY_IDLE.as_millis() as u64,
                cursor.as_str(),
                StreamAutoClaimOptions::default().count(BATCH),
            )
            .await;
        drop(conn);
        let reply = self.with_group(reply).await?;
        *cursor = if reply.next_stream_id.is_empty() {
            "0-0".to_string()
        } else {
            reply.next_stream_id
        };
        Ok(reply.claimed)
    }

    async fn handle_all(&self, entries: &[StreamId]) -> Result<(), RedisFailure> {
        for entry in entries {
            self.handle(entry).await?;
        }
        Ok(())
    }

    /// Processes one entry, or leaves it pending to retry linking later.
    async fn handle(&self, entry: &StreamId) -> Result<(), RedisFailure> {
        let now = OffsetDateTime::now_utc();
        let received_at = entry_time(&entry.id).unwrap_or(now);
        let age = (now - received_at).try_into().unwrap_or(Duration::ZERO);
        let Some(raw) = entry.get::<String>(EVENT_FIELD) else {
            tracing::warn!(entry = %entry.id, "webhook entry without an event field; dropping it");
            return self.ack(&entry.id).await;
        };
        let event = action::decode(&raw);
        match action::plan(event.as_ref(), received_at) {
            Action::Milestone {
                message_id,
                milestone,
                at,
            } => match self.lookup(&message_id).await? {
                Some(sent) => {
                    let span = receive_span(&sent, milestone);
                    self.mark(&entry.id, &sent, milestone, at).await?;
                    telemetry::record_webhook_processed("linked");
                    span.end();
                }
                None if age < STATUS_LINK_GRACE => return Ok(()),
                None => {
                    tracing::debug!(%message_id, milestone = milestone.as_str(), "status event for a message Herald has no record of; dropping it");
                    self.ack(&entry.id).await?;
                    telemetry::record_webhook_processed("unlinked");
                }
            },
            Action::Inbound(message) => {
                let sent = match &message.message_id {
                    Some(id) => self.lookup(id).await?,
                    None => None,
                };
                if sent.is_none() && message.message_id.is_some() && age < REPLY_LINK_GRACE {
                    return Ok(());
                }
                let job_id = sent.as_ref().map(|s| s.job_id.as_str());
                let fields = message.fields(job_id, received_at, &raw);
                self.append(
                    &entry.id,
                    &self.keys.inbound(),
                    self.inbound_max_len,
                    &fields,
                )
                .await?;
                telemetry::record_webhook_processed("inbound");
            }
            Action::Unhandled => {
                let fields = [
                    ("event", raw.clone()),
                    ("received_at", format_time(received_at)),
                ];
                self.append(
                    &entry.id,
                    &self.keys.webhook_unhandled(),
                    UNHANDLED_MAX_LEN,
                    &fields,
                )
                .await?;
                telemetry::record_webhook_processed("unhandled");
            }
        }
        Ok(())
    }

    async fn lookup(&self, message_id: &str) -> Result<Option<SentMessage>, RedisFailure> {
        let mut conn = self.pool.get().await?;
        let Some(Indexed { job_id, lane }) =
            message_index::find(&mut conn, &self.keys, message_id).await?
        else {
            return Ok(None);
        };
        let created = match herald_shared::traces::tracer() {
            None => None,
            Some(_) => {
                let traceparent: Option<String> = conn
                    .hget(self.keys.job_status(&job_id), field::TRACEPARENT)
                    .await?;
                traceparent.and_then(|t| TraceContext::parse(&t, None))
            }
        };
        Ok(Some(SentMessage {
            job_id,
            lane,
            created,
        }))
    }

    async fn mark(
        &self,
        entry_id: &str,
        sent: &SentMessage,
        milestone: Milestone,
        at: OffsetDateTime,
    ) -> Result<(), RedisFailure> {
        let mut conn = self.pool.get().await?;
        let at = format_time(at);
        let call = webhooks::mark(
            &self.keys,
            entry_id,
            &sent.job_id,
            &sent.lane,
            milestone,
            &at,
        );
        let new: i64 = call.invoke(&mut conn).await?;
        tracing::debug!(job = %sent.job_id, milestone = milestone.as_str(), new = new == 1, "timeline stamped");
        Ok(())
    }

    async fn append(
        &self,
        entry_id: &str,
        stream: &str,
        max_len: u64,
        fields: &[(&str, String)],
    ) -> Result<(), RedisFailure> {
        let call = webhooks::append(&self.keys, entry_id, stream, max_len, fields);
        let mut conn = self.pool.get().await?;
        let _: i64 = call.invoke(&mut conn).await?;
        Ok(())
    }

    async fn ack(&self, entry_id: &str) -> Result<(), RedisFailure> {
        let key = self.keys.webhook_events();
        let mut conn = self.pool.get().await?;
        let _: Value = deadpool_redis::redis::pipe()
            .atomic()
            .xack(&key, WEBHOOK_GROUP, &[entry_id])
            .ignore()
            .xdel(&key, &[entry_id])
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}

/// `receive <lane>` (CONSUMER) for a delivery report about `sent`'s job, linked to the
/// context the job was created in; nothing with tracing off.
fn receive_span(sent: &SentMessage, milestone: Milestone) -> JobSpan {
    let Ok(lane) = sent.lane.parse::<Lane>() else {
        return JobSpan::none();
    };
    let span = JobSpan::consume(Operation::Receive, lane, sent.created.as_ref());
    span.set(|| {
        vec![
            Attribute::new(attr::MESSAGE_ID, sent.job_id.clone()),
            Attribute::new(attr::CONSUMER_GROUP, WEBHOOK_GROUP),
            Attribute::new(attr::MILESTONE, milestone.as_str()),
        ]
    });
    span
}

/// When Redis received an entry: the milliseconds of its stream id.
fn entry_time(id: &str) -> Option<OffsetDateTime> {
    let ms: i128 = id.split_once('-')?.0.parse().ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn entry_ids_carry_the_time_redis_received_them() {
        assert_eq!(
            entry_time("1795428000123-0"),
            Some(datetime!(2026-11-23 10:00:00.123 UTC))
        );
        assert_eq!(entry_time("nonsense"), None);
    }
}
