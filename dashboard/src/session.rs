//! Logins without server-side state: a token from `HERALD_DASHBOARD_TOKENS` is exchanged for
//! a session cookie that any replica of the dashboard can check, and every form carries a
//! CSRF token derived from that session.
//!
//! - The key: HMAC-SHA256 keyed by a digest of the namespace and the configured tokens'
//!   digests. Replicas configured alike share it; removing a token from the configuration
//!   changes it, which ends every session (a revoked token's included).
//! - The cookie, `herald_session=<expiry>.<nonce>.<mac>`: HttpOnly, SameSite=Strict, Path=/,
//!   Secure behind TLS; never holds the token.
//! - The CSRF token: a MAC of the cookie's value under the same key, so a page from
//!   another origin (which cannot read the cookie, and whose request SameSite=Strict keeps
//!   cookie-less anyway) cannot produce it. Compared in constant time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use herald_shared::tokens::Tokens;

/// The cookie's name.
pub const COOKIE: &str = "herald_session";
/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

type HmacSha256 = Hmac<Sha256>;

/// Makes and checks sessions for one configuration of tokens.
#[derive(Clone)]
pub struct Sessions {
    key: [u8; 32],
    ttl: Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sessions(ttl {:?})", self.ttl)
    }
}

/// A checked session: its cookie value, from which its CSRF token is derived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    value: String,
}

impl Sessions {
    pub fn new(namespace: &str, tokens: &Tokens, ttl: Duration) -> Sessions {
        let mut digests = tokens.digests().to_vec();
        digests.sort();
        let mut hash = Sha256::new();
        hash.update(b"herald-dashboard-session-v1\0");
        hash.update(namespace.as_bytes());
        for digest in digests {
            hash.update(digest);
        }
        Sessions {
            key: hash.finalize().into(),
            ttl,
        }
    }

    fn mac(&self, purpose: &str, data: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// A new session's cookie value, valid for the configured time from `now`.
    pub fn start(&self, now: SystemTime) -> Session {
        let expiry = unix(now) + self.ttl.as_secs();
        let nonce = hex(&rand::random::<[u8; 16]>());
        let payload = format!("{expiry}.{nonce}");
        let mac = self.mac("session", &payload);
        Session {
            value: format!("{payload}.{mac}"),
        }
    }

    /// The session a cookie value holds, if it is one of ours and not expired at `now`.
    pub fn check(&self, value: &str, now: SystemTime) -> Option<Session> {
        let (payload, mac) = value.rsplit_once('.')?;
        let (expiry, _nonce) = payload.split_once('.')?;
        let expected = self.mac("session", payload);
        if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
            return None;
        }
        (expiry.parse::<u64>().ok()? > unix(now)).then(|| Session {
            value: value.to_string(),
        })
    }

    /// The CSRF token of `session`, for its forms.
    pub fn csrf(&self, session: &Session) -> String {
        self.mac("csrf", &session.value)
    }

    /// True when `presented` is `session`'s CSRF token.
    pub fn csrf_ok(&self, session: &Session, presented: Option<&str>) -> bool {
        let Some(presented) = presented else {
            return false;
        };
        bool::from(self.csrf(session).as_bytes().ct_eq(presented.as_bytes()))
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

impl Session {
    pub fn cookie_value(&self) -> &str {
        &self.value
    }
}

/// The `Set-Cookie` value for `session` (`None`: the one that ends it).
pub fn set_cookie(session: Option<&Session>, ttl: Duration, secure: bool) -> String {
    let (value, max_age) = match session {
        Some(session) => (session.value.as_str(), ttl.as_secs()),
        None => ("", 0),
    };
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// The session cookie's value among a request's `Cookie` headers.
pub fn cookie_from<'a>(headers: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    headers
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

fn unix(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::Redacted;

    fn sessions(tokens: &str) -> Sessions {
        let tokens = Tokens::parse(&Redacted::new(tokens.to_string())).unwrap();
        Sessions::new("herald", &tokens, Duration::from_secs(60))
    }

    #[test]
    fn a_session_is_checked_by_any_replica_alike_and_expires() {
        let now = SystemTime::now();
        let session = sessions("a,b").start(now);
        // Another replica with the same tokens, in another order.
        assert_eq!(
            sessions("b,a").check(session.cookie_value(), now),
            Some(session.clone())
        );
        assert_eq!(
            sessions("a,b").check(session.cookie_value(), now + Duration::from_secs(61)),
            None,
            "expired"
        );
        assert_eq!(
            sessions("a").check(session.cookie_value(), now),
            None,
            "a token removed ends every session"
        );
        let mut forged = session.cookie_value().to_string();
        forged.replace_range(0..1, "9");
        assert_eq!(sessions("a,b").check(&forged, now), None);
        assert_eq!(sessions("a,b").check("garbage", now), None);
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let s = sessions("a");
        let now = SystemTime::now();
        let (one, two) = (s.start(now), s.start(now));
        let token = s.csrf(&one);
        assert!(s.csrf_ok(&one, Some(&token)));
        assert!(!s.csrf_ok(&two, Some(&token)), "another session's token");
        assert!(!s.csrf_ok(&one, None));
        assert!(!s.csrf_ok(&one, Some("")));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_behind_tls() {
        let session = sessions("a").start(SystemTime::now());
        let cookie = set_cookie(Some(&session), Duration::from_secs(60), true);
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
            "Max-Age=60",
        ] {
            assert!(cookie.contains(part), "{part} in {cookie}");
        }
        assert!(!set_cookie(Some(&session), Duration::from_secs(60), false).contains("Secure"));
        assert!(set_cookie(None, Duration::ZERO, false).contains("Max-Age=0"));
        let header = format!("theme=dark; {COOKIE}={}", session.cookie_value());
        assert_eq!(
            cookie_from([header.as_str()].into_iter()),
            Some(session.cookie_value())
        );
    }
}
