//! Reading a lane, tenants served in turn (`read_turns.lua`), or straight off its own stream
//! while it has no other tenant ([`read_solo`]), and taking over what dead replicas left
//! pending, stream by stream (`claim_turns.lua`).

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

/// Reads up to `want` new entries of `lane`'s own stream (its default tenant's) without the
/// turns script, for a lane no other tenant has a stream on: plain commands in one round
/// trip, no Lua (the script's reply goes through Lua tables twice, and an empty lane's call
/// costs Redis about 17 µs). With the read: whether the lane lists other tenants' streams
/// (`EXISTS` of the set: Redis deletes an empty set; a command the README's ACL user already
/// has), and where an idle replica blocks from (the bell's and the stream's last ids).
/// [`SoloRead::decode`] reads the answer.
///
/// While the lane lists none this reads what [`read`] would: the one stream, `want` entries,
/// as `consumer` of the `workers` group. When it does, the caller reads with [`read`] from
/// then on; the entries read meanwhile are the default tenant's, pending to this consumer like
/// any other. A tenant whose first job lands between two reads waits one read more, as it
/// would behind a read already running. A missing group (`NOGROUP`) is answered as none:
/// [`read`] makes it again.
pub fn read_solo(keys: &Keys, lane: Lane, consumer: &str, want: usize) -> redis::Pipeline {
    let stream = keys.lane(lane);
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    pipe.cmd("EXISTS")
        .arg(keys.lane_streams(lane))
        .cmd("XREADGROUP")
        .arg("GROUP")
        .arg(WORKER_GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(want)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">");
    for key in [keys.lane_bell(lane), stream] {
        pipe.cmd("XREVRANGE")
            .arg(key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
    }
    pipe
}

/// What [`read_solo`] found: whether other tenants have streams on the lane, and the read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoloRead {
    pub shared: bool,
    pub read: Read,
}

impl SoloRead {
    /// The answer of [`read_solo`]; `None` when the lane's group is missing (Redis lost its
    /// data). Any other error reply is the call's error.
    pub fn decode(reply: &Value) -> Result<Option<SoloRead>, RedisError> {
        let bad = || unexpected("a lane's read", reply);
        let Value::Array(items) = reply else {
            return Err(bad());
        };
        let [shared, read, bell, last] = items.as_slice() else {
            return Err(bad());
        };
        if let Value::ServerError(err) = read
            && err.code() == "NOGROUP"
        {
            return Ok(None);
        }
        if let Some(Value::ServerError(err)) = items
            .iter()
            .find(|item| matches!(item, Value::ServerError(_)))
        {
            return Err(err.clone().into());
        }
        let shared = i64::from_redis_value(shared.clone()).map_err(|_| bad())? > 0;
        // Per stream read, its entries: an array of pairs (RESP2) or a map (RESP3); nil when
        // nothing was read.
        let streams: Vec<&Value> = match read {
            Value::Array(streams) => streams
                .iter()
                .map(|stream| match stream {
                    Value::Array(pair) if pair.len() == 2 => Ok(&pair[1]),
                    _ => Err(bad()),
                })
                .collect::<Result<_, _>>()?,
            Value::Map(pairs) => pairs.iter().map(|(_, entries)| entries).collect(),
            Value::Nil => Vec::new(),
            _ => return Err(bad()),
        };
        let mut entries = Vec::new();
        for read in streams {
            let Value::Array(read) = read else {
                return Err(bad());
            };
            for entry in read {
                let Value::Array(entry) = entry else {
                    return Err(bad());
                };
                let [id, fields] = entry.as_slice() else {
                    return Err(bad());
                };
                let (job, fields) = entry_fields("a lane's read", reply, fields)?;
                entries.push(Entry {
                    tenant: herald_shared::job::Tenant::DEFAULT.to_string(),
                    id: String::from_redis_value(id.clone()).map_err(|_| bad())?,
                    job,
                    fields,
                    deliveries: 1,
                });
            }
        }
        if !entries.is_empty() {
            return Ok(Some(SoloRead {
                shared,
                read: Read::Entries(entries),
            }));
        }
        // The last entry's id of a stream, or `0-0` for none (as `read_turns.lua` answers).
        let last_id = |range: &Value| -> Result<String, RedisError> {
            match range {
                Value::Array(entries) => match entries.first() {
                    Some(Value::Array(entry)) => entry
                        .first()
                        .map(|id| String::from_redis_value(id.clone()).map_err(|_| bad()))
                        .unwrap_or_else(|| Err(bad())),
                    Some(_) => Err(bad()),
                    None => Ok("0-0".to_string()),
                },
                _ => Err(bad()),
            }
        };
        Ok(Some(SoloRead {
            shared,
            read: Read::Nothing {
                bell: last_id(bell)?,
                lane: last_id(last)?,
            },
        }))
    }
}

/// What a read found: entries, or none and where to block from: the bell's last id, and the
/// lane's own stream's (which a producer of an earlier release adds to without ringing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    Entries(Vec<Entry>),
    Nothing { bell: String, lane: String },
}

/// An entry's job field (its bytes) and field names, read from the reply in place: the
/// job's bytes are copied once. `what` names the read in an error.
fn entry_fields(
    what: &str,
    reply: &Value,
    fields: &Value,
) -> Result<(Option<Vec<u8>>, Vec<String>), RedisError> {
    let owned;
    let flat: &[Value] = match fields {
        Value::Array(flat) => flat,
        other => {
            owned = Vec::<Value>::from_redis_value(other.clone())
                .map_err(|_| unexpected(what, reply))?;
            &owned
        }
    };
    let mut job = None;
    let mut names = Vec::new();
    for pair in flat.chunks(2) {
        let name =
            String::from_redis_value(pair[0].clone()).map_err(|_| unexpected(what, reply))?;
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
            let (job, fields) = entry_fields("read_turns.lua", reply, fields)?;
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
            let (job, fields) = entry_fields("claim_turns.lua", reply, fields)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    /// The plain read's answer as RESP2 gives it (streams as an array of pairs) and as RESP3
    /// does (a map), with the job field's bytes as they were written; nothing read, with a
    /// lane that has other tenants; a lost group; and any other error reply.
    #[test]
    fn a_plain_read_is_decoded_in_either_protocol_and_a_lost_group_is_none() {
        let entry = Value::Array(vec![
            bulk("1-0"),
            Value::Array(vec![bulk(JOB_FIELD), bulk("{\"id\":\"j\"}")]),
        ]);
        let last =
            |id: &str| Value::Array(vec![Value::Array(vec![bulk(id), Value::Array(vec![])])]);
        let resp2 = Value::Array(vec![
            Value::Int(0),
            Value::Array(vec![Value::Array(vec![
                bulk("lane"),
                Value::Array(vec![entry.clone()]),
            ])]),
            last("9-0"),
            last("1-0"),
        ]);
        let resp3 = Value::Array(vec![
            Value::Int(0),
            Value::Map(vec![(bulk("lane"), Value::Array(vec![entry]))]),
            last("9-0"),
            last("1-0"),
        ]);
        for reply in [resp2, resp3] {
            let read = SoloRead::decode(&reply).unwrap().unwrap();
            assert!(!read.shared);
            let Read::Entries(entries) = read.read else {
                panic!("{read:?}");
            };
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].tenant, "default");
            assert_eq!(entries[0].id, "1-0");
            assert_eq!(entries[0].job.as_deref(), Some(&b"{\"id\":\"j\"}"[..]));
            assert_eq!(entries[0].deliveries, 1);
        }

        let nothing = Value::Array(vec![
            Value::Int(1),
            Value::Nil,
            last("9-0"),
            Value::Array(vec![]),
        ]);
        assert_eq!(
            SoloRead::decode(&nothing).unwrap(),
            Some(SoloRead {
                shared: true,
                read: Read::Nothing {
                    bell: "9-0".into(),
                    lane: "0-0".into()
                }
            })
        );

        // An error reply as Redis writes it, parsed as the client does.
        let error = |code: &str| {
            redis::parse_redis_value(format!("-{code} refused\r\n").as_bytes()).unwrap()
        };
        let with_error = |code: &str| {
            Value::Array(vec![
                Value::Int(0),
                error(code),
                Value::Array(vec![]),
                Value::Array(vec![]),
            ])
        };
        assert_eq!(SoloRead::decode(&with_error("NOGROUP")).unwrap(), None);
        let refused = SoloRead::decode(&with_error("NOPERM")).unwrap_err();
        assert_eq!(refused.code(), Some("NOPERM"));
    }
}
