//! A real `herald-dashboard` for one test.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::scenario::http_status;
use crate::{RedisEnv, cargo_bin, free_port, wait_until};

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
        DashboardProcess::start_in(&RedisEnv::url(redis_url), namespace, token, extra_args).await
    }

    /// [`start`](DashboardProcess::start) against the Redis that `redis` points at (Sentinels,
    /// a user and password, certificates).
    pub async fn start_in(
        redis: &RedisEnv,
        namespace: &str,
        token: &str,
        extra_args: &[&str],
    ) -> DashboardProcess {
        let listen = format!("127.0.0.1:{}", free_port());
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let mut command = Command::new(cargo_bin("herald-dashboard"));
        redis.apply(&mut command);
        let child = command
            .args(["--listen", &listen])
            .args(extra_args)
            .env("HERALD_NAMESPACE", namespace)
            .env("HERALD_DASHBOARD_TOKENS", token)
            .env_remove("HERALD_DASHBOARD_READ_ONLY")
            .env_remove("HERALD_DASHBOARD_SECRET")
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
        let answer = self.log_in_from(LOOPBACK, token).await;
        answer
            .cookie()
            .unwrap_or_else(|| panic!("the login set no cookie: {answer:?}\n{}", self.log()))
    }

    /// `POST /login` with `token`, from the loopback address `source`: the whole answer.
    pub async fn log_in_from(&self, source: IpAddr, token: &str) -> HttpAnswer {
        self.request(
            source,
            "POST",
            "/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &format!("token={token}"),
        )
        .await
    }

    /// One HTTP/1.0 request whose connection comes from `source` (any 127.x.y.z address
    /// reaches the dashboard on 127.0.0.1, so a test can be several clients), read whole.
    pub async fn request(
        &self,
        source: IpAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> HttpAnswer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind(SocketAddr::new(source, 0))
            .unwrap_or_else(|err| panic!("bind {source}: {err}"));
        let mut stream = socket
            .connect(self.listen.parse().expect("a socket address"))
            .await
            .expect("the dashboard listens");
        let mut request = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.listen,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send the request");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .await
            .expect("the answer");
        HttpAnswer::parse(&answer)
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

/// 127.0.0.1: the address tests connect from unless they say otherwise.
pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// An HTTP answer, read whole. Its Debug output shows the body's first 300 characters.
#[derive(Clone)]
pub struct HttpAnswer {
    pub status: u16,
    /// Names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl std::fmt::Debug for HttpAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body: String = self.body.chars().take(300).collect();
        f.debug_struct("HttpAnswer")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &body)
            .finish()
    }
}

impl HttpAnswer {
    /// An answer as read whole off the socket (status line, headers, body).
    pub fn parse(answer: &str) -> HttpAnswer {
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
            .collect();
        HttpAnswer {
            status,
            headers,
            body: body.to_string(),
        }
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value.as_str())
    }

    /// The CSRF token the page's forms carry (the logout form's, on every page with a
    /// session).
    pub fn csrf(&self) -> Option<String> {
        let marker = "name=\"csrf\" value=\"";
        let at = self.body.find(marker)? + marker.len();
        self.body[at..].split('"').next().map(str::to_string)
    }

    /// The `name=value` part of the `Set-Cookie` header, when there is one.
    pub fn cookie(&self) -> Option<String> {
        let set = self.header("set-cookie")?;
        Some(set.split(';').next().unwrap_or_default().to_string())
    }
}
