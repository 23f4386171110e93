//! Bearer-token authentication of the job routes.
//!
//! Tokens come from `HERALD_API_TOKENS` (comma-separated), kept and compared as digests
//! ([`Tokens`], shared with the dashboard).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::error::ApiError;

pub use herald_shared::tokens::Tokens;

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
