//! Bearer-token authentication of the job routes.
//!
//! Tokens come from `HERALD_API_TOKENS` (comma-separated). A presented token is hashed and
//! its SHA-256 digest compared with each configured token's digest in constant time, so
//! neither a token's content nor its length leaks through timing.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_shared::Redacted;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::error::ApiError;

/// The accepted tokens, kept only as digests.
#[derive(Default)]
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.digests.len())
    }
}

impl Tokens {
    /// Parses `HERALD_API_TOKENS`: comma-separated, blanks ignored. `None` when there is none.
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
        let presented = digest(token);
        // Compare against every token, without stopping early.
        self.digests
            .iter()
            .fold(0u8, |found, d| found | d.ct_eq(&presented).unwrap_u8())
            == 1
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Middleware: 401 unless `Authorization: Bearer <token>` carries a configured token.
pub async fn require_bearer(
    State(tokens): State<Arc<Tokens>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match presented {
        Some(token) if tokens.accepts(token) => next.run(request).await,
        Some(_) => ApiError::unauthorized("the bearer token is not one of HERALD_API_TOKENS")
            .into_response(),
        None => ApiError::unauthorized("send Authorization: Bearer <token>").into_response(),
    }
}

/// Declares the bearer scheme in the OpenAPI document.
pub struct BearerSecurity;

impl Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
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
    }
}
