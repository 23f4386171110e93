//! A scenario: one redis-server, one sandbox, a namespace, and helpers to enqueue jobs, run
//! the worker (as a replica or a command) and read back where every job went.
//!
//! Shared by the end-to-end suites of `herald-worker run` and `herald-worker dlq`.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use herald_operator::status::Status;
use herald_sandbox::{AcceptedMessage, RunningSandbox, SandboxConfig, ScriptRule};
use herald_shared::job::Booking;
use herald_shared::{Job, Lane};
use herald_store::Keys;
use herald_store::dead_letter::DeadLetter;
use herald_store::keys::JOB_FIELD;
use redis::AsyncCommands;

use crate::turns::Turn;
use crate::{RedisServer, TEST_API_KEY, WorkerProcess, cargo_bin, wait_until};

/// The namespace every scenario uses.
pub const NAMESPACE: &str = "e2e";

/// A redis-server and a sandbox for one test; dropping it stops both.
pub struct Scenario {
    pub redis: RedisServer,
    pub sandbox: RunningSandbox,
    pub keys: Keys,
    pub conn: redis::aio::MultiplexedConnection,
    /// This scenario's turn: shared with other scenarios, or the run to itself.
    _turn: Turn,
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
    /// A scenario that may run beside others of its suite.
    pub async fn start(setup: SandboxSetup) -> Scenario {
        let turn = Turn::shared().await;
        Scenario::start_in_turn(setup, turn).await
    }

    /// A scenario that runs alone (no other scenario of the run meanwhile, whatever its
    /// process: [`Turn`]): for tests that measure requests per window.
    pub async fn start_exclusive(setup: SandboxSetup) -> Scenario {
        let turn = Turn::exclusive().await;
        Scenario::start_in_turn(setup, turn).await
    }

    /// A scenario that runs alone, with a sandbox configured in full (its key
    /// is replaced by [`TEST_API_KEY`]): for tests that build their faults at run time.
    pub async fn start_exclusive_with(config: SandboxConfig) -> Scenario {
        let turn = Turn::exclusive().await;
        Scenario::start_with_config(config, turn).await
    }

    async fn start_in_turn(setup: SandboxSetup, turn: Turn) -> Scenario {
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
        Scenario::start_with_config(config, turn).await
    }

    async fn start_with_config(mut config: SandboxConfig, turn: Turn) -> Scenario {
        config.api_key = TEST_API_KEY.to_string().into();
        let redis = RedisServer::start();
        let sandbox = herald_sandbox::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("start the sandbox");
        let conn = crate::connect(&redis.url())
            .await
            .expect("connect to the test redis");
        Scenario {
            redis,
            sandbox,
            keys: Keys::new(NAMESPACE).unwrap(),
            conn,
            _turn: turn,
        }
    }

    /// A `herald-worker run` replica against this scenario's Redis and sandbox.
    pub fn worker(&self, consumer: &str, args: &[&str]) -> WorkerProcess {
        WorkerProcess::spawn(
            &self.redis.url(),
            NAMESPACE,
            &self.sandbox.base_url(),
            consumer,
            args,
        )
    }

    /// `herald-worker` with this scenario's Redis and namespace, ready for arguments.
    pub fn herald_pipeline(&self) -> Command {
        let mut cmd = Command::new(cargo_bin("herald-worker"));
        cmd.env("REDIS_URL", self.redis.url())
            .env("HERALD_NAMESPACE", NAMESPACE)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG");
        cmd
    }

    /// `herald-producer` with this scenario's Redis and namespace, ready for arguments; the
    /// OTP guard off (scenarios send many OTPs to few numbers; `--otp-guard on` wins).
    pub fn herald_producer(&self) -> Command {
        let mut cmd = Command::new(cargo_bin("herald-producer"));
        cmd.env("REDIS_URL", self.redis.url())
            .env("HERALD_NAMESPACE", NAMESPACE)
            .env("HERALD_OTP_GUARD", "off")
            .env("NO_COLOR", "1")
            .env_remove("HERALD_TIMEZONE")
            .env_remove("RUST_LOG");
        cmd
    }

    /// Runs `herald-producer ARGS` to completion.
    pub fn run_producer(&self, args: &[&str]) -> Output {
        self.herald_producer()
            .args(args)
            .output()
            .expect("run herald-producer")
    }

    /// Enqueues JSON Lines with `herald-producer bulk` (the released binary, the producer's
    /// whole path: tenants' streams and turns, records, keys), in one run; panics unless
    /// every line was enqueued.
    pub fn enqueue_lines(&self, lines: &[String]) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("jobs.jsonl");
        std::fs::write(&path, lines.join("\n")).expect("write the jobs");
        let out = self.run_producer(&["bulk", "--json", path.to_str().expect("utf-8 path")]);
        let summary = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "herald-producer bulk: {summary}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value =
            serde_json::from_str(summary.trim()).expect("bulk --json prints its summary");
        assert_eq!(summary["enqueued"], lines.len(), "{summary}");
    }

    /// Runs `herald-producer ARGS` (an enqueue) and returns the job id it printed.
    pub fn enqueue_with_producer(&self, args: &[&str]) -> String {
        let out = self.run_producer(args);
        assert!(
            out.status.success(),
            "herald-producer {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The `state` field of job `job_id`'s record (`scheduled`, `queued`, `sending`, ...).
    pub async fn recorded_state(&mut self, job_id: &str) -> Option<String> {
        self.conn
            .hget(self.keys.job_status(job_id), "state")
            .await
            .expect("read the job's record")
    }

    /// Runs `herald-worker ARGS` to completion.
    pub fn run_worker_command(&self, args: &[&str]) -> Output {
        self.herald_pipeline()
            .args(args)
            .output()
            .expect("run herald-worker")
    }

    /// Puts jobs on their lanes, exactly as the producer does (one `job` field per entry).
    pub async fn enqueue(&mut self, jobs: &[Job]) {
        enqueue_jobs(&mut self.conn, &self.keys, jobs).await;
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
        herald_operator::status::collect(&pool, &self.keys)
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

    /// Stores dead letters as the worker does (the hash entry and the lane's index, scored
    /// by `dead_at`), pipelined in chunks: fast enough for thousands.
    pub async fn store_dead_letters(&mut self, letters: &[DeadLetter]) {
        for chunk in letters.chunks(1000) {
            let mut pipe = redis::pipe();
            for letter in chunk {
                let json = serde_json::to_string(letter).expect("a dead letter serializes");
                let ms = letter.dead_at.unix_timestamp_nanos() / 1_000_000;
                pipe.hset(self.keys.dead(), &letter.job_id, json)
                    .ignore()
                    .zadd(self.keys.dead_index(letter.lane), &letter.job_id, ms as i64)
                    .ignore();
            }
            let _: () = pipe
                .query_async(&mut self.conn)
                .await
                .expect("store dead letters");
        }
    }

    /// The ids of the dead letters stored now.
    pub async fn dead_ids(&mut self) -> Vec<String> {
        self.conn.hkeys(self.keys.dead()).await.expect("dead ids")
    }

    /// The jobs waiting on `lane`'s stream, oldest first.
    pub async fn lane_jobs(&mut self, lane: Lane) -> Vec<Job> {
        let reply: redis::streams::StreamRangeReply = self
            .conn
            .xrange_all(self.keys.lane(lane))
            .await
            .expect("read the lane");
        reply
            .ids
            .iter()
            .map(|entry| {
                let json: String = entry.get(JOB_FIELD).expect("a job field");
                Job::from_json(json.as_bytes()).expect("a job")
            })
            .collect()
    }

    /// Messages the sandbox accepted, in arrival order.
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

pub use crate::redis_server::free_port;

/// The status of `GET url` (`http://HOST:PORT/path`), `None` when nothing answers. Plain
/// HTTP/1.0 over a socket: the suite needs no HTTP client for this.
pub async fn http_status(url: &str) -> Option<u16> {
    http_request("GET", url, &[], "")
        .await
        .map(|(status, _)| status)
}

/// `METHOD url` with `headers` and `body`: the status and the body of the answer, `None`
/// when nothing answers. Plain HTTP/1.0 over a socket, like [`http_status`].
pub async fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    let url = url.strip_prefix("http://")?;
    let (host, path) = url.split_once('/')?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(host).await.ok()?;
    let mut request = format!(
        "{method} /{path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut buf = String::new();
    stream.read_to_string(&mut buf).await.ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, body.to_string()))
}

/// Puts jobs on their lanes of `keys`' namespace exactly as the producer does (one `job`
/// field per entry), pipelined in chunks: for tests and benchmarks that need a backlog fast.
/// Every stream of `lane`: its own (the default tenant's) and each other tenant's with jobs.
pub async fn lane_streams(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &Keys,
    lane: Lane,
) -> redis::RedisResult<Vec<String>> {
    let tenants: Vec<String> = conn.smembers(keys.lane_streams(lane)).await?;
    Ok(std::iter::once(keys.lane(lane))
        .chain(tenants.iter().map(|t| keys.lane_of(lane, t)))
        .collect())
}

/// Enqueues `jobs` as the producer does (`enqueue.lua`: record, turn, tenant's stream),
/// pipelined; panics on a refusal.
pub async fn enqueue_stored(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &Keys,
    jobs: &[Job],
) {
    let now = time::OffsetDateTime::now_utc();
    for chunk in jobs.chunks(500) {
        let mut pipe = redis::pipe();
        pipe.load_script(&herald_store::scripts::ENQUEUE).ignore();
        for jobs in chunk.chunks(50) {
            pipe.add_command(
                herald_store::calls::enqueue::enqueue_all(keys, jobs, 86_400_000, now, None)
                    .cmd()
                    .clone(),
            );
        }
        let _: Vec<redis::Value> = pipe.query_async(conn).await.expect("enqueue");
    }
}

/// Adds `jobs` to their lanes' own streams as a producer of an earlier release did (no
/// record, no turn): the reader reads the default tenant's stream at every read. Jobs of
/// another tenant go through the producer ([`Scenario::enqueue_lines`]).
pub async fn enqueue_jobs(conn: &mut redis::aio::MultiplexedConnection, keys: &Keys, jobs: &[Job]) {
    for chunk in jobs.chunks(2000) {
        let mut pipe = redis::pipe();
        for job in chunk {
            assert_eq!(
                job.tenant(),
                herald_shared::job::Tenant::DEFAULT,
                "a job of another tenant is enqueued by the producer, which takes its turn"
            );
            pipe.xadd(keys.lane(job.lane()), "*", &[(JOB_FIELD, job.to_json())])
                .ignore();
        }
        let _: () = pipe.query_async(conn).await.expect("enqueue");
    }
}

/// The i-th test phone number: valid Indian mobiles, distinct per i.
pub fn phone(i: usize) -> String {
    format!("+9198{i:08}")
}

/// A booking confirmation for [`phone`]`(i)`.
pub fn booking(i: usize) -> Job {
    booking_to(&phone(i), i)
}

/// Booking `B{i}`'s confirmation, to `phone`.
pub fn booking_to(phone: &str, i: usize) -> Job {
    Job::booking(Booking {
        phone: phone.to_string(),
        booking_id: format!("B{i}"),
        service: "Haircut".into(),
        date: "2030-11-24".into(),
        time: "10:30".into(),
        image_url: None,
    })
    .expect("valid booking")
}

/// An OTP for `phone`, valid for `valid_for`.
pub fn otp(phone: &str, valid_for: Duration) -> Job {
    Job::otp(phone, "123456", valid_for).expect("valid otp")
}
