//! The producer's tests against a real `redis-server` per test, in one test binary.
//!
//! - `enqueue`: the library: lanes, idempotency (including racing producers), windows,
//!   batches, validation that never touches Redis.
//! - `cli`: the `herald-producer` binary: output, exit codes, one-line errors.
//! - `support`: servers, fixtures and Redis inspection shared by both.

mod api;
mod cli;
mod enqueue;
mod support;
