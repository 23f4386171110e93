//! A real OTLP/HTTP trace receiver for tests: a collector on a free loopback port that
//! decodes each `POST /v1/traces` body (`ExportTraceServiceRequest`, protobuf) and keeps its
//! spans with their `service.name`, or behaves like a collector in trouble: refusing every
//! export (503), or reading it and never answering. Plain HTTP/1.1 over tokio's sockets
//! (keep-alive, `Content-Length` bodies: what the OTLP exporter sends).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

/// How the receiver answers an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Decodes and keeps the spans, answers 200.
    Accept,
    /// Answers 503 without looking at the body.
    Refuse,
    /// Reads the request and never answers (a collector hung or far too slow).
    Stall,
}

/// One span as the receiver got it, with the service that exported it.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    pub service: String,
    pub span: Span,
}

impl ReceivedSpan {
    pub fn name(&self) -> &str {
        &self.span.name
    }

    pub fn kind(&self) -> SpanKind {
        SpanKind::try_from(self.span.kind).unwrap_or(SpanKind::Unspecified)
    }

    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    /// The parent's span id, empty for a root.
    pub fn parent_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    /// Each link's `(trace id, span id)`.
    pub fn links(&self) -> Vec<(String, String)> {
        self.span
            .links
            .iter()
            .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
            .collect()
    }

    /// The attribute `key`, as text (numbers and booleans written out).
    pub fn attr(&self, key: &str) -> Option<String> {
        find(&self.span.attributes, key)
    }

    /// The names of its events.
    pub fn events(&self) -> Vec<&str> {
        self.span.events.iter().map(|e| e.name.as_str()).collect()
    }

    /// Every text this span carries anywhere (name, attribute values, event and link
    /// attributes, status message): what must never hold a phone number or a code.
    pub fn all_text(&self) -> Vec<String> {
        let mut texts = vec![self.span.name.clone()];
        let values = |attributes: &[KeyValue]| -> Vec<String> {
            attributes
                .iter()
                .filter_map(|kv| kv.value.as_ref().map(text))
                .collect()
        };
        texts.extend(values(&self.span.attributes));
        for event in &self.span.events {
            texts.push(event.name.clone());
            texts.extend(values(&event.attributes));
        }
        for link in &self.span.links {
            texts.extend(values(&link.attributes));
        }
        if let Some(status) = &self.span.status {
            texts.push(status.message.clone());
        }
        texts
    }
}

/// The receiver; dropping it stops listening (connections in hand end with their task).
pub struct OtlpReceiver {
    port: u16,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct State {
    behaviour: Mutex<Behaviour>,
    spans: Mutex<Vec<ReceivedSpan>>,
    /// Export requests received (answered or not).
    requests: Mutex<u64>,
}

impl OtlpReceiver {
    /// Listens on a free loopback port, answering as `behaviour` says.
    pub async fn start(behaviour: Behaviour) -> OtlpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the OTLP receiver");
        let port = listener.local_addr().expect("its address").port();
        let state = Arc::new(State {
            behaviour: Mutex::new(behaviour),
            spans: Mutex::new(Vec::new()),
            requests: Mutex::new(0),
        });
        let serving = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, serving.clone()));
            }
        });
        OtlpReceiver { port, state, task }
    }

    /// `http://127.0.0.1:PORT`: the value of `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.state.spans.lock().unwrap().clone()
    }

    /// Export requests received so far.
    pub fn requests(&self) -> u64 {
        *self.state.requests.lock().unwrap()
    }

    /// Answers later exports as `behaviour` says.
    pub fn set(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers the requests of one connection, one after another.
async fn serve(mut stream: TcpStream, state: Arc<State>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let body: Vec<u8> = buf.drain(..head_end + length).skip(head_end).collect();
        *state.requests.lock().unwrap() += 1;
        let behaviour = *state.behaviour.lock().unwrap();
        let answer: &[u8] = match behaviour {
            Behaviour::Stall => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Behaviour::Refuse => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
            Behaviour::Accept => {
                let Ok(request) = ExportTraceServiceRequest::decode(body.as_slice()) else {
                    let _ = stream
                        .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    continue;
                };
                keep(&state, request);
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
            }
        };
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

fn keep(state: &State, request: ExportTraceServiceRequest) {
    let mut spans = state.spans.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .as_ref()
            .and_then(|r| find(&r.attributes, "service.name"))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            spans.extend(scope.spans.into_iter().map(|span| ReceivedSpan {
                service: service.clone(),
                span,
            }));
        }
    }
}

fn find(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(text)
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
