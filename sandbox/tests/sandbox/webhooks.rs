use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use herald_shared::signature;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::support::{PHONE, card_for, config, harness};

const SECRET: &str = "sandbox-webhook-secret";

/// A receiver that refuses the first `refuse` posts with 503, then records each signed body.
struct Receiver {
    url: String,
    posts: mpsc::UnboundedReceiver<(Option<String>, Bytes)>,
    attempts: Arc<AtomicUsize>,
}

async fn receiver(refuse: usize) -> Receiver {
    #[derive(Clone)]
    struct Sink {
        tx: mpsc::UnboundedSender<(Option<String>, Bytes)>,
        attempts: Arc<AtomicUsize>,
        refuse: usize,
    }
    async fn hook(State(sink): State<Sink>, headers: HeaderMap, body: Bytes) -> StatusCode {
        if sink.attempts.fetch_add(1, Ordering::SeqCst) < sink.refuse {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        let signature = headers
            .get("interakt-signature")
            .map(|v| v.to_str().unwrap().to_string());
        sink.tx.send((signature, body)).unwrap();
        StatusCode::OK
    }
    let (tx, posts) = mpsc::unbounded_channel();
    let attempts = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(Sink {
            tx,
            attempts: attempts.clone(),
            refuse,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver {
        url,
        posts,
        attempts,
    }
}

impl Receiver {
    /// The next post, its signature checked; its JSON.
    async fn next(&mut self) -> Value {
        let (signature, body) = tokio::time::timeout(Duration::from_secs(10), self.posts.recv())
            .await
            .expect("a webhook within 10 s")
            .expect("the receiver is up");
        assert!(
            signature::verify(SECRET, &body, signature.as_deref().map(str::as_bytes)),
            "signed with the secret: {signature:?}"
        );
        serde_json::from_slice(&body).unwrap()
    }
}

#[tokio::test]
async fn accepted_messages_get_signed_delivered_then_read_webhooks_retried_past_failures() {
    let mut hook = receiver(2).await;
    let h = harness(herald_sandbox::SandboxConfig {
        webhook_url: Some(hook.url.clone()),
        webhook_secret: Some(SECRET.to_string().into()),
        ..config()
    })
    .await;
    let id = h.send(&card_for(PHONE)).await.assert_accepted();
    let delivered = hook.next().await;
    let read = hook.next().await;
    for (event, kind) in [(&delivered, "DELIVERED"), (&read, "READ")] {
        assert_eq!(event["entityType"], "USER_EVENT");
        assert_eq!(event["entity"]["eventType"], kind);
        assert_eq!(event["entity"]["messageId"], id.as_str());
        assert_eq!(event["userPhoneNumber"], "+9199999*****");
    }
    assert_eq!(
        hook.attempts.load(Ordering::SeqCst),
        4,
        "two refusals retried"
    );
    let stats = h.get("/_sandbox/webhooks").await;
    assert_eq!(stats["posted"]["delivered"], 1);
    assert_eq!(stats["posted"]["read"], 1);
    assert_eq!(stats["failed"], 0);
}

#[tokio::test]
async fn scripted_phones_get_a_revocation_or_a_tap() {
    let mut hook = receiver(0).await;
    let h = harness(herald_sandbox::SandboxConfig {
        webhook_url: Some(hook.url.clone()),
        webhook_secret: Some(SECRET.to_string().into()),
        script: vec![
            "+919000000009=revoke".parse().unwrap(),
            "+919000000008=tap:cancel_B8".parse().unwrap(),
        ],
        ..config()
    })
    .await;
    let revoked_id = h.send(&card_for("+919000000009")).await.assert_accepted();
    let revoked = hook.next().await;
    assert_eq!(revoked["entityType"], "SERVER_EVENT");
    assert_eq!(revoked["entity"]["eventType"], "TTL_EXPIRATION_REVOKED");
    assert_eq!(revoked["entity"]["messageId"], revoked_id.as_str());

    let tapped_id = h.send(&card_for("+919000000008")).await.assert_accepted();
    let events: Vec<Value> = vec![hook.next().await, hook.next().await, hook.next().await];
    assert_eq!(events[0]["entity"]["eventType"], "DELIVERED");
    assert_eq!(events[1]["entity"]["eventType"], "READ");
    let tap = &events[2];
    assert_eq!(tap["entityType"], "USER_MESSAGE");
    assert_eq!(tap["entity"]["messageId"], tapped_id.as_str());
    assert_eq!(
        tap["entity"]["suggestionResponse"]["postBack"]["data"],
        "cancel_B8"
    );
}
