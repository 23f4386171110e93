//! What each subcommand does: enqueue one job, cancel, bulk, serve the API.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::Path;
use std::time::Duration;

use herald_shared::Job;
use herald_shared::config::ConfigError;
use herald_shared::wire::{self, SendRequest};
use herald_store::Keys;
use herald_store::durability::Durability;
use indicatif::{ProgressBar, ProgressStyle};

use crate::CancelOutcome;
use crate::bulk::{self, Observer, Rejected, Summary};
use crate::enqueue::Producer;
use crate::spec::{JobSpec, RawSpec, SpecError, Timing};
use herald_shared::redis_pool::{self};
use herald_shared::schedule::Zone;
use herald_shared::traces::TraceContext;

use super::args::*;
use super::exit::*;
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
    let guard = cli.guard.settings()?;
    // Kept to the end: dropping it posts the last spans (see docs/tracing.md).
    let _traces = herald_shared::traces::init(NAME)?;
    let target = cli.redis.target();
    let durability = Durability::replicas(cli.min_replicas);
    let connect = || async {
        let pool = target.connect(redis_pool::DEFAULT_POOL_SIZE).await?;
        Ok::<_, CliError>(
            Producer::new(pool, keys.clone())
                .with_idempotency_window(cli.idempotency_window)
                .with_durability(durability)
                .with_guard(guard.clone())
                .with_trace_parent(TraceContext::from_env()),
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
                guard,
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
        Command::Verified(args) => {
            connect().await?.verified(&args.phone).await?;
            return Ok(Outcome::Enqueued);
        }
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
pub(super) async fn serve(
    args: ServeArgs,
    target: &redis_pool::Target,
    keys: Keys,
    window: Duration,
    durability: Durability,
    guard: Option<herald_store::guard::Guard>,
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
            .with_durability(durability)
            .with_guard(guard)
            .logging_refusals(),
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
    // One line for people and scripts, whatever the log settings: with `--listen ...:0` it
    // is the only way to learn the port.
    let addr = listener.local_addr().map_err(listen_error)?;
    eprintln!("{NAME}: listening on {addr}");
    crate::api::serve(listener, state, shutdown_signal())
        .await
        .map_err(listen_error)?;
    Ok(Outcome::Enqueued)
}

pub(super) async fn shutdown_signal() {
    herald_shared::signal::shutdown_signal().await;
    tracing::info!("stopping the producer API");
}

/// Builds and validates one job from `spec` (appointments in `zone`) and the command
/// line's `timing`.
pub(super) fn single_job(
    what: &str,
    spec: JobSpec,
    timing: Timing<'_>,
    zone: &Zone,
) -> Result<Job, CliError> {
    let invalid = |err: herald_shared::validate::ValidationError| CliError::Invalid {
        what: what.into(),
        source: err.into(),
    };
    let job = spec.into_job_in(zone).map_err(invalid)?;
    timing.apply(job, zone).map_err(invalid)
}

/// `cancel`: prints `cancelled` (exit 0) or the state that made it too late (exit 1).
pub(super) async fn run_cancel(args: &CancelArgs, producer: Producer) -> Result<Outcome, CliError> {
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
pub(super) fn send_job(args: SendArgs, zone: &Zone) -> Result<Job, CliError> {
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
        idempotency_key: args.idempotency.idempotency_key,
        send_at: args.timing.send_at,
        send_in: args.timing.send_in,
        not_after: args.timing.not_after,
        replace_key: args.timing.replace_key,
        tenant: args.tenant.tenant,
        lane: Some(args.lane),
    });
    spec.into_job_in(zone).map_err(|err| invalid(err.into()))
}

pub(super) async fn run_bulk(
    args: &BulkArgs,
    producer: Producer,
    zone: Zone,
) -> Result<Outcome, CliError> {
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
pub(super) struct Report {
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

pub(super) fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

pub(super) fn input_name(path: &Path) -> String {
    if is_stdin(path) {
        "stdin".into()
    } else {
        path.display().to_string()
    }
}
