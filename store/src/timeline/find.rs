//! Looking a job up: its record, else its dead letter, else its lane.

use std::collections::HashMap;

use deadpool_redis::redis::AsyncCommands;
use deadpool_redis::redis::streams::StreamRangeReply;
use herald_shared::redis_pool::{Pool, RedisFailure};
use herald_shared::{Job, Lane};

use super::{JobState, JobTimeline, build, from_dead_letter, from_lane};
use crate::Keys;
use crate::dead_letter::DeadLetter;
use crate::keys::{JOB_FIELD, WORKER_GROUP};
use crate::record::field;

/// The timeline of `job_id`: its timeline hash, else its dead letter, else its lane entry.
/// `None` when Herald knows nothing of it (never enqueued, expired, or enqueued so long ago
/// that the bounded lane search does not reach it).
///
/// A job settled between those reads (its record written and its entry deleted in one
/// script) would be in none of them: the record and the dead letter are read once more
/// after a lane search that found nothing.
pub async fn find(
    pool: &Pool,
    keys: &Keys,
    job_id: &str,
) -> Result<Option<JobTimeline>, RedisFailure> {
    if let Some(found) = find_settled(pool, keys, job_id).await? {
        return Ok(Some(found));
    }
    if let Some(found) = find_on_lanes(pool, keys, job_id).await? {
        return Ok(Some(found));
    }
    find_settled(pool, keys, job_id).await
}

/// The timeline of a job that has a record (sent, retrying, tracked) or a dead letter.
async fn find_settled(
    pool: &Pool,
    keys: &Keys,
    job_id: &str,
) -> Result<Option<JobTimeline>, RedisFailure> {
    let mut conn = pool.get().await?;
    let fields: HashMap<String, String> = conn.hgetall(keys.job_status(job_id)).await?;
    if !fields.is_empty() {
        let mut timeline = build(job_id, &fields);
        // A queued job a replica has read is in its hand: the lane's pending list says so.
        let lane = fields.get(field::LANE).and_then(|l| l.parse::<Lane>().ok());
        if let (JobState::Queued, Some(lane), Some(entry)) =
            (timeline.state, lane, fields.get(field::ENTRY))
            && is_pending(&mut conn, &keys.lane(lane), entry).await
        {
            timeline.state = JobState::InHand;
        }
        return Ok(Some(timeline));
    }
    let letter: Option<String> = conn.hget(keys.dead(), job_id).await?;
    Ok(letter
        .and_then(|json| serde_json::from_str::<DeadLetter>(&json).ok())
        .map(|letter| from_dead_letter(&letter)))
}

/// The timeline of the job Interakt's message `message_id` was sent for.
pub async fn find_by_message_id(
    pool: &Pool,
    keys: &Keys,
    message_id: &str,
) -> Result<Option<JobTimeline>, RedisFailure> {
    let indexed = {
        let mut conn = pool.get().await?;
        crate::message_index::find(&mut conn, keys, message_id).await?
    };
    match indexed {
        Some(indexed) => find(pool, keys, &indexed.job_id).await,
        None => Ok(None),
    }
}

/// Lane entries read per page, and pages read at most, per lane.
const LANE_PAGE: usize = 500;
const LANE_PAGES: usize = 20;
/// How far before a job's creation its entry may sit (clocks of producer and Redis differ).
const LANE_SKEW_MS: u64 = 5_000;

/// Looks for a job that has not been settled yet on its lane. Job ids are UUID v7, stamped
/// when the job was created, and stream ids are stamped when it was enqueued, so the search
/// starts just before the job's creation and reads a bounded number of entries.
async fn find_on_lanes(
    pool: &Pool,
    keys: &Keys,
    job_id: &str,
) -> Result<Option<JobTimeline>, RedisFailure> {
    let Some(created_ms) = uuid_v7_millis(job_id) else {
        return Ok(None);
    };
    let needle = format!("\"id\":\"{job_id}\"");
    let mut conn = pool.get().await?;
    for lane in Lane::ALL {
        let stream = keys.lane(lane);
        let mut start = format!("{}-0", created_ms.saturating_sub(LANE_SKEW_MS));
        for _ in 0..LANE_PAGES {
            let page: StreamRangeReply = conn.xrange_count(&stream, &start, "+", LANE_PAGE).await?;
            for entry in &page.ids {
                let Some(raw) = entry.get::<String>(JOB_FIELD) else {
                    continue;
                };
                if !raw.contains(&needle) {
                    continue;
                }
                let Ok(job) = Job::from_json(raw.as_bytes()) else {
                    continue;
                };
                let in_hand = is_pending(&mut conn, &stream, &entry.id).await;
                return Ok(Some(from_lane(&job, in_hand)));
            }
            match page.ids.last() {
                Some(last) if page.ids.len() == LANE_PAGE => start = format!("({}", last.id),
                _ => break,
            }
        }
    }
    Ok(None)
}

/// The creation time (Unix ms) of a UUID v7, `None` for anything else.
fn uuid_v7_millis(id: &str) -> Option<u64> {
    let uuid = uuid::Uuid::parse_str(id).ok()?;
    let (secs, nanos) = uuid.get_timestamp()?.to_unix();
    (uuid.get_version_num() == 7).then(|| secs * 1000 + u64::from(nanos) / 1_000_000)
}

// ---------------------------------------------------------------------------------------
// Rendering.

/// Whether stream entry `entry` is pending in the workers' group (a replica holds it).
async fn is_pending(
    conn: &mut herald_shared::redis_pool::Connection,
    stream: &str,
    entry: &str,
) -> bool {
    let pending: deadpool_redis::redis::Value = deadpool_redis::redis::cmd("XPENDING")
        .arg(stream)
        .arg(WORKER_GROUP)
        .arg(entry)
        .arg(entry)
        .arg(1)
        .query_async(conn)
        .await
        .unwrap_or(deadpool_redis::redis::Value::Nil);
    matches!(pending, deadpool_redis::redis::Value::Array(ref v) if !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v7_ids_give_their_creation_time() {
        let job = Job::otp("+919999999912", "1234", std::time::Duration::from_secs(60)).unwrap();
        let ms = uuid_v7_millis(&job.id.to_string()).unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64 * 1000;
        assert!(now.abs_diff(ms) < 60_000, "{ms} vs {now}");
        assert_eq!(uuid_v7_millis(&uuid::Uuid::new_v4().to_string()), None);
        assert_eq!(uuid_v7_millis("entry:1-0"), None);
    }
}
