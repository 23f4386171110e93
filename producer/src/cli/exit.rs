//! How a run of `herald-producer` ends: its exit codes (documented in each `--help`), the
//! outcomes that are not failures, and the failures.

use std::io;
use std::process::ExitCode;

use herald_shared::config::ConfigError;

use crate::bulk::BulkError;
use crate::enqueue::{self};
use crate::spec::SpecError;
use herald_shared::redis_pool::ConnectError;

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

/// Refused by policy: the OTP guard refused the OTP (one line names the rule, the masked
/// number or prefix, and when it frees); nothing was enqueued.
pub const EXIT_REFUSED: u8 = 3;

/// The exit codes of every subcommand, for the top-level `--help`.
pub(super) const EXIT_CODES: &str = "\
Exit codes:
  0  done: every job enqueued (a repeated idempotency key prints the first job's id); serve:
     stopped cleanly on SIGTERM/SIGINT; openapi: printed
  1  bulk: some lines were rejected (each reported with its line number); the rest were enqueued;
     cancel: too late (already sending, sent or dead; the state is printed)
  2  bad usage, invalid input, or an idempotency key that already holds other content
     (nothing enqueued; for bulk, every line rejected), or Redis unreachable or failing,
     or not on --min-replicas replicas in time (retry with the same idempotency key)
     (serve: bad configuration, or it cannot listen)
  3  refused by policy: the OTP guard refused the OTP (the rule, the masked number or prefix,
     and when it frees are printed); nothing enqueued";

/// `otp`, `booking` and `send`: one job, enqueued or not.
pub(super) const SINGLE_EXIT_CODES: &str = "\
Exit codes:
  0  enqueued; the job id is printed (an idempotency key repeated with the same content
     prints the first job's id)
  2  bad usage, invalid input, or an idempotency key that already holds other content
     (nothing enqueued), or Redis unreachable or failing, or not on --min-replicas
     replicas in time (retry with the same idempotency key)
  3  refused by policy: the OTP guard refused the OTP (the rule, the masked number or
     prefix, and when it frees are printed); nothing enqueued";

pub(super) const VERIFIED_EXIT_CODES: &str = "\
Exit codes:
  0  counted
  2  bad usage, an invalid number, or Redis unreachable or failing";

pub(super) const CANCEL_EXIT_CODES: &str = "\
Exit codes:
  0  cancelled (now, or already before): the job will never be sent; prints `cancelled`
  1  too late: the job is already sending, sent or dead; prints its state
  2  bad usage, no such job (or idempotency key), or Redis unreachable or failing";

pub(super) const BULK_EXIT_CODES: &str = "\
Exit codes:
  0  every line enqueued (or a duplicate of an earlier job)
  1  some lines were rejected (each reported with its line number: invalid, an
     idempotency key that already holds other content, or an OTP the OTP guard refused);
     the rest were enqueued
  2  bad usage, an unreadable input, every line rejected (nothing enqueued),
     or Redis unreachable or failing, or not on --min-replicas replicas in time
     (retry with the same idempotency keys)";

pub(super) const SERVE_EXIT_CODES: &str = "\
Exit codes:
  0  stopped cleanly on SIGTERM/SIGINT
  2  bad usage or configuration (no HERALD_API_TOKENS, a bad namespace), --listen cannot be
     bound, or the server failed
Redis need not be up: until it is, the API answers 503 and /readyz says so.";

pub(super) const OPENAPI_EXIT_CODES: &str = "\
Exit codes:
  0  printed
  2  bad usage or configuration (a flag, HERALD_NAMESPACE)";

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

/// Why a run failed; every case exits with [`EXIT_FAILED`] but an OTP the guard refused
/// ([`EXIT_REFUSED`]: [`CliError::exit_code`]).
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

impl CliError {
    /// The exit code it ends the run with.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Enqueue(enqueue::Error::OtpRefused(_)) => EXIT_REFUSED,
            _ => EXIT_FAILED,
        })
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
pub(super) fn one_line(rendered: &str) -> String {
    let message = rendered.trim_start().trim_start_matches("error: ");
    let paragraph = message.split("\n\n").next().unwrap_or(message);
    paragraph
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
