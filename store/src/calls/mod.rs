//! The typed calls of every script: each builds its script's keys and arguments from named
//! Rust values (so a script and its caller cannot disagree on a position) and decodes its
//! answer into a Rust enum. Callers choose the connection and what to do on a Redis error;
//! nothing here holds a connection.
//!
//! - [`enqueue`]: a new job (an OTP checked by the guard first); a cancel.
//! - [`guard`]: the OTP guard's verifications and unblocks.
//! - [`lanes`]: reading a lane, tenants in turn; taking over stale entries.
//! - [`settle`]: the send path: the last check, sent, retry, dead letter, hand back, defer,
//!   the holds' keep-alive.
//! - [`waiting`]: due retries and scheduled jobs onto their lanes.
//! - [`dead_letters`]: replay, code erasure.
//! - [`budget`]: the shared budget's tokens and cool-down.
//! - [`webhooks`]: events recorded once, milestones, processed events moved on.
//! - [`inspect`]: where a job is, and whether its record agrees.
//! - [`dashboard`]: the dashboard's sessions.

pub mod budget;
pub mod dashboard;
pub mod dead_letters;
pub mod enqueue;
pub mod guard;
pub mod inspect;
pub mod lanes;
pub mod settle;
pub mod waiting;
pub mod webhooks;

use redis::{FromRedisValue, RedisError, Value};

use crate::lifecycle::State;

/// A script answered something it never answers: a key of the namespace was written by
/// something else, or the script and its caller come from different releases.
pub(crate) fn unexpected(script: &str, reply: &Value) -> RedisError {
    RedisError::from((
        redis::ErrorKind::Parse,
        "unexpected reply from a Herald script",
        format!("{script}: {reply:?}"),
    ))
}

/// `{code, text}`, the shape most scripts answer in.
pub(crate) fn code_and_text(script: &str, reply: &Value) -> Result<(i64, String), RedisError> {
    <(i64, String)>::from_redis_value(reply.clone()).map_err(|_| unexpected(script, reply))
}

/// A state a script found, as stored (`None`: no record, or a name this release does not
/// know).
pub(crate) fn state_of(text: &str) -> Option<State> {
    State::parse(text)
}
