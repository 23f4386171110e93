//! Herald's worker: drains the lanes into Interakt within the plan's rate limit, shared by
//! every replica; retries, recovers and dead-letters.
//!
//! The data flow, one module per stage:
//!
//! ```text
//! lanes (read, claim) -> limiter (shared budget) -> sender (HTTP) -> retry (decide)
//!     -> settle (sent | delayed | dead)            delayed (due retries back onto lanes)
//!            \-> timeline + message index <- webhook processor <- webhook receiver <- Interakt
//! ```
//!
//! - [`settings`]: flags and environment, validated once.
//! - [`worker`]: one replica's dispatcher, send tasks and shutdown.
//! - [`lanes`]: consumer-group reads, OTP first; recovery of dead replicas' jobs.
//! - [`limiter`]: the sliding-window budget in Redis, local pacing, the 429 cool-down.
//! - [`sender`]: one HTTP call to Interakt, classified.
//! - [`retry`]: whether and when to retry: pure.
//! - [`settle`]: the atomic ways a job leaves a lane.
//! - [`delayed`]: moving due retries back onto their lanes.
//! - [`dead_letter`]: what a dead letter holds.
//! - [`dlq`]: dead letters for operators: list, show, replay onto their lanes, purge.
//! - [`status`]: counts per lane for operators.
//! - [`timeline`]: each job's timeline (enqueued, attempts, sent, delivered, read, revoked,
//!   dead), written by the settle scripts and the webhook processor, read by `track`.
//! - [`track`]: `herald-worker track`: one job's timeline, by job id or Interakt message id.
//! - [`webhook`]: `herald-worker webhook`: Interakt's events received, verified,
//!   de-duplicated, queued, and processed into timelines and the inbound stream.
//! - [`telemetry`]: metrics, health and readiness.
//! - [`backoff`]: behaviour while Redis is unreachable.
//! - [`demo`]: the whole system on one machine in one command, for newcomers.

pub mod backoff;
pub mod delayed;
pub mod demo;
pub mod dlq;
pub mod lanes;
pub mod limiter;
pub mod retry;
pub mod sender;
pub mod settings;
pub mod settle;
pub mod status;
pub mod telemetry;
pub mod track;
pub mod webhook;
pub mod worker;

// Moved to the shared crate (the producer API reads them too); kept at their old paths.
pub use herald_shared::{dead_letter, timeline};
