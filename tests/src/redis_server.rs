//! A throwaway `redis-server` for one test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer PING after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// A `redis-server` child process with its data in a temporary directory.
///
/// AOF is on with `appendfsync always`, so a stop/start (or a `kill -9`) keeps every write
/// that was acknowledged; `maxmemory-policy noeviction`, as a queue needs. Dropping it kills
/// the process and removes the directory.
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Arguments added to every start (e.g. cluster mode).
    extra_args: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    ///
    /// Panics with the install command when `redis-server` is not on PATH.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts a server with `extra_args` added to its command line (kept for restarts).
    pub fn start_with(extra_args: &[&str]) -> RedisServer {
        let extra_args: Vec<String> = extra_args.iter().map(|a| a.to_string()).collect();
        let mut dir = tempfile::tempdir().expect("create a temp dir for redis-server");
        // A free port can be taken between our probe and redis-server's bind; retry.
        for _ in 0..5 {
            let port = free_port();
            let mut server = RedisServer {
                port,
                dir,
                child: None,
                extra_args: extra_args.clone(),
            };
            if server.spawn() {
                return server;
            }
            dir = server.into_dir();
        }
        panic!("redis-server did not start after 5 attempts; see its log above");
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
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
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    /// Starts a server that was stopped or killed (same port and data).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "redis-server is still running");
        assert!(
            self.spawn(),
            "redis-server did not start again on port {}",
            self.port
        );
    }

    fn into_dir(mut self) -> tempfile::TempDir {
        self.kill();
        let dir = tempfile::tempdir().expect("create a temp dir");
        std::mem::replace(&mut self.dir, dir)
    }

    /// Spawns redis-server and waits for PING; false when it exited (port taken).
    fn spawn(&mut self) -> bool {
        let log = self.dir.path().join("redis.log");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
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
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not on PATH; the tests start their own. Install it: \
                 sudo apt-get install -y redis-server"
            ),
            Err(err) => panic!("could not run redis-server: {err}"),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                eprintln!(
                    "redis-server on port {} exited ({status}):\n{log}",
                    self.port
                );
                return false;
            }
            if ping(self.port) {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        panic!(
            "redis-server on port {} did not answer PING within {READY_TIMEOUT:?}",
            self.port
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

/// True when a server on `port` answers PING with PONG (and is done loading its AOF).
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
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
}
