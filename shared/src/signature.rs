//! Webhook signatures: `Interakt-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`.
//!
//! One module for both sides of the wire: Herald's receiver [`verify`]s what Interakt (or the
//! sandbox) posts, and the sandbox [`sign`]s what it posts, so the two can never drift apart.
//! The MAC is always computed over the raw request body, byte for byte, never over a
//! re-serialized form. Comparison is constant-time (`hmac`'s `verify_slice`, built on
//! `subtle`). This module never logs and never holds the secret beyond a call.
//!
//! A receiver that may be shown several header values computes the body's MAC once
//! ([`expected`]) and compares each value it reads with it ([`Expected::matches`]): the cost
//! of a request is one HMAC of its body, however many values it carries.
//!
//! [`sha256_hex`] is the plain digest, for keys derived from a body (de-duplicating webhook
//! objects that carry no id).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header name, as Interakt spells it (HTTP header names are case-insensitive).
pub const HEADER: &str = "Interakt-Signature";

/// What the header value starts with.
pub const PREFIX: &str = "sha256=";

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length")
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    to_hex(&Sha256::digest(data))
}

fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// The header value for `body`: `sha256=` and 64 lowercase hex digits.
pub fn sign(secret: impl AsRef<[u8]>, body: &[u8]) -> String {
    let mut mac = mac(secret.as_ref());
    mac.update(body);
    format!("{PREFIX}{}", to_hex(&mac.finalize().into_bytes()))
}

/// Whether `header` (the `Interakt-Signature` value, `None` when absent) is the signature of
/// `body` under `secret`. Hex digits may be upper or lower case; surrounding whitespace is
/// ignored. Anything else malformed is simply "not valid" (and costs no HMAC).
pub fn verify(secret: impl AsRef<[u8]>, body: &[u8], header: Option<&[u8]>) -> bool {
    let Some(tag) = header.and_then(presented_tag) else {
        return false;
    };
    expected(secret, body).matches_tag(&tag)
}

/// The MAC of one body under one secret, computed once, for comparing header values with.
/// Its Debug output shows nothing of it.
pub struct Expected {
    tag: [u8; 32],
}

impl std::fmt::Debug for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Expected([redacted])")
    }
}

/// The MAC of `body` under `secret`: one HMAC-SHA256 over the body.
pub fn expected(secret: impl AsRef<[u8]>, body: &[u8]) -> Expected {
    let mut mac = mac(secret.as_ref());
    mac.update(body);
    Expected {
        tag: mac.finalize().into_bytes().into(),
    }
}

impl Expected {
    /// Whether `header` (a signature header's value) carries this MAC, as [`verify`] reads
    /// it; compared in constant time.
    pub fn matches(&self, header: &[u8]) -> bool {
        presented_tag(header).is_some_and(|tag| self.matches_tag(&tag))
    }

    fn matches_tag(&self, tag: &[u8]) -> bool {
        self.tag.ct_eq(tag).into()
    }
}

/// The MAC a header value presents: `sha256=` and hex, spaces around ignored.
fn presented_tag(header: &[u8]) -> Option<Vec<u8>> {
    decode_hex(header.trim_ascii().strip_prefix(PREFIX.as_bytes())?)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    hex.chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231, test case 2.
    const RFC4231_KEY: &str = "Jefe";
    const RFC4231_DATA: &[u8] = b"what do ya want for nothing?";
    const RFC4231_MAC: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

    #[test]
    fn signs_as_rfc_4231_says() {
        assert_eq!(
            sign(RFC4231_KEY, RFC4231_DATA),
            format!("sha256={RFC4231_MAC}")
        );
    }

    #[test]
    fn digests_as_fips_180_says() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn verifies_its_own_signature_in_either_case() {
        let body = br#"{"entityType":"USER_EVENT"}"#;
        let header = sign("s3cret", body);
        assert!(verify("s3cret", body, Some(header.as_bytes())));
        let upper = format!("sha256={}", header[PREFIX.len()..].to_uppercase());
        assert!(verify("s3cret", body, Some(upper.as_bytes())));
        assert!(verify(
            "s3cret",
            body,
            Some(format!(" {header} ").as_bytes())
        ));
    }

    #[test]
    fn refuses_anything_else() {
        let body = b"{}";
        let good = sign("s3cret", body);
        let mut flipped = good.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        for header in [
            None,
            Some(b"".as_slice()),
            Some(flipped.as_slice()),
            Some(&good.as_bytes()[PREFIX.len()..]),
            Some(b"sha256="),
            Some(b"sha256=zz"),
            Some(b"sha256=abc"),
            Some(b"sha1=5bdcc146bf60754e6a042426089575c75a003f08"),
        ] {
            assert!(!verify("s3cret", body, header), "{header:?}");
        }
        assert!(!verify("other", body, Some(good.as_bytes())));
        assert!(!verify("s3cret", b"{} ", Some(good.as_bytes())));
    }

    #[test]
    fn one_mac_compares_with_many_values() {
        let body = br#"{"entityType":"USER_EVENT"}"#;
        let good = sign("s3cret", body);
        let expected = expected("s3cret", body);
        assert!(expected.matches(good.as_bytes()));
        assert!(expected.matches(good.to_uppercase().replace("SHA256=", "sha256=").as_bytes()));
        assert!(!expected.matches(sign("other", body).as_bytes()));
        assert!(
            !expected.matches(&good.as_bytes()[..good.len() - 2]),
            "a shorter tag"
        );
        assert!(!expected.matches(b"sha256="));
        assert_eq!(format!("{expected:?}"), "Expected([redacted])");
    }
}
