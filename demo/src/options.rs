//! What a demo run is told (its options, the fixed rates and sizes) and how it can fail.

use std::io::IsTerminal;
use std::time::Duration;

use herald_shared::Redacted;
use herald_shared::config::ConfigError;
use herald_shared::redis_pool::ConnectError;

use herald_pipeline::dispatcher::StartError as WorkerStartError;

/// The rate the sandbox enforces and the workers keep to: low, so the limit is visible.
pub const DEMO_RATE: &str = "20/2s";
/// Worker replicas.
pub const WORKERS: usize = 3;
/// Plain OTPs and bookings enqueued, besides the scripted and the expiring ones.
pub const OTPS: usize = 19;
pub const BOOKINGS: usize = 74;
/// The demo gives up if the jobs are not all settled by then.
pub const DEADLINE: Duration = Duration::from_secs(50);
/// Once the jobs are settled, the longest the demo waits for the webhooks about them to be
/// processed (a report that arrives before the worker recorded its send is retried after
/// [`herald_webhook::processor::RETRY_IDLE`]).
pub const DELIVERY_WAIT: Duration = Duration::from_secs(10);
/// The key the sandbox and the in-process workers share.
pub(crate) const API_KEY: &str = "herald-demo-key";

/// How the demo shows progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar (stderr is a terminal).
    Bar,
    /// A line on stderr every few seconds.
    Lines,
    Off,
}

impl ProgressMode {
    /// A bar on a terminal, lines otherwise.
    pub fn detect() -> ProgressMode {
        if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Lines
        }
    }
}

/// What the demo is told.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Use this Redis instead of starting one; the demo's keys then go under a fresh
    /// `demo-xxxx` namespace.
    pub redis_url: Option<Redacted<String>>,
    /// The namespace when the demo starts its own Redis (so the next commands need none).
    pub namespace: String,
    /// Leave the Redis (and the demo's keys) in place at the end.
    pub keep: bool,
    pub progress: ProgressMode,
}

/// Why the demo did not complete.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "redis-server is not installed (or not on PATH): install it with `apt-get install -y redis-server`, or point the demo at a Redis with REDIS_URL=redis://HOST:PORT"
    )]
    RedisMissing,
    #[error("could not start redis-server: {0}")]
    RedisStart(String),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not start the sandbox: {0}")]
    Sandbox(#[from] herald_sandbox::Error),
    #[error("could not enqueue the demo's jobs: {0}")]
    Enqueue(#[from] producer::Error),
    #[error("a worker could not start: {0}")]
    Worker(#[from] WorkerStartError),
    #[error("Redis: {0}")]
    Redis(String),
    #[error("a demo worker stopped unexpectedly")]
    WorkerStopped,
    #[error("could not start the demo's webhook receiver: {0}")]
    WebhookStart(String),
    #[error("the demo's webhook receiver stopped: {0}")]
    Webhook(String),
    #[error(
        "only {settled} of {total} jobs were settled after {}s; see `herald-worker status`",
        DEADLINE.as_secs()
    )]
    TimedOut { settled: u64, total: usize },
    #[error("interrupted")]
    Interrupted,
    #[error("could not start the demo's dashboard: {0}")]
    DashboardStart(String),
}

impl DemoError {
    /// True when the demo could not even start (exit 2); false when it started and did not
    /// complete (exit 1).
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            DemoError::RedisMissing
                | DemoError::RedisStart(_)
                | DemoError::Connect(_)
                | DemoError::Config(_)
                | DemoError::Sandbox(_)
                | DemoError::WebhookStart(_)
                | DemoError::DashboardStart(_)
        )
    }
}
