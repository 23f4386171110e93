//! End-to-end guarantees of `herald-worker run`: real redis-server, real worker processes,
//! the sandbox standing in for Interakt. One module per guarantee of the worker's issue; each
//! test's name says which guarantee it pins. The scenario (one redis-server, one sandbox, a
//! namespace) is [`herald_tests::scenario`], shared with the dead-letter suite.

mod adaptive_budget;
mod bad_jobs;
mod bounded_answers;
mod budget;
mod cli;
mod crashes;
mod delivery_tracking;
mod failures;
mod fair_turns;
mod flags;
mod otp_first;
mod otp_guard;
mod otp_latency;
mod ownership;
mod rate_limited;
mod redis_outage;
mod secrets;
mod shutdown;
mod supervision;
