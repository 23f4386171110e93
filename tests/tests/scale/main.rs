//! Scaling worker replicas out and in during a run, as an autoscaler (KEDA, `docker compose
//! up --scale`) does to them: real redis-server, real `herald-worker run` processes started
//! and stopped with SIGTERM, the sandbox standing in for Interakt with a strict limit.

// The worker suite's scenario: one redis-server, one sandbox, enqueue and status helpers.
#[allow(dead_code)]
#[path = "../worker/support.rs"]
mod support;

mod churn;
