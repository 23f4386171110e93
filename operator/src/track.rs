//! `herald-worker track`: one job's timeline, found by its job id or by Interakt's message
//! id, printed as text or JSON. The lookup itself is [`timeline::find`]; this module
//! owns the flags, the output and the exit codes (0 found, 1 not found, 2 usage or Redis).

use herald_shared::config::{ConfigError, RedisArgs};
use herald_shared::redis_pool::ConnectError;
use herald_store::Keys;

use herald_shared::redis_pool::RedisFailure;
use herald_store::timeline::{self, JobTimeline};

/// Flags of `herald-worker track`.
#[derive(clap::Args, Debug, Clone)]
pub struct TrackArgs {
    /// The job's id, as the producer printed it (`herald-producer otp|booking|send`, or the
    /// API's `job_id`).
    #[arg(
        value_name = "JOB_ID",
        required_unless_present = "interakt_id",
        conflicts_with = "interakt_id"
    )]
    pub job_id: Option<String>,
    /// Find the job by Interakt's message id instead (the `id` of the send's answer, which
    /// webhook events name).
    #[arg(long, value_name = "ID")]
    pub interakt_id: Option<String>,
    /// One JSON object instead of text: `job_id`, `state` (queued, sending, retrying, sent,
    /// delivered, read, revoked, dead), `kind`, `lane`, `phone`, `message_id`, `retry_at`,
    /// and `events` (each with `event` and `at`).
    #[arg(long)]
    pub json: bool,
}

/// Why `track` printed no timeline.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    /// Herald knows nothing of the job (exit 1).
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Redis(#[from] ConnectError),
}

impl TrackError {
    /// 1 for not found, 2 for anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            TrackError::NotFound(_) => 1,
            TrackError::Config(_) | TrackError::Redis(_) => 2,
        }
    }
}

/// Looks the job up and returns what to print on stdout.
pub async fn run(redis: &RedisArgs, args: &TrackArgs) -> Result<String, TrackError> {
    let keys = Keys::new(&redis.namespace)?;
    let target = redis.target();
    let pool = target.connect(1).await?;
    let redis_down = |err: RedisFailure| {
        TrackError::Redis(ConnectError::Unreachable {
            url: target.describe(),
            kind: err.kind(),
            reason: err.to_string(),
        })
    };
    let found = match (&args.interakt_id, &args.job_id) {
        (Some(message_id), _) => timeline::find_by_message_id(&pool, &keys, message_id)
            .await
            .map_err(redis_down)?
            .ok_or_else(|| {
                TrackError::NotFound(format!(
                    "no job was sent as Interakt message {message_id:?} (or its record expired after 7 days)"
                ))
            })?,
        (None, Some(job_id)) => timeline::find(&pool, &keys, job_id)
            .await
            .map_err(redis_down)?
            .ok_or_else(|| {
                TrackError::NotFound(format!(
                    "job {job_id:?} is unknown: never enqueued in namespace {:?}, expired after 7 days, or still queued behind a long backlog",
                    redis.namespace
                ))
            })?,
        (None, None) => unreachable!("clap requires JOB_ID or --interakt-id"),
    };
    Ok(output(&found, args.json))
}

fn output(found: &JobTimeline, json: bool) -> String {
    if json {
        format!(
            "{}\n",
            serde_json::to_string(found).expect("a timeline serializes")
        )
    } else {
        timeline::render(found)
    }
}
