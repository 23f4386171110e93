//! The demo's dashboard: `herald-dashboard`'s server ([`herald_dashboard`]) in a process of
//! its own, so that `--keep` can leave it running with the Redis after the demo exits.
//!
//! The demo starts itself with the hidden `--serve-dashboard` flag and the environment the
//! dashboard reads (`REDIS_URL`, `HERALD_NAMESPACE`, `HERALD_DASHBOARD_TOKENS` with a token
//! made up for the run, `HERALD_DASHBOARD_LISTEN` on a free loopback port, the demo's rate);
//! the child prints its address on its first line of stdout, and the demo prints where to
//! open it and the token. Without `--keep` the child is stopped (SIGTERM) at the end.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::Parser;
use herald_dashboard::DashboardArgs;
use herald_shared::config::RedisArgs;
use herald_shared::process::Failure;

use crate::DemoError;

/// What the child prints first: `listening http://ADDR`.
const READY: &str = "listening ";

/// The dashboard's configuration, read from the environment the demo set.
#[derive(Parser, Debug)]
struct FromEnv {
    #[command(flatten)]
    redis: RedisArgs,
    #[command(flatten)]
    args: DashboardArgs,
}

/// The child's side: serves until SIGTERM, after printing its address.
pub async fn serve_from_env() -> Result<u8, Failure> {
    let config = FromEnv::try_parse_from(["herald-demo"])
        .map_err(|err| Failure::usage(herald_shared::process::one_line(&err)))?;
    herald_dashboard::run_until_signal(&config.redis, &config.args, |addr| {
        println!("{READY}http://{addr}");
    })
    .await
}

/// The demo's side: the running dashboard.
pub struct DemoDashboard {
    pub url: String,
    /// The made-up login token of this run (a throwaway, shown to whoever ran the demo).
    pub token: String,
    child: Option<Child>,
}

impl DemoDashboard {
    /// Starts the dashboard process against the demo's Redis and waits for its address.
    pub fn start(redis_url: &str, namespace: &str, rate: &str) -> Result<DemoDashboard, DemoError> {
        let fail = |reason: String| DemoError::DashboardStart(reason);
        let exe = std::env::current_exe().map_err(|err| fail(err.to_string()))?;
        let token = format!("demo-{:032x}", rand::random::<u128>());
        let mut child = Command::new(exe)
            .arg("--serve-dashboard")
            .env("REDIS_URL", redis_url)
            .env("HERALD_NAMESPACE", namespace)
            .env("HERALD_DASHBOARD_TOKENS", &token)
            .env("HERALD_DASHBOARD_LISTEN", "127.0.0.1:0")
            .env("INTERAKT_RATE_LIMIT", rate)
            .env_remove("REDIS_CLUSTER_NODES")
            .env_remove("REDIS_SENTINEL_NODES")
            .env_remove("HERALD_DASHBOARD_READ_ONLY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| fail(err.to_string()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let url = match read {
            Ok(_) if line.starts_with(READY) => line[READY.len()..].trim().to_string(),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "it did not say where it listens (said {:?})",
                    line.trim()
                )));
            }
        };
        Ok(DemoDashboard {
            url,
            token,
            child: Some(child),
        })
    }

    /// Leaves the process running; returns its pid.
    pub fn leave_running(mut self) -> Option<u32> {
        self.child.take().map(|child| child.id())
    }

    /// Stops the process (SIGTERM, then SIGKILL after a few seconds).
    pub fn stop(mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
        }
    }
}

impl Drop for DemoDashboard {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
        }
    }
}

fn terminate(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..50 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}
