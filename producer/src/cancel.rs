//! Cancelling a job before its send begins: [`Producer::cancel`] and
//! [`Producer::cancel_by_idempotency_key`].
//!
//! One Lua script (`store/src/lua/cancel_job.lua`, with `cancel.lua` in front) reads and writes the
//! job's record atomically, and the worker's begin-send script does the same right before
//! every send: whichever runs first wins. A cancel that wins takes the job out of wherever it
//! waits (scheduled set, lane) and the send never happens; a job already `sending`, `sent` or
//! `dead` is left alone and its state is the answer.

use deadpool_redis::redis::AsyncCommands;
use herald_shared::Lane;
use herald_store::keys::{TIMELINE_TTL_SECS, WORKER_GROUP};
use herald_store::timeline::{self, JobState};
use uuid::Uuid;

use crate::enqueue::{Error, Producer};

use herald_store::scripts::CANCEL;

/// What a cancel came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Cancelled now, or already cancelled before: it will never be sent.
    Cancelled { job_id: Uuid },
    /// Too late: the job is `sending`, `sent` or `dead`.
    TooLate { job_id: Uuid, state: JobState },
    /// No such job (never enqueued, an unknown idempotency key, or its record expired).
    Unknown,
}

impl Producer {
    /// Cancels job `job_id` if its send has not begun.
    pub async fn cancel(&self, job_id: Uuid) -> Result<CancelOutcome, Error> {
        let keys = self.keys();
        let id = job_id.to_string();
        let mut conn = self.pool().get().await?;
        let (code, state): (i64, String) = CANCEL
            .key(keys.job_status(&id))
            .key(keys.lane(Lane::Otp))
            .key(keys.lane(Lane::Booking))
            .key(keys.scheduled(Lane::Otp))
            .key(keys.scheduled(Lane::Booking))
            .key(keys.scheduled_jobs())
            .key(keys.dead())
            .key(keys.sent(&id))
            .key(keys.stats())
            .arg(&id)
            .arg(WORKER_GROUP)
            .arg(timeline::format_time(time::OffsetDateTime::now_utc()))
            .arg(TIMELINE_TTL_SECS)
            .invoke_async(&mut conn)
            .await?;
        let too_late = |state: &str| match state {
            "sending" => Some(JobState::Sending),
            "sent" => Some(JobState::Sent),
            "dead" => Some(JobState::Dead),
            _ => None,
        };
        match code {
            0 | 1 => Ok(CancelOutcome::Cancelled { job_id }),
            2 => too_late(&state)
                .map(|state| CancelOutcome::TooLate { job_id, state })
                .ok_or_else(|| Error::UnexpectedReply(format!("cancel: state {state:?}"))),
            3 => Ok(CancelOutcome::Unknown),
            other => Err(Error::UnexpectedReply(format!("cancel: {other}"))),
        }
    }

    /// Cancels the job first enqueued under idempotency key `key` (within the key's window).
    pub async fn cancel_by_idempotency_key(&self, key: &str) -> Result<CancelOutcome, Error> {
        let claim: Option<String> = {
            let mut conn = self.pool().get().await?;
            conn.get(self.keys().idempotency(key)).await?
        };
        let id = claim
            .as_deref()
            .and_then(|claim| claim.split(':').next())
            .and_then(|id| Uuid::parse_str(id).ok());
        match id {
            Some(id) => self.cancel(id).await,
            None => Ok(CancelOutcome::Unknown),
        }
    }
}
