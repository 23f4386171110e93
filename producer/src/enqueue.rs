//! Putting validated jobs on their lanes: the [`Producer`].
//!
//! A lane is a Redis stream (`Keys::lane`). Each entry has exactly one field,
//! [`JOB_FIELD`], holding the job envelope as JSON. Entries are added with `XADD ... *` and
//! never trimmed: `MAXLEN` would delete jobs nobody has sent yet. Workers create their
//! consumer groups themselves; this module never does.
//!
//! Every job goes through one Lua script (`store/src/lua/enqueue.lua`) that does, atomically:
//!
//! - the idempotency key: two producers racing with the same key enqueue once and both get
//!   the first job's id. The claim holds the first job's id and its content
//!   [`Fingerprint`](herald_shared::job::Fingerprint): a later job under the key with the
//!   same content is a duplicate (the first id, nothing added), one with other content an
//!   [`IdempotencyConflict`] (nothing added either). Claims written before fingerprints (the
//!   id alone) count as the same content;
//! - the replace key: the older unsent job under it is cancelled ([`Enqueued::superseded`]
//!   names it; its timeline says `superseded by <id>`); one already sending or sent stands;
//! - the job's record ([`Keys::job_status`]: its state, where a cancel and the worker's last
//!   check before a send meet, and the start of its timeline);
//! - the job itself: on its lane, or, with a `send_at` in the future, in its lane's
//!   scheduled set (ids scored by due time, bodies stored once) for the workers to move
//!   onto the lane when due.
//!
//! Every enqueue is a pipeline, one command per job, sent in chunks of
//! [`PIPELINE_CHUNK`]. The script is loaded once per producer; if Redis has lost it (a
//! restart, `SCRIPT FLUSH`), the jobs refused with `NOSCRIPT` were not run, so they are sent
//! again after loading it.
//!
//! Validation happens before anything reaches this module: a [`Job`] is only built through
//! the shared model's validating constructors. The convenience methods here validate their
//! arguments first and touch Redis only when they pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deadpool_redis::PoolError;
use deadpool_redis::redis::{self, RedisError, ServerErrorKind, Value};
use herald_shared::Lane;
use herald_shared::job::{Booking, Job};
use herald_shared::redis_pool::Pool;
use herald_shared::validate::ValidationError;
use herald_shared::wire::SendRequest;
use herald_store::Keys;
use herald_store::durability::{Durability, NotReplicated, WaitError};
use herald_store::keys::{JOB_FIELD, TIMELINE_TTL_SECS, WORKER_GROUP};
use herald_store::timeline::{self, Recorded};
use uuid::Uuid;

/// How long an idempotency key holds its first job's id unless configured otherwise.
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// Jobs per pipeline round trip.
pub const PIPELINE_CHUNK: usize = 1_000;

use herald_store::scripts::ENQUEUE as IDEMPOTENT_ADD;

/// The result of one enqueue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The job's id; for a duplicate, the id of the job first enqueued under the key.
    pub job_id: Uuid,
    /// True when the idempotency key was already claimed and nothing was added.
    pub duplicate: bool,
    /// The older unsent job of the same replace key that this one cancelled.
    pub superseded: Option<Uuid>,
    /// When the job is due, when it was scheduled for later.
    pub send_at: Option<time::OffsetDateTime>,
}

impl Enqueued {
    /// A new job, neither a duplicate nor superseding anything.
    pub fn new(job_id: Uuid) -> Enqueued {
        Enqueued {
            job_id,
            duplicate: false,
            superseded: None,
            send_at: None,
        }
    }
}

/// The idempotency key already holds a job with other content (another code, another
/// booking, another kind): nothing was enqueued. Names the key and the first job, never the
/// content (an OTP's code is a secret).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "idempotency_key: {key:?} already holds job {job_id}, enqueued with other content; nothing was enqueued (a new message needs a new key)"
)]
pub struct IdempotencyConflict {
    /// The key, as the caller gave it.
    pub key: String,
    /// The job first enqueued under the key.
    pub job_id: Uuid,
}

/// One job's result in a batch: enqueued (or a duplicate), or refused because its key holds
/// other content. Failures of the whole batch (Redis) are [`Error`]s.
pub type BatchResult = Result<Enqueued, IdempotencyConflict>;

/// Why an enqueue did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input breaks the shared model's rules; Redis was not touched. The message names
    /// each field (`phone: must be in E.164 form ...`).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The idempotency key already holds a job with other content; nothing was enqueued.
    #[error(transparent)]
    IdempotencyConflict(#[from] IdempotencyConflict),
    /// Redis refused or failed the command (or the connection behind it).
    #[error("Redis: {}", herald_shared::redis_pool::error_reason(.0))]
    Redis(#[from] RedisError),
    /// No pooled connection could be had.
    #[error("Redis: {}", herald_shared::redis_pool::pool_error_reason(.0))]
    Pool(PoolError),
    /// Redis answered with something the enqueue commands never return: a key of this
    /// namespace was written by something else.
    #[error("Redis: unexpected reply to an enqueue: {0}")]
    UnexpectedReply(String),
    /// `HERALD_MIN_REPLICAS` is set and fewer replicas acknowledged the enqueue in time: it
    /// is on the primary but may be lost in a failover. Retry with the same idempotency key.
    #[error(transparent)]
    NotReplicated(#[from] NotReplicated),
}

impl From<WaitError> for Error {
    fn from(err: WaitError) -> Self {
        match err {
            WaitError::NotReplicated(err) => Error::NotReplicated(err),
            WaitError::Redis(err) => Error::Redis(err),
        }
    }
}

impl From<PoolError> for Error {
    fn from(err: PoolError) -> Self {
        match err {
            PoolError::Backend(err) => Error::Redis(err),
            other => Error::Pool(other),
        }
    }
}

/// Enqueues jobs into one namespace's lanes.
///
/// Cheap to clone: clones share the pool and the note of whether the script is loaded.
/// Dropping the last clone (and the pool's other holders) closes the connections.
#[derive(Clone, Debug)]
pub struct Producer {
    pool: Pool,
    keys: Keys,
    /// The lane streams' names, built once.
    otp_lane: Arc<str>,
    booking_lane: Arc<str>,
    idempotency_window_ms: u64,
    /// Set once `SCRIPT LOAD` succeeded; cleared when Redis answers `NOSCRIPT`.
    script_loaded: Arc<AtomicBool>,
    /// How many replicas must have an enqueue before it is acknowledged (`--min-replicas`).
    durability: Durability,
}

impl Producer {
    /// A producer over `pool` for the namespace of `keys`, with the default idempotency
    /// window.
    pub fn new(pool: Pool, keys: Keys) -> Producer {
        Producer {
            pool,
            otp_lane: keys.lane(Lane::Otp).into(),
            booking_lane: keys.lane(Lane::Booking).into(),
            keys,
            idempotency_window_ms: millis(DEFAULT_IDEMPOTENCY_WINDOW),
            script_loaded: Arc::new(AtomicBool::new(false)),
            durability: Durability::default(),
        }
    }

    /// Acknowledges an enqueue only once `durability.min_replicas` replicas have it (`WAIT`),
    /// else fails with [`Error::NotReplicated`]: see [`herald_store::durability`].
    pub fn with_durability(mut self, durability: Durability) -> Producer {
        self.durability = durability;
        self
    }

    /// How long an idempotency key keeps returning its first job's id (at least 1 ms).
    pub fn with_idempotency_window(mut self, window: Duration) -> Producer {
        self.idempotency_window_ms = millis(window);
        self
    }

    /// The idempotency window in force.
    pub fn idempotency_window(&self) -> Duration {
        Duration::from_millis(self.idempotency_window_ms)
    }

    /// The pool this producer enqueues through.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The key layout this producer writes to.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Enqueues an OTP that the worker will not send after `valid_for`.
    pub async fn enqueue_otp(
        &self,
        phone: &str,
        code: &str,
        valid_for: Duration,
        idempotency_key: Option<String>,
    ) -> Result<Enqueued, Error> {
        let job = Job::otp(phone, code, valid_for)?.with_idempotency_key(idempotency_key)?;
        self.enqueue(job).await
    }

    /// Enqueues a booking confirmation.
    pub async fn enqueue_booking(
        &self,
        booking: Booking,
        idempotency_key: Option<String>,
    ) -> Result<Enqueued, Error> {
        let job = Job::booking(booking)?.with_idempotency_key(idempotency_key)?;
        self.enqueue(job).await
    }

    /// Enqueues a complete Interakt request body, sent as it is.
    pub async fn enqueue_raw(
        &self,
        request: SendRequest,
        idempotency_key: Option<String>,
    ) -> Result<Enqueued, Error> {
        let job = Job::raw(request)?.with_idempotency_key(idempotency_key)?;
        self.enqueue(job).await
    }

    /// Enqueues one job built by the shared model.
    ///
    /// A job whose idempotency key already holds other content is
    /// [`Error::IdempotencyConflict`].
    pub async fn enqueue(&self, job: Job) -> Result<Enqueued, Error> {
        let mut enqueued = self.enqueue_batch(vec![job]).await?;
        let result = enqueued
            .pop()
            .ok_or_else(|| Error::UnexpectedReply("no result for the one job enqueued".into()))?;
        Ok(result?)
    }

    /// Enqueues many jobs in pipelined chunks, in order, on one connection. Returns one
    /// result per job, in the same order: a job whose idempotency key holds other content is
    /// an [`IdempotencyConflict`] there, and the others are enqueued all the same.
    ///
    /// On error, the chunks before the failing one are enqueued and the rest are not; jobs of
    /// the failing chunk may or may not be. Re-running a batch whose jobs carry idempotency
    /// keys is safe. With a durability set, the whole batch is acknowledged once its replicas
    /// have every job of it, or fails with [`Error::NotReplicated`].
    pub async fn enqueue_batch(&self, jobs: Vec<Job>) -> Result<Vec<BatchResult>, Error> {
        let mut conn = self.pool.get().await?;
        let mut enqueued = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(PIPELINE_CHUNK) {
            enqueued.extend(self.enqueue_chunk(&mut conn, chunk).await?);
        }
        self.durability.confirm(&mut conn, &self.keys).await?;
        Ok(enqueued)
    }

    /// One pipeline for `jobs`, sent again for the jobs refused with `NOSCRIPT`.
    async fn enqueue_chunk(
        &self,
        conn: &mut herald_shared::redis_pool::Connection,
        jobs: &[Job],
    ) -> Result<Vec<BatchResult>, Error> {
        let mut results: Vec<Option<BatchResult>> = vec![None; jobs.len()];
        let mut pending: Vec<usize> = (0..jobs.len()).collect();
        // Once to run everything, once more for what NOSCRIPT refused.
        for _attempt in 0..2 {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            let load = !self.script_loaded.load(Ordering::Relaxed);
            if load {
                pipe.load_script(&IDEMPOTENT_ADD).ignore();
            }
            for &i in &pending {
                self.add_command(&mut pipe, &jobs[i]);
            }
            let replies: Vec<redis::RedisResult<Value>> = pipe.query_async(&mut *conn).await?;
            if load {
                self.script_loaded.store(true, Ordering::Relaxed);
            }
            let mut refused = Vec::new();
            for (i, reply) in pending.into_iter().zip(replies) {
                match reply {
                    Ok(reply) => results[i] = Some(parse_reply(&jobs[i], reply)?),
                    Err(err) if err.kind() == ServerErrorKind::NoScript.into() => refused.push(i),
                    Err(err) => return Err(err.into()),
                }
            }
            if refused.is_empty() {
                break;
            }
            self.script_loaded.store(false, Ordering::Relaxed);
            pending = refused;
        }
        results
            .into_iter()
            .map(|result| {
                result.ok_or_else(|| {
                    Error::UnexpectedReply("NOSCRIPT right after SCRIPT LOAD".into())
                })
            })
            .collect()
    }

    /// Appends the command that enqueues `job` to `pipe`.
    fn add_command(&self, pipe: &mut redis::Pipeline, job: &Job) {
        let lane = match job.lane() {
            Lane::Otp => &*self.otp_lane,
            Lane::Booking => &*self.booking_lane,
        };
        let job_id = job.id.to_string();
        let record = self.keys.job_status(&job_id);
        let now = time::OffsetDateTime::now_utc();
        let due = job.send_at.filter(|due| *due > now);
        let state = if due.is_some() {
            Recorded::Scheduled
        } else {
            Recorded::Queued
        };
        // A scheduled job's record lives until it is due, then as long as any other's.
        let ttl = TIMELINE_TTL_SECS
            + due.map_or(0, |due| {
                u64::try_from((due - now).whole_seconds()).unwrap_or(0)
            });
        let flag = |on: bool| if on { "1" } else { "" };
        pipe.invoke_script(
            IDEMPOTENT_ADD
                .key(match &job.idempotency_key {
                    Some(key) => self.keys.idempotency(key),
                    None => record.clone(),
                })
                .key(lane)
                .key(&record)
                .key(match &job.replace_key {
                    Some(key) => self.keys.replace(key),
                    None => record.clone(),
                })
                .key(&*self.otp_lane)
                .key(&*self.booking_lane)
                .key(self.keys.scheduled(Lane::Otp))
                .key(self.keys.scheduled(Lane::Booking))
                .key(self.keys.scheduled_jobs())
                .key(self.keys.scheduled(job.lane()))
                .key(self.keys.stats())
                // A booking's jobs are indexed by its id, so an operator finds them (the
                // dashboard); the record's key stands in when the job has no booking.
                .key(match job.booking_id() {
                    Some(id) => self.keys.booking(id),
                    None => record.clone(),
                })
                .arg(&job_id)
                .arg(self.idempotency_window_ms)
                .arg(job.to_json())
                .arg(JOB_FIELD)
                .arg(job.fingerprint().as_str())
                .arg(flag(job.idempotency_key.is_some()))
                .arg(flag(job.replace_key.is_some()))
                .arg(ttl)
                .arg(due.map_or(String::new(), |due| {
                    herald_shared::schedule::unix_ms(due).to_string()
                }))
                .arg(WORKER_GROUP)
                .arg(timeline::format_time(now))
                .arg(self.keys.job_status_prefix())
                .arg(TIMELINE_TTL_SECS)
                .arg(flag(job.booking_id().is_some()))
                .arg(timeline::enqueued_fields(job, state)),
        );
        tracing::debug!(
            job_id = %job.id,
            kind = %job.kind(),
            lane = %job.lane(),
            phone = %herald_shared::phone::mask(&job.phone()),
            scheduled = due.is_some(),
            "enqueueing"
        );
    }
}

/// What the enqueue script found under the key (its reply's first element).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claim {
    /// The key was free (or there was none): the job added.
    Added,
    /// The key holds this content (or an old-format claim): nothing added.
    Duplicate,
    /// The key holds other content: nothing added.
    Conflict,
}

impl Claim {
    fn from_flag(flag: i64) -> Option<Claim> {
        match flag {
            0 => Some(Claim::Added),
            1 => Some(Claim::Duplicate),
            2 => Some(Claim::Conflict),
            _ => None,
        }
    }
}

/// Reads the reply of `job`'s script: `{claim, id, superseded}`.
fn parse_reply(job: &Job, reply: Value) -> Result<BatchResult, Error> {
    let unexpected = |reply: &Value| Error::UnexpectedReply(format!("{reply:?}"));
    let items: Vec<Value> =
        redis::from_redis_value(reply.clone()).map_err(|_| unexpected(&reply))?;
    let text = |i: usize| -> Result<String, Error> {
        match items.get(i) {
            Some(v) => redis::from_redis_value(v.clone()).map_err(|_| unexpected(&reply)),
            None => Ok(String::new()),
        }
    };
    let flag: i64 = items
        .first()
        .and_then(|v| redis::from_redis_value(v.clone()).ok())
        .ok_or_else(|| unexpected(&reply))?;
    let id = text(1)?;
    let first = || id.parse::<Uuid>().map_err(|_| unexpected(&reply));
    Ok(
        match Claim::from_flag(flag).ok_or_else(|| unexpected(&reply))? {
            Claim::Added => {
                let superseded = text(2)?;
                Ok(Enqueued {
                    superseded: (!superseded.is_empty())
                        .then(|| superseded.parse::<Uuid>())
                        .transpose()
                        .map_err(|_| unexpected(&reply))?,
                    send_at: job.send_at.filter(|_| id.is_empty()),
                    ..Enqueued::new(job.id)
                })
            }
            Claim::Duplicate => Ok(Enqueued {
                duplicate: true,
                ..Enqueued::new(first()?)
            }),
            Claim::Conflict => Err(IdempotencyConflict {
                key: job.idempotency_key.clone().unwrap_or_default(),
                job_id: first()?,
            }),
        },
    )
}

fn millis(window: Duration) -> u64 {
    u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1)
}
