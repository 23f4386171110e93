//! Webhook events: recorded once each (`record_events.lua`), a delivery milestone on a sent
//! job's record (`mark.lua`), a processed event moved to the stream it belongs in
//! (`append.lua`).

use crate::Keys;
use crate::keys::{EVENT_FIELD, WEBHOOK_DEDUP_TTL_SECS, WEBHOOK_GROUP};
use crate::record::Milestone;
use crate::script::ScriptCall;
use crate::scripts::{APPEND, MARK, RECORD_EVENTS};

/// One event to record: its de-duplication key and its JSON as received.
#[derive(Clone, Copy, Debug)]
pub struct NewEvent<'a> {
    pub dedup_key: &'a str,
    pub json: &'a str,
}

/// Records each event not seen before; the answer is one 1 (recorded) or 0 (seen) per event.
pub fn record_events(keys: &Keys, events: &[NewEvent]) -> ScriptCall<'static> {
    let markers: Vec<String> = events
        .iter()
        .map(|e| keys.webhook_seen(e.dedup_key))
        .collect();
    let events_key = keys.webhook_events();
    let mut call = ScriptCall::new(
        &RECORD_EVENTS,
        std::iter::once(events_key.as_str()).chain(markers.iter().map(String::as_str)),
    );
    call.arg(WEBHOOK_DEDUP_TTL_SECS).arg(EVENT_FIELD);
    for event in events {
        call.arg(event.json);
    }
    call
}

/// Stamps `milestone` at `at` (RFC 3339) on job `job_id`'s record, counted on `lane`, and
/// finishes event entry `entry_id`; answers 1 when the milestone is new.
pub fn mark(
    keys: &Keys,
    entry_id: &str,
    job_id: &str,
    lane: &str,
    milestone: Milestone,
    at: &str,
) -> ScriptCall<'static> {
    let mut call = ScriptCall::new(
        &MARK,
        [
            &*keys.webhook_events(),
            &keys.job_status(job_id),
            &keys.stats(),
        ],
    );
    call.arg(WEBHOOK_GROUP)
        .arg(entry_id)
        .arg(milestone.field())
        .arg(at)
        .arg(milestone.stat().field_for(lane));
    call
}

/// Moves event entry `entry_id` to `stream` as `fields` (capped at `max_len`, 0 for none),
/// and finishes it.
pub fn append(
    keys: &Keys,
    entry_id: &str,
    stream: &str,
    max_len: u64,
    fields: &[(&str, String)],
) -> ScriptCall<'static> {
    let mut call = ScriptCall::new(&APPEND, [&*keys.webhook_events(), stream]);
    call.arg(WEBHOOK_GROUP).arg(entry_id).arg(max_len);
    for (name, value) in fields {
        call.arg(*name).arg(value);
    }
    call
}
