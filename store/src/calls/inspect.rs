//! Where a job is, read atomically (`locate.lua`, which writes nothing), and whether that
//! agrees with its record: the lifecycle's promise that a job's state matches the key it
//! sits in (`docs/lifecycle.md`).

use herald_shared::Lane;
use redis::{FromRedisValue, RedisError, Value};

use super::{state_of, unexpected};
use crate::Keys;
use crate::keys::WORKER_GROUP;
use crate::lifecycle::State;
use crate::script::ScriptCall;
use crate::scripts::{BACKLOG, LANE_SNAPSHOT, LOCATE};

/// Reads where job `job_id` of `lane` and `tenant` is.
pub fn locate(keys: &Keys, lane: Lane, tenant: &str, job_id: &str) -> ScriptCall<'static> {
    let mut call = ScriptCall::new(
        &LOCATE,
        [
            &*keys.job_status(job_id),
            &keys.lane_of(lane, tenant),
            &keys.delayed(lane),
            &keys.scheduled(lane),
            &keys.dead(),
            &keys.sent(job_id),
        ],
    );
    call.arg(job_id);
    call
}

/// Which keys hold a job, and what its record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// `None`: no record (or a state this release does not know).
    pub state: Option<State>,
    /// Its record's entry is on its lane's stream.
    pub on_lane: bool,
    /// Its record's delayed member is in its lane's delayed set.
    pub delayed: bool,
    pub scheduled: bool,
    pub dead: bool,
    /// Its sent marker exists.
    pub sent: bool,
}

impl Location {
    pub fn decode(reply: &Value) -> Result<Location, RedisError> {
        let (state, on_lane, delayed, scheduled, dead, sent) =
            <(String, u8, u8, u8, u8, u8)>::from_redis_value(reply.clone())
                .map_err(|_| unexpected("locate.lua", reply))?;
        Ok(Location {
            state: state_of(&state),
            on_lane: on_lane == 1,
            delayed: delayed == 1,
            scheduled: scheduled == 1,
            dead: dead == 1,
            sent: sent == 1,
        })
    }

    /// Whether the record's state matches where the job is: the one place its state names,
    /// and no other; a sent marker exactly when it says `sent`. A sent job's entry may still
    /// be on its lane, pending with a replica that took it over while the send was under way
    /// (it finds the marker and drops it): `settled` says whether that is over.
    pub fn check(&self, settled: bool) -> Result<(), String> {
        let Some(state) = self.state else {
            return Ok(());
        };
        let home = match state {
            State::Scheduled => Some("scheduled"),
            State::Queued | State::Sending => Some("on its lane"),
            State::Retrying => Some("in the delayed set"),
            State::Dead | State::Expired => Some("a dead letter"),
            State::Sent | State::Cancelled | State::Superseded => None,
        };
        let found: Vec<&str> = [
            ("on its lane", self.on_lane),
            ("in the delayed set", self.delayed),
            ("scheduled", self.scheduled),
            ("a dead letter", self.dead),
        ]
        .into_iter()
        .filter_map(|(place, here)| here.then_some(place))
        .collect();
        let stray_copy = |place: &&str| state == State::Sent && !settled && *place == "on its lane";
        let elsewhere: Vec<&str> = found
            .iter()
            .filter(|place| Some(**place) != home && !stray_copy(place))
            .copied()
            .collect();
        let missing = home.filter(|home| !found.contains(home));
        if !elsewhere.is_empty() || missing.is_some() {
            return Err(format!(
                "its record says {state}, but it is {found:?} (expected {home:?})"
            ));
        }
        if self.sent != (state == State::Sent) {
            return Err(format!(
                "its record says {state}, but its sent marker {}",
                if self.sent { "exists" } else { "is missing" }
            ));
        }
        Ok(())
    }
}

/// Reads `lane`'s length, its workers' group's pending count and its lag at one instant.
pub fn lane_snapshot(keys: &Keys, lane: Lane) -> ScriptCall<'static> {
    let mut call = ScriptCall::new(&LANE_SNAPSHOT, [&*keys.lane(lane)]);
    call.arg(WORKER_GROUP);
    call
}

/// A lane at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaneSnapshot {
    pub length: u64,
    /// Read and not settled; `None` before the workers' group exists.
    pub pending: Option<u64>,
    /// Not read by any replica yet; `None` when Redis cannot tell.
    pub lag: Option<u64>,
}

impl LaneSnapshot {
    pub fn decode(reply: &Value) -> Result<LaneSnapshot, RedisError> {
        let (length, pending, lag) = <(i64, i64, i64)>::from_redis_value(reply.clone())
            .map_err(|_| unexpected("lane_snapshot.lua", reply))?;
        Ok(LaneSnapshot {
            length: u64::try_from(length).unwrap_or(0),
            pending: u64::try_from(pending).ok(),
            lag: u64::try_from(lag).ok(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(state: State) -> Location {
        Location {
            state: Some(state),
            on_lane: false,
            delayed: false,
            scheduled: false,
            dead: false,
            sent: false,
        }
    }

    #[test]
    fn a_state_must_match_its_one_place() {
        assert!(
            Location {
                on_lane: true,
                ..at(State::Queued)
            }
            .check(true)
            .is_ok()
        );
        assert!(at(State::Queued).check(true).is_err(), "queued but nowhere");
        assert!(
            Location {
                on_lane: true,
                delayed: true,
                ..at(State::Retrying)
            }
            .check(true)
            .is_err(),
            "in two places"
        );
        assert!(at(State::Cancelled).check(true).is_ok());
        assert!(
            Location {
                dead: true,
                ..at(State::Cancelled)
            }
            .check(true)
            .is_err()
        );
        let sent = Location {
            sent: true,
            ..at(State::Sent)
        };
        assert!(sent.check(true).is_ok());
        assert!(at(State::Sent).check(true).is_err(), "no marker");
        let stray = Location {
            on_lane: true,
            ..sent.clone()
        };
        assert!(
            stray.check(false).is_ok(),
            "a copy another replica will drop"
        );
        assert!(stray.check(true).is_err(), "not once everything settled");
        assert!(
            Location {
                state: None,
                ..stray
            }
            .check(true)
            .is_ok(),
            "no record"
        );
    }
}

/// Reads every lane's backlog, tenant by tenant, and the `top` tenants with the most ready.
pub fn backlog(keys: &Keys, top: usize) -> ScriptCall<'static> {
    let mut call = ScriptCall::new(&BACKLOG, [&*keys.stats()]);
    call.arg(keys.prefix()).arg(WORKER_GROUP).arg(top);
    for lane in Lane::ALL {
        call.arg(lane.as_str());
    }
    call
}

/// One lane's backlog over all its tenants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaneBacklog {
    pub lane: Option<Lane>,
    /// Not yet read by any replica.
    pub ready: u64,
    /// Read, not yet settled.
    pub pending: u64,
    /// Since the oldest ready job was added, ms (0: none ready).
    pub oldest_ready_ms: u64,
    /// Since the oldest job ready or pending was added, ms (0: none).
    pub oldest_ms: u64,
}

/// A tenant's ready jobs on one lane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantBacklog {
    pub tenant: String,
    pub lane: Lane,
    pub ready: u64,
    /// Since its oldest ready job was added, ms.
    pub oldest_ms: u64,
}

/// What `backlog.lua` read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    pub lanes: Vec<LaneBacklog>,
    /// Each consumer's pending entries, over every lane and tenant.
    pub in_hand: Vec<(String, u64)>,
    /// The tenants with the most ready, largest first.
    pub tenants: Vec<TenantBacklog>,
}

impl Backlog {
    pub fn decode(reply: &Value) -> Result<Backlog, RedisError> {
        let bad = || unexpected("backlog.lua", reply);
        let (lanes, consumers, tenants) =
            <(Vec<Value>, Vec<Value>, Vec<Value>)>::from_redis_value(reply.clone())
                .map_err(|_| bad())?;
        let text = |v: &Value| String::from_redis_value(v.clone()).map_err(|_| bad());
        let number = |v: &Value| u64::from_redis_value(v.clone()).map_err(|_| bad());
        let lane = |v: &Value| text(v)?.parse::<Lane>().map_err(|_| bad());
        let lanes = lanes
            .chunks(5)
            .map(|l| match l {
                [name, ready, pending, oldest_ready, oldest] => Ok(LaneBacklog {
                    lane: Some(lane(name)?),
                    ready: number(ready)?,
                    pending: number(pending)?,
                    oldest_ready_ms: number(oldest_ready)?,
                    oldest_ms: number(oldest)?,
                }),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()?;
        let in_hand = consumers
            .chunks(2)
            .map(|c| match c {
                [name, count] => Ok((text(name)?, number(count)?)),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()?;
        let tenants = tenants
            .chunks(4)
            .map(|t| match t {
                [tenant, name, ready, oldest] => Ok(TenantBacklog {
                    tenant: text(tenant)?,
                    lane: lane(name)?,
                    ready: number(ready)?,
                    oldest_ms: number(oldest)?,
                }),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()?;
        Ok(Backlog {
            lanes,
            in_hand,
            tenants,
        })
    }

    /// `lane`'s backlog (zeros when the reply did not have it).
    pub fn lane(&self, lane: Lane) -> LaneBacklog {
        self.lanes
            .iter()
            .find(|l| l.lane == Some(lane))
            .cloned()
            .unwrap_or_default()
    }
}
