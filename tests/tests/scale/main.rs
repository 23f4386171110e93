//! Scaling worker replicas out and in during a run, as an autoscaler (KEDA, `docker compose
//! up --scale`) does to them: real redis-server, real `herald-worker run` processes started
//! and stopped with SIGTERM, the sandbox standing in for Interakt with a strict limit. The
//! scenario is [`herald_tests::scenario`], shared with the worker and dead-letter suites.

mod churn;
