//! The OTP guard's own calls: a verification reported (`verified.lua`) and a prefix
//! unblocked (`unblock.lua`). The guard's check is part of the enqueue
//! ([`super::enqueue::enqueue`]).

use redis::{FromRedisValue, RedisError, Value};
use time::OffsetDateTime;

use super::unexpected;
use crate::Keys;
use crate::guard::unix_ms;
use crate::script::ScriptCall;
use crate::scripts::{UNBLOCK, VERIFIED};

/// The call that counts a verified OTP of the number whose guard prefix is `prefix`, at
/// `now` (and turns the conversion rule on, if no report had been seen before).
pub fn verified(keys: &Keys, prefix: &str, now: OffsetDateTime) -> ScriptCall<'static> {
    let own = [keys.guard_prefix(prefix), keys.guard_reports()];
    let mut call = ScriptCall::new(&VERIFIED, own.iter().map(String::as_str));
    call.arg(unix_ms(now));
    call
}

/// The call that unblocks `prefix` at `now`, its counts started afresh.
pub fn unblock(keys: &Keys, prefix: &str, now: OffsetDateTime) -> ScriptCall<'static> {
    let own = [keys.guard_prefix(prefix), keys.guard_blocked()];
    let mut call = ScriptCall::new(&UNBLOCK, own.iter().map(String::as_str));
    call.arg(prefix).arg(unix_ms(now));
    call
}

/// What an unblock came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnblockReply {
    /// The prefix was blocked; it is not any more.
    Unblocked,
    /// The prefix was not blocked (never, or its block had ended): nothing changed.
    NotBlocked,
}

impl UnblockReply {
    pub fn decode(reply: &Value) -> Result<UnblockReply, RedisError> {
        match i64::from_redis_value(reply.clone()) {
            Ok(1) => Ok(UnblockReply::Unblocked),
            Ok(0) => Ok(UnblockReply::NotBlocked),
            _ => Err(unexpected("unblock.lua", reply)),
        }
    }
}
