//! Erasing OTP codes from dead letters once their deadline has passed: a code is a secret,
//! and an OTP past its deadline can never be sent, so no letter keeps it longer.
//!
//! A letter written after the deadline never had its code (the settle stage erases it
//! first); one dead-lettered earlier keeps it until then, for a replay, and is indexed by its
//! deadline ([`Keys::dead_codes`]). This task takes the due ones off that index and erases
//! each with one compare-and-set script (`lua/erase.lua`). It never moves a letter.

use std::sync::LazyLock;
use std::time::Duration;

use deadpool_redis::redis::{AsyncCommands, Script};
use herald_shared::Keys;
use herald_shared::backoff::ReconnectBackoff;
use herald_shared::dead_letter::DeadLetter;
use herald_shared::redis_pool::{Pool, RedisFailure};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

static ERASE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/erase.lua")));

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
            Err(err) => backoff.failed(&err),
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
        let replaced: i64 = ERASE
            .key(keys.dead())
            .key(keys.dead_codes())
            .arg(&id)
            .arg(stored.unwrap_or_default())
            .arg(erased_json.unwrap_or_default())
            .invoke_async(&mut conn)
            .await?;
        erased += replaced as usize;
    }
    Ok(erased)
}
