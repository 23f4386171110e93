//! Who may post events: the receiver's signature policy ([`Signatures`]), decided once at
//! start-up from the flags, and the check of one request against it ([`Signatures::check`]).
//!
//! A receiver without a secret is an open door: anyone who can reach the port could post a
//! forged `cancel_...` tap or a forged DELIVERED report. So a secret is required, and the
//! only way to run without one is to say so ([`Signatures::Unchecked`], from
//! `--insecure-no-signature`), for local development.
//!
//! Interakt signs with `Interakt-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`
//! ([`herald_shared::signature`]); some integrations read (and some proxies forward) the
//! same value as `X-Interakt-Signature`, so either header is accepted ([`SIGNATURE_HEADERS`]).
//!
//! One value per header name is read: the first (Interakt sends one). A request repeating a
//! header is checked on the first `Interakt-Signature` and the first `X-Interakt-Signature`
//! only, and whatever it carries, the body is hashed once and each of those (at most two)
//! values compared with that one MAC: an unauthenticated POST cannot buy one HMAC of a 64 KiB
//! body per value it repeats.
//! Pure: no I/O, no clock, and the secret never reaches a log line, an error or `Debug`.

use axum::http::HeaderMap;
use herald_shared::{Redacted, signature};

/// The headers a signature is read from, in the order they are looked at. Either one
/// signing the body is enough.
pub const SIGNATURE_HEADERS: [&str; 2] = [signature::HEADER, "X-Interakt-Signature"];

/// How the receiver treats signatures.
#[derive(Clone, Debug)]
pub enum Signatures {
    /// Every POST must be signed with this secret (the one saved with the webhook in
    /// Interakt's dashboard); anything else gets 401 and is recorded nowhere.
    Required(Redacted<String>),
    /// `--insecure-no-signature`: nothing is checked and anyone who can reach the port can
    /// post events. For local development only; logged as a warning at start-up.
    Unchecked,
}

/// Why a POST was refused: answered 401.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Neither signature header was present.
    #[error("missing Interakt-Signature (or X-Interakt-Signature) header")]
    Missing,
    /// A header was present, but none signs the body with the secret.
    #[error("wrong Interakt-Signature (or X-Interakt-Signature) header")]
    Wrong,
}

impl Refusal {
    /// The log field's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Wrong => "wrong",
        }
    }
}

impl Signatures {
    /// Whether a POST with `headers` may record `body` (the raw bytes, as received).
    pub fn check(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
        self.check_with(headers, body, |secret, body| {
            signature::expected(secret, body)
        })
    }

    /// [`Signatures::check`] with the MAC computed by `mac`, at most once (a test counts).
    fn check_with(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        mac: impl FnOnce(&str, &[u8]) -> signature::Expected,
    ) -> Result<(), Refusal> {
        let Signatures::Required(secret) = self else {
            return Ok(());
        };
        // The first value of each name (`HeaderMap::get`); any later ones are never read.
        let presented: Vec<&[u8]> = SIGNATURE_HEADERS
            .iter()
            .filter_map(|name| headers.get(*name))
            .map(|value| value.as_bytes())
            .collect();
        if presented.is_empty() {
            return Err(Refusal::Missing);
        }
        let expected = mac(secret.expose(), body);
        if presented.iter().any(|value| expected.matches(value)) {
            Ok(())
        } else {
            Err(Refusal::Wrong)
        }
    }

    /// True for [`Signatures::Unchecked`].
    pub fn is_unchecked(&self) -> bool {
        matches!(self, Signatures::Unchecked)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const SECRET: &str = "whsec-unit";
    const BODY: &[u8] = br#"{"entityType":"USER_MESSAGE","entity":{"text":"hi"}}"#;

    fn required() -> Signatures {
        Signatures::Required(Redacted::new(SECRET.to_string()))
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn either_header_name_in_any_case_carries_the_signature() {
        let good = signature::sign(SECRET, BODY);
        for name in [
            "Interakt-Signature",
            "interakt-signature",
            "X-Interakt-Signature",
            "x-interakt-signature",
        ] {
            let name: &'static str = name;
            assert_eq!(
                required().check(&headers(&[(name, good.clone())]), BODY),
                Ok(()),
                "{name}"
            );
        }
        // One good header is enough, whichever one is wrong.
        let wrong = signature::sign("other", BODY);
        let both = headers(&[
            ("interakt-signature", wrong.clone()),
            ("x-interakt-signature", good),
        ]);
        assert_eq!(required().check(&both, BODY), Ok(()));
    }

    #[test]
    fn a_missing_or_wrong_signature_is_refused_saying_which() {
        assert_eq!(
            required().check(&HeaderMap::new(), BODY),
            Err(Refusal::Missing)
        );
        let wrong = signature::sign("other", BODY);
        for name in ["interakt-signature", "x-interakt-signature"] {
            assert_eq!(
                required().check(&headers(&[(name, wrong.clone())]), BODY),
                Err(Refusal::Wrong),
                "{name}"
            );
        }
        let other_body = signature::sign(SECRET, b"{}");
        assert_eq!(
            required().check(&headers(&[("x-interakt-signature", other_body)]), BODY),
            Err(Refusal::Wrong)
        );
        assert!(Refusal::Missing.to_string().contains("Interakt-Signature"));
    }

    /// However many values a request carries, its body is hashed once, and only the first
    /// value of each header name is read: a good signature further down is not seen.
    #[test]
    fn ten_thousand_signature_values_cost_one_hmac_and_only_the_first_of_each_is_read() {
        let good = signature::sign(SECRET, BODY);
        let wrong = signature::sign("other", BODY);
        let many = |first: &str, rest: &str| {
            let mut map = HeaderMap::new();
            for name in SIGNATURE_HEADERS {
                map.append(name, HeaderValue::from_str(first).unwrap());
                for _ in 1..10_000 {
                    map.append(name, HeaderValue::from_str(rest).unwrap());
                }
            }
            map
        };
        let counted = |headers: &HeaderMap| {
            let mut macs = 0;
            let verdict = required().check_with(headers, BODY, |secret, body| {
                macs += 1;
                signature::expected(secret, body)
            });
            (verdict, macs)
        };
        assert_eq!(
            counted(&many(&wrong, &good)),
            (Err(Refusal::Wrong), 1),
            "the good values after the first of each header are never read"
        );
        assert_eq!(counted(&many(&good, &wrong)), (Ok(()), 1));
        assert_eq!(counted(&HeaderMap::new()), (Err(Refusal::Missing), 0));
        // The first X-Interakt-Signature counts when Interakt-Signature's first is wrong.
        let mut both = headers(&[("interakt-signature", wrong.clone())]);
        both.append(
            "x-interakt-signature",
            HeaderValue::from_str(&good).unwrap(),
        );
        both.append("interakt-signature", HeaderValue::from_str(&good).unwrap());
        assert_eq!(counted(&both), (Ok(()), 1));
    }

    #[test]
    fn unchecked_accepts_anything_and_the_secret_never_shows() {
        assert_eq!(Signatures::Unchecked.check(&HeaderMap::new(), BODY), Ok(()));
        assert!(Signatures::Unchecked.is_unchecked());
        assert!(!format!("{:?}", required()).contains(SECRET));
    }
}
