//! Logins: a token from `HERALD_DASHBOARD_TOKENS` is exchanged for a session that lives in
//! Redis, so every replica of the dashboard sees it begin, be used and end; its cookie is
//! signed, and every form carries a CSRF token derived from it.
//!
//! - The session ([`Keys::dashboard_session`]): when it began, when it was last used, and a
//!   keyed fingerprint of the token it logged in with. Each request checks it and marks it
//!   used in one script (`store/src/lua/touch_session.lua`), so it ends, for every replica at once:
//!   - at logout (its record is deleted: the old cookie is refused from then on);
//!   - after [`SESSION_IDLE`] unused (12 h, sliding: each page or action starts it again);
//!   - [`SESSION_TTL`] after it began (24 h), however much it is used;
//!   - when the token it logged in with is removed from the configuration.
//! - The key that signs cookies and CSRF tokens (HMAC-SHA256): from `HERALD_DASHBOARD_SECRET`
//!   (hashed with the namespace), or a random secret kept in Redis ([`Keys::dashboard_secret`],
//!   made once with `SET NX` by the first replica that needs it, read by the others). Never
//!   derived from the tokens: a leaked cookie says nothing about them.
//! - The cookie, `herald_session=<expiry>.<id>.<mac>`: HttpOnly, SameSite=Strict, Path=/,
//!   Secure behind TLS; never holds the token. One whose MAC does not check is refused before
//!   its id is looked up.
//! - The CSRF token: a MAC of the cookie's value under the same key, so a page from
//!   another origin (which cannot read the cookie, and whose request SameSite=Strict keeps
//!   cookie-less anyway) cannot produce it. Compared in constant time.
//!
//! Time is passed in (`now`, the dashboard's clock, which writes the record's times too), so
//! tests can say "twelve hours later" without waiting.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_redis::redis::{self, AsyncCommands};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use herald_shared::redis_pool::{Connection, Pool, RedisFailure};
use herald_shared::tokens::Tokens;
use herald_store::Keys;
use herald_store::calls::dashboard::touch_session;

use crate::settings::{SESSION_IDLE, SESSION_TTL, Settings};

/// The cookie's name.
pub const COOKIE: &str = "herald_session";
/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

type HmacSha256 = Hmac<Sha256>;

/// Why a session could not be checked, begun or ended: the page answers 503.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Redis(#[from] RedisFailure),
    /// The secret kept in Redis is not what the dashboard writes there.
    #[error(
        "{key} holds no dashboard secret (64 hex digits): delete it, and the next login makes a new one"
    )]
    BadSecret { key: String },
}

impl From<redis::RedisError> for SessionError {
    fn from(err: redis::RedisError) -> Self {
        SessionError::Redis(err.into())
    }
}

/// Begins, checks and ends the sessions of one dashboard configuration. Built once per
/// process ([`crate::server::router`]); its only state of its own is the key it last read
/// from Redis.
pub struct Sessions {
    pool: Pool,
    keys: Keys,
    tokens: Tokens,
    key: SessionKey,
    idle: Duration,
    max_age: Duration,
}

/// Where the signing key comes from.
enum SessionKey {
    /// From `HERALD_DASHBOARD_SECRET`.
    Given([u8; 32]),
    /// Kept in Redis; the last value read, if any.
    Kept(Mutex<Option<[u8; 32]>>),
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match self.key {
            SessionKey::Given(_) => "HERALD_DASHBOARD_SECRET",
            SessionKey::Kept(_) => "kept in Redis",
        };
        write!(
            f,
            "Sessions(idle {:?}, at most {:?}, key {source})",
            self.idle, self.max_age
        )
    }
}

/// A checked session: its cookie value, and the key that signed it (for its CSRF token).
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    value: String,
    id: String,
    key: [u8; 32],
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session([redacted])")
    }
}

/// A cookie's value, read but not yet checked.
struct Cookie<'a> {
    expiry: u64,
    id: &'a str,
    /// `<expiry>.<id>`: what the MAC signs.
    payload: &'a str,
    mac: &'a str,
}

impl<'a> Cookie<'a> {
    fn parse(value: &'a str) -> Option<Cookie<'a>> {
        let (payload, mac) = value.rsplit_once('.')?;
        let (expiry, id) = payload.split_once('.')?;
        let hex = |s: &str, len: usize| {
            s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        (hex(id, 32) && hex(mac, 64)).then_some(())?;
        Some(Cookie {
            expiry: expiry.parse().ok()?,
            id,
            payload,
            mac,
        })
    }

    fn signed_by(&self, key: &[u8; 32]) -> bool {
        let expected = mac(key, "session", self.payload);
        expected.as_bytes().ct_eq(self.mac.as_bytes()).into()
    }
}

impl Sessions {
    /// The sessions of `settings`' tokens and namespace, in `pool`'s Redis.
    pub fn new(settings: &Settings, pool: Pool) -> Sessions {
        let key = match &settings.secret {
            Some(secret) => {
                let mut hash = Sha256::new();
                hash.update(b"herald-dashboard-session-key-v2\0");
                hash.update(settings.namespace.as_bytes());
                hash.update(b"\0");
                hash.update(secret.expose().as_bytes());
                SessionKey::Given(hash.finalize().into())
            }
            None => SessionKey::Kept(Mutex::new(None)),
        };
        Sessions {
            pool,
            keys: settings.keys.clone(),
            tokens: settings.tokens.clone(),
            key,
            idle: SESSION_IDLE,
            max_age: SESSION_TTL,
        }
    }

    /// The most a session lasts (the cookie's `Max-Age`).
    pub fn ttl(&self) -> Duration {
        self.max_age
    }

    /// Begins a session for the token whose digest is `token` (one of the configured ones:
    /// [`Tokens::find`]), at `now`.
    pub async fn start(&self, token: &[u8; 32], now: SystemTime) -> Result<Session, SessionError> {
        let mut conn = self.pool.get().await.map_err(RedisFailure::from)?;
        // Read afresh at every login: if Redis lost the secret, this makes the new one.
        let key = self.key(&mut conn, true).await?;
        let id = hex(&rand::random::<[u8; 16]>());
        let created = unix(now);
        let payload = format!("{}.{id}", created + self.max_age.as_secs());
        let value = format!("{payload}.{}", mac(&key, "session", &payload));
        let record = self.keys.dashboard_session(&id);
        let fingerprint = fingerprint(&key, token);
        let () = redis::pipe()
            .atomic()
            .cmd("HSET")
            .arg(&record)
            .arg(&[
                ("created", created.to_string()),
                ("seen", created.to_string()),
                ("token", fingerprint),
            ])
            .ignore()
            .expire(&record, self.idle.min(self.max_age).as_secs() as i64)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(Session { value, id, key })
    }

    /// The session a cookie value holds, if it is alive at `now`; marks it used.
    pub async fn check(
        &self,
        value: &str,
        now: SystemTime,
    ) -> Result<Option<Session>, SessionError> {
        let Some(cookie) = Cookie::parse(value) else {
            return Ok(None);
        };
        if cookie.expiry <= unix(now) {
            return Ok(None);
        }
        let mut conn = self.pool.get().await.map_err(RedisFailure::from)?;
        let mut key = self.key(&mut conn, false).await?;
        if !cookie.signed_by(&key) {
            // Another replica may have made a new secret (Redis lost the old one) since
            // this one read it: read it again, once.
            match self.reread(&mut conn, &key).await? {
                Some(fresh) if cookie.signed_by(&fresh) => key = fresh,
                _ => return Ok(None),
            }
        }
        let token: Option<String> = touch_session(
            &self.keys,
            cookie.id,
            unix(now),
            self.idle.as_secs(),
            self.max_age.as_secs(),
        )
        .invoke(&mut conn)
        .await?;
        let Some(token) = token else {
            return Ok(None);
        };
        let configured = self.tokens.digests().iter().fold(0u8, |found, digest| {
            found
                | fingerprint(&key, digest)
                    .as_bytes()
                    .ct_eq(token.as_bytes())
                    .unwrap_u8()
        });
        if configured == 0 {
            // Its token was removed from the configuration: the session goes with it.
            let () = conn.del(self.keys.dashboard_session(cookie.id)).await?;
            return Ok(None);
        }
        Ok(Some(Session {
            value: value.to_string(),
            id: cookie.id.to_string(),
            key,
        }))
    }

    /// Ends `session` for every replica: its cookie is refused from now on.
    pub async fn end(&self, session: &Session) -> Result<(), SessionError> {
        let mut conn = self.pool.get().await.map_err(RedisFailure::from)?;
        let () = conn.del(self.keys.dashboard_session(&session.id)).await?;
        Ok(())
    }

    /// The signing key: the given one, or the one kept in Redis (read when `fresh`, or
    /// when this process has not read it yet).
    async fn key(&self, conn: &mut Connection, fresh: bool) -> Result<[u8; 32], SessionError> {
        let cache = match &self.key {
            SessionKey::Given(key) => return Ok(*key),
            SessionKey::Kept(cache) => cache,
        };
        if !fresh && let Some(key) = *cache.lock().unwrap_or_else(PoisonError::into_inner) {
            return Ok(key);
        }
        let name = self.keys.dashboard_secret();
        // Made by the first replica that needs it; every other reads that one.
        let (stored,): (Option<String>,) = redis::pipe()
            .cmd("SET")
            .arg(&name)
            .arg(hex(&rand::random::<[u8; 32]>()))
            .arg("NX")
            .ignore()
            .get(&name)
            .query_async(conn)
            .await?;
        let key = stored
            .as_deref()
            .and_then(unhex)
            .ok_or(SessionError::BadSecret { key: name })?;
        *cache.lock().unwrap_or_else(PoisonError::into_inner) = Some(key);
        Ok(key)
    }

    /// The key kept in Redis read again, when it is not `tried`.
    async fn reread(
        &self,
        conn: &mut Connection,
        tried: &[u8; 32],
    ) -> Result<Option<[u8; 32]>, SessionError> {
        if matches!(self.key, SessionKey::Given(_)) {
            return Ok(None);
        }
        let key = self.key(conn, true).await?;
        Ok((key != *tried).then_some(key))
    }
}

impl Session {
    pub fn cookie_value(&self) -> &str {
        &self.value
    }

    /// The CSRF token of this session, for its forms.
    pub fn csrf(&self) -> String {
        mac(&self.key, "csrf", &self.value)
    }

    /// True when `presented` is this session's CSRF token.
    pub fn csrf_ok(&self, presented: Option<&str>) -> bool {
        let Some(presented) = presented else {
            return false;
        };
        bool::from(self.csrf().as_bytes().ct_eq(presented.as_bytes()))
    }
}

fn mac(key: &[u8; 32], purpose: &str, data: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac.update(data.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// What a session's record keeps of its token: a MAC of its digest under the signing key.
fn fingerprint(key: &[u8; 32], token_digest: &[u8; 32]) -> String {
    mac(key, "token", &hex(token_digest))
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

fn unhex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        key[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::Redacted;
    use herald_tests::RedisServer;

    const HOUR: Duration = Duration::from_secs(3600);
    const TOKEN_A: &str = "token-a-0123456789abcdef";
    const TOKEN_B: &str = "token-b-0123456789abcdef";

    /// A replica's sessions: `tokens` (comma-separated) and `extra` flags, on `redis`.
    async fn replica(redis: &RedisServer, tokens: &str, extra: &[&str]) -> Sessions {
        let url = redis.url();
        let argv = [
            "--redis-url",
            &url,
            "--namespace",
            "dash",
            "--tokens",
            tokens,
        ];
        let argv: Vec<&str> = argv.iter().chain(extra).copied().collect();
        let settings = crate::settings::from_argv(&argv).unwrap();
        let pool = settings.redis.open(2).await.unwrap();
        Sessions::new(&settings, pool)
    }

    fn digest(token: &str) -> [u8; 32] {
        Tokens::parse(&Redacted::new(token.to_string()))
            .unwrap()
            .find(token)
            .unwrap()
    }

    async fn alive(sessions: &Sessions, session: &Session, at: SystemTime) -> bool {
        sessions
            .check(session.cookie_value(), at)
            .await
            .unwrap()
            .is_some()
    }

    #[tokio::test]
    async fn a_session_lives_while_used_and_ends_12_h_idle_or_24_h_after_it_began() {
        let redis = RedisServer::start();
        let sessions = replica(&redis, TOKEN_A, &[]).await;
        let t0 = SystemTime::now();
        let session = sessions.start(&digest(TOKEN_A), t0).await.unwrap();
        // Used every 11 hours: alive, each use starting the idle time again...
        assert!(alive(&sessions, &session, t0 + 11 * HOUR).await);
        assert!(alive(&sessions, &session, t0 + 22 * HOUR).await);
        // ... until 24 hours after it began, however used.
        assert!(!alive(&sessions, &session, t0 + 24 * HOUR).await);

        let session = sessions.start(&digest(TOKEN_A), t0).await.unwrap();
        assert!(alive(&sessions, &session, t0 + 11 * HOUR).await);
        // 12 hours unused: over, and over for good.
        assert!(!alive(&sessions, &session, t0 + 23 * HOUR).await);
        assert!(!alive(&sessions, &session, t0 + 11 * HOUR).await, "deleted");

        let session = sessions.start(&digest(TOKEN_A), t0).await.unwrap();
        assert!(
            alive(&sessions, &session, t0 + 12 * HOUR - Duration::from_secs(1)).await,
            "a second short of 12 hours"
        );
    }

    #[tokio::test]
    async fn logout_ends_a_session_for_every_replica() {
        let redis = RedisServer::start();
        let (one, two) = (
            replica(&redis, TOKEN_A, &[]).await,
            replica(&redis, TOKEN_A, &[]).await,
        );
        let now = SystemTime::now();
        let session = one.start(&digest(TOKEN_A), now).await.unwrap();
        let seen_by_two = two.check(session.cookie_value(), now).await.unwrap();
        assert_eq!(seen_by_two.as_ref(), Some(&session), "same key, from Redis");
        assert_eq!(seen_by_two.unwrap().csrf(), session.csrf());
        one.end(&session).await.unwrap();
        assert!(!alive(&two, &session, now).await);
        assert!(!alive(&one, &session, now).await);
    }

    #[tokio::test]
    async fn removing_a_token_ends_the_sessions_it_began_and_only_those() {
        let redis = RedisServer::start();
        let both = replica(&redis, &format!("{TOKEN_A},{TOKEN_B}"), &[]).await;
        let now = SystemTime::now();
        let by_a = both.start(&digest(TOKEN_A), now).await.unwrap();
        let by_b = both.start(&digest(TOKEN_B), now).await.unwrap();
        let only_a = replica(&redis, TOKEN_A, &[]).await;
        assert!(alive(&only_a, &by_a, now).await);
        assert!(!alive(&only_a, &by_b, now).await);
        assert!(!alive(&both, &by_b, now).await, "its record is gone");
    }

    #[tokio::test]
    async fn the_key_is_never_derived_from_the_tokens() {
        let redis = RedisServer::start();
        let sessions = replica(&redis, TOKEN_A, &[]).await;
        let now = SystemTime::now();
        let session = sessions.start(&digest(TOKEN_A), now).await.unwrap();
        // The key the dashboard derived before: a digest of the namespace and the tokens'.
        let mut hash = Sha256::new();
        hash.update(b"herald-dashboard-session-v1\0");
        hash.update(b"dash");
        hash.update(digest(TOKEN_A));
        let derived: [u8; 32] = hash.finalize().into();
        assert_ne!(session.key, derived);
        // A cookie made with it, even for a session that exists, is refused.
        let payload = format!("{}.{}", unix(now) + 3600, session.id);
        let forged = format!("{payload}.{}", mac(&derived, "session", &payload));
        assert_eq!(sessions.check(&forged, now).await.unwrap(), None);
        for garbage in ["", "garbage", "1.2.3", &format!("{payload}.zz")] {
            assert_eq!(
                sessions.check(garbage, now).await.unwrap(),
                None,
                "{garbage}"
            );
        }
        let mut flipped = session.cookie_value().to_string();
        flipped.replace_range(0..1, "9");
        assert_eq!(sessions.check(&flipped, now).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_given_secret_is_shared_by_replicas_given_it_and_no_other() {
        let redis = RedisServer::start();
        let secret = "s".repeat(40);
        let one = replica(&redis, TOKEN_A, &["--secret", &secret]).await;
        let two = replica(&redis, TOKEN_A, &["--secret", &secret]).await;
        let other = replica(&redis, TOKEN_A, &["--secret", &"t".repeat(40)]).await;
        let kept = replica(&redis, TOKEN_A, &[]).await;
        let now = SystemTime::now();
        let session = one.start(&digest(TOKEN_A), now).await.unwrap();
        assert!(alive(&two, &session, now).await);
        assert!(!alive(&other, &session, now).await);
        assert!(!alive(&kept, &session, now).await);
        assert!(!format!("{one:?}").contains(&secret));
    }

    #[tokio::test]
    async fn replicas_follow_the_kept_secret_when_redis_loses_it() {
        let redis = RedisServer::start();
        let (one, two) = (
            replica(&redis, TOKEN_A, &[]).await,
            replica(&redis, TOKEN_A, &[]).await,
        );
        let now = SystemTime::now();
        let first = one.start(&digest(TOKEN_A), now).await.unwrap();
        assert!(alive(&two, &first, now).await, "two has read the secret");
        let mut conn = herald_tests::connect(&redis.url()).await.unwrap();
        let () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
        // A login on one makes a new secret; two, holding the old one, reads it again.
        let second = one.start(&digest(TOKEN_A), now).await.unwrap();
        assert_ne!(first.key, second.key);
        assert!(alive(&two, &second, now).await);
        assert!(!alive(&two, &first, now).await);
    }

    #[tokio::test]
    async fn csrf_tokens_belong_to_their_session() {
        let redis = RedisServer::start();
        let sessions = replica(&redis, TOKEN_A, &[]).await;
        let now = SystemTime::now();
        let one = sessions.start(&digest(TOKEN_A), now).await.unwrap();
        let two = sessions.start(&digest(TOKEN_A), now).await.unwrap();
        let token = one.csrf();
        assert!(one.csrf_ok(Some(&token)));
        assert!(!two.csrf_ok(Some(&token)), "another session's token");
        assert!(!one.csrf_ok(None));
        assert!(!one.csrf_ok(Some("")));
        assert_eq!(format!("{one:?}"), "Session([redacted])");
    }

    #[tokio::test]
    async fn the_cookie_is_http_only_strict_and_secure_behind_tls() {
        let redis = RedisServer::start();
        let sessions = replica(&redis, TOKEN_A, &[]).await;
        let session = sessions
            .start(&digest(TOKEN_A), SystemTime::now())
            .await
            .unwrap();
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
        assert!(!session.cookie_value().contains(TOKEN_A));
    }
}
