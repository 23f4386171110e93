//! A real `herald-worker` process (`run` or `webhook`), as operators run it.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::scenario::http_status;
use crate::{RedisEnv, cargo_bin, wait_until};

/// A worker process: a replica (`run`) or a webhook receiver (`webhook`). Its stderr goes to
/// a log file that [`WorkerProcess::log`] reads; dropping it kills the process.
pub struct WorkerProcess {
    child: Child,
    pub consumer: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The API key the sandbox and the workers share in tests.
pub const TEST_API_KEY: &str = "test-api-key";

impl WorkerProcess {
    /// Starts `herald-worker run` against Redis at `redis_url` and Interakt at `base_url`,
    /// with `args` added (e.g. `["--rate", "20/1s"]`).
    pub fn spawn(
        redis_url: &str,
        namespace: &str,
        base_url: &str,
        consumer: &str,
        args: &[&str],
    ) -> WorkerProcess {
        Self::spawn_in(
            &RedisEnv::url(redis_url),
            namespace,
            base_url,
            consumer,
            args,
        )
    }

    /// [`spawn`](WorkerProcess::spawn) against the Redis that `redis` points at (Sentinels, a
    /// user and password, certificates).
    pub fn spawn_in(
        redis: &RedisEnv,
        namespace: &str,
        base_url: &str,
        consumer: &str,
        args: &[&str],
    ) -> WorkerProcess {
        let mut command = Command::new(cargo_bin("herald-worker"));
        redis.apply(&mut command);
        command
            .arg("run")
            .args(args)
            .env("INTERAKT_API_KEY", TEST_API_KEY)
            .env("INTERAKT_BASE_URL", base_url);
        Self::start(command, redis.redis_url(), namespace, consumer)
    }

    /// Starts `herald-worker webhook --listen LISTEN`, checking signatures with `secret`.
    pub fn webhook(
        redis_url: &str,
        namespace: &str,
        listen: &str,
        secret: &str,
        consumer: &str,
    ) -> WorkerProcess {
        let mut command = Command::new(cargo_bin("herald-worker"));
        command
            .args(["webhook", "--listen", listen])
            .env("INTERAKT_WEBHOOK_SECRET", secret);
        Self::start(command, redis_url, namespace, consumer)
    }

    /// Starts `herald-worker webhook --listen LISTEN --insecure-no-signature`: no secret,
    /// unsigned posts accepted (local development only).
    pub fn webhook_insecure(
        redis_url: &str,
        namespace: &str,
        listen: &str,
        consumer: &str,
    ) -> WorkerProcess {
        let mut command = Command::new(cargo_bin("herald-worker"));
        command
            .args(["webhook", "--listen", listen, "--insecure-no-signature"])
            .env_remove("INTERAKT_WEBHOOK_SECRET");
        Self::start(command, redis_url, namespace, consumer)
    }

    /// Starts any `herald-worker` or `herald-webhook` command line (`command`, with its
    /// arguments) the way the constructors above do: `--consumer`, Redis and namespace set,
    /// stderr to the log.
    pub fn spawn_command(
        command: Command,
        redis_url: &str,
        namespace: &str,
        consumer: &str,
    ) -> WorkerProcess {
        Self::start(command, redis_url, namespace, consumer)
    }

    fn start(
        mut command: Command,
        redis_url: &str,
        namespace: &str,
        consumer: &str,
    ) -> WorkerProcess {
        let dir = tempfile::tempdir().expect("temp dir for the worker log");
        let log = dir.path().join("worker.log");
        let log_file = std::fs::File::create(&log).expect("create the worker log");
        let child = command
            .args(["--consumer", consumer])
            .env("REDIS_URL", redis_url)
            .env("HERALD_NAMESPACE", namespace)
            // HERALD_TEST_RUST_LOG (e.g. `herald_pipeline=trace`) when a test needs more.
            .env(
                "RUST_LOG",
                std::env::var("HERALD_TEST_RUST_LOG")
                    .unwrap_or_else(|_| "info,herald_pipeline=debug,herald_webhook=debug".into()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start herald-worker");
        WorkerProcess {
            child,
            consumer: consumer.to_string(),
            log,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The most resident memory the process has used so far, in bytes (`VmHWM` in
    /// `/proc/<pid>/status`, Linux); `None` once it has exited or off Linux.
    pub fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "kill -{name} {}",
            self.pid()
        );
    }

    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("poll the worker")
    }

    /// Waits up to `timeout` for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Asserts what supervision promises once part of the process stopped: `ready` (its
    /// `/readyz` URL) no longer answers 200, the process exits 1 within seconds, and its log
    /// says each of `says`.
    pub async fn assert_stops_unready(&mut self, ready: &str, says: &[&str]) {
        let within = Duration::from_secs(10);
        wait_until("/readyz no longer 200", within, || async {
            http_status(ready).await != Some(200)
        })
        .await;
        let status = self.wait_exit(within).await;
        let log = self.log();
        let status = status.unwrap_or_else(|| panic!("still running after {within:?}:\n{log}"));
        assert_eq!(status.code(), Some(1), "{log}");
        for said in says {
            assert!(log.contains(said), "{said:?} in the log:\n{log}");
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- log of worker {} -----\n{}",
                self.consumer,
                self.log()
            );
        }
        self.kill9();
    }
}
