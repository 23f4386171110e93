//! The message index ([`crate::Keys::message`]): which job, on which lane, each message id
//! Interakt answered a send with was sent for. Written by the send's settle
//! (`complete.lua`), read by the webhook receiver (a delivery report names the message
//! only) and by `track` given a message id.
//!
//! An entry is one string, `<job id> <lane>`, written with its expiry in one `SET ... EX`.
//! Releases before it wrote a hash (`job_id`, `lane`, the masked phone and the send's time)
//! and an `EXPIRE`: two commands and nine arguments more on every send, for two fields
//! anyone reads. [`find`] reads both, so an entry written before an upgrade is found until
//! it expires.

use herald_shared::Job;
use redis::RedisResult;
use redis::aio::ConnectionLike;

use crate::Keys;
use crate::record::{UNKNOWN_MESSAGE_ID, field};

/// What the index holds of one sent message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indexed {
    pub job_id: String,
    /// The lane as the entry names it (a name a later release may add: not parsed here).
    pub lane: String,
}

/// The entry of `job` sent as `message_id`: none when Interakt gave no id to index by.
pub fn entry(job: &Job, message_id: &str) -> Option<String> {
    if message_id.is_empty() || message_id == UNKNOWN_MESSAGE_ID {
        return None;
    }
    Some(format!("{} {}", job.id, job.lane().as_str()))
}

/// Reads an entry as [`entry`] writes it.
pub fn parse(value: &str) -> Option<Indexed> {
    let (job_id, lane) = value.split_once(' ')?;
    (!job_id.is_empty()).then(|| Indexed {
        job_id: job_id.to_string(),
        lane: lane.to_string(),
    })
}

/// The job message `message_id` was sent for, if the index still has it: the string this
/// release writes, or the hash of an earlier one.
pub async fn find<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    message_id: &str,
) -> RedisResult<Option<Indexed>> {
    let key = keys.message(message_id);
    match redis::cmd("GET")
        .arg(&key)
        .query_async::<Option<String>>(conn)
        .await
    {
        Ok(value) => Ok(value.as_deref().and_then(parse)),
        Err(err) if err.code() == Some("WRONGTYPE") => {
            let (job_id, lane): (Option<String>, Option<String>) = redis::cmd("HMGET")
                .arg(&key)
                .arg(field::JOB_ID)
                .arg(field::LANE)
                .query_async(conn)
                .await?;
            Ok(job_id.map(|job_id| Indexed {
                job_id,
                lane: lane.unwrap_or_default(),
            }))
        }
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job::otp("+919812345612", "4242", std::time::Duration::from_secs(600)).unwrap()
    }

    #[test]
    fn an_entry_names_its_job_and_lane_and_reads_back() {
        let job = job();
        let value = entry(&job, "m-1").unwrap();
        assert_eq!(value, format!("{} otp", job.id));
        assert_eq!(
            parse(&value),
            Some(Indexed {
                job_id: job.id.to_string(),
                lane: "otp".into()
            })
        );
    }

    #[test]
    fn a_send_without_a_message_id_is_not_indexed_and_odd_values_are_not_read() {
        let job = job();
        assert_eq!(entry(&job, UNKNOWN_MESSAGE_ID), None);
        assert_eq!(entry(&job, ""), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("no-lane"), None);
        assert_eq!(parse(" otp"), None);
    }
}
