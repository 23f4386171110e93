//! Herald's shared model: what every other crate agrees on.
//!
//! - [`wire`]: Interakt's request, response and webhook bodies, field for field.
//! - [`validate`]: RCS and DLT limits, with errors that name the field path and the limit.
//! - [`phone`]: E.164 parsing into Interakt's `countryCode` + `phoneNumber`, and masking.
//! - [`job`]: the job envelope that travels through the lanes.
//! - [`schedule`]: when a job goes out and when it stops being worth sending: `send_at` /
//!   `send_in`, appointments in their time zone, `--before`.
//! - [`compose`]: OTP and booking jobs rendered into Interakt requests.
//! - [`error`]: the configuration error every check returns.
//! - [`config`]: flags and environment variables shared by the binaries.
//! - [`duration`]: the one grammar of durations (flags, job fields, the API's pattern).
//! - [`redis_pool`]: connection pools with explicit timeouts, TLS, Sentinel, and Redis's
//!   `maxmemory-policy` checked at start-up ([`redis_pool::memory_policy`]).
//! - [`ops`]: `/metrics`, `/healthz` and `/readyz` for every server.
//! - [`secret`]: a wrapper that keeps secrets out of logs.
//! - [`tokens`]: access tokens, kept and compared as SHA-256 digests.
//! - [`signature`]: signing and verifying webhook bodies (`Interakt-Signature`).
//! - [`backoff`]: riding out a Redis outage (every long-running task).
//! - [`episodes`]: this process's Redis failure episodes, by kind: one line when one starts
//!   and one when it ends, their metrics, readiness, and the refusal that stops the process.
//! - [`consumer`]: unique consumer names for consumer groups.
//! - [`signal`]: SIGTERM and SIGINT as a shutdown future or a cancelled token.
//! - [`process`]: what every binary does around its library call (logging, stdout, exit
//!   codes).
//! - [`traces`]: OpenTelemetry traces across the queue: W3C trace context, the `OTEL_*`
//!   variables, spans of a job's journey, export over OTLP that never holds a send up.

pub mod backoff;
pub mod compose;
pub mod config;
pub mod consumer;
pub mod duration;
pub mod episodes;
pub mod error;
pub mod job;
pub mod ops;
pub mod phone;
pub mod process;
pub mod redis_pool;
pub mod schedule;
pub mod secret;
pub mod signal;
pub mod signature;
pub mod tokens;
pub mod traces;
pub mod validate;
pub mod wire;

pub use job::{Job, JobKind, Lane};
pub use phone::Phone;
pub use secret::Redacted;

/// Redis's `maxmemory-policy`, checked at start-up: kept at its old path.
pub use redis_pool::memory_policy;
