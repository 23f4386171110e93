//! A W3C trace context (`traceparent`, and `tracestate` when there is one): read from an
//! HTTP header, an environment variable or a job, and written back the same way.
//!
//! Reading is lenient by design, as the W3C recommendation asks: a value that does not
//! parse is ignored (the work goes on in a new trace), never an error, so a malformed
//! header never costs a caller a 400 and a hand-written job is never dead-lettered for it.
//! It never samples or exports anything: that is [`crate::traces`]'s.

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

use crate::job::Job;

/// The length of a version-00 `traceparent`: `00-<32 hex>-<16 hex>-<2 hex>`.
const TRACEPARENT_LEN: usize = 55;

/// The longest `tracestate` carried on: the W3C recommendation asks every participant to
/// pass on at least 512 characters; a longer one is dropped whole (the `traceparent` is
/// kept), so a caller cannot make every job it enqueues kilobytes larger.
pub const MAX_TRACESTATE_LEN: usize = 512;

/// Where a piece of work was started: a remote span's identity, as W3C Trace Context
/// carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceContext {
    span: SpanContext,
}

impl TraceContext {
    /// Reads `traceparent` (and `tracestate`); `None` when `traceparent` is not a valid W3C
    /// value (a version we cannot read, all-zero ids, upper-case hex...). A `tracestate` that
    /// does not parse, or is longer than [`MAX_TRACESTATE_LEN`], is dropped; the context
    /// stands without it.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
        let (trace_id, span_id, flags) = parse_traceparent(traceparent.trim())?;
        let state = tracestate
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE_LEN)
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        let span = SpanContext::new(trace_id, span_id, flags, true, state);
        Some(TraceContext { span })
    }

    /// The context the environment names (`TRACEPARENT`, `TRACESTATE`: how a shell script
    /// or a CI job passes its trace on to a command it runs), when valid.
    pub fn from_env() -> Option<TraceContext> {
        let parent = std::env::var("TRACEPARENT").ok()?;
        TraceContext::parse(&parent, std::env::var("TRACESTATE").ok().as_deref())
    }

    /// The context `job` was created in, when it carries a valid one.
    pub fn of_job(job: &Job) -> Option<TraceContext> {
        TraceContext::parse(job.traceparent.as_deref()?, job.tracestate.as_deref())
    }

    /// Writes this context into `job` (its `traceparent` and `tracestate`), replacing any.
    pub fn write_to(&self, job: &mut Job) {
        job.traceparent = Some(self.traceparent());
        job.tracestate = self.tracestate();
    }

    /// The context of a span of this process, to carry on (in a job, say).
    pub fn of(span: &SpanContext) -> Option<TraceContext> {
        span.is_valid().then(|| TraceContext { span: span.clone() })
    }

    /// The `traceparent` value: `00-<trace id>-<span id>-<flags>`.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.span.trace_id(),
            self.span.span_id(),
            self.span.trace_flags().to_u8() & TraceFlags::SAMPLED.to_u8()
        )
    }

    /// The `tracestate` value, when there is one.
    pub fn tracestate(&self) -> Option<String> {
        let header = self.span.trace_state().header();
        (!header.is_empty()).then_some(header)
    }

    /// True when whoever started the trace decided to record it.
    pub fn is_sampled(&self) -> bool {
        self.span.is_sampled()
    }

    /// The trace id, as 32 hex digits (what a trace viewer searches for).
    pub fn trace_id(&self) -> String {
        self.span.trace_id().to_string()
    }

    /// The span context, for a link or a parent.
    pub fn span_context(&self) -> &SpanContext {
        &self.span
    }
}

/// `traceparent`'s three ids, per W3C Trace Context level 1: version 00 exactly 55
/// characters; a later version at least that long, its first four fields read the same way
/// (and a fifth field after a `-`, which is ignored); version `ff` never.
fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    let version = value.get(0..2)?;
    let version = u8::from_str_radix(lower_hex(version)?, 16).ok()?;
    if version == 0xff
        || (version == 0 && value.len() != TRACEPARENT_LEN)
        || value.len() < TRACEPARENT_LEN
        || (value.len() > TRACEPARENT_LEN && value.as_bytes()[TRACEPARENT_LEN] != b'-')
    {
        return None;
    }
    let bytes = value.as_bytes();
    if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    let trace_id = TraceId::from_hex(lower_hex(&value[3..35])?).ok()?;
    let span_id = SpanId::from_hex(lower_hex(&value[36..52])?).ok()?;
    let flags = u8::from_str_radix(lower_hex(&value[53..55])?, 16).ok()?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    Some((
        trace_id,
        span_id,
        TraceFlags::new(flags & TraceFlags::SAMPLED.to_u8()),
    ))
}

/// `text` when it is lower-case hex digits only (W3C allows no other).
fn lower_hex(text: &str) -> Option<&str> {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        .then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_reads_and_writes_back_unchanged() {
        let context = TraceContext::parse(VALID, None).unwrap();
        assert_eq!(context.traceparent(), VALID);
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(context.is_sampled());
        assert!(context.span_context().is_remote());
        assert_eq!(context.tracestate(), None);
        let unsampled = VALID.replace("-01", "-00");
        let context = TraceContext::parse(&unsampled, None).unwrap();
        assert!(!context.is_sampled());
        assert_eq!(context.traceparent(), unsampled);
    }

    #[test]
    fn anything_else_is_ignored_not_an_error() {
        for bad in [
            "",
            "00",
            "hello",
            // upper-case hex
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
            // all-zero ids
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // version ff, and version 00 with more after it
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what",
            // wrong separators or lengths
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            // not ASCII where the separators should be
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad, None), None, "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_for_its_first_four_fields() {
        let future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-extra";
        let context = TraceContext::parse(future, None).unwrap();
        assert_eq!(context.traceparent(), VALID, "written as version 00");
        assert_eq!(
            TraceContext::parse(
                "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09x",
                None
            ),
            None
        );
    }

    #[test]
    fn tracestate_is_carried_when_it_reads_and_dropped_when_it_does_not() {
        let context = TraceContext::parse(VALID, Some("vendor=abc,other=1")).unwrap();
        assert_eq!(context.tracestate().as_deref(), Some("vendor=abc,other=1"));
        let context = TraceContext::parse(VALID, Some("no equals sign")).unwrap();
        assert_eq!(context.tracestate(), None);
        assert_eq!(context.traceparent(), VALID, "the traceparent stands");
        let long = format!("k={}", "v".repeat(MAX_TRACESTATE_LEN));
        let context = TraceContext::parse(VALID, Some(&long)).unwrap();
        assert_eq!(context.tracestate(), None, "too long to carry in every job");
    }

    #[test]
    fn a_job_carries_its_context_and_a_job_of_an_earlier_release_has_none() {
        let mut job =
            Job::otp("+919999999999", "1234", std::time::Duration::from_secs(60)).unwrap();
        assert_eq!(TraceContext::of_job(&job), None);
        let context = TraceContext::parse(VALID, Some("vendor=abc")).unwrap();
        context.write_to(&mut job);
        let read = Job::from_json(job.to_json().as_bytes()).unwrap();
        assert_eq!(TraceContext::of_job(&read), Some(context));
        // An entry written before jobs carried a trace context: read, with none.
        let mut json: serde_json::Value = serde_json::from_str(&job.to_json()).unwrap();
        json.as_object_mut().unwrap().remove("traceparent");
        json.as_object_mut().unwrap().remove("tracestate");
        let old = Job::from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!((old.traceparent, old.tracestate), (None, None));
        // One that does not parse is ignored, not an error.
        let mut bad = read;
        bad.traceparent = Some("garbage".into());
        assert_eq!(TraceContext::of_job(&bad), None);
    }
}
