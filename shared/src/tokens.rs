//! Access tokens (`HERALD_API_TOKENS`, `HERALD_DASHBOARD_TOKENS`): comma-separated in the
//! configuration, kept only as SHA-256 digests. A presented token is hashed and compared with
//! each configured digest in constant time, so neither a token's content nor its length leaks
//! through timing, and Debug output shows only how many there are.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Redacted;

/// The accepted tokens, kept only as digests.
#[derive(Clone, Default)]
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.digests.len())
    }
}

impl Tokens {
    /// Parses a comma-separated list, blanks ignored. `None` when there is none.
    pub fn parse(list: &Redacted<String>) -> Option<Tokens> {
        let digests: Vec<[u8; 32]> = list
            .expose()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(digest)
            .collect();
        (!digests.is_empty()).then_some(Tokens { digests })
    }

    /// True when `token` is one of the configured tokens.
    pub fn accepts(&self, token: &str) -> bool {
        self.find(token).is_some()
    }

    /// The digest of `token` when it is one of the configured tokens: what a session
    /// remembers instead of the token.
    pub fn find(&self, token: &str) -> Option<[u8; 32]> {
        let presented = digest(token);
        // Compare against every token, without stopping early.
        let found = self
            .digests
            .iter()
            .fold(0u8, |found, d| found | d.ct_eq(&presented).unwrap_u8());
        (found == 1).then_some(presented)
    }

    /// True when `digest` is the digest of a configured token (constant time).
    pub fn holds_digest(&self, digest: &[u8; 32]) -> bool {
        self.digests
            .iter()
            .fold(0u8, |found, d| found | d.ct_eq(digest).unwrap_u8())
            == 1
    }

    /// The configured digests, for deriving keys from them (never the tokens).
    pub fn digests(&self) -> &[[u8; 32]] {
        &self.digests
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_matched_exactly_and_never_shown() {
        let tokens = Tokens::parse(&Redacted::new("alpha, beta,,".to_string())).unwrap();
        assert!(tokens.accepts("alpha") && tokens.accepts("beta"));
        assert!(!tokens.accepts("alph") && !tokens.accepts("alpha ") && !tokens.accepts(""));
        assert_eq!(format!("{tokens:?}"), "Tokens(2 configured)");
        assert!(Tokens::parse(&Redacted::new(" , ".to_string())).is_none());
        let digest = tokens.find("beta").unwrap();
        assert!(tokens.holds_digest(&digest));
        assert!(!tokens.holds_digest(&[0; 32]));
    }
}
