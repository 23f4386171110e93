//! End-to-end guarantees of `herald-worker dlq` and `herald-demo`: the real binary
//! against a real redis-server (and the sandbox, where a job is sent). One module per part of
//! the issue; each test's name says what it pins.

mod support;

// `dlq list` and `dlq show`.
mod inspect;
// `dlq replay`: all, by id, by reason, twice, expired OTPs, dry runs, exit codes.
mod replay;
// `dlq replay` killed with -9 midway: every job in exactly one place.
mod crash;
// A replayed job is sent by a worker, with a fresh budget and its history kept.
mod end_to_end;
// `dlq purge` with and without --yes.
mod purge;
// Usage errors and an unreachable Redis: exit 2.
mod cli;
// `herald-demo` (and `herald-worker demo`) runs to completion and its summary matches the sandbox's record.
mod demo;
