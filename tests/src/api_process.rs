//! A real `herald-producer serve` for one test.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::scenario::http_status;
use crate::{RedisEnv, cargo_bin, wait_until};

/// What `herald-producer serve` prints on stderr once it listens, before the address.
const LISTENING: &str = "herald-producer: listening on ";

/// `herald-producer serve` on a free loopback port (port 0: it says which), against the Redis and namespace it is
/// given, accepting one bearer token; its stderr in a temporary file. Dropping it kills the
/// process.
pub struct ApiProcess {
    child: Child,
    listen: String,
    log: tempfile::NamedTempFile,
}

impl ApiProcess {
    /// Starts the API with `extra_args` after `serve --listen ADDR` and waits until its
    /// `/readyz` answers 200.
    pub async fn start(
        redis_url: &str,
        namespace: &str,
        token: &str,
        extra_args: &[&str],
    ) -> ApiProcess {
        ApiProcess::start_in(&RedisEnv::url(redis_url), namespace, token, extra_args).await
    }

    /// [`start`](ApiProcess::start) against the Redis that `redis` points at (Sentinels, a
    /// user and password, certificates).
    pub async fn start_in(
        redis: &RedisEnv,
        namespace: &str,
        token: &str,
        extra_args: &[&str],
    ) -> ApiProcess {
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let mut command = Command::new(cargo_bin("herald-producer"));
        redis.apply(&mut command);
        // Port 0: the API picks a free port and says which (no race for a port picked here).
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra_args)
            .env("HERALD_NAMESPACE", namespace)
            .env("HERALD_API_TOKENS", token)
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("the log file"))
            .spawn()
            .expect("start herald-producer serve");
        let listening = || {
            std::fs::read_to_string(log.path())
                .unwrap_or_default()
                .lines()
                .find_map(|line| line.strip_prefix(LISTENING).map(str::to_string))
        };
        wait_until(
            "the API's address on its stderr",
            Duration::from_secs(20),
            || {
                let found = listening().is_some();
                let exited = matches!(child.try_wait(), Ok(Some(_)));
                async move { found || exited }
            },
        )
        .await;
        let Some(listen) = listening() else {
            let log = std::fs::read_to_string(log.path()).unwrap_or_default();
            panic!("herald-producer serve stopped before listening: {log}");
        };
        let api = ApiProcess { child, listen, log };
        let ready = format!("{}/readyz", api.base_url());
        wait_until("the API ready", Duration::from_secs(20), || async {
            http_status(&ready).await == Some(200)
        })
        .await;
        api
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// `127.0.0.1:PORT`
    pub fn listen(&self) -> &str {
        &self.listen
    }

    /// What it wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
