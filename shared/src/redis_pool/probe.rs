//! Why a new connection closed as soon as it opened. Redis at `maxclients` writes
//! `-ERR max number of clients reached` to a connection it will not serve and closes it;
//! redis-rs, which writes its first commands before it reads, reports only `broken pipe` or
//! `connection reset`. [`explain_closed`] then opens one plain TCP connection, writes nothing,
//! and reads what the server says, so the error names the refusal.
//!
//! Only for plain TCP: over TLS the reply comes after a handshake this probe does not make
//! (the error stays `unreachable`, and its text says the connection was closed as it
//! opened). It never retries and never logs.

use std::time::Duration;

use deadpool_redis::redis::{ConnectionAddr, RedisError, make_extension_error};
use tokio::io::AsyncReadExt;

/// How long the probe may take in all: connecting, then waiting for the server's words.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// `err` itself, or, when it is a connection closed as it opened and the server at `addr`
/// explains why to a fresh connection, the server's error reply (`ERR max number of
/// clients reached`).
pub(super) async fn explain_closed(err: RedisError, addr: &ConnectionAddr) -> RedisError {
    if !closed_as_it_opened(&err) {
        return err;
    }
    let ConnectionAddr::Tcp(host, port) = addr else {
        return err;
    };
    match tokio::time::timeout(PROBE_TIMEOUT, greeting(host, *port)).await {
        Ok(Some(reply)) => reply,
        _ => err,
    }
}

/// A dropped connection that was not refused: the server accepted it, then closed it.
fn closed_as_it_opened(err: &RedisError) -> bool {
    err.is_connection_dropped() && !err.is_connection_refusal() && err.code().is_none()
}

/// What the server writes first to a connection nobody has written to: an error reply
/// when it refuses the connection, nothing when it would serve it.
async fn greeting(host: &str, port: u16) -> Option<RedisError> {
    let mut stream = tokio::net::TcpStream::connect((host, port)).await.ok()?;
    let mut buf = [0u8; 256];
    let n = stream.read(&mut buf).await.ok()?;
    error_reply(&buf[..n])
}

/// An error reply (`-CODE detail\r\n`) as a [`RedisError`] with that code and detail.
fn error_reply(bytes: &[u8]) -> Option<RedisError> {
    let line = std::str::from_utf8(bytes.strip_prefix(b"-")?).ok()?;
    let line = line.split("\r\n").next()?.trim();
    let (code, detail) = line.split_once(' ').unwrap_or((line, ""));
    (!code.is_empty()).then(|| make_extension_error(code.into(), Some(detail.into())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis_pool::RedisErrorKind;

    #[test]
    fn the_refusal_redis_writes_is_read_as_its_error() {
        let err = error_reply(b"-ERR max number of clients reached\r\n").unwrap();
        assert_eq!(err.code(), Some("ERR"));
        assert_eq!(RedisErrorKind::of(&err), RedisErrorKind::MaxClients);
        assert!(error_reply(b"+OK\r\n").is_none());
        assert!(error_reply(b"").is_none());
    }

    /// A listener that writes Redis's refusal and closes, as Redis at `maxclients` does.
    #[tokio::test]
    async fn a_connection_closed_as_it_opened_is_explained_by_what_the_server_says() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let _ = socket
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
            }
        });
        let addr = ConnectionAddr::Tcp("127.0.0.1".into(), port);
        let broken = RedisError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        let explained = explain_closed(broken, &addr).await;
        assert_eq!(RedisErrorKind::of(&explained), RedisErrorKind::MaxClients);

        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let kept = explain_closed(refused, &addr).await;
        assert!(kept.is_connection_refusal(), "a refusal is not probed");
    }
}
