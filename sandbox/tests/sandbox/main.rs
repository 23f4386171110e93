//! The sandbox's end-to-end suite: real HTTP over loopback against `start(.., 127.0.0.1:0)`,
//! and the real binary for its command line. One test binary, one module per guarantee.

/// A sandbox on a free port, a client for it, request bodies and fixtures.
mod support;

/// Only `Authorization: Basic <key>`, verbatim, gets in.
mod auth;
/// The guide's bodies are accepted on both spellings of the route; bad ones are refused
/// with the field named.
mod bodies;
/// The binary: flags, exit codes, start-up line, SIGTERM.
mod cli;
/// The `/_sandbox` routes, the in-process handle, and shutdown.
mod control;
/// Latency, the random fail rate and every script rule.
mod faults;
/// The strict sliding window, its 429 and the busiest-window statistic.
mod rate_limit;
/// Signed webhooks posted back: delivered then read, scripted revocations and taps, retries.
mod webhooks;
