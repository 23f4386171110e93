//! Consumer names: how a process is known in a Redis consumer group.
//!
//! Every process that reads a stream through a consumer group (worker replicas, webhook
//! processors) needs a name unique to it, or a dead replica's entries are never reclaimed and
//! a fast restart inherits them. This module owns that naming; it never talks to Redis.

use crate::config::ConfigError;

/// The consumer name given (`--consumer`, `HERALD_CONSUMER`), or a fresh unique one.
pub fn consumer_name(given: Option<&str>) -> Result<String, ConfigError> {
    match given {
        Some(name) if name.trim().is_empty() => Err(ConfigError::new(
            "HERALD_CONSUMER (--consumer)",
            "must not be empty",
        )),
        Some(name) => Ok(name.to_string()),
        None => Ok(default_consumer_name()),
    }
}

/// `host-pid-xxxx`: unique per process, so a restarted replica never inherits (and never
/// blocks the reclaiming of) its predecessor's pending jobs.
pub fn default_consumer_name() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let suffix: u16 = rand::random();
    format!("{host}-{}-{suffix:04x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_name_is_kept_and_an_empty_one_is_refused() {
        assert_eq!(consumer_name(Some("replica-a")).unwrap(), "replica-a");
        let err = consumer_name(Some("  ")).unwrap_err().to_string();
        assert!(err.contains("HERALD_CONSUMER (--consumer)"), "{err}");
    }

    #[test]
    fn default_names_differ_between_calls() {
        let names: std::collections::HashSet<String> =
            (0..32).map(|_| default_consumer_name()).collect();
        assert!(names.len() > 1);
    }
}
