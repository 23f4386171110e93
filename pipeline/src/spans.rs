//! The spans of one send (docs/tracing.md): `process <lane>` (CONSUMER), linked to the
//! `create <lane>` span whose context the job carries, and its child, the HTTP call to
//! Interakt (CLIENT, `POST`). A retry the verdict schedules is an event of the `process`
//! span (the next attempt is a `process` span of its own); a dead letter marks it failed.
//!
//! With tracing off every function here is a branch and returns: no span is built, no
//! attribute formatted. Spans carry the job's id, lane, tenant and kind, the HTTP status
//! and what became of the attempt; never the phone number, the code, the API key or a body.

use herald_shared::Job;
use herald_shared::Lane;
use herald_shared::traces::{Attribute, JobSpan, Operation, TraceContext, attr};
use herald_store::keys::WORKER_GROUP;
use hyper::Uri;

use crate::retry::{SendOutcome, Verdict};

/// `process <lane>` for `job`, linked to the context it was created in.
pub fn process(lane: Lane, job: &Job) -> JobSpan {
    if herald_shared::traces::tracer().is_none() {
        return JobSpan::none();
    }
    let created = TraceContext::of_job(job);
    let span = JobSpan::consume(Operation::Process, lane, created.as_ref());
    span.set(|| {
        vec![
            Attribute::new(attr::MESSAGE_ID, job.id.to_string()),
            Attribute::new(attr::CONSUMER_GROUP, WORKER_GROUP),
            Attribute::new(attr::KIND, job.kind().as_str()),
            Attribute::new(attr::TENANT, job.tenant().to_string()),
        ]
    });
    span
}

/// The HTTP call to Interakt at `url`, a child of `process`; `resends` is how many
/// attempts this job made before this one (since its last replay).
pub fn request(process: &JobSpan, url: &Uri, resends: usize) -> JobSpan {
    let span = process.client("POST");
    span.set(|| {
        let mut attributes = vec![
            Attribute::new(attr::HTTP_METHOD, "POST"),
            Attribute::new(attr::SERVER_ADDRESS, url.host().unwrap_or("").to_string()),
        ];
        if let Some(port) = url.port_u16() {
            attributes.push(Attribute::new(attr::SERVER_PORT, i64::from(port)));
        }
        if resends > 0 {
            attributes.push(Attribute::new(attr::HTTP_RESEND, resends as i64));
        }
        attributes
    });
    span
}

/// What Interakt answered, on the HTTP call's span (which then ends).
pub fn answered(request: JobSpan, outcome: &SendOutcome) {
    request.set(|| {
        let mut attributes = vec![Attribute::new(attr::OUTCOME, outcome.label())];
        if let Some(status) = outcome.status() {
            attributes.push(Attribute::new(attr::HTTP_STATUS, i64::from(status)));
        }
        attributes
    });
    if !matches!(outcome, SendOutcome::Sent { .. }) {
        request.fail(outcome.label());
    }
}

/// What the attempt came to, on the `process` span: sent, a retry (an event, with its
/// delay), or a dead letter (failed).
pub fn decided(process: &JobSpan, outcome: &SendOutcome, verdict: &Verdict) {
    process.set(|| vec![Attribute::new(attr::OUTCOME, outcome.label())]);
    match verdict {
        Verdict::Done { .. } => {}
        Verdict::RetryAfter { delay } => process.event("retry", || {
            vec![
                Attribute::new(attr::OUTCOME, outcome.label()),
                Attribute::new(
                    "herald.retry.delay_ms",
                    i64::try_from(delay.as_millis()).unwrap_or(i64::MAX),
                ),
            ]
        }),
        Verdict::Dead { reason } => process.fail(reason.kind().as_str()),
    }
}
