//! OpenTelemetry traces across the queue: the spans a job leaves on its way, as the
//! messaging semantic conventions lay them out, exported over OTLP/HTTP (docs/tracing.md).
//!
//! ```text
//! caller's span ─parent─> create <lane> (PRODUCER, herald-producer)
//!                              ▲ link (the job carries its traceparent)
//!                         process <lane> (CONSUMER, herald-worker) ─parent─> POST (CLIENT)
//!                              ▲ link (the job's record and message index keep it)
//!                         receive <lane> (CONSUMER, the webhook: a delivery report)
//! ```
//!
//! - [`context`]: W3C `traceparent` / `tracestate`, read leniently and written back.
//! - [`settings`]: the standard `OTEL_*` variables, checked once at start-up.
//! - [`sampler`]: what is recorded; a job's spans follow its creation's decision.
//! - [`export`]: the bounded queue and the export thread; spans that cannot be posted are
//!   dropped and counted, never waited for.
//!
//! Off unless an endpoint is set: then [`tracer`] is `None`, and every [`JobSpan`] is
//! nothing, each of its methods a branch on that. Spans carry the job's id, lane and
//! operation, never a phone number, a code, a key or a body.

pub mod context;
pub mod export;
pub mod sampler;
pub mod settings;

use std::sync::OnceLock;

use opentelemetry::trace::{
    Link, SpanBuilder, SpanKind, Status, TraceContextExt, Tracer, TracerProvider,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use crate::error::ConfigError;
use crate::job::Lane;

pub use context::TraceContext;
pub use export::DROPPED;
pub use opentelemetry::KeyValue as Attribute;
pub use settings::TraceSettings;

/// The attribute names Herald's spans use (the messaging and HTTP conventions').
pub mod attr {
    pub const MESSAGING_SYSTEM: &str = "messaging.system";
    pub const DESTINATION: &str = "messaging.destination.name";
    pub const MESSAGE_ID: &str = "messaging.message.id";
    pub const OPERATION_TYPE: &str = "messaging.operation.type";
    pub const OPERATION_NAME: &str = "messaging.operation.name";
    pub const CONSUMER_GROUP: &str = "messaging.consumer.group.name";
    pub const HTTP_METHOD: &str = "http.request.method";
    pub const HTTP_STATUS: &str = "http.response.status_code";
    pub const HTTP_RESEND: &str = "http.request.resend_count";
    pub const SERVER_ADDRESS: &str = "server.address";
    pub const SERVER_PORT: &str = "server.port";
    pub const URL_FULL: &str = "url.full";
    pub const ERROR_TYPE: &str = "error.type";
    /// Herald's own: the job's tenant, kind, what became of it, a delivery milestone.
    pub const TENANT: &str = "herald.tenant";
    pub const KIND: &str = "herald.job.kind";
    pub const OUTCOME: &str = "herald.outcome";
    pub const MILESTONE: &str = "herald.milestone";
    pub const DUPLICATE: &str = "herald.duplicate";
}

/// `messaging.system` of every span.
pub const SYSTEM: &str = "herald";

/// The messaging operation a span stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// The producer creating a job (PRODUCER).
    Create,
    /// A worker sending it (CONSUMER).
    Process,
    /// The webhook receiving Interakt's report about it (CONSUMER).
    Receive,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Process => "process",
            Operation::Receive => "receive",
        }
    }

    fn kind(self) -> SpanKind {
        match self {
            Operation::Create => SpanKind::Producer,
            Operation::Process | Operation::Receive => SpanKind::Consumer,
        }
    }

    /// `{operation} {lane}`: built once, not per span.
    fn span_name(self, lane: Lane) -> &'static str {
        const NAMES: [[&str; 4]; 3] = [
            [
                "create otp",
                "create booking",
                "create reminder",
                "create bulk",
            ],
            [
                "process otp",
                "process booking",
                "process reminder",
                "process bulk",
            ],
            [
                "receive otp",
                "receive booking",
                "receive reminder",
                "receive bulk",
            ],
        ];
        let lane = Lane::ALL.iter().position(|l| *l == lane).unwrap_or(0);
        NAMES[self as usize][lane]
    }
}

/// This process's tracer, once [`init`] found an endpoint; `None` while tracing is off.
pub fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Tracing as the environment asks for it, for the process whose service is
/// `default_service` (unless `OTEL_SERVICE_NAME` names it): off without an endpoint. A
/// variable that cannot work is an error naming it (the binaries exit 2). Keep the
/// returned [`Traces`] until the process ends: dropping it posts the last spans.
pub fn init(default_service: &str) -> Result<Traces, ConfigError> {
    let Some(settings) = TraceSettings::from_env(default_service)? else {
        return Ok(Traces { exporting: None });
    };
    if TRACER.get().is_some() {
        // A second server in one process (the demo): the first one's tracer serves both.
        return Ok(Traces { exporting: None });
    }
    let resource = Resource::builder()
        .with_attributes(
            settings
                .resource
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        )
        .with_service_name(settings.service_name.clone())
        .build();
    let (processor, exporting) = export::start(&settings, &resource)?;
    let provider = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(settings.sampling.sampler())
        .with_span_processor(processor)
        .build();
    let tracer = provider.tracer_with_scope(
        opentelemetry::InstrumentationScope::builder("herald")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    );
    let _ = TRACER.set(tracer);
    tracing::info!(endpoint = %settings.endpoint, service = %settings.service_name, sampling = ?settings.sampling, "exporting traces");
    Ok(Traces {
        exporting: Some(exporting),
    })
}

/// Held by `main` for the life of the process: dropping it (or [`Traces::finish`]) posts the
/// spans still waiting, for at most [`export::FLUSH_AT_EXIT`].
#[derive(Debug)]
#[must_use = "dropping it ends the export"]
pub struct Traces {
    exporting: Option<export::Exporting>,
}

impl Traces {
    /// True when spans are exported.
    pub fn is_on(&self) -> bool {
        self.exporting.is_some()
    }

    /// Posts what is left; the process is about to exit.
    pub fn finish(mut self) {
        if let Some(exporting) = &mut self.exporting {
            exporting.finish();
        }
    }
}

/// One span of a job's journey, or nothing when tracing is off (every method is then a
/// branch and returns). Attributes come through closures, so a span that is not recorded
/// (sampled out) costs no formatting. Ends when dropped, or at [`JobSpan::end`].
#[derive(Debug, Default)]
pub struct JobSpan {
    cx: Option<Context>,
}

impl JobSpan {
    /// No span (tracing off, or nothing to trace).
    pub fn none() -> JobSpan {
        JobSpan { cx: None }
    }

    /// `create <lane>` (PRODUCER), a child of `parent` (the caller's context) when given.
    pub fn create(lane: Lane, parent: Option<&TraceContext>) -> JobSpan {
        let Some(tracer) = tracer() else {
            return JobSpan::none();
        };
        let parent = match parent {
            Some(parent) => Context::new().with_remote_span_context(parent.span_context().clone()),
            None => Context::new(),
        };
        let builder = SpanBuilder::from_name(Operation::Create.span_name(lane))
            .with_kind(Operation::Create.kind());
        JobSpan::start(tracer, builder, &parent, Operation::Create, lane)
    }

    /// `process <lane>` (CONSUMER) or `receive <lane>`: a new trace that links to the
    /// context the job was created in, when it carries one.
    pub fn consume(operation: Operation, lane: Lane, created: Option<&TraceContext>) -> JobSpan {
        let Some(tracer) = tracer() else {
            return JobSpan::none();
        };
        let mut builder =
            SpanBuilder::from_name(operation.span_name(lane)).with_kind(operation.kind());
        if let Some(created) = created {
            builder = builder.with_links(vec![Link::with_context(created.span_context().clone())]);
        }
        JobSpan::start(tracer, builder, &Context::new(), operation, lane)
    }

    fn start(
        tracer: &SdkTracer,
        builder: SpanBuilder,
        parent: &Context,
        operation: Operation,
        lane: Lane,
    ) -> JobSpan {
        let span = tracer.build_with_context(builder, parent);
        let span = JobSpan {
            cx: Some(Context::new().with_span(span)),
        };
        span.set(|| {
            vec![
                KeyValue::new(attr::MESSAGING_SYSTEM, SYSTEM),
                KeyValue::new(attr::DESTINATION, lane.as_str()),
                KeyValue::new(attr::OPERATION_TYPE, operation.as_str()),
            ]
        });
        span
    }

    /// A CLIENT child span named `name` (an HTTP call: `POST`); none when this one is.
    pub fn client(&self, name: &'static str) -> JobSpan {
        let (Some(tracer), Some(cx)) = (tracer(), &self.cx) else {
            return JobSpan::none();
        };
        let builder = SpanBuilder::from_name(name).with_kind(SpanKind::Client);
        let span = tracer.build_with_context(builder, cx);
        JobSpan {
            cx: Some(Context::new().with_span(span)),
        }
    }

    /// True when this span is recorded (tracing on and the span sampled).
    pub fn is_recording(&self) -> bool {
        self.cx.as_ref().is_some_and(|cx| cx.span().is_recording())
    }

    /// The context to carry on (in a job): this span's, sampled or not; `None` when off.
    pub fn context(&self) -> Option<TraceContext> {
        TraceContext::of(self.cx.as_ref()?.span().span_context())
    }

    /// Sets the attributes `attributes` makes, when the span is recorded.
    pub fn set(&self, attributes: impl FnOnce() -> Vec<KeyValue>) {
        if let Some(cx) = self.recorded() {
            cx.span().set_attributes(attributes());
        }
    }

    /// Adds the event `name` with the attributes `attributes` makes, when recorded.
    pub fn event(&self, name: &'static str, attributes: impl FnOnce() -> Vec<KeyValue>) {
        if let Some(cx) = self.recorded() {
            cx.span().add_event(name, attributes());
        }
    }

    /// Marks the span failed: `error.type` and the status's description are `error_type`,
    /// a fixed low-cardinality name (`rate_limited`, `not_enqueued`), never free text that
    /// could hold a phone number, a code or a key.
    pub fn fail(&self, error_type: &'static str) {
        if let Some(cx) = self.recorded() {
            let span = cx.span();
            span.set_attribute(KeyValue::new(attr::ERROR_TYPE, error_type));
            span.set_status(Status::error(error_type));
        }
    }

    /// Ends the span now (dropping it does too).
    pub fn end(self) {
        drop(self);
    }

    fn recorded(&self) -> Option<&Context> {
        self.cx.as_ref().filter(|cx| cx.span().is_recording())
    }
}

impl Drop for JobSpan {
    fn drop(&mut self) {
        if let Some(cx) = &self.cx {
            cx.span().end();
        }
    }
}
