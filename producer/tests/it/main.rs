//! The producer's tests against a real `redis-server` per test, in one test binary.
//!
//! - `enqueue`: the library: lanes, idempotency (including racing producers), windows,
//!   batches, validation that never touches Redis.
//! - `cli`: the `herald-producer` binary: output, exit codes, one-line errors.
//! - `guard`: the OTP guard's settings and refusals (CLI, bulk, HTTP) and verifications.
//! - `support`: servers, fixtures and Redis inspection shared by both.

mod api;
mod cli;
mod enqueue;
mod guard;
mod support;
