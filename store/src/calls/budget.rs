//! The shared budget's scripts: tokens (`acquire.lua`), the cool-down after a 429
//! (`cooldown.lua`) and the end of its probe (`probe.lua`). What the numbers mean is the
//! worker's limiter's business; here they are named, so the scripts and the limiter cannot
//! disagree on a position.

use std::io::Write;

use herald_shared::Lane;
use redis::{FromRedisValue, RedisError, RedisWrite, ToRedisArgs, Value};

use super::unexpected;
use crate::Keys;
use crate::script::ScriptCall;
use crate::scripts::{ACQUIRE, COOLDOWN, PROBE, REFUND};

/// The budget's keys, made once per replica.
#[derive(Clone, Debug)]
pub struct BudgetKeys {
    /// The sliding log every replica's grants go into, and the OTPs' own.
    window: String,
    otp_window: String,
    /// The shared 429 cool-down, honoured by the acquire script.
    cooldown: String,
    /// The budget's state: effective N, pacing, 429 episodes.
    state: String,
    /// Set while bookings ask for tokens.
    bookings_waiting: String,
    /// The replicas whose OTPs found the log full: they go first.
    otp_first: String,
}

impl BudgetKeys {
    /// Gives `token` back (`refund.lua`): its entries leave the shared log and the OTPs'
    /// log, and the pacing its grant advanced is given back. Only for a token no request
    /// went out under (a grant that went stale before its request could start): the budget
    /// is then as if never asked.
    pub fn refund(&self, token: Charge<'_>) -> ScriptCall<'static> {
        let mut call = ScriptCall::new(&REFUND, [&*self.window, &self.otp_window, &self.state]);
        call.arg(token);
        call
    }

    pub fn new(keys: &Keys) -> BudgetKeys {
        BudgetKeys {
            window: keys.rate_window(),
            otp_window: keys.rate_window_otp(),
            cooldown: keys.cooldown(),
            state: keys.rate_state(),
            bookings_waiting: keys.bookings_waiting(),
            otp_first: keys.otp_first(),
        }
    }
}

/// A budget token as the scripts around a send charge or refund it (`token.lua`): its member
/// in the shared log, whether it is in the OTPs' log too (and of the reserve's pacing), and
/// the window it then counts for. Written as one argument, `charge:<W ms>:<otp|rsv|all>:<member>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charge<'a> {
    pub member: &'a str,
    /// Granted to an OTP: its entry is in the OTPs' log too.
    pub otp_log: bool,
    /// Granted on the OTP reserve's pacing (`rtat`), which a refund gives back.
    pub reserve: bool,
    /// W, in milliseconds: how long a charged entry counts, and so the least its log lives.
    pub window_ms: u64,
}

impl ToRedisArgs for Charge<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let logs = match (self.otp_log, self.reserve) {
            (true, true) => "rsv",
            (true, false) => "otp",
            (false, _) => "all",
        };
        // Writing to a command's buffer cannot fail.
        let _ = write!(
            out.writer_for_next_arg(),
            "charge:{}:{logs}:{}",
            self.window_ms,
            self.member
        );
    }
}

/// Where the scripts' `now` comes from: Redis's `TIME` in production, a test's paused clock
/// (microseconds) as the call's last argument (`clock.lua`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Now {
    Redis,
    Given(u64),
}

impl Now {
    /// Nothing for Redis's clock (the call's arguments end there), `clock:<µs>` else.
    fn arg(self) -> Option<String> {
        match self {
            Now::Redis => None,
            Now::Given(us) => Some(format!("clock:{us}")),
        }
    }
}

/// One ask for tokens.
#[derive(Clone, Copy, Debug)]
pub struct Acquire<'a> {
    /// The configured N.
    pub requests: u32,
    /// How far ahead of its grant an entry in flight is scored (µs): the request timeout
    /// plus the margin, the latest its request may reach Interakt.
    pub in_flight_us: u64,
    pub want: u32,
    /// This call's unique prefix: token `i` is the log member `{call}:{i}`.
    pub call: &'a str,
    pub lane: Lane,
    pub otp_reserve: u32,
    pub booking_share: u32,
    /// W (µs).
    pub period_us: u64,
    pub burst: u32,
    /// Tokens the effective budget grows back by per clean period.
    pub growth_step: u32,
    /// The asking replica (its claim when its OTP found the log full).
    pub member: &'a str,
    /// Tokens bookings leave free beyond what OTPs use.
    pub spare: u32,
    pub now: Now,
}

impl Acquire<'_> {
    pub fn call(&self, keys: &BudgetKeys) -> ScriptCall<'static> {
        let mut call = ScriptCall::new(
            &ACQUIRE,
            [
                &*keys.window,
                &keys.cooldown,
                &keys.state,
                &keys.bookings_waiting,
                &keys.otp_window,
                &keys.otp_first,
            ],
        );
        call.arg(self.requests)
            .arg(self.in_flight_us)
            .arg(self.want)
            .arg(self.call)
            .arg(self.lane.as_str())
            .arg(self.otp_reserve)
            .arg(self.booking_share)
            .arg(self.period_us)
            .arg(self.burst)
            .arg(self.growth_step)
            .arg(self.member)
            .arg(self.spare)
            .arg(self.now.arg());
        call
    }
}

/// What one ask for tokens got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Granted {
    /// Tokens granted (maybe none).
    pub tokens: u32,
    /// With none: how long until asking again can help (µs).
    pub wait_us: u64,
    /// The token granted is the cool-down's probe: its answer ends the pause, or keeps it.
    pub probe: bool,
    /// How many of the tokens (the last ones) are the OTP reserve's.
    pub reserved: u32,
}

/// `acquire.lua`'s answer.
pub fn decode_acquire(reply: &Value) -> Result<Granted, RedisError> {
    let (tokens, wait_us, probe, reserved) = <(u32, u64, u8, u32)>::from_redis_value(reply.clone())
        .map_err(|_| unexpected("acquire.lua", reply))?;
    Ok(Granted {
        tokens,
        wait_us,
        probe: probe == 1,
        reserved: reserved.min(tokens),
    })
}

/// One 429's cool-down.
#[derive(Clone, Copy, Debug)]
pub struct CoolDown<'a> {
    /// Retry-After (ms), clamped by the caller, or -1 when Interakt gave none.
    pub retry_after_ms: i64,
    pub base_ms: u64,
    pub max_ms: u64,
    pub period_us: u64,
    pub requests: u32,
    /// The next probe goes this long after the 429 (µs).
    pub probe_interval_us: u64,
    /// The probe's member when the 429 answered the cool-down's probe: it keeps the pause
    /// and begins no episode.
    pub probe: Option<&'a str>,
    pub now: Now,
}

impl CoolDown<'_> {
    pub fn call(&self, keys: &BudgetKeys) -> ScriptCall<'static> {
        let mut call = ScriptCall::new(&COOLDOWN, [&*keys.cooldown, &keys.state]);
        call.arg(self.retry_after_ms)
            .arg(self.base_ms)
            .arg(self.max_ms)
            .arg(self.period_us)
            .arg(self.requests)
            .arg(self.probe_interval_us)
            .arg(self.probe.unwrap_or(""))
            .arg(self.now.arg());
        call
    }
}

/// How the cool-down's probe was answered, other than 429 (a [`CoolDown`] with its member).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeAnswer {
    /// A 2xx: the key has room again; the pause ends for every replica.
    Room,
    /// Anything else (5xx, a timeout, another 4xx): nothing learnt; the next probe goes a
    /// probe interval from now.
    Unknown,
    /// No request went out under it (its job was stopped, its grant went stale): the next
    /// probe may go at once.
    Unsent,
}

/// The cool-down's probe answered (`probe.lua`).
#[derive(Clone, Copy, Debug)]
pub struct ProbeAnswered<'a> {
    pub member: &'a str,
    pub answer: ProbeAnswer,
    pub probe_interval_us: u64,
    pub now: Now,
}

impl ProbeAnswered<'_> {
    pub fn call(&self, keys: &BudgetKeys) -> ScriptCall<'static> {
        let mut call = ScriptCall::new(&PROBE, [&*keys.cooldown, &keys.state]);
        let answer = match self.answer {
            ProbeAnswer::Room => "ok",
            ProbeAnswer::Unknown => "failed",
            ProbeAnswer::Unsent => "unsent",
        };
        call.arg(self.member)
            .arg(answer)
            .arg(self.probe_interval_us)
            .arg(self.now.arg());
        call
    }
}

/// Whether the probe's answer ended the cool-down.
pub fn decode_probe(reply: &Value) -> Result<bool, RedisError> {
    let ended = u8::from_redis_value(reply.clone()).map_err(|_| unexpected("probe.lua", reply))?;
    Ok(ended == 1)
}

/// `(pause in force ms, effective budget, whether this 429 began an episode)`.
pub fn decode_cooldown(reply: &Value) -> Result<(u64, u32, bool), RedisError> {
    let (pause, effective, began) = <(u64, u32, u8)>::from_redis_value(reply.clone())
        .map_err(|_| unexpected("cooldown.lua", reply))?;
    Ok((pause, effective, began == 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The token is one argument, in the shape `token.lua` matches.
    #[test]
    fn a_charge_is_one_argument_with_the_window_and_its_logs() {
        let charge = |otp_log, reserve| Charge {
            member: "w1:00ff:7:1",
            otp_log,
            reserve,
            window_ms: 60_000,
        };
        for (otp_log, reserve, logs) in [
            (true, false, "otp"),
            (true, true, "rsv"),
            (false, false, "all"),
        ] {
            assert_eq!(
                charge(otp_log, reserve).to_redis_args(),
                vec![format!("charge:60000:{logs}:w1:00ff:7:1").into_bytes()]
            );
        }
    }
}
