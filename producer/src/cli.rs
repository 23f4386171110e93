//! The `herald-producer` command line: its flags, what each subcommand does, and the exit
//! status that says how it went.
//!
//! Input is validated before Redis is contacted, so invalid input never leaves a trace in
//! Redis. Single enqueues print the job id alone on stdout; everything meant for people goes
//! to stderr, one line each, starting with `herald-producer: `.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use herald_shared::config::{ConfigError, RedisArgs, parse_duration};
use herald_shared::job::Booking;
use herald_shared::wire::{self, SendRequest};
use herald_shared::{Job, Redacted};
use herald_store::Keys;
use herald_store::durability::Durability;
use indicatif::{ProgressBar, ProgressStyle};

use crate::CancelOutcome;
use crate::bulk::{self, BulkError, Observer, Rejected, Summary};
use crate::enqueue::{self, Producer};
use crate::spec::{BookingSpec, JobSpec, OtpSpec, RawSpec, ReminderSpec, SpecError, Timing};
use herald_shared::redis_pool::{self, ConnectError};
use herald_shared::schedule::Zone;

/// Prefix of every line written to stderr.
pub const NAME: &str = "herald-producer";

/// Every job was enqueued (a repeated idempotency key counts: its first job's id is printed).
pub const EXIT_OK: u8 = 0;
/// `bulk` only: some lines were rejected; every other line was enqueued. `cancel`: too late
/// (the job is already sending, sent or dead; its state is printed).
pub const EXIT_REJECTED: u8 = 1;
/// Bad usage, invalid input, an idempotency key that already holds other content (nothing
/// enqueued; for `bulk`, every line rejected), or Redis unreachable or failing.
pub const EXIT_FAILED: u8 = 2;

/// The exit codes of every subcommand, for the top-level `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  done: every job enqueued (a repeated idempotency key prints the first job's id); serve:
     stopped cleanly on SIGTERM/SIGINT; openapi: printed
  1  bulk: some lines were rejected (each reported with its line number); the rest were enqueued;
     cancel: too late (already sending, sent or dead; the state is printed)
  2  bad usage, invalid input, or an idempotency key that already holds other content
     (nothing enqueued; for bulk, every line rejected), or Redis unreachable or failing,
     or not on --min-replicas replicas in time (retry with the same idempotency key)
     (serve: bad configuration, or it cannot listen)";

/// `otp`, `booking` and `send`: one job, enqueued or not.
const SINGLE_EXIT_CODES: &str = "\
Exit codes:
  0  enqueued; the job id is printed (an idempotency key repeated with the same content
     prints the first job's id)
  2  bad usage, invalid input, or an idempotency key that already holds other content
     (nothing enqueued), or Redis unreachable or failing, or not on --min-replicas
     replicas in time (retry with the same idempotency key)";

const CANCEL_EXIT_CODES: &str = "\
Exit codes:
  0  cancelled (now, or already before): the job will never be sent; prints `cancelled`
  1  too late: the job is already sending, sent or dead; prints its state
  2  bad usage, no such job (or idempotency key), or Redis unreachable or failing";

const BULK_EXIT_CODES: &str = "\
Exit codes:
  0  every line enqueued (or a duplicate of an earlier job)
  1  some lines were rejected (each reported with its line number: invalid, or an
     idempotency key that already holds other content); the rest were enqueued
  2  bad usage, an unreadable input, every line rejected (nothing enqueued),
     or Redis unreachable or failing, or not on --min-replicas replicas in time
     (retry with the same idempotency keys)";

const SERVE_EXIT_CODES: &str = "\
Exit codes:
  0  stopped cleanly on SIGTERM/SIGINT
  2  bad usage or configuration (no HERALD_API_TOKENS, a bad namespace), --listen cannot be
     bound, or the server failed
Redis need not be up: until it is, the API answers 503 and /readyz says so.";

const OPENAPI_EXIT_CODES: &str = "\
Exit codes:
  0  printed
  2  bad usage or configuration (a flag, HERALD_NAMESPACE)";

/// Enqueue RCS messages (OTPs, booking confirmations, raw Interakt requests) for Herald's
/// workers.
#[derive(Parser)]
#[command(name = NAME, version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub redis: RedisArgs,
    /// How long an idempotency key keeps its job once the job has finished (sent, dead or
    /// expired; e.g. 24h, 30m): while the job is pending, however long, its key holds it, and
    /// a cancel frees it at once.
    #[arg(
        long,
        env = "HERALD_IDEMPOTENCY_WINDOW",
        default_value = "24h",
        value_parser = parse_duration,
        global = true
    )]
    pub idempotency_window: Duration,
    /// Acknowledge an enqueue only once this many replicas have it (Redis WAIT, 2 s); else
    /// fail (exit 2; the API answers 503) and let the caller retry with the same
    /// idempotency key. 0: as soon as the primary has it.
    #[arg(long, env = "HERALD_MIN_REPLICAS", default_value_t = 0, global = true)]
    pub min_replicas: u32,
    /// The time zone of booking and reminder appointments (an IANA name), unless a job
    /// names its own (`tz`); their start is the default not_after.
    #[arg(long, env = "HERALD_TIMEZONE", default_value = herald_shared::schedule::DEFAULT_TIMEZONE, global = true)]
    pub tz: Zone,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Enqueue a one-time password; prints the job id.
    #[command(after_help = SINGLE_EXIT_CODES)]
    Otp(OtpArgs),
    /// Enqueue a booking confirmation card; prints the job id.
    #[command(after_help = SINGLE_EXIT_CODES)]
    Booking(BookingArgs),
    /// Enqueue a reminder of a booking (e.g. --before 2h); prints the job id.
    #[command(after_help = SINGLE_EXIT_CODES)]
    Reminder(ReminderArgs),
    /// Cancel a job before its send begins: by JOB_ID, or --idempotency-key KEY.
    #[command(after_help = CANCEL_EXIT_CODES)]
    Cancel(CancelArgs),
    /// Enqueue a complete Interakt request body (standalone or Template); prints the job id.
    #[command(after_help = SINGLE_EXIT_CODES)]
    Send(SendArgs),
    /// Enqueue JSON Lines, one job a line ({"kind":"otp"|"booking"|"raw", ...}).
    #[command(after_help = BULK_EXIT_CODES)]
    Bulk(BulkArgs),
    /// Serve the HTTP API (POST /v1/jobs/otp|booking|raw|batch) until SIGTERM/SIGINT.
    #[command(after_help = SERVE_EXIT_CODES)]
    Serve(ServeArgs),
    /// Print the HTTP API's OpenAPI document (kept in producer/openapi.json).
    #[command(after_help = OPENAPI_EXIT_CODES)]
    Openapi,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "HERALD_API_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Accepted bearer tokens, comma-separated.
    #[arg(long, env = "HERALD_API_TOKENS", hide_env_values = true)]
    pub tokens: Option<Redacted<String>>,
}

#[derive(Args)]
pub struct IdempotencyArgs {
    /// Enqueue at most once per key within the idempotency window (e.g.
    /// booking:B123:confirmation); the same key with other content exits 2.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
}

/// When a job goes out and until when (`booking`, `reminder`, `send`; `otp` refuses them).
#[derive(Args)]
pub struct TimingArgs {
    /// Send at this time rather than now: RFC 3339 with its offset
    /// (2026-11-24T08:30:00+05:30); at most 365 days ahead.
    #[arg(long = "at", value_name = "TIME")]
    pub send_at: Option<String>,
    /// Send this long from now rather than now (e.g. 2h, 1day).
    #[arg(long = "in", value_name = "DURATION", value_parser = parse_duration)]
    pub send_in: Option<Duration>,
    /// Never send after this time (RFC 3339 with its offset); bookings and reminders default
    /// to the appointment's start.
    #[arg(long, value_name = "TIME")]
    pub not_after: Option<String>,
    /// At most one unsent job per key: cancels the older unsent job enqueued under it
    /// (e.g. otp:+919812345678).
    #[arg(long, value_name = "KEY")]
    pub replace_key: Option<String>,
}

impl TimingArgs {
    fn timing(&self, before: Option<Duration>) -> Timing<'_> {
        Timing {
            send_at: self.send_at.as_deref(),
            send_in: self.send_in,
            not_after: self.not_after.as_deref(),
            before,
        }
    }
}

#[derive(Args)]
pub struct ReminderArgs {
    #[command(flatten)]
    pub booking: BookingArgs,
    /// Send it this long before the appointment (e.g. 2h), in --tz.
    #[arg(long, value_parser = parse_duration)]
    pub before: Option<Duration>,
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["job_id", "idempotency_key"]))]
pub struct CancelArgs {
    /// The job id an enqueue printed.
    pub job_id: Option<String>,
    /// The idempotency key the job was enqueued under.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
}

#[derive(Args)]
pub struct OtpArgs {
    /// Recipient in E.164 form (+919999999999).
    #[arg(long)]
    pub phone: String,
    /// The one-time password (letters or digits).
    #[arg(long)]
    pub code: Redacted<String>,
    /// The OTP is not sent after this long (e.g. 10m, 90s; at most 24h).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub valid_for: Duration,
    #[command(flatten)]
    pub idempotency: IdempotencyArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
}

/// Emits the CLI's arguments with the booking's fields (their `arg` attributes) before its
/// own, and the booking they name; for [`herald_shared::booking_fields!`].
macro_rules! booking_args_struct {
    ({ $(#[$meta:meta])* $vis:vis struct $name:ident { $($own:tt)* } }
     $( [ #[doc = $doc:expr] $field:ident : $ty:ty, model { $($m:tt)* }, spec { $($s:tt)* }, arg { $($a:tt)* } ] )*) => {
        $(#[$meta])*
        $vis struct $name {
            $( #[doc = $doc] $($a)* pub $field: $ty, )*
            $($own)*
        }

        impl $name {
            /// The booking these arguments name.
            fn booking(&self) -> Booking {
                Booking { $( $field: self.$field.clone(), )* }
            }
        }
    };
}

herald_shared::booking_fields! { booking_args_struct! {
    #[derive(Args)]
    pub struct BookingArgs {
        #[command(flatten)]
        pub idempotency: IdempotencyArgs,
        #[command(flatten)]
        pub timing: TimingArgs,
    }
} }

#[derive(Args)]
pub struct SendArgs {
    /// JSON file with the request body, or - for stdin.
    #[arg(long, short)]
    pub file: PathBuf,
    #[command(flatten)]
    pub idempotency: IdempotencyArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
}

#[derive(Args)]
pub struct BulkArgs {
    /// JSON Lines file, or - for stdin.
    #[arg(default_value = "-")]
    pub file: PathBuf,
    /// Print {"enqueued":N,"duplicates":N,"rejected":N} on stdout at the end.
    #[arg(long)]
    pub json: bool,
}

/// How a run that did not fail ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every job (line) was enqueued or was a duplicate of an earlier one; `cancel`: cancelled.
    Enqueued,
    /// `cancel`: too late (the job is sending, sent or dead).
    TooLate,
    /// `bulk`: some lines were rejected, the others enqueued.
    SomeRejected,
    /// `bulk`: every line was rejected; nothing was enqueued.
    NothingValid,
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Outcome::Enqueued => EXIT_OK,
            Outcome::TooLate => EXIT_REJECTED,
            Outcome::SomeRejected => EXIT_REJECTED,
            Outcome::NothingValid => EXIT_FAILED,
        })
    }
}

/// Why a run failed; every case exits with [`EXIT_FAILED`].
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("invalid {what}: {source}")]
    Invalid { what: String, source: SpecError },
    #[error(transparent)]
    Enqueue(#[from] enqueue::Error),
    #[error(transparent)]
    Bulk(#[from] BulkError),
    #[error("{0}")]
    Cancel(String),
}

impl Cli {
    /// Parses the process's arguments. `--help` shows where REDIS_URL comes from but never its
    /// value, which may hold a password.
    pub fn try_parse_args() -> Result<Cli, clap::Error> {
        let matches = Cli::command()
            .mut_arg("redis_url", |arg| arg.hide_env_values(true))
            .try_get_matches()?;
        Cli::from_arg_matches(&matches)
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<Outcome, CliError> {
    let keys = Keys::new(&cli.redis.namespace)?;
    if cli.idempotency_window.is_zero() {
        return Err(ConfigError::new(
            "HERALD_IDEMPOTENCY_WINDOW (--idempotency-window)",
            "must be longer than zero, e.g. 24h",
        )
        .into());
    }
    let target = cli.redis.target();
    let durability = Durability::replicas(cli.min_replicas);
    let connect = || async {
        let pool = target.connect(redis_pool::DEFAULT_POOL_SIZE).await?;
        Ok::<_, CliError>(
            Producer::new(pool, keys.clone())
                .with_idempotency_window(cli.idempotency_window)
                .with_durability(durability),
        )
    };
    let job = match cli.command {
        Command::Serve(args) => {
            return serve(
                args,
                &target,
                keys.clone(),
                cli.idempotency_window,
                durability,
                cli.tz.clone(),
            )
            .await;
        }
        Command::Openapi => {
            let _ = writeln!(io::stdout().lock(), "{}", crate::api::openapi_json());
            return Ok(Outcome::Enqueued);
        }
        Command::Bulk(args) => return run_bulk(&args, connect().await?, cli.tz.clone()).await,
        Command::Cancel(args) => return run_cancel(&args, connect().await?).await,
        Command::Otp(args) => {
            let timing = args.timing.timing(None);
            single_job("OTP", args.to_spec(), timing, &cli.tz)
        }
        Command::Booking(args) => {
            let timing = args.timing.timing(None);
            single_job("booking", args.to_spec(), timing, &cli.tz)
        }
        Command::Reminder(args) => {
            let timing = args.booking.timing.timing(args.before);
            let spec = args.booking.to_reminder_spec();
            single_job("reminder", spec, timing, &cli.tz)
        }
        Command::Send(args) => send_job(args, &cli.tz),
    }?;
    let enqueued = connect().await?.enqueue(job).await?;
    if enqueued.duplicate {
        tracing::info!(job_id = %enqueued.job_id, "idempotency key already used; nothing enqueued");
    }
    if let Some(older) = enqueued.superseded {
        eprintln!("{NAME}: superseded job {older} (same replace key; it will not be sent)");
    }
    if let Some(due) = enqueued.send_at {
        eprintln!(
            "{NAME}: scheduled for {}",
            herald_store::record::format_time(due)
        );
    }
    // The job is enqueued whether or not stdout still listens.
    let _ = writeln!(io::stdout().lock(), "{}", enqueued.job_id);
    Ok(Outcome::Enqueued)
}

/// Runs the HTTP API until SIGTERM/SIGINT. Redis need not be up at start: the API answers
/// 503 (and `/readyz` says so) until it is.
async fn serve(
    args: ServeArgs,
    target: &redis_pool::Target,
    keys: Keys,
    window: Duration,
    durability: Durability,
    zone: Zone,
) -> Result<Outcome, CliError> {
    let tokens = args
        .tokens
        .as_ref()
        .and_then(crate::api::auth::Tokens::parse)
        .ok_or_else(|| {
            ConfigError::new(
                "HERALD_API_TOKENS (--tokens)",
                "is required: give one or more bearer tokens, comma-separated",
            )
        })?;
    let pool = target.open(32).await?;
    let state = crate::api::ApiState {
        producer: Producer::new(pool, keys)
            .with_idempotency_window(window)
            .with_durability(durability),
        tokens: std::sync::Arc::new(tokens),
        zone,
    };
    let listen_error = |source| CliError::Read {
        path: format!("--listen {}", args.listen),
        source,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(listen_error)?;
    crate::api::serve(listener, state, shutdown_signal())
        .await
        .map_err(listen_error)?;
    Ok(Outcome::Enqueued)
}

async fn shutdown_signal() {
    herald_shared::signal::shutdown_signal().await;
    tracing::info!("stopping the producer API");
}

impl OtpArgs {
    /// The spec without its timing (applied by [`single_job`]).
    fn to_spec(&self) -> JobSpec {
        JobSpec::Otp(OtpSpec {
            phone: self.phone.clone(),
            code: self.code.clone(),
            valid_for: Some(self.valid_for),
            idempotency_key: self.idempotency.idempotency_key.clone(),
            replace_key: self.timing.replace_key.clone(),
            send_at: None,
            send_in: None,
        })
    }
}

impl BookingArgs {
    /// The spec without its timing (applied by [`single_job`]).
    fn to_spec(&self) -> JobSpec {
        let mut spec = BookingSpec {
            replace_key: self.timing.replace_key.clone(),
            idempotency_key: self.idempotency.idempotency_key.clone(),
            ..BookingSpec::default()
        };
        spec.set_booking(self.booking());
        JobSpec::Booking(spec)
    }

    fn to_reminder_spec(&self) -> JobSpec {
        let mut spec = ReminderSpec {
            replace_key: self.timing.replace_key.clone(),
            idempotency_key: self.idempotency.idempotency_key.clone(),
            ..ReminderSpec::default()
        };
        spec.set_booking(self.booking());
        JobSpec::Reminder(spec)
    }
}

/// Builds and validates one job from `spec` (appointments in `zone`) and the command
/// line's `timing`.
fn single_job(what: &str, spec: JobSpec, timing: Timing<'_>, zone: &Zone) -> Result<Job, CliError> {
    let invalid = |err: herald_shared::validate::ValidationError| CliError::Invalid {
        what: what.into(),
        source: err.into(),
    };
    let job = spec.into_job_in(zone).map_err(invalid)?;
    timing.apply(job, zone).map_err(invalid)
}

/// `cancel`: prints `cancelled` (exit 0) or the state that made it too late (exit 1).
async fn run_cancel(args: &CancelArgs, producer: Producer) -> Result<Outcome, CliError> {
    let outcome = match (&args.job_id, &args.idempotency_key) {
        (Some(id), _) => {
            let id = uuid::Uuid::parse_str(id.trim()).map_err(|_| {
                CliError::Cancel(format!(
                    "JOB_ID: {id:?} is not a job id (a UUID, as an enqueue prints it)"
                ))
            })?;
            producer.cancel(id).await?
        }
        (None, Some(key)) => producer.cancel_by_idempotency_key(key).await?,
        (None, None) => {
            return Err(CliError::Cancel(
                "give a JOB_ID or --idempotency-key KEY".into(),
            ));
        }
    };
    let mut out = io::stdout().lock();
    match outcome {
        CancelOutcome::Cancelled { job_id } => {
            let _ = writeln!(out, "cancelled");
            tracing::info!(%job_id, "cancelled");
            Ok(Outcome::Enqueued)
        }
        CancelOutcome::TooLate { job_id, state } => {
            let _ = writeln!(out, "{}", state.as_str());
            eprintln!(
                "{NAME}: job {job_id} is {}: too late to cancel",
                state.as_str()
            );
            Ok(Outcome::TooLate)
        }
        CancelOutcome::Unknown => Err(CliError::Cancel(match &args.job_id {
            Some(id) => format!("no job {id} (never enqueued, or its record expired)"),
            None => "no job under that idempotency key (never used, or its window passed)".into(),
        })),
    }
}

/// Reads and validates `send`'s request body.
fn send_job(args: SendArgs, zone: &Zone) -> Result<Job, CliError> {
    let name = input_name(&args.file);
    let mut body = Vec::new();
    let read = if is_stdin(&args.file) {
        io::stdin().read_to_end(&mut body)
    } else {
        File::open(&args.file).and_then(|mut f| f.read_to_end(&mut body))
    };
    read.map_err(|source| CliError::Read {
        path: name.clone(),
        source,
    })?;
    let invalid = |source: SpecError| CliError::Invalid {
        what: format!("request in {name}"),
        source,
    };
    let request: SendRequest = wire::decode(&body).map_err(|err| invalid(err.into()))?;
    let spec = JobSpec::Raw(RawSpec {
        request: Box::new(request),
        idempotency_key: args.idempotency.idempotency_key.clone(),
        send_at: None,
        send_in: None,
        not_after: None,
        replace_key: args.timing.replace_key.clone(),
    });
    let job = spec.into_job_in(zone).map_err(|err| invalid(err.into()))?;
    args.timing
        .timing(None)
        .apply(job, zone)
        .map_err(|err| invalid(err.into()))
}

async fn run_bulk(args: &BulkArgs, producer: Producer, zone: Zone) -> Result<Outcome, CliError> {
    let name = input_name(&args.file);
    let (input, len): (Box<dyn BufRead + Send>, Option<u64>) = if is_stdin(&args.file) {
        (
            Box::new(BufReader::with_capacity(1 << 16, io::stdin())),
            None,
        )
    } else {
        let file = File::open(&args.file).map_err(|source| CliError::Read {
            path: name.clone(),
            source,
        })?;
        let len = file.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 16, file)), len)
    };
    let mut report = Report::new(len);
    let result = bulk::enqueue_lines_in(&producer, input, &mut report, zone).await;
    report.finish();
    let summary = result?;
    let outcome = if summary.rejected == 0 {
        Outcome::Enqueued
    } else if summary.enqueued + summary.duplicates > 0 {
        Outcome::SomeRejected
    } else {
        // Every line was bad: the rejections above are the whole report.
        Outcome::NothingValid
    };
    if outcome != Outcome::NothingValid {
        eprintln!("{NAME}: {summary}");
    }
    if args.json {
        let json = serde_json::to_string(&summary).expect("a summary serializes");
        let _ = writeln!(io::stdout().lock(), "{json}");
    }
    Ok(outcome)
}

/// Bulk progress for people: rejected lines on stderr, and a progress bar when stderr is a
/// terminal.
struct Report {
    bar: Option<ProgressBar>,
}

impl Report {
    /// `len`: the input's size in bytes, when known (a file, not stdin).
    fn new(len: Option<u64>) -> Report {
        if !io::stderr().is_terminal() {
            return Report { bar: None };
        }
        let bar = match len {
            Some(len) => ProgressBar::new(len).with_style(
                ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
                    .expect("valid template"),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg}").expect("valid template"),
            ),
        };
        Report { bar: Some(bar) }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Report {
    fn rejected(&mut self, rejected: &Rejected) {
        let print = || eprintln!("{NAME}: {rejected}");
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    fn progress(&mut self, summary: &Summary, bytes_read: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes_read);
            bar.set_message(summary.to_string());
        }
    }
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn input_name(path: &Path) -> String {
    if is_stdin(path) {
        "stdin".into()
    } else {
        path.display().to_string()
    }
}

/// Reports a command-line error: help and version as clap prints them, anything else as one
/// line naming the flag. Returns the exit code.
pub fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = err.print();
        return ExitCode::from(EXIT_OK);
    }
    eprintln!(
        "{NAME}: {} (see --help)",
        one_line(&err.render().to_string())
    );
    ExitCode::from(EXIT_FAILED)
}

/// The first paragraph of clap's message, without its `error: ` prefix, on one line.
fn one_line(rendered: &str) -> String {
    let message = rendered.trim_start().trim_start_matches("error: ");
    let paragraph = message.split("\n\n").next().unwrap_or(message);
    paragraph
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_fit_on_one_line_and_name_the_flag() {
        let err = Cli::try_parse_from(["herald-producer", "otp", "--phone", "+919999999999"])
            .err()
            .unwrap();
        let line = one_line(&err.render().to_string());
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--code"), "{line}");
    }

    #[test]
    fn the_code_never_reaches_debug_output() {
        let cli = Cli::try_parse_from([
            "herald-producer",
            "otp",
            "--phone",
            "+919999999999",
            "--code",
            "246810",
        ])
        .unwrap();
        let Command::Otp(args) = cli.command else {
            panic!("not otp")
        };
        assert!(!format!("{:?}", args.to_spec()).contains("246810"));
    }
}
