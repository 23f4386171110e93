//! One HTTP call to Interakt's send endpoint, turned into a [`SendOutcome`].
//!
//! It never decides what happens next ([`crate::retry`] does) and never touches Redis.

use std::time::Duration;

use herald_shared::Redacted;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use crate::retry::{Refusal, SendOutcome, trim_body};

/// The content type of every request: what `reqwest`'s `.json()` would set.
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A client for `POST {base}/rcs/message/`. Cheap to clone (reqwest's pool is shared).
#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    /// Parsed once: every send posts to the same URL.
    url: reqwest::Url,
    authorization: HeaderValue,
}

impl Sender {
    /// `timeout` bounds the whole request; a timeout is a transient failure.
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
        let url = reqwest::Url::parse(&url).map_err(|err| format!("{url:?}: {err}"))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(256)
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("HTTP client: {err}"))?;
        Ok(Sender {
            http,
            url,
            authorization,
        })
    }

    /// Posts `body`, a [`herald_shared::wire::SendRequest`] serialized as JSON.
    pub async fn send(&self, body: Vec<u8>) -> SendOutcome {
        let response = self
            .http
            .post(self.url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, JSON)
            .body(body)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(err) => return transport_failure(&err),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        match response.text().await {
            Ok(body) => SendOutcome::from_response(status, retry_after, &body),
            // The status arrived but the body did not: for a 2xx the message may be queued.
            Err(err) if (200..300).contains(&status) => SendOutcome::Permanent {
                status,
                refusal: Refusal::BodyLost {
                    error: err.to_string(),
                },
                body: String::new(),
            },
            Err(err) => transport_failure(&err),
        }
    }
}

fn transport_failure(err: &reqwest::Error) -> SendOutcome {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // reqwest's Display names the URL, never headers: the API key stays out.
    SendOutcome::Transient {
        status: None,
        error: format!("{kind}: {err}"),
        body: trim_body(""),
    }
}

/// `Retry-After` as seconds (`120`); the HTTP-date form is rare for APIs and ignored.
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 10 "), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
