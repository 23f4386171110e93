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
//! - for an OTP, the OTP guard's rules ([`crate::guard`], `store/src/lua/guard.lua`), when
//!   the producer has them ([`Producer::with_guard`]): a refused OTP is
//!   [`NotEnqueued::Guard`] and nothing of it is written;
//! - the job itself: on its lane, or, with a `send_at` in the future, in its lane's
//!   scheduled set (ids scored by due time, bodies stored once) for the workers to move
//!   onto the lane when due.
//!
//! Every enqueue is a pipeline sent in chunks of [`PIPELINE_CHUNK`] jobs, one script call
//! for each [`JOBS_PER_CALL`] of them (the script takes each job in turn, as one call each
//! would). The script is loaded once per producer; if Redis has lost it (a restart, `SCRIPT
//! FLUSH`), the calls refused with `NOSCRIPT` were not run, so they are sent again after
//! loading it. A call that fails part way (a script error) may have enqueued the jobs before
//! the failure: each job's fate is then read back, as after a lost connection.
//!
//! Validation happens before anything reaches this module: a [`Job`] is only built through
//! the shared model's validating constructors. The convenience methods here validate their
//! arguments first and touch Redis only when they pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deadpool_redis::PoolError;
use deadpool_redis::redis::{self, RedisError, ServerErrorKind, Value};
use herald_shared::job::{Booking, Job};
use herald_shared::phone::Phone;
use herald_shared::redis_pool::{Pool, RedisErrorKind};
use herald_shared::traces::{self, Attribute, JobSpan, TraceContext, attr};
use herald_shared::validate::ValidationError;
use herald_shared::wire::SendRequest;
use herald_store::Keys;
use herald_store::guard::Guard;

use crate::guard::{OtpRefused, RefusalLog};
use herald_store::durability::{Durability, NotReplicated, WaitError};
use uuid::Uuid;

/// How long an idempotency key holds its job once the job has finished, unless configured
/// otherwise (while the job is pending, the key holds it however long that is).
pub use herald_store::keys::DEFAULT_IDEMPOTENCY_WINDOW;

/// Jobs per pipeline round trip.
pub const PIPELINE_CHUNK: usize = 1_000;

/// Jobs per script call (`enqueue.lua` takes many): one call's overhead in Redis (the
/// script's preludes, its argument tables) is shared by this many jobs, and one call holds
/// Redis for well under a millisecond.
pub const JOBS_PER_CALL: usize = 50;

use herald_store::calls::{self, enqueue::EnqueueReply};
use herald_store::scripts::ENQUEUE;

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

/// Why one job of a batch was not enqueued: each job of a batch gets its own answer, even
/// when Redis fails partway, so a caller that retries what was not enqueued doubles nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotEnqueued {
    /// Its idempotency key holds a job with other content: nothing was written.
    #[error(transparent)]
    Conflict(#[from] IdempotencyConflict),
    /// Redis refused it (out of memory, a read-only replica, a script error...), or it was
    /// not attempted after Redis failed on an earlier job: nothing of it was written. Safe to
    /// send again.
    #[error("not enqueued: {reason}; nothing of it was written, so it is safe to send again")]
    Refused {
        reason: String,
        /// What kind of Redis failure refused it.
        kind: RedisErrorKind,
    },
    /// The OTP guard refused it: nothing was written and no token spent.
    #[error(transparent)]
    Guard(#[from] OtpRefused),
    /// Redis failed while it was being enqueued and could not be asked afterwards whether it
    /// was: look it up by its id, or send it again with an idempotency key.
    #[error(
        "unknown: Redis failed while job {job_id} was being enqueued ({reason}) and could not be asked whether it was; look it up by its id, or send it again with an idempotency key"
    )]
    Unknown {
        job_id: Uuid,
        reason: String,
        /// What kind of Redis failure left its fate unknown.
        kind: RedisErrorKind,
    },
}

impl NotEnqueued {
    /// The kind of Redis failure behind it; `None` for a conflict (Redis answered).
    pub fn redis_kind(&self) -> Option<RedisErrorKind> {
        match self {
            NotEnqueued::Conflict(_) | NotEnqueued::Guard(_) => None,
            NotEnqueued::Refused { kind, .. } | NotEnqueued::Unknown { kind, .. } => Some(*kind),
        }
    }
}

/// One job's result in a batch: enqueued (or a duplicate), or not, with why. Failures that
/// stop a batch before any job is attempted are [`Error`]s.
pub type BatchResult = Result<Enqueued, NotEnqueued>;

/// A batch made ready to send ([`Producer::prepare`]): its jobs, their `create` spans and
/// their script calls, built off the task that sends them. Owned by whoever sends it next
/// ([`Producer::enqueue_prepared`]). Its `Debug` says how many jobs and calls it holds,
/// never what they hold (the calls carry each job's JSON: an OTP's code, a phone number).
pub struct Prepared {
    jobs: Vec<Job>,
    spans: Vec<JobSpan>,
    /// Each [`PIPELINE_CHUNK`]'s calls, in order.
    built: Vec<Built>,
}

impl Prepared {
    /// How many jobs it holds.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// True when it holds no job.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let calls: usize = self.built.iter().map(|b| b.calls.len()).sum();
        f.debug_struct("Prepared")
            .field("jobs", &self.jobs.len())
            .field("calls", &calls)
            .finish()
    }
}

/// One pipeline's script calls (a [`PIPELINE_CHUNK`] of jobs, a call for each
/// [`JOBS_PER_CALL`]), built at `now`.
struct Built {
    now: time::OffsetDateTime,
    calls: Vec<redis::Cmd>,
}

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
    /// The OTP guard refused the OTP; nothing was enqueued.
    #[error(transparent)]
    OtpRefused(#[from] OtpRefused),
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
    /// Redis refused the job or failed while enqueueing it ([`NotEnqueued::Refused`] or
    /// [`NotEnqueued::Unknown`]).
    #[error("Redis: {0}")]
    NotEnqueued(NotEnqueued),
}

impl Error {
    /// The kind of Redis failure behind it, when Redis failed or refused (`None` for bad
    /// input, a conflict, or an enqueue not yet on enough replicas).
    pub fn redis_kind(&self) -> Option<RedisErrorKind> {
        match self {
            Error::Redis(err) => Some(RedisErrorKind::of(err)),
            Error::Pool(err) => Some(RedisErrorKind::of_pool(err)),
            Error::NotEnqueued(not) => not.redis_kind(),
            Error::UnexpectedReply(_) => Some(RedisErrorKind::Other),
            Error::Invalid(_)
            | Error::IdempotencyConflict(_)
            | Error::OtpRefused(_)
            | Error::NotReplicated(_) => None,
        }
    }
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
    idempotency_window_ms: u64,
    /// Set once `SCRIPT LOAD` succeeded; cleared when Redis answers `NOSCRIPT`.
    script_loaded: Arc<AtomicBool>,
    /// How many replicas must have an enqueue before it is acknowledged (`--min-replicas`).
    durability: Durability,
    /// The OTP guard's settings, when OTPs are checked (`with_guard`); shared by clones.
    guard: Option<Arc<Guard>>,
    /// Counts and logs refusals; shared by clones.
    refusals: Arc<RefusalLog>,
    /// The trace a job that names none is created in (the CLI's `TRACEPARENT`).
    trace_parent: Option<TraceContext>,
}

impl Producer {
    /// A producer over `pool` for the namespace of `keys`, with the default idempotency
    /// window.
    pub fn new(pool: Pool, keys: Keys) -> Producer {
        Producer {
            pool,
            keys,
            idempotency_window_ms: millis(DEFAULT_IDEMPOTENCY_WINDOW),
            script_loaded: Arc::new(AtomicBool::new(false)),
            durability: Durability::default(),
            guard: None,
            refusals: Arc::default(),
            trace_parent: None,
        }
    }

    /// Checks every OTP against the OTP guard's rules (`None`: no check, as by default),
    /// atomically with its enqueue: see [`crate::guard`].
    pub fn with_guard(mut self, guard: Option<Guard>) -> Producer {
        self.guard = guard.map(Arc::new);
        self
    }

    /// Logs the guard's refusals, at most once per prefix per minute (the API server does;
    /// the CLI prints each refusal itself).
    pub fn logging_refusals(mut self) -> Producer {
        self.refusals = Arc::new(RefusalLog::logging());
        self
    }

    /// The OTP guard's settings, when OTPs are checked.
    pub fn guard(&self) -> Option<&Guard> {
        self.guard.as_deref()
    }

    /// Reports that the OTP last sent to `phone` was verified by its customer: counted for
    /// its prefix's conversion (the guard's conversion rule applies once any is reported).
    pub async fn verified(&self, phone: &str) -> Result<(), Error> {
        let phone = Phone::parse_e164(phone)
            .map_err(|err| ValidationError::single("phone", err.to_string()))?;
        let e164 = phone.e164();
        let parts = herald_shared::phone::guard_parts(&e164)
            .ok_or_else(|| ValidationError::single("phone", "has no known calling code"))?;
        let mut conn = self.pool.get().await?;
        let _: Value =
            calls::guard::verified(&self.keys, parts.prefix, time::OffsetDateTime::now_utc())
                .invoke(&mut conn)
                .await?;
        Ok(())
    }

    /// Creates the jobs that carry no trace context of their own as children of `parent`
    /// (when tracing is on), and carries it in them (when it is off).
    pub fn with_trace_parent(mut self, parent: Option<TraceContext>) -> Producer {
        self.trace_parent = parent;
        self
    }

    /// Acknowledges an enqueue only once `durability.min_replicas` replicas have it (`WAIT`),
    /// else fails with [`Error::NotReplicated`]: see [`herald_store::durability`].
    pub fn with_durability(mut self, durability: Durability) -> Producer {
        self.durability = durability;
        self
    }

    /// How long an idempotency key keeps its job once the job has finished (at least 1 ms);
    /// while the job is pending the key holds it however long that is.
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

    /// How many replicas must have a write before it is acknowledged.
    pub fn durability(&self) -> &Durability {
        &self.durability
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
    /// [`Error::IdempotencyConflict`]; one Redis refused or failed is [`Error::NotEnqueued`].
    pub async fn enqueue(&self, job: Job) -> Result<Enqueued, Error> {
        let mut enqueued = self.enqueue_batch(vec![job]).await?;
        let result = enqueued
            .pop()
            .ok_or_else(|| Error::UnexpectedReply("no result for the one job enqueued".into()))?;
        result.map_err(|err| match err {
            NotEnqueued::Conflict(conflict) => Error::IdempotencyConflict(conflict),
            NotEnqueued::Guard(refused) => Error::OtpRefused(refused),
            other => Error::NotEnqueued(other),
        })
    }

    /// Enqueues many jobs in pipelined chunks, in order, on one connection. Returns one
    /// result per job, in the same order: enqueued (or a duplicate), or not with why. A job
    /// Redis refuses (out of memory, say) is [`NotEnqueued::Refused`] and the others are
    /// enqueued all the same; when the connection fails partway, the jobs whose fate Redis
    /// did not tell are looked up (their records, their keys) on a new connection, and the
    /// jobs after them are not attempted ([`NotEnqueued::Refused`]): each answer is exact, or
    /// [`NotEnqueued::Unknown`] when even the look-up fails.
    ///
    /// An [`Error`] means nothing was attempted (no connection could be had). With a
    /// durability set, the whole batch is acknowledged once its replicas have every job of
    /// it, or fails with [`Error::NotReplicated`].
    ///
    /// With tracing on, each job gets its `create <lane>` span ([`JobSpan::create`]), a child
    /// of the context the job carries (or [`Producer::with_trace_parent`]'s), and carries
    /// that span's context to the worker instead.
    pub async fn enqueue_batch(&self, mut jobs: Vec<Job>) -> Result<Vec<BatchResult>, Error> {
        let spans = self.create_spans(&mut jobs);
        self.enqueue_built(jobs, spans, Vec::new()).await
    }

    /// Makes `jobs` ready to send: their `create` spans started and their script calls
    /// built, each [`PIPELINE_CHUNK`] of them at the time of this call. Pure work, no Redis:
    /// the bulk CLI's reader thread prepares the next batch while this task sends the last
    /// one, so building calls overlaps Redis running them. Send it soon
    /// ([`Producer::enqueue_prepared`]): its calls carry this moment's time (a job's due
    /// time is read against it, the OTP guard's windows too).
    pub fn prepare(&self, mut jobs: Vec<Job>) -> Prepared {
        let spans = self.create_spans(&mut jobs);
        let now = time::OffsetDateTime::now_utc();
        let built = jobs
            .chunks(PIPELINE_CHUNK)
            .map(|chunk| self.build(chunk, now))
            .collect();
        Prepared { jobs, spans, built }
    }

    /// Enqueues a batch [`Producer::prepare`] made ready, as [`Producer::enqueue_batch`]
    /// would have enqueued its jobs.
    pub async fn enqueue_prepared(&self, prepared: Prepared) -> Result<Vec<BatchResult>, Error> {
        let Prepared { jobs, spans, built } = prepared;
        self.enqueue_built(jobs, spans, built).await
    }

    /// Sends `jobs`, each chunk with its calls from `built` when they are there (else built
    /// just before it is sent), and ends their spans with their results.
    async fn enqueue_built(
        &self,
        jobs: Vec<Job>,
        spans: Vec<JobSpan>,
        built: Vec<Built>,
    ) -> Result<Vec<BatchResult>, Error> {
        let results = self.enqueue_untraced(&jobs, built).await;
        if !spans.is_empty() {
            end_create_spans(spans, &results);
        }
        results
    }

    /// Each job's `create` span (none with tracing off: then a job only takes the
    /// producer's parent, when it has none of its own).
    fn create_spans(&self, jobs: &mut [Job]) -> Vec<JobSpan> {
        if traces::tracer().is_none() {
            if let Some(parent) = &self.trace_parent {
                for job in jobs.iter_mut().filter(|job| job.traceparent.is_none()) {
                    parent.write_to(job);
                }
            }
            return Vec::new();
        }
        jobs.iter_mut()
            .map(|job| {
                let parent = TraceContext::of_job(job).or_else(|| self.trace_parent.clone());
                let span = JobSpan::create(job.lane(), parent.as_ref());
                span.set(|| {
                    vec![
                        Attribute::new(attr::MESSAGE_ID, job.id.to_string()),
                        Attribute::new(attr::KIND, job.kind().as_str()),
                        Attribute::new(attr::TENANT, job.tenant().to_string()),
                    ]
                });
                if let Some(context) = span.context() {
                    context.write_to(job);
                }
                span
            })
            .collect()
    }

    async fn enqueue_untraced(
        &self,
        jobs: &[Job],
        built: Vec<Built>,
    ) -> Result<Vec<BatchResult>, Error> {
        let mut conn = self.pool.get().await?;
        let mut results = Vec::with_capacity(jobs.len());
        let mut broken: Option<(String, RedisErrorKind)> = None;
        let mut built = built.into_iter();
        for chunk in jobs.chunks(PIPELINE_CHUNK) {
            let prebuilt = built.next();
            if let Some((reason, kind)) = &broken {
                let reason = format!("not attempted: Redis failed on an earlier job ({reason})");
                results.extend(chunk.iter().map(|_| {
                    Err(NotEnqueued::Refused {
                        reason: reason.clone(),
                        kind: *kind,
                    })
                }));
                continue;
            }
            let calls =
                prebuilt.unwrap_or_else(|| self.build(chunk, time::OffsetDateTime::now_utc()));
            match self.enqueue_chunk(&mut conn, chunk, calls).await {
                Ok(chunk_results) => results.extend(chunk_results),
                Err(err) => {
                    let reason = herald_shared::redis_pool::error_reason(&err);
                    let kind = RedisErrorKind::of(&err);
                    results.extend(self.look_up(chunk, &reason, kind).await);
                    broken = Some((reason, kind));
                }
            }
        }
        if broken.is_none() && results.iter().any(Result::is_ok) {
            self.durability.confirm(&mut conn, &self.keys).await?;
        }
        Ok(results)
    }

    /// The script calls that enqueue `jobs` (at most a [`PIPELINE_CHUNK`]) at `now`: one for
    /// each [`JOBS_PER_CALL`] of them.
    fn build(&self, jobs: &[Job], now: time::OffsetDateTime) -> Built {
        let calls = jobs
            .chunks(JOBS_PER_CALL)
            .map(|call| {
                call.iter().for_each(trace_enqueue);
                self.call(call, now)
            })
            .collect();
        Built { now, calls }
    }

    /// The script call that enqueues `jobs` at `now`.
    fn call(&self, jobs: &[Job], now: time::OffsetDateTime) -> redis::Cmd {
        calls::enqueue::enqueue_all(
            &self.keys,
            jobs,
            self.idempotency_window_ms,
            now,
            self.guard.as_deref(),
        )
        .into_cmd()
    }

    /// One pipeline of `built`'s calls for `jobs`; the calls refused with `NOSCRIPT` are
    /// built anew and sent again. An `Err` is a failure of the connection: which jobs ran is
    /// not known.
    async fn enqueue_chunk(
        &self,
        conn: &mut herald_shared::redis_pool::Connection,
        jobs: &[Job],
        built: Built,
    ) -> Result<Vec<BatchResult>, RedisError> {
        let Built { now, calls: cmds } = built;
        let calls: Vec<&[Job]> = jobs.chunks(JOBS_PER_CALL).collect();
        let mut results: Vec<Option<Vec<BatchResult>>> = vec![None; calls.len()];
        let mut pending: Vec<usize> = (0..calls.len()).collect();
        // The built calls, every one, go out first; what NOSCRIPT refused is built anew.
        let mut first = Some(cmds);
        // Once to run everything, once more for what NOSCRIPT refused.
        for _attempt in 0..2 {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            let load = !self.script_loaded.load(Ordering::Relaxed);
            if load {
                pipe.load_script(&ENQUEUE).ignore();
            }
            match first.take() {
                Some(cmds) => cmds.into_iter().for_each(|cmd| {
                    pipe.add_command(cmd);
                }),
                None => pending.iter().for_each(|&i| {
                    pipe.add_command(self.call(calls[i], now));
                }),
            }
            let replies: Vec<redis::RedisResult<Value>> = pipe.query_async(&mut *conn).await?;
            if load {
                self.script_loaded.store(true, Ordering::Relaxed);
            }
            let mut refused = Vec::new();
            for (i, reply) in pending.into_iter().zip(replies) {
                let batch = calls[i];
                match reply {
                    Ok(reply) => results[i] = Some(self.outcomes(batch, &reply, now)),
                    Err(err) if err.kind() == ServerErrorKind::NoScript.into() => refused.push(i),
                    // The script stopped part way (a job before the failure was enqueued):
                    // each job's fate is read back, as after a lost connection.
                    Err(err) => {
                        let reason = herald_shared::redis_pool::error_reason(&err);
                        let kind = RedisErrorKind::of(&err);
                        results[i] = Some(self.look_up(batch, &reason, kind).await);
                    }
                }
            }
            if refused.is_empty() {
                break;
            }
            self.script_loaded.store(false, Ordering::Relaxed);
            pending = refused;
        }
        Ok(results
            .into_iter()
            .zip(calls)
            .flat_map(|(result, batch)| {
                result.unwrap_or_else(|| {
                    batch
                        .iter()
                        .map(|_| {
                            Err(NotEnqueued::Refused {
                                reason: "Redis answered NOSCRIPT right after SCRIPT LOAD".into(),
                                kind: RedisErrorKind::Other,
                            })
                        })
                        .collect()
                })
            })
            .collect())
    }

    /// The fate of `jobs` after the connection failed while enqueueing them, asked on a new
    /// connection: a job whose record exists was enqueued; one whose idempotency key names
    /// another job with its content is a duplicate of it; any other was not enqueued (the
    /// enqueue writes the record in the same script as everything else).
    async fn look_up(&self, jobs: &[Job], failure: &str, kind: RedisErrorKind) -> Vec<BatchResult> {
        let unknown = |job: &Job, reason: String| {
            Err(NotEnqueued::Unknown {
                job_id: job.id,
                reason,
                kind,
            })
        };
        let mut conn = match self.pool.get().await {
            Ok(conn) => conn,
            Err(err) => {
                let reason = format!(
                    "{failure}; then {}",
                    herald_shared::redis_pool::pool_error_reason(&err)
                );
                return jobs
                    .iter()
                    .map(|job| unknown(job, reason.clone()))
                    .collect();
            }
        };
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            let found = async {
                let recorded: bool = redis::cmd("EXISTS")
                    .arg(self.keys.job_status(&job.id.to_string()))
                    .query_async(&mut conn)
                    .await?;
                if recorded {
                    return Ok(Ok(Enqueued {
                        send_at: job
                            .send_at
                            .filter(|at| *at > time::OffsetDateTime::now_utc()),
                        ..Enqueued::new(job.id)
                    }));
                }
                if let Some(key) = &job.idempotency_key {
                    let held: Option<String> = redis::cmd("GET")
                        .arg(self.keys.idempotency(key))
                        .query_async(&mut conn)
                        .await?;
                    if let Some(first) = held.as_deref().and_then(duplicate_of(job)) {
                        return Ok(Ok(Enqueued {
                            duplicate: true,
                            ..Enqueued::new(first)
                        }));
                    }
                }
                Ok::<_, RedisError>(Err(NotEnqueued::Refused {
                    reason: format!("Redis failed before it was enqueued ({failure})"),
                    kind,
                }))
            }
            .await;
            out.push(found.unwrap_or_else(|err| {
                unknown(
                    job,
                    format!(
                        "{failure}; then {}",
                        herald_shared::redis_pool::error_reason(&err)
                    ),
                )
            }));
        }
        out
    }
}

impl Producer {
    /// Reads the reply of the script that enqueued `jobs` at `now`, a result for each.
    fn outcomes(&self, jobs: &[Job], reply: &Value, now: time::OffsetDateTime) -> Vec<BatchResult> {
        let replies = EnqueueReply::decode_all(reply)
            .map_err(|err| err.to_string())
            .and_then(|replies| {
                if replies.len() == jobs.len() {
                    Ok(replies)
                } else {
                    Err(format!(
                        "enqueue.lua answered for {} jobs where {} were sent",
                        replies.len(),
                        jobs.len()
                    ))
                }
            });
        match replies {
            Ok(replies) => jobs
                .iter()
                .zip(replies)
                .map(|(job, reply)| self.outcome(job, Ok(reply), now))
                .collect(),
            Err(reason) => jobs
                .iter()
                .map(|job| self.outcome(job, Err(reason.clone()), now))
                .collect(),
        }
    }

    /// Reads one job's reply, enqueued at `now`; a refusal is counted and logged.
    fn outcome(
        &self,
        job: &Job,
        reply: Result<EnqueueReply, String>,
        now: time::OffsetDateTime,
    ) -> BatchResult {
        match reply {
            Ok(EnqueueReply::Added {
                entry,
                superseded,
                held_until_ms,
                ..
            }) => Ok(Enqueued {
                superseded,
                send_at: held_until_ms
                    .and_then(|ms| {
                        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                            .ok()
                    })
                    .or(job.send_at.filter(|_| entry.is_none())),
                ..Enqueued::new(job.id)
            }),
            Ok(EnqueueReply::Duplicate { first }) => Ok(Enqueued {
                duplicate: true,
                ..Enqueued::new(first)
            }),
            Ok(EnqueueReply::Conflict { first }) => {
                Err(NotEnqueued::Conflict(IdempotencyConflict {
                    key: job.idempotency_key.clone().unwrap_or_default(),
                    job_id: first,
                }))
            }
            Ok(EnqueueReply::Refused(refusal)) => {
                let e164 = calls::enqueue::guarded_number(job).unwrap_or_default();
                let refused = OtpRefused::new(refusal, &e164);
                let now_s = u64::try_from(now.unix_timestamp()).unwrap_or(0);
                self.refusals.record(&refused, &e164, now_s);
                Err(NotEnqueued::Guard(refused))
            }
            Err(reason) => Err(NotEnqueued::Refused {
                reason,
                kind: RedisErrorKind::Other,
            }),
        }
    }
}

/// The first job's id when the claim `held` holds `job`'s content (a duplicate of it).
fn duplicate_of(job: &Job) -> impl Fn(&str) -> Option<Uuid> + '_ {
    move |held: &str| {
        let (first, fingerprint) = held.split_once(':').unwrap_or((held, ""));
        let same = fingerprint.is_empty() || fingerprint == job.fingerprint().as_str();
        let first: Uuid = first.parse().ok()?;
        (same && first != job.id).then_some(first)
    }
}

fn trace_enqueue(job: &Job) {
    tracing::debug!(
        job_id = %job.id,
        kind = %job.kind(),
        lane = %job.lane(),
        phone = %herald_shared::phone::mask(&job.phone()),
        scheduled = job.send_at.is_some(),
        "enqueueing"
    );
}

/// Ends each job's `create` span with what became of the job: a duplicate names the job
/// first enqueued under its key; a job not enqueued marks its span failed.
fn end_create_spans(spans: Vec<JobSpan>, results: &Result<Vec<BatchResult>, Error>) {
    for (i, span) in spans.into_iter().enumerate() {
        match results.as_ref().map(|results| results.get(i)) {
            Ok(Some(Ok(enqueued))) if enqueued.duplicate => span.set(|| {
                vec![
                    Attribute::new(attr::DUPLICATE, true),
                    Attribute::new(attr::MESSAGE_ID, enqueued.job_id.to_string()),
                ]
            }),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(NotEnqueued::Conflict(_)))) => span.fail("idempotency_conflict"),
            Ok(Some(Err(_))) | Ok(None) | Err(_) => span.fail("not_enqueued"),
        }
    }
}

fn millis(window: Duration) -> u64 {
    u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1)
}
