//! A throwaway `redis-server` for one test (and for the demo, which starts one the same way).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer PING after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// A `redis-server` child process with its data in a temporary directory.
///
/// By default AOF is on with `appendfsync always`, so a stop/start (or a `kill -9`) keeps
/// every write that was acknowledged; `maxmemory-policy noeviction`, as a queue needs.
/// Dropping it kills the process and removes the directory (unless [`leave_running`] was
/// called).
///
/// [`leave_running`]: RedisServer::leave_running
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Arguments added to every start (e.g. cluster mode, or no persistence).
    extra_args: Vec<String>,
    /// TLS only (`--port 0`, the port is `--tls-port`), when set.
    tls: Option<ServerTls>,
}

/// What a TLS-only server is started with.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    /// `--tls-auth-clients yes`: clients must present a certificate signed by `ca`.
    pub require_client_cert: bool,
}

/// Why a `redis-server` could not be started.
#[derive(Debug)]
pub enum StartError {
    /// `redis-server` is not on PATH.
    Missing,
    /// It could not be run, or it exited or stayed silent; the reason from its log.
    Failed(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Missing => f.write_str(
                "redis-server is not on PATH; install it with `apt-get install -y redis-server`",
            ),
            StartError::Failed(reason) => write!(f, "redis-server did not start: {reason}"),
        }
    }
}

impl std::error::Error for StartError {}

/// The arguments that turn persistence off (for throwaway data, such as the demo's).
pub const NO_PERSISTENCE: [&str; 4] = ["--appendonly", "no", "--save", ""];

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    ///
    /// Panics with the install command when `redis-server` is not on PATH.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts a server with `extra_args` added to its command line (kept for restarts).
    pub fn start_with(extra_args: &[&str]) -> RedisServer {
        RedisServer::try_start(extra_args).unwrap_or_else(|err| panic!("{err}"))
    }

    /// Starts a server with `extra_args` added to its command line (later ones win, so
    /// [`NO_PERSISTENCE`] turns AOF off); an error instead of a panic.
    pub fn try_start(extra_args: &[&str]) -> Result<RedisServer, StartError> {
        RedisServer::try_start_inner(extra_args, None)
    }

    /// Starts a server that speaks TLS only (no plain-text port), with the server
    /// certificate of `certs`; with `require_client_cert`, clients must present one signed by
    /// the test CA. [`url`](RedisServer::url) is then `rediss://127.0.0.1:PORT`.
    pub fn start_tls(
        certs: &crate::TestCerts,
        require_client_cert: bool,
        extra_args: &[&str],
    ) -> RedisServer {
        let tls = ServerTls {
            cert: certs.server_cert(),
            key: certs.server_key(),
            ca: certs.ca(),
            require_client_cert,
        };
        RedisServer::try_start_inner(extra_args, Some(tls)).unwrap_or_else(|err| panic!("{err}"))
    }

    fn try_start_inner(
        extra_args: &[&str],
        tls: Option<ServerTls>,
    ) -> Result<RedisServer, StartError> {
        let extra_args: Vec<String> = extra_args.iter().map(|a| a.to_string()).collect();
        let mut dir = tempfile::Builder::new()
            .prefix("herald-redis-")
            .tempdir()
            .map_err(|err| StartError::Failed(format!("cannot create a temp dir: {err}")))?;
        let mut last = String::from("no attempt");
        // A free port can be taken between our probe and redis-server's bind; retry.
        for _ in 0..5 {
            let port = free_port();
            let mut server = RedisServer {
                port,
                dir,
                child: None,
                extra_args: extra_args.clone(),
                tls: tls.clone(),
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(StartError::Failed(reason)) => last = reason,
                Err(missing) => return Err(missing),
            }
            dir = server.into_dir();
        }
        Err(StartError::Failed(format!("5 attempts; the last: {last}")))
    }

    /// Leaves the server running with its data directory after this value is gone (the
    /// demo's `--keep`); returns its pid. Not waited for on purpose: the caller exits soon
    /// after, and init reaps the server when it stops.
    #[allow(clippy::zombie_processes)]
    pub fn leave_running(mut self) -> u32 {
        let child = self.child.take().expect("the server is running");
        let dir = std::mem::replace(
            &mut self.dir,
            tempfile::tempdir().expect("create a temp dir"),
        );
        let _ = dir.keep();
        child.id()
    }

    /// `redis://127.0.0.1:PORT` (`rediss://` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// `redis-cli` arguments reaching this server (`-p PORT`, and the TLS flags with the
    /// client certificate for a TLS server).
    pub fn cli_args(&self) -> Vec<String> {
        let mut args = vec!["-p".to_string(), self.port.to_string()];
        if let Some(tls) = &self.tls {
            let dir = tls.ca.parent().expect("the certificates' directory");
            args.push("--tls".into());
            for (flag, file) in [
                ("--cacert", tls.ca.clone()),
                ("--cert", dir.join("client.pem")),
                ("--key", dir.join("client.key")),
            ] {
                args.push(flag.into());
                args.push(file.display().to_string());
            }
        }
        args
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory (AOF files, `redis.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server with SIGKILL (no chance to flush anything but what AOF already has).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server politely (SIGTERM: it finishes writing the AOF and exits).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same data directory.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(err) = self.spawn() {
            panic!("redis-server did not restart on port {}: {err}", self.port);
        }
    }

    /// Starts a server that was stopped or killed (same port and data).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "redis-server is still running");
        if let Err(err) = self.spawn() {
            panic!(
                "redis-server did not start again on port {}: {err}",
                self.port
            );
        }
    }

    fn into_dir(mut self) -> tempfile::TempDir {
        self.kill();
        let dir = tempfile::tempdir().expect("create a temp dir");
        std::mem::replace(&mut self.dir, dir)
    }

    /// Spawns redis-server and waits for PING; `Failed` when it exited (port taken) or
    /// stayed silent.
    fn spawn(&mut self) -> Result<(), StartError> {
        let log = self.dir.path().join("redis.log");
        let port = self.port.to_string();
        let ports: Vec<String> = match &self.tls {
            None => vec!["--port".into(), port],
            Some(tls) => vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port,
                "--tls-cert-file".into(),
                tls.cert.display().to_string(),
                "--tls-key-file".into(),
                tls.key.display().to_string(),
                "--tls-ca-cert-file".into(),
                tls.ca.display().to_string(),
                "--tls-auth-clients".into(),
                if tls.require_client_cert { "yes" } else { "no" }.into(),
            ],
        };
        let child = Command::new("redis-server")
            .args(&ports)
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(["--maxmemory-policy", "noeviction", "--daemonize", "no"])
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(StartError::Missing);
            }
            Err(err) => return Err(StartError::Failed(format!("could not run it: {err}"))),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                let last = log.lines().last().unwrap_or("").to_string();
                return Err(StartError::Failed(format!(
                    "redis-server on port {} exited ({status}): {last}",
                    self.port
                )));
            }
            let ready = match self.tls {
                None => ping(self.port),
                // No plain-text PING on a TLS port: the log says when it accepts connections.
                Some(_) => std::fs::read_to_string(&log)
                    .is_ok_and(|text| text.contains("Ready to accept connections")),
            };
            if ready {
                self.child = Some(child);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(StartError::Failed(format!(
            "redis-server on port {} did not answer PING within {READY_TIMEOUT:?}",
            self.port
        )))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port that was free a moment ago (the one `free_port` of the test support;
/// callers that bind it retry when it was taken in between).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

/// A test's own connection to the plain (not TLS) server at `url`, for seeding and
/// observing Redis beside the processes under test.
///
/// It waits as long for a reply as Herald itself does ([`RESPONSE_TIMEOUT`], 10 s), not
/// redis-rs's default of 500 ms: these servers fsync every write and share two CI cores with
/// several worker processes, where a reply past 500 ms is late, not lost. (A churn test's
/// lane sampler once failed with `timed out` on exactly that, in CI.) A connection that
/// cannot be made within [`CONNECT_TIMEOUT`] fails, so a stopped server is an error, not a
/// hang.
///
/// [`RESPONSE_TIMEOUT`]: herald_shared::redis_pool::RESPONSE_TIMEOUT
/// [`CONNECT_TIMEOUT`]: herald_shared::redis_pool::CONNECT_TIMEOUT
pub async fn connect(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(herald_shared::redis_pool::CONNECT_TIMEOUT))
        .set_response_timeout(Some(herald_shared::redis_pool::RESPONSE_TIMEOUT));
    redis::Client::open(url)?
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// How many scripts (`EVAL` and `EVALSHA` calls) the server on `conn` has run since its
/// stats were last reset (`INFO commandstats`; `CONFIG RESETSTAT` resets them).
pub async fn script_calls(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_eval:") || l.starts_with("cmdstat_evalsha:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// True when a server on `port` answers PING with PONG, or asks for a password first (and
/// is done loading its AOF).
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_and_restarts_on_the_same_port() {
        let mut server = RedisServer::start();
        assert!(ping(server.port()));
        let port = server.port();
        server.kill();
        assert!(!ping(port));
        server.start_again();
        assert_eq!(server.port(), port);
        assert!(ping(port));
        server.restart();
        assert!(ping(port));
    }

    #[tokio::test]
    async fn a_test_connection_waits_out_a_reply_slower_than_half_a_second() {
        let server = RedisServer::start();
        let mut conn = connect(&server.url()).await.unwrap();
        let mut other = connect(&server.url()).await.unwrap();
        // CLIENT PAUSE holds every client's commands, as a slow fsync on a loaded runner does.
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(1_200)
            .arg("ALL")
            .query_async(&mut other)
            .await
            .unwrap();
        let started = Instant::now();
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .expect("a late reply is still a reply");
        assert_eq!(pong, "PONG");
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "the pause held it"
        );
    }
}
