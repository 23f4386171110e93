//! Dead letters in Redis: the hash ([`Keys::dead`]) and its per-lane time indexes
//! ([`Keys::dead_index`]) read in chunks, and the two moves out of them: the replay script
//! (`store/src/lua/replay.lua`, one atomic compare-and-move per letter) and the purge.

use std::collections::VecDeque;

use deadpool_redis::redis::{self, AsyncCommands, Value};
use herald_shared::redis_pool::{Connection, Pool};
use herald_shared::{Job, Lane};
use herald_store::Keys;
use herald_store::dead_letter::DeadLetter;

use time::OffsetDateTime;

use super::plan::{NotReplayed, Plan, PurgeReport, ReplayReport, dedup, plan, reason_matches};
use super::{
    DlqError, ListFilter, PAGE_SCAN_LIMIT, Page, PageCursor, PageQuery, PurgeSelection,
    ReplayOptions, Selection,
};

use herald_store::calls::dead_letters::{self, Replayed};
use herald_store::keys::DEFAULT_IDEMPOTENCY_WINDOW;
use herald_store::scripts::REPLAY;

/// Dead letters read, and replay scripts sent, per Redis round trip.
const CHUNK: usize = 200;
/// How often a replay re-reads a dead letter that changed between its read and its move.
const CHANGED_RETRIES: usize = 3;

/// A dead letter as stored: its id and the JSON exactly as read (what the replay script
/// compares against).
struct Stored {
    id: String,
    json: String,
}

/// A dead letter about to be moved back onto `lane` as `job`.
struct Move {
    stored: Stored,
    lane: Lane,
    job: Box<Job>,
    extended: bool,
}

/// One id of the index, with when it died (ms, Redis clock).
struct Indexed {
    id: String,
    dead_at_ms: f64,
}

/// The dead letters of one namespace.
#[derive(Clone)]
pub struct DeadLetters {
    pool: Pool,
    keys: Keys,
    /// How long a replayed job's idempotency key holds it once it finishes, when its record
    /// does not say (its producer's window is what the record keeps).
    idempotency_window_ms: u64,
}

impl DeadLetters {
    pub fn new(pool: Pool, keys: Keys) -> Self {
        DeadLetters {
            pool,
            keys,
            idempotency_window_ms: DEFAULT_IDEMPOTENCY_WINDOW.as_millis() as u64,
        }
    }

    /// Newest first, filtered. Dead letters that do not parse are skipped with a warning.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<DeadLetter>, DlqError> {
        let mut conn = self.pool.get().await?;
        let lanes = filter.lane.map_or(Lane::ALL.to_vec(), |lane| vec![lane]);
        let mut ids = self.index(&mut conn, &lanes, None).await?;
        ids.reverse();
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for chunk in ids.chunks(CHUNK) {
            for stored in self.fetch(&mut conn, chunk.iter().map(|i| &i.id)).await? {
                let Some(stored) = stored else { continue };
                let letter = match parse(&stored) {
                    Ok(letter) => letter,
                    Err(err) => {
                        tracing::warn!("{err}");
                        continue;
                    }
                };
                if filter
                    .reason
                    .as_deref()
                    .is_none_or(|text| reason_matches(&letter.reason, text))
                {
                    out.push(letter);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// One page of dead letters, newest first, lanes merged. Reads each lane's index by
    /// rank from the cursor (never the whole index) and the letters of the page; with a
    /// reason filter it reads on in chunks until the page is full or it has read
    /// [`PAGE_SCAN_LIMIT`] letters. A letter that dies meanwhile shifts the ranks: the next
    /// page may repeat one, as any offset listing does.
    pub async fn page(&self, query: &PageQuery) -> Result<Page, DlqError> {
        let mut conn = self.pool.get().await?;
        let (min, max) = self.age_range(&mut conn, query).await?;
        let lanes = query.lane.map_or(Lane::ALL.to_vec(), |lane| vec![lane]);
        let size = query.size.max(1);
        let batch = if query.reason.is_some() { CHUNK } else { size };
        let mut page = Page::default();
        let mut cursors = Vec::new();
        for lane in lanes {
            let key = self.keys.dead_index(lane);
            page.in_range += conn.zcount::<_, _, _, u64>(&key, &min, &max).await?;
            let at = query.cursor.get(lane);
            cursors.push(LaneCursor {
                lane,
                key,
                consumed: at,
                fetched: at,
                buffer: VecDeque::new(),
                done: false,
            });
        }
        loop {
            // The next `batch` ids in merged order (newest first, ties by id).
            let mut chunk: Vec<(usize, String)> = Vec::new();
            while chunk.len() < batch {
                for c in cursors
                    .iter_mut()
                    .filter(|c| c.buffer.is_empty() && !c.done)
                {
                    let ids: Vec<(String, f64)> = redis::cmd("ZRANGE")
                        .arg(&c.key)
                        .arg(&max)
                        .arg(&min)
                        .arg("BYSCORE")
                        .arg("REV")
                        .arg("LIMIT")
                        .arg(c.fetched)
                        .arg(batch)
                        .arg("WITHSCORES")
                        .query_async(&mut conn)
                        .await?;
                    c.done = ids.len() < batch;
                    c.fetched += ids.len();
                    c.buffer.extend(
                        ids.into_iter()
                            .map(|(id, dead_at_ms)| Indexed { id, dead_at_ms }),
                    );
                }
                let newest = cursors
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| c.buffer.front().map(|head| (i, head)))
                    .max_by(|(_, a), (_, b)| {
                        a.dead_at_ms
                            .total_cmp(&b.dead_at_ms)
                            .then_with(|| a.id.cmp(&b.id))
                    })
                    .map(|(i, _)| i);
                let Some(i) = newest else { break };
                let head = cursors[i].buffer.pop_front().expect("a head was just seen");
                chunk.push((i, head.id));
            }
            if chunk.is_empty() {
                return Ok(page);
            }
            let stored = self
                .fetch(&mut conn, chunk.iter().map(|(_, id)| id))
                .await?;
            let mut entries = chunk.iter().zip(stored).peekable();
            while let Some(((i, _), stored)) = entries.next() {
                cursors[*i].consumed += 1;
                page.scanned += 1;
                let letter = stored
                    .as_ref()
                    .map(parse)
                    .and_then(|parsed| parsed.map_err(|err| tracing::warn!("{err}")).ok());
                if let Some(letter) = letter
                    && query
                        .reason
                        .as_deref()
                        .is_none_or(|text| reason_matches(&letter.reason, text))
                {
                    page.letters.push(letter);
                }
                let more = || {
                    cursors
                        .iter()
                        .any(|c| !c.buffer.is_empty() || !c.done || c.consumed < c.fetched)
                };
                let full = page.letters.len() >= size;
                if full || (page.scanned >= PAGE_SCAN_LIMIT && entries.peek().is_none()) {
                    page.next = (entries.peek().is_some() || more()).then(|| {
                        let mut next = PageCursor::default();
                        for c in &cursors {
                            next.set(c.lane, c.consumed);
                        }
                        next
                    });
                    return Ok(page);
                }
            }
        }
    }

    /// The `ZRANGE ... BYSCORE` bounds (ms, Redis clock) of the query's age filters.
    async fn age_range(
        &self,
        conn: &mut Connection,
        query: &PageQuery,
    ) -> Result<(String, String), DlqError> {
        if query.older_than.is_none() && query.newer_than.is_none() {
            return Ok(("-inf".into(), "+inf".into()));
        }
        let now_ms = redis_now_ms(conn).await?;
        let before = |age: std::time::Duration| {
            now_ms
                .saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
                .to_string()
        };
        Ok((
            query.newer_than.map_or("-inf".into(), before),
            query.older_than.map_or("+inf".into(), before),
        ))
    }

    /// One dead letter, or `None` when no dead letter has this id.
    pub async fn get(&self, id: &str) -> Result<Option<DeadLetter>, DlqError> {
        let mut conn = self.pool.get().await?;
        let json: Option<String> = conn.hget(self.keys.dead(), id).await?;
        json.map(|json| {
            parse(&Stored {
                id: id.to_string(),
                json,
            })
        })
        .transpose()
    }

    /// Replays the selected dead letters, oldest first, reporting progress as
    /// `(done, total)` after each batch.
    pub async fn replay(
        &self,
        selection: &Selection,
        options: ReplayOptions,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Result<ReplayReport, DlqError> {
        let mut conn = self.pool.get().await?;
        let ids: Vec<String> = match selection {
            Selection::Ids(ids) => dedup(ids),
            Selection::All | Selection::Reason(_) => self
                .index(&mut conn, &Lane::ALL, None)
                .await?
                .into_iter()
                .map(|i| i.id)
                .collect(),
        };
        let mut report = ReplayReport {
            dry_run: options.dry_run,
            ..ReplayReport::default()
        };
        let total = ids.len();
        progress(0, total);
        let mut done = 0;
        for chunk in ids.chunks(CHUNK) {
            let mut todo = chunk.to_vec();
            for round in 0..=CHANGED_RETRIES {
                let last = round == CHANGED_RETRIES;
                todo = self
                    .replay_batch(&mut conn, &todo, selection, options, &mut report, !last)
                    .await?;
                if todo.is_empty() {
                    break;
                }
            }
            done += chunk.len();
            progress(done, total);
        }
        Ok(report)
    }

    /// Replays one batch. Returns the ids whose dead letter changed between the read and the
    /// move, to be read again (when `retry`; otherwise they are reported as changing).
    async fn replay_batch(
        &self,
        conn: &mut Connection,
        ids: &[String],
        selection: &Selection,
        options: ReplayOptions,
        report: &mut ReplayReport,
        retry: bool,
    ) -> Result<Vec<String>, DlqError> {
        let explicit = matches!(selection, Selection::Ids(_));
        let now = OffsetDateTime::now_utc();
        let mut moves = Vec::new();
        for (id, stored) in ids.iter().zip(self.fetch(conn, ids.iter()).await?) {
            // Named ids that are not dead are reported; a letter that left the index's
            // listing meanwhile (replayed or purged concurrently) is simply no longer selected.
            let Some(stored) = stored else {
                if explicit {
                    report.matched += 1;
                    report
                        .not_replayed
                        .push((id.clone(), NotReplayed::NotFound));
                }
                continue;
            };
            let letter = match parse(&stored) {
                Ok(letter) => letter,
                Err(err) => {
                    report.matched += 1;
                    let reason = match err {
                        DlqError::Unreadable { reason, .. } => reason,
                        other => other.to_string(),
                    };
                    report
                        .not_replayed
                        .push((id.clone(), NotReplayed::Unreadable(reason)));
                    continue;
                }
            };
            if let Selection::Reason(text) = selection
                && !reason_matches(&letter.reason, text)
            {
                continue;
            }
            report.matched += 1;
            match plan(&letter, options.extend, now) {
                Plan::Skip(why) => report.not_replayed.push((id.clone(), why)),
                Plan::Move {
                    lane,
                    job,
                    extended,
                } => moves.push(Move {
                    stored,
                    lane,
                    job,
                    extended,
                }),
            }
        }
        if options.dry_run || moves.is_empty() {
            for m in &moves {
                report.replayed.add(m.lane);
                report.extended += usize::from(m.extended);
            }
            return Ok(Vec::new());
        }

        let mut pipe = redis::pipe();
        // Loaded with every batch, so a Redis that lost its scripts never answers NOSCRIPT.
        pipe.load_script(&REPLAY).ignore();
        for m in &moves {
            let call = dead_letters::replay(
                &self.keys,
                m.lane,
                &m.stored.id,
                &m.stored.json,
                &m.job,
                self.idempotency_window_ms,
            );
            pipe.add_command(call.into_cmd());
        }
        let results: Vec<Value> = pipe.query_async(&mut *conn).await?;
        let mut changed = Vec::new();
        for (m, result) in moves.into_iter().zip(results) {
            match Replayed::decode(&result)? {
                Replayed::Moved { .. } => {
                    report.replayed.add(m.lane);
                    report.extended += usize::from(m.extended);
                }
                Replayed::NotDead if explicit => report
                    .not_replayed
                    .push((m.stored.id, NotReplayed::NotFound)),
                // Replayed or purged by someone else since the read: no longer selected.
                Replayed::NotDead => report.matched -= 1,
                // Read again next round, and counted again then.
                Replayed::Changed if retry => {
                    report.matched -= 1;
                    changed.push(m.stored.id);
                }
                Replayed::Changed => report
                    .not_replayed
                    .push((m.stored.id, NotReplayed::Changing)),
                Replayed::Superseded { by } => report
                    .not_replayed
                    .push((m.stored.id, NotReplayed::Superseded { by })),
                Replayed::KeyTaken { by } => report
                    .not_replayed
                    .push((m.stored.id, NotReplayed::KeyTaken { by })),
                Replayed::Refused(state) => report.not_replayed.push((
                    m.stored.id,
                    NotReplayed::NotDead {
                        state: state.map_or("unknown", |s| s.as_str()).to_string(),
                    },
                )),
            }
        }
        Ok(changed)
    }

    /// Deletes the selected dead letters when `confirmed`; otherwise only says which.
    pub async fn purge(
        &self,
        selection: &PurgeSelection,
        confirmed: bool,
    ) -> Result<PurgeReport, DlqError> {
        let mut conn = self.pool.get().await?;
        let mut report = PurgeReport {
            confirmed,
            ..PurgeReport::default()
        };
        let candidates = match selection {
            PurgeSelection::Ids(ids) => {
                let ids = dedup(ids);
                for (id, stored) in ids.iter().zip(self.fetch(&mut conn, ids.iter()).await?) {
                    match stored {
                        Some(_) => report.ids.push(id.clone()),
                        None => report.not_found.push(id.clone()),
                    }
                }
                std::mem::take(&mut report.ids)
            }
            PurgeSelection::All => {
                // The hash too, so nothing stored without an index entry is left behind.
                let mut ids: Vec<String> = self
                    .index(&mut conn, &Lane::ALL, None)
                    .await?
                    .into_iter()
                    .map(|i| i.id)
                    .collect();
                ids.extend(conn.hkeys::<_, Vec<String>>(self.keys.dead()).await?);
                dedup(&ids)
            }
            PurgeSelection::OlderThan(age) => {
                let now_ms = redis_now_ms(&mut conn).await?;
                // Checked: any --older-than, however long, is a cutoff before every letter.
                let cutoff =
                    now_ms.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
                self.index(&mut conn, &Lane::ALL, Some(cutoff))
                    .await?
                    .into_iter()
                    .map(|i| i.id)
                    .collect()
            }
        };
        if !confirmed {
            report.ids = candidates;
            return Ok(report);
        }
        let explicit = matches!(selection, PurgeSelection::Ids(_));
        for chunk in candidates.chunks(CHUNK) {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for id in chunk {
                pipe.hdel(self.keys.dead(), id);
            }
            for lane in Lane::ALL {
                pipe.zrem(self.keys.dead_index(lane), chunk).ignore();
            }
            let deleted: Vec<i64> = pipe.query_async(&mut conn).await?;
            for (id, deleted) in chunk.iter().zip(deleted) {
                match deleted {
                    1 => report.ids.push(id.clone()),
                    // Gone meanwhile: named ones are reported, listed ones just are no more.
                    _ if explicit => report.not_found.push(id.clone()),
                    _ => {}
                }
            }
        }
        Ok(report)
    }

    /// The ids in `lanes`' indexes, oldest first, lanes merged; with `before_ms`, only those
    /// that died before it (ms, Redis clock).
    async fn index(
        &self,
        conn: &mut Connection,
        lanes: &[Lane],
        before_ms: Option<i64>,
    ) -> Result<Vec<Indexed>, DlqError> {
        let max = before_ms.map_or("+inf".to_string(), |ms| format!("({ms}"));
        let mut all = Vec::new();
        for lane in lanes {
            let entries: Vec<(String, f64)> = conn
                .zrangebyscore_withscores(self.keys.dead_index(*lane), "-inf", &max)
                .await?;
            all.extend(
                entries
                    .into_iter()
                    .map(|(id, dead_at_ms)| Indexed { id, dead_at_ms }),
            );
        }
        all.sort_by(|a, b| {
            a.dead_at_ms
                .total_cmp(&b.dead_at_ms)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(all)
    }

    /// The stored JSON of each id, `None` where there is no dead letter.
    async fn fetch<'a>(
        &self,
        conn: &mut Connection,
        ids: impl Iterator<Item = &'a String>,
    ) -> Result<Vec<Option<Stored>>, DlqError> {
        let ids: Vec<&String> = ids.collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.keys.dead())
            .arg(&ids)
            .query_async(&mut *conn)
            .await?;
        Ok(ids
            .into_iter()
            .zip(values)
            .map(|(id, json)| {
                json.map(|json| Stored {
                    id: id.clone(),
                    json,
                })
            })
            .collect())
    }
}

/// A lane's place in a [`DeadLetters::page`] listing.
struct LaneCursor {
    lane: Lane,
    key: String,
    /// Ids taken into the page (or read past): where the next page starts.
    consumed: usize,
    /// Ids read from the index so far (`consumed` + the buffer + the chunk in hand).
    fetched: usize,
    buffer: VecDeque<Indexed>,
    /// The index has nothing past `fetched`.
    done: bool,
}

/// Redis's clock, in ms: what the dead indexes are scored by.
async fn redis_now_ms(conn: &mut Connection) -> Result<i64, DlqError> {
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(conn).await?;
    Ok(secs.saturating_mul(1000).saturating_add(micros / 1000))
}

fn parse(stored: &Stored) -> Result<DeadLetter, DlqError> {
    serde_json::from_str(&stored.json).map_err(|err| DlqError::Unreadable {
        id: stored.id.clone(),
        reason: err.to_string(),
    })
}
