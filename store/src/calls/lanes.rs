//! Reading a lane, tenants served in turn (`read_turns.lua`), and taking over what dead
//! replicas left pending, stream by stream (`claim_turns.lua`).

use herald_shared::Lane;
use redis::{FromRedisValue, RedisError, Value};

use super::unexpected;
use crate::Keys;
use crate::keys::{JOB_FIELD, WORKER_GROUP};
use crate::script::ScriptCall;
use crate::scripts::{CLAIM_TURNS, READ_TURNS};

/// One entry read or claimed: the tenant whose stream it is on, its id, its job field (raw
/// bytes: `None` when the entry has no such field), how many times the group delivered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub tenant: String,
    pub id: String,
    pub job: Option<Vec<u8>>,
    /// The entry's field names, for a dead letter of an entry that is not a job.
    pub fields: Vec<String>,
    pub deliveries: u64,
}

/// Reads up to `want` new entries of `lane` as `consumer`, tenants in turn; `weights` are
/// the tenants that do not weigh 1.
pub fn read(
    keys: &Keys,
    lane: Lane,
    consumer: &str,
    want: usize,
    weights: &[(String, u32)],
) -> ScriptCall<'static> {
    let mut call = ScriptCall::new(&READ_TURNS, [&*keys.lane_turns(lane)]);
    call.arg(keys.prefix())
        .arg(lane.as_str())
        .arg(WORKER_GROUP)
        .arg(consumer)
        .arg(want);
    for (tenant, weight) in weights {
        call.arg(tenant).arg(weight);
    }
    call
}

/// What a read found: entries, or none and where to block from: the bell's last id, and the
/// lane's own stream's (which a producer of an earlier release adds to without ringing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    Entries(Vec<Entry>),
    Nothing { bell: String, lane: String },
}

fn entry_fields(
    reply: &Value,
    fields: &Value,
) -> Result<(Option<Vec<u8>>, Vec<String>), RedisError> {
    let flat = Vec::<Value>::from_redis_value(fields.clone())
        .map_err(|_| unexpected("read_turns.lua", reply))?;
    let mut job = None;
    let mut names = Vec::new();
    for pair in flat.chunks(2) {
        let name = String::from_redis_value(pair[0].clone())
            .map_err(|_| unexpected("read_turns.lua", reply))?;
        if name == JOB_FIELD
            && let Some(Value::BulkString(bytes)) = pair.get(1)
        {
            job = Some(bytes.clone());
        }
        names.push(name);
    }
    Ok((job, names))
}

impl Read {
    pub fn decode(reply: &Value) -> Result<Read, RedisError> {
        let items = Vec::<Value>::from_redis_value(reply.clone())
            .map_err(|_| unexpected("read_turns.lua", reply))?;
        if let [first, bell, lane] = items.as_slice()
            && String::from_redis_value(first.clone()).is_ok_and(|t| t.is_empty())
        {
            let id = |v: &Value| {
                String::from_redis_value(v.clone()).map_err(|_| unexpected("read_turns.lua", reply))
            };
            return Ok(Read::Nothing {
                bell: id(bell)?,
                lane: id(lane)?,
            });
        }
        let mut out = Vec::with_capacity(items.len() / 3);
        for triple in items.chunks(3) {
            let [tenant, id, fields] = triple else {
                return Err(unexpected("read_turns.lua", reply));
            };
            let (job, fields) = entry_fields(reply, fields)?;
            out.push(Entry {
                tenant: String::from_redis_value(tenant.clone())
                    .map_err(|_| unexpected("read_turns.lua", reply))?,
                id: String::from_redis_value(id.clone())
                    .map_err(|_| unexpected("read_turns.lua", reply))?,
                job,
                fields,
                deliveries: 1,
            });
        }
        Ok(Read::Entries(out))
    }
}

/// Takes over up to `count` entries of `lane` idle for `min_idle_ms`, from `cursor` ("0"
/// to start) over its tenants' streams.
pub fn claim(
    keys: &Keys,
    lane: Lane,
    consumer: &str,
    min_idle_ms: u64,
    count: usize,
    cursor: &str,
) -> ScriptCall<'static> {
    let mut call = ScriptCall::new(&CLAIM_TURNS, [&*keys.lane_streams(lane)]);
    call.arg(keys.prefix())
        .arg(lane.as_str())
        .arg(WORKER_GROUP)
        .arg(consumer)
        .arg(min_idle_ms)
        .arg(count)
        .arg(cursor);
    call
}

/// What a claim took over, and the cursor to go on from ("0": every stream visited).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    pub cursor: String,
    pub entries: Vec<Entry>,
}

impl Claimed {
    pub fn decode(reply: &Value) -> Result<Claimed, RedisError> {
        let bad = || unexpected("claim_turns.lua", reply);
        let items = Vec::<Value>::from_redis_value(reply.clone()).map_err(|_| bad())?;
        let (cursor, rest) = items.split_first().ok_or_else(bad)?;
        let cursor = String::from_redis_value(cursor.clone()).map_err(|_| bad())?;
        let mut entries = Vec::with_capacity(rest.len() / 4);
        for quad in rest.chunks(4) {
            let [tenant, id, fields, deliveries] = quad else {
                return Err(bad());
            };
            let (job, fields) = entry_fields(reply, fields)?;
            entries.push(Entry {
                tenant: String::from_redis_value(tenant.clone()).map_err(|_| bad())?,
                id: String::from_redis_value(id.clone()).map_err(|_| bad())?,
                job,
                fields,
                deliveries: u64::from_redis_value(deliveries.clone()).map_err(|_| bad())?,
            });
        }
        Ok(Claimed { cursor, entries })
    }
}
