//! Finding jobs by what an operator knows of them: the job id, Interakt's message id, the
//! idempotency key a producer used, or the booking id (the index the producer writes at
//! enqueue, [`Keys::booking`]). Each lookup is a few key reads, never a scan of the keyspace;
//! a job still queued is looked for on its lane from its creation time on (bounded, see
//! [`timeline::find`]). The timelines are [`JobTimeline`]s, as `track` prints them.

use std::str::FromStr;

use deadpool_redis::redis::AsyncCommands;
use herald_shared::redis_pool::{Pool, RedisFailure};
use herald_store::Keys;
use herald_store::timeline::{self, JobTimeline};

/// The most jobs of one booking shown (its confirmation, reminders, replays: a handful).
pub const MAX_PER_BOOKING: usize = 20;

/// What the text an operator typed is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lookup {
    JobId,
    InteraktId,
    IdempotencyKey,
    BookingId,
}

impl Lookup {
    pub const ALL: [Lookup; 4] = [
        Lookup::JobId,
        Lookup::InteraktId,
        Lookup::IdempotencyKey,
        Lookup::BookingId,
    ];

    /// The name in forms and URLs (`?by=booking_id`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Lookup::JobId => "job_id",
            Lookup::InteraktId => "interakt_id",
            Lookup::IdempotencyKey => "idempotency_key",
            Lookup::BookingId => "booking_id",
        }
    }

    /// For people.
    pub const fn label(self) -> &'static str {
        match self {
            Lookup::JobId => "job id",
            Lookup::InteraktId => "Interakt message id",
            Lookup::IdempotencyKey => "idempotency key",
            Lookup::BookingId => "booking id",
        }
    }
}

impl FromStr for Lookup {
    type Err = String;

    fn from_str(s: &str) -> Result<Lookup, String> {
        Lookup::ALL
            .into_iter()
            .find(|lookup| lookup.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a kind of lookup: use one of job_id, interakt_id, idempotency_key, booking_id"
                )
            })
    }
}

/// A job found, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub by: Lookup,
    pub timeline: JobTimeline,
}

/// The jobs `text` names as `by`, or (with `None`) as any of the four; each job once, in
/// the order of [`Lookup::ALL`], a booking's jobs oldest first.
pub async fn find(
    pool: &Pool,
    keys: &Keys,
    by: Option<Lookup>,
    text: &str,
) -> Result<Vec<Found>, RedisFailure> {
    let text = text.trim();
    let mut found: Vec<Found> = Vec::new();
    if text.is_empty() {
        return Ok(found);
    }
    for lookup in by.map_or(Lookup::ALL.to_vec(), |by| vec![by]) {
        for timeline in find_as(pool, keys, lookup, text).await? {
            if !found.iter().any(|f| f.timeline.job_id == timeline.job_id) {
                found.push(Found {
                    by: lookup,
                    timeline,
                });
            }
        }
    }
    Ok(found)
}

async fn find_as(
    pool: &Pool,
    keys: &Keys,
    lookup: Lookup,
    text: &str,
) -> Result<Vec<JobTimeline>, RedisFailure> {
    let ids: Vec<String> = match lookup {
        Lookup::JobId if uuid_like(text) => vec![text.to_string()],
        Lookup::JobId => Vec::new(),
        Lookup::InteraktId => {
            return Ok(timeline::find_by_message_id(pool, keys, text)
                .await?
                .into_iter()
                .collect());
        }
        Lookup::IdempotencyKey => {
            let mut conn = pool.get().await?;
            let claim: Option<String> = conn.get(keys.idempotency(text)).await?;
            // `<first job id>:<fingerprint>`, or the id alone (claims before fingerprints).
            claim
                .map(|claim| claim.split(':').next().unwrap_or_default().to_string())
                .into_iter()
                .collect()
        }
        Lookup::BookingId => {
            let mut conn = pool.get().await?;
            let mut ids: Vec<String> = conn.smembers(keys.booking(text)).await?;
            // UUID v7: sorted is oldest first.
            ids.sort();
            ids.truncate(MAX_PER_BOOKING);
            ids
        }
    };
    let mut timelines = Vec::new();
    for id in ids {
        if let Some(found) = timeline::find(pool, keys, &id).await? {
            timelines.push(found);
        }
    }
    Ok(timelines)
}

/// 36 characters of hex and dashes: worth looking up as a job id.
fn uuid_like(text: &str) -> bool {
    text.len() == 36 && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_round_trip_their_names_and_refuse_others() {
        for lookup in Lookup::ALL {
            assert_eq!(lookup.as_str().parse::<Lookup>(), Ok(lookup));
        }
        let err = "phone".parse::<Lookup>().unwrap_err();
        assert!(err.contains("phone") && err.contains("booking_id"), "{err}");
        assert!(uuid_like("01a20a7c-5559-746b-a167-c0e196c2e00f"));
        assert!(!uuid_like("B123"));
    }
}
