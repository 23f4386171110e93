//! Cancelling a job before its send begins: [`Producer::cancel`] and
//! [`Producer::cancel_by_idempotency_key`].
//!
//! One Lua script (`store/src/lua/cancel_job.lua`, with `stop.lua` in front) reads and
//! writes the job's record atomically, and the worker's begin-send script does the same right
//! before every send: whichever runs first wins. A cancel that wins takes the job out of
//! wherever it waits (scheduled set, lane, delayed set), frees its idempotency key, and the
//! send never happens; a job already `sending` is too late for the attempt under way (which
//! is then not retried if it fails); one `sent`, `dead` or `expired` is left alone and its
//! state is the answer.

use deadpool_redis::redis::AsyncCommands;
use herald_store::calls::{self, enqueue::CancelReply};
use herald_store::lifecycle::State;
use herald_store::timeline::JobState;
use uuid::Uuid;

use crate::enqueue::{Error, Producer};

/// What a cancel came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Cancelled now, or stopped before (cancelled, or superseded by a newer job of its
    /// replace key): it will never be sent.
    Cancelled { job_id: Uuid },
    /// Too late: the job is `sending` (the attempt under way may reach Interakt; if it fails
    /// it is not retried), `sent`, `dead` or `expired`.
    TooLate { job_id: Uuid, state: JobState },
    /// No such job (never enqueued, an unknown idempotency key, or its record expired).
    Unknown,
}

impl Producer {
    /// Cancels job `job_id` if its send has not begun. With a durability set, answers only
    /// once enough replicas have the cancel ([`Error::NotReplicated`] else): a cancel lost in
    /// a failover would let the job be sent.
    pub async fn cancel(&self, job_id: Uuid) -> Result<CancelOutcome, Error> {
        let id = job_id.to_string();
        let mut conn = self.pool().get().await?;
        let call = calls::enqueue::cancel(self.keys(), &id, time::OffsetDateTime::now_utc());
        let reply = CancelReply::decode(&call.invoke(&mut conn).await?)?;
        let outcome = match reply {
            CancelReply::Cancelled | CancelReply::AlreadyStopped(_) => {
                CancelOutcome::Cancelled { job_id }
            }
            CancelReply::TooLate(state) => CancelOutcome::TooLate {
                job_id,
                state: too_late(state).ok_or_else(|| {
                    Error::UnexpectedReply(format!("cancel: too late in state {state}"))
                })?,
            },
            CancelReply::Unknown => CancelOutcome::Unknown,
        };
        if reply == CancelReply::Cancelled {
            self.durability().confirm(&mut conn, self.keys()).await?;
        }
        Ok(outcome)
    }

    /// Cancels the job enqueued under idempotency key `key`: the claim names it for as long
    /// as the job is pending, however far ahead it is scheduled.
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

/// How the API and the CLI name a state that is too late to cancel.
fn too_late(state: State) -> Option<JobState> {
    Some(match state {
        State::Sending => JobState::Sending,
        State::Sent => JobState::Sent,
        State::Dead => JobState::Dead,
        State::Expired => JobState::Expired,
        _ => return None,
    })
}
