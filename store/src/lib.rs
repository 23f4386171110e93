//! Herald's data in Redis, in one place: every key, every script, and the layout of every
//! value a job leaves behind. The producer, the worker, the operator's tools, the webhook
//! service and the dashboard touch Redis's job data only through this crate.
//!
//! - [`keys`]: the key layout (one hash tag per namespace).
//! - [`scripts`]: every Lua script (`src/lua/`), assembled with its preludes.
//! - [`calls`]: each script's typed call (named keys and arguments) and decoded answer.
//! - [`script`]: one script call written straight into one `EVALSHA`.
//! - [`lifecycle`]: a job's states, the steps between them, and the one table of which
//!   step may start from which state (`docs/lifecycle.md`).
//! - [`record`]: a job's record: field names, what each step writes.
//! - [`message_index`]: which job each message id Interakt answered was sent for.
//! - [`timeline`]: a job's timeline, read from its record (`track`, the API, the dashboard).
//! - [`dead_letter`]: what a dead letter holds.
//! - [`guard`]: the OTP guard's rules, settings and refusals, and what `status` shows of it
//!   (the rules run in the enqueue script).
//! - [`status`]: where every job is, per lane, and the replicas and the budget, read at once.
//! - [`history`]: the dashboard's chart history, counted by workers in time buckets.
//! - [`durability`]: acknowledging a write only once replicas have it (`WAIT`).

pub mod calls;
pub mod dead_letter;
pub mod durability;
pub mod guard;
pub mod history;
pub mod keys;
pub mod lifecycle;
pub mod message_index;
pub mod record;
pub mod script;
pub mod scripts;
pub mod status;
pub mod timeline;

pub use keys::Keys;
