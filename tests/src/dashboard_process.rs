//! A real `herald-dashboard` for one test.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::scenario::http_status;
use crate::{cargo_bin, free_port, wait_until};

/// `herald-dashboard` on a free loopback port against the Redis and namespace it is given,
/// accepting one login token; its stderr in a temporary file. Dropping it kills the process.
pub struct DashboardProcess {
    child: Child,
    listen: String,
    log: tempfile::NamedTempFile,
}

impl DashboardProcess {
    /// Starts it with `extra_args` (e.g. `--read-only`) and waits until `/readyz` answers 200.
    pub async fn start(
        redis_url: &str,
        namespace: &str,
        token: &str,
        extra_args: &[&str],
    ) -> DashboardProcess {
        let listen = format!("127.0.0.1:{}", free_port());
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let child = Command::new(cargo_bin("herald-dashboard"))
            .args(["--listen", &listen])
            .args(extra_args)
            .env("REDIS_URL", redis_url)
            .env("HERALD_NAMESPACE", namespace)
            .env("HERALD_DASHBOARD_TOKENS", token)
            .env_remove("HERALD_DASHBOARD_READ_ONLY")
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("the log file"))
            .spawn()
            .expect("start herald-dashboard");
        let dashboard = DashboardProcess { child, listen, log };
        let ready = format!("{}/readyz", dashboard.base_url());
        wait_until("the dashboard ready", Duration::from_secs(20), || async {
            http_status(&ready).await == Some(200)
        })
        .await;
        dashboard
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// Logs in over plain HTTP (no browser) and returns the `Cookie` header value that carries
    /// the session, for [`crate::scenario::http_request`].
    pub async fn log_in(&self, token: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = format!("token={token}");
        let mut stream = tokio::net::TcpStream::connect(&self.listen)
            .await
            .expect("the dashboard listens");
        let request = format!(
            "POST /login HTTP/1.0\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            self.listen,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send the login");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .await
            .expect("the login's answer");
        answer
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("set-cookie").then(|| {
                    value
                        .trim()
                        .split(';')
                        .next()
                        .unwrap_or_default()
                        .to_string()
                })
            })
            .unwrap_or_else(|| panic!("the login set no cookie: {answer}"))
    }

    /// What it wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for DashboardProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
