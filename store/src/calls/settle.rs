//! The send path's scripts: the last check before a send (`begin_send.lua`), and every way a
//! delivery leaves its lane: sent (`complete.lua`), parked for a retry (`retry.lua`),
//! dead-lettered (`dead.lua`), handed back (`hand_back.lua`), deferred behind an older job of
//! its replace key (`defer.lua`), dropped (`drop_duplicate.lua`); and the keep-alive of a
//! replica's holds (`touch.lua`). Each script checks inside itself that the replica still
//! owns the entry, and the lifecycle's table, before it writes.
//!
//! [`SettleKeys`] is made once per replica: the key names every settle uses, so the send
//! path builds only the few that name the job.

use std::time::Duration;

use herald_shared::{Job, JobKind, Lane};
use redis::{FromRedisValue, RedisError, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use super::budget::Charge;
use super::{code_and_text, state_of, unexpected};
use crate::Keys;
use crate::dead_letter::DeadLetter;
use crate::keys::{JOB_FIELD, SENT_MARKER_TTL_SECS, Stat, TIMELINE_TTL_SECS, WORKER_GROUP};
use crate::lifecycle::State;
use crate::message_index;
use crate::record::{self, Fields, format_time};
use crate::script::ScriptCall;
use crate::scripts::{BEGIN_SEND, COMPLETE, DEAD, DEFER, DROP_DUPLICATE, HAND_BACK, RETRY, TOUCH};

/// One delivery as the scripts see it: which entry of which stream (its lane's, its
/// tenant's), read by which consumer, and the budget token its send goes out under (its
/// entries in the logs), if any.
#[derive(Clone, Copy, Debug)]
pub struct At<'a> {
    pub lane: Lane,
    pub tenant: &'a str,
    /// The stream the entry is on: `Keys::lane_of(lane, tenant)`.
    pub stream: &'a str,
    pub entry_id: &'a str,
    pub consumer: &'a str,
    pub token: Option<Charge<'a>>,
}

/// One job's last check before its send ([`SettleKeys::begin_sends`]): which delivery, the
/// job's id and its deadline.
#[derive(Clone, Copy, Debug)]
pub struct Check<'a> {
    pub at: At<'a>,
    pub job_id: &'a str,
    pub not_after: Option<OffsetDateTime>,
}

/// A send Interakt accepted, to record ([`SettleKeys::completes`]): which delivery, its
/// job's id, Interakt's message id (or [`crate::record::UNKNOWN_MESSAGE_ID`]) and what to
/// write.
#[derive(Clone, Copy, Debug)]
pub struct Sent<'a> {
    pub at: At<'a>,
    pub job_id: &'a str,
    pub message_id: &'a str,
    pub fields: &'a SentFields,
}

/// How much of a job's record the settle of its send writes, as the last check before the
/// send found it ([`BeginSend::Send`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordWrite {
    /// The record was there (and now says `sending`): only what the send changed
    /// ([`record::sent_update_fields`]), half the arguments and a smaller write.
    Update,
    /// There was none (a job of a release before records, or one whose record expired
    /// while it waited): the whole record ([`record::sent_fields`]).
    Whole,
}

/// What recording a send writes: the job's record ([`RecordWrite`]) and its message index
/// entry ([`message_index::entry`]). Made by the task that sent it, so a call for several
/// sends needs none of their jobs.
#[derive(Clone, Debug)]
pub struct SentFields {
    record: Fields,
    /// The message index entry; empty when there is none to write.
    index: String,
    /// Whether the job has an idempotency key: only then can its record name a claim.
    keyed: bool,
}

impl SentFields {
    /// The fields of `job`, sent as `message_id`, answered at `now`, its record written as
    /// `write` says.
    pub fn new(job: &Job, message_id: &str, now: OffsetDateTime, write: RecordWrite) -> SentFields {
        SentFields {
            record: match write {
                RecordWrite::Update => record::sent_update_fields(job, message_id, now),
                RecordWrite::Whole => record::sent_fields(job, message_id, now),
            },
            index: message_index::entry(job, message_id).unwrap_or_default(),
            keyed: job.idempotency_key.is_some(),
        }
    }
}

/// The key names every settle uses, made once per replica (the send path builds only the
/// job's own). Cheap to clone.
#[derive(Clone, Debug)]
pub struct SettleKeys {
    keys: Keys,
    lanes: Vec<(Lane, String)>,
    stats: String,
    /// The shared log and the OTPs' log, which a send's token is charged to or refunded from.
    window: String,
    window_otp: String,
    /// The budget's state, whose pacing a refunded token gives back (`begin_send.lua`).
    budget_state: String,
    record_prefix: String,
}

impl SettleKeys {
    pub fn new(keys: &Keys) -> SettleKeys {
        SettleKeys {
            keys: keys.clone(),
            lanes: Lane::ALL.iter().map(|&l| (l, keys.lane(l))).collect(),
            stats: keys.stats(),
            window: keys.rate_window(),
            window_otp: keys.rate_window_otp(),
            budget_state: keys.rate_state(),
            record_prefix: keys.job_status_prefix(),
        }
    }

    /// The key layout.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A lane's stream.
    pub fn lane(&self, lane: Lane) -> &str {
        self.lanes
            .iter()
            .find(|(l, _)| *l == lane)
            .map(|(_, key)| key.as_str())
            .expect("every lane has a stream")
    }

    /// A call of a script that runs around a send (`token.lua`), in the order it reads it:
    /// `keys`, then the two logs when the delivery holds a token; the script's own arguments
    /// (`args`), then the token, always last ([`Charge`]), or empty without one.
    fn with_token(
        &self,
        script: &'static redis::Script,
        keys: &[&str],
        at: &At,
        args: impl FnOnce(&mut ScriptCall),
    ) -> ScriptCall<'static> {
        let logs = [self.window.as_str(), self.window_otp.as_str()];
        let logs = if at.token.is_some() { &logs[..] } else { &[] };
        let mut call = ScriptCall::new(script, keys.iter().chain(logs).copied());
        args(&mut call);
        token_arg(&mut call, at.token);
        call
    }

    /// The last check before `job` is sent (`begin_send.lua`); gives the token back when the
    /// answer is not [`BeginSend::Send`].
    pub fn begin_send(&self, at: &At, job: &Job) -> ScriptCall<'static> {
        let job_id = job.id.to_string();
        self.begin_sends(&[Check {
            at: *at,
            job_id: &job_id,
            not_after: job.not_after,
        }])
    }

    /// The last checks before several sends, each as if alone, in one call
    /// (`begin_send.lua`); [`BeginSend::decode_all`] reads the answers, in the same order.
    /// Every check is of the same consumer.
    pub fn begin_sends(&self, checks: &[Check]) -> ScriptCall<'static> {
        let per_job: Vec<[String; 2]> = checks
            .iter()
            .map(|check| {
                [
                    self.keys.job_status(check.job_id),
                    self.keys.sent(check.job_id),
                ]
            })
            .collect();
        let keys = self
            .common_keys()
            .into_iter()
            .chain([self.budget_state.as_str()])
            .chain(
                checks
                    .iter()
                    .zip(&per_job)
                    .flat_map(|(check, [record, marker])| {
                        [check.at.stream, record.as_str(), marker.as_str()]
                    }),
            );
        let mut call = ScriptCall::new(&BEGIN_SEND, keys);
        let consumer = checks.first().map_or("", |check| check.at.consumer);
        call.arg(WORKER_GROUP)
            .arg(consumer)
            .arg(TIMELINE_TTL_SECS)
            .arg(&self.record_prefix)
            .arg(checks.len());
        for check in checks {
            let deadline = check.not_after.map_or(String::new(), |at| {
                herald_shared::schedule::unix_ms(at).to_string()
            });
            call.arg(check.at.entry_id)
                .arg(check.job_id)
                .arg(deadline)
                .arg(check.at.lane.as_str());
            token_arg(&mut call, check.at.token);
        }
        call
    }

    /// The keys in front of every call made for several deliveries: the stats hash, then the
    /// two logs of the budget's tokens.
    fn common_keys(&self) -> [&str; 3] {
        [&self.stats, &self.window, &self.window_otp]
    }

    /// Records `job` as sent as Interakt's `message_id` at `now` (`complete.lua`), its record
    /// written as `write` says, and charges its token.
    pub fn complete(
        &self,
        at: &At,
        job: &Job,
        message_id: &str,
        now: OffsetDateTime,
        write: RecordWrite,
    ) -> ScriptCall<'static> {
        let job_id = job.id.to_string();
        self.completes(&[Sent {
            at: *at,
            job_id: &job_id,
            message_id,
            fields: &SentFields::new(job, message_id, now, write),
        }])
    }

    /// Records several sends in one call (`complete.lua`), each as if alone, and charges
    /// their tokens; [`Completed::decode_all`] reads the answers, in the same order. Every
    /// send is of the same consumer.
    pub fn completes(&self, sends: &[Sent]) -> ScriptCall<'static> {
        let per_job: Vec<[String; 3]> = sends
            .iter()
            .map(|sent| {
                [
                    self.keys.sent(sent.job_id),
                    self.keys.job_status(sent.job_id),
                    self.keys.message(sent.message_id),
                ]
            })
            .collect();
        let keys = self
            .common_keys()
            .into_iter()
            .chain(
                sends
                    .iter()
                    .zip(&per_job)
                    .flat_map(|(sent, [marker, record, index])| {
                        [
                            sent.at.stream,
                            marker.as_str(),
                            record.as_str(),
                            index.as_str(),
                        ]
                    }),
            );
        let mut call = ScriptCall::new(&COMPLETE, keys);
        let consumer = sends.first().map_or("", |sent| sent.at.consumer);
        call.arg(WORKER_GROUP)
            .arg(consumer)
            .arg(SENT_MARKER_TTL_SECS)
            .arg(sends.len());
        for sent in sends {
            call.arg(sent.at.entry_id)
                .arg(sent.job_id)
                .arg(sent.message_id)
                .arg(Stat::Sent.field(sent.at.lane));
            token_arg(&mut call, sent.at.token);
            call.arg(if sent.fields.keyed { "1" } else { "" })
                .arg(&sent.fields.record)
                .arg(&sent.fields.index);
        }
        call
    }

    /// Parks `job` for a retry in `delay` (`retry.lua`), counted as `stat`
    /// ([`Stat::Retried`] or [`Stat::RateLimited`]), and charges its token.
    pub fn retry(&self, at: &At, job: &Job, delay: Duration, stat: Stat) -> ScriptCall<'static> {
        let due = due_after(delay);
        let job_id = job.id.to_string();
        let keys = [
            at.stream,
            &self.keys.delayed(at.lane),
            &self.stats,
            &self.keys.job_status(&job_id),
        ];
        self.with_token(&RETRY, &keys, at, |call| {
            call.arg(WORKER_GROUP)
                .arg(at.entry_id)
                .arg(at.consumer)
                .arg(&job_id)
                .arg(millis(delay))
                .arg(job.to_json())
                .arg(stat.field(at.lane))
                .arg(TIMELINE_TTL_SECS)
                .arg(at.lane.as_str())
                .arg(record::retry_fields(job, due));
        })
    }

    /// Dead-letters `letter` (`dead.lua`) and charges the token of its last send, if any.
    pub fn dead(&self, at: &At, letter: &DeadLetter) -> ScriptCall<'static> {
        let json = serde_json::to_string(letter).expect("a dead letter serializes");
        let keys = [
            at.stream,
            &self.keys.dead(),
            &self.keys.dead_index(at.lane),
            &self.stats,
            &self.keys.job_status(&letter.job_id),
            &self.keys.dead_codes(),
        ];
        self.with_token(&DEAD, &keys, at, |call| {
            call.arg(WORKER_GROUP)
                .arg(at.entry_id)
                .arg(at.consumer)
                .arg(&letter.job_id)
                .arg(json)
                .arg(Stat::Dead.field(at.lane))
                .arg(TIMELINE_TTL_SECS)
                .arg(code_kept_until(letter))
                .arg(record::dead_state(letter).as_str())
                .arg(at.lane.as_str())
                .arg(record::dead_fields(letter));
        })
    }

    /// Puts `job`, read but not sent, back onto its lane (`hand_back.lua`).
    pub fn hand_back(&self, at: &At, job: &Job) -> ScriptCall<'static> {
        let job_id = job.id.to_string();
        let mut call = ScriptCall::new(
            &HAND_BACK,
            [at.stream, &self.keys.job_status(&job_id), &self.stats],
        );
        call.arg(WORKER_GROUP)
            .arg(at.entry_id)
            .arg(at.consumer)
            .arg(&job_id)
            .arg(job.to_json())
            .arg(JOB_FIELD)
            .arg(TIMELINE_TTL_SECS)
            .arg(at.lane.as_str())
            .arg(self.keys.prefix())
            .arg(at.tenant);
        call
    }

    /// Parks `job` for `delay` behind an older job of its replace key still being sent
    /// (`defer.lua`).
    pub fn defer(&self, at: &At, job: &Job, delay: Duration) -> ScriptCall<'static> {
        let job_id = job.id.to_string();
        let mut call = ScriptCall::new(
            &DEFER,
            [
                at.stream,
                &self.keys.delayed(at.lane),
                &self.keys.job_status(&job_id),
            ],
        );
        call.arg(WORKER_GROUP)
            .arg(at.entry_id)
            .arg(at.consumer)
            .arg(&job_id)
            .arg(millis(delay))
            .arg(job.to_json())
            .arg(TIMELINE_TTL_SECS)
            .arg(format_time(due_after(delay)));
        call
    }

    /// Acknowledges a copy that must not be sent from here (`drop_duplicate.lua`).
    pub fn drop_duplicate(&self, at: &At) -> ScriptCall<'static> {
        let mut call = ScriptCall::new(&DROP_DUPLICATE, [at.stream]);
        call.arg(WORKER_GROUP).arg(at.entry_id).arg(at.consumer);
        call
    }

    /// Keeps `consumer`'s holds on `entry_ids` of `stream` alive (`touch.lua`).
    pub fn touch(&self, stream: &str, consumer: &str, entry_ids: &[String]) -> ScriptCall<'static> {
        let mut call = ScriptCall::new(&TOUCH, [stream]);
        call.arg(WORKER_GROUP).arg(consumer);
        for id in entry_ids {
            call.arg(id);
        }
        call
    }
}

fn millis(delay: Duration) -> u64 {
    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
}

/// When a wait of `delay` from now ends, as the record shows it (far future when it
/// overflows).
fn due_after(delay: Duration) -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    time::Duration::try_from(delay)
        .ok()
        .and_then(|delay| now.checked_add(delay))
        .unwrap_or(now)
}

/// The deadline (ms, Unix) of an OTP whose letter still keeps its code, or `""`.
fn code_kept_until(letter: &DeadLetter) -> String {
    letter
        .job
        .as_ref()
        .filter(|job| job.kind() == JobKind::Otp && !job.code_erased())
        .and_then(|job| job.not_after)
        .map(|deadline| (deadline.unix_timestamp_nanos() / 1_000_000).to_string())
        .unwrap_or_default()
}

/// What the last check before a send found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BeginSend {
    /// The record says `sending` now, or there is no record: send it. How much of the
    /// record its settle writes.
    Send(RecordWrite),
    /// Already sent (an earlier delivery): Interakt's message id. Its entry is finished.
    AlreadySent(String),
    /// Not to be sent, and its entry is finished: `cancelled` or `superseded` (a stop noted
    /// while an earlier attempt was under way), or a stray copy of a job whose record says it
    /// is sent, dead or stopped (`None`: a name this release does not know).
    Stopped(Option<State>),
    /// Another replica holds the entry now (it took it over while this one waited): nothing
    /// changed. What its record says.
    TakenOver(Option<State>),
    /// Past its deadline: to be dead-lettered as expired. Nothing changed.
    Expired,
    /// Nobody holds the entry any more: cancelled or superseded while it waited here,
    /// settled by another replica, or lost with Redis's data. Nothing changed. What its
    /// record says (`None`: no record).
    Gone(Option<State>),
    /// An older job of its replace key is still being sent: this one must wait for it
    /// ([`SettleKeys::defer`]). Nothing changed.
    WaitsFor(Uuid),
}

impl BeginSend {
    /// The answer of a call for one job ([`SettleKeys::begin_send`]).
    pub fn decode(reply: &Value) -> Result<BeginSend, RedisError> {
        let mut all = BeginSend::decode_all(reply, 1)?;
        Ok(all.remove(0))
    }

    /// The answers of a call for `count` jobs ([`SettleKeys::begin_sends`]), in order.
    pub fn decode_all(reply: &Value, count: usize) -> Result<Vec<BeginSend>, RedisError> {
        let flat = <Vec<Value>>::from_redis_value(reply.clone())
            .map_err(|_| unexpected("begin_send.lua", reply))?;
        if flat.len() != 2 * count {
            return Err(unexpected("begin_send.lua", reply));
        }
        flat.chunks(2)
            .map(|pair| {
                let code = i64::from_redis_value(pair[0].clone());
                let text = String::from_redis_value(pair[1].clone());
                match (code, text) {
                    (Ok(code), Ok(text)) => BeginSend::from_code(code, text, reply),
                    _ => Err(unexpected("begin_send.lua", reply)),
                }
            })
            .collect()
    }

    fn from_code(code: i64, text: String, reply: &Value) -> Result<BeginSend, RedisError> {
        Ok(match code {
            0 => BeginSend::Send(match text.as_str() {
                "" => RecordWrite::Whole,
                "sending" => RecordWrite::Update,
                _ => return Err(unexpected("begin_send.lua", reply)),
            }),
            1 => BeginSend::AlreadySent(text),
            2 => BeginSend::Stopped(state_of(&text)),
            3 => BeginSend::TakenOver(state_of(&text)),
            4 => BeginSend::Expired,
            5 => BeginSend::Gone(state_of(&text)),
            6 => BeginSend::WaitsFor(
                text.parse()
                    .map_err(|_| unexpected("begin_send.lua", reply))?,
            ),
            _ => return Err(unexpected("begin_send.lua", reply)),
        })
    }
}

/// What a send's record came to (`complete.lua`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completed {
    /// This replica still owned the entry and acknowledged it; else the new holder will find
    /// the marker.
    pub acknowledged: bool,
    /// This settle recorded (and counted) the send; false when it was recorded before (the
    /// settle ran again, or another replica sent it too).
    pub recorded: bool,
}

impl Completed {
    /// The answer of a call for one send ([`SettleKeys::complete`]).
    pub fn decode(reply: &Value) -> Result<Completed, RedisError> {
        let mut all = Completed::decode_all(reply, 1)?;
        Ok(all.remove(0))
    }

    /// The answers of a call for `count` sends ([`SettleKeys::completes`]), in order.
    pub fn decode_all(reply: &Value, count: usize) -> Result<Vec<Completed>, RedisError> {
        let flat = <Vec<i64>>::from_redis_value(reply.clone())
            .map_err(|_| unexpected("complete.lua", reply))?;
        if flat.len() != 2 * count {
            return Err(unexpected("complete.lua", reply));
        }
        Ok(flat
            .chunks(2)
            .map(|pair| Completed {
                acknowledged: pair[0] == 1,
                recorded: pair[1] == 1,
            })
            .collect())
    }
}

/// What a settle that moves a delivery did (retry, dead letter, hand back, defer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    Done,
    /// Another replica owns the entry now (it took it over while this one was paused):
    /// nothing was changed. The owner settles it.
    NotOurs,
    /// A stop noted while the job was sending took effect instead: it ended `cancelled` or
    /// `superseded`, never retried, dead-lettered or handed back. Entry finished.
    Stopped(Option<State>),
    /// The lifecycle does not allow the step from what the record says (sent, stopped, dead
    /// already): nothing of the job changed; the stray entry was finished.
    Refused(Option<State>),
}

impl Settled {
    pub fn decode(script: &str, reply: &Value) -> Result<Settled, RedisError> {
        let (code, text) = code_and_text(script, reply)?;
        Ok(match code {
            1 => Settled::Done,
            0 => Settled::NotOurs,
            2 => Settled::Stopped(state_of(&text)),
            3 => Settled::Refused(state_of(&text)),
            _ => return Err(unexpected(script, reply)),
        })
    }
}

/// Why a held entry is no longer this replica's ([`SettleKeys::touch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    /// Another replica holds it now (it took it over while this one was paused).
    Taken,
    /// Nobody does: cancelled, settled, or lost with Redis's data.
    Gone,
}

/// The held ids `touch.lua` found lost, each with why.
pub fn decode_touch(reply: &Value) -> Result<Vec<(String, Lost)>, RedisError> {
    let flat = Vec::<String>::from_redis_value(reply.clone())
        .map_err(|_| unexpected("touch.lua", reply))?;
    flat.chunks(2)
        .map(|pair| match pair {
            [id, why] if why == "taken" => Ok((id.clone(), Lost::Taken)),
            [id, why] if why == "gone" => Ok((id.clone(), Lost::Gone)),
            _ => Err(unexpected("touch.lua", reply)),
        })
        .collect()
}

/// A delivery's token as the scripts around a send read it (`token.lua`): the [`Charge`], or
/// empty without one.
fn token_arg(call: &mut ScriptCall, token: Option<Charge>) {
    match token {
        Some(charge) => call.arg(charge),
        None => call.arg(""),
    };
}
