//! Dead letters for operators: list, show, replay and purge them (`herald-worker dlq`).
//!
//! Owns reading the dead-letter hash ([`Keys::dead`]) and its per-lane time indexes
//! ([`Keys::dead_index`]), and the two ways a dead letter leaves them:
//!
//! - **replay** ([`DeadLetters::replay`]): back onto its lane with a fresh retry budget and
//!   its history kept: an [`Attempt::REPLAYED`] marker is appended, and the worker counts
//!   only the attempts after it. Each move is one atomic script (`lua/replay.lua`), so a
//!   replay killed at any point leaves every job either still dead or back on its lane, never
//!   both, never neither; the script re-checks the letter is still there (and unchanged), so
//!   replaying the same id twice enqueues it once. Deciding (is it expired? does `--extend`
//!   give it a new deadline?) is a pure function, [`plan`].
//! - **purge** ([`DeadLetters::purge`]): deleted from the hash and its index together.
//!
//! It never sends anything and never dead-letters (that is the worker's, [`crate::settle`]).
//! The text people read is rendered here too ([`render_list`], [`render_replay`],
//! [`render_purge`]), as [`crate::status`] does, so the binary only picks what to print.

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::Duration;

use deadpool_redis::PoolError;
use deadpool_redis::redis::{self, AsyncCommands, RedisError, Script};
use herald_shared::job::Attempt;
use herald_shared::keys::JOB_FIELD;
use herald_shared::redis_pool::{Connection, Pool};
use herald_shared::redis_pool::{error_reason, pool_error_reason};
use herald_shared::{Keys, Lane};
use serde::Serialize;
use time::OffsetDateTime;

use crate::dead_letter::DeadLetter;

static REPLAY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/replay.lua")));

/// Dead letters read, and replay scripts sent, per Redis round trip.
const CHUNK: usize = 200;
/// How often a replay re-reads a dead letter that changed between its read and its move.
const CHANGED_RETRIES: usize = 3;
/// The most ids a report lists one by one; the rest are counted.
const SHOWN: usize = 20;

/// A Redis failure; the caller reports it and exits (there is nothing to retry by hand).
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("Redis: {}", error_reason(.0))]
    Redis(#[from] RedisError),
    #[error("Redis: {}", pool_error_reason(.0))]
    Pool(PoolError),
    /// A stored dead letter that is not a dead letter's JSON (written by something else?).
    #[error(
        "dead letter {id:?} is not a dead letter's JSON ({reason}); was it written by another program?"
    )]
    Unreadable { id: String, reason: String },
}

impl From<PoolError> for DlqError {
    fn from(err: PoolError) -> Self {
        match err {
            PoolError::Backend(err) => DlqError::Redis(err),
            other => DlqError::Pool(other),
        }
    }
}

/// What `dlq list` shows.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub lane: Option<Lane>,
    /// A case-insensitive substring of the reason.
    pub reason: Option<String>,
    pub limit: Option<usize>,
}

/// Which dead letters a replay takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    All,
    /// Named ones; an id that is not dead is reported.
    Ids(Vec<String>),
    /// Those whose reason holds this text, case-insensitive.
    Reason(String),
}

/// Which dead letters a purge deletes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PurgeSelection {
    All,
    Ids(Vec<String>),
    /// Dead for longer than this (by the index's Redis-clock timestamps).
    OlderThan(Duration),
}

#[derive(Clone, Copy, Debug, Default)]
pub struct ReplayOptions {
    /// Gives every replayed job with a deadline at least this long from now.
    pub extend: Option<Duration>,
    /// Decide and report, change nothing.
    pub dry_run: bool,
}

/// One line of `dlq list`, and one object of `dlq list --json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub id: String,
    pub lane: Lane,
    /// Masked (`+91******0001`); empty for an entry that never decoded into a job.
    pub phone: String,
    pub reason: String,
    /// Send attempts, over every life of the job (replay markers not counted).
    pub attempts: usize,
    #[serde(with = "time::serde::rfc3339")]
    pub dead_at: OffsetDateTime,
}

impl From<&DeadLetter> for Row {
    fn from(letter: &DeadLetter) -> Row {
        let job = letter.job.as_ref();
        Row {
            id: letter.job_id.clone(),
            lane: letter.lane,
            phone: job
                .map(|j| herald_shared::phone::mask(&j.phone()))
                .unwrap_or_default(),
            reason: letter.reason.clone(),
            attempts: job.map_or(0, |j| j.attempts.iter().filter(|a| a.is_send()).count()),
            dead_at: letter.dead_at,
        }
    }
}

/// Why one selected dead letter was not replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotReplayed {
    /// No dead letter has this id: never dead, or already replayed or purged.
    NotFound,
    /// The entry never decoded into a job: there is nothing to put back.
    NoJob,
    /// Its deadline has passed; `--extend` would give it a new one.
    Expired { deadline: OffsetDateTime },
    /// The stored dead letter is not readable JSON.
    Unreadable(String),
    /// It was dead-lettered anew each time it was read (a worker keeps failing it right now).
    Changing,
}

/// Per-lane counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LaneCounts {
    pub otp: usize,
    pub booking: usize,
}

impl LaneCounts {
    fn add(&mut self, lane: Lane) {
        match lane {
            Lane::Otp => self.otp += 1,
            Lane::Booking => self.booking += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.otp + self.booking
    }
}

/// What a replay did (or, in a dry run, would do).
#[derive(Clone, Debug, Default)]
pub struct ReplayReport {
    pub dry_run: bool,
    /// Dead letters selected: named ids (found or not), or those the query matched.
    pub matched: usize,
    /// Put back on their lanes.
    pub replayed: LaneCounts,
    /// Of those, given a new deadline by `--extend`.
    pub extended: usize,
    /// Selected but left dead, with why, in the order met.
    pub not_replayed: Vec<(String, NotReplayed)>,
}

impl ReplayReport {
    /// True when everything selected was replayed: exit 0.
    pub fn complete(&self) -> bool {
        self.not_replayed.is_empty()
    }
}

/// What a purge deleted (or, without `confirmed`, would delete).
#[derive(Clone, Debug, Default)]
pub struct PurgeReport {
    /// False: nothing was deleted; `ids` is what would be.
    pub confirmed: bool,
    pub ids: Vec<String>,
    /// Named ids that are not dead letters.
    pub not_found: Vec<String>,
}

impl PurgeReport {
    /// True when every named dead letter was found: exit 0.
    pub fn complete(&self) -> bool {
        self.not_found.is_empty()
    }
}

/// What replaying one dead letter comes to, decided without I/O.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    Skip(NotReplayed),
    /// Put `job_json` on `lane`; `extended` when `--extend` moved its deadline.
    Move {
        lane: Lane,
        job_json: String,
        extended: bool,
    },
}

/// Decides what replaying `letter` at `now` comes to: the job with a replay marker appended
/// (a fresh budget, the history kept) and, with `extend`, a deadline at least that far off;
/// or why it cannot be replayed.
pub fn plan(letter: &DeadLetter, extend: Option<Duration>, now: OffsetDateTime) -> Plan {
    let Some(job) = &letter.job else {
        return Plan::Skip(NotReplayed::NoJob);
    };
    let mut job = job.clone();
    let mut extended = false;
    if let Some(deadline) = job.not_after {
        match extend {
            Some(extra) if now + extra > deadline => {
                job.not_after = Some(now + extra);
                extended = true;
            }
            Some(_) => {}
            None if job.is_expired(now) => return Plan::Skip(NotReplayed::Expired { deadline }),
            None => {}
        }
    }
    job.attempts.push(Attempt::replayed(now, &letter.reason));
    Plan::Move {
        lane: letter.lane,
        job_json: job.to_json(),
        extended,
    }
}

/// A dead letter as stored: its id and the JSON exactly as read (what the replay script
/// compares against).
struct Stored {
    id: String,
    json: String,
}

/// A dead letter about to be moved back onto `lane` as `job_json`.
struct Move {
    stored: Stored,
    lane: Lane,
    job_json: String,
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
}

impl DeadLetters {
    pub fn new(pool: Pool, keys: Keys) -> Self {
        DeadLetters { pool, keys }
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
        progress: &mut dyn FnMut(usize, usize),
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
                    job_json,
                    extended,
                } => moves.push(Move {
                    stored,
                    lane,
                    job_json,
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
            let mut call = REPLAY.prepare_invoke();
            call.key(self.keys.dead())
                .key(self.keys.dead_index(m.lane))
                .key(self.keys.lane(m.lane))
                .arg(&m.stored.id)
                .arg(&m.stored.json)
                .arg(&m.job_json)
                .arg(JOB_FIELD);
            pipe.invoke_script(&call);
        }
        let results: Vec<i64> = pipe.query_async(&mut *conn).await?;
        let mut changed = Vec::new();
        for (m, result) in moves.into_iter().zip(results) {
            match result {
                1 => {
                    report.replayed.add(m.lane);
                    report.extended += usize::from(m.extended);
                }
                0 if explicit => report
                    .not_replayed
                    .push((m.stored.id, NotReplayed::NotFound)),
                // Replayed or purged by someone else since the read: no longer selected.
                0 => report.matched -= 1,
                // Read again next round, and counted again then.
                _ if retry => {
                    report.matched -= 1;
                    changed.push(m.stored.id);
                }
                _ => report
                    .not_replayed
                    .push((m.stored.id, NotReplayed::Changing)),
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
                let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await?;
                let now_ms = secs * 1000 + micros / 1000;
                let cutoff = now_ms - i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
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

fn parse(stored: &Stored) -> Result<DeadLetter, DlqError> {
    serde_json::from_str(&stored.json).map_err(|err| DlqError::Unreadable {
        id: stored.id.clone(),
        reason: err.to_string(),
    })
}

/// Case-insensitive substring match of `--reason`.
pub fn reason_matches(reason: &str, text: &str) -> bool {
    reason.to_lowercase().contains(&text.to_lowercase())
}

/// `ids` without repeats, first occurrence kept.
fn dedup(ids: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    ids.iter().filter(|id| seen.insert(*id)).cloned().collect()
}

/// A dead letter as `dlq show` prints it: pretty JSON, everything but an OTP's code, which
/// is a secret an operator never needs and a terminal or a ticket must not keep.
pub fn to_pretty_json(letter: &DeadLetter) -> String {
    let mut value = serde_json::to_value(letter).expect("a dead letter serializes");
    if let Some(code) = value.pointer_mut("/job/payload/code") {
        *code = serde_json::Value::String("[redacted]".into());
    }
    serde_json::to_string_pretty(&value).expect("a JSON value serializes")
}

/// `2026-11-24T10:30:00Z`: to the second, for tables.
fn short_time(at: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_else(|_| at.to_string())
}

/// The table of `dlq list`; the reason, which may be long, comes last.
pub fn render_list(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "no dead letters\n".to_string();
    }
    let mut out = format!(
        "{:<38} {:<8} {:<15} {:>8}  {:<21} {}\n",
        "ID", "LANE", "PHONE", "ATTEMPTS", "DEAD AT", "REASON"
    );
    for row in rows {
        out.push_str(&format!(
            "{:<38} {:<8} {:<15} {:>8}  {:<21} {}\n",
            row.id,
            row.lane.as_str(),
            row.phone,
            row.attempts,
            short_time(row.dead_at),
            render_reason(&row.reason)
        ));
    }
    out
}

/// A reason on one line, cut to 100 characters for tables (`dlq show` has it whole).
pub fn render_reason(reason: &str) -> String {
    const MAX: usize = 100;
    let flat = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAX {
        return flat;
    }
    let mut cut: String = flat.chars().take(MAX - 1).collect();
    cut.push('…');
    cut
}

/// The summary of `dlq replay`.
pub fn render_replay(report: &ReplayReport) -> String {
    let mut out = String::new();
    let r = &report.replayed;
    let verb = if report.dry_run {
        "would replay"
    } else {
        "replayed"
    };
    if report.matched == 0 && report.complete() {
        return "no dead letters matched; nothing to replay\n".to_string();
    }
    out.push_str(&format!(
        "{verb} {} of {} selected dead letters",
        r.total(),
        report.matched
    ));
    if r.total() > 0 {
        out.push_str(&format!(" (otp {}, booking {})", r.otp, r.booking));
    }
    if report.extended > 0 {
        out.push_str(&format!(
            "; {} given a new deadline by --extend",
            report.extended
        ));
    }
    out.push('\n');
    if report.dry_run {
        out.push_str("dry run: nothing was changed\n");
    }
    if !report.not_replayed.is_empty() {
        out.push_str(&format!("not replayed: {}\n", report.not_replayed.len()));
        for (id, why) in report.not_replayed.iter().take(SHOWN) {
            out.push_str(&format!("  {id}: {}\n", explain(id, why)));
        }
        if report.not_replayed.len() > SHOWN {
            out.push_str(&format!(
                "  ... and {} more (see `herald-worker dlq list`)\n",
                report.not_replayed.len() - SHOWN
            ));
        }
    }
    out
}

fn explain(id: &str, why: &NotReplayed) -> String {
    match why {
        NotReplayed::NotFound => {
            "not found: no dead letter has this id (already replayed or purged?); see `herald-worker dlq list`".into()
        }
        NotReplayed::NoJob => format!(
            "no job to replay: the entry never decoded into one; see `herald-worker dlq show {id}`"
        ),
        NotReplayed::Expired { deadline } => format!(
            "expired at {}; give it a new deadline with --extend (e.g. --extend 10m)",
            short_time(*deadline)
        ),
        NotReplayed::Unreadable(reason) => format!("unreadable dead letter ({reason})"),
        NotReplayed::Changing => {
            "dead-lettered again while being replayed (a worker keeps failing it); try again".into()
        }
    }
}

/// The summary of `dlq purge`.
pub fn render_purge(report: &PurgeReport) -> String {
    let mut out = String::new();
    let n = report.ids.len();
    if report.confirmed {
        out.push_str(&format!("deleted {n} dead letters\n"));
    } else if n == 0 {
        out.push_str("nothing to purge\n");
    } else {
        out.push_str(&format!("would delete {n} dead letters:\n"));
        for id in report.ids.iter().take(SHOWN) {
            out.push_str(&format!("  {id}\n"));
        }
        if n > SHOWN {
            out.push_str(&format!("  ... and {} more\n", n - SHOWN));
        }
        out.push_str("nothing was deleted: run again with --yes to delete them\n");
    }
    for id in &report.not_found {
        out.push_str(&format!("  {id}: not found: no dead letter has this id\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::Job;

    fn letter(job: Option<Job>) -> DeadLetter {
        DeadLetter {
            job_id: job
                .as_ref()
                .map_or("entry:1-0".into(), |j| j.id.to_string()),
            lane: Lane::Otp,
            reason: "exhausted: 3 attempts failed, last: HTTP 500".into(),
            consumer: "w1".into(),
            dead_at: OffsetDateTime::now_utc(),
            job,
            raw: None,
        }
    }

    fn otp(valid_for: Duration) -> Job {
        Job::otp("+919000000001", "123456", valid_for).unwrap()
    }

    fn moved(plan: Plan) -> (Job, bool) {
        match plan {
            Plan::Move {
                job_json, extended, ..
            } => (Job::from_json(job_json.as_bytes()).unwrap(), extended),
            Plan::Skip(why) => panic!("not replayed: {why:?}"),
        }
    }

    #[test]
    fn a_replayed_job_keeps_its_history_and_gets_a_marker() {
        let mut job = otp(Duration::from_secs(600));
        job.attempts.push(Attempt {
            at: job.created_at,
            outcome: "transient".into(),
            status: Some(500),
            error: Some("HTTP 500".into()),
            body: None,
            consumer: Some("w1".into()),
        });
        let now = job.created_at + Duration::from_secs(1);
        let (replayed, extended) = moved(plan(&letter(Some(job.clone())), None, now));
        assert!(!extended);
        assert_eq!(replayed.not_after, job.not_after);
        assert_eq!(replayed.attempts.len(), 2);
        assert_eq!(replayed.attempts[0], job.attempts[0]);
        assert_eq!(replayed.attempts[1].outcome, Attempt::REPLAYED);
        assert_eq!(replayed.attempts[1].at, now);
        assert!(
            replayed.attempts[1]
                .error
                .as_deref()
                .unwrap()
                .contains("HTTP 500")
        );
        assert!(replayed.attempts_since_replay().is_empty());
    }

    #[test]
    fn an_expired_otp_needs_extend() {
        let job = otp(Duration::from_secs(60));
        let deadline = job.not_after.unwrap();
        let later = deadline + Duration::from_secs(5);
        assert_eq!(
            plan(&letter(Some(job.clone())), None, later),
            Plan::Skip(NotReplayed::Expired { deadline })
        );
        let (replayed, extended) = moved(plan(
            &letter(Some(job.clone())),
            Some(Duration::from_secs(600)),
            later,
        ));
        assert!(extended);
        assert_eq!(replayed.not_after, Some(later + Duration::from_secs(600)));
        // --extend never shortens a deadline further off than it would set.
        let (kept, extended) = moved(plan(
            &letter(Some(job.clone())),
            Some(Duration::from_secs(1)),
            job.created_at,
        ));
        assert!(!extended);
        assert_eq!(kept.not_after, job.not_after);
    }

    #[test]
    fn a_booking_has_no_deadline_to_extend() {
        let job = Job::booking(herald_shared::job::Booking {
            phone: "+919000000001".into(),
            booking_id: "B1".into(),
            service: "Haircut".into(),
            date: "2026-11-24".into(),
            time: "10:30".into(),
            image_url: None,
        })
        .unwrap();
        let far = job.created_at + Duration::from_secs(86_400 * 30);
        let (replayed, extended) =
            moved(plan(&letter(Some(job)), Some(Duration::from_secs(60)), far));
        assert!(!extended);
        assert_eq!(replayed.not_after, None);
    }

    #[test]
    fn an_entry_that_never_decoded_cannot_be_replayed() {
        assert_eq!(
            plan(&letter(None), None, OffsetDateTime::now_utc()),
            Plan::Skip(NotReplayed::NoJob)
        );
    }

    #[test]
    fn reasons_match_case_insensitively_and_rows_mask_phones() {
        assert!(reason_matches(
            "permanent: HTTP 400: Invalid template",
            "invalid TEMPLATE"
        ));
        assert!(!reason_matches("expired", "http"));
        let row = Row::from(&letter(Some(otp(Duration::from_secs(60)))));
        assert!(!row.phone.contains("9000000001"), "{}", row.phone);
        assert!(row.phone.ends_with("01"), "{}", row.phone);
        let json = serde_json::to_value(&row).unwrap();
        for field in ["id", "lane", "phone", "reason", "attempts", "dead_at"] {
            assert!(json.get(field).is_some(), "{field} in {json}");
        }
    }

    #[test]
    fn show_hides_the_otp_code() {
        let shown = to_pretty_json(&letter(Some(otp(Duration::from_secs(60)))));
        assert!(!shown.contains("123456"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(
            shown.contains("+919000000001"),
            "the rest is whole: {shown}"
        );
    }

    #[test]
    fn ids_are_deduplicated_in_order() {
        let ids: Vec<String> = ["b", "a", "b", "c", "a"].map(String::from).to_vec();
        assert_eq!(dedup(&ids), ["b", "a", "c"]);
    }
}
