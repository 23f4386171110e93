//! The environment that points a Herald binary at one Redis deployment: `REDIS_URL` for a
//! single server, or the Sentinel variables, user, password and certificates.

use std::process::Command;

/// Environment variables for a Herald process, applied to its [`Command`].
#[derive(Clone, Debug)]
pub struct RedisEnv {
    vars: Vec<(String, String)>,
}

impl RedisEnv {
    /// The single server at `url`.
    pub fn url(url: &str) -> RedisEnv {
        RedisEnv {
            vars: vec![("REDIS_URL".into(), url.into())],
        }
    }

    /// One more variable (a later one of the same name wins).
    pub fn with(mut self, var: &str, value: impl Into<String>) -> RedisEnv {
        self.vars.push((var.into(), value.into()));
        self
    }

    /// Sets every variable on `command`.
    pub fn apply<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        command.envs(self.vars.iter().map(|(k, v)| (k, v)))
    }

    /// The value of `REDIS_URL` (the last one given).
    pub fn redis_url(&self) -> &str {
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k == "REDIS_URL")
            .map(|(_, v)| v.as_str())
            .expect("every RedisEnv has a REDIS_URL")
    }
}
