//! A scenario: one redis-server, one sandbox, a namespace, and helpers to enqueue jobs and
//! read back where they went.

use std::net::SocketAddr;
use std::time::Duration;

use herald_sandbox::{AcceptedMessage, RunningSandbox, SandboxConfig, ScriptRule};
use herald_shared::job::Booking;
use herald_shared::keys::JOB_FIELD;
use herald_shared::{Job, Keys};
use herald_tests::{RedisServer, TEST_API_KEY, WorkerProcess, wait_until};
use herald_worker::dead_letter::DeadLetter;
use herald_worker::status::Status;
use redis::AsyncCommands;

pub const NAMESPACE: &str = "e2e";

pub struct Scenario {
    pub redis: RedisServer,
    pub sandbox: RunningSandbox,
    pub keys: Keys,
    pub conn: redis::aio::MultiplexedConnection,
}

/// How the sandbox should behave.
pub struct SandboxSetup {
    pub rate: Option<&'static str>,
    pub latency: Duration,
    pub script: Vec<&'static str>,
    /// Where it posts webhooks, and the secret it signs them with.
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<&'static str>,
}

impl Default for SandboxSetup {
    fn default() -> Self {
        SandboxSetup {
            rate: None,
            latency: Duration::ZERO,
            script: Vec::new(),
            webhook_url: None,
            webhook_secret: None,
        }
    }
}

impl Scenario {
    pub async fn start(setup: SandboxSetup) -> Scenario {
        let redis = RedisServer::start();
        let mut config = SandboxConfig::new(TEST_API_KEY);
        config.rate = setup.rate.map(|r| r.parse().expect("rate"));
        config.latency = setup.latency;
        config.script = setup
            .script
            .iter()
            .map(|s| s.parse::<ScriptRule>().expect("script rule"))
            .collect();
        config.webhook_url = setup.webhook_url;
        config.webhook_secret = setup.webhook_secret.map(|s| s.to_string().into());
        let sandbox = herald_sandbox::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("start the sandbox");
        let conn = redis::Client::open(redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis");
        Scenario {
            redis,
            sandbox,
            keys: Keys::new(NAMESPACE).unwrap(),
            conn,
        }
    }

    pub fn worker(&self, consumer: &str, args: &[&str]) -> WorkerProcess {
        WorkerProcess::spawn(
            &self.redis.url(),
            NAMESPACE,
            &self.sandbox.base_url(),
            consumer,
            args,
        )
    }

    /// Puts jobs on their lanes, exactly as the producer does (one `job` field per entry).
    pub async fn enqueue(&mut self, jobs: &[Job]) {
        let mut pipe = redis::pipe();
        for job in jobs {
            pipe.xadd(
                self.keys.lane(job.lane()),
                "*",
                &[(JOB_FIELD, job.to_json())],
            )
            .ignore();
        }
        let _: () = pipe.query_async(&mut self.conn).await.expect("enqueue");
    }

    pub async fn enqueue_bookings(&mut self, range: std::ops::Range<usize>) -> Vec<Job> {
        let jobs: Vec<Job> = range.map(booking).collect();
        for chunk in jobs.chunks(1000) {
            self.enqueue(chunk).await;
        }
        jobs
    }

    pub async fn status(&self) -> Status {
        let pool = herald_shared::redis_pool::create_pool(&self.redis.url(), 1).unwrap();
        herald_worker::status::collect(&pool, &self.keys)
            .await
            .expect("status")
    }

    pub async fn dead_letters(&mut self) -> Vec<DeadLetter> {
        let all: Vec<String> = self
            .conn
            .hvals(self.keys.dead())
            .await
            .expect("dead letters");
        all.iter()
            .map(|json| serde_json::from_str(json).expect("dead letter json"))
            .collect()
    }

    pub fn accepted(&self) -> Vec<AcceptedMessage> {
        self.sandbox.messages()
    }

    /// Distinct phone numbers the sandbox accepted a message for.
    pub fn accepted_phones(&self) -> std::collections::BTreeSet<String> {
        self.accepted().iter().map(|m| m.e164()).collect()
    }

    /// Waits until every lane is empty: nothing ready, pending or delayed.
    pub async fn wait_drained(&self, timeout: Duration) {
        wait_until("all lanes drained", timeout, || async {
            let s = self.status().await;
            s.total.ready == 0 && s.total.pending == 0 && s.total.delayed == 0
        })
        .await;
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The status of `GET url` (`http://HOST:PORT/path`), `None` when nothing answers. Plain
/// HTTP/1.0 over a socket: the suite needs no HTTP client for this.
pub async fn http_status(url: &str) -> Option<u16> {
    let url = url.strip_prefix("http://")?;
    let (host, path) = url.split_once('/')?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(host).await.ok()?;
    stream
        .write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = String::new();
    stream.read_to_string(&mut buf).await.ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

/// The i-th test phone number: valid Indian mobiles, distinct per i.
pub fn phone(i: usize) -> String {
    format!("+9198{i:08}")
}

pub fn booking(i: usize) -> Job {
    Job::booking(Booking {
        phone: phone(i),
        booking_id: format!("B{i}"),
        service: "Haircut".into(),
        date: "2026-11-24".into(),
        time: "10:30".into(),
        image_url: None,
    })
    .expect("valid booking")
}

pub fn otp(phone: &str, valid_for: Duration) -> Job {
    Job::otp(phone, "123456", valid_for).expect("valid otp")
}
