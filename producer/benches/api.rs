//! Load on `herald-producer serve` over loopback: accepted jobs/s and answer latency for
//! single OTP posts, a bounded number of requests from a fixed number of concurrent clients.
//!
//! `cargo bench -p herald-producer --bench api` (`REQUESTS=N`, `CLIENTS=N` to change the run).
//! The server, its redis-server (AOF on) and the load generator share the machine's cores,
//! so the figures are a floor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_shared::Redacted;
use herald_store::Keys;
use herald_tests::RedisServer;
use producer::Producer;
use producer::api::ApiState;
use producer::api::auth::Tokens;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let requests = env_or("REQUESTS", 50_000);
    let clients = env_or("CLIENTS", 32);
    let redis = RedisServer::start();

    // The server gets its own runtime (and threads), as in production.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = server_runtime.block_on(async {
        let pool = herald_shared::redis_pool::create_pool(&redis.url(), 32).unwrap();
        let state = ApiState {
            producer: Producer::new(pool, Keys::new("bench").unwrap()),
            tokens: Arc::new(Tokens::parse(&Redacted::new("bench-token".to_string())).unwrap()),
            zone: herald_shared::schedule::Zone::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1/jobs/otp", listener.local_addr().unwrap());
        tokio::spawn(producer::api::serve(
            listener,
            state,
            std::future::pending(),
        ));
        base
    });
    herald_shared::phone::warm_up();

    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for fsync in ["always", "everysec"] {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("appendfsync")
            .arg(fsync)
            .query(
                &mut redis::Client::open(redis.url())
                    .unwrap()
                    .get_connection()
                    .unwrap(),
            )
            .unwrap();
        let (took, mut latencies) = client_runtime.block_on(load(&base, requests, clients));
        latencies.sort_unstable();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        println!(
            "producer API, appendfsync {fsync}: {requests} OTP posts from {clients} clients in {:.2} s = {:.0} jobs/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            took.as_secs_f64(),
            requests as f64 / took.as_secs_f64(),
            ms(pct(0.50)),
            ms(pct(0.99)),
            ms(*latencies.last().unwrap()),
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn load(url: &str, requests: usize, clients: usize) -> (Duration, Vec<Duration>) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let per_client = requests / clients;
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let http = http.clone();
            let url = url.to_string();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for i in 0..per_client {
                    let body = format!(
                        r#"{{"phone":"+9198{:08}","code":"123456"}}"#,
                        c * per_client + i
                    );
                    let sent = Instant::now();
                    let response = http
                        .post(&url)
                        .bearer_auth("bench-token")
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .expect("the API answers");
                    assert_eq!(response.status(), 202);
                    let _ = response.bytes().await;
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::with_capacity(requests);
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    (started.elapsed(), all)
}
