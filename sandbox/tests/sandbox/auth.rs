use crate::support::*;

const SEND: &str = "/v1/public/rcs/message/";

#[tokio::test]
async fn missing_or_wrong_keys_get_401_and_count_apart() {
    let h = harness(config()).await;
    let body = serde_json::to_vec(&card_for(PHONE)).unwrap();
    for authorization in [
        None,
        Some("Basic wrong-key"),
        Some(KEY),
        Some(&*format!("Bearer {KEY}")),
        Some(&*format!("basic {KEY}")),
    ] {
        h.post(SEND, authorization, body.clone())
            .await
            .assert_refused(401, "Unauthorized");
    }
    let right = format!("Basic {KEY}");
    h.post(SEND, Some(&right), body).await.assert_accepted();

    let stats = h.stats().await;
    assert_eq!(stats.unauthorized, 5);
    assert_eq!(stats.requests, 1, "only authenticated requests count");
    assert_eq!(stats.count(401), 0);
    assert_eq!(h.sandbox.messages().len(), 1);
}

#[tokio::test]
async fn the_key_is_compared_verbatim_not_base64_decoded() {
    // Interakt's guide sends the dashboard key as is, not base64("user:password").
    let h = harness(herald_sandbox::SandboxConfig::new("a2V5Og==")).await;
    let body = serde_json::to_vec(&card_for(PHONE)).unwrap();
    h.post(SEND, Some("Basic a2V5Og=="), body.clone())
        .await
        .assert_accepted();
    h.post(SEND, Some("Basic key:"), body)
        .await
        .assert_refused(401, "Unauthorized");
}
