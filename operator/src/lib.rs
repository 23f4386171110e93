//! Herald's operator tools: what an operator reads and repairs, as a library.
//!
//! - [`status`]: where every job is, per lane and in total, and the live consumers.
//! - [`track`]: one job's timeline, by job id or Interakt message id.
//! - [`find`]: jobs by job id, Interakt message id, idempotency key or booking id (the
//!   dashboard's search).
//! - [`dlq`]: dead letters: list, show, replay onto their lanes, purge
//!   (split into [`dlq::DeadLetters`] for Redis, [`dlq::plan()`] for the decisions, and
//!   `render` for the text).
//! - [`guard`]: the OTP guard's blocked prefixes and refusals; an operator's unblock.
//! - [`cli`]: the `status`, `track` and `dlq` subcommands (flags, output, exit codes) that
//!   `herald-worker` mounts.
//!
//! It reads and moves what the pipeline wrote; it never sends a message and never
//! dead-letters a job (that is `herald-worker`'s settle stage).

pub mod cli;
pub mod dlq;
pub mod find;
pub mod guard;
pub mod status;
pub mod track;
