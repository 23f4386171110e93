use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use herald_sandbox::{AcceptedMessage, RunningSandbox, SandboxConfig, Stats};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::time::Instant;

/// The key every harness accepts.
pub const KEY: &str = "test-key-123";
/// An unscripted phone that passes validation.
pub const PHONE: &str = "+919999999999";
/// Interakt's success text.
pub const QUEUED: &str =
    "Message queued for sending via Interakt. Check webhook for delivery status";
/// Interakt's 429 text.
pub const RATE_LIMITED: &str = "Rate limit exceeded for this resource";

/// A sandbox that accepts [`KEY`] and injects nothing; tests override fields.
pub fn config() -> SandboxConfig {
    SandboxConfig::new(KEY)
}

/// A running sandbox and a client for it.
pub struct Harness {
    pub sandbox: RunningSandbox,
    pub client: reqwest::Client,
}

/// One answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub elapsed: Duration,
}

impl Answer {
    /// Asserts the answer is `status` with `{"result": false, "message": message}`.
    #[track_caller]
    pub fn assert_refused(&self, status: u16, message: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.body,
            json!({"result": false, "message": message}),
            "{self:?}"
        );
    }

    /// Asserts a 200 with `result: true` and a fresh UUID v4 id, and returns the id.
    #[track_caller]
    pub fn assert_accepted(&self) -> String {
        assert_eq!(self.status, 200, "{self:?}");
        assert_eq!(self.body["result"], true, "{self:?}");
        assert_eq!(self.body["message"], QUEUED, "{self:?}");
        let id = self.body["id"].as_str().expect("an id").to_string();
        let uuid = uuid::Uuid::parse_str(&id).expect("the id is a UUID");
        assert_eq!(uuid.get_version_num(), 4, "{id}");
        id
    }
}

pub async fn harness(config: SandboxConfig) -> Harness {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let sandbox = herald_sandbox::start(config, listen)
        .await
        .expect("start the sandbox");
    assert_ne!(sandbox.addr().port(), 0, "the real port is reported");
    Harness {
        sandbox,
        client: reqwest::Client::new(),
    }
}

impl Harness {
    /// POSTs raw bytes to `path` with an optional `Authorization` header value.
    pub async fn post(&self, path: &str, authorization: Option<&str>, body: Vec<u8>) -> Answer {
        let mut request = self
            .client
            .post(format!("{}{path}", self.sandbox.url()))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        read(request).await
    }

    /// Sends a body to the send endpoint with the right key, through `INTERAKT_BASE_URL`
    /// as a client would build it.
    pub async fn send(&self, body: &Value) -> Answer {
        let request = self
            .client
            .post(format!("{}/rcs/message/", self.sandbox.base_url()))
            .header("Authorization", format!("Basic {KEY}"))
            .json(body);
        read(request).await
    }

    pub async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.sandbox.url()))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON body")
    }

    /// `GET /_sandbox/stats`, over HTTP.
    pub async fn stats(&self) -> Stats {
        serde_json::from_value(self.get("/_sandbox/stats").await).expect("stats decode")
    }

    /// `GET /_sandbox/messages`, over HTTP.
    pub async fn messages(&self) -> Vec<AcceptedMessage> {
        serde_json::from_value(self.get("/_sandbox/messages").await).expect("messages decode")
    }
}

async fn read(request: reqwest::RequestBuilder) -> Answer {
    let started = Instant::now();
    let response = request.send().await.expect("the sandbox answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("a body");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Answer {
        status,
        headers,
        body,
        elapsed: started.elapsed(),
    }
}

/// A small valid rich-card request for an Indian test phone (`+91` + 10 digits).
pub fn card_for(phone: &str) -> Value {
    let national = phone.strip_prefix("+91").expect("an Indian test phone");
    json!({
        "countryCode": "+91",
        "phoneNumber": national,
        "message": {
            "richCardDetails": {
                "standalone": {
                    "cardOrientation": "VERTICAL",
                    "content": {
                        "cardTitle": "Your booking is confirmed",
                        "cardDescription": "Haircut on 2026-01-01 at 10:00"
                    }
                }
            }
        },
        "type": "STANDALONE_CAROUSEL"
    })
}

/// A request fixture from the shared crate (the guide's own bodies).
pub fn fixture(name: &str) -> Value {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "../shared/tests/fixtures", name]
        .iter()
        .collect();
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}
