//! The HTTP surface: Interakt's send route, and the sandbox's own `/_sandbox/*` routes for
//! tests and demos to look inside.
//!
//! | route | answer |
//! |---|---|
//! | `POST /v1/public/rcs/message/` (and without the slash) | as Interakt would |
//! | `GET /_sandbox/messages` | accepted messages, in arrival order |
//! | `GET /_sandbox/stats` | [`crate::Stats`] |
//! | `GET /_sandbox/webhooks` | [`crate::WebhookStats`]: webhooks posted back |
//! | `POST /_sandbox/reset` | 204; messages, stats, rate window and scripts start over |
//!
//! The `/_sandbox` routes need no key: the sandbox is a local test tool. Handlers are thin:
//! the state judges, the handler waits out the delay and answers.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::state::Sandbox;

pub(crate) fn router(sandbox: Arc<Sandbox>) -> Router {
    let send_with_slash = format!("{}/", crate::SEND_PATH);
    Router::new()
        .route(crate::SEND_PATH, post(send))
        .route(&send_with_slash, post(send))
        .route("/_sandbox/messages", get(messages))
        .route("/_sandbox/stats", get(stats))
        .route("/_sandbox/webhooks", get(webhooks))
        .route("/_sandbox/reset", post(reset))
        .with_state(sandbox)
}

async fn send(State(sandbox): State<Arc<Sandbox>>, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let (reply, delay) = sandbox.judge(authorization, &body);
    wait(&sandbox, delay).await;
    reply.into_response()
}

/// Waits out an answer's delay, unless the server is shutting down: then it answers at
/// once, so a `slow:1h` script cannot hold shutdown hostage.
async fn wait(sandbox: &Sandbox, delay: Duration) {
    if delay.is_zero() {
        return;
    }
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = sandbox.shutdown.cancelled() => {}
    }
}

async fn messages(State(sandbox): State<Arc<Sandbox>>) -> Response {
    Json(sandbox.messages()).into_response()
}

async fn stats(State(sandbox): State<Arc<Sandbox>>) -> Response {
    Json(sandbox.stats()).into_response()
}

async fn webhooks(State(sandbox): State<Arc<Sandbox>>) -> Response {
    Json(sandbox.webhook_stats()).into_response()
}

async fn reset(State(sandbox): State<Arc<Sandbox>>) -> StatusCode {
    sandbox.reset();
    StatusCode::NO_CONTENT
}
