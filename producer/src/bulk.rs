//! Bulk enqueue: JSON Lines in (one [`JobSpec`] a line), jobs out in pipelined batches.
//!
//! A reader thread reads lines and decoder threads (one per core) decode and validate them
//! while the caller's task enqueues the batches before, in the input's order, so validation
//! (phone parsing, JSON) and Redis round trips overlap. A bad line is
//! reported with its number and reason and skipped; the good lines around it are enqueued.
//! A line whose idempotency key already holds other content, or an OTP the OTP guard
//! refuses, is rejected the same way, once Redis has said so.
//! Blank lines are skipped but counted, so line numbers match an editor's.
//!
//! This module reports through an [`Observer`] and never prints: the CLI decides between a
//! progress bar and plain lines.

use std::fmt;
use std::io::{self, BufRead};

use herald_shared::Job;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::enqueue::{self, NotEnqueued, PIPELINE_CHUNK, Producer};
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

/// One batch of decoded lines.
struct Batch {
    jobs: Vec<Job>,
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
    // Batches in flight: one being enqueued, the next ones being read and decoded.
    let (tx, mut rx) = mpsc::channel(2 * MAX_DECODERS);
    // A plain thread, not spawn_blocking: a reader blocked on stdin must not hold up the
    // runtime's shutdown when the run stops early. It ends when `rx` is dropped.
    std::thread::Builder::new()
        .name("bulk-reader".into())
        .spawn(move || read_batches(input, tx, &zone))
        .expect("spawn the bulk reader thread");

    let mut summary = Summary::default();
    while let Some(pending) = rx.recv().await {
        let Batch {
            jobs,
            job_lines,
            mut rejected,
            bytes_read,
        } = match pending {
            Ok((line, decoded)) => decoded.await.map_err(|_| BulkError::Read {
                line,
                source: io::Error::other("the thread decoding this line and the next stopped"),
                summary,
            })?,
            Err((line, source)) => {
                return Err(BulkError::Read {
                    line,
                    source,
                    summary,
                });
            }
        };
        let results = if jobs.is_empty() {
            Vec::new()
        } else {
            match producer.enqueue_batch(jobs).await {
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

/// A batch on its way (its first line's number, and the batch once one of the decoder
/// threads has decoded it), or the read that failed (its line number and error).
type Pending = Result<(u64, oneshot::Receiver<Batch>), (u64, io::Error)>;

/// At most this many decoder threads, however many cores the machine has.
const MAX_DECODERS: usize = 4;

/// The lines of one batch, not yet decoded, and where its decoded batch goes.
struct Lines {
    /// Each non-blank line and its number.
    lines: Vec<(u64, Vec<u8>)>,
    bytes_read: u64,
    done: oneshot::Sender<Batch>,
}

/// The reader thread: reads lines into batches until the input ends, a read fails, or the
/// receiver is gone, and hands each batch to the decoder threads (one per core, at most
/// [`MAX_DECODERS`]; a line's phone number and JSON cost more than reading it). The
/// batches reach `tx` in the input's order, each as soon as it is decoded.
fn read_batches<R: BufRead>(mut input: R, tx: mpsc::Sender<Pending>, zone: &Zone) {
    let decoders = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_DECODERS));
    let (work, queue) = std::sync::mpsc::sync_channel::<Lines>(decoders);
    let queue = Arc::new(Mutex::new(queue));
    for i in 0..decoders {
        let queue = Arc::clone(&queue);
        let zone = zone.clone();
        std::thread::Builder::new()
            .name(format!("bulk-decoder-{i}"))
            .spawn(move || decode_batches(&queue, &zone))
            .expect("spawn a bulk decoder thread");
    }
    let mut line_no = 0u64;
    let mut bytes_read = 0u64;
    let mut lines = Vec::with_capacity(BATCH_LINES);
    loop {
        let mut buf = Vec::new();
        let n = match input.read_until(b'\n', &mut buf) {
            Ok(n) => n,
            Err(err) => {
                let _ = tx.blocking_send(Err((line_no + 1, err)));
                return;
            }
        };
        if n > 0 {
            line_no += 1;
            bytes_read += n as u64;
            if !buf.iter().all(u8::is_ascii_whitespace) {
                lines.push((line_no, buf));
            }
        }
        if lines.len() >= BATCH_LINES || (n == 0 && !lines.is_empty()) {
            let (done, decoded) = oneshot::channel();
            let first = lines.first().map_or(line_no, |(line, _)| *line);
            let batch = Lines {
                lines: std::mem::replace(&mut lines, Vec::with_capacity(BATCH_LINES)),
                bytes_read,
                done,
            };
            if tx.blocking_send(Ok((first, decoded))).is_err() || work.send(batch).is_err() {
                return;
            }
        }
        if n == 0 {
            return;
        }
    }
}

/// A decoder thread: decodes the batches it takes from `queue` until the reader is gone.
fn decode_batches(queue: &Mutex<std::sync::mpsc::Receiver<Lines>>, zone: &Zone) {
    loop {
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(Lines {
            lines,
            bytes_read,
            done,
        }) = next
        else {
            return;
        };
        let mut batch = Batch {
            jobs: Vec::with_capacity(lines.len()),
            job_lines: Vec::with_capacity(lines.len()),
            rejected: Vec::new(),
            bytes_read,
        };
        for (line, text) in lines {
            let parsed = JobSpec::from_json(&text)
                .map_err(SpecError::from)
                .and_then(|spec| Ok(spec.into_job_in(zone)?));
            match parsed {
                Ok(job) => {
                    batch.jobs.push(job);
                    batch.job_lines.push(line);
                }
                Err(err) => batch.rejected.push(Rejected {
                    line,
                    reason: err.to_string(),
                }),
            }
        }
        let _ = done.send(batch);
    }
}
