//! The command line's flags and subcommands, and the job specs they name.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use herald_shared::Redacted;
use herald_shared::config::{GLOBAL_DISPLAY_ORDER, RedisArgs, parse_duration};
use herald_shared::job::{Booking, Lane};

use crate::spec::{BookingSpec, JobSpec, OtpSpec, ReminderSpec, Timing};
use herald_shared::schedule::Zone;

use super::exit::*;
/// Enqueue RCS messages (OTPs, booking confirmations, raw Interakt requests) for Herald's
/// workers.
#[derive(Parser)]
#[command(name = NAME, version, after_help = EXIT_CODES)]
pub struct Cli {
    /// How long an idempotency key keeps its job once the job has finished (sent, dead or
    /// expired; e.g. 24h, 30m): while the job is pending, however long, its key holds it, and
    /// a cancel frees it at once.
    #[arg(
        long,
        env = "HERALD_IDEMPOTENCY_WINDOW",
        default_value = "24h",
        value_parser = parse_duration,
        global = true,
        display_order = GLOBAL_DISPLAY_ORDER
    )]
    pub idempotency_window: Duration,
    /// Acknowledge an enqueue only once this many replicas have it (Redis WAIT, 2 s); else
    /// fail (exit 2; the API answers 503) and let the caller retry with the same
    /// idempotency key. 0: as soon as the primary has it.
    #[arg(long, env = "HERALD_MIN_REPLICAS", default_value_t = 0, global = true, display_order = GLOBAL_DISPLAY_ORDER)]
    pub min_replicas: u32,
    /// The time zone of booking and reminder appointments (an IANA name), unless a job
    /// names its own (`tz`); their start is the default not_after.
    #[arg(long, env = "HERALD_TIMEZONE", default_value = herald_shared::schedule::DEFAULT_TIMEZONE, global = true, display_order = GLOBAL_DISPLAY_ORDER)]
    pub tz: Zone,
    // Last of the flags: what follows it is shown under its heading.
    #[command(flatten)]
    pub redis: RedisArgs,
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
    /// Address to listen on (port 0 picks a free one); once bound, it is printed on stderr:
    /// `herald-producer: listening on 127.0.0.1:8080`.
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

/// Whom a job is sent for (every enqueue).
#[derive(Args)]
pub struct TenantArgs {
    /// The business the job is sent for (e.g. salon-a): within a lane, tenants with a
    /// backlog are served in turn. 1 to 64 of A-Z a-z 0-9 _ . : -; default when absent.
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
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
    pub(super) fn timing(&self, before: Option<Duration>) -> Timing<'_> {
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
    /// Recipient in E.164 form (+919999999999; spaces, dashes, dots and parentheses between
    /// the digits are dropped), valid for its country code.
    #[arg(long, value_parser = herald_shared::phone::typed_number)]
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
    pub tenant: TenantArgs,
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
            pub(super) fn booking(&self) -> Booking {
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
        pub tenant: TenantArgs,
        #[command(flatten)]
        pub timing: TimingArgs,
    }
} }

#[derive(Args)]
pub struct SendArgs {
    /// JSON file with the request body, or - for stdin.
    #[arg(long, short)]
    pub file: PathBuf,
    /// The lane it waits in: booking, reminder or bulk (campaigns), or otp for a code (with
    /// --not-after at most 24h away). Lanes share the budget by the workers'
    /// --lane-weights; OTPs always go first.
    #[arg(long, value_name = "LANE", default_value = "booking")]
    pub lane: Lane,
    #[command(flatten)]
    pub idempotency: IdempotencyArgs,
    #[command(flatten)]
    pub tenant: TenantArgs,
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

impl OtpArgs {
    /// The spec without its timing (applied by [`single_job`]).
    pub(super) fn to_spec(&self) -> JobSpec {
        JobSpec::Otp(OtpSpec {
            phone: self.phone.clone(),
            code: self.code.clone(),
            valid_for: Some(self.valid_for),
            idempotency_key: self.idempotency.idempotency_key.clone(),
            replace_key: self.timing.replace_key.clone(),
            tenant: self.tenant.tenant.clone(),
            send_at: None,
            send_in: None,
        })
    }
}

impl BookingArgs {
    /// The spec without its timing (applied by [`single_job`]).
    pub(super) fn to_spec(&self) -> JobSpec {
        let mut spec = BookingSpec {
            replace_key: self.timing.replace_key.clone(),
            idempotency_key: self.idempotency.idempotency_key.clone(),
            tenant: self.tenant.tenant.clone(),
            ..BookingSpec::default()
        };
        spec.set_booking(self.booking());
        JobSpec::Booking(spec)
    }

    pub(super) fn to_reminder_spec(&self) -> JobSpec {
        let mut spec = ReminderSpec {
            replace_key: self.timing.replace_key.clone(),
            idempotency_key: self.idempotency.idempotency_key.clone(),
            tenant: self.tenant.tenant.clone(),
            ..ReminderSpec::default()
        };
        spec.set_booking(self.booking());
        JobSpec::Reminder(spec)
    }
}
