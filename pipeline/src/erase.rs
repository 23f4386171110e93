//! Erasing OTP codes from dead letters once their deadline has passed: a code is a secret,
//! and an OTP past its deadline can never be sent, so no letter keeps it longer.
//!
//! A letter written after the deadline never had its code (the settle stage erases it
//! first); one dead-lettered earlier keeps it until then, for a replay, and is indexed by its
//! deadline ([`Keys::dead_codes`]). This task takes the due ones off that index and erases
//! each with one compare-and-set script (`store/src/lua/erase.lua`). It never moves a letter.

use std::time::Duration;

use deadpool_redis::redis::AsyncCommands;
use herald_shared::backoff::{Next, ReconnectBackoff};
use herald_shared::redis_pool::{Pool, RedisFailure};
use herald_store::Keys;
use herald_store::dead_letter::DeadLetter;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use herald_store::calls::dead_letters;

/// How often the index is looked at.
const EVERY: Duration = Duration::from_secs(5);
/// Letters erased per look.
const BATCH: isize = 100;

/// Erases due codes every few seconds until `stop`.
pub async fn run_eraser(pool: Pool, keys: Keys, stop: CancellationToken) {
    let mut backoff = ReconnectBackoff::new("code eraser");
    while !stop.is_cancelled() {
        match erase_due(&pool, &keys).await {
            Ok(erased) => {
                backoff.succeeded();
                if erased > 0 {
                    tracing::debug!(
                        erased,
                        "OTP codes erased from dead letters past their deadline"
                    );
                }
            }
            Err(err) => {
                if backoff.failed(&err) == Next::Stop {
                    return;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Erases the codes of letters whose deadline has passed; how many were erased.
pub async fn erase_due(pool: &Pool, keys: &Keys) -> Result<usize, RedisFailure> {
    let mut conn = pool.get().await?;
    let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let due: Vec<String> = conn
        .zrangebyscore_limit(keys.dead_codes(), "-inf", now_ms, 0, BATCH)
        .await?;
    let mut erased = 0;
    for id in due {
        let stored: Option<String> = conn.hget(keys.dead(), &id).await?;
        let erased_json = stored.as_deref().and_then(|json| {
            let mut letter: DeadLetter = serde_json::from_str(json).ok()?;
            letter.job.as_mut()?.erase_code().then_some(())?;
            serde_json::to_string(&letter).ok()
        });
        let erase = dead_letters::erase(
            keys,
            &id,
            stored.as_deref().unwrap_or_default(),
            erased_json.as_deref().unwrap_or_default(),
        );
        let replaced: i64 = erase.invoke(&mut conn).await?;
        erased += replaced as usize;
    }
    Ok(erased)
}

#[cfg(test)]
mod tests {
    use super::*;
    use deadpool_redis::redis::AsyncCommands;
    use herald_shared::Lane;
    use herald_store::dead_letter::DeadReason;
    use herald_tests::scenario::{SandboxSetup, Scenario, otp};

    /// Observed in a chaos run: two replicas' erasers found the same due letter, and the
    /// second read it after the first had erased it. With nothing left to erase it wrote an
    /// empty string over the letter. A letter with nothing to erase must stay whole; only
    /// its index entry goes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_eraser_leaves_a_letter_already_erased_whole() {
        let mut s = Scenario::start(SandboxSetup::default()).await;
        let mut job = otp("+919000000003", Duration::from_secs(1));
        assert!(job.erase_code(), "the first eraser's work");
        let id = job.id.to_string();
        let reason = DeadReason::Expired {
            deadline: job.not_after,
            before_retry: true,
        };
        let letter = DeadLetter {
            job: Some(job),
            ..DeadLetter::new(
                id.clone(),
                Lane::Otp,
                &reason,
                "w".into(),
                OffsetDateTime::now_utc(),
            )
        };
        let json = serde_json::to_string(&letter).unwrap();
        let _: () = s.conn.hset(s.keys.dead(), &id, &json).await.unwrap();
        // Still on the index, and due: what the second eraser sees.
        let _: () = s.conn.zadd(s.keys.dead_codes(), &id, 0).await.unwrap();

        let pool = herald_shared::redis_pool::create_pool(&s.redis.url(), 2).unwrap();
        let erased = erase_due(&pool, &s.keys).await.unwrap();
        assert_eq!(erased, 0, "nothing was left to erase");
        let stored: String = s.conn.hget(s.keys.dead(), &id).await.unwrap();
        assert_eq!(stored, json, "the letter is whole");
        let indexed: u64 = s.conn.zcard(s.keys.dead_codes()).await.unwrap();
        assert_eq!(indexed, 0, "and off the index");
    }
}
