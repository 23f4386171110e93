//! When a job goes out and stops being worth sending, as a spec or the command line says it.

use std::time::Duration;

use herald_shared::job::Job;
use herald_shared::schedule::{self, Zone};
use herald_shared::validate::ValidationError;

/// When a job goes out and until when, as a spec (or the command line) gives it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timing<'a> {
    pub send_at: Option<&'a str>,
    pub send_in: Option<Duration>,
    pub not_after: Option<&'a str>,
    /// A reminder's lead time before its appointment.
    pub before: Option<Duration>,
}

impl Timing<'_> {
    /// `job`, scheduled and bounded as this says. Each error names its field: `send_at` and
    /// `send_in` together, an OTP asked to wait, an unreadable time, a time too far ahead.
    pub fn apply(self, job: Job, zone: &Zone) -> Result<Job, ValidationError> {
        let now = job.created_at;
        let send_at = self
            .send_at
            .map(|text| schedule::parse_instant("send_at", text))
            .transpose()?;
        let (field, due) = match self.before {
            Some(_) if send_at.is_some() || self.send_in.is_some() => {
                return Err(ValidationError::single(
                    "before",
                    "is given with send_at or send_in; give one of them",
                ));
            }
            Some(before) => {
                let due = job
                    .appointment(zone)
                    .and_then(|at| at.checked_sub(time::Duration::try_from(before).ok()?))
                    .ok_or_else(|| {
                        ValidationError::single(
                            "before",
                            "goes back before the year 1; is it right?",
                        )
                    })?;
                let due = schedule::due_time(Some(due), None, now).map_err(|err| {
                    // The schedule's reason reads "is <when>, ...": said of the reminder.
                    let reason = &err.violations[0].reason;
                    let reason = reason.strip_prefix("is ").unwrap_or(reason);
                    ValidationError::single("before", format!("puts the reminder at {reason}"))
                })?;
                ("before", due)
            }
            None => {
                let field = if send_at.is_some() {
                    "send_at"
                } else {
                    "send_in"
                };
                if job.kind() == herald_shared::JobKind::Otp
                    && (send_at.is_some() || self.send_in.is_some())
                {
                    return job.scheduled(field, Some(now));
                }
                (field, schedule::due_time(send_at, self.send_in, now)?)
            }
        };
        let not_after = self
            .not_after
            .map(|text| schedule::parse_instant("not_after", text))
            .transpose()?;
        job.with_not_after(not_after)?.scheduled(field, due)
    }
}
