//! Herald's worker: drains the lanes into Interakt within the plan's rate limit, shared by
//! every replica; retries, recovers and dead-letters. This crate is the pipeline and nothing
//! else; its modules are the stages of the flow, in order:
//!
//! ```text
//! lanes (read, claim) -> limiter (shared budget) -> sender (HTTP) -> retry (decide)
//!     -> settle (sent | delayed | dead)            delayed (due retries back onto lanes)
//! ```
//!
//! - [`settings`]: `herald-worker run`'s flags and environment, validated once.
//! - [`dispatcher`]: one replica: reads, takes tokens, spawns send tasks, shuts down.
//! - [`lanes`]: consumer-group reads, OTP first; recovery of dead replicas' jobs.
//! - [`limiter`]: the sliding-window budget in Redis, local pacing, the 429 cool-down.
//! - [`sender`]: one HTTP call to Interakt, classified.
//! - [`retry`]: whether and when to retry: pure.
//! - [`settle`]: the atomic ways a job leaves a lane (each a script in `store/src/lua/`).
//! - [`delayed`]: moving due retries back onto their lanes.
//! - [`erase`]: erasing OTP codes from dead letters once their deadline has passed.
//! - [`telemetry`]: the worker's metrics.
//! - [`spans`]: the trace spans of a send (`process <lane>`, the HTTP call), when traced.
//!
//! Elsewhere: the webhook service is `herald-webhook`, the operator's tools (`status`,
//! `track`, `dlq`) are `herald-operator`, the demo is `herald-demo`; what they all agree on
//! (the job, the keys, timelines, dead letters, the Redis pool) is `herald-shared`.

pub mod delayed;
pub mod dispatcher;
pub mod erase;
pub mod lanes;
pub mod limiter;
pub mod retry;
pub mod sender;
pub mod settings;
pub mod settle;
pub mod spans;
pub mod telemetry;

// Moved to the shared crate (the producer API and the operator tools read them too); kept
// at their old paths.
pub use herald_store::{dead_letter, timeline};
