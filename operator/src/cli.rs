//! The operator's subcommands as `herald-worker` exposes them: `status`, `track` and
//! `dlq list|show|replay|purge`, their flags, what they print and their exit codes.
//!
//! A binary flattens [`OperatorCommand`] into its own subcommands and calls [`run`]; the
//! library calls underneath ([`crate::status`], [`crate::track`], [`crate::dlq`]) are what a
//! dashboard or a test uses directly.

use std::io::IsTerminal;
use std::time::Duration;

use clap::{Args, Subcommand};
use herald_shared::Lane;
use herald_shared::config::{RedisArgs, parse_duration};
use herald_shared::process::{Failure, done_if, print_out};
use herald_shared::redis_pool::ConnectError;
use herald_store::Keys;
use indicatif::{ProgressBar, ProgressStyle};

use crate::dlq::{self, DeadLetters, ListFilter, PurgeSelection, ReplayOptions, Selection};
use crate::track::TrackArgs;
use crate::{status, track};

/// The name failures are printed under.
const PROGRAM: &str = "herald-worker";

/// `status`'s exit codes, for its `--help`.
pub const STATUS_EXIT_CODES: &str = "Exit codes:
  0  printed
  2  bad usage or configuration, or Redis unreachable";

/// `track`'s exit codes, for its `--help`.
pub const TRACK_EXIT_CODES: &str = "Exit codes:
  0  found and printed
  1  not found (never enqueued in this namespace, or its record expired)
  2  bad usage or configuration, or Redis unreachable";

/// `dlq`'s exit codes, for its `--help`.
pub const DLQ_EXIT_CODES: &str = "Exit codes:
  0  done (purge without --yes: nothing deleted, only listed)
  1  partly done, each case reported (an id not found, an expired OTP without --extend, an
     entry with no job, a stored letter that does not parse)
  2  bad usage or configuration, or Redis unreachable";

/// The operator's subcommands.
#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Show ready, pending, delayed, dead and sent jobs per lane, and live consumers.
    #[command(after_help = STATUS_EXIT_CODES)]
    Status {
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Inspect dead letters, replay them onto their lanes, or purge them.
    #[command(after_help = DLQ_EXIT_CODES)]
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Show a job's timeline: enqueued, attempts, sent, delivered, read, revoked, dead.
    #[command(after_help = TRACK_EXIT_CODES)]
    Track(TrackArgs),
}

/// `dlq`'s subcommands.
#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// One line per dead letter (id, lane, masked phone, attempts, when, reason), newest first.
    #[command(after_help = DLQ_EXIT_CODES)]
    List {
        /// A JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Only this lane's.
        #[arg(long, value_parser = parse_lane)]
        lane: Option<Lane>,
        /// Only those whose reason contains TEXT (case-insensitive).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// At most N.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// The whole dead letter, attempt history included, as pretty JSON (an OTP's code hidden).
    #[command(after_help = DLQ_EXIT_CODES)]
    Show {
        /// The dead letter's id (the job id; `entry:<stream id>` for an entry that was not a job).
        id: String,
    },
    /// Move dead letters back onto their lanes with a fresh attempt budget, history kept.
    ///
    /// Each move is atomic: a replay interrupted at any point leaves every job either still
    /// dead or back on its lane, and replaying an id twice enqueues it once.
    #[command(after_help = DLQ_EXIT_CODES)]
    Replay {
        #[command(flatten)]
        select: ReplaySelect,
        /// Give each replayed OTP a deadline at least this long from now (10m; at most 24h).
        /// An OTP past its deadline is replayed only with it, and only while its letter
        /// still holds the code: workers erase codes at the deadline, and one dead-lettered
        /// as expired never kept it. A booking's deadline is its appointment: never moved.
        #[arg(long, value_name = "DURATION")]
        extend: Option<dlq::Extension>,
        /// Say what would be replayed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete dead letters. Without --yes, only says what would be deleted.
    #[command(after_help = DLQ_EXIT_CODES)]
    Purge {
        #[command(flatten)]
        select: PurgeSelect,
        /// Really delete.
        #[arg(long)]
        yes: bool,
    },
}

/// Which dead letters `dlq replay` takes.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct ReplaySelect {
    /// Every dead letter.
    #[arg(long)]
    all: bool,
    /// Dead letters whose reason contains TEXT (case-insensitive), e.g. "HTTP 500".
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// These dead letters.
    #[arg(value_name = "ID")]
    ids: Vec<String>,
}

/// Which dead letters `dlq purge` deletes.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct PurgeSelect {
    /// Every dead letter.
    #[arg(long)]
    all: bool,
    /// Dead letters dead for longer than this (7d, 12h).
    #[arg(long, value_name = "AGE", value_parser = parse_duration)]
    older_than: Option<Duration>,
    /// These dead letters.
    #[arg(value_name = "ID")]
    ids: Vec<String>,
}

fn parse_lane(s: &str) -> Result<Lane, String> {
    s.parse()
}

/// Runs one operator command against `redis`; prints what it found on stdout and returns
/// the exit code (or the failure to print).
pub async fn run(redis: &RedisArgs, command: OperatorCommand) -> Result<u8, Failure> {
    match command {
        OperatorCommand::Status { json } => {
            let keys = Keys::new(&redis.namespace).map_err(Failure::usage)?;
            let target = redis.target();
            let pool = target.connect(1).await.map_err(Failure::usage)?;
            let status = status::collect(&pool, &keys).await.map_err(|err| {
                Failure::usage(ConnectError::Unreachable {
                    url: target.describe(),
                    kind: err.kind(),
                    reason: err.to_string(),
                })
            })?;
            if json {
                print(&serde_json::to_string(&status).expect("status serializes"));
            } else {
                print(&status::render(&status));
            }
            Ok(0)
        }
        OperatorCommand::Dlq { command } => {
            let keys = Keys::new(&redis.namespace).map_err(Failure::usage)?;
            let pool = redis.target().connect(2).await.map_err(Failure::usage)?;
            run_dlq(DeadLetters::new(pool, keys), command).await
        }
        OperatorCommand::Track(args) => {
            let out = track::run(redis, &args)
                .await
                .map_err(|err| Failure::new(err.exit_code(), err))?;
            print(&out);
            Ok(0)
        }
    }
}

async fn run_dlq(dead: DeadLetters, command: DlqCommand) -> Result<u8, Failure> {
    let redis_failed = |err: dlq::DlqError| {
        // A dead letter another program wrote is reported like any that is not replayed.
        let code = if matches!(err, dlq::DlqError::Unreadable { .. }) {
            1
        } else {
            2
        };
        Failure::new(code, err)
    };
    match command {
        DlqCommand::List {
            json,
            lane,
            reason,
            limit,
        } => {
            let filter = ListFilter {
                lane,
                reason,
                limit,
            };
            let letters = dead.list(&filter).await.map_err(redis_failed)?;
            let rows: Vec<dlq::Row> = letters.iter().map(dlq::Row::from).collect();
            if json {
                print(&serde_json::to_string(&rows).expect("rows serialize"));
            } else {
                print(&dlq::render_list(&rows));
            }
            Ok(0)
        }
        DlqCommand::Show { id } => match dead.get(&id).await.map_err(redis_failed)? {
            Some(letter) => {
                print(&dlq::to_pretty_json(&letter));
                Ok(0)
            }
            None => Err(Failure::new(
                1,
                format!("no dead letter has id {id:?}; list them with `herald-worker dlq list`"),
            )),
        },
        DlqCommand::Replay {
            select,
            extend,
            dry_run,
        } => {
            let selection = if select.all {
                Selection::All
            } else if let Some(reason) = select.reason {
                Selection::Reason(reason)
            } else {
                Selection::Ids(select.ids)
            };
            let bar = progress_bar();
            let mut progress = |done: usize, total: usize| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            };
            let report = dead
                .replay(&selection, ReplayOptions { extend, dry_run }, &mut progress)
                .await
                .map_err(|err| {
                    let mut failure = redis_failed(err);
                    failure.message.push_str(
                        "; every dead letter is either back on its lane or still dead: run the same replay again to finish",
                    );
                    failure
                });
            bar.finish_and_clear();
            let report = report?;
            print(&dlq::render_replay(&report));
            Ok(done_if(report.complete()))
        }
        DlqCommand::Purge { select, yes } => {
            let selection = if select.all {
                PurgeSelection::All
            } else if let Some(age) = select.older_than {
                PurgeSelection::OlderThan(age)
            } else {
                PurgeSelection::Ids(select.ids)
            };
            let report = dead.purge(&selection, yes).await.map_err(redis_failed)?;
            print(&dlq::render_purge(&report));
            // Without --yes nothing was asked to be done, so nothing is partly done.
            Ok(done_if(!yes || report.complete()))
        }
    }
}

fn print(text: &str) {
    print_out(PROGRAM, text);
}

/// A replay's progress bar on stderr when it is a terminal; hidden otherwise.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("replaying [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}
