//! A receiver under test: a real redis-server, `herald-worker webhook`'s server (receiver and
//! processor) in-process on a free port, and helpers to post, seed sends and read back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use herald_pipeline::lanes::{Delivery, LaneReader};
use herald_pipeline::settle::Settler;
use herald_shared::redis_pool::Pool;
use herald_shared::{Job, Redacted};
use herald_store::Keys;
use herald_store::timeline::{self, JobTimeline};
use herald_tests::{RedisServer, wait_until};
use herald_webhook::{self as webhook, WebhookSettings, receiver};
use redis::AsyncCommands;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const NAMESPACE: &str = "hooks";

pub struct Harness {
    pub redis: RedisServer,
    pub keys: Keys,
    /// `http://ADDR`
    pub base: String,
    pub client: reqwest::Client,
    pub conn: redis::aio::MultiplexedConnection,
    pub pool: Pool,
    secret: Option<String>,
    shutdown: CancellationToken,
    server: Option<JoinHandle<Result<(), webhook::WebhookError>>>,
}

/// One answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Harness {
    /// Starts a receiver that checks signatures with `secret` (none: unchecked, as
    /// `--insecure-no-signature` runs it).
    pub async fn start(secret: Option<&str>) -> Harness {
        let redis = RedisServer::start();
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let keys = Keys::new(NAMESPACE).unwrap();
        let settings = WebhookSettings {
            redis: herald_shared::redis_pool::Target::single(redis.url()),
            keys: keys.clone(),
            listen: listener.local_addr().unwrap(),
            signatures: secret.map_or(webhook::Signatures::Unchecked, |s| {
                webhook::Signatures::Required(Redacted::new(s.to_string()))
            }),
            consumer: "test-processor".into(),
            inbound_max_len: webhook::DEFAULT_INBOUND_MAX_LEN,
        };
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(webhook::serve(listener, settings, shutdown.clone()));
        let conn = herald_tests::connect(&redis.url()).await.unwrap();
        let pool = herald_shared::redis_pool::create_pool(&redis.url(), 4).unwrap();
        Harness {
            redis,
            keys,
            base,
            client: reqwest::Client::new(),
            conn,
            pool,
            secret: secret.map(str::to_string),
            shutdown,
            server: Some(server),
        }
    }

    /// `http://ADDR/webhooks/interakt`
    pub fn url(&self) -> String {
        format!("{}{}", self.base, receiver::PATH)
    }

    /// Posts `body`, signed with the harness's secret when it has one.
    pub async fn post(&self, body: &[u8]) -> Answer {
        let signature = self
            .secret
            .as_ref()
            .map(|s| herald_shared::signature::sign(s, body));
        self.post_with(body, signature.as_deref()).await
    }

    /// Posts `body` with exactly this `Interakt-Signature` (none: no header).
    pub async fn post_with(&self, body: &[u8], signature: Option<&str>) -> Answer {
        self.post_with_header(body, "interakt-signature", signature)
            .await
    }

    /// Posts `body` with `signature` in header `name` (none: no signature header at all).
    pub async fn post_with_header(
        &self,
        body: &[u8],
        name: &str,
        signature: Option<&str>,
    ) -> Answer {
        let mut request = self
            .client
            .post(self.url())
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header(name, signature);
        }
        let response = request.send().await.expect("the receiver answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, body }
    }

    /// Posts `body` with every value of `values` in its own `name` header line, in order.
    /// `None` when the connection failed before an answer.
    pub async fn post_with_values(
        &self,
        body: &[u8],
        name: &'static str,
        values: &[String],
    ) -> Option<Answer> {
        let mut headers = reqwest::header::HeaderMap::new();
        for value in values {
            headers.append(name, value.parse().unwrap());
        }
        let response = self
            .client
            .post(self.url())
            .header("content-type", "application/json")
            .headers(headers)
            .body(body.to_vec())
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Some(Answer { status, body })
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// The value of one metric series on /metrics (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        let (_, text) = self.get("/metrics").await;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    pub async fn xlen(&mut self, key: &str) -> u64 {
        self.conn.xlen(key).await.unwrap()
    }

    /// Waits until stream `key` holds exactly `len` entries.
    pub async fn wait_len(&self, what: &str, key: &str, len: u64) {
        wait_until(what, Duration::from_secs(15), || {
            let mut conn = self.conn.clone();
            async move { conn.xlen::<_, u64>(key).await.unwrap() == len }
        })
        .await;
    }

    /// Every entry of a stream, fields as strings.
    pub async fn entries(&mut self, key: &str) -> Vec<HashMap<String, String>> {
        let reply: redis::streams::StreamRangeReply = self.conn.xrange_all(key).await.unwrap();
        reply
            .ids
            .iter()
            .map(|entry| {
                entry
                    .map
                    .keys()
                    .map(|k| (k.clone(), entry.get::<String>(k).unwrap()))
                    .collect()
            })
            .collect()
    }

    /// Keys matching a pattern.
    pub async fn keys_like(&mut self, pattern: &str) -> Vec<String> {
        self.conn.keys(pattern).await.unwrap()
    }

    /// Records `job` as sent as Interakt's `message_id`, the way the worker does.
    pub async fn sent(&self, job: &Job, message_id: &str) {
        let reader = LaneReader::new(self.pool.clone(), self.keys.clone(), "seed".into());
        reader.ensure_groups().await.unwrap();
        let delivery = Delivery::of_job(&self.keys, job, "0-1");
        Settler::new(self.pool.clone(), self.keys.clone(), "seed".into())
            .sent(&delivery, job, message_id)
            .await
            .unwrap();
    }

    pub async fn timeline(&self, job_id: &str) -> Option<JobTimeline> {
        timeline::find(&self.pool, &self.keys, job_id)
            .await
            .unwrap()
    }

    /// Stops the server and waits for it.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A sample body as Interakt's guide prints it, with its `sendTime` (years ago) moved to
/// [`recent`], as a live event would carry: the receiver refuses events older than the
/// de-duplication window. The body is otherwise byte for byte the guide's.
pub fn fixture(name: &str) -> Vec<u8> {
    restamp(&fixture_as_printed(name), &recent())
}

/// A sample body exactly as the guide prints it (its `sendTime` years old).
pub fn fixture_as_printed(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A minute ago, as Interakt writes `sendTime` (RFC 3339, UTC, milliseconds).
pub fn recent() -> String {
    send_time(time::OffsetDateTime::now_utc() - time::Duration::MINUTE)
}

/// `at` as Interakt writes `sendTime`.
pub fn send_time(at: time::OffsetDateTime) -> String {
    let at = at
        .replace_nanosecond(at.millisecond() as u32 * 1_000_000)
        .unwrap();
    herald_store::record::format_time(at)
}

/// `body` with the value of its (one) `sendTime` replaced by `at`, nothing else changed.
pub fn restamp(body: &[u8], at: &str) -> Vec<u8> {
    let text = std::str::from_utf8(body).unwrap();
    let field = text.find("\"sendTime\"").expect("a sendTime");
    let value = field + "\"sendTime\"".len();
    let open = value + text[value..].find('"').unwrap() + 1;
    let close = open + text[open..].find('"').unwrap();
    format!("{}{at}{}", &text[..open], &text[close..]).into_bytes()
}

/// A USER_EVENT about `message_id`, with its own event id.
pub fn user_event(event_type: &str, message_id: &str, event_id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "userPhoneNumber": "+9198000*****",
        "botId": "bot",
        "entityType": "USER_EVENT",
        "entity": {
            "eventType": event_type,
            "messageId": message_id,
            "sendTime": recent(),
            "senderPhoneNumber": "+9198000*****",
            "eventId": event_id
        }
    }))
    .unwrap()
}

/// A USER_MESSAGE on Interakt's message `message_id`, as RBM reports a customer's action:
/// a tap on a suggestion carrying `postback`, or (postback `None`) a text reply. Like every
/// user message, it carries no `eventId`.
pub fn user_message(message_id: &str, postback: Option<&str>, text: &str) -> Vec<u8> {
    let suggestion = postback.map(
        |data| serde_json::json!({"postBack": {"data": data}, "plainText": text, "type": "REPLY"}),
    );
    serde_json::to_vec(&serde_json::json!({
        "userPhoneNumber": "+9198000*****",
        "botId": "bot",
        "entityType": "USER_MESSAGE",
        "entity": {
            "messageId": message_id,
            "sendTime": recent(),
            "text": if postback.is_some() { "" } else { text },
            "userFile": null,
            "location": null,
            "suggestionResponse": suggestion
        }
    }))
    .unwrap()
}

/// A JSON array of `events`.
pub fn array(events: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut body = b"[".to_vec();
    for (i, event) in events.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend(event);
    }
    body.push(b']');
    body
}

pub use herald_tests::scenario::booking;
