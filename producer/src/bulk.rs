//! Bulk enqueue: JSON Lines in (one [`JobSpec`] a line), jobs out in pipelined batches.
//!
//! A reader thread decodes and validates lines and builds their batch's script calls
//! ([`Producer::prepare`]) while the caller's task enqueues the previous batch, so
//! validation (phone parsing, JSON), building the calls and Redis running the last ones
//! overlap. A bad line is reported with its number and reason and skipped; the good lines
//! around it are enqueued.
//! A line whose idempotency key already holds other content, or an OTP the OTP guard
//! refuses, is rejected the same way, once Redis has said so.
//! Blank lines are skipped but counted, so line numbers match an editor's.
//!
//! This module reports through an [`Observer`] and never prints: the CLI decides between a
//! progress bar and plain lines.

use std::fmt;
use std::io::{self, BufRead};

use herald_shared::Job;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::enqueue::{self, NotEnqueued, PIPELINE_CHUNK, Prepared, Producer};
use crate::spec::{JobSpec, SpecError};
use herald_shared::schedule::Zone;

/// Lines decoded before their jobs are sent as one batch.
pub const BATCH_LINES: usize = PIPELINE_CHUNK;

/// What a bulk run did, line by line. `enqueued + duplicates + rejected` is the number of
/// non-blank lines read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Jobs added to a lane.
    pub enqueued: u64,
    /// Lines whose idempotency key was already claimed: nothing added.
    pub duplicates: u64,
    /// Lines that were not valid jobs, whose idempotency key holds other content, or OTPs
    /// the OTP guard refused.
    pub rejected: u64,
    /// Of the rejected lines, the OTPs the OTP guard refused (each reported with its rule);
    /// left out of the JSON when none were.
    #[serde(skip_serializing_if = "is_zero")]
    pub refused: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "enqueued {}, duplicates {}, rejected {}",
            self.enqueued, self.duplicates, self.rejected
        )?;
        if self.refused > 0 {
            write!(f, " ({} refused by the OTP guard)", self.refused)?;
        }
        Ok(())
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A line that was not enqueued, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based.
    pub line: u64,
    /// Names the field: `phone: must be in E.164 form ...`.
    pub reason: String,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Hears about a bulk run as it goes.
pub trait Observer {
    /// A bad line, in line order.
    fn rejected(&mut self, rejected: &Rejected);
    /// After each batch: the totals so far and how many input bytes were consumed.
    fn progress(&mut self, _summary: &Summary, _bytes_read: u64) {}
}

/// Why a bulk run stopped early. Carries what was done before it.
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    #[error("reading line {line}: {source} ({summary} before it)")]
    Read {
        line: u64,
        source: io::Error,
        summary: Summary,
    },
    #[error("{source} ({summary} before it)")]
    Enqueue {
        source: enqueue::Error,
        summary: Summary,
    },
    /// Redis refused or failed a line (each such line was reported with why): the run
    /// stopped after that batch, and `summary` counts exactly what was enqueued.
    #[error(
        "Redis refused or failed line {line} and stopped the run ({summary}, exactly; the lines not enqueued are listed above; nothing after line {last_line} was read)"
    )]
    Redis {
        line: u64,
        last_line: u64,
        summary: Summary,
    },
}

/// One batch of decoded lines, its jobs' calls built.
struct Batch {
    jobs: Prepared,
    /// The line number of each job, in the same order.
    job_lines: Vec<u64>,
    rejected: Vec<Rejected>,
    /// Input bytes consumed up to the end of this batch.
    bytes_read: u64,
}

/// Reads JSON Lines from `input` to its end, enqueueing every valid line with `producer`
/// (appointments in the default time zone).
pub async fn enqueue_lines<R>(
    producer: &Producer,
    input: R,
    observer: &mut dyn Observer,
) -> Result<Summary, BulkError>
where
    R: BufRead + Send + 'static,
{
    enqueue_lines_in(producer, input, observer, Zone::default()).await
}

/// [`enqueue_lines`] with appointments that name no `tz` in `zone`.
pub async fn enqueue_lines_in<R>(
    producer: &Producer,
    input: R,
    observer: &mut dyn Observer,
    zone: Zone,
) -> Result<Summary, BulkError>
where
    R: BufRead + Send + 'static,
{
    // Two batches in flight: one being enqueued, one being read.
    let (tx, mut rx) = mpsc::channel(2);
    // A plain thread, not spawn_blocking: a reader blocked on stdin must not hold up the
    // runtime's shutdown when the run stops early. It ends when `rx` is dropped.
    let preparer = producer.clone();
    std::thread::Builder::new()
        .name("bulk-reader".into())
        .spawn(move || read_batches(input, tx, &zone, &preparer))
        .expect("spawn the bulk reader thread");

    let mut summary = Summary::default();
    while let Some(batch) = rx.recv().await {
        let Batch {
            jobs,
            job_lines,
            mut rejected,
            bytes_read,
        } = batch.map_err(|(line, source)| BulkError::Read {
            line,
            source,
            summary,
        })?;
        let results = if jobs.is_empty() {
            Vec::new()
        } else {
            match producer.enqueue_prepared(jobs).await {
                Ok(results) => results,
                Err(source) => {
                    report(observer, &mut summary, rejected);
                    return Err(BulkError::Enqueue { source, summary });
                }
            }
        };
        let last_line = job_lines.last().copied().unwrap_or_default();
        let mut redis_failed = None;
        for (line, result) in job_lines.into_iter().zip(results) {
            match result {
                Ok(enqueued) if enqueued.duplicate => summary.duplicates += 1,
                Ok(_) => summary.enqueued += 1,
                Err(not) => {
                    match not {
                        NotEnqueued::Conflict(_) => {}
                        NotEnqueued::Guard(_) => summary.refused += 1,
                        _ => {
                            redis_failed.get_or_insert(line);
                        }
                    }
                    rejected.push(Rejected {
                        line,
                        reason: not.to_string(),
                    })
                }
            }
        }
        report(observer, &mut summary, rejected);
        observer.progress(&summary, bytes_read);
        if let Some(line) = redis_failed {
            return Err(BulkError::Redis {
                line,
                last_line,
                summary,
            });
        }
    }
    Ok(summary)
}

/// Tells `observer` about `rejected` in line order and counts them.
fn report(observer: &mut dyn Observer, summary: &mut Summary, mut rejected: Vec<Rejected>) {
    rejected.sort_by_key(|r| r.line);
    for rejected in &rejected {
        observer.rejected(rejected);
    }
    summary.rejected += rejected.len() as u64;
}

type BatchResult = Result<Batch, (u64, io::Error)>;

/// The lines of the batch being read: its jobs (not yet prepared) and its rejects.
#[derive(Default)]
struct Reading {
    jobs: Vec<Job>,
    job_lines: Vec<u64>,
    rejected: Vec<Rejected>,
}

impl Reading {
    fn len(&self) -> usize {
        self.jobs.len() + self.rejected.len()
    }

    /// The batch read so far, its calls built by `producer`; reading starts a new one.
    fn take(&mut self, producer: &Producer, bytes_read: u64) -> Batch {
        let Reading {
            jobs,
            job_lines,
            rejected,
        } = std::mem::take(self);
        Batch {
            jobs: producer.prepare(jobs),
            job_lines,
            rejected,
            bytes_read,
        }
    }
}

/// The reader thread: decodes lines into batches, each prepared for `producer` to send,
/// until the input ends, a read fails, or the receiver is gone.
fn read_batches<R: BufRead>(
    mut input: R,
    tx: mpsc::Sender<BatchResult>,
    zone: &Zone,
    producer: &Producer,
) {
    let mut line_no = 0u64;
    let mut bytes_read = 0u64;
    let mut buf = Vec::new();
    let mut reading = Reading::default();
    loop {
        buf.clear();
        let n = match input.read_until(b'\n', &mut buf) {
            Ok(n) => n,
            Err(err) => {
                let _ = tx.blocking_send(Err((line_no + 1, err)));
                return;
            }
        };
        if n == 0 {
            break;
        }
        line_no += 1;
        bytes_read += n as u64;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = JobSpec::from_json(&buf)
            .map_err(SpecError::from)
            .and_then(|spec| Ok(spec.into_job_in(zone)?));
        match parsed {
            Ok(job) => {
                reading.jobs.push(job);
                reading.job_lines.push(line_no);
            }
            Err(err) => reading.rejected.push(Rejected {
                line: line_no,
                reason: err.to_string(),
            }),
        }
        if reading.len() >= BATCH_LINES
            && tx
                .blocking_send(Ok(reading.take(producer, bytes_read)))
                .is_err()
        {
            return;
        }
    }
    let _ = tx.blocking_send(Ok(reading.take(producer, bytes_read)));
}
