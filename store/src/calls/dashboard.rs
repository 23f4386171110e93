//! The dashboard's sessions: one checked and marked used in one step
//! (`touch_session.lua`), so a logout between the check and the mark cannot be undone.

use crate::Keys;
use crate::script::ScriptCall;
use crate::scripts::TOUCH_SESSION;

/// Checks session `id` at `now_s` (Unix seconds, the dashboard's clock) and marks it used:
/// over when unused for `idle_s` or begun `max_age_s` ago. Answers the record's token
/// fingerprint while the session lives, nil once it is over (its record deleted).
pub fn touch_session(
    keys: &Keys,
    id: &str,
    now_s: u64,
    idle_s: u64,
    max_age_s: u64,
) -> ScriptCall<'static> {
    let mut call = ScriptCall::new(&TOUCH_SESSION, [&*keys.dashboard_session(id)]);
    call.arg(now_s).arg(idle_s).arg(max_age_s);
    call
}
