//! A fault-injecting TCP proxy for tests: it listens on a free loopback port and forwards
//! every connection to one upstream (a test's `redis-server`, or the sandbox standing in for
//! Interakt), and on command drops every connection, stalls (stops forwarding bytes while
//! keeping connections open: a network that went silent), refuses new connections, delays
//! each new connection to the upstream (a slow DNS, TCP or TLS handshake: the client's
//! bytes wait in the proxy until it is up), sends new connections to another upstream (the
//! address now answers with something else: a misconfigured load balancer's error pages),
//! and resumes.
//!
//! It owns only its listener and the connections it accepted. It never parses what it
//! forwards, never retries the upstream (a client that cannot reach it sees its connection
//! closed, as a refused connection would), and never outlives its handle: dropping the
//! [`TcpProxy`] aborts the accept loop and with it every connection. It is bounded: at most
//! [`MAX_CONNECTIONS`] connections at once (later ones are closed at once), one fixed buffer
//! per direction, and a stall that ends by itself after the time it was given.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// The most connections forwarded at once; more are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 256;
/// Bytes read from one side before they are written to the other.
const BUFFER: usize = 16 * 1024;

/// What the proxy does with bytes and connections right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Forward,
    /// Accept connections and keep them open, forward nothing: the network went silent.
    /// Clients see their commands time out, not fail.
    Stall,
    /// Close new connections as soon as they are accepted (open ones were dropped when
    /// this mode began): the server looks down.
    Refuse,
}

/// The shared switch: the mode, and an epoch that [`TcpProxy::drop_connections`] bumps;
/// every connection closes once the epoch it was accepted in is over.
#[derive(Clone, Copy, Debug)]
struct Switch {
    mode: Mode,
    epoch: u64,
    /// Bumped by every stall, so the timer of an earlier stall cannot end a later one.
    stall: u64,
    /// How long each new connection waits before the proxy connects it upstream.
    connect_delay: Duration,
    /// Where new connections go.
    upstream: SocketAddr,
}

/// A running proxy. Created by [`TcpProxy::start`]; the test holds it. Dropping it stops
/// the accept loop and closes every connection it forwards.
pub struct TcpProxy {
    addr: SocketAddr,
    /// Sender side of the switch; the accept loop and each connection hold receivers.
    switch: watch::Sender<Switch>,
    /// The accept loop; it owns the connections' tasks (a `JoinSet`), so aborting it, as
    /// `Drop` does, aborts them too.
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards to `upstream` (e.g. `127.0.0.1:6379`).
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy on a loopback port");
        let addr = listener.local_addr().expect("the proxy's address");
        let (switch, _) = watch::channel(Switch {
            mode: Mode::Forward,
            epoch: 0,
            stall: 0,
            connect_delay: Duration::ZERO,
            upstream,
        });
        let accept = tokio::spawn(accept_loop(listener, switch.subscribe()));
        TcpProxy {
            addr,
            switch,
            accept,
        }
    }

    /// A proxy in front of the Redis at `redis://127.0.0.1:PORT`.
    pub async fn for_redis_port(port: u16) -> TcpProxy {
        TcpProxy::start(SocketAddr::from(([127, 0, 0, 1], port))).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where new connections go now.
    pub fn upstream(&self) -> SocketAddr {
        self.switch.borrow().upstream
    }

    /// From now on, new connections go to `upstream`; open ones stay where they are.
    pub fn redirect(&self, upstream: SocketAddr) {
        self.switch.send_modify(|s| s.upstream = upstream);
    }

    /// A proxy in front of an HTTP server at `base_url` (`http://127.0.0.1:PORT/...`).
    pub async fn for_http(base_url: &str) -> TcpProxy {
        TcpProxy::start(http_addr(base_url)).await
    }

    /// `redis://127.0.0.1:PORT` of the proxy: what a worker's `REDIS_URL` takes.
    pub fn redis_url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// `base_url` (an URL of the upstream) with the proxy's address instead: what a worker's
    /// `INTERAKT_BASE_URL` takes to reach the sandbox through the proxy.
    pub fn http_url(&self, base_url: &str) -> String {
        let path = base_url
            .strip_prefix("http://")
            .and_then(|rest| rest.find('/').map(|at| &rest[at..]))
            .unwrap_or("");
        format!("http://{}{path}", self.addr)
    }

    /// From now on, each new connection is connected upstream only after `delay` (its
    /// client's bytes wait in the proxy meanwhile); open connections are not affected.
    pub fn delay_connects(&self, delay: Duration) {
        self.switch.send_modify(|s| s.connect_delay = delay);
    }

    pub fn mode(&self) -> Mode {
        self.switch.borrow().mode
    }

    /// Closes every open connection; new ones are forwarded as before.
    pub fn drop_connections(&self) {
        self.switch.send_modify(|s| s.epoch += 1);
    }

    /// Stops forwarding for `duration` (then forwards again by itself), keeping connections
    /// open; [`TcpProxy::resume`] ends it sooner.
    pub fn stall(&self, duration: Duration) {
        let mut stall = 0;
        self.switch.send_modify(|s| {
            s.mode = Mode::Stall;
            s.stall += 1;
            stall = s.stall;
        });
        let switch = self.switch.clone();
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            switch.send_if_modified(|s| {
                let mine = s.mode == Mode::Stall && s.stall == stall;
                if mine {
                    s.mode = Mode::Forward;
                }
                mine
            });
        });
    }

    /// Drops every connection and refuses new ones until [`TcpProxy::resume`].
    pub fn refuse(&self) {
        self.switch.send_modify(|s| {
            s.mode = Mode::Refuse;
            s.epoch += 1;
        });
    }

    /// Forwards again.
    pub fn resume(&self) {
        self.switch.send_modify(|s| s.mode = Mode::Forward);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The address of `http://HOST:PORT/...` (a loopback server of a test).
pub fn http_addr(base_url: &str) -> SocketAddr {
    base_url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|authority| authority.parse().ok())
        .unwrap_or_else(|| panic!("{base_url:?}: expected http://IP:PORT/..."))
}

async fn accept_loop(listener: TcpListener, switch: watch::Receiver<Switch>) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = listener.accept().await;
        while connections.try_join_next().is_some() {}
        let Ok((client, _)) = accepted else {
            continue;
        };
        let now = *switch.borrow();
        if now.mode == Mode::Refuse || connections.len() >= MAX_CONNECTIONS {
            drop(client);
            continue;
        }
        connections.spawn(forward(client, now.upstream, switch.clone(), now.epoch));
    }
}

/// One connection: connects upstream, then copies both ways until either side closes or the
/// epoch ends.
async fn forward(
    client: TcpStream,
    upstream: SocketAddr,
    switch: watch::Receiver<Switch>,
    epoch: u64,
) {
    let _ = client.set_nodelay(true);
    let delay = switch.borrow().connect_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        _ = pipe(client_read, server_write, switch.clone(), epoch) => {}
        _ = pipe(server_read, client_write, switch, epoch) => {}
    }
}

/// Why a pipe stopped: the connection is over either way.
struct Closed;

/// Copies one direction, holding bytes back while stalled.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut switch: watch::Receiver<Switch>,
    epoch: u64,
) -> Closed {
    let mut buf = vec![0u8; BUFFER];
    loop {
        if forwarding(&mut switch, epoch).await.is_err() {
            return Closed;
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return Closed,
                Ok(n) => n,
            },
            changed = switch.changed() => {
                if changed.is_err() {
                    return Closed;
                }
                continue;
            }
        };
        // Bytes read just as a stall began are held until it ends.
        if forwarding(&mut switch, epoch).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return Closed;
        }
    }
}

/// Waits while the proxy is stalled; an error once the connection's epoch is over (or the
/// proxy is gone).
async fn forwarding(switch: &mut watch::Receiver<Switch>, epoch: u64) -> Result<(), Closed> {
    loop {
        let now = *switch.borrow_and_update();
        if now.epoch != epoch {
            return Err(Closed);
        }
        if now.mode == Mode::Forward {
            return Ok(());
        }
        if switch.changed().await.is_err() {
            return Err(Closed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that echoes every byte back.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = socket.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
        stream.write_all(b"ping").await.ok()?;
        let mut buf = [0u8; 4];
        match tokio::time::timeout(within, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => Some(buf.to_vec()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn forwards_stalls_resumes_drops_and_refuses() {
        let proxy = TcpProxy::start(echo_server().await).await;
        let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
        let second = Duration::from_secs(1);
        assert_eq!(
            round_trip(&mut a, second).await.as_deref(),
            Some(&b"ping"[..])
        );

        proxy.stall(Duration::from_secs(60));
        assert_eq!(proxy.mode(), Mode::Stall);
        assert_eq!(
            round_trip(&mut a, Duration::from_millis(200)).await,
            None,
            "stalled"
        );
        proxy.resume();
        let mut held = [0u8; 4];
        a.read_exact(&mut held).await.unwrap();
        assert_eq!(
            &held, b"ping",
            "bytes held during the stall arrive after it"
        );

        proxy.stall(Duration::from_millis(100));
        assert_eq!(
            round_trip(&mut a, second).await.as_deref(),
            Some(&b"ping"[..]),
            "a stall ends by itself"
        );

        proxy.drop_connections();
        let mut buf = [0u8; 1];
        assert!(matches!(a.read(&mut buf).await, Ok(0) | Err(_)), "dropped");
        let mut b = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(
            round_trip(&mut b, second).await.is_some(),
            "new ones go through"
        );

        proxy.refuse();
        assert!(matches!(b.read(&mut buf).await, Ok(0) | Err(_)), "dropped");
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(
            round_trip(&mut c, Duration::from_millis(500)).await,
            None,
            "refused"
        );
        proxy.resume();
        let mut d = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(round_trip(&mut d, second).await.is_some(), "resumed");

        drop(proxy);
        tokio::task::yield_now().await;
        assert!(
            round_trip(&mut d, Duration::from_millis(500))
                .await
                .is_none(),
            "dropping the proxy closes its connections"
        );
    }

    #[tokio::test]
    async fn delays_new_connections_upstream_and_not_open_ones() {
        let proxy = TcpProxy::start(echo_server().await).await;
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(
            round_trip(&mut open, Duration::from_secs(1))
                .await
                .is_some()
        );

        let delay = Duration::from_millis(300);
        proxy.delay_connects(delay);
        let started = tokio::time::Instant::now();
        let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(round_trip(&mut new, Duration::from_secs(5)).await.is_some());
        assert!(
            started.elapsed() >= delay,
            "a new connection waits for its upstream: {:?}",
            started.elapsed()
        );
        let started = tokio::time::Instant::now();
        assert!(
            round_trip(&mut open, Duration::from_secs(1))
                .await
                .is_some()
        );
        assert!(
            started.elapsed() < delay,
            "an open one does not: {:?}",
            started.elapsed()
        );
        assert_eq!(
            proxy.http_url("http://127.0.0.1:1/v1/public"),
            format!("http://{}/v1/public", proxy.addr())
        );
    }

    /// An upstream that answers every 4 bytes with `tag`.
    async fn tagged_server(tag: &'static [u8; 4]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4];
                    while socket.read_exact(&mut buf).await.is_ok() {
                        if socket.write_all(tag).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn sends_new_connections_to_another_upstream() {
        let (first, second) = (tagged_server(b"one!").await, tagged_server(b"two!").await);
        let proxy = TcpProxy::start(first).await;
        let second_ = Duration::from_secs(1);
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(
            round_trip(&mut open, second_).await.as_deref(),
            Some(&b"one!"[..])
        );
        proxy.redirect(second);
        assert_eq!(proxy.upstream(), second);
        let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(
            round_trip(&mut new, second_).await.as_deref(),
            Some(&b"two!"[..])
        );
        assert_eq!(
            round_trip(&mut open, second_).await.as_deref(),
            Some(&b"one!"[..]),
            "an open connection stays with the first"
        );
        assert_eq!(
            http_addr("http://127.0.0.1:8089/v1/public"),
            ([127, 0, 0, 1], 8089).into()
        );
    }
}
