//! An Interakt gone wrong: a loopback HTTP/1.1 server that answers every request with a
//! huge body (a proxy's or an error page's), streamed until the client stops reading.
//!
//! It never reads what a request asks for (any path, any body): it only counts requests,
//! cycles through its statuses, and counts the bytes it managed to write.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What one write sends: a slice of a body of spaces (valid JSON whitespace, never JSON).
static CHUNK: [u8; 64 * 1024] = [b' '; 64 * 1024];

/// The server; dropping it stops it (and every connection it serves).
pub struct HugeAnswers {
    addr: SocketAddr,
    counts: Arc<Counts>,
    accept: JoinHandle<()>,
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    written: AtomicU64,
}

impl HugeAnswers {
    /// Answers request `i` (from 0, across connections) with `statuses[i % len]` and a body
    /// of `body_len` bytes (its `content-length`).
    pub async fn start(body_len: u64, statuses: &'static [u16]) -> HugeAnswers {
        assert!(!statuses.is_empty(), "at least one status");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the huge-answer server");
        let addr = listener.local_addr().expect("its address");
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        let accept = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((socket, _)) = listener.accept().await {
                let counts = shared.clone();
                connections.spawn(serve(socket, body_len, statuses, counts));
            }
        });
        HugeAnswers {
            addr,
            counts,
            accept,
        }
    }

    /// The base URL to give a worker (`INTERAKT_BASE_URL`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1/public", self.addr)
    }

    /// Requests answered (begun to be answered) so far.
    pub fn requests(&self) -> u64 {
        self.counts.requests.load(Ordering::Relaxed)
    }

    /// Body bytes written so far, over every connection.
    pub fn written(&self) -> u64 {
        self.counts.written.load(Ordering::Relaxed)
    }
}

impl Drop for HugeAnswers {
    fn drop(&mut self) {
        // The accept loop owns the connections' JoinSet: aborting it aborts them.
        self.accept.abort();
    }
}

/// Answers the requests of one connection until the client closes it.
async fn serve(mut socket: TcpStream, body_len: u64, statuses: &[u16], counts: Arc<Counts>) {
    let mut pending = Vec::new();
    while read_request(&mut socket, &mut pending).await {
        let i = counts.requests.fetch_add(1, Ordering::Relaxed);
        let status = statuses[(i % statuses.len() as u64) as usize];
        let head = format!(
            "HTTP/1.1 {status} Huge\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: {body_len}\r\n\r\n"
        );
        if socket.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let mut left = body_len;
        while left > 0 {
            let n = left.min(CHUNK.len() as u64) as usize;
            if socket.write_all(&CHUNK[..n]).await.is_err() {
                return;
            }
            counts.written.fetch_add(n as u64, Ordering::Relaxed);
            left -= n as u64;
        }
    }
}

/// Reads one request (head and `content-length` body) into `pending`, then drops it from
/// there; false once the client closed the connection.
async fn read_request(socket: &mut TcpStream, pending: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if pending.len() >= end + 4 + length {
                pending.drain(..end + 4 + length);
                return true;
            }
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}
