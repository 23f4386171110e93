//! A local stand-in for Interakt's public RCS API, so Herald's tests and demo run with no
//! network and no account.
//!
//! It answers `POST /v1/public/rcs/message/` the way the real API does: the same
//! `Authorization: Basic <key>` check, the same 429 body past the rate limit, the same success
//! body with a fresh message id. Bodies are checked with Herald's own wire model
//! ([`herald_shared::wire`]) and limits ([`herald_shared::validate`]), so a request the sandbox
//! accepts is one Herald believes Interakt accepts. On top of that it injects faults on
//! purpose: latency, random 503s, and per-phone scripts (`+919000000001=fail:2`).
//!
//! Crate map, in the order a request meets it:
//!
//! - [`cli`]: the `herald-sandbox` command line, turned into a [`SandboxConfig`].
//! - [`config`]: what the sandbox is told: key, rate, faults ([`ScriptRule`] parsing).
//! - `routes`: the axum routes; thin, they hand the request to the state and wait out the delay.
//! - `state`: the one mutable state and the order a send is judged in: count, rate limit,
//!   faults, validation, acceptance.
//! - `limiter`: the strict sliding window, pure (instants are passed in).
//! - `faults`: which injected fault, if any, a request meets.
//! - `reply`: every answer the send endpoint gives, with Interakt's texts.
//! - [`stats`] and [`messages`]: what the sandbox saw, for tests to assert on.
//! - [`webhooks`]: posting signed delivery events (and scripted revocations and taps) back
//!   to Herald's webhook receiver.
//! - `server`: starting, running and stopping the HTTP server ([`start`], [`run`]).
//!
//! Design decisions:
//!
//! - **Strict limits.** The rate limit is an exact sliding log, the strictest reading of
//!   Interakt's "N requests per minute", and [`Stats::max_in_window`] counts every
//!   authenticated request in any window, so a test can prove a client never exceeded it.
//! - **Accepted before the delay.** A message is recorded when it is accepted, before any
//!   latency is waited out: a client that times out on a slow answer has still had its message
//!   queued, which is exactly the ambiguity the real API leaves a client with.
//! - **Webhooks as a subscriber.** Every accepted message is published on a broadcast channel
//!   ([`RunningSandbox::subscribe`]); the webhook poster is one more subscriber, so posting
//!   never slows or blocks the send path.

#![deny(missing_docs)]

pub mod cli;
pub mod config;
mod faults;
mod limiter;
pub mod messages;
mod reply;
mod routes;
mod server;
mod state;
pub mod stats;
pub mod webhooks;

pub use config::{SandboxConfig, Script, ScriptRule, ScriptRuleError};
pub use messages::AcceptedMessage;
pub use server::{Error, RunningSandbox, run, start};
pub use stats::Stats;
pub use webhooks::WebhookStats;

/// The path prefix of the public API, as `INTERAKT_BASE_URL` ends: `http://ADDR/v1/public`.
pub const API_PREFIX: &str = "/v1/public";
/// The send route, without its trailing slash (both spellings are served).
pub const SEND_PATH: &str = "/v1/public/rcs/message";
