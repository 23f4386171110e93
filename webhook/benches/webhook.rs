//! Webhook receiver load test: figures for the README, not assertions.
//!
//! `cargo bench -p herald-webhook --bench webhook` starts a real redis-server and the
//! `webhook` server in-process (receiver and processor, signatures checked), records 1,000
//! sends the way the worker does, then posts `EVENTS` (default 20,000) signed DELIVERED/READ
//! events about them from `CLIENTS` (default 8) concurrent HTTP clients over loopback, in a
//! bounded loop. It prints the receiver's events/s and answer-time percentiles, then how long
//! the processor took to apply them all to the job timelines.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_pipeline::lanes::{Delivery, LaneReader};
use herald_pipeline::settle::Settler;
use herald_shared::{Redacted, signature};
use herald_store::Keys;
use herald_tests::RedisServer;
use herald_tests::scenario::booking;
use herald_webhook::{self as webhook, WebhookSettings, receiver};
use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "bench-secret";
const MESSAGES: usize = 1_000;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The i-th event: DELIVERED or READ (alternating every round of the messages) about one of
/// the recorded messages, with its own event id.
fn event(i: usize) -> Vec<u8> {
    let event_type = if (i / MESSAGES).is_multiple_of(2) {
        "DELIVERED"
    } else {
        "READ"
    };
    serde_json::to_vec(&serde_json::json!({
        "userPhoneNumber": "+9198000*****",
        "botId": "bench",
        "entityType": "USER_EVENT",
        "entity": {
            "eventType": event_type,
            "messageId": format!("bench-{}", i % MESSAGES),
            // Now: the receiver refuses events older than the de-duplication window.
            "sendTime": herald_store::record::format_time(time::OffsetDateTime::now_utc()),
            "senderPhoneNumber": "+9198000*****",
            "eventId": format!("bench-event-{i}")
        }
    }))
    .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events = env_or("EVENTS", 20_000);
    let clients = env_or("CLIENTS", 8);
    let redis = RedisServer::start();
    let keys = Keys::new("bench").unwrap();
    let pool = herald_shared::redis_pool::create_pool(&redis.url(), 4).unwrap();

    // The sends the events are about, recorded as the worker records them.
    LaneReader::new(pool.clone(), keys.clone(), "bench".into())
        .ensure_groups()
        .await
        .unwrap();
    let settler = Settler::new(pool.clone(), keys.clone(), "bench".into());
    for i in 0..MESSAGES {
        let job = booking(i);
        let delivery = Delivery::of_job(&keys, &job, "0-1");
        settler
            .sent(&delivery, &job, &format!("bench-{i}"))
            .await
            .unwrap();
    }

    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!(
        "http://{}{}",
        listener.local_addr().unwrap(),
        receiver::PATH
    );
    let settings = WebhookSettings {
        redis: herald_shared::redis_pool::Target::single(redis.url()),
        keys: keys.clone(),
        listen: listener.local_addr().unwrap(),
        signatures: webhook::Signatures::Required(Redacted::new(SECRET.to_string())),
        consumer: "bench-processor".into(),
        inbound_max_len: webhook::DEFAULT_INBOUND_MAX_LEN,
    };
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(webhook::serve(listener, settings, shutdown.clone()));

    // Bodies and signatures are Interakt's work: prepared before the clock starts.
    let bodies: Arc<Vec<(Vec<u8>, String)>> = Arc::new(
        (0..events)
            .map(|i| {
                let body = event(i);
                let signature = signature::sign(SECRET, &body);
                (body, signature)
            })
            .collect(),
    );
    let client = reqwest::Client::new();
    // Warm the connections (and the receiver's Redis pool) up.
    for _ in 0..clients {
        let warm = client.post(&url).body("[]").send().await.unwrap();
        assert_eq!(warm.status(), 401, "unsigned bodies are refused");
    }

    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for (body, sig) in bodies.iter().skip(c).step_by(clients) {
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header(signature::HEADER, sig)
                        .body(body.clone())
                        .send()
                        .await
                        .expect("the receiver answers");
                    assert_eq!(response.status(), 200);
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(events);
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let took = started.elapsed();
    latencies.sort();

    let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let left: u64 = conn.xlen(keys.webhook_events()).await.unwrap();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} events still unprocessed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let processed_in = started.elapsed();
    let stats: std::collections::HashMap<String, u64> = conn.hgetall(keys.stats()).await.unwrap();

    println!(
        "webhook receiver: {events} signed events from {clients} clients over loopback in {:.2} s = {:.0} events/s; answer time p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} cores shared by client, receiver and Redis)",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!(
        "webhook processor: every event applied to its job's timeline {:.2} s after the first post ({:.0} events/s end to end); delivered {} and read {} messages of {MESSAGES}",
        processed_in.as_secs_f64(),
        events as f64 / processed_in.as_secs_f64(),
        stats.get("delivered:booking").copied().unwrap_or(0),
        stats.get("read:booking").copied().unwrap_or(0),
    );
    shutdown.cancel();
    server.await.unwrap().unwrap();
}
