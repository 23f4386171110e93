//! The ACL user and password for Redis's data nodes given apart from the URLs:
//! `REDIS_USERNAME` and `REDIS_PASSWORD`.
//!
//! A URL can carry them (`redis://herald:PASSWORD@host`), and for a single server or Cluster
//! seed nodes that is enough. Sentinel mode needs them apart: a Sentinel URL's
//! `user:password` is the Sentinels' own, and the primary found through them has its own
//! user. Set apart, they also keep the password out of the URL (and let KEDA's scaler read the
//! same `REDIS_PASSWORD`). Given both ways, the two must agree: which one wins would
//! otherwise be a guess.

use deadpool_redis::redis::ConnectionInfo;

use crate::Redacted;
use crate::error::ConfigError;

/// The variable naming the user, in messages.
pub const USERNAME_VAR: &str = "REDIS_USERNAME (--redis-username)";
/// The variable naming the password, in messages.
pub const PASSWORD_VAR: &str = "REDIS_PASSWORD (--redis-password)";

/// The data nodes' user and password, when given apart from the URLs.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// The ACL user (`REDIS_USERNAME`); Redis's `default` user when `None`.
    pub username: Option<String>,
    /// Its password (`REDIS_PASSWORD`).
    pub password: Option<Redacted<String>>,
}

impl Credentials {
    pub fn is_empty(&self) -> bool {
        self.username.is_none() && self.password.is_none()
    }

    /// `info` with these credentials filled in where its URL gave none; an error naming the
    /// variable when the URL (`shown`, already redacted) gives a different one.
    pub fn apply(&self, info: ConnectionInfo, shown: &str) -> Result<ConnectionInfo, ConfigError> {
        let mut redis = info.redis_settings().clone();
        if let Some(username) = &self.username {
            match redis.username() {
                Some(given) if given != username => {
                    return Err(differs(USERNAME_VAR, "user", shown));
                }
                _ => redis = redis.set_username(username),
            }
        }
        if let Some(password) = &self.password {
            match redis.password() {
                Some(given) if given != password.expose() => {
                    return Err(differs(PASSWORD_VAR, "password", shown));
                }
                _ => redis = redis.set_password(password.expose()),
            }
        }
        Ok(info.set_redis_settings(redis))
    }
}

fn differs(var: &str, what: &str, shown: &str) -> ConfigError {
    ConfigError::new(
        var,
        format!(
            "differs from the {what} in {shown}: give it once (in the URL or in {var}), or make them the same"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use deadpool_redis::redis::IntoConnectionInfo;

    fn info(url: &str) -> ConnectionInfo {
        url.into_connection_info().unwrap()
    }

    #[test]
    fn fills_in_what_the_url_lacks_and_refuses_a_different_one() {
        let auth = Credentials {
            username: Some("herald".into()),
            password: Some(Redacted::new("s3cret".into())),
        };
        let filled = auth.apply(info("redis://127.0.0.1:6379"), "x").unwrap();
        assert_eq!(filled.redis_settings().username(), Some("herald"));
        assert_eq!(filled.redis_settings().password(), Some("s3cret"));
        // The same in both places is fine.
        auth.apply(info("redis://herald:s3cret@127.0.0.1"), "x")
            .unwrap();
        let err = auth
            .apply(
                info("redis://herald:other@127.0.0.1"),
                "redis://***@127.0.0.1",
            )
            .unwrap_err();
        assert!(err.to_string().starts_with(PASSWORD_VAR), "{err}");
        assert!(!err.to_string().contains("s3cret") && !err.to_string().contains("other"));
        let err = auth
            .apply(info("redis://someone:s3cret@127.0.0.1"), "x")
            .unwrap_err();
        assert!(err.to_string().starts_with(USERNAME_VAR), "{err}");
        // Nothing given: the URL as it is.
        let same = Credentials::default()
            .apply(info("redis://u:p@127.0.0.1"), "x")
            .unwrap();
        assert_eq!(same.redis_settings().password(), Some("p"));
    }
}
