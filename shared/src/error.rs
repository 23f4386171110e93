//! A configuration value that cannot work: the one error every flag and variable check
//! returns, naming the flag or variable, the value's problem and the fix.

/// A configuration value that cannot work, named by its flag or environment variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {reason}")]
pub struct ConfigError {
    /// The flag / environment variable, e.g. `INTERAKT_RATE_LIMIT (--rate)`.
    pub name: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(name: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            name: name.into(),
            reason: reason.into(),
        }
    }
}
