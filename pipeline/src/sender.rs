//! One HTTP call to Interakt's send endpoint, turned into a [`SendOutcome`].
//!
//! It never decides what happens next ([`crate::retry`] does) and never touches Redis. It
//! reads at most [`MAX_ANSWER`] bytes of any answer's body: the rest is never read (the
//! connection is closed, not drained), so a proxy or an error page answering with huge
//! bodies cannot make a replica's memory grow with them.
//!
//! The client is hyper's own (`hyper_util`'s pooled client over `hyper_rustls`, the
//! connector reqwest builds on), used directly: reqwest's layers around it (a redirect
//! follower that parses the URL again on every response, a boxed body, its timeouts) cost
//! about as much CPU per request as the request itself, and the worker sends one request
//! per job to one URL and never follows a redirect.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use herald_shared::Redacted;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_platform_verifier::BuilderVerifierExt;
use tokio::time::Instant;

use crate::retry::{Refusal, SendOutcome, trim_body};

/// The content type of every request.
const JSON: HeaderValue = HeaderValue::from_static("application/json");
/// Who is calling, in every request.
const AGENT: HeaderValue = HeaderValue::from_static(concat!("herald/", env!("CARGO_PKG_VERSION")));
/// Connections kept open to Interakt between sends; more than any `--concurrency` in use.
const MAX_IDLE: usize = 256;
/// An idle connection is closed after this long (reqwest's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// The most of an answer's body read (64 KiB; Interakt's answers are a few hundred bytes).
/// A 2xx whose body is longer is a permanent failure ([`Refusal::TooLarge`]); any other
/// status is classified on its first [`MAX_ANSWER`] bytes.
pub const MAX_ANSWER: usize = 64 * 1024;

/// A client for `POST {base}/rcs/message/`. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Sender {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// Parsed once: every send posts to the same URL.
    url: Uri,
    authorization: HeaderValue,
    /// Bounds the whole request, the answer's body included.
    timeout: Duration,
}

impl Sender {
    /// `timeout` bounds the whole request; a timeout is a transient failure. HTTPS is
    /// verified against the system's roots (as reqwest does), HTTP/2 is used when the
    /// server offers it.
    pub fn new(
        url: String,
        api_key: &Redacted<String>,
        timeout: Duration,
    ) -> Result<Sender, String> {
        let mut authorization = HeaderValue::from_str(&format!("Basic {}", api_key.expose()))
            .map_err(|_| {
                "INTERAKT_API_KEY contains characters not allowed in a header".to_string()
            })?;
        authorization.set_sensitive(true);
        let parsed: Uri = url.parse().map_err(|err| format!("{url:?}: {err}"))?;
        if parsed.host().is_none() || !matches!(parsed.scheme_str(), Some("http" | "https")) {
            return Err(format!("{url:?}: expected an http(s) URL with a host"));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_platform_verifier())
            .map_err(|err| format!("HTTPS client: {err}"))?
            .with_no_client_auth();
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(timeout.min(Duration::from_secs(5))));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(tcp);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(MAX_IDLE)
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            // What one HTTP/1 connection buffers from the socket at once (hyper's default is
            // about 400 KiB): no more than an answer is read.
            .http1_max_buf_size(MAX_ANSWER)
            .build(connector);
        Ok(Sender {
            http,
            url: parsed,
            authorization,
            timeout,
        })
    }

    /// The URL every send posts to.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// Posts `body`, a [`herald_shared::wire::SendRequest`] serialized as JSON.
    pub async fn send(&self, body: Vec<u8>) -> SendOutcome {
        // Not a deadline (`now + timeout`, which a timeout of billions of years overflows):
        // tokio's `timeout` takes any duration, and the body gets what the answer left.
        let started = Instant::now();
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.url.clone();
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, self.authorization.clone());
        headers.insert(CONTENT_TYPE, JSON);
        headers.insert(USER_AGENT, AGENT);
        let response = match tokio::time::timeout(self.timeout, self.http.request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => return self.transport_failure(&err),
            Err(_) => return unanswered(self.timeout_error()),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let lost = |error: String| {
            if (200..300).contains(&status) {
                // The status arrived but the body did not: the message may be queued.
                SendOutcome::Permanent {
                    status,
                    refusal: Refusal::BodyLost { error },
                    body: String::new(),
                }
            } else {
                unanswered(error)
            }
        };
        let left = self.timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, read_at_most(response.into_body(), MAX_ANSWER)).await {
            Ok(Ok(Answer::Whole(body))) => {
                SendOutcome::from_response(status, retry_after, &String::from_utf8_lossy(&body))
            }
            Ok(Ok(Answer::Cut(start))) if (200..300).contains(&status) => {
                // Not Interakt's answer, and maybe queued all the same: not retried.
                SendOutcome::Permanent {
                    status,
                    refusal: Refusal::TooLarge { limit: MAX_ANSWER },
                    body: trim_body(&String::from_utf8_lossy(&start)),
                }
            }
            Ok(Ok(Answer::Cut(start))) => {
                SendOutcome::from_response(status, retry_after, &String::from_utf8_lossy(&start))
            }
            Ok(Err(err)) => lost(format!("request failed: {}: {}", self.url, chain(&err))),
            Err(_) => lost(self.timeout_error()),
        }
    }

    fn transport_failure(&self, err: &hyper_util::client::legacy::Error) -> SendOutcome {
        let kind = if err.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        // The URL and the error chain, never headers: the API key stays out.
        unanswered(format!("{kind}: {}: {}", self.url, chain(err)))
    }

    fn timeout_error(&self) -> String {
        format!(
            "timeout: {}: no complete answer within {:?} (--request-timeout)",
            self.url, self.timeout
        )
    }
}

/// An answer's body, read up to a limit.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// All of it (at most the limit).
    Whole(Vec<u8>),
    /// Longer than the limit: its first `limit` bytes. The rest was never read.
    Cut(Vec<u8>),
}

/// Reads `body` until its end or until it is longer than `limit`, then drops it: hyper
/// closes a connection whose body was dropped before its end instead of reading the rest
/// (HTTP/2 resets the stream), so nothing beyond the limit is ever buffered.
async fn read_at_most<B>(mut body: B, limit: usize) -> Result<Answer, B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    let expected = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    let mut read = Vec::with_capacity(expected.min(limit));
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers: nothing to classify
        };
        if read.len() + data.len() > limit {
            read.extend_from_slice(&data[..limit - read.len()]);
            return Ok(Answer::Cut(read));
        }
        read.extend_from_slice(&data);
    }
    Ok(Answer::Whole(read))
}

/// A send that got no complete answer to classify: transient, retried.
fn unanswered(error: String) -> SendOutcome {
    SendOutcome::Transient {
        status: None,
        error,
        body: trim_body(""),
    }
}

/// An error and its sources, `: `-separated (hyper's own message alone says only
/// "client error (Connect)").
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Retry-After` as seconds (`120`); the HTTP-date form is rare for APIs and ignored.
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 10 "), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    const KEY: &str = "c2VjcmV0LWtleQ==";

    fn sender(addr: std::net::SocketAddr, timeout: Duration) -> Sender {
        let key = Redacted::new(KEY.to_string());
        Sender::new(
            format!("http://{addr}/v1/public/rcs/message/"),
            &key,
            timeout,
        )
        .unwrap()
    }

    /// What the loopback server does once it has written its answer.
    enum Then {
        /// Keeps the connection open until the client closes it.
        HoldOpen,
        /// Closes it at once (a body shorter than its length is then cut short).
        Close,
    }

    /// A server on loopback that reads one request (head and body), writes `answer`, then
    /// does `then`; the request it read.
    async fn serve_once(
        answer: impl AsRef<[u8]> + Send + 'static,
        then: Then,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let request = read_request(&mut socket).await;
            socket.write_all(answer.as_ref()).await.unwrap();
            if let Then::HoldOpen = then {
                let _ = socket.read(&mut [0u8; 64]).await;
            }
            request
        });
        (addr, served)
    }

    /// Reads one request, head and body, from `socket`.
    async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    return text;
                }
            }
            assert!(n > 0, "the client closed before its request was complete");
        }
    }

    /// 200 MiB: the answers of a proxy or an error page gone wrong.
    const HUGE: u64 = 200 << 20;

    /// A server on loopback that answers one request with `status_line` and `headers`
    /// (each ending in CRLF) and a body of [`HUGE`] bytes, written until the client stops
    /// reading; how many bytes of the body it wrote before the client closed the connection
    /// (all of them if it never did).
    async fn serve_huge(
        status_line: &'static str,
        headers: &'static str,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<u64>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            read_request(&mut socket).await;
            let head = format!("{status_line}{headers}content-length: {HUGE}\r\n\r\n");
            socket.write_all(head.as_bytes()).await.unwrap();
            let chunk = vec![b' '; 64 * 1024];
            let mut written = 0;
            while written < HUGE {
                if socket.write_all(&chunk).await.is_err() {
                    break;
                }
                written += chunk.len() as u64;
            }
            written
        });
        (addr, served)
    }

    /// A 200 with Interakt's answer padded to exactly `length` bytes of body.
    fn padded_answer(length: usize) -> Vec<u8> {
        let (open, close) = (r#"{"result":true,"id":"m-1","message":""#, r#""}"#);
        let padding = "x".repeat(length - open.len() - close.len());
        format!("HTTP/1.1 200 OK\r\ncontent-length: {length}\r\n\r\n{open}{padding}{close}")
            .into_bytes()
    }

    /// The outcome of a send answered with `status_line`, `headers` and a body of [`HUGE`]
    /// bytes, once checked that the body was read no further than its first [`MAX_ANSWER`]
    /// bytes: the client closed the connection after them (never drained it), so the server
    /// could write no more than what the sockets' buffers hold.
    async fn send_for_huge_answer(status_line: &'static str, headers: &'static str) -> SendOutcome {
        let (addr, served) = serve_huge(status_line, headers).await;
        let outcome = sender(addr, Duration::from_secs(30))
            .send(b"{}".to_vec())
            .await;
        let written = served.await.unwrap();
        assert!(
            written < 32 << 20,
            "the server wrote {written} of {HUGE} bytes before the client closed: the body was read on"
        );
        outcome
    }

    #[tokio::test]
    async fn a_2xx_body_of_exactly_the_limit_is_read_and_one_byte_more_is_a_permanent_failure() {
        let (addr, _served) = serve_once(padded_answer(MAX_ANSWER), Then::HoldOpen).await;
        let outcome = sender(addr, Duration::from_secs(5))
            .send(b"{}".to_vec())
            .await;
        assert_eq!(
            outcome,
            SendOutcome::Sent {
                message_id: Some("m-1".into())
            }
        );

        let (addr, _served) = serve_once(padded_answer(MAX_ANSWER + 1), Then::HoldOpen).await;
        let outcome = sender(addr, Duration::from_secs(5))
            .send(b"{}".to_vec())
            .await;
        let SendOutcome::Permanent {
            status: 200,
            refusal: Refusal::TooLarge { limit: MAX_ANSWER },
            body,
        } = &outcome
        else {
            panic!("expected a 2xx too large to read, got {outcome:?}");
        };
        assert!(body.starts_with(r#"{"result":true,"id":"m-1""#), "{body}");
        let policy = crate::retry::RetryPolicy {
            max_attempts: 3,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(10),
            max_cooldown: Duration::from_secs(30),
        };
        let crate::retry::Verdict::Dead { reason } =
            crate::retry::decide(&outcome, 0, 0, &policy, 0.5)
        else {
            panic!("a 2xx too large to read is dead-lettered at once");
        };
        assert_eq!(
            reason.to_string(),
            "permanent: success body longer than 65536 bytes, the most read of an answer"
        );
    }

    #[tokio::test]
    async fn a_huge_2xx_body_is_cut_at_the_limit_and_its_connection_closed() {
        let outcome = send_for_huge_answer("HTTP/1.1 200 OK\r\n", "").await;
        assert!(
            matches!(
                outcome,
                SendOutcome::Permanent {
                    status: 200,
                    refusal: Refusal::TooLarge { .. },
                    ..
                }
            ),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_503_with_a_huge_body_is_still_transient() {
        let outcome = send_for_huge_answer("HTTP/1.1 503 Service Unavailable\r\n", "").await;
        let SendOutcome::Transient {
            status: Some(503),
            error,
            body,
        } = &outcome
        else {
            panic!("expected a transient 503, got {outcome:?}");
        };
        assert_eq!(error, "HTTP 503");
        assert_eq!(
            body.chars().count(),
            crate::retry::BODY_LIMIT + 1,
            "trimmed"
        );
    }

    #[tokio::test]
    async fn a_429_with_a_huge_body_still_reads_retry_after() {
        let outcome =
            send_for_huge_answer("HTTP/1.1 429 Too Many Requests\r\n", "retry-after: 7\r\n").await;
        assert!(
            matches!(outcome, SendOutcome::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_send_posts_the_body_with_its_headers_and_reads_interakts_answer() {
        let (addr, served) = serve_once(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 42\r\n\r\n{\"result\":true,\"id\":\"m-1\",\"message\":\"ok\"}\n",
            Then::HoldOpen,
        )
        .await;
        let outcome = sender(addr, Duration::from_secs(5))
            .send(br#"{"phoneNumber":"9000000001"}"#.to_vec())
            .await;
        assert_eq!(
            outcome,
            SendOutcome::Sent {
                message_id: Some("m-1".into())
            }
        );
        let request = served.await.unwrap();
        assert!(
            request.starts_with("POST /v1/public/rcs/message/ HTTP/1.1\r\n"),
            "{request}"
        );
        for header in [
            format!("host: {addr}"),
            format!("authorization: Basic {KEY}"),
            "content-type: application/json".into(),
            concat!("user-agent: herald/", env!("CARGO_PKG_VERSION")).into(),
        ] {
            assert!(
                request.contains(&header),
                "{header:?} missing from {request}"
            );
        }
        assert!(
            request.ends_with(r#"{"phoneNumber":"9000000001"}"#),
            "{request}"
        );
    }

    #[tokio::test]
    async fn a_429s_retry_after_is_read() {
        let (addr, _served) = serve_once(
            b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ncontent-length: 2\r\n\r\n{}",
            Then::HoldOpen,
        )
        .await;
        let outcome = sender(addr, Duration::from_secs(5))
            .send(b"{}".to_vec())
            .await;
        assert!(
            matches!(outcome, SendOutcome::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_a_transient_connection_failure_that_names_the_url_not_the_key() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let outcome = sender(addr, Duration::from_secs(5))
            .send(b"{}".to_vec())
            .await;
        let error = transient_error(&outcome);
        assert!(error.starts_with("connection failed: http://"), "{error}");
        assert!(error.contains(&addr.to_string()), "{error}");
        assert!(!error.contains(KEY), "{error}");
        assert!(!format!("{outcome:?}").contains(KEY));
    }

    /// No answer at all, then a status whose body never comes: both bounded by the one
    /// timeout; the first is retried, the second (a 200, so maybe queued) is not.
    #[tokio::test]
    async fn the_timeout_bounds_the_answer_and_its_body() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _silent = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                held.push(socket);
            }
        });
        let started = Instant::now();
        let outcome = sender(addr, Duration::from_millis(300))
            .send(b"{}".to_vec())
            .await;
        assert!(started.elapsed() >= Duration::from_millis(300));
        let error = transient_error(&outcome);
        assert!(error.starts_with("timeout: "), "{error}");

        let (addr, _served) = serve_once(CUT_SHORT, Then::HoldOpen).await;
        let outcome = sender(addr, Duration::from_millis(300))
            .send(b"{}".to_vec())
            .await;
        assert!(body_lost(&outcome).starts_with("timeout: "), "{outcome:?}");
    }

    #[tokio::test]
    async fn a_body_cut_short_after_a_200_is_lost_not_retried() {
        let (addr, _served) = serve_once(CUT_SHORT, Then::Close).await;
        let outcome = sender(addr, Duration::from_secs(5))
            .send(b"{}".to_vec())
            .await;
        assert!(
            body_lost(&outcome).starts_with("request failed: "),
            "{outcome:?}"
        );
    }

    /// A 200 whose body stops 90 bytes short of its length.
    const CUT_SHORT: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"result\":";

    /// The error of a send that failed before any status arrived (retried).
    fn transient_error(outcome: &SendOutcome) -> &str {
        match outcome {
            SendOutcome::Transient {
                status: None,
                error,
                ..
            } => error,
            other => panic!("expected a transient failure without a status, got {other:?}"),
        }
    }

    /// The error of a 200 whose body was lost (never retried: the message may be queued).
    fn body_lost(outcome: &SendOutcome) -> &str {
        match outcome {
            SendOutcome::Permanent {
                status: 200,
                refusal: Refusal::BodyLost { error },
                ..
            } => error,
            other => panic!("expected a lost body, got {other:?}"),
        }
    }

    /// A timeout no clock can add (`--request-timeout` of billions of years) is no bound at
    /// all, never a panic in every send.
    #[tokio::test]
    async fn a_timeout_too_far_to_reach_does_not_panic_the_send() {
        let (addr, _served) = serve_once(
            b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{\"result\":true}",
            Then::HoldOpen,
        )
        .await;
        let outcome = sender(addr, Duration::MAX).send(b"{}".to_vec()).await;
        assert_eq!(outcome, SendOutcome::Sent { message_id: None });
    }

    /// The server's certificate is signed by a CA no system trusts: the handshake fails, so
    /// nothing is sent, and the failure says why.
    #[tokio::test]
    async fn https_refuses_a_server_whose_certificate_no_trusted_root_signed() {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = herald_tests::tls::TestCerts::generate();
        let chain = CertificateDer::pem_file_iter(certs.server_cert())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(certs.server_key()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handshake = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            acceptor.accept(socket).await.map(|_| ())
        });
        let key = Redacted::new(KEY.to_string());
        let url = format!("https://localhost:{}/v1/public/rcs/message/", addr.port());
        let outcome = Sender::new(url, &key, Duration::from_secs(5))
            .unwrap()
            .send(b"{}".to_vec())
            .await;
        let error = transient_error(&outcome);
        assert!(
            error.starts_with("connection failed: https://localhost:"),
            "{error}"
        );
        assert!(error.contains("certificate"), "{error}");
        assert!(
            handshake.await.unwrap().is_err(),
            "the client refused the handshake"
        );
    }

    #[test]
    fn a_url_without_a_host_is_refused() {
        let key = Redacted::new(KEY.to_string());
        let err = Sender::new("/rcs/message/".into(), &key, Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(err.contains("\"/rcs/message/\""), "{err}");
    }
}
