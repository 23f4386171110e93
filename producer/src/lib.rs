//! Herald's producer: backend services hand it a message and get a job id back in a
//! millisecond; the worker deals with Interakt's limits from there.
//!
//! - [`enqueue`]: the [`Producer`], which puts validated jobs on their lanes (OTPs on their
//!   own, so workers serve them first), once per idempotency key (the same key with other
//!   content is an [`IdempotencyConflict`]).
//! - [`guard`]: the OTP guard's settings, refusals, and their count and log (the rules run
//!   in the enqueue script).
//! - [`cancel`]: cancelling a job before its send begins (by id or idempotency key).
//! - [`spec`]: [`JobSpec`], a job as JSON (a bulk line, an API body), decoded with errors
//!   that name the field.
//! - [`bulk`]: JSON Lines in, pipelined batches out, bad lines reported by number.
//! - [`api`]: `herald-producer serve`, the HTTP API.
//! - [`cli`]: the `herald-producer` command line.

pub mod api;
pub mod bulk;
pub mod cancel;
pub mod cli;
pub mod enqueue;
pub mod guard;
pub mod spec;

pub use cancel::CancelOutcome;
pub use enqueue::{
    BatchResult, DEFAULT_IDEMPOTENCY_WINDOW, Enqueued, Error, IdempotencyConflict, Producer,
};
pub use guard::OtpRefused;
pub use spec::JobSpec;
