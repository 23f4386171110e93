//! Getting finished spans to the collector without ever making a send wait for it: a
//! bounded queue the spans are put on (never blocking: a span that does not fit is dropped
//! and counted in `herald_trace_spans_dropped_total{reason="queue_full"}`), and one thread of
//! its own that takes them off in batches and posts them (OTLP/HTTP, protobuf), each post
//! bounded in time. A collector that is down, slow or refusing costs spans, counted
//! (`reason="export_failed"`), and one warning when exports start failing and one when they
//! work again; never a worker's time.
//!
//! Owns the queue, the export thread and the flush at exit; never decides what is sampled
//! ([`super::sampler`]) and never reads the environment ([`super::settings`]).

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

use crate::error::ConfigError;

use super::settings::{ENDPOINT, TRACES_ENDPOINT, TraceSettings};

/// The counter of spans that never reached the collector, by `reason`.
pub const DROPPED: &str = "herald_trace_spans_dropped_total";

/// The most a process waits at exit for its last spans to be posted: a collector that does
/// not answer never holds a shutdown up longer than this.
pub const FLUSH_AT_EXIT: Duration = Duration::from_secs(3);

/// Why spans were dropped (the counter's `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// The queue was full: the collector is slower than the spans come.
    QueueFull,
    /// The post failed or timed out (after the exporter's retries).
    ExportFailed,
    /// Ended after the process began its exit.
    Shutdown,
}

impl Dropped {
    pub const ALL: [Dropped; 3] = [Dropped::QueueFull, Dropped::ExportFailed, Dropped::Shutdown];

    pub fn label(self) -> &'static str {
        match self {
            Dropped::QueueFull => "queue_full",
            Dropped::ExportFailed => "export_failed",
            Dropped::Shutdown => "shutdown",
        }
    }

    fn count(self, spans: usize) {
        metrics::counter!(DROPPED, "reason" => self.label()).increment(spans as u64);
    }
}

/// The spans waiting for export. Shared by the processor (which pushes) and the export
/// thread (which takes batches); dropped with the last of them.
#[derive(Debug)]
struct Queue {
    state: Mutex<State>,
    /// Wakes the export thread when a batch is full or the process exits.
    wake: Condvar,
    capacity: usize,
    batch: usize,
}

#[derive(Debug, Default)]
struct State {
    spans: VecDeque<SpanData>,
    stopping: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `span` on the queue, or drops and counts it: never waits.
    fn push(&self, span: SpanData) {
        let mut state = self.lock();
        if state.stopping {
            drop(state);
            return Dropped::Shutdown.count(1);
        }
        if state.spans.len() >= self.capacity {
            drop(state);
            return Dropped::QueueFull.count(1);
        }
        state.spans.push_back(span);
        if state.spans.len() == self.batch {
            self.wake.notify_one();
        }
    }

    /// The next batch: once `batch` spans wait, `delay` after this call, or at exit
    /// (whatever is left, a batch at a time). Also says whether the process is exiting.
    fn next_batch(&self, delay: Duration) -> (Vec<SpanData>, bool) {
        let deadline = Instant::now() + delay;
        let mut state = self.lock();
        while !state.stopping && state.spans.len() < self.batch {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .wake
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let take = state.spans.len().min(self.batch);
        (state.spans.drain(..take).collect(), state.stopping)
    }

    fn stop(&self) -> usize {
        let mut state = self.lock();
        state.stopping = true;
        self.wake.notify_one();
        state.spans.len()
    }
}

/// The tracer provider's one span processor: puts each finished (sampled) span on the
/// queue. Cheap: a lock held for a push.
#[derive(Debug)]
pub(super) struct QueueProcessor {
    queue: Arc<Queue>,
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.queue.push(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    /// The export thread is stopped by [`Exporting::finish`], which bounds the wait.
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// The running export: its queue and the thread draining it. [`Exporting::finish`] (or
/// dropping it) posts what is left, waiting at most [`FLUSH_AT_EXIT`].
#[derive(Debug)]
pub(super) struct Exporting {
    queue: Arc<Queue>,
    /// Told when the thread has posted everything and stopped.
    done: mpsc::Receiver<()>,
    finished: bool,
}

/// Starts the export thread for `settings`, posting spans of `resource`; the processor to
/// give the tracer provider, and the handle that flushes at exit. Fails when the HTTP client
/// cannot be built (naming the endpoint's variable).
pub(super) fn start(
    settings: &TraceSettings,
    resource: &Resource,
) -> Result<(QueueProcessor, Exporting), ConfigError> {
    let queue = Arc::new(Queue {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
        capacity: settings.queue,
        batch: settings.batch,
    });
    let (built_tx, built_rx) = mpsc::sync_channel(1);
    let (done_tx, done) = mpsc::sync_channel(1);
    let thread_queue = queue.clone();
    let settings = settings.clone();
    let resource = resource.clone();
    std::thread::Builder::new()
        .name("herald-traces".into())
        .spawn(move || {
            let built = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| err.to_string())
                .and_then(|runtime| {
                    // Built inside the runtime: the HTTP client's pool belongs to it.
                    let exporter = runtime.block_on(async { exporter(&settings, &resource) })?;
                    Ok((runtime, exporter))
                });
            let (runtime, exporter) = match built {
                Ok(built) => {
                    let _ = built_tx.send(Ok(()));
                    built
                }
                Err(err) => {
                    let _ = built_tx.send(Err(err));
                    return;
                }
            };
            drain(&thread_queue, &runtime, &exporter, &settings);
            let _ = exporter.shutdown();
            let _ = done_tx.send(());
        })
        .map_err(|err| {
            ConfigError::new(
                endpoint_variable(),
                format!("cannot start the trace export thread: {err}"),
            )
        })?;
    match built_rx.recv() {
        Ok(Ok(())) => Ok((
            QueueProcessor {
                queue: queue.clone(),
            },
            Exporting {
                queue,
                done,
                finished: false,
            },
        )),
        Ok(Err(reason)) => Err(ConfigError::new(
            endpoint_variable(),
            format!("cannot build the OTLP exporter: {reason}"),
        )),
        Err(_) => Err(ConfigError::new(
            endpoint_variable(),
            "the trace export thread stopped while starting",
        )),
    }
}

/// The variable that named the endpoint, for an error about it.
fn endpoint_variable() -> &'static str {
    if std::env::var_os(TRACES_ENDPOINT).is_some() {
        TRACES_ENDPOINT
    } else {
        ENDPOINT
    }
}

fn exporter(
    settings: &TraceSettings,
    resource: &Resource,
) -> Result<opentelemetry_otlp::SpanExporter, String> {
    // The builder percent-decodes header values again: encode the one character that
    // would change, so each value arrives as the settings decoded it.
    let headers = settings
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.replace('%', "%25")))
        .collect();
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.endpoint.clone())
        .with_timeout(settings.timeout)
        .with_headers(headers)
        .build()
        .map_err(|err| err.to_string())?;
    exporter.set_resource(resource);
    Ok(exporter)
}

/// Posts batches until the process exits and the queue is empty.
fn drain(
    queue: &Queue,
    runtime: &tokio::runtime::Runtime,
    exporter: &opentelemetry_otlp::SpanExporter,
    settings: &TraceSettings,
) {
    let mut failing = false;
    loop {
        let (batch, stopping) = queue.next_batch(settings.delay);
        if !batch.is_empty() {
            let spans = batch.len();
            let posted = runtime.block_on(async {
                tokio::time::timeout(settings.export_timeout, exporter.export(batch)).await
            });
            let failure = match posted {
                Ok(Ok(())) => None,
                Ok(Err(err)) => Some(err.to_string()),
                Err(_) => Some(format!(
                    "no answer within {} (OTEL_BSP_EXPORT_TIMEOUT)",
                    humantime::format_duration(settings.export_timeout)
                )),
            };
            match failure {
                Some(error) => {
                    Dropped::ExportFailed.count(spans);
                    if !failing {
                        failing = true;
                        tracing::warn!(endpoint = %settings.endpoint, %error, spans, "trace export failed; spans are dropped (counted in herald_trace_spans_dropped_total) until the collector answers again, and sending goes on");
                    }
                }
                None if failing => {
                    failing = false;
                    tracing::info!(endpoint = %settings.endpoint, "trace export works again");
                }
                None => {}
            }
        }
        if stopping && queue.lock().spans.is_empty() {
            return;
        }
    }
}

impl Exporting {
    /// Posts what is left and stops the thread, waiting at most [`FLUSH_AT_EXIT`]; says
    /// how many spans were left behind when the collector did not answer in time.
    pub(super) fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let waiting = self.queue.stop();
        if self.done.recv_timeout(FLUSH_AT_EXIT).is_err() {
            let left = self.queue.lock().spans.len();
            tracing::warn!(
                waiting,
                left,
                "the collector did not take the last spans within {}; exiting without them",
                humantime::format_duration(FLUSH_AT_EXIT)
            );
        }
    }
}

impl Drop for Exporting {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(capacity: usize, batch: usize) -> Queue {
        Queue {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            capacity,
            batch,
        }
    }

    fn span() -> SpanData {
        use opentelemetry::trace::{SpanContext, SpanKind, Status};
        SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: opentelemetry::trace::SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "x".into(),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }

    #[test]
    fn a_full_queue_drops_instead_of_waiting_and_batches_are_bounded() {
        let queue = queue(3, 2);
        for _ in 0..5 {
            queue.push(span());
        }
        assert_eq!(queue.lock().spans.len(), 3, "two dropped, none waited");
        let (batch, stopping) = queue.next_batch(Duration::from_secs(60));
        assert_eq!((batch.len(), stopping), (2, false), "a full batch, at once");
        let (batch, _) = queue.next_batch(Duration::from_millis(1));
        assert_eq!(batch.len(), 1, "the rest after the delay");
    }

    #[test]
    fn at_exit_the_rest_is_taken_at_once_and_later_spans_are_refused() {
        let queue = queue(10, 4);
        queue.push(span());
        assert_eq!(queue.stop(), 1);
        let (batch, stopping) = queue.next_batch(Duration::from_secs(60));
        assert_eq!((batch.len(), stopping), (1, true));
        queue.push(span());
        assert!(queue.lock().spans.is_empty());
    }
}
